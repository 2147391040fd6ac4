//! Decoding and verifying responses and tokens.

use crate::ess::{SigningCertificate, SigningCertificateV2};
use crate::{
    digest_from_oid, malformed, uint_to_int, TokenInfo, TsaError, MAX_CERTS, MAX_DER,
    OID_ATTR_CONTENT_TYPE, OID_ATTR_MESSAGE_DIGEST, OID_ATTR_SIGNING_CERT,
    OID_ATTR_SIGNING_CERT_V2, OID_CT_TSTINFO, OID_KP_TIME_STAMPING, OID_SIGNED_DATA,
};
use cmpv2::status::PkiStatus;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use fwseal_crypto::{DigestAlg, PublicKey, SigAlg, SignedMessage};
use x509_cert::Certificate;
use x509_tsp::TstInfo;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

fn bound(der: &[u8], what: &str) -> Result<(), TsaError> {
    if der.len() > MAX_DER {
        return Err(malformed(format!(
            "{what} is {} bytes, over the {MAX_DER}-byte bound",
            der.len()
        )));
    }
    Ok(())
}

/// Check a TimeStampResp against the request it answers (status granted/grantedWithMods,
/// nonce, imprint alg+value) and return the TimeStampToken (ContentInfo DER, exactly the bytes
/// to embed).
pub fn token_from_response(
    resp_der: &[u8],
    alg: DigestAlg,
    digest: &[u8],
    nonce: u64,
) -> Result<Vec<u8>, TsaError> {
    let token_der = granted_token(resp_der)?;
    let parsed = Parsed::new(&token_der)?;
    let want = uint_to_int(&nonce.to_be_bytes())?;
    if parsed.tst.nonce.as_ref() != Some(&want) {
        return Err(TsaError::NonceMismatch);
    }
    check_imprint(&parsed.tst, alg, digest)?;
    Ok(token_der)
}

/// The TimeStampToken (ContentInfo DER) of a granted TimeStampResp, or
/// [`TsaError::Status`] for any other status (with its statusString and failure info by RFC
/// 3161 name). The status is decoded with [`crate::sign::RespDer`], not `cmpv2`'s
/// `PkiFailureInfo`, which cannot decode correctly encoded failure bits above 4.
fn granted_token(resp_der: &[u8]) -> Result<Vec<u8>, TsaError> {
    bound(resp_der, "TimeStampResp")?;
    let resp = crate::sign::RespDer::from_der(resp_der)
        .map_err(|e| malformed(format!("TimeStampResp: {e}")))?;
    let st = &resp.status;
    if st.status != PkiStatus::Accepted as u8 && st.status != PkiStatus::GrantedWithMods as u8 {
        let text = st
            .status_string
            .as_ref()
            .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; "))
            .unwrap_or_default();
        let failure_info = st
            .fail_info
            .as_ref()
            .map(crate::sign::failure_names)
            .unwrap_or_else(|| "none".into());
        return Err(TsaError::Status {
            status: st.status,
            text,
            failure_info,
        });
    }
    let token = resp
        .token
        .ok_or_else(|| malformed("TimeStampResp: status granted but no timeStampToken"))?;
    token
        .to_der()
        .map_err(|e| malformed(format!("timeStampToken: {e}")))
}

fn check_imprint(tst: &TstInfo, alg: DigestAlg, digest: &[u8]) -> Result<(), TsaError> {
    let got = digest_from_oid(&tst.message_imprint.hash_algorithm.oid);
    if got != Some(alg) {
        return Err(TsaError::ImprintMismatch(format!(
            "hash algorithm is {}, expected {}",
            tst.message_imprint.hash_algorithm.oid,
            alg.name()
        )));
    }
    if tst.message_imprint.hashed_message.as_bytes() != digest {
        return Err(TsaError::ImprintMismatch(
            "hashed message differs from the digest of the data".into(),
        ));
    }
    Ok(())
}

/// A decoded token.
struct Parsed {
    sd: SignedData,
    tst: TstInfo,
    econtent: Vec<u8>,
    certs: Vec<Certificate>,
}

impl Parsed {
    fn new(token_der: &[u8]) -> Result<Self, TsaError> {
        bound(token_der, "TimeStampToken")?;
        let ci = ContentInfo::from_der(token_der)
            .map_err(|e| malformed(format!("TimeStampToken ContentInfo: {e}")))?;
        if ci.content_type != OID_SIGNED_DATA {
            return Err(malformed(format!(
                "TimeStampToken content type is {}, not signedData",
                ci.content_type
            )));
        }
        let sd: SignedData = ci
            .content
            .decode_as()
            .map_err(|e| malformed(format!("TimeStampToken SignedData: {e}")))?;
        if sd.encap_content_info.econtent_type != OID_CT_TSTINFO {
            return Err(malformed(format!(
                "eContentType is {}, not id-ct-TSTInfo",
                sd.encap_content_info.econtent_type
            )));
        }
        let any = sd
            .encap_content_info
            .econtent
            .as_ref()
            .ok_or_else(|| malformed("SignedData has no eContent"))?;
        let os: der::asn1::OctetString = any
            .decode_as()
            .map_err(|e| malformed(format!("eContent is not an OCTET STRING: {e}")))?;
        let econtent = os.as_bytes().to_vec();
        let tst = TstInfo::from_der(&econtent).map_err(|e| malformed(format!("TSTInfo: {e}")))?;
        let mut certs = Vec::new();
        if let Some(set) = &sd.certificates {
            if set.0.len() > MAX_CERTS {
                return Err(malformed(format!(
                    "{} certificates, over the bound of {MAX_CERTS}",
                    set.0.len()
                )));
            }
            for c in set.0.iter() {
                if let CertificateChoices::Certificate(c) = c {
                    certs.push(c.clone());
                }
            }
        }
        Ok(Parsed {
            sd,
            tst,
            econtent,
            certs,
        })
    }

    fn signer_info(&self) -> Result<&SignerInfo, TsaError> {
        let mut it = self.sd.signer_infos.0.iter();
        let si = it
            .next()
            .ok_or_else(|| malformed("SignedData has no SignerInfo"))?;
        if it.next().is_some() {
            return Err(malformed(
                "a time-stamp token must have exactly one SignerInfo",
            ));
        }
        Ok(si)
    }

    fn info(&self, signer: Option<&Certificate>) -> Result<TokenInfo, TsaError> {
        let tst = &self.tst;
        let hash_alg =
            digest_from_oid(&tst.message_imprint.hash_algorithm.oid).ok_or_else(|| {
                malformed(format!(
                    "TSTInfo imprint hash algorithm {} is not SHA-256/384/512",
                    tst.message_imprint.hash_algorithm.oid
                ))
            })?;
        let unix = tst.gen_time.to_unix_duration().as_secs();
        let accuracy_micros = tst.accuracy.as_ref().map(|a| {
            a.seconds.unwrap_or(0).saturating_mul(1_000_000)
                + u64::try_from(a.millis.unwrap_or(0)).unwrap_or(0) * 1000
                + u64::try_from(a.micros.unwrap_or(0)).unwrap_or(0)
        });
        let (tsa, signer_cert_der) = match signer {
            Some(c) => (
                c.tbs_certificate.subject.to_string(),
                c.to_der()
                    .map_err(|e| malformed(format!("certificate: {e}")))?,
            ),
            None => (
                match &tst.tsa {
                    Some(x509_cert::ext::pkix::name::GeneralName::DirectoryName(n)) => {
                        n.to_string()
                    }
                    _ => String::new(),
                },
                Vec::new(),
            ),
        };
        let bytes = tst.serial_number.as_bytes();
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        Ok(TokenInfo {
            gen_time_unix: i64::try_from(unix).unwrap_or(i64::MAX),
            gen_time: tst.gen_time.to_date_time().to_string(),
            serial_hex: if trimmed.is_empty() {
                "00".into()
            } else {
                hex::encode(trimmed)
            },
            policy: tst.policy.to_string(),
            tsa,
            hash_alg,
            imprint: tst.message_imprint.hashed_message.as_bytes().to_vec(),
            accuracy_micros,
            signer_cert_der,
        })
    }

    fn find_signer<'a>(
        &'a self,
        sid: &SignerIdentifier,
        extra: &'a [Certificate],
    ) -> Option<&'a Certificate> {
        self.certs
            .iter()
            .chain(extra.iter())
            .find(|c| matches_sid(c, sid))
    }
}

fn matches_sid(c: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            c.tbs_certificate.issuer == ias.issuer
                && c.tbs_certificate.serial_number == ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => c
            .tbs_certificate
            .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, k)| k == *ski),
    }
}

/// Decode a token without trust decisions (for display / audit).
pub fn inspect(token_der: &[u8]) -> Result<TokenInfo, TsaError> {
    let p = Parsed::new(token_der)?;
    let si = p.signer_info()?;
    let signer = p.find_signer(&si.sid, &[]);
    p.info(signer)
}

/// Full verification; see the crate docs. `message imprint == H_alg(data)`.
pub fn verify(
    token_der: &[u8],
    data: &[u8],
    trusted_certs_der: &[Vec<u8>],
) -> Result<TokenInfo, TsaError> {
    let p = Parsed::new(token_der)?;
    let alg = digest_from_oid(&p.tst.message_imprint.hash_algorithm.oid).ok_or_else(|| {
        TsaError::ImprintMismatch(format!(
            "unsupported imprint hash {}",
            p.tst.message_imprint.hash_algorithm.oid
        ))
    })?;
    verify_parsed(p, alg, &alg.hash(data), trusted_certs_der)
}

/// Same, when the caller already has the digest of the timestamped bytes.
pub fn verify_digest(
    token_der: &[u8],
    alg: DigestAlg,
    digest: &[u8],
    trusted_certs_der: &[Vec<u8>],
) -> Result<TokenInfo, TsaError> {
    let p = Parsed::new(token_der)?;
    verify_parsed(p, alg, digest, trusted_certs_der)
}

fn decode_trusted(trusted_certs_der: &[Vec<u8>]) -> Result<Vec<Certificate>, TsaError> {
    if trusted_certs_der.len() > MAX_CERTS * 4 {
        return Err(TsaError::Misuse("too many trusted certificates".into()));
    }
    trusted_certs_der
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Certificate::from_der(d)
                .map_err(|e| TsaError::Misuse(format!("trusted certificate #{i}: {e}")))
        })
        .collect()
}

fn verify_parsed(
    p: Parsed,
    alg: DigestAlg,
    digest: &[u8],
    trusted_certs_der: &[Vec<u8>],
) -> Result<TokenInfo, TsaError> {
    check_imprint(&p.tst, alg, digest)?;
    let trusted = decode_trusted(trusted_certs_der)?;
    let si = p.signer_info()?;
    let signer = p
        .find_signer(&si.sid, &trusted)
        .ok_or_else(|| TsaError::UntrustedSigner("no certificate matches the SignerInfo".into()))?
        .clone();
    let signer_der = signer
        .to_der()
        .map_err(|e| malformed(format!("signer certificate: {e}")))?;

    // Signed attributes.
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| malformed("SignerInfo has no signed attributes"))?;
    let si_digest = digest_from_oid(&si.digest_alg.oid).ok_or_else(|| {
        TsaError::BadSignature(format!(
            "unsupported digest algorithm {}",
            si.digest_alg.oid
        ))
    })?;
    let single = |oid: ObjectIdentifier, name: &str| -> Result<der::Any, TsaError> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        let a = found
            .next()
            .ok_or_else(|| malformed(format!("signed attribute {name} missing")))?;
        if found.next().is_some() || a.values.len() != 1 {
            return Err(malformed(format!(
                "signed attribute {name} must appear once with one value"
            )));
        }
        a.values
            .iter()
            .next()
            .cloned()
            .ok_or_else(|| malformed(format!("signed attribute {name} has no value")))
    };
    let ct: ObjectIdentifier = single(OID_ATTR_CONTENT_TYPE, "content-type")?
        .decode_as()
        .map_err(|e| malformed(format!("content-type attribute: {e}")))?;
    if ct != OID_CT_TSTINFO {
        return Err(TsaError::BadSignature(format!(
            "content-type attribute is {ct}, not id-ct-TSTInfo"
        )));
    }
    let md: der::asn1::OctetString = single(OID_ATTR_MESSAGE_DIGEST, "message-digest")?
        .decode_as()
        .map_err(|e| malformed(format!("message-digest attribute: {e}")))?;
    if md.as_bytes() != si_digest.hash(&p.econtent) {
        return Err(TsaError::BadSignature(
            "message-digest attribute is not the digest of the TSTInfo".into(),
        ));
    }
    check_signing_cert(attrs, &signer_der)?;

    // Signature over the DER SET OF signed attributes.
    let attrs_der = attrs
        .to_der()
        .map_err(|e| malformed(format!("signed attributes: {e}")))?;
    let sig_digest = match si.signature_algorithm.oid {
        o if o == OID_RSA || o == OID_EC => si_digest,
        o if o == OID_SHA256_RSA || o == OID_ECDSA_SHA256 => DigestAlg::Sha256,
        o if o == OID_SHA384_RSA || o == OID_ECDSA_SHA384 => DigestAlg::Sha384,
        o if o == OID_SHA512_RSA || o == OID_ECDSA_SHA512 => DigestAlg::Sha512,
        o => {
            return Err(TsaError::BadSignature(format!(
                "unsupported signature algorithm {o}"
            )))
        }
    };
    let key = public_key(&signer, sig_digest)?;
    key.verify_bytes(&SignedMessage::Bytes(attrs_der), si.signature.as_bytes())
        .map_err(|e| TsaError::BadSignature(format!("SignerInfo signature: {e}")))?;

    // Certificate profile (RFC 3161 §2.3) and validity at genTime.
    check_profile(&signer)?;
    let gen = p.tst.gen_time.to_unix_duration();
    let v = &signer.tbs_certificate.validity;
    if gen < v.not_before.to_unix_duration() || gen > v.not_after.to_unix_duration() {
        return Err(TsaError::BadCertificate {
            why: format!(
                "genTime {} is outside the certificate's validity {} .. {}",
                p.tst.gen_time.to_date_time(),
                v.not_before,
                v.not_after
            ),
        });
    }

    // Trust.
    check_trust(&signer, &signer_der, &trusted, trusted_certs_der)?;
    p.info(Some(&signer))
}

fn check_signing_cert(
    attrs: &x509_cert::attr::Attributes,
    signer_der: &[u8],
) -> Result<(), TsaError> {
    use sha1::Digest as _;
    if let Some(a) = attrs.iter().find(|a| a.oid == OID_ATTR_SIGNING_CERT_V2) {
        let v = a
            .values
            .iter()
            .next()
            .ok_or_else(|| malformed("signingCertificateV2 has no value"))?;
        let sc: SigningCertificateV2 = v
            .decode_as()
            .map_err(|e| malformed(format!("signingCertificateV2: {e}")))?;
        let first = sc
            .certs
            .first()
            .ok_or_else(|| malformed("signingCertificateV2 names no certificate"))?;
        let alg = match &first.hash_algorithm {
            None => DigestAlg::Sha256,
            Some(a) => digest_from_oid(&a.oid).ok_or_else(|| {
                malformed(format!("ESSCertIDv2 hash algorithm {} unsupported", a.oid))
            })?,
        };
        if first.cert_hash.as_bytes() != alg.hash(signer_der) {
            return Err(TsaError::BadSignature(
                "signingCertificateV2 does not name the signer certificate".into(),
            ));
        }
        return Ok(());
    }
    if let Some(a) = attrs.iter().find(|a| a.oid == OID_ATTR_SIGNING_CERT) {
        let v = a
            .values
            .iter()
            .next()
            .ok_or_else(|| malformed("signingCertificate has no value"))?;
        let sc: SigningCertificate = v
            .decode_as()
            .map_err(|e| malformed(format!("signingCertificate: {e}")))?;
        let first = sc
            .certs
            .first()
            .ok_or_else(|| malformed("signingCertificate names no certificate"))?;
        if first.cert_hash.as_bytes() != &sha1::Sha1::digest(signer_der)[..] {
            return Err(TsaError::BadSignature(
                "signingCertificate does not name the signer certificate".into(),
            ));
        }
        return Ok(());
    }
    Err(malformed(
        "neither signingCertificate nor signingCertificateV2 is among the signed attributes",
    ))
}

/// The fwseal public key of `cert`, for signatures made with `digest`.
pub(crate) fn public_key(cert: &Certificate, digest: DigestAlg) -> Result<PublicKey, TsaError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let alg = if spki.algorithm.oid == OID_RSA {
        match digest {
            DigestAlg::Sha256 => SigAlg::RsaPkcs1Sha256,
            other => {
                return Err(TsaError::BadSignature(format!(
                    "RSA with {} is not supported (only SHA-256)",
                    other.name()
                )))
            }
        }
    } else if spki.algorithm.oid == OID_EC {
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| TsaError::BadCertificate {
                why: "EC key without curve parameter".into(),
            })?
            .decode_as()
            .map_err(|e| TsaError::BadCertificate {
                why: format!("EC curve parameter: {e}"),
            })?;
        match (curve, digest) {
            (c, DigestAlg::Sha256) if c == OID_P256 => SigAlg::EcdsaP256Sha256,
            (c, DigestAlg::Sha384) if c == OID_P384 => SigAlg::EcdsaP384Sha384,
            (c, d) => {
                return Err(TsaError::BadSignature(format!(
                    "ECDSA on curve {c} with {} is not supported",
                    d.name()
                )))
            }
        }
    } else {
        return Err(TsaError::BadCertificate {
            why: format!("unsupported key algorithm {}", spki.algorithm.oid),
        });
    };
    let spki_der = spki
        .to_der()
        .map_err(|e| malformed(format!("SubjectPublicKeyInfo: {e}")))?;
    PublicKey::from_spki_der(alg, &spki_der).map_err(|e| TsaError::BadCertificate {
        why: format!("public key: {e}"),
    })
}

fn check_profile(cert: &Certificate) -> Result<(), TsaError> {
    let exts = cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    let eku = exts
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .ok_or_else(|| TsaError::BadCertificate {
            why: "no extended key usage (id-kp-timeStamping required)".into(),
        })?;
    if !eku.critical {
        return Err(TsaError::BadCertificate {
            why: "the extended key usage is not critical (RFC 3161 §2.3)".into(),
        });
    }
    let v = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).map_err(
        |e| TsaError::BadCertificate {
            why: format!("extended key usage: {e}"),
        },
    )?;
    if v.0 != [OID_KP_TIME_STAMPING] {
        return Err(TsaError::BadCertificate {
            why: "the extended key usage must be id-kp-timeStamping only".into(),
        });
    }
    Ok(())
}

fn check_trust(
    signer: &Certificate,
    signer_der: &[u8],
    trusted: &[Certificate],
    trusted_der: &[Vec<u8>],
) -> Result<(), TsaError> {
    if trusted_der.iter().any(|t| t.as_slice() == signer_der) {
        return Ok(());
    }
    let tbs = signer
        .tbs_certificate
        .to_der()
        .map_err(|e| malformed(format!("TBSCertificate: {e}")))?;
    let sig = signer
        .signature
        .as_bytes()
        .ok_or_else(|| malformed("certificate signature is not whole bytes"))?;
    let digest = match signer.signature_algorithm.oid {
        o if o == OID_SHA256_RSA || o == OID_ECDSA_SHA256 => DigestAlg::Sha256,
        o if o == OID_SHA384_RSA || o == OID_ECDSA_SHA384 => DigestAlg::Sha384,
        o if o == OID_SHA512_RSA || o == OID_ECDSA_SHA512 => DigestAlg::Sha512,
        o => {
            return Err(TsaError::UntrustedSigner(format!(
                "certificate signature algorithm {o} unsupported"
            )))
        }
    };
    for t in trusted {
        if t.tbs_certificate.subject != signer.tbs_certificate.issuer {
            continue;
        }
        let Ok(key) = public_key(t, digest) else {
            continue;
        };
        if key
            .verify_bytes(&SignedMessage::Bytes(tbs.clone()), sig)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(TsaError::UntrustedSigner(format!(
        "{} is not a trusted certificate nor issued by one",
        signer.tbs_certificate.subject
    )))
}
