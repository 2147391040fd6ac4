//! fwseal-crypto: algorithm ids, signature sets, key ids, the [`Signer`] interface and
//! verification for every algorithm fwseal uses. No HSM, no I/O.
//!
//! ```
//! use fwseal_crypto::{soft::SoftKey, SigAlg, SignedMessage, Signer};
//! let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
//! let msg = SignedMessage::Bytes(b"hello".to_vec());
//! let sig = key.sign(&msg).unwrap();
//! key.public_key().verify(&msg, &sig).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alg;
pub mod cert;
pub mod parallel;
pub mod pq;
pub mod provider;
pub mod sig;
pub mod signer;
#[cfg(feature = "soft-signer")]
pub mod soft;
pub mod verify;

pub use alg::{DigestAlg, Digests, Family, Hasher, MultiHasher, SigAlg};
pub use parallel::{digest_parts, ParallelStates, PARALLEL_UPDATE_MIN};
pub use sig::{KeyId, SigTimestamp, Signature, SignatureSet, SignedMessage};
pub use signer::Signer;
pub use verify::PublicKey;

/// Errors from this crate. `Misuse` is a programming error (wrong algorithm for a key, a
/// prehash of the wrong length); the others are about the data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The caller combined things that cannot go together.
    #[error("API misuse: {0}")]
    Misuse(String),
    /// A public or private key is malformed or of the wrong type.
    #[error("bad key: {0}")]
    BadKey(String),
    /// A signature is malformed or does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The signing backend failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// DER/PEM encoding failed.
    #[error("encoding: {0}")]
    Encoding(String),
}
