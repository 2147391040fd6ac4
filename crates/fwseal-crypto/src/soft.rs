//! In-process software keys. For tests, fixtures and development only: production keys live in
//! an HSM (`fwseal-hsm`). Private material is zeroized on drop by the underlying crates.

use crate::alg::{Family, SigAlg};
use crate::sig::SignedMessage;
use crate::signer::Signer;
use crate::verify::{pq_spki_der, PublicKey};
use crate::CryptoError;
use p256::pkcs8::EncodePublicKey;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

enum Inner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Pq(Zeroizing<Vec<u8>>),
}

/// A software private key for one [`SigAlg`].
pub struct SoftKey {
    alg: SigAlg,
    inner: Inner,
    public: PublicKey,
}

impl std::fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftKey({}, {})", self.alg, self.public.key_id())
    }
}

impl SoftKey {
    /// Generate a fresh key. RSA keys are 3072 bits; use [`SoftKey::generate_rsa`] for others.
    pub fn generate(alg: SigAlg) -> Result<Self, CryptoError> {
        match alg {
            SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256 => Self::generate_rsa(alg, 3072),
            SigAlg::EcdsaP256Sha256 => Self::from_inner(
                alg,
                Inner::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            ),
            SigAlg::EcdsaP384Sha384 => Self::from_inner(
                alg,
                Inner::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
            ),
            _ => {
                let n = crate::pq::seed_len(alg)
                    .ok_or_else(|| CryptoError::Misuse(format!("no seed length for {alg}")))?;
                let mut seed = Zeroizing::new(vec![0u8; n]);
                OsRng.fill_bytes(&mut seed);
                Self::from_pq_seed(alg, &seed)
            }
        }
    }

    /// Generate an RSA key of `bits` for an RSA algorithm.
    pub fn generate_rsa(alg: SigAlg, bits: usize) -> Result<Self, CryptoError> {
        let k = rsa::RsaPrivateKey::new(&mut OsRng, bits)
            .map_err(|e| CryptoError::Signing(e.to_string()))?;
        Self::from_inner(alg, Inner::Rsa(Box::new(k)))
    }

    /// A post-quantum key from its seed (see [`crate::pq::seed_len`]).
    pub fn from_pq_seed(alg: SigAlg, seed: &[u8]) -> Result<Self, CryptoError> {
        Self::from_inner(alg, Inner::Pq(Zeroizing::new(seed.to_vec())))
    }

    /// Load a PKCS#8 DER private key (EC or RSA) for `alg`.
    pub fn from_pkcs8_der(alg: SigAlg, der: &[u8]) -> Result<Self, CryptoError> {
        use p256::pkcs8::DecodePrivateKey;
        let bad = |e: String| CryptoError::BadKey(e);
        let inner = match alg {
            SigAlg::EcdsaP256Sha256 => Inner::P256(
                p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
            ),
            SigAlg::EcdsaP384Sha384 => Inner::P384(
                p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
            ),
            SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256 => Inner::Rsa(Box::new(
                rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
            )),
            _ => {
                return Err(CryptoError::Misuse(format!(
                    "{alg}: load PQ keys with from_pq_seed"
                )))
            }
        };
        Self::from_inner(alg, inner)
    }

    /// PKCS#8 DER of a classical private key (to hand to stock tools in tests, e.g. `imgtool
    /// sign --key`, `sbsign --key`). Post-quantum keys return an error.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        use p256::pkcs8::EncodePrivateKey;
        let r = match &self.inner {
            Inner::P256(k) => k.to_pkcs8_der(),
            Inner::P384(k) => k.to_pkcs8_der(),
            Inner::Rsa(k) => k.to_pkcs8_der(),
            Inner::Pq(_) => return Err(CryptoError::Misuse("no PKCS#8 for PQ seeds".into())),
        };
        r.map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            .map_err(|e| CryptoError::Encoding(e.to_string()))
    }

    /// PKCS#8 PEM of a classical private key.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, CryptoError> {
        Ok(Zeroizing::new(crate::verify::pem_encode(
            "PRIVATE KEY",
            &self.to_pkcs8_der()?,
        )))
    }

    /// The RSA private key, for building certificates in tests.
    pub fn rsa(&self) -> Option<&rsa::RsaPrivateKey> {
        match &self.inner {
            Inner::Rsa(k) => Some(k),
            _ => None,
        }
    }

    fn from_inner(alg: SigAlg, inner: Inner) -> Result<Self, CryptoError> {
        let enc = |e: String| CryptoError::Encoding(e);
        let spki = match (&inner, alg) {
            (Inner::P256(k), SigAlg::EcdsaP256Sha256) => k
                .verifying_key()
                .to_public_key_der()
                .map_err(|e| enc(e.to_string()))?
                .into_vec(),
            (Inner::P384(k), SigAlg::EcdsaP384Sha384) => k
                .verifying_key()
                .to_public_key_der()
                .map_err(|e| enc(e.to_string()))?
                .into_vec(),
            (Inner::Rsa(k), SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256) => k
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| enc(e.to_string()))?
                .into_vec(),
            (Inner::Pq(seed), a) if a.family() == Family::PostQuantum => {
                pq_spki_der(a, &crate::pq::public_from_seed(a, seed)?)?
            }
            _ => {
                return Err(CryptoError::Misuse(format!(
                    "key material does not match {alg}"
                )))
            }
        };
        let public = PublicKey::from_spki_der(alg, &spki)?;
        Ok(SoftKey { alg, inner, public })
    }
}

impl Signer for SoftKey {
    fn alg(&self) -> SigAlg {
        self.alg
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_raw(&self, msg: &SignedMessage) -> Result<Vec<u8>, CryptoError> {
        use signature::hazmat::PrehashSigner;
        let fail = |e: String| CryptoError::Signing(format!("{}: {e}", self.alg));
        match &self.inner {
            Inner::P256(k) => {
                let h = msg.classical_hash(self.alg)?;
                let s: p256::ecdsa::Signature =
                    k.sign_prehash(&h).map_err(|e| fail(e.to_string()))?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            Inner::P384(k) => {
                let h = msg.classical_hash(self.alg)?;
                let s: p384::ecdsa::Signature =
                    k.sign_prehash(&h).map_err(|e| fail(e.to_string()))?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            Inner::Rsa(k) => {
                let h = msg.classical_hash(self.alg)?;
                match self.alg {
                    SigAlg::RsaPssSha256 => k
                        .sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<sha2::Sha256>(32), &h)
                        .map_err(|e| fail(e.to_string())),
                    _ => k
                        .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &h)
                        .map_err(|e| fail(e.to_string())),
                }
            }
            Inner::Pq(seed) => {
                let SignedMessage::Bytes(m) = msg else {
                    return Err(CryptoError::Misuse(format!(
                        "{} signs message bytes, not a prehash",
                        self.alg
                    )));
                };
                crate::pq::sign(self.alg, seed, m)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_rejects_tampering() {
        for alg in SigAlg::ALL {
            let key = if matches!(alg, SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256) {
                SoftKey::generate_rsa(alg, 2048).expect("rsa")
            } else {
                SoftKey::generate(alg).expect("gen")
            };
            let msg = SignedMessage::Bytes(b"fwseal test message".to_vec());
            let sig = key.sign(&msg).expect("sign");
            if let Some(n) = alg.fixed_signature_len() {
                assert_eq!(sig.bytes.len(), n, "{alg}");
            }
            key.public_key().verify(&msg, &sig).expect("verify");
            let other = SignedMessage::Bytes(b"fwseal test messagE".to_vec());
            assert!(
                key.public_key().verify(&other, &sig).is_err(),
                "{alg} accepted a wrong message"
            );
            let mut bad = sig.clone();
            let mid = bad.bytes.len() / 2;
            bad.bytes[mid] ^= 1;
            assert!(
                key.public_key().verify(&msg, &bad).is_err(),
                "{alg} accepted a flipped bit"
            );
        }
    }

    #[test]
    fn prehashed_equals_bytes_for_classical() {
        let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("gen");
        let m = b"image".to_vec();
        let sig = key.sign(&SignedMessage::Bytes(m.clone())).expect("sign");
        let pre = SignedMessage::Prehashed {
            alg: crate::DigestAlg::Sha256,
            digest: crate::DigestAlg::Sha256.hash(&m),
        };
        key.public_key()
            .verify(&pre, &sig)
            .expect("prehash verifies");
        let wrong = SignedMessage::Prehashed {
            alg: crate::DigestAlg::Sha512,
            digest: crate::DigestAlg::Sha512.hash(&m),
        };
        assert!(matches!(key.sign(&wrong), Err(CryptoError::Misuse(_))));
    }

    #[test]
    fn pq_seed_is_deterministic() {
        let seed = [7u8; 32];
        let a = SoftKey::from_pq_seed(SigAlg::MlDsa65, &seed).expect("a");
        let b = SoftKey::from_pq_seed(SigAlg::MlDsa65, &seed).expect("b");
        assert_eq!(a.key_id(), b.key_id());
        assert!(SoftKey::from_pq_seed(SigAlg::MlDsa65, &[0u8; 31]).is_err());
    }
}
