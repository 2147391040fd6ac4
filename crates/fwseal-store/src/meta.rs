//! Metadata of stored artifacts (what the factory lists and fetches).

use crate::record::{hex32, opt_hex32, Hash32};
use crate::StoreError;
use fwseal_crypto::KeyId;
use serde::{Deserialize, Serialize};

/// One signing result: which blobs in the [`crate::ArtifactStore`] belong to it, and how it was
/// made. The blobs themselves are addressed by their SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// Artifact id ([`new_artifact_id`]): 1–128 characters of `[A-Za-z0-9_-]`.
    pub id: String,
    /// Product.
    pub product: String,
    /// Image format name.
    pub format: String,
    /// `embedded` or `detached`.
    pub mode: String,
    /// The input's file name as the client submitted it (`None` in rows stored before schema
    /// version 3).
    #[serde(default)]
    pub name: Option<String>,
    /// Image version, if the format or the client states one.
    #[serde(default)]
    pub version: Option<String>,
    /// SHA-256 of the unsigned input.
    #[serde(with = "hex32")]
    pub input_sha256: Hash32,
    /// SHA-256 of the output (signed image; in detached mode, the input again).
    #[serde(with = "hex32")]
    pub output_sha256: Hash32,
    /// SHA-256 of the detached signature document.
    #[serde(default, with = "opt_hex32")]
    pub detached_sha256: Option<Hash32>,
    /// SHA-256 of the provenance envelope.
    #[serde(default, with = "opt_hex32")]
    pub provenance_sha256: Option<Hash32>,
    /// Signing keys.
    #[serde(default)]
    pub key_ids: Vec<KeyId>,
    /// Requesting client identity.
    #[serde(default)]
    pub client: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
}

impl ArtifactMeta {
    /// Reject ids and times the store cannot index.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !valid_id(&self.id) {
            return Err(StoreError::Misuse(format!(
                "artifact id {:?} must be 1-128 characters of [A-Za-z0-9_-]",
                self.id
            )));
        }
        if self.product.is_empty() || self.format.is_empty() || self.mode.is_empty() {
            return Err(StoreError::Misuse(
                "artifact product, format and mode must not be empty".into(),
            ));
        }
        if crate::time::utc_sort_key(&self.created).is_none() {
            return Err(StoreError::Misuse(format!(
                "artifact time {:?} is not RFC 3339 UTC",
                self.created
            )));
        }
        Ok(())
    }
}

/// Whether `id` is a syntactically valid artifact id.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// A fresh artifact id: 128 random bits from the OS, as 32 lower-case hex digits.
pub fn new_artifact_id() -> Result<String, StoreError> {
    use rand_core::{OsRng, RngCore};
    let mut b = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(hex::encode(b))
}

/// Filters for listing one product's artifacts. All given filters must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactQuery {
    /// Exact version.
    pub version: Option<String>,
    /// Matches the input, output, detached-document or provenance SHA-256.
    pub digest: Option<Hash32>,
    /// Created at or after (RFC 3339 UTC).
    pub since: Option<String>,
    /// Created strictly before (RFC 3339 UTC).
    pub until: Option<String>,
    /// At most this many (default and maximum [`MAX_LIST`]).
    pub limit: Option<usize>,
}

/// Largest page [`crate::ArtifactIndex::list_artifacts`] returns.
pub const MAX_LIST: usize = 1000;
