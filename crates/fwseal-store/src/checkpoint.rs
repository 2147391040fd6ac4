//! Signed checkpoints: the appliance's provenance keys sign (seq, head hash).

use crate::record::{hex32, Hash32};
use crate::StoreError;
use fwseal_crypto::{Family, PublicKey, Signature, SignedMessage, Signer};
use serde::{Deserialize, Serialize};

/// Domain separator that starts every checkpoint message.
pub const CHECKPOINT_DOMAIN: &[u8] = b"fwseal/audit-checkpoint/v1\0";

/// The bytes each checkpoint signature signs:
/// `"fwseal/audit-checkpoint/v1" 0x00 ‖ u64be seq ‖ head_hash[32]` (67 bytes).
///
/// It is signed as [`SignedMessage::Bytes`]: ECDSA P-256 signs SHA-256 of these bytes (DER
/// signature); ML-DSA-65 signs these bytes as M, pure mode, empty context.
pub fn checkpoint_message(seq: u64, head_hash: &Hash32) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 32);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(head_hash);
    m
}

/// A signed statement "the log's record `seq` has hash `head_hash`". `seq` 0 (an empty log)
/// has head [`crate::GENESIS_PREV_HASH`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Sequence number of the last record covered.
    pub seq: u64,
    /// Stored hash of that record.
    #[serde(with = "hex32")]
    pub head_hash: Hash32,
    /// One signature per provenance key (classical and post-quantum).
    pub signatures: Vec<Signature>,
    /// The signed tree head over the same size (= `seq`) and the Merkle root of records
    /// `1..=seq`: a C2SP signed note (`formats/log.md`), signed by the same two keys. Absent
    /// on checkpoints made before the log had a tree (schema < 5, older exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Checkpoint {
    /// Sign `(seq, head_hash)` with every signer given.
    pub fn sign(seq: u64, head_hash: Hash32, signers: &[&dyn Signer]) -> Result<Self, StoreError> {
        let msg = SignedMessage::Bytes(checkpoint_message(seq, &head_hash));
        let signatures = signers
            .iter()
            .map(|s| s.sign(&msg))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            seq,
            head_hash,
            signatures,
            note: None,
        })
    }

    /// The message the signatures sign.
    pub fn message(&self) -> Vec<u8> {
        checkpoint_message(self.seq, &self.head_hash)
    }

    /// Check the signatures against `keys`: every signature must name a trusted key, match its
    /// algorithm and verify; and the set must include one classical and one post-quantum
    /// signature unless [`TrustedKeys::require_hybrid`] is off.
    pub fn verify_signatures(&self, keys: &TrustedKeys) -> Result<(), String> {
        if self.signatures.is_empty() {
            return Err("checkpoint has no signatures".into());
        }
        let msg = SignedMessage::Bytes(self.message());
        let (mut classical, mut pq) = (false, false);
        for sig in &self.signatures {
            let key = keys
                .keys
                .iter()
                .find(|k| k.key_id() == sig.key_id)
                .ok_or_else(|| format!("signature by untrusted key {}", sig.key_id))?;
            key.verify(&msg, sig)
                .map_err(|e| format!("signature by key {}: {e}", sig.key_id))?;
            match sig.alg.family() {
                Family::Classical => classical = true,
                Family::PostQuantum => pq = true,
            }
        }
        if keys.require_hybrid && !(classical && pq) {
            return Err("checkpoint lacks a classical or a post-quantum signature".into());
        }
        Ok(())
    }
}

/// The public keys checkpoints must be signed with (the appliance's provenance keys).
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    /// Trusted keys.
    pub keys: Vec<PublicKey>,
    /// Require a classical and a post-quantum signature on every checkpoint (default: true).
    pub require_hybrid: bool,
}

impl TrustedKeys {
    /// Trust these keys; require hybrid checkpoints.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        TrustedKeys {
            keys,
            require_hybrid: true,
        }
    }
}
