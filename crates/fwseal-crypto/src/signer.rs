//! The signing interface the format engine and the appliance program against.

use crate::alg::SigAlg;
use crate::sig::{KeyId, Signature, SignedMessage};
use crate::verify::PublicKey;
use crate::CryptoError;

/// Something that holds one private key and signs [`SignedMessage`]s with it.
///
/// Implementations: [`crate::soft::SoftKey`] (in-process, tests and development) and the HSM
/// backend in `fwseal-hsm`. ECDSA output is always DER, whatever the backend produces natively.
pub trait Signer: Send + Sync {
    /// The algorithm this key signs with.
    fn alg(&self) -> SigAlg;
    /// The public half.
    fn public_key(&self) -> &PublicKey;
    /// Sign one message.
    fn sign_raw(&self, msg: &SignedMessage) -> Result<Vec<u8>, CryptoError>;

    /// Key id (SHA-256 of SPKI DER).
    fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// Sign and wrap into a [`Signature`].
    fn sign(&self, msg: &SignedMessage) -> Result<Signature, CryptoError> {
        Ok(Signature {
            alg: self.alg(),
            key_id: self.key_id(),
            bytes: self.sign_raw(msg)?,
        })
    }
}
