//! Trusted keys: SPKI parsing (the `spki`/`der` crates), the canonical SPKI every key id is
//! computed over, key ids, and MCUboot KEYHASH/PUBKEY matching.

use crate::error::{Error, Reason};
use crate::hash::{digest, sha256};
use crate::{Alg, DigestAlg, TrustedKey};
use spki::der::asn1::ObjectIdentifier;
use spki::der::Decode as _;
use spki::SubjectPublicKeyInfoRef;

/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused) … }` — the P-256
/// SPKI up to the uncompressed point (RFC 5480).
const P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The P-384 SPKI up to the uncompressed point (`secp384r1`).
const P384_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
// The post-quantum SPKI prefixes of formats/signature-block.md ("Key id").
const MLDSA44_PREFIX: &[u8] = &[
    0x30, 0x82, 0x05, 0x32, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03,
    0x11, 0x03, 0x82, 0x05, 0x21, 0x00,
];
const MLDSA65_PREFIX: &[u8] = &[
    0x30, 0x82, 0x07, 0xb2, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03,
    0x12, 0x03, 0x82, 0x07, 0xa1, 0x00,
];
const MLDSA87_PREFIX: &[u8] = &[
    0x30, 0x82, 0x0a, 0x32, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03,
    0x13, 0x03, 0x82, 0x0a, 0x21, 0x00,
];
const SLH128S_PREFIX: &[u8] = &[
    0x30, 0x30, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x14, 0x03,
    0x21, 0x00,
];
const SLH128F_PREFIX: &[u8] = &[
    0x30, 0x30, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x15, 0x03,
    0x21, 0x00,
];
const SLH192S_PREFIX: &[u8] = &[
    0x30, 0x40, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x16, 0x03,
    0x31, 0x00,
];
const SLH256S_PREFIX: &[u8] = &[
    0x30, 0x50, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x18, 0x03,
    0x41, 0x00,
];

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The canonical SPKI DER prefix of `alg`: SPKI = prefix ‖ raw public key.
pub(crate) const fn spki_prefix(alg: Alg) -> &'static [u8] {
    match alg {
        Alg::EcdsaP256 => P256_PREFIX,
        Alg::EcdsaP384 => P384_PREFIX,
        Alg::MlDsa44 => MLDSA44_PREFIX,
        Alg::MlDsa65 => MLDSA65_PREFIX,
        Alg::MlDsa87 => MLDSA87_PREFIX,
        Alg::SlhDsaSha2_128s => SLH128S_PREFIX,
        Alg::SlhDsaSha2_128f => SLH128F_PREFIX,
        Alg::SlhDsaSha2_192s => SLH192S_PREFIX,
        Alg::SlhDsaSha2_256s => SLH256S_PREFIX,
    }
}

/// The NIST OID arc (`2.16.840.1.101.3.4.3.x`) of a post-quantum algorithm.
fn pq_alg_of_oid(oid: &ObjectIdentifier) -> Option<Alg> {
    const ARC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
    let b = oid.as_bytes();
    if b.len() != ARC.len() + 1 || &b[..ARC.len()] != ARC {
        return None;
    }
    match b[ARC.len()] {
        0x11 => Some(Alg::MlDsa44),
        0x12 => Some(Alg::MlDsa65),
        0x13 => Some(Alg::MlDsa87),
        0x14 => Some(Alg::SlhDsaSha2_128s),
        0x15 => Some(Alg::SlhDsaSha2_128f),
        0x16 => Some(Alg::SlhDsaSha2_192s),
        0x18 => Some(Alg::SlhDsaSha2_256s),
        _ => None,
    }
}

/// A trusted key, parsed: its algorithm and raw public key bytes.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) alg: Alg,
    pub(crate) raw: &'a [u8],
}

fn bad(detail: &'static str) -> Error {
    Error::new(Reason::InvalidKey, None, detail)
}

/// Parse and check one trusted key.
pub(crate) fn parse<'a>(k: &TrustedKey<'a>) -> Result<Key<'a>, Error> {
    let key = match *k {
        TrustedKey::Raw { alg, key } => Key { alg, raw: key },
        TrustedKey::Spki(der) => {
            let spki = SubjectPublicKeyInfoRef::from_der(der)
                .map_err(|_| bad("trusted key is not a DER SubjectPublicKeyInfo"))?;
            let raw = spki
                .subject_public_key
                .as_bytes()
                .ok_or(bad("trusted key bit string has unused bits"))?;
            let oid = spki.algorithm.oid;
            let alg = if oid == OID_EC_PUBLIC_KEY {
                let curve: ObjectIdentifier = spki
                    .algorithm
                    .parameters
                    .ok_or(bad("EC trusted key without a named curve"))?
                    .decode_as()
                    .map_err(|_| bad("EC trusted key parameters are not a named curve"))?;
                if curve == OID_P256 {
                    Alg::EcdsaP256
                } else if curve == OID_P384 {
                    Alg::EcdsaP384
                } else {
                    return Err(bad("EC trusted key on a curve other than P-256/P-384"));
                }
            } else if oid == OID_RSA {
                return Err(bad("RSA trusted keys are not supported by fwseal-verify"));
            } else {
                pq_alg_of_oid(&oid).ok_or(bad("trusted key algorithm is not supported"))?
            };
            let k = Key { alg, raw };
            // Key ids hash the canonical SPKI (formats/signature-block.md): a key given in any
            // other encoding (compressed point, explicit NULL parameters) would never match.
            let prefix = spki_prefix(alg);
            if der.len() != prefix.len() + raw.len() || &der[..prefix.len()] != prefix {
                return Err(bad(
                    "trusted key SPKI is not in the canonical encoding key ids are computed over",
                ));
            }
            k
        }
    };
    if !key.alg.supported() {
        return Err(bad(
            "trusted key algorithm is not compiled in (feature slh-dsa)",
        ));
    }
    if key.raw.len() != key.alg.public_key_len() {
        return Err(bad("trusted key has the wrong length for its algorithm"));
    }
    match key.alg {
        Alg::EcdsaP256 => {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(key.raw)
                .map_err(|_| bad("trusted P-256 key is not a point on the curve"))?;
        }
        Alg::EcdsaP384 => {
            p384::ecdsa::VerifyingKey::from_sec1_bytes(key.raw)
                .map_err(|_| bad("trusted P-384 key is not a point on the curve"))?;
        }
        _ => {}
    }
    if !key.alg.is_pq() && key.raw.first() != Some(&0x04) {
        return Err(bad("trusted ECDSA key is not an uncompressed point"));
    }
    Ok(key)
}

impl Key<'_> {
    /// Key id: SHA-256 of the canonical SPKI.
    pub(crate) fn key_id(&self) -> [u8; 32] {
        sha256(&[spki_prefix(self.alg), self.raw])
    }

    /// MCUboot KEYHASH matching: `alg` over the SPKI equals `value`.
    pub(crate) fn hash_matches(&self, alg: DigestAlg, value: &[u8]) -> bool {
        digest(alg, &[spki_prefix(self.alg), self.raw]).as_bytes() == value
    }

    /// MCUboot PUBKEY matching: the SPKI equals `value`.
    pub(crate) fn spki_equals(&self, value: &[u8]) -> bool {
        let p = spki_prefix(self.alg);
        value.len() == p.len() + self.raw.len()
            && &value[..p.len()] == p
            && &value[p.len()..] == self.raw
    }
}

/// The first trusted key for `alg` whose key id is `id`.
pub(crate) fn find_by_id<'k>(keys: &'k [TrustedKey<'k>], alg: Alg, id: &[u8]) -> Option<Key<'k>> {
    keys.iter()
        .filter_map(|k| parse(k).ok())
        .find(|k| k.alg == alg && k.key_id() == id)
}
