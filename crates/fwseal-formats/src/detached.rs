//! The detached signature document (`formats/detached.md`): JSON carrying the format, the
//! format-aware digests, the signatures and, where relevant, certificates.

use crate::{Format, FormatError, Prepared};
use fwseal_crypto::{DigestAlg, Digests, Family, SigAlg, Signature, SignatureSet, SignedMessage};
use serde::{Deserialize, Serialize};

/// Document type string.
pub const DOC_TYPE: &str = "https://fwseal.dev/detached-signature/v1";

/// One digest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestEntry {
    /// Algorithm.
    pub alg: DigestAlg,
    /// Lower-case hex.
    pub value: String,
}

/// The detached signature document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedDoc {
    /// Always [`DOC_TYPE`].
    #[serde(rename = "type")]
    pub doc_type: String,
    /// Image format.
    pub format: Format,
    /// The format-aware digest the device checks.
    pub digest: DigestEntry,
    /// Every digest the signatures depend on (one per digest algorithm).
    pub digests: Vec<DigestEntry>,
    /// Product id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// Signatures (classical first).
    pub signatures: Vec<Signature>,
    /// RFC 3161 timestamp tokens over some of the signatures (`formats/timestamp.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamps: Vec<fwseal_crypto::SigTimestamp>,
    /// DER certificates, base64 (Authenticode signer first).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64_vec")]
    pub certificates: Vec<Vec<u8>>,
    /// Format-specific extras (e.g. `.efi`: the Authenticode PKCS#7 as base64).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl DetachedDoc {
    /// Build the default document for a plan. Digests come from [`Prepared::digest`] and the
    /// per-algorithm digests the plan's messages used.
    pub fn new(plan: &(impl Prepared + ?Sized), set: &SignatureSet) -> Self {
        let (alg, d) = plan.digest();
        let digests = digest_entries(plan, set.signatures.iter().map(|s| s.alg));
        DetachedDoc {
            doc_type: DOC_TYPE.to_string(),
            format: plan.format(),
            digest: DigestEntry {
                alg,
                value: hex::encode(d),
            },
            digests,
            product: plan.request().options.product.clone(),
            signatures: set.signatures.clone(),
            timestamps: set.timestamps.clone(),
            certificates: set.certificates.clone(),
            extra: serde_json::Map::new(),
        }
    }

    /// Check `digest` and every `digests` entry against the image (`formats/detached.md`,
    /// "Verifying" step 1: all must match; an entry no signature depends on is an error too,
    /// so a stale or extra value never rides along unchecked).
    pub fn check_digests(&self, plan: &(impl Prepared + ?Sized)) -> Result<(), FormatError> {
        let (alg, d) = plan.digest();
        let primary = DigestEntry {
            alg,
            value: hex::encode(d),
        };
        if self.digest != primary {
            return Err(FormatError::Misuse(format!(
                "detached document digest ({} {}) does not match the image ({} {})",
                self.digest.alg, self.digest.value, primary.alg, primary.value
            )));
        }
        let want = digest_entries(plan, self.signatures.iter().map(|s| s.alg));
        for e in &self.digests {
            match want.iter().find(|w| w.alg == e.alg) {
                Some(w) if w == e => {}
                Some(w) => {
                    return Err(FormatError::Misuse(format!(
                        "detached document digests[] {} {} does not match the image ({})",
                        e.alg, e.value, w.value
                    )))
                }
                None => {
                    return Err(FormatError::Misuse(format!(
                        "detached document digests[] has a {} entry no signature depends on",
                        e.alg
                    )))
                }
            }
        }
        Ok(())
    }

    /// Serialize as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parse and check the type string.
    pub fn from_json(s: &[u8]) -> Result<Self, FormatError> {
        let d: DetachedDoc = serde_json::from_slice(s)
            .map_err(|e| FormatError::Misuse(format!("detached document: {e}")))?;
        if d.doc_type != DOC_TYPE {
            return Err(FormatError::Misuse(format!(
                "detached document type is {:?}, expected {DOC_TYPE:?}",
                d.doc_type
            )));
        }
        Ok(d)
    }
}

/// Domain-separation prefix of detached post-quantum messages:
/// `"fwseal/detached/v1/" ‖ format name ‖ 0x00`.
pub fn domain(format: Format) -> Vec<u8> {
    let mut m = b"fwseal/detached/v1/".to_vec();
    m.extend_from_slice(format.name().as_bytes());
    m.push(0);
    m
}

/// The standard detached message for `alg`, given the format-aware digests of the image:
/// classical algorithms sign the digest under their own hash directly (so stock tools such as
/// `openssl dgst -verify` check them); post-quantum algorithms sign
/// `domain(format) ‖ digest-alg id (1 byte) ‖ digest`.
pub fn message(
    format: Format,
    alg: SigAlg,
    digests: &Digests,
) -> Result<SignedMessage, FormatError> {
    let da = alg.digest_alg();
    let d = digests
        .get(da)
        .ok_or_else(|| FormatError::Misuse(format!("no {da} digest computed for {alg}")))?;
    Ok(match alg.family() {
        Family::Classical => SignedMessage::Prehashed {
            alg: da,
            digest: d.to_vec(),
        },
        Family::PostQuantum => {
            let mut m = domain(format);
            m.push(da.id());
            m.extend_from_slice(d);
            SignedMessage::Bytes(m)
        }
    })
}

/// The document's `digests`: the primary digest, then one entry per further digest algorithm
/// the signatures `algs` depend on (the digest inside each one's message).
fn digest_entries(
    plan: &(impl Prepared + ?Sized),
    algs: impl Iterator<Item = SigAlg>,
) -> Vec<DigestEntry> {
    let (alg, d) = plan.digest();
    let mut digests = vec![DigestEntry {
        alg,
        value: hex::encode(&d),
    }];
    for a in algs {
        let da = a.digest_alg();
        if digests.iter().any(|e| e.alg == da) {
            continue;
        }
        let msg = if a.family() == Family::PostQuantum {
            plan.pq_message(a).ok()
        } else {
            plan.classical_message(a, None).ok()
        };
        if let Some(v) = msg.and_then(|m| digest_of_message(plan.format(), a, &m)) {
            digests.push(DigestEntry {
                alg: da,
                value: hex::encode(v),
            });
        }
    }
    digests
}

fn digest_of_message(format: Format, alg: SigAlg, m: &SignedMessage) -> Option<Vec<u8>> {
    match m {
        SignedMessage::Prehashed { digest, .. } => Some(digest.clone()),
        SignedMessage::Bytes(b) => {
            let p = domain(format);
            let rest = b.strip_prefix(p.as_slice())?;
            let (&id, d) = rest.split_first()?;
            (id == alg.digest_alg().id()).then(|| d.to_vec())
        }
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
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
