//! Audit records and their canonical encoding (see the crate README, "Record hash").

use crate::StoreError;
use fwseal_crypto::KeyId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 value.
pub type Hash32 = [u8; 32];

/// `prev_hash` of record 1.
pub const GENESIS_PREV_HASH: Hash32 = [0u8; 32];

/// Domain separator that starts every record hash input.
pub const RECORD_DOMAIN: &[u8] = b"fwseal/audit-record/v1\0";

/// What happened. Stored and hashed as its kebab-case name ([`Action::as_str`]); names this
/// version does not know are kept verbatim as [`Action::Other`], so old verifiers can still
/// check newer logs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// An image was signed (`sign`).
    Sign,
    /// A signed artifact, detached document or provenance was fetched (`fetch`).
    Fetch,
    /// A product's artifacts were listed (`list`).
    List,
    /// A key was created (`key-create`).
    KeyCreate,
    /// A key was rotated (`key-rotate`).
    KeyRotate,
    /// A key was retired (`key-retire`).
    KeyRetire,
    /// A certificate signing request was made with a key (`key-csr`).
    KeyCsr,
    /// A pending job was submitted (`job-submit`).
    JobSubmit,
    /// A pending job was approved (`approve`).
    Approve,
    /// A pending job was rejected (`reject`).
    Reject,
    /// The configuration was reloaded (`config-reload`).
    ConfigReload,
    /// The audit log was read (`audit-read`).
    AuditRead,
    /// A request was refused before any action (`denied`).
    Denied,
    /// A client failed authentication beyond its token: the mutual-TLS certificate did not
    /// match (`authenticate`).
    Authenticate,
    /// A product's public keys were read (`keys`).
    KeysRead,
    /// At start-up, staged blobs of committed records were published and blobs no record
    /// references were deleted (`blob-recovery`).
    BlobRecovery,
    /// The built-in Time-Stamping Authority answered a request (`timestamp`): `allow` for a
    /// granted token, `deny` for a rejection.
    Timestamp,
    /// Any other name.
    Other(String),
}

impl Action {
    const KNOWN: [Action; 17] = [
        Action::Sign,
        Action::Fetch,
        Action::List,
        Action::KeyCreate,
        Action::KeyRotate,
        Action::KeyRetire,
        Action::KeyCsr,
        Action::JobSubmit,
        Action::Approve,
        Action::Reject,
        Action::ConfigReload,
        Action::AuditRead,
        Action::Denied,
        Action::Authenticate,
        Action::KeysRead,
        Action::BlobRecovery,
        Action::Timestamp,
    ];

    /// The stored and hashed name.
    pub fn as_str(&self) -> &str {
        match self {
            Action::Sign => "sign",
            Action::Fetch => "fetch",
            Action::List => "list",
            Action::KeyCreate => "key-create",
            Action::KeyRotate => "key-rotate",
            Action::KeyRetire => "key-retire",
            Action::KeyCsr => "key-csr",
            Action::JobSubmit => "job-submit",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::ConfigReload => "config-reload",
            Action::AuditRead => "audit-read",
            Action::Denied => "denied",
            Action::Authenticate => "authenticate",
            Action::KeysRead => "keys",
            Action::BlobRecovery => "blob-recovery",
            Action::Timestamp => "timestamp",
            Action::Other(s) => s,
        }
    }

    /// Inverse of [`Action::as_str`] (unknown names become [`Action::Other`]).
    pub fn from_name(s: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|a| a.as_str() == s)
            .unwrap_or_else(|| Action::Other(s.to_string()))
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Action::from_name(&String::deserialize(d)?))
    }
}

/// Whether the request was allowed. Hashed as `allow` / `deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }

    /// Inverse of [`Decision::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }
}

/// The content of one audit record, as the caller supplies it to [`crate::AuditLog::append`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, RFC 3339 UTC (see [`crate::time`]); supplied by the caller.
    pub time: String,
    /// Authenticated client identity (token name, certificate subject), or `anonymous`.
    pub client: String,
    /// What was attempted.
    pub action: Action,
    /// Product, if the request named one.
    #[serde(default)]
    pub product: Option<String>,
    /// Keys involved (signing keys, rotated keys).
    #[serde(default)]
    pub key_ids: Vec<KeyId>,
    /// SHA-256 of the DER certificate involved, if any.
    #[serde(default, with = "opt_hex32")]
    pub cert_sha256: Option<Hash32>,
    /// SHA-256 of the input image.
    #[serde(default, with = "opt_hex32")]
    pub input_sha256: Option<Hash32>,
    /// SHA-256 of the output (signed image or detached document).
    #[serde(default, with = "opt_hex32")]
    pub output_sha256: Option<Hash32>,
    /// Image format name.
    #[serde(default)]
    pub format: Option<String>,
    /// `embedded` or `detached`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Allowed or denied.
    pub decision: Decision,
    /// Why (the denial reason, the rotation reason...).
    #[serde(default)]
    pub reason: Option<String>,
    /// Anything else, as JSON text. The hash covers these exact bytes, so it is stored and
    /// exported verbatim; build it with [`AuditEntry::with_extra`].
    #[serde(default)]
    pub extra: Option<String>,
}

impl AuditEntry {
    /// A minimal entry; fill the optional fields directly.
    pub fn new(
        time: impl Into<String>,
        client: impl Into<String>,
        action: Action,
        decision: Decision,
    ) -> Self {
        AuditEntry {
            time: time.into(),
            client: client.into(),
            action,
            product: None,
            key_ids: Vec::new(),
            cert_sha256: None,
            input_sha256: None,
            output_sha256: None,
            format: None,
            mode: None,
            decision,
            reason: None,
            extra: None,
        }
    }

    /// Set `extra` to the compact serialisation of `v`. When `extra` already holds a JSON
    /// object and `v` is one too, `v`'s keys are added to it (replacing equal keys), so
    /// independent parts of the appliance (e.g. the authenticated identity and the operation)
    /// can each contribute their fields.
    pub fn with_extra(mut self, v: &serde_json::Value) -> Self {
        let merged = match (self.extra.as_deref(), v) {
            (Some(old), serde_json::Value::Object(add)) => {
                match serde_json::from_str::<serde_json::Value>(old) {
                    Ok(serde_json::Value::Object(mut m)) => {
                        m.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
                        Some(serde_json::Value::Object(m).to_string())
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        self.extra = Some(merged.unwrap_or_else(|| v.to_string()));
        self
    }

    /// Reject entries the store must not accept: a time that is not RFC 3339 UTC, an empty
    /// client, an `extra` that is not JSON.
    pub fn validate(&self) -> Result<(), StoreError> {
        if crate::time::utc_sort_key(&self.time).is_none() {
            return Err(StoreError::Misuse(format!(
                "audit time {:?} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.f]Z)",
                self.time
            )));
        }
        if self.client.is_empty() {
            return Err(StoreError::Misuse("audit client identity is empty".into()));
        }
        if self.action.as_str().is_empty() {
            return Err(StoreError::Misuse("audit action is empty".into()));
        }
        if let Some(x) = &self.extra {
            serde_json::from_str::<serde_json::Value>(x)
                .map_err(|e| StoreError::Misuse(format!("audit extra is not JSON: {e}")))?;
        }
        Ok(())
    }
}

/// A stored record: the entry plus its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number, 1, 2, 3... without gaps.
    pub seq: u64,
    /// Hash of record `seq - 1` ([`GENESIS_PREV_HASH`] for record 1).
    pub prev_hash: Hash32,
    /// [`record_hash`] of this record, as stored.
    pub hash: Hash32,
    /// The content.
    pub entry: AuditEntry,
}

impl AuditRecord {
    /// Recompute this record's hash from its content (not from the stored `hash`).
    pub fn computed_hash(&self) -> Hash32 {
        record_hash(self.seq, &self.prev_hash, &self.entry)
    }

    /// The record's canonical encoding v1 ([`canonical_encoding`]): leaf `seq - 1` of the
    /// log's Merkle tree.
    pub fn canonical_encoding(&self) -> Vec<u8> {
        canonical_encoding(self.seq, &self.prev_hash, &self.entry)
    }

    /// Its Merkle leaf hash, `SHA-256(0x00 ‖ canonical encoding)` (RFC 9162).
    pub fn leaf_hash(&self) -> Hash32 {
        fwseal_tlog::leaf_hash(&self.canonical_encoding())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths above 4 GiB cannot occur for values that fit in SQLite (1 GB limit); saturate
    // rather than wrap, which would make the encoding ambiguous.
    let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_opt32(out: &mut Vec<u8>, h: Option<&Hash32>) {
    match h {
        None => out.push(0),
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h);
        }
    }
}

/// The canonical encoding of a record: the exact bytes whose SHA-256 is the record hash.
///
/// ```text
/// "fwseal/audit-record/v1" 0x00
/// u64be seq ‖ prev_hash[32]
/// str(time) ‖ str(client) ‖ str(action)
/// opt_str(product)
/// u32be count ‖ count × key_id[32]
/// opt32(cert_sha256) ‖ opt32(input_sha256) ‖ opt32(output_sha256)
/// opt_str(format) ‖ opt_str(mode)
/// str(decision)
/// opt_str(reason) ‖ opt_str(extra)
///
/// str(s)      = u32be byte_length(s) ‖ UTF-8 bytes of s
/// opt_str(x)  = 0x00 if absent, else 0x01 ‖ str(x)
/// opt32(x)    = 0x00 if absent, else 0x01 ‖ 32 raw bytes
/// ```
pub fn canonical_encoding(seq: u64, prev_hash: &Hash32, e: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(RECORD_DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(prev_hash);
    put_str(&mut out, &e.time);
    put_str(&mut out, &e.client);
    put_str(&mut out, e.action.as_str());
    put_opt_str(&mut out, e.product.as_deref());
    let n = u32::try_from(e.key_ids.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for k in &e.key_ids {
        out.extend_from_slice(&k.0);
    }
    put_opt32(&mut out, e.cert_sha256.as_ref());
    put_opt32(&mut out, e.input_sha256.as_ref());
    put_opt32(&mut out, e.output_sha256.as_ref());
    put_opt_str(&mut out, e.format.as_deref());
    put_opt_str(&mut out, e.mode.as_deref());
    put_str(&mut out, e.decision.as_str());
    put_opt_str(&mut out, e.reason.as_deref());
    put_opt_str(&mut out, e.extra.as_deref());
    out
}

/// SHA-256 of [`canonical_encoding`].
pub fn record_hash(seq: u64, prev_hash: &Hash32, e: &AuditEntry) -> Hash32 {
    Sha256::digest(canonical_encoding(seq, prev_hash, e)).into()
}

/// Parse 64 hex digits.
pub fn hash_from_hex(s: &str) -> Option<Hash32> {
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

pub(crate) mod opt_hex32 {
    use super::Hash32;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Hash32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(h) => s.serialize_some(&hex::encode(h)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash32>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::hash_from_hex(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits")),
        }
    }
}

pub(crate) mod hex32 {
    use super::Hash32;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Hash32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash32, D::Error> {
        let s = String::deserialize(d)?;
        super::hash_from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod action_tests {
    use super::Action;

    /// Every action the appliance writes has a variant of its own: none is stored as `Other`,
    /// and each name reads back as the same variant.
    #[test]
    fn every_known_action_round_trips_by_name() {
        for a in Action::KNOWN {
            assert!(!matches!(a, Action::Other(_)));
            assert_eq!(Action::from_name(a.as_str()), a);
        }
        let names: std::collections::HashSet<&str> =
            Action::KNOWN.iter().map(Action::as_str).collect();
        assert_eq!(names.len(), Action::KNOWN.len(), "two actions share a name");
        for n in ["keys", "authenticate", "key-csr"] {
            assert!(names.contains(n), "{n} has no variant");
        }
        assert_eq!(
            Action::from_name("x-future"),
            Action::Other("x-future".into())
        );
    }
}
