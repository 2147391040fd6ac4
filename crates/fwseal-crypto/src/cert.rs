//! Self-signed X.509 code-signing certificates for any [`Signer`].
//!
//! Authenticode (`.efi`) carries the signer's certificate, and UEFI Secure Boot trusts a
//! certificate enrolled in `db`. [`self_signed`] builds one for a key that may live anywhere
//! (software or HSM): the certificate is signed through [`Signer::sign`], so the private key
//! never has to be available to this code.
//!
//! The profile is the one `sbverify`, `osslsigncode verify -CAfile` and OVMF accept for a
//! self-signed signer certificate: version 3, SubjectKeyIdentifier, AuthorityKeyIdentifier,
//! BasicConstraints `CA:FALSE`, KeyUsage `digitalSignature, nonRepudiation` (critical) and
//! ExtendedKeyUsage `codeSigning`. (A CA-style profile whose KeyUsage lacks
//! `digitalSignature` is refused by `sbverify`.)
//!
//! ```
//! use fwseal_crypto::{cert, soft::SoftKey, SigAlg};
//! let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
//! let der = cert::self_signed(&key, &cert::CertParams::code_signing("Widget db key")).unwrap();
//! assert_eq!(der[0], 0x30);
//! ```

use crate::alg::SigAlg;
use crate::sig::SignedMessage;
use crate::signer::Signer;
use crate::CryptoError;
use der::asn1::BitString;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::builder::{Builder, CertificateBuilder, Profile, RequestBuilder};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// `id-kp-codeSigning` (RFC 5280).
pub const OID_KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// `sha256WithRSAEncryption`.
pub const OID_SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// `ecdsa-with-SHA256`.
pub const OID_ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384`.
pub const OID_ECDSA_WITH_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// What goes into the certificate besides the key.
#[derive(Clone, Debug)]
pub struct CertParams {
    /// Subject (and issuer) common name.
    pub common_name: String,
    /// Serial number, big-endian, 1..=20 bytes (a positive INTEGER is produced).
    pub serial: Vec<u8>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl CertParams {
    /// Defaults for a code-signing certificate: valid from one hour ago for ten years, with a
    /// serial derived from the current time.
    pub fn code_signing(common_name: &str) -> Self {
        let now = SystemTime::now();
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut serial = secs.to_be_bytes()[4..].to_vec();
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        CertParams {
            common_name: common_name.to_string(),
            serial,
            not_before: now
                .checked_sub(Duration::from_secs(3600))
                .unwrap_or(SystemTime::UNIX_EPOCH),
            not_after: now + Duration::from_secs(10 * 365 * 86_400),
        }
    }
}

/// The X.509 `signatureAlgorithm` for certificates signed by `alg`.
pub fn signature_algorithm(alg: SigAlg) -> Result<AlgorithmIdentifierOwned, CryptoError> {
    Ok(match alg {
        SigAlg::RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
            oid: OID_SHA256_WITH_RSA,
            parameters: Some(der::asn1::Null.into()),
        },
        SigAlg::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
            oid: OID_ECDSA_WITH_SHA256,
            parameters: None,
        },
        SigAlg::EcdsaP384Sha384 => AlgorithmIdentifierOwned {
            oid: OID_ECDSA_WITH_SHA384,
            parameters: None,
        },
        other => {
            return Err(CryptoError::Misuse(format!(
                "certificates can be built for RSA PKCS#1 v1.5 and ECDSA keys, not {other}"
            )))
        }
    })
}

/// Build a self-signed code-signing certificate for `signer`'s key; returns DER.
pub fn self_signed(signer: &dyn Signer, params: &CertParams) -> Result<Vec<u8>, CryptoError> {
    let enc = |e: &dyn std::fmt::Display| CryptoError::Encoding(format!("certificate: {e}"));
    let adapter = Adapter {
        signer,
        sig_alg: signature_algorithm(signer.alg())?,
        spki: SpkiDer(signer.public_key().spki_der().to_vec()),
    };
    let subject =
        Name::from_str(&format!("CN={}", escape_rdn(&params.common_name))).map_err(|e| enc(&e))?;
    let validity = Validity {
        not_before: Time::try_from(params.not_before).map_err(|e| enc(&e))?,
        not_after: Time::try_from(params.not_after).map_err(|e| enc(&e))?,
    };
    let serial = SerialNumber::new(&params.serial).map_err(|e| enc(&e))?;
    let spki =
        SubjectPublicKeyInfoOwned::from_der(signer.public_key().spki_der()).map_err(|e| enc(&e))?;
    let profile = Profile::Leaf {
        issuer: subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let mut b = CertificateBuilder::new(profile, serial, validity, subject, spki, &adapter)
        .map_err(|e| enc(&e))?;
    b.add_extension(&ExtendedKeyUsage(vec![OID_KP_CODE_SIGNING]))
        .map_err(|e| enc(&e))?;
    let cert = b.build::<RawSig>().map_err(|e| enc(&e))?;
    cert.to_der().map_err(|e| enc(&e))
}

/// Build a PKCS#10 certificate signing request for `signer`'s key (subject `CN=common_name`,
/// with the code-signing extended key usage requested), to take to a CA; returns DER. Like
/// [`self_signed`], it signs through [`Signer`] and never needs the private key.
pub fn csr(signer: &dyn Signer, common_name: &str) -> Result<Vec<u8>, CryptoError> {
    let enc = |e: &dyn std::fmt::Display| CryptoError::Encoding(format!("CSR: {e}"));
    let adapter = Adapter {
        signer,
        sig_alg: signature_algorithm(signer.alg())?,
        spki: SpkiDer(signer.public_key().spki_der().to_vec()),
    };
    let subject =
        Name::from_str(&format!("CN={}", escape_rdn(common_name))).map_err(|e| enc(&e))?;
    let mut b = RequestBuilder::new(subject, &adapter).map_err(|e| enc(&e))?;
    b.add_extension(&ExtendedKeyUsage(vec![OID_KP_CODE_SIGNING]))
        .map_err(|e| enc(&e))?;
    let req = b.build::<RawSig>().map_err(|e| enc(&e))?;
    req.to_der().map_err(|e| enc(&e))
}

/// PEM (`CERTIFICATE`) of a DER certificate.
pub fn to_pem(der: &[u8]) -> String {
    crate::verify::pem_encode("CERTIFICATE", der)
}

fn escape_rdn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Adapts a [`Signer`] to the traits `x509-cert`'s builder needs.
struct Adapter<'a> {
    signer: &'a dyn Signer,
    sig_alg: AlgorithmIdentifierOwned,
    spki: SpkiDer,
}

#[derive(Clone)]
struct SpkiDer(Vec<u8>);

impl spki::EncodePublicKey for SpkiDer {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::from_der(&self.0)?)
    }
}

impl signature::Keypair for Adapter<'_> {
    type VerifyingKey = SpkiDer;
    fn verifying_key(&self) -> SpkiDer {
        self.spki.clone()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for Adapter<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.sig_alg.clone())
    }
}

/// Signature bytes as produced by [`Signer`] (ECDSA DER, RSA big-endian) — exactly what the
/// X.509 signature BIT STRING holds.
struct RawSig(Vec<u8>);

impl spki::SignatureBitStringEncoding for RawSig {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Signer<RawSig> for Adapter<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<RawSig, signature::Error> {
        self.signer
            .sign_raw(&SignedMessage::Bytes(msg.to_vec()))
            .map(RawSig)
            .map_err(signature::Error::from_source)
    }
}

#[cfg(all(test, feature = "soft-signer"))]
mod tests {
    use super::*;
    use crate::soft::SoftKey;
    use x509_cert::Certificate;

    #[test]
    fn self_signed_verifies_under_its_own_key() {
        for alg in [SigAlg::EcdsaP256Sha256, SigAlg::RsaPkcs1Sha256] {
            let key = if alg == SigAlg::RsaPkcs1Sha256 {
                SoftKey::generate_rsa(alg, 2048).expect("rsa")
            } else {
                SoftKey::generate(alg).expect("key")
            };
            let der = self_signed(&key, &CertParams::code_signing("t, with comma")).expect("cert");
            let cert = Certificate::from_der(&der).expect("parses");
            let tbs = cert.tbs_certificate.to_der().expect("tbs");
            let sig = cert.signature.as_bytes().expect("octets");
            key.public_key()
                .verify_bytes(&SignedMessage::Bytes(tbs), sig)
                .expect("self-signature verifies");
            assert_eq!(cert.tbs_certificate.issuer, cert.tbs_certificate.subject);
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .expect("spki");
            assert_eq!(spki, key.public_key().spki_der());
            let exts = cert.tbs_certificate.extensions.expect("extensions");
            assert!(exts
                .iter()
                .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE));
        }
        let pq = SoftKey::generate(SigAlg::MlDsa44).expect("pq");
        assert!(csr(&pq, "x").is_err(), "CSRs are for RSA/ECDSA keys");
        assert!(self_signed(&pq, &CertParams::code_signing("x")).is_err());
    }
}
