//! Pluggable in-process post-quantum backends, in the spirit of rustls's `CryptoProvider`.
//!
//! A [`PqProvider`] does the post-quantum work that happens in process memory: signing from a
//! seed (the HSM's wrapped-seed mode, see `fwseal-hsm`), deriving the public key from a seed, and
//! verification. Providers are plain values passed by reference; there is no global registry.
//!
//! - [`RustCrypto`] (RustCrypto `ml-dsa` + `slh-dsa`, pure Rust) implements every post-quantum
//!   algorithm and is always compiled: it is the fallback, and the only SLH-DSA implementation.
//! - `AwsLc` (cargo feature `aws-lc`, on by default) implements ML-DSA-44/65/87 with aws-lc-rs
//!   (AWS-LC's C implementation). It reports `supports() == false` for SLH-DSA.
//! - [`default_provider`] routes each call by algorithm to [`provider_for`]: ML-DSA to `AwsLc`
//!   when the feature is on, everything else to [`RustCrypto`].
//!
//! Both ML-DSA providers produce FIPS 204 pure-mode, empty-context signatures of the same
//! encoding, and each verifies the other's (`tests/providers.rs`). They differ in one respect:
//! [`RustCrypto`] signs deterministically (equal seed and message give equal signatures) while
//! AWS-LC signs hedged (fresh randomness per signature), so equal inputs give different, equally
//! valid signatures. Nothing in fwseal relies on ML-DSA signatures being reproducible.
//!
//! ```
//! use fwseal_crypto::provider::{default_provider, PqProvider};
//! use fwseal_crypto::SigAlg;
//! let p = default_provider();
//! let seed = [7u8; 32];
//! let pk = p.public_from_seed(SigAlg::MlDsa44, &seed).unwrap();
//! let sig = p.sign_from_seed(SigAlg::MlDsa44, &seed, b"msg", &pk).unwrap();
//! p.verify(SigAlg::MlDsa44, &pk, b"msg", &sig).unwrap();
//! ```

use crate::alg::SigAlg;
use crate::CryptoError;
use ml_dsa::signature::Keypair as _;

/// In-process post-quantum operations over seeds (pure mode, empty context).
pub trait PqProvider: Send + Sync + std::fmt::Debug {
    /// Short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// Whether this provider implements `alg`.
    fn supports(&self, alg: SigAlg) -> bool;
    /// The raw (FIPS 204/205 encoded) public key derived from `seed`
    /// (length [`crate::pq::seed_len`]).
    fn public_from_seed(&self, alg: SigAlg, seed: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Expand `seed` once, check that the derived public key equals `expected_public` (the
    /// pinned key), and only then sign `msg`. A mismatch is [`CryptoError::BadKey`] and nothing
    /// is signed. The caller owns and zeroizes `seed`; the expanded key is zeroized on drop by
    /// the underlying crates.
    fn sign_from_seed(
        &self,
        alg: SigAlg,
        seed: &[u8],
        msg: &[u8],
        expected_public: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Verify a signature with a raw public key.
    fn verify(&self, alg: SigAlg, public: &[u8], msg: &[u8], sig: &[u8])
        -> Result<(), CryptoError>;
}

/// The pure-Rust provider (RustCrypto `ml-dsa` 0.1, `slh-dsa` 0.2). Deterministic signing:
/// equal seed and message give equal signatures.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

/// The fastest compiled-in provider that implements `alg`: `AwsLc` for ML-DSA when the `aws-lc`
/// feature is on, [`RustCrypto`] otherwise.
pub fn provider_for(alg: SigAlg) -> &'static dyn PqProvider {
    #[cfg(feature = "aws-lc")]
    if AwsLc.supports(alg) {
        return &AwsLc;
    }
    let _ = alg;
    &RustCrypto
}

/// The provider used when the caller does not choose one: routes each call by algorithm to
/// [`provider_for`].
pub fn default_provider() -> &'static dyn PqProvider {
    &Routed
}

/// Routes every operation to [`provider_for`] its algorithm.
#[derive(Clone, Copy, Debug)]
struct Routed;

impl PqProvider for Routed {
    fn name(&self) -> &'static str {
        if cfg!(feature = "aws-lc") {
            "aws-lc-rs (ML-DSA) + rustcrypto (SLH-DSA)"
        } else {
            "rustcrypto"
        }
    }

    fn supports(&self, alg: SigAlg) -> bool {
        provider_for(alg).supports(alg)
    }

    fn public_from_seed(&self, alg: SigAlg, seed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        provider_for(alg).public_from_seed(alg, seed)
    }

    fn sign_from_seed(
        &self,
        alg: SigAlg,
        seed: &[u8],
        msg: &[u8],
        expected_public: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        provider_for(alg).sign_from_seed(alg, seed, msg, expected_public)
    }

    fn verify(
        &self,
        alg: SigAlg,
        public: &[u8],
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        provider_for(alg).verify(alg, public, msg, sig)
    }
}

fn mismatch(alg: SigAlg) -> CryptoError {
    CryptoError::BadKey(format!(
        "{alg}: public key derived from the seed does not match the pinned public key"
    ))
}

fn seed_len_ok(alg: SigAlg, seed: &[u8]) -> Result<(), CryptoError> {
    match crate::pq::seed_len(alg) {
        Some(n) if n == seed.len() => Ok(()),
        Some(n) => Err(CryptoError::Misuse(format!(
            "{alg} seed must be {n} bytes, got {}",
            seed.len()
        ))),
        None => Err(CryptoError::Misuse(format!("{alg} is not post-quantum"))),
    }
}

macro_rules! ml_dsa_sign_checked {
    ($p:ty, $alg:expr, $seed:expr, $msg:expr, $expected:expr) => {{
        use ml_dsa::signature::Signer as _;
        let s: &ml_dsa::Seed = $seed
            .try_into()
            .map_err(|_| CryptoError::Misuse(format!("wrong seed length for {}", $alg)))?;
        let sk = ml_dsa::SigningKey::<$p>::from_seed(s);
        if sk.verifying_key().encode().as_slice() != $expected {
            return Err(mismatch($alg));
        }
        sk.try_sign($msg)
            .map_err(|_| CryptoError::Signing(format!("{} signing failed", $alg)))?
            .encode()
            .to_vec()
    }};
}

macro_rules! slh_sign_checked {
    ($p:ty, $alg:expr, $seed:expr, $msg:expr, $expected:expr) => {{
        let n = $seed.len() / 3;
        let (a, rest) = $seed.split_at(n);
        let (b, c) = rest.split_at(n);
        let sk = slh_dsa::SigningKey::<$p>::slh_keygen_internal(a, b, c);
        if sk.verifying_key().to_vec().as_slice() != $expected {
            return Err(mismatch($alg));
        }
        sk.try_sign_with_context($msg, &[], None)
            .map_err(|_| CryptoError::Signing(format!("{} signing failed", $alg)))?
            .to_vec()
    }};
}

impl PqProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn supports(&self, alg: SigAlg) -> bool {
        crate::pq::seed_len(alg).is_some()
    }

    fn public_from_seed(&self, alg: SigAlg, seed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seed_len_ok(alg, seed)?;
        crate::pq::public_from_seed(alg, seed)
    }

    fn sign_from_seed(
        &self,
        alg: SigAlg,
        seed: &[u8],
        msg: &[u8],
        expected_public: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seed_len_ok(alg, seed)?;
        Ok(match alg {
            SigAlg::MlDsa44 => {
                ml_dsa_sign_checked!(ml_dsa::MlDsa44, alg, seed, msg, expected_public)
            }
            SigAlg::MlDsa65 => {
                ml_dsa_sign_checked!(ml_dsa::MlDsa65, alg, seed, msg, expected_public)
            }
            SigAlg::MlDsa87 => {
                ml_dsa_sign_checked!(ml_dsa::MlDsa87, alg, seed, msg, expected_public)
            }
            SigAlg::SlhDsaSha2_128s => {
                slh_sign_checked!(slh_dsa::Sha2_128s, alg, seed, msg, expected_public)
            }
            SigAlg::SlhDsaSha2_128f => {
                slh_sign_checked!(slh_dsa::Sha2_128f, alg, seed, msg, expected_public)
            }
            SigAlg::SlhDsaSha2_192s => {
                slh_sign_checked!(slh_dsa::Sha2_192s, alg, seed, msg, expected_public)
            }
            SigAlg::SlhDsaSha2_256s => {
                slh_sign_checked!(slh_dsa::Sha2_256s, alg, seed, msg, expected_public)
            }
            _ => return Err(CryptoError::Misuse(format!("{alg} is not post-quantum"))),
        })
    }

    fn verify(
        &self,
        alg: SigAlg,
        public: &[u8],
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        crate::pq::verify(alg, public, msg, sig)
    }
}

#[cfg(feature = "aws-lc")]
pub use aws::AwsLc;

#[cfg(feature = "aws-lc")]
mod aws {
    use super::{mismatch, seed_len_ok, PqProvider};
    use crate::alg::SigAlg;
    use crate::CryptoError;
    use aws_lc_rs::signature::{self as sig, KeyPair as _, PqdsaKeyPair, VerificationAlgorithm};

    /// ML-DSA-44/65/87 from AWS-LC via aws-lc-rs (`signature::PqdsaKeyPair`): pure mode, empty
    /// context, hedged signing. SLH-DSA is not implemented (`supports` is false; use
    /// [`super::provider_for`] or [`super::default_provider`]).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct AwsLc;

    type Algs = (
        &'static sig::PqdsaSigningAlgorithm,
        &'static sig::PqdsaVerificationAlgorithm,
    );

    fn algs(alg: SigAlg) -> Result<Algs, CryptoError> {
        match alg {
            SigAlg::MlDsa44 => Ok((&sig::ML_DSA_44_SIGNING, &sig::ML_DSA_44)),
            SigAlg::MlDsa65 => Ok((&sig::ML_DSA_65_SIGNING, &sig::ML_DSA_65)),
            SigAlg::MlDsa87 => Ok((&sig::ML_DSA_87_SIGNING, &sig::ML_DSA_87)),
            _ => Err(CryptoError::Misuse(format!(
                "{alg} is not implemented by the aws-lc-rs provider"
            ))),
        }
    }

    fn key_pair(alg: SigAlg, seed: &[u8]) -> Result<PqdsaKeyPair, CryptoError> {
        seed_len_ok(alg, seed)?;
        let (signing, _) = algs(alg)?;
        PqdsaKeyPair::from_seed(signing, seed)
            .map_err(|e| CryptoError::BadKey(format!("{alg} seed rejected by aws-lc-rs: {e}")))
    }

    impl PqProvider for AwsLc {
        fn name(&self) -> &'static str {
            "aws-lc-rs"
        }

        fn supports(&self, alg: SigAlg) -> bool {
            algs(alg).is_ok()
        }

        fn public_from_seed(&self, alg: SigAlg, seed: &[u8]) -> Result<Vec<u8>, CryptoError> {
            Ok(key_pair(alg, seed)?.public_key().as_ref().to_vec())
        }

        fn sign_from_seed(
            &self,
            alg: SigAlg,
            seed: &[u8],
            msg: &[u8],
            expected_public: &[u8],
        ) -> Result<Vec<u8>, CryptoError> {
            let kp = key_pair(alg, seed)?;
            if kp.public_key().as_ref() != expected_public {
                return Err(mismatch(alg));
            }
            let mut out = vec![0u8; kp.algorithm().signature_len()];
            let n = kp
                .sign(msg, &mut out)
                .map_err(|_| CryptoError::Signing(format!("{alg} signing failed (aws-lc-rs)")))?;
            out.truncate(n);
            Ok(out)
        }

        fn verify(
            &self,
            alg: SigAlg,
            public: &[u8],
            msg: &[u8],
            signature: &[u8],
        ) -> Result<(), CryptoError> {
            let (_, verification) = algs(alg)?;
            verification
                .verify_sig(public, msg, signature)
                .map_err(|_| CryptoError::BadSignature(format!("{alg} signature does not verify")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_from_seed_matches_pq_sign_and_checks_the_pin() {
        let p = default_provider();
        for alg in [SigAlg::MlDsa44, SigAlg::MlDsa65, SigAlg::SlhDsaSha2_128s] {
            let n = crate::pq::seed_len(alg).expect("pq");
            let seed = vec![0x42u8; n];
            let pk = p.public_from_seed(alg, &seed).expect("pk");
            let sig = p.sign_from_seed(alg, &seed, b"m", &pk).expect("sign");
            crate::pq::verify(alg, &pk, b"m", &sig).expect("pq verify");
            if provider_for(alg).name() == "rustcrypto" {
                assert_eq!(
                    sig,
                    crate::pq::sign(alg, &seed, b"m").expect("pq sign"),
                    "{alg}"
                );
            }
            p.verify(alg, &pk, b"m", &sig).expect("verify");
            assert!(p.verify(alg, &pk, b"n", &sig).is_err());
            let other = p.public_from_seed(alg, &vec![0x43u8; n]).expect("other");
            assert!(matches!(
                p.sign_from_seed(alg, &seed, b"m", &other),
                Err(CryptoError::BadKey(_))
            ));
            assert!(matches!(
                p.sign_from_seed(alg, &seed[1..], b"m", &pk),
                Err(CryptoError::Misuse(_))
            ));
        }
        assert!(!p.supports(SigAlg::EcdsaP256Sha256));
        assert!(p.supports(SigAlg::SlhDsaSha2_128s));
        assert_eq!(provider_for(SigAlg::SlhDsaSha2_128s).name(), "rustcrypto");
        #[cfg(feature = "aws-lc")]
        assert_eq!(provider_for(SigAlg::MlDsa65).name(), "aws-lc-rs");
    }
}
