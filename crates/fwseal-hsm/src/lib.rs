//! fwseal-hsm: the only fwseal crate that links PKCS#11 (`cryptoki`).
//!
//! It opens a PKCS#11 module by path and a token by label ([`Token`]), or creates a SoftHSM2
//! development token under a state directory ([`softhsm::DevToken`]); generates per-product keys
//! inside the token ([`keys`]); and signs through [`HsmSigner`], which implements
//! [`fwseal_crypto::Signer`]. Post-quantum keys are held as seeds wrapped under a per-product
//! AES-256 KEK when the token has no ML-DSA/SLH-DSA (see the crate README for exactly what
//! touches process memory). No async, no HTTP: callers keep HSM calls off async worker threads
//! (`spawn_blocking`).
//!
//! ```no_run
//! use fwseal_hsm::{keys, softhsm::DevToken, HsmSigner, ProductId, Token};
//! use fwseal_crypto::{SigAlg, SignedMessage, Signer};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = DevToken::new("/var/lib/fwseal").ensure()?;
//! let token = Token::open(&cfg)?;
//! let product = ProductId::new("widget")?;
//! keys::create_classical(&token, &product, 1, SigAlg::EcdsaP256Sha256, keys::ClassicalKind::P256)?;
//! let signer = HsmSigner::open(&token, &product, 1, SigAlg::EcdsaP256Sha256)?;
//! let msg = SignedMessage::Bytes(b"image".to_vec());
//! signer.public_key().verify(&msg, &signer.sign(&msg)?)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod keys;
mod pin;
mod pubkey;
mod signer;
pub mod softhsm;
pub mod token;

pub use error::HsmError;
pub use keys::{ClassicalKind, PqMode, ProductId, Role};
pub use pin::{Pin, PinSource};
pub use signer::HsmSigner;
pub use token::{Health, Token, TokenConfig};

/// The cryptoki version this crate is built against, re-exported for administration code and
/// tests that need raw PKCS#11 access through [`Token::with_session`].
pub use cryptoki;
