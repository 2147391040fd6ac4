//! RFC 9457 problem documents with stable codes.

use crate::keys::KeyError;
use crate::service::ServiceError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use fwseal_api::codes;
use fwseal_formats::FormatError;
use fwseal_store::JobRefusal;
use serde::Serialize;

/// A problem document. `code` is stable and documented in `docs/api.md`.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// `https://fwseal.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, stable title.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Human-readable detail (what and where).
    pub detail: String,
    /// Stable machine code.
    pub code: &'static str,
    /// Seconds after which a retry may succeed (429, 503): sent as `Retry-After`, not in the
    /// body.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// What a problem response carries for the request log (a response extension): the request
/// middleware logs every 5xx with its code and detail.
#[derive(Clone, Debug)]
pub struct ProblemInfo {
    /// The problem's stable code.
    pub code: &'static str,
    /// Its detail (the cause; never a secret: details name files, limits and errors).
    pub detail: String,
}

impl Problem {
    /// A problem with a status, code, title and detail.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind: format!("https://fwseal.dev/problems/{code}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code,
            retry_after: None,
        }
    }

    /// With a `Retry-After` of `secs` (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 404 for a path the API does not have.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no endpoint {path:?}; see /v1/openapi.json"),
        )
    }

    /// 405 for a path that exists with other methods.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("{path} does not accept {method} (the Allow header lists what it does)"),
        )
    }

    /// 408: the client did not send its request (head or body) in time.
    pub fn request_timeout(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "Request timeout",
            detail,
        )
    }

    /// 429: over a rate limit.
    pub fn rate_limited(scope: &str, retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("{scope} rate limit exceeded; retry after {retry_after_secs} s"),
        )
        .retry_after(retry_after_secs)
    }

    /// 431: the request head is larger than the appliance accepts.
    pub fn headers_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request header fields too large",
            detail,
        )
    }

    /// 414: the request target (path and query) is longer than the appliance accepts.
    pub fn uri_too_long(len: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "Request target too long",
            format!("the request target is {len} bytes; the limit is {limit} bytes"),
        )
    }

    /// The problem for an error response that was not built from a problem (an extractor's
    /// rejection, the router's own 404/405): the code follows the status, the detail is the
    /// rejection's text.
    pub fn for_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let (code, title) = match status.as_u16() {
            400 => ("bad-request", "Bad request"),
            404 => ("not-found", "Not found"),
            405 => ("method-not-allowed", "Method not allowed"),
            408 => ("request-timeout", "Request timeout"),
            413 => ("too-large", "Request too large"),
            422 => ("bad-request", "Bad request"),
            414 => ("uri-too-long", "Request target too long"),
            415 => ("unsupported-media-type", "Unsupported media type"),
            431 => ("headers-too-large", "Request header fields too large"),
            s if s >= 500 => ("internal", "Internal error"),
            _ => ("bad-request", "Bad request"),
        };
        let status = if status.as_u16() == 422 {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(status, code, title, detail)
    }

    /// 401: no or unknown API token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            "send a valid API token as `Authorization: Bearer <token>`",
        )
    }

    /// 404 for an unknown product **and** for a product the client may not use: the two must
    /// be indistinguishable (no enumeration).
    /// The detail deliberately does not echo the product name, so the bodies are identical.
    pub fn no_such_product() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no-such-product",
            "No such product",
            "no such product is available to this client",
        )
    }

    /// 404 for an artifact that does not exist or is not visible.
    pub fn no_such_artifact(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no-such-artifact",
            "No such artifact",
            format!("no artifact {id:?} is available to this client"),
        )
    }

    /// 422: the image is malformed (detail says what and where).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed-image",
            "Malformed image",
            detail,
        )
    }

    /// 422: the format is not allowed for this product or not supported.
    pub fn unsupported(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            "Unsupported request",
            detail,
        )
    }

    /// 413 for a request body above its endpoint's limit.
    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            format!("the request body exceeds this endpoint's limit of {limit} bytes"),
        )
    }

    /// 413.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Image too large",
            format!("the upload exceeds the limit of {limit} bytes"),
        )
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 503: the HSM is unavailable.
    pub fn hsm_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "hsm-unavailable",
            "Signing backend unavailable",
            detail,
        )
    }

    /// 500.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r.extensions_mut().insert(ProblemInfo {
            code: self.code,
            detail: self.detail,
        });
        r
    }
}

impl Problem {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The one place a service error becomes HTTP.
impl From<&ServiceError> for Problem {
    fn from(e: &ServiceError) -> Self {
        use ServiceError as E;
        let conflict = |code, title| Problem::new(StatusCode::CONFLICT, code, title, e.to_string());
        match e {
            E::Unauthenticated | E::WrongCertificate { .. } => Problem::unauthenticated(),
            E::NoSuchProduct(_) => Problem::no_such_product(),
            E::NoSuchArtifact { id, .. } => Problem::no_such_artifact(id),
            E::NoSuchJob { id, .. } => Problem::new(
                StatusCode::NOT_FOUND,
                "no-such-job",
                "No such job",
                format!("no job {id:?} is available to this client"),
            ),
            E::Forbidden(d) => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", d),
            E::OidcRequired(d) => Problem::new(
                StatusCode::FORBIDDEN,
                codes::OIDC_REQUIRED,
                "OIDC token required",
                d,
            ),
            E::OidcUnavailable(d) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::OIDC_UNAVAILABLE,
                "OIDC verification unavailable",
                d,
            ),
            E::TsaUnavailable(d) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::TSA_UNAVAILABLE,
                "Timestamp authority unavailable",
                d,
            ),
            E::ClaimContradiction(d) => Problem::new(
                StatusCode::BAD_REQUEST,
                codes::CLAIM_CONTRADICTION,
                "Client claim contradicts the token",
                d,
            ),
            E::NotApprover { detail, .. } => Problem::new(
                StatusCode::FORBIDDEN,
                "not-an-approver",
                "Approver role required",
                detail,
            ),
            E::Job { refusal, .. } => match refusal {
                JobRefusal::NotFound => Problem::new(
                    StatusCode::NOT_FOUND,
                    "no-such-job",
                    "No such job",
                    e.to_string(),
                ),
                JobRefusal::SelfApproval => Problem::new(
                    StatusCode::FORBIDDEN,
                    "self-approval",
                    "Self-approval refused",
                    e.to_string(),
                ),
                JobRefusal::AlreadyApproved => conflict("already-approved", "Already approved"),
                JobRefusal::Expired => conflict("job-expired", "Job expired"),
                JobRefusal::Rejected(_) => conflict("job-rejected", "Job rejected"),
                JobRefusal::AlreadySigned(_) => conflict("job-signed", "Job already signed"),
                JobRefusal::Failed(_) => conflict("job-failed", "Job failed"),
                JobRefusal::DigestMismatch => conflict("digest-mismatch", "Digest mismatch"),
                _ => Problem::internal(e.to_string()),
            },
            E::ApprovalRequired(_) => conflict("approval-required", "Approval required"),
            E::DigestMismatch(_) => conflict("digest-mismatch", "Digest mismatch"),
            E::NotConfigured(d) => {
                Problem::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "Not found", d)
            }
            E::UnsupportedMediaType(d) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                d,
            ),
            E::BadRequest(d) => Problem::bad_request(d),
            E::BodyTooLarge { limit } => Problem::body_too_large(*limit),
            E::RequestTimeout(d) => Problem::request_timeout(d),

            E::Format(f) => match f {
                FormatError::TooLarge { limit } => Problem::too_large(*limit),
                FormatError::Unsupported(m) => Problem::unsupported(m),
                FormatError::UnsupportedFlavour(_) => Problem::unsupported(f.to_string()),
                FormatError::Misuse(m) => Problem::internal(m),
                FormatError::Crypto(c) => Problem::hsm_unavailable(c.to_string()),
                FormatError::SlotOverflow { .. } => Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "slot-overflow",
                    "Signed image does not fit its slot",
                    f.to_string(),
                ),
                _ => Problem::malformed(f.to_string()),
            },
            E::Unsupported(d) => Problem::unsupported(d),
            E::TooLarge { limit } => Problem::too_large(*limit),
            E::Keys(KeyError::Missing { .. }) => Problem::unsupported(e.to_string()),
            E::Keys(_) | E::Signing(_) => Problem::hsm_unavailable(e.to_string()),
            E::AuditFailed(_) | E::Store(_) | E::Internal(_) | E::Unpublished { .. } => {
                Problem::internal(e.to_string())
            }
        }
    }
}

impl From<Problem> for fwseal_api::ProblemDoc {
    fn from(p: Problem) -> Self {
        fwseal_api::ProblemDoc {
            kind: p.kind,
            title: p.title.to_string(),
            status: p.status,
            detail: p.detail,
            code: p.code.to_string(),
        }
    }
}
