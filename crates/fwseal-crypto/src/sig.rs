//! Signatures, signature sets, key ids and the message a signer must sign.

use crate::alg::{DigestAlg, Family, SigAlg};
use serde::{Deserialize, Serialize};

/// A key id: SHA-256 of the public key's DER `SubjectPublicKeyInfo`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// The key id of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let d = DigestAlg::Sha256.hash(spki_der);
        let mut out = [0u8; 32];
        out.copy_from_slice(&d);
        KeyId(out)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        let a: [u8; 32] = v.try_into().ok()?;
        Some(KeyId(a))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::from_hex(&s).ok_or_else(|| serde::de::Error::custom("key id must be 64 hex digits"))
    }
}

/// What a signer must sign.
///
/// Classical algorithms always end up signing a hash; post-quantum algorithms sign the message
/// bytes themselves (pure mode, empty context). The format engine decides which variant applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedMessage {
    /// A classical signature over an already computed hash: ECDSA over `digest`, RSA PKCS#1 v1.5
    /// over `DigestInfo(alg, digest)`, RSA-PSS with `digest` as mHash. `alg` must equal the
    /// signature algorithm's own hash. Not valid for post-quantum algorithms.
    Prehashed {
        /// Hash algorithm of `digest`.
        alg: DigestAlg,
        /// The hash value.
        digest: Vec<u8>,
    },
    /// Sign these bytes: classical algorithms hash them with their own hash first; ML-DSA and
    /// SLH-DSA sign them as the message M with an empty context string.
    Bytes(Vec<u8>),
}

impl SignedMessage {
    /// The hash a classical algorithm signs for this message.
    pub fn classical_hash(&self, alg: SigAlg) -> Result<Vec<u8>, crate::CryptoError> {
        let want = alg.digest_alg();
        match self {
            SignedMessage::Prehashed { alg: a, digest } => {
                if *a != want || digest.len() != want.len() {
                    return Err(crate::CryptoError::Misuse(format!(
                        "{alg} needs a {want} prehash, got {a} of {} bytes",
                        digest.len()
                    )));
                }
                Ok(digest.clone())
            }
            SignedMessage::Bytes(m) => Ok(want.hash(m)),
        }
    }
}

/// One signature inside a [`SignatureSet`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Algorithm.
    pub alg: SigAlg,
    /// Which key made it.
    pub key_id: KeyId,
    /// Signature bytes (ECDSA: DER; RSA: big-endian modulus-length; PQ: FIPS 204/205 encoding).
    #[serde(with = "b64")]
    pub bytes: Vec<u8>,
}

/// An RFC 3161 timestamp token over one signature of a [`SignatureSet`]
/// (`formats/timestamp.md`): the token's message imprint is the hash of that signature's
/// [`Signature::bytes`]. The signature is named by algorithm and key id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigTimestamp {
    /// Algorithm of the timestamped signature.
    pub alg: SigAlg,
    /// Key id of the timestamped signature.
    pub key_id: KeyId,
    /// The `TimeStampToken` (a CMS `ContentInfo`, DER), base64 in JSON.
    #[serde(with = "b64")]
    pub token: Vec<u8>,
}

impl SigTimestamp {
    /// Whether this token is the one of `sig` (same algorithm and key).
    pub fn covers(&self, sig: &Signature) -> bool {
        self.alg == sig.alg && self.key_id == sig.key_id
    }
}

/// The signatures a format embeds for one image: typically one classical and one post-quantum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureSet {
    /// Signatures, at most one per family is usual but not required.
    pub signatures: Vec<Signature>,
    /// DER X.509 certificates where the format carries them (Authenticode): signer first.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64_vec")]
    pub certificates: Vec<Vec<u8>>,
    /// DER `SubjectPublicKeyInfo` of the keys that made the signatures, when the signer knows
    /// them (filled by `fwseal_formats::sign_prepared` from `Signer::public_key()`). Formats that
    /// embed a key hash derived from the public key (MCUboot KEYHASH over PKCS#1 for RSA) look the
    /// key up here by key id. Optional; empty in older documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64_vec")]
    pub public_keys: Vec<Vec<u8>>,
    /// RFC 3161 timestamp tokens over some of [`SignatureSet::signatures`] (at most one per
    /// signature; see [`SigTimestamp`]). Empty when no TSA is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamps: Vec<SigTimestamp>,
}

impl SignatureSet {
    /// The SPKI DER in [`SignatureSet::public_keys`] whose key id is `id`.
    pub fn public_key_for(&self, id: &KeyId) -> Option<&[u8]> {
        self.public_keys
            .iter()
            .find(|k| KeyId::of_spki(k) == *id)
            .map(|k| k.as_slice())
    }

    /// The first signature of the given family.
    pub fn by_family(&self, f: Family) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.alg.family() == f)
    }

    /// The classical half, if any.
    pub fn classical(&self) -> Option<&Signature> {
        self.by_family(Family::Classical)
    }

    /// The post-quantum half, if any.
    pub fn post_quantum(&self) -> Option<&Signature> {
        self.by_family(Family::PostQuantum)
    }

    /// The timestamp token over `sig`, if one was obtained.
    pub fn timestamp_of(&self, sig: &Signature) -> Option<&[u8]> {
        self.timestamps
            .iter()
            .find(|t| t.covers(sig))
            .map(|t| t.token.as_slice())
    }
}

pub(crate) mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

mod b64_vec {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        )
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
