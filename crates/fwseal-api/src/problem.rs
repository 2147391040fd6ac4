//! RFC 9457 problem documents (`application/problem+json`).

use serde::{Deserialize, Serialize};

/// The stable `code`s of [`ProblemDoc`] (documented in `docs/api.md`, listed in
/// `docs/openapi.json`). A client must accept codes it does not know.
pub mod codes {
    /// 400: bad query parameter or body.
    pub const BAD_REQUEST: &str = "bad-request";
    /// 401: missing or unknown token (or a client certificate that does not match).
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// 403: audit export without the auditor role.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404: unknown product, or no role on it.
    pub const NO_SUCH_PRODUCT: &str = "no-such-product";
    /// 404: unknown artifact, or not allowed.
    pub const NO_SUCH_ARTIFACT: &str = "no-such-artifact";
    /// 404: unknown job, or no role on its product.
    pub const NO_SUCH_JOB: &str = "no-such-job";
    /// 403: the requester tried to approve their own job.
    pub const SELF_APPROVAL: &str = "self-approval";
    /// 403: approving, rejecting or viewing a job without the policy's role.
    pub const NOT_AN_APPROVER: &str = "not-an-approver";
    /// 409: this identity already approved the job.
    pub const ALREADY_APPROVED: &str = "already-approved";
    /// 409: the approval's digest is not the job's.
    pub const DIGEST_MISMATCH: &str = "digest-mismatch";
    /// 409: the job expired.
    pub const JOB_EXPIRED: &str = "job-expired";
    /// 409: the job was rejected.
    pub const JOB_REJECTED: &str = "job-rejected";
    /// 409: the job is already signed (or being signed).
    pub const JOB_SIGNED: &str = "job-signed";
    /// 409: `sign-digest` for a product under an approval policy.
    pub const APPROVAL_REQUIRED: &str = "approval-required";
    /// 409: the job's release failed.
    pub const JOB_FAILED: &str = "job-failed";
    /// 413: upload above the limit.
    pub const TOO_LARGE: &str = "too-large";
    /// 422: the image is malformed.
    pub const MALFORMED_IMAGE: &str = "malformed-image";
    /// 422: format not allowed for the product, or not signable with its algorithms.
    pub const UNSUPPORTED: &str = "unsupported";
    /// 422: the signed MCUboot image (with its image trailer) exceeds the product's slot size.
    pub const SLOT_OVERFLOW: &str = "slot-overflow";
    /// 503: the HSM or its keys are unavailable.
    pub const HSM_UNAVAILABLE: &str = "hsm-unavailable";
    /// 500: anything else.
    pub const INTERNAL: &str = "internal";
    /// 404: no such endpoint.
    pub const NOT_FOUND: &str = "not-found";
    /// 405: the endpoint exists with other methods.
    pub const METHOD_NOT_ALLOWED: &str = "method-not-allowed";
    /// 408: the request (head, body or whole) took too long.
    pub const REQUEST_TIMEOUT: &str = "request-timeout";
    /// 429: over a rate limit (`Retry-After` says when to retry).
    pub const RATE_LIMITED: &str = "rate-limited";
    /// 431: the request head is too large.
    pub const HEADERS_TOO_LARGE: &str = "headers-too-large";
    /// 414: the request target (path and query) is too long.
    pub const URI_TOO_LONG: &str = "uri-too-long";

    /// 503: OIDC tokens of this issuer cannot be verified now (its keys are older than the
    /// configured maximum age and cannot be refreshed, or its replay cache is full): fail closed.
    pub const OIDC_UNAVAILABLE: &str = "oidc-unavailable";
    /// 403: the product refuses static API tokens for this role; use an OIDC token.
    pub const OIDC_REQUIRED: &str = "oidc-required";
    /// 400: a client-asserted build claim contradicts the verified claim of the request's token.
    pub const CLAIM_CONTRADICTION: &str = "claim-contradiction";
    /// 503: the product requires RFC 3161 timestamps (`[tsa] mode = "required"`) and no
    /// configured Time-Stamping Authority answered with a valid token: nothing was signed.
    pub const TSA_UNAVAILABLE: &str = "tsa-unavailable";
    /// 415: the request body's content type is not the one the endpoint takes (`POST /v1/tsa`
    /// takes `application/timestamp-query`).
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported-media-type";

    /// Every code the daemon sends.
    pub const ALL: [&str; 32] = [
        BAD_REQUEST,
        UNAUTHENTICATED,
        FORBIDDEN,
        NO_SUCH_PRODUCT,
        NO_SUCH_ARTIFACT,
        NO_SUCH_JOB,
        SELF_APPROVAL,
        NOT_AN_APPROVER,
        ALREADY_APPROVED,
        DIGEST_MISMATCH,
        JOB_EXPIRED,
        JOB_REJECTED,
        JOB_SIGNED,
        APPROVAL_REQUIRED,
        JOB_FAILED,
        TOO_LARGE,
        MALFORMED_IMAGE,
        UNSUPPORTED,
        SLOT_OVERFLOW,
        HSM_UNAVAILABLE,
        INTERNAL,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        REQUEST_TIMEOUT,
        RATE_LIMITED,
        HEADERS_TOO_LARGE,
        URI_TOO_LONG,
        OIDC_UNAVAILABLE,
        OIDC_REQUIRED,
        CLAIM_CONTRADICTION,
        TSA_UNAVAILABLE,
        UNSUPPORTED_MEDIA_TYPE,
    ];
}

/// An RFC 9457 problem document with fwseal's stable `code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemDoc {
    /// `https://fwseal.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, stable title.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Human-readable detail (what and where).
    pub detail: String,
    /// Stable machine code ([`codes`]).
    pub code: String,
}

impl ProblemDoc {
    /// A problem with `type` derived from `code`.
    pub fn new(
        status: u16,
        code: impl Into<String>,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        let code = code.into();
        ProblemDoc {
            kind: format!("https://fwseal.dev/problems/{code}"),
            title: title.into(),
            status,
            detail: detail.into(),
            code,
        }
    }
}

impl std::fmt::Display for ProblemDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for ProblemDoc {}
