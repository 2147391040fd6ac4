//! fwseal-api: the request and response bodies of fwseald's `/v1` API, shared by the daemon
//! (which builds its replies from them) and the `fwseal` client (which reads them). No HTTP, no
//! async runtime: plain serde types plus the sans-I/O hash-locally driver ([`digest`]).
//!
//! Every type serializes exactly as the daemon answers today: the same names, the same nesting,
//! optional keys omitted or sent as `null` exactly where the daemon omits them or sends `null`.
//! `docs/openapi.json` is checked against these types by `tests/openapi.rs` (both directions:
//! every key a type emits is in the schema and every schema property is emitted, with the same
//! required keys, JSON types and enum values).
//!
//! | endpoint | type |
//! |---|---|
//! | `POST /v1/products/{p}/sign` | query [`SignQuery`] → 201 [`SignResponse`] or 202 [`JobView`] ([`SignOutcome`]) |
//! | `POST /v1/products/{p}/sign-batch` | query [`SignQuery`] → 200 [`BatchResponse`] |
//! | `GET /v1/products/{p}/sign-params` | query [`SignParamsQuery`] → [`digest::SignParams`] |
//! | `POST /v1/products/{p}/sign-digest` | [`digest::DigestSignRequest`] → [`digest::DigestSignResponse`] |
//! | `GET /v1/products/{p}/artifacts` | query [`ArtifactListQuery`] → [`ArtifactList`] |
//! | `GET /v1/products/{p}/keys` | [`ProductKeys`] |
//! | `GET /v1/appliance/keys` | [`ProductKeys`] (product [`APPLIANCE`]) |
//! | `GET /v1/artifacts/{id}` | [`ArtifactView`] |
//! | `GET /v1/artifacts/{id}/bundle` | [`Bundle`] |
//! | `GET /v1/log/checkpoint` | the signed note, `text/plain` |
//! | `GET /v1/log/inclusion` | [`InclusionProof`] |
//! | `GET /v1/log/consistency` | [`ConsistencyProof`] |
//! | `POST /v1/tsa` | DER `TimeStampReq` → DER `TimeStampResp` (RFC 3161; no JSON) |
//! | `GET /v1/tsa/certificate` | the TSA certificate, PEM |
//! | `GET /v1/jobs` | query [`JobsQuery`] → [`JobList`] |
//! | `GET /v1/jobs/{id}` | [`JobView`] |
//! | `POST /v1/jobs/{id}/approve` | [`ApproveBody`] → [`JobView`] |
//! | `POST /v1/jobs/{id}/reject` | [`RejectBody`] → [`JobView`] |
//! | every error | [`ProblemDoc`] (`application/problem+json`) |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
mod jobs;
pub mod log;
mod problem;
mod sign;

pub use digest::{
    sign_remote, BuildClaims, Carried, DigestItem, DigestItemResult, DigestSignRequest,
    DigestSignResponse, LocalItem, RemoteError, RemoteSigned, SignParams, WireDigest, WireMessage,
    MAX_ITEMS, MAX_MESSAGE,
};
pub use jobs::{
    ApproveBody, JobApproval, JobLinks, JobList, JobState, JobView, JobsFilter, JobsQuery,
    RejectBody,
};
pub use log::{
    Bundle, BundleTimestamp, ConsistencyProof, InclusionProof, LogRecord, BUNDLE_FORMAT,
};
pub use problem::{codes, ProblemDoc};
pub use sign::{
    ArtifactList, ArtifactListQuery, ArtifactView, BatchBody, BatchItem, BatchResponse,
    DigestValue, KeyView, Links, ProductKeys, SigOut, SignOutcome, SignParamsQuery, SignQuery,
    SignResponse,
};

pub use fwseal_crypto::{DigestAlg, SigAlg};
pub use fwseal_formats::{Format, ImageVersion, Mode, SignOptions};

/// The reserved product name of the appliance's own provenance / checkpoint keys. It is never a
/// signing product; `GET /v1/appliance/keys` answers with its public keys under this name.
pub const APPLIANCE: &str = "fwseal-appliance";

/// The reserved product name of the built-in RFC 3161 Time-Stamping Authority's key (ECDSA
/// P-256 plus its certificate). Never a signing product; `POST /v1/tsa` signs with it.
pub const TSA_PRODUCT: &str = "fwseal-tsa";

/// Both signing modes, in declaration order (`fwseal_formats::Mode` has no such list).
pub const MODES: [Mode; 2] = [Mode::Embedded, Mode::Detached];

/// The wire name of a mode (`embedded`, `detached`): what serde writes for it.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Embedded => "embedded",
        Mode::Detached => "detached",
    }
}
