//! Public keys and signature verification for every [`SigAlg`].

use crate::alg::{Family, SigAlg};
use crate::sig::{KeyId, Signature, SignedMessage};
use crate::CryptoError;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};

/// OIDs of the NIST post-quantum signature algorithms (CSOR, `2.16.840.1.101.3.4.3.x`).
pub fn pq_oid(alg: SigAlg) -> Option<ObjectIdentifier> {
    let arc = match alg {
        SigAlg::MlDsa44 => "2.16.840.1.101.3.4.3.17",
        SigAlg::MlDsa65 => "2.16.840.1.101.3.4.3.18",
        SigAlg::MlDsa87 => "2.16.840.1.101.3.4.3.19",
        SigAlg::SlhDsaSha2_128s => "2.16.840.1.101.3.4.3.20",
        SigAlg::SlhDsaSha2_128f => "2.16.840.1.101.3.4.3.21",
        SigAlg::SlhDsaSha2_192s => "2.16.840.1.101.3.4.3.22",
        SigAlg::SlhDsaSha2_256s => "2.16.840.1.101.3.4.3.24",
        _ => return None,
    };
    ObjectIdentifier::new(arc).ok()
}

/// DER SubjectPublicKeyInfo for a raw post-quantum public key (RFC 9881 / draft SLH-DSA
/// certificates: the algorithm identifier has absent parameters).
pub fn pq_spki_der(alg: SigAlg, raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let oid =
        pq_oid(alg).ok_or_else(|| CryptoError::Misuse(format!("{alg} is not post-quantum")))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        },
        subject_public_key: der::asn1::BitString::from_bytes(raw)
            .map_err(|e| CryptoError::Encoding(e.to_string()))?,
    };
    spki.to_der()
        .map_err(|e| CryptoError::Encoding(e.to_string()))
}

/// A public key bound to the algorithm it verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    alg: SigAlg,
    spki: Vec<u8>,
}

impl PublicKey {
    /// Wrap a DER SubjectPublicKeyInfo, checking it parses as a key for `alg`.
    pub fn from_spki_der(alg: SigAlg, spki: &[u8]) -> Result<Self, CryptoError> {
        let pk = PublicKey {
            alg,
            spki: spki.to_vec(),
        };
        // Parse once now so that a wrong key type fails here, not at verify time.
        pk.check_parses()?;
        Ok(pk)
    }

    /// Parse a PEM `PUBLIC KEY` block.
    pub fn from_spki_pem(alg: SigAlg, pem: &str) -> Result<Self, CryptoError> {
        let (label, der) = spki_pem_decode(pem)?;
        if label != "PUBLIC KEY" {
            return Err(CryptoError::BadKey(format!(
                "expected a PEM PUBLIC KEY block, found {label}"
            )));
        }
        Self::from_spki_der(alg, &der)
    }

    /// Algorithm.
    pub fn alg(&self) -> SigAlg {
        self.alg
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// PEM SubjectPublicKeyInfo.
    pub fn spki_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki)
    }

    /// SHA-256 of the SPKI DER.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_spki(&self.spki)
    }

    /// The raw public key bytes inside the SPKI (PQ: the FIPS 204/205 encoding; EC: the SEC1
    /// point; RSA: the PKCS#1 RSAPublicKey).
    pub fn raw(&self) -> Result<Vec<u8>, CryptoError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(&self.spki)
            .map_err(|e| CryptoError::BadKey(format!("SubjectPublicKeyInfo: {e}")))?;
        spki.subject_public_key
            .as_bytes()
            .map(|b| b.to_vec())
            .ok_or_else(|| CryptoError::BadKey("public key bit string has unused bits".into()))
    }

    fn pq_raw(&self) -> Result<Vec<u8>, CryptoError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(&self.spki)
            .map_err(|e| CryptoError::BadKey(format!("SubjectPublicKeyInfo: {e}")))?;
        if Some(spki.algorithm.oid) != pq_oid(self.alg) {
            return Err(CryptoError::BadKey(format!(
                "public key algorithm {} is not {}",
                spki.algorithm.oid, self.alg
            )));
        }
        self.raw()
    }

    fn check_parses(&self) -> Result<(), CryptoError> {
        use p256::pkcs8::DecodePublicKey;
        let bad = |e: String| CryptoError::BadKey(format!("not a {} public key: {e}", self.alg));
        match self.alg {
            SigAlg::EcdsaP256Sha256 => p256::PublicKey::from_public_key_der(&self.spki)
                .map(|_| ())
                .map_err(|e| bad(e.to_string())),
            SigAlg::EcdsaP384Sha384 => p384::PublicKey::from_public_key_der(&self.spki)
                .map(|_| ())
                .map_err(|e| bad(e.to_string())),
            SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256 => {
                rsa::RsaPublicKey::from_public_key_der(&self.spki)
                    .map(|_| ())
                    .map_err(|e| bad(e.to_string()))
            }
            _ => {
                let raw = self.pq_raw()?;
                crate::pq::check_public_key(self.alg, &raw)
            }
        }
    }

    /// Verify `sig` over `msg`. Checks that the signature's algorithm and key id match this key.
    pub fn verify(&self, msg: &SignedMessage, sig: &Signature) -> Result<(), CryptoError> {
        if sig.alg != self.alg {
            return Err(CryptoError::BadSignature(format!(
                "signature is {}, key is {}",
                sig.alg, self.alg
            )));
        }
        if sig.key_id != self.key_id() {
            return Err(CryptoError::BadSignature(format!(
                "signature names key {}, this key is {}",
                sig.key_id,
                self.key_id()
            )));
        }
        self.verify_bytes(msg, &sig.bytes)
    }

    /// Verify raw signature bytes over `msg`.
    pub fn verify_bytes(&self, msg: &SignedMessage, sig: &[u8]) -> Result<(), CryptoError> {
        use p256::pkcs8::DecodePublicKey;
        use signature::hazmat::PrehashVerifier;
        let fail = |what: &str| CryptoError::BadSignature(format!("{} {what}", self.alg));
        match self.alg.family() {
            Family::Classical => {
                let h = msg.classical_hash(self.alg)?;
                match self.alg {
                    SigAlg::EcdsaP256Sha256 => {
                        let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki)
                            .map_err(|e| CryptoError::BadKey(e.to_string()))?;
                        let s = p256::ecdsa::Signature::from_der(sig)
                            .map_err(|_| fail("signature is not DER Ecdsa-Sig-Value"))?;
                        vk.verify_prehash(&h, &s)
                            .map_err(|_| fail("signature does not verify"))
                    }
                    SigAlg::EcdsaP384Sha384 => {
                        let vk = p384::ecdsa::VerifyingKey::from_public_key_der(&self.spki)
                            .map_err(|e| CryptoError::BadKey(e.to_string()))?;
                        let s = p384::ecdsa::Signature::from_der(sig)
                            .map_err(|_| fail("signature is not DER Ecdsa-Sig-Value"))?;
                        vk.verify_prehash(&h, &s)
                            .map_err(|_| fail("signature does not verify"))
                    }
                    SigAlg::RsaPssSha256 => {
                        let pk = rsa::RsaPublicKey::from_public_key_der(&self.spki)
                            .map_err(|e| CryptoError::BadKey(e.to_string()))?;
                        pk.verify(rsa::Pss::new_with_salt::<sha2::Sha256>(32), &h, sig)
                            .map_err(|_| fail("signature does not verify"))
                    }
                    SigAlg::RsaPkcs1Sha256 => {
                        let pk = rsa::RsaPublicKey::from_public_key_der(&self.spki)
                            .map_err(|e| CryptoError::BadKey(e.to_string()))?;
                        pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &h, sig)
                            .map_err(|_| fail("signature does not verify"))
                    }
                    _ => Err(CryptoError::Misuse("unreachable classical alg".into())),
                }
            }
            Family::PostQuantum => {
                let SignedMessage::Bytes(m) = msg else {
                    return Err(CryptoError::Misuse(format!(
                        "{} signs message bytes, not a prehash",
                        self.alg
                    )));
                };
                let raw = self.pq_raw()?;
                crate::pq::verify(self.alg, &raw, m, sig)
            }
        }
    }
}

/// Decode one PEM block; returns (label, DER).
pub fn spki_pem_decode(pem: &str) -> Result<(String, Vec<u8>), CryptoError> {
    use base64::Engine as _;
    let mut label = None;
    let mut body = String::new();
    for line in pem.lines() {
        let line = line.trim();
        if let Some(l) = line.strip_prefix("-----BEGIN ") {
            label = Some(l.trim_end_matches("-----").to_string());
        } else if line.starts_with("-----END ") {
            break;
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    let label = label.ok_or_else(|| CryptoError::BadKey("no PEM BEGIN line".into()))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| CryptoError::BadKey(format!("PEM base64: {e}")))?;
    Ok((label, der))
}

/// Encode DER as a PEM block with 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
