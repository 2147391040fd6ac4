//! fwseal-tsa: RFC 3161 time-stamp tokens.
//!
//! Sans-I/O core: [`request_der`] builds a `TimeStampReq`, [`token_from_response`] checks a
//! `TimeStampResp` against the request it answers, [`inspect`] decodes a token, [`verify`] /
//! [`verify_digest`] verify one fully (CMS signature, ESS signing-certificate, the TSA
//! certificate profile of RFC 3161 §2.3, trust). [`respond`] is the built-in TSA: it answers a
//! DER `TimeStampReq` with a token signed through a [`Signer`] (the key may live in an HSM);
//! [`tsa_certificate`] makes the certificate for that key. Feature `client` adds a blocking
//! HTTP client with failover ([`client::TsaClient`]).
//!
//! All ASN.1 is done by RustCrypto `der` / `cms` / `x509-cert` / `x509-tsp` / `cmpv2` types;
//! every signature check by `fwseal-crypto`. Inputs are bounded (64 KiB, 16 certificates).
#![forbid(unsafe_code)]

mod ess;
mod sign;
mod verify;

#[cfg(feature = "client")]
pub mod client;

use const_oid::ObjectIdentifier;
use fwseal_crypto::DigestAlg;

pub use sign::{respond, respond_detailed, tsa_certificate, Failure, Outcome, Reply, TsaConfig};
pub use verify::{inspect, token_from_response, verify, verify_digest};

/// Largest token or response accepted.
pub const MAX_DER: usize = 64 * 1024;
/// Most certificates accepted in one token.
pub const MAX_CERTS: usize = 16;

/// `id-ct-TSTInfo`.
pub const OID_CT_TSTINFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// `id-signedData`.
pub const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// `id-contentType` attribute.
pub const OID_ATTR_CONTENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// `id-messageDigest` attribute.
pub const OID_ATTR_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// `id-aa-signingCertificate` (ESSCertID, SHA-1).
pub const OID_ATTR_SIGNING_CERT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
/// `id-aa-signingCertificateV2` (ESSCertIDv2).
pub const OID_ATTR_SIGNING_CERT_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// `id-kp-timeStamping`.
pub const OID_KP_TIME_STAMPING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// SHA-1 (only for ESSCertID cert hashes).
pub const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// SHA-256.
pub const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// SHA-384.
pub const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// SHA-512.
pub const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Errors. `Display` says what failed and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// The input is not the expected DER structure (or is over a bound).
    #[error("malformed time-stamp data: {what}")]
    Malformed {
        /// What and where.
        what: String,
    },
    /// The TSA answered with a status other than granted / grantedWithMods.
    #[error("TSA refused: status {status} ({text}), failure info {failure_info}")]
    Status {
        /// PKIStatus number.
        status: u8,
        /// statusString, joined.
        text: String,
        /// PKIFailureInfo bits, by name.
        failure_info: String,
    },
    /// The token's nonce is not the request's.
    #[error("the token's nonce does not match the request")]
    NonceMismatch,
    /// The token's message imprint is not the one requested / not the data's.
    #[error("the token's message imprint does not match: {0}")]
    ImprintMismatch(String),
    /// The signer certificate is not trusted (not a trust anchor, not issued by one).
    #[error("the TSA certificate is not trusted: {0}")]
    UntrustedSigner(String),
    /// A signature or digest does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The signer certificate violates the TSA profile or is not valid at genTime.
    #[error("bad TSA certificate: {why}")]
    BadCertificate {
        /// Why.
        why: String,
    },
    /// No TSA could be reached / answered.
    #[error("TSA unavailable at {url}: {why}")]
    Unavailable {
        /// The (last) URL tried.
        url: String,
        /// Why.
        why: String,
    },
    /// The caller combined things that cannot go together, or signing failed.
    #[error("misuse: {0}")]
    Misuse(String),
}

pub(crate) fn malformed(what: impl std::fmt::Display) -> TsaError {
    TsaError::Malformed {
        what: what.to_string(),
    }
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// genTime, seconds since the Unix epoch.
    pub gen_time_unix: i64,
    /// genTime, RFC 3339 UTC.
    pub gen_time: String,
    /// TSTInfo.serialNumber, lower-case hex of the big-endian bytes.
    pub serial_hex: String,
    /// Policy, dotted OID.
    pub policy: String,
    /// Signer certificate subject (RFC 4514), or the TSTInfo `tsa` name when the token carries
    /// no certificate.
    pub tsa: String,
    /// Hash algorithm of the message imprint.
    pub hash_alg: DigestAlg,
    /// Message imprint.
    pub imprint: Vec<u8>,
    /// Accuracy in microseconds, when given.
    pub accuracy_micros: Option<u64>,
    /// Signer certificate DER (empty when the token carries none and `inspect` was used).
    pub signer_cert_der: Vec<u8>,
}

pub(crate) fn digest_oid(alg: DigestAlg) -> ObjectIdentifier {
    match alg {
        DigestAlg::Sha256 => OID_SHA256,
        DigestAlg::Sha384 => OID_SHA384,
        DigestAlg::Sha512 => OID_SHA512,
    }
}

pub(crate) fn digest_from_oid(oid: &ObjectIdentifier) -> Option<DigestAlg> {
    if *oid == OID_SHA256 {
        Some(DigestAlg::Sha256)
    } else if *oid == OID_SHA384 {
        Some(DigestAlg::Sha384)
    } else if *oid == OID_SHA512 {
        Some(DigestAlg::Sha512)
    } else {
        None
    }
}

/// A positive INTEGER from big-endian unsigned bytes.
pub(crate) fn uint_to_int(be: &[u8]) -> Result<der::asn1::Int, TsaError> {
    let mut b: Vec<u8> = be.iter().copied().skip_while(|&x| x == 0).collect();
    if b.is_empty() {
        b.push(0);
    } else if b.first().is_some_and(|&x| x & 0x80 != 0) {
        b.insert(0, 0);
    }
    der::asn1::Int::new(&b).map_err(|e| TsaError::Misuse(format!("integer: {e}")))
}

/// Build a DER `TimeStampReq` (v1, no policy, no extensions).
pub fn request_der(
    alg: DigestAlg,
    digest: &[u8],
    nonce: u64,
    cert_req: bool,
) -> Result<Vec<u8>, TsaError> {
    use der::Encode;
    if digest.len() != alg.len() {
        return Err(TsaError::Misuse(format!(
            "a {} digest is {} bytes, not {}",
            alg.name(),
            alg.len(),
            digest.len()
        )));
    }
    let req = x509_tsp::TimeStampReq {
        version: x509_tsp::TspVersion::V1,
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier {
                oid: digest_oid(alg),
                parameters: Some(der::asn1::Null.into()),
            },
            hashed_message: der::asn1::OctetString::new(digest)
                .map_err(|e| TsaError::Misuse(format!("imprint: {e}")))?,
        },
        req_policy: None,
        nonce: Some(uint_to_int(&nonce.to_be_bytes())?),
        cert_req,
        extensions: None,
    };
    req.to_der()
        .map_err(|e| TsaError::Misuse(format!("encoding TimeStampReq: {e}")))
}
