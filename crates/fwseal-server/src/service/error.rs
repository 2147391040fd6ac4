//! The service's one error type. Every operation of [`super::SigningService`] returns it; the
//! HTTP layer turns it into a problem document in exactly one place
//! (`impl From<&ServiceError> for Problem` in `problem.rs`), and its `Display` is the reason
//! recorded in the audit log when the operation was refused.

use crate::keys::KeyError;
use fwseal_formats::FormatError;
use fwseal_store::{JobRefusal, StoreError};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No or unknown credentials.
    #[error("unauthenticated")]
    Unauthenticated,
    /// The client certificate does not match the client's `tls_subject`.
    #[error("client certificate subject {got:?} does not match the client's tls_subject")]
    WrongCertificate {
        /// The subject CN presented (empty when none).
        got: String,
    },
    /// OIDC tokens of this issuer cannot be verified now (its keys are stale and cannot be
    /// refreshed, or its replay cache is full): fail closed (`503 oidc-unavailable`).
    #[error("{0}")]
    OidcUnavailable(String),
    /// Timestamps are required (`[tsa] mode = "required"`) and no TSA gave a valid token
    /// (`503 tsa-unavailable`; nothing is released).
    #[error("{0}")]
    TsaUnavailable(String),
    /// The product requires an OIDC token for this role and a static token was used.
    #[error("{0}")]
    OidcRequired(String),
    /// A client-asserted build claim contradicts the verified claim of the request's token.
    #[error("{0}")]
    ClaimContradiction(String),
    /// Unknown product, or one the client has no such role on: the two are indistinguishable to
    /// the client. The string is the audit reason only.
    #[error("{0}")]
    NoSuchProduct(String),
    /// Unknown or invisible artifact (`id`, audit reason).
    #[error("{reason}")]
    NoSuchArtifact {
        /// Artifact id (or `id/part`).
        id: String,
        /// Audit reason.
        reason: String,
    },
    /// Unknown or invisible job (`id`, audit reason).
    #[error("{reason}")]
    NoSuchJob {
        /// Job id.
        id: String,
        /// Audit reason.
        reason: String,
    },
    /// Authenticated but not allowed (audit export without the auditor role).
    #[error("{0}")]
    Forbidden(String),
    /// A job operation needs the policy's approver role.
    #[error("{detail}")]
    NotApprover {
        /// What the client is told.
        detail: String,
        /// Audit reason (may differ from the detail).
        reason: String,
    },
    /// The job store refused an approval or rejection.
    #[error("{}", job_refusal_detail(id, refusal, digest_hex, *rejecting))]
    Job {
        /// Job id.
        id: String,
        /// Why.
        refusal: JobRefusal,
        /// The job's digest (hex), for the digest-mismatch message.
        digest_hex: String,
        /// The refusal came from a rejection (wording differs).
        rejecting: bool,
    },
    /// Hash-locally refused for a product whose images need M-of-N approval.
    #[error("{0}")]
    ApprovalRequired(String),
    /// The endpoint belongs to a feature this appliance does not have configured (the
    /// built-in TSA without `[tsa_server]`): `404 not-found`, as if it did not exist.
    #[error("{0}")]
    NotConfigured(String),
    /// The request body's content type is not the one the endpoint takes (`415`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A malformed request (parameters, body).
    #[error("{0}")]
    BadRequest(String),
    /// A request body (not an image upload) exceeds its endpoint's limit.
    #[error("the request body exceeds this endpoint's limit of {limit} bytes")]
    BodyTooLarge {
        /// Bytes.
        limit: u64,
    },
    /// The client stopped sending its request body (or sent it too slowly).
    #[error("{0}")]
    RequestTimeout(String),
    /// The image could not be detected or prepared.
    #[error("{0}")]
    Format(#[from] FormatError),
    /// The request is well-formed but not something this product or format does.
    #[error("{0}")]
    Unsupported(String),
    /// The upload exceeds the configured limit.
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes.
        limit: u64,
    },
    /// Keys could not be had for the product.
    #[error("{0}")]
    Keys(#[from] KeyError),
    /// The HSM failed while signing (or provenance signing failed).
    #[error("{0}")]
    Signing(String),
    /// A released job's recomputed digest is not the approved one.
    #[error("{0}")]
    DigestMismatch(String),
    /// The audit record could not be committed: nothing is released.
    #[error("audit log: {0}; signature withheld")]
    AuditFailed(StoreError),
    /// The operation was audited and committed, but a blob it wrote could not be published
    /// (made visible): the blob stays staged and start-up recovery publishes it. **Not a
    /// refusal**: [`super::SigningService::audited`] records no `deny` for it (the `allow`
    /// record stands). The client gets a 500 `internal` problem with this text.
    #[error("{detail} (publishing its files failed: {cause})")]
    Unpublished {
        /// What the client is told (what was recorded, when it becomes available).
        detail: String,
        /// The artifact that was committed, if this was a signing.
        artifact: Option<String>,
        /// Why the publication failed.
        cause: String,
    },
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Anything else that is the appliance's fault.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// An internal error from anything displayable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ServiceError::Internal(e.to_string())
    }

    /// The operation's own record was committed (only publishing its blobs failed,
    /// [`ServiceError::Unpublished`]): not a refusal, so no `deny` record is written for it.
    pub fn is_committed(&self) -> bool {
        matches!(self, ServiceError::Unpublished { .. })
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        ServiceError::Internal(e.to_string())
    }
}

impl From<fwseal_formats::files::DetectError> for ServiceError {
    fn from(e: fwseal_formats::files::DetectError) -> Self {
        match e {
            fwseal_formats::files::DetectError::Io(e) => ServiceError::Internal(e.to_string()),
            fwseal_formats::files::DetectError::Format(f) => ServiceError::Format(f),
        }
    }
}

/// What a client is told when the job store refuses an approval or rejection.
pub(crate) fn job_refusal_detail(
    id: &str,
    r: &JobRefusal,
    digest_hex: &str,
    rejecting: bool,
) -> String {
    match r {
        JobRefusal::NotFound => format!("no job {id:?} is available to this client"),
        JobRefusal::SelfApproval => {
            format!("job {id}: the requester of a job cannot approve it")
        }
        JobRefusal::AlreadyApproved => {
            format!("job {id}: this client has already approved it; one identity counts once")
        }
        JobRefusal::Expired => format!("job {id} has expired; submit the image again"),
        JobRefusal::Rejected(_) if rejecting => format!("job {id} was already rejected"),
        JobRefusal::Rejected(why) => format!(
            "job {id} was rejected ({}); it cannot be approved",
            why.as_deref().unwrap_or("no reason given")
        ),
        JobRefusal::AlreadySigned(Some(a)) => {
            format!("job {id} is already signed as artifact {a}")
        }
        JobRefusal::AlreadySigned(None) => format!("job {id} is already being signed"),
        JobRefusal::Failed(why) => format!(
            "job {id} failed after its approvals ({}); submit the image again",
            why.as_deref().unwrap_or("unknown reason")
        ),
        JobRefusal::DigestMismatch => format!(
            "job {id}: the approved digest does not match the job's image digest {digest_hex}; \
             inspect the job again"
        ),
        _ => format!("job {id}: refused"),
    }
}
