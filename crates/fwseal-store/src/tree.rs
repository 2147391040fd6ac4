//! The audit log's Merkle tree (RFC 9162) and its signed tree heads (C2SP signed notes).
//!
//! Leaf `i` (0-based) is the canonical encoding v1 of record `seq = i + 1`
//! ([`crate::record::canonical_encoding`]); the tree size is the number of records. A backend
//! stores every leaf hash and every complete, aligned subtree hash, keyed by
//! `(level, index)` (level 0 = leaf hashes), and serves them through
//! [`crate::AuditLog::tree_hash`]; roots and proofs are then `O(log² n)` lookups
//! ([`fwseal_tlog::merkle`]). [`append_nodes`] is the one rule for which nodes a new leaf
//! completes, so every backend stores the same set.
//!
//! Tree heads are signed by the appliance's provenance keys through [`fwseal_crypto::Signer`]
//! (the HSM in production): ECDSA P-256 as note type `0x02`, ML-DSA-65 as fwseal type `0xff`
//! (`formats/log.md` §5). Both key names are the log's origin.

use crate::checkpoint::TrustedKeys;
use crate::record::Hash32;
use crate::{AuditLog, StoreError};
use fwseal_crypto::{PublicKey, SigAlg, SignedMessage, Signer};
use fwseal_tlog::merkle::SourceError;
use fwseal_tlog::note::{self, NoteError, NoteSigner, SigType, VerifierKey};
use fwseal_tlog::HashSource;

pub use fwseal_tlog::Checkpoint as TreeHead;

/// The origin (log identity, and note key name) used when the configuration names none:
/// `fwseal.invalid/audit/<first 16 hex digits of the classical provenance key's id>`.
/// Stable for as long as the appliance keeps its provenance key.
pub fn default_origin(classical: &PublicKey) -> String {
    let hex = classical.key_id().to_hex();
    format!("fwseal.invalid/audit/{}", hex.get(..16).unwrap_or(&hex))
}

/// Whether `origin` can be a log origin: a valid note key name (non-empty, no white space,
/// no `+`), at most 256 bytes.
pub fn valid_origin(origin: &str) -> bool {
    origin.len() <= 256 && note::valid_key_name(origin)
}

/// Which nodes leaf `index` (with leaf hash `leaf`) completes: calls `get(level, index)` for
/// the left siblings it needs and returns every `(level, index, hash)` to store, the leaf
/// itself first. After leaf `i` is appended, every complete aligned subtree of the first
/// `i + 1` leaves is stored.
pub fn append_nodes<E>(
    index: u64,
    leaf: Hash32,
    mut get: impl FnMut(u32, u64) -> Result<Hash32, E>,
) -> Result<Vec<(u32, u64, Hash32)>, E> {
    let mut out = vec![(0u32, index, leaf)];
    let (mut level, mut i, mut h) = (0u32, index, leaf);
    while i & 1 == 1 {
        let left = get(level, i - 1)?;
        h = fwseal_tlog::node_hash(&left, &h);
        level += 1;
        i >>= 1;
        out.push((level, i, h));
    }
    Ok(out)
}

/// [`HashSource`] over a log's stored tree, of a fixed size.
pub(crate) struct LogSource<'a, L: AuditLog + ?Sized> {
    pub log: &'a L,
    pub size: u64,
}

impl<L: AuditLog + ?Sized> HashSource for LogSource<'_, L> {
    fn size(&self) -> u64 {
        self.size
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash32, SourceError> {
        match self.log.tree_hash(0, index) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(format!("tree leaf {index} is not stored").into()),
            Err(e) => Err(Box::new(e)),
        }
    }

    fn complete_subtree(&self, level: u32, index: u64) -> Result<Option<Hash32>, SourceError> {
        self.log
            .tree_hash(level, index)
            .map_err(|e| Box::new(e) as SourceError)
    }
}

/// A provenance key as a note signer: the note text is signed as
/// [`SignedMessage::Bytes`] (ECDSA: SHA-256, DER; ML-DSA-65: pure, empty context), which is
/// exactly what note types `0x02` and fwseal's ML-DSA-65 type sign.
pub struct ProvenanceNoteSigner<'a> {
    name: String,
    key_id: u32,
    sig_type: SigType,
    signer: &'a dyn Signer,
}

impl<'a> ProvenanceNoteSigner<'a> {
    /// Wrap `signer` (ECDSA P-256 or ML-DSA-65) under the key name `name`.
    pub fn new(name: &str, signer: &'a dyn Signer) -> Result<Self, StoreError> {
        let key = verifier_key(name, signer.public_key())?;
        Ok(ProvenanceNoteSigner {
            name: name.to_owned(),
            key_id: key.key_id(),
            sig_type: key.sig_type(),
            signer,
        })
    }
}

impl NoteSigner for ProvenanceNoteSigner<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.key_id
    }
    fn sig_type(&self) -> SigType {
        self.sig_type
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        self.signer
            .sign_raw(&SignedMessage::Bytes(text.to_vec()))
            .map_err(|e| NoteError::Signer {
                name: self.name.clone(),
                reason: e.to_string(),
            })
    }
}

/// The note verifier key of a provenance public key under the key name `name`.
pub fn verifier_key(name: &str, key: &PublicKey) -> Result<VerifierKey, StoreError> {
    let r = match key.alg() {
        SigAlg::EcdsaP256Sha256 => VerifierKey::ecdsa_p256(name, key.spki_der()),
        SigAlg::MlDsa65 => {
            let raw = key.raw()?;
            VerifierKey::ml_dsa_65(name, &raw)
        }
        other => {
            return Err(StoreError::Misuse(format!(
                "tree heads are signed with ECDSA P-256 and ML-DSA-65, not {other}"
            )))
        }
    };
    r.map_err(|e| StoreError::Misuse(format!("tree head key: {e}")))
}

/// Sign the tree head `(origin, size, root)` with both provenance keys: the whole note.
pub fn sign_tree_head(
    origin: &str,
    size: u64,
    root: &Hash32,
    classical: &dyn Signer,
    pq: &dyn Signer,
) -> Result<String, StoreError> {
    if !valid_origin(origin) {
        return Err(StoreError::Misuse(format!("invalid log origin {origin:?}")));
    }
    let c = ProvenanceNoteSigner::new(origin, classical)?;
    let p = ProvenanceNoteSigner::new(origin, pq)?;
    fwseal_tlog::sign_checkpoint(origin, size, root, &[&c, &p])
        .map_err(|e| StoreError::Misuse(format!("signing the tree head: {e}")))
}

/// The note trust of `keys` for the log `origin`: every ECDSA P-256 and ML-DSA-65 key under
/// the key name `origin` (other algorithms cannot sign notes and are skipped), with the same
/// both-halves rule.
pub fn note_trust(origin: &str, keys: &TrustedKeys) -> fwseal_tlog::TrustedKeys {
    let vks = keys
        .keys
        .iter()
        .filter_map(|k| verifier_key(origin, k).ok())
        .collect();
    let mut t = fwseal_tlog::TrustedKeys::new(origin, vks);
    t.require_hybrid = keys.require_hybrid;
    t
}

/// The origin a note claims (its first line), read before any signature is checked: the
/// store's verifier trusts the provenance keys for whatever origin the appliance used, and
/// the key names on the signature lines must be that origin.
pub fn claimed_origin(note_text: &str) -> Result<String, String> {
    let parsed = note::parse(note_text.as_bytes()).map_err(|e| e.to_string())?;
    let cp = TreeHead::parse(parsed.text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(cp.origin)
}

/// Verify a stored tree head against `keys` (both halves by default); returns its body.
pub fn verify_tree_head(note_text: &str, keys: &TrustedKeys) -> Result<TreeHead, String> {
    let origin = claimed_origin(note_text)?;
    fwseal_tlog::verify_checkpoint(note_text, &note_trust(&origin, keys)).map_err(|e| e.to_string())
}
