//! The built-in TSA: answering requests and making its certificate.

use crate::ess::{EssCertIdV2, SigningCertificateV2};
use crate::{
    digest_from_oid, digest_oid, malformed, uint_to_int, TsaError, MAX_CERTS, MAX_DER,
    OID_ATTR_CONTENT_TYPE, OID_ATTR_MESSAGE_DIGEST, OID_ATTR_SIGNING_CERT_V2, OID_CT_TSTINFO,
    OID_KP_TIME_STAMPING, OID_SIGNED_DATA,
};
use cmpv2::status::{PkiStatus, PkiStatusInfo};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{BitString, GeneralizedTime, OctetString, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode};
use fwseal_crypto::{DigestAlg, SignedMessage, Signer};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::attr::Attribute;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

/// What the built-in TSA puts in its tokens and accepts.
#[derive(Clone, Debug)]
pub struct TsaConfig {
    /// TSA policy (dotted OID) put in every TSTInfo; a request naming another is refused.
    pub policy_oid: String,
    /// Accuracy claimed, microseconds (0: no accuracy field).
    pub accuracy_micros: u64,
    /// Imprint hash algorithms accepted.
    pub hash_algs: Vec<DigestAlg>,
    /// Include `chain_der` after the signer certificate when the request asks for certificates.
    pub include_chain: bool,
}

fn misuse(e: impl std::fmt::Display) -> TsaError {
    TsaError::Misuse(e.to_string())
}

/// PKIFailureInfo bits a rejection names (RFC 3161 §2.4.2; the bit positions, which
/// `cmpv2` 0.2's `PkiFailureInfoValues` gets wrong: it stores positions as masks and cannot
/// hold bit 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `badAlg` (0): unrecognized or unsupported algorithm.
    BadAlg = 0,
    /// `badRequest` (2): transaction not permitted or supported.
    BadRequest = 2,
    /// `badDataFormat` (5): the data submitted has the wrong format.
    BadDataFormat = 5,
    /// `unacceptedPolicy` (15): the requested TSA policy is not supported.
    UnacceptedPolicy = 15,
    /// `unacceptedExtension` (16): the requested extension is not supported.
    UnacceptedExtension = 16,
}

impl Failure {
    /// The RFC 3161 name.
    pub fn name(self) -> &'static str {
        match self {
            Failure::BadAlg => "badAlg",
            Failure::BadRequest => "badRequest",
            Failure::BadDataFormat => "badDataFormat",
            Failure::UnacceptedPolicy => "unacceptedPolicy",
            Failure::UnacceptedExtension => "unacceptedExtension",
        }
    }

    /// The DER named-bit BIT STRING with only this bit set (no trailing zero bits).
    fn bits(self) -> Result<BitString, TsaError> {
        let n = self as usize;
        let mut bytes = vec![0u8; n / 8 + 1];
        if let Some(b) = bytes.last_mut() {
            *b = 0x80 >> (n % 8);
        }
        BitString::new(u8::try_from(7 - n % 8).map_err(misuse)?, bytes).map_err(misuse)
    }
}

/// What [`respond_detailed`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Status granted; the `TimeStampToken` (ContentInfo DER) inside the reply.
    Granted {
        /// The token.
        token: Vec<u8>,
    },
    /// Status rejection.
    Rejected {
        /// The failure info bit.
        failure: Failure,
        /// The statusString.
        text: &'static str,
    },
}

/// A reply: the DER `TimeStampResp` and what it says.
#[derive(Clone, Debug)]
pub struct Reply {
    /// DER `TimeStampResp`.
    pub der: Vec<u8>,
    /// Granted or rejected, and why.
    pub outcome: Outcome,
}

/// `PKIStatusInfo` with the `failInfo` BIT STRING as is (see [`Failure`]).
#[derive(der::Sequence)]
pub(crate) struct StatusDer<'a> {
    pub status: u8,
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<Utf8StringRef<'a>>>,
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

/// `TimeStampResp` with that status (a rejection is encoded, any reply decoded, with it).
#[derive(der::Sequence)]
pub(crate) struct RespDer<'a> {
    pub status: StatusDer<'a>,
    #[asn1(optional = "true")]
    pub token: Option<Any>,
}

/// The RFC 3161 / RFC 4210 names of the bits set in a `failInfo`.
pub(crate) fn failure_names(bits: &BitString) -> String {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let raw = bits.raw_bytes();
    let set: Vec<String> = (0..bits.bit_len())
        .filter(|i| raw.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
        .map(|i| {
            NAMES
                .iter()
                .find(|(n, _)| *n == i)
                .map_or_else(|| format!("bit {i}"), |(_, name)| (*name).to_string())
        })
        .collect();
    if set.is_empty() {
        "none".into()
    } else {
        set.join(", ")
    }
}

fn reject(failure: Failure, text: &'static str) -> Result<Reply, TsaError> {
    let resp = RespDer {
        status: StatusDer {
            status: PkiStatus::Rejection as u8,
            status_string: Some(vec![Utf8StringRef::new(text).map_err(misuse)?]),
            fail_info: Some(failure.bits()?),
        },
        token: None,
    };
    Ok(Reply {
        der: resp.to_der().map_err(misuse)?,
        outcome: Outcome::Rejected { failure, text },
    })
}

/// Answer a DER TimeStampReq. Never fails on bad *input*: a malformed or unsupported request
/// gets a rejection TimeStampResp (status rejection, PKIFailureInfo badRequest / badAlg /
/// badDataFormat / unacceptedPolicy / unacceptedExtension). Errs only when signing itself fails
/// (HSM down) or the configuration/certificate is unusable.
pub fn respond(
    req_der: &[u8],
    cfg: &TsaConfig,
    signer: &dyn Signer,
    cert_der: &[u8],
    chain_der: &[Vec<u8>],
    serial: u128,
    now: SystemTime,
) -> Result<Vec<u8>, TsaError> {
    respond_detailed(req_der, cfg, signer, cert_der, chain_der, serial, now).map(|r| r.der)
}

/// [`respond`], also saying what the reply is ([`Outcome`]): the token of a granted reply, or
/// the failure and text of a rejection, without decoding the reply again.
pub fn respond_detailed(
    req_der: &[u8],
    cfg: &TsaConfig,
    signer: &dyn Signer,
    cert_der: &[u8],
    chain_der: &[Vec<u8>],
    serial: u128,
    now: SystemTime,
) -> Result<Reply, TsaError> {
    use Failure as F;
    let policy = ObjectIdentifier::from_str(&cfg.policy_oid)
        .map_err(|e| misuse(format!("policy OID {:?}: {e}", cfg.policy_oid)))?;
    let cert =
        Certificate::from_der(cert_der).map_err(|e| misuse(format!("TSA certificate: {e}")))?;
    if req_der.len() > MAX_DER {
        return reject(F::BadDataFormat, "request too large");
    }
    let Ok(req) = TimeStampReq::from_der(req_der) else {
        return reject(F::BadDataFormat, "the request is not a DER TimeStampReq");
    };
    let Some(alg) = digest_from_oid(&req.message_imprint.hash_algorithm.oid) else {
        return reject(F::BadAlg, "unsupported message imprint hash algorithm");
    };
    if !cfg.hash_algs.contains(&alg) {
        return reject(
            F::BadAlg,
            "message imprint hash algorithm not accepted here",
        );
    }
    if req.message_imprint.hashed_message.as_bytes().len() != alg.len() {
        return reject(
            F::BadDataFormat,
            "message imprint length does not match its algorithm",
        );
    }
    if req.req_policy.is_some_and(|p| p != policy) {
        return reject(F::UnacceptedPolicy, "requested policy not offered");
    }
    if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return reject(
            F::UnacceptedExtension,
            "request extensions are not supported",
        );
    }
    if req.nonce.as_ref().is_some_and(|n| n.as_bytes().len() > 32) {
        return reject(F::BadRequest, "nonce longer than 32 bytes");
    }

    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| misuse(format!("clock before 1970: {e}")))?
        .as_secs();
    let gen_time = GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| misuse(format!("genTime: {e}")))?;
    let accuracy = if cfg.accuracy_micros == 0 {
        None
    } else {
        let a = cfg.accuracy_micros;
        let nz = |v: u64| -> Option<i16> { (v != 0).then(|| i16::try_from(v).unwrap_or(999)) };
        Some(Accuracy {
            seconds: (a / 1_000_000 != 0).then_some(a / 1_000_000),
            millis: nz((a / 1000) % 1000),
            micros: nz(a % 1000),
        })
    };
    let tst = TstInfo {
        version: TspVersion::V1,
        policy,
        message_imprint: MessageImprint {
            hash_algorithm: req.message_imprint.hash_algorithm.clone(),
            hashed_message: req.message_imprint.hashed_message.clone(),
        },
        serial_number: uint_to_int(&serial.to_be_bytes())?,
        gen_time,
        accuracy,
        ordering: false,
        nonce: req.nonce.clone(),
        tsa: Some(GeneralName::DirectoryName(
            cert.tbs_certificate.subject.clone(),
        )),
        extensions: None,
    };
    let econtent = tst.to_der().map_err(misuse)?;

    let sig_alg = signer.alg();
    let si_digest = sig_alg.digest_alg();
    let attr = |oid: ObjectIdentifier, v: Any| -> Result<Attribute, TsaError> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![v]).map_err(misuse)?,
        })
    };
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(DigestAlg::Sha256.hash(cert_der)).map_err(misuse)?,
            issuer_serial: None,
        }],
        policies: None,
    };
    let attrs = SetOfVec::try_from(vec![
        attr(
            OID_ATTR_CONTENT_TYPE,
            Any::encode_from(&OID_CT_TSTINFO).map_err(misuse)?,
        )?,
        attr(
            OID_ATTR_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(si_digest.hash(&econtent)).map_err(misuse)?)
                .map_err(misuse)?,
        )?,
        attr(
            OID_ATTR_SIGNING_CERT_V2,
            Any::encode_from(&ess).map_err(misuse)?,
        )?,
    ])
    .map_err(misuse)?;
    let attrs_der = attrs.to_der().map_err(misuse)?;
    let signature = signer
        .sign_raw(&SignedMessage::Bytes(attrs_der))
        .map_err(|e| TsaError::Misuse(format!("signing the token failed: {e}")))?;
    let signature_algorithm = fwseal_crypto::cert::signature_algorithm(sig_alg).map_err(misuse)?;

    let certificates = if req.cert_req {
        let mut v = vec![CertificateChoices::Certificate(cert.clone())];
        if cfg.include_chain {
            for c in chain_der.iter().take(MAX_CERTS - 1) {
                v.push(CertificateChoices::Certificate(
                    Certificate::from_der(c)
                        .map_err(|e| misuse(format!("chain certificate: {e}")))?,
                ));
            }
        }
        Some(CertificateSet::try_from(v).map_err(misuse)?)
    } else {
        None
    };
    let digest_alg = AlgorithmIdentifierOwned {
        oid: digest_oid(si_digest),
        parameters: None,
    };
    let sd = SignedData {
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg.clone()]).map_err(misuse)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: OID_CT_TSTINFO,
            econtent: Some(
                Any::encode_from(&OctetString::new(econtent).map_err(misuse)?).map_err(misuse)?,
            ),
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos::try_from(vec![SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: cert.tbs_certificate.issuer.clone(),
                serial_number: cert.tbs_certificate.serial_number.clone(),
            }),
            digest_alg,
            signed_attrs: Some(attrs),
            signature_algorithm,
            signature: OctetString::new(signature).map_err(misuse)?,
            unsigned_attrs: None,
        }])
        .map_err(misuse)?,
    };
    let token = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(misuse)?,
    };
    let token_der = token.to_der().map_err(misuse)?;
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Accepted,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(token),
    };
    let out = resp.to_der().map_err(misuse)?;
    if out.len() > MAX_DER {
        return Err(malformed("the reply would exceed 64 KiB (chain too large)"));
    }
    Ok(Reply {
        der: out,
        outcome: Outcome::Granted { token: token_der },
    })
}

/// Critical extended key usage.
struct CriticalEku(ExtendedKeyUsage);

impl const_oid::AssociatedOid for CriticalEku {
    const OID: ObjectIdentifier = const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE;
}

impl der::Encode for CriticalEku {
    fn encoded_len(&self) -> der::Result<der::Length> {
        self.0.encoded_len()
    }
    fn encode(&self, w: &mut impl der::Writer) -> der::Result<()> {
        self.0.encode(w)
    }
}

impl x509_cert::ext::AsExtension for CriticalEku {
    fn critical(&self, _: &Name, _: &[x509_cert::ext::Extension]) -> bool {
        true
    }
}

/// A TSA certificate for an HSM-held key: critical EKU id-kp-timeStamping, critical KeyUsage
/// digitalSignature, self-signed by the same key (issuer = subject) unless `issuer` is given,
/// validity from `not_before` for `days`.
pub fn tsa_certificate(
    subject_cn: &str,
    signer: &dyn Signer,
    issuer: Option<(&[u8], &dyn Signer)>,
    not_before: SystemTime,
    days: u32,
) -> Result<Vec<u8>, TsaError> {
    let subject = Name::from_str(&format!("CN={}", escape_rdn(subject_cn))).map_err(misuse)?;
    let (issuer_name, sign_with) = match issuer {
        Some((der, s)) => (
            Certificate::from_der(der)
                .map_err(|e| misuse(format!("issuer certificate: {e}")))?
                .tbs_certificate
                .subject,
            s,
        ),
        None => (subject.clone(), signer),
    };
    let adapter = Adapter {
        signer: sign_with,
        sig_alg: fwseal_crypto::cert::signature_algorithm(sign_with.alg()).map_err(misuse)?,
        spki: SpkiDer(sign_with.public_key().spki_der().to_vec()),
    };
    let not_after = not_before + Duration::from_secs(u64::from(days) * 86_400);
    let validity = Validity {
        not_before: Time::try_from(not_before).map_err(misuse)?,
        not_after: Time::try_from(not_after).map_err(misuse)?,
    };
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut serial = nanos.to_be_bytes()[4..].to_vec();
    if let Some(b) = serial.first_mut() {
        *b = (*b & 0x7f) | 0x01;
    }
    let serial = SerialNumber::new(&serial).map_err(misuse)?;
    let spki =
        SubjectPublicKeyInfoOwned::from_der(signer.public_key().spki_der()).map_err(misuse)?;
    // Profile::Leaf adds SKI, AKI, BasicConstraints CA:FALSE and the critical KeyUsage
    // digitalSignature + nonRepudiation (x509-cert's `Manual` profile needs its `hazmat`
    // feature, which would change `Profile::Leaf` for the whole workspace).
    let profile = Profile::Leaf {
        issuer: issuer_name,
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let mut b = CertificateBuilder::new(profile, serial, validity, subject, spki, &adapter)
        .map_err(misuse)?;
    b.add_extension(&CriticalEku(ExtendedKeyUsage(vec![OID_KP_TIME_STAMPING])))
        .map_err(misuse)?;
    let cert = b.build::<RawSig>().map_err(misuse)?;
    cert.to_der().map_err(misuse)
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

/// Adapts a [`Signer`] to the traits `x509-cert`'s builder needs (as fwseal-crypto's cert.rs).
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
