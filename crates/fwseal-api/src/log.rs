//! The transparency log's wire types: inclusion and consistency proofs
//! (`GET /v1/log/inclusion`, `GET /v1/log/consistency`) and the artifact bundle
//! (`GET /v1/artifacts/{id}/bundle`, `fwseal-bundle/v1`). `GET /v1/log/checkpoint` answers
//! with the signed note itself (`text/plain`). The byte contract is `formats/log.md`.
//!
//! Every hash is standard base64 (with padding) of 32 bytes, as in `formats/log.md`'s proof
//! JSON; the record is the audit export's record line (`crates/fwseal-store/README.md`).

use serde::{Deserialize, Serialize};

/// `bundle_format` of a bundle.
pub const BUNDLE_FORMAT: &str = "fwseal-bundle/v1";

/// An audit record as the audit export writes it (`"type":"record"` line without `type`):
/// digests lower-case hex, absent optional fields `null`, `extra` the stored JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Sequence number (leaf index + 1).
    pub seq: u64,
    /// The previous record's hash (hex).
    pub prev_hash: String,
    /// This record's hash (hex): SHA-256 of its canonical encoding.
    pub hash: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// Who.
    pub client: String,
    /// What (`sign`, `fetch`, ...).
    pub action: String,
    /// Product, if any.
    pub product: Option<String>,
    /// Key ids (hex) used.
    pub key_ids: Vec<String>,
    /// SHA-256 of the certificate (hex).
    pub cert_sha256: Option<String>,
    /// SHA-256 of the input (hex).
    pub input_sha256: Option<String>,
    /// SHA-256 of the output (hex): for a `sign` record, the signed image.
    pub output_sha256: Option<String>,
    /// Format name.
    pub format: Option<String>,
    /// `embedded` or `detached`.
    pub mode: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Reason, if any.
    pub reason: Option<String>,
    /// JSON text, hashed byte for byte.
    pub extra: Option<String>,
}

/// `GET /v1/log/inclusion?seq=N[&size=M]`: record `seq` (leaf `seq - 1`) is in the tree of
/// `tree_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// Tree size the proof is for.
    pub tree_size: u64,
    /// RFC 9162 audit path, deepest sibling first (base64 hashes).
    pub proof: Vec<String>,
    /// The record.
    pub record: LogRecord,
    /// Base64 of the leaf bytes: the record's canonical encoding v1.
    pub canonical_encoding: String,
    /// The signed note of size `tree_size` the proof verifies against (the newest tree head
    /// when `size` was not given; `null` when `size` names a size no stored tree head has).
    pub checkpoint: Option<String>,
}

/// `GET /v1/log/consistency?old=A&new=B`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
    /// RFC 9162 consistency proof (base64 hashes); empty when `old` is 0 or equals `new`.
    pub proof: Vec<String>,
}

/// An RFC 3161 timestamp token in a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleTimestamp {
    /// What the token's message imprint covers (see `formats/timestamp.md`).
    pub covers: String,
    /// The DER `TimeStampToken`, base64.
    pub token: String,
}

/// `GET /v1/artifacts/{id}/bundle` (`fwseal fetch --bundle FILE`): everything needed to check
/// offline that an artifact was signed by the appliance and recorded in its log
/// (`formats/log.md` §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub bundle_format: String,
    /// The artifact id.
    pub artifact: String,
    /// SHA-256 (hex) of the signed image as served (`/image`).
    pub output_sha256: String,
    /// SHA-256 (hex) of the image as submitted.
    pub input_sha256: String,
    /// The detached signature document (its JSON text, byte for byte), if the artifact has one.
    pub detached: Option<String>,
    /// The provenance DSSE envelope (its JSON text, byte for byte), if any.
    pub provenance: Option<String>,
    /// The audit record that announced the artifact (its `sign` record).
    pub record: LogRecord,
    /// Base64 of the record's canonical encoding: the Merkle leaf.
    pub canonical_encoding: String,
    /// The leaf's index (`record.seq - 1`).
    pub leaf_index: u64,
    /// The size of the tree the proof is for (= the checkpoint's size).
    pub tree_size: u64,
    /// The inclusion proof (base64 hashes).
    pub inclusion_proof: Vec<String>,
    /// The signed note (C2SP checkpoint) of size `tree_size`.
    pub checkpoint: String,
    /// RFC 3161 tokens (empty until the appliance timestamps).
    pub timestamps: Vec<BundleTimestamp>,
}
