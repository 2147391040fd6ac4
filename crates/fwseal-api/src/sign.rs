//! Signing an uploaded image: `POST /v1/products/{p}/sign` and `…/sign-batch`.

use crate::{JobView, ProblemDoc};
use fwseal_crypto::{DigestAlg, SigAlg};
use fwseal_formats::{Format, Mode};
use serde::{Deserialize, Serialize};

/// Query parameters of `POST /v1/products/{product}/sign` and `…/sign-batch`. The daemon also
/// stores them with a pending job (its `build`), with `format` and `mode` filled in, so a
/// release signs exactly what was requested.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignQuery {
    /// `embedded` or `detached` (default: the product's `default_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Format name overriding detection (any name `Format::from_name` accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Input file name (its extension is a detection hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image version, `major.minor.revision+build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Client-claimed source repository URI (recorded as unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
    /// Client-claimed source commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Client-claimed source ref.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// Client-claimed CI run URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run_url: Option<String>,
    /// Client-claimed CI builder id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_id: Option<String>,
}

impl SignQuery {
    /// The client-asserted build claims of this request (what a hash-locally request sends as
    /// its `claims`).
    pub fn claims(&self) -> crate::BuildClaims {
        crate::BuildClaims {
            source_uri: self.source_uri.clone(),
            commit: self.commit.clone(),
            git_ref: self.git_ref.clone(),
            ci_run_url: self.ci_run_url.clone(),
            builder_id: self.builder_id.clone(),
        }
    }

    /// The build metadata that is set, as `(wire name, value)` sorted by name: `builder_id`,
    /// `ci_run_url`, `commit`, `ref`, `source_uri`, `version` (not `mode`, `format`, `name`).
    pub fn build_metadata(&self) -> Vec<(&'static str, &str)> {
        [
            ("builder_id", &self.builder_id),
            ("ci_run_url", &self.ci_run_url),
            ("commit", &self.commit),
            ("ref", &self.git_ref),
            ("source_uri", &self.source_uri),
            ("version", &self.version),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// A format-aware digest: the hash the device checks (and approvals bind to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestValue {
    /// Hash algorithm.
    pub alg: DigestAlg,
    /// Lower-case hex.
    pub value: String,
}

/// One signature in a [`SignResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigOut {
    /// Algorithm.
    pub alg: SigAlg,
    /// Key id (hex SHA-256 of the key's DER SubjectPublicKeyInfo).
    pub key_id: String,
}

/// Where a signed artifact's parts are fetched (`/v1/artifacts/{id}…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// The artifact's metadata ([`crate::ArtifactView`]).
    #[serde(rename = "self")]
    pub self_: String,
    /// The signed image (embedded) or the unchanged image (detached).
    pub image: String,
    /// The detached signature document.
    pub detached: String,
    /// The DSSE provenance envelope.
    pub provenance: String,
    /// The artifact's bundle ([`crate::Bundle`]: record, inclusion proof, signed tree head,
    /// timestamp tokens). Empty from servers that predate it.
    #[serde(default)]
    pub bundle: String,
}

impl Links {
    /// The links of artifact `id`.
    pub fn for_artifact(id: &str) -> Self {
        let base = format!("/v1/artifacts/{id}");
        Links {
            image: format!("{base}/image"),
            detached: format!("{base}/detached"),
            provenance: format!("{base}/provenance"),
            bundle: format!("{base}/bundle"),
            self_: base,
        }
    }
}

/// `201` answer of a sign request (and the body of a signed image in a batch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResponse {
    /// The new artifact's id.
    pub artifact_id: String,
    /// Product.
    pub product: String,
    /// Detected (or requested) format.
    pub format: Format,
    /// Embedded or detached.
    pub mode: Mode,
    /// SHA-256 (hex) of the uploaded image.
    pub input_sha256: String,
    /// SHA-256 (hex) of the output image (in detached mode: the input again).
    pub output_sha256: String,
    /// The signing plan's format-aware digest.
    pub digest: DigestValue,
    /// The signatures made, classical first.
    pub signatures: Vec<SigOut>,
    /// Approver identities (M-of-N products); omitted for an immediate sign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Where to fetch the results.
    pub links: Links,
}

/// The answer of `POST /v1/products/{p}/sign`: `201` signed, or `202` a pending job (a product
/// with an approval policy). Untagged: the two bodies have disjoint required keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignOutcome {
    /// `201`: signed.
    Signed(Box<SignResponse>),
    /// `202`: stored as a pending job (`Location: /v1/jobs/{id}`).
    Pending(Box<JobView>),
}

/// One image's result in a [`BatchResponse`]: what a single `sign` would have answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    /// The part's file name; `null` for a result about the batch itself (an unreadable part,
    /// too many parts).
    pub name: Option<String>,
    /// The HTTP status the image would have had alone (201, 202, or an error status).
    pub status: u16,
    /// The body it would have had alone.
    pub body: BatchBody,
}

/// The body of a [`BatchItem`]: a sign response (201), a pending job (202) or a problem
/// document (any error status). Untagged: the three have disjoint required keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchBody {
    /// `201`.
    Signed(Box<SignResponse>),
    /// `202`.
    Pending(Box<JobView>),
    /// An error status.
    Problem(ProblemDoc),
}

/// `200` answer of `POST /v1/products/{p}/sign-batch`: one result per part, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Product.
    pub product: String,
    /// One result per image, in upload order (plus a final `name: null` result when the batch
    /// stopped early).
    pub results: Vec<BatchItem>,
}

/// Query of `GET /v1/products/{p}/sign-params`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignParamsQuery {
    /// Format name (any name `Format::from_name` accepts).
    pub format: String,
    /// Image version the options are for, `major.minor.revision+build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Query of `GET /v1/products/{p}/artifacts`; all given filters must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactListQuery {
    /// Exact image version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Input or output SHA-256 (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Created at or after (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Created strictly before (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A signed artifact's metadata: `GET /v1/artifacts/{id}` and the entries of [`ArtifactList`].
/// The same JSON as the store's `ArtifactMeta` (every key always present; `null` when unset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactView {
    /// Artifact id.
    pub id: String,
    /// Product.
    pub product: String,
    /// Format.
    pub format: Format,
    /// Embedded or detached.
    pub mode: Mode,
    /// The input's file name as submitted (`null` for artifacts signed before names were
    /// recorded). `fwseal fetch` names the files it writes after it.
    #[serde(default)]
    pub name: Option<String>,
    /// Image version: the one the image itself carries (MCUboot `ih_ver`), else the one the
    /// request named.
    #[serde(default)]
    pub version: Option<String>,
    /// SHA-256 (hex) of the unsigned input.
    pub input_sha256: String,
    /// SHA-256 (hex) of the output (in detached mode the input again).
    pub output_sha256: String,
    /// SHA-256 (hex) of the detached signature document.
    #[serde(default)]
    pub detached_sha256: Option<String>,
    /// SHA-256 (hex) of the provenance envelope.
    #[serde(default)]
    pub provenance_sha256: Option<String>,
    /// Key ids (hex) of the signing keys.
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// The requesting client's identity.
    #[serde(default)]
    pub client: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
}

/// `GET /v1/products/{p}/artifacts`: newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactList {
    /// Product.
    pub product: String,
    /// The matching artifacts.
    pub artifacts: Vec<ArtifactView>,
}

/// One public key in [`ProductKeys`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// Algorithm the key signs with.
    pub alg: SigAlg,
    /// Key id (hex SHA-256 of the DER SubjectPublicKeyInfo).
    pub key_id: String,
    /// The SubjectPublicKeyInfo, PEM.
    pub spki_pem: String,
}

/// `GET /v1/products/{p}/keys`: the product's current public keys and certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductKeys {
    /// Product.
    pub product: String,
    /// Classical key first, then post-quantum.
    pub keys: Vec<KeyView>,
    /// The classical key's X.509 certificate, PEM (RSA / `.efi` products); `null` otherwise.
    #[serde(default)]
    pub certificate_pem: Option<String>,
}
