//! Client-side hashing ("hash locally"): the wire types of the daemon's digest-only signing
//! endpoints (`GET /v1/products/{product}/sign-params`, `POST /v1/products/{product}/sign-digest`)
//! and the sans-I/O driver that turns local signing plans into digest-only requests and the
//! answers into [`SignatureSet`]s. (Moved here from `fwseal_formats::remote`.)
//!
//! The client runs the same format engine as the daemon
//! ([`fwseal_formats::files::prepare_file`]), so the messages it sends are exactly those the
//! daemon would have computed from the image. The daemon signs *messages*, never images: a
//! post-quantum message is the format's domain-separated byte string, a classical one a prehash
//! (or, for Authenticode, the DER authenticated attributes).
//!
//! One batch takes one request, or two when a plan's classical half covers its post-quantum
//! signature ([`Prepared::classical_needs_pq`], MCUboot embedded hybrid): the first request
//! returns the PQ signature, the second asks for the classical one and *carries* the PQ
//! signature with its message, so the daemon can check it made it and can write the whole
//! item's provenance. See docs/api.md.

use base64::Engine as _;
use fwseal_crypto::{
    DigestAlg, Family, PublicKey, SigAlg, SigTimestamp, Signature, SignatureSet, SignedMessage,
};
use fwseal_formats::{Format, Mode, Prepared, Request, SignOptions};
use serde::{Deserialize, Serialize};

/// Most items in one request.
pub const MAX_ITEMS: usize = 256;
/// Largest message the daemon signs (bytes); fwseal's messages are far smaller.
pub const MAX_MESSAGE: usize = 64 << 10;

/// What a product signs with, for one format (`GET /v1/products/{p}/sign-params`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignParams {
    /// Format these parameters are for.
    pub format: Format,
    /// Classical algorithm, if the product's policy has one.
    pub classical: Option<SigAlg>,
    /// Post-quantum algorithm, if the product's policy has one.
    pub pq: Option<SigAlg>,
    /// The product's format options (product id, security counter, digests, addresses).
    pub options: SignOptions,
}

impl SignParams {
    /// The signing request for `mode`.
    pub fn request(&self, mode: Mode) -> Request {
        Request {
            classical: self.classical,
            pq: self.pq,
            mode,
            options: self.options.clone(),
        }
    }
}

/// Client-asserted build metadata (recorded in the provenance as such).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildClaims {
    /// Source repository URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
    /// Source commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Source ref.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// CI run URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run_url: Option<String>,
    /// CI builder id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_id: Option<String>,
}

/// A message to sign, on the wire: exactly one of `prehashed` (hex; the hash algorithm is the
/// signature algorithm's own) and `bytes` (base64).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireMessage {
    /// Signature algorithm.
    pub alg: SigAlg,
    /// Hex hash (classical algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prehashed: Option<String>,
    /// Base64 message bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

impl WireMessage {
    /// Encode.
    pub fn new(alg: SigAlg, m: &SignedMessage) -> Self {
        match m {
            SignedMessage::Prehashed { digest, .. } => WireMessage {
                alg,
                prehashed: Some(hex::encode(digest)),
                bytes: None,
            },
            SignedMessage::Bytes(b) => WireMessage {
                alg,
                prehashed: None,
                bytes: Some(base64::engine::general_purpose::STANDARD.encode(b)),
            },
        }
    }

    /// Decode and check the shape: a post-quantum algorithm signs bytes, a prehash has the
    /// algorithm's hash length, nothing exceeds [`MAX_MESSAGE`].
    pub fn decode(&self) -> Result<SignedMessage, String> {
        let alg = self.alg;
        let m = match (&self.prehashed, &self.bytes) {
            (Some(h), None) => {
                if alg.family() == Family::PostQuantum {
                    return Err(format!("{alg} signs message bytes, not a prehash"));
                }
                let da = alg.digest_alg();
                let digest = hex::decode(h).map_err(|e| format!("{alg} prehash: {e}"))?;
                if digest.len() != da.len() {
                    return Err(format!(
                        "{alg} prehash must be {} bytes of {da}, got {}",
                        da.len(),
                        digest.len()
                    ));
                }
                SignedMessage::Prehashed { alg: da, digest }
            }
            (None, Some(b)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("{alg} message base64: {e}"))?;
                if bytes.is_empty() || bytes.len() > MAX_MESSAGE {
                    return Err(format!(
                        "{alg} message must be 1..={MAX_MESSAGE} bytes, got {}",
                        bytes.len()
                    ));
                }
                SignedMessage::Bytes(bytes)
            }
            _ => return Err(format!("{alg}: give exactly one of prehashed and bytes")),
        };
        Ok(m)
    }
}

/// A signature from an earlier request for the same item, with the message it signed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carried {
    /// The message.
    pub message: WireMessage,
    /// The signature the daemon returned for it.
    pub signature: Signature,
}

/// The format-aware digest the device checks, as the client computed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDigest {
    /// Hash algorithm.
    pub alg: DigestAlg,
    /// Hex value.
    pub value: String,
}

/// One image of a digest-only request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestItem {
    /// Input file name (recorded).
    pub name: String,
    /// Format the client detected.
    pub format: Format,
    /// Embedded or detached.
    pub mode: Mode,
    /// SHA-256 (hex) of the unsigned input, computed by the client.
    pub input_sha256: String,
    /// The format-aware digest, computed by the client.
    pub digest: WireDigest,
    /// Image version the plan was made with (recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Messages to sign now (at most one per algorithm).
    #[serde(default)]
    pub sign: Vec<WireMessage>,
    /// Signatures released earlier for this item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<Carried>,
}

/// Body of `POST /v1/products/{p}/sign-digest`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSignRequest {
    /// The images.
    pub items: Vec<DigestItem>,
    /// Build metadata for every item's provenance.
    #[serde(default)]
    pub claims: BuildClaims,
}

/// The daemon's answer for one item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestItemResult {
    /// The item's name.
    pub name: String,
    /// The signatures made now, in request order.
    pub signatures: Vec<Signature>,
    /// Base64 DER SPKI of the key of each signature (same order).
    pub public_keys: Vec<String>,
    /// Base64 DER certificates of the classical key (Authenticode).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Whether the item now has every signature the product's policy requires.
    pub complete: bool,
    /// The signed provenance (one DSSE JSON line) once the item is complete.
    #[serde(default)]
    pub provenance: Option<String>,
    /// RFC 3161 tokens over the signatures made now, one per signature, when the appliance
    /// has `[tsa]` (`formats/timestamp.md`); absent otherwise. The client puts them in the
    /// image (`.efi`) and the detached document as the daemon would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamps: Vec<SigTimestamp>,
}

/// Body of a successful `sign-digest` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestSignResponse {
    /// One result per item, in request order.
    pub items: Vec<DigestItemResult>,
}

/// One image prepared on the client.
pub struct LocalItem {
    /// File name.
    pub name: String,
    /// SHA-256 of the unsigned input.
    pub input_sha256: [u8; 32],
    /// Image version string given by the user.
    pub version: Option<String>,
    /// The plan.
    pub plan: Box<dyn Prepared>,
}

/// A locally prepared image with the daemon's signatures.
pub struct RemoteSigned {
    /// Signatures (classical first), public keys and certificates, ready for `embed`.
    pub set: SignatureSet,
    /// The provenance line.
    pub provenance: Option<String>,
}

/// Why a digest-only signing failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError<E: std::error::Error + 'static> {
    /// The transport or the daemon refused.
    #[error(transparent)]
    Send(E),
    /// A plan could not produce its message.
    #[error(transparent)]
    Format(#[from] fwseal_formats::FormatError),
    /// The answer does not fit the request, or a signature does not verify.
    #[error("daemon answer: {0}")]
    Answer(String),
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("{what}: {e}"))
}

/// Sign `items` through `send` (one call per phase: one, or two when a classical half covers
/// its PQ signature). Every returned signature is verified against its message and the
/// returned public key before it is accepted.
pub fn sign_remote<E: std::error::Error + 'static>(
    items: &[LocalItem],
    claims: &BuildClaims,
    mut send: impl FnMut(&DigestSignRequest) -> Result<DigestSignResponse, E>,
) -> Result<Vec<RemoteSigned>, RemoteError<E>> {
    let mut got: Vec<Got> = items.iter().map(|_| Got::default()).collect();
    let item_for = |it: &LocalItem, sign: Vec<WireMessage>, carried: Vec<Carried>| {
        let (da, dv) = it.plan.digest();
        DigestItem {
            name: it.name.clone(),
            format: it.plan.format(),
            mode: it.plan.request().mode,
            input_sha256: hex::encode(it.input_sha256),
            digest: WireDigest {
                alg: da,
                value: hex::encode(dv),
            },
            version: it.version.clone(),
            sign,
            carried,
        }
    };
    // Phase 1: every PQ message, and every classical message that does not need the PQ
    // signature.
    let mut req = DigestSignRequest {
        items: Vec::new(),
        claims: claims.clone(),
    };
    for it in items {
        let r = it.plan.request();
        let mut sign = Vec::new();
        if let Some(pq) = r.pq {
            sign.push(WireMessage::new(pq, &it.plan.pq_message(pq)?));
        }
        if let Some(c) = r.classical {
            if !it.plan.classical_needs_pq() {
                sign.push(WireMessage::new(c, &it.plan.classical_message(c, None)?));
            }
        }
        req.items.push(item_for(it, sign, Vec::new()));
    }
    absorb(&send(&req).map_err(RemoteError::Send)?, &req, &mut got)?;

    // Phase 2: classical halves that cover the PQ signature.
    let mut req2 = DigestSignRequest {
        items: Vec::new(),
        claims: claims.clone(),
    };
    let mut which = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let r = it.plan.request();
        let (Some(c), true) = (r.classical, it.plan.classical_needs_pq()) else {
            continue;
        };
        let pq = got[i]
            .sigs
            .iter()
            .find(|(_, s, _)| s.alg.family() == Family::PostQuantum)
            .ok_or_else(|| RemoteError::Answer(format!("{}: no post-quantum signature", it.name)))?
            .clone();
        let m = WireMessage::new(c, &it.plan.classical_message(c, Some(&pq.1))?);
        let carried = vec![Carried {
            message: pq.0.clone(),
            signature: pq.1.clone(),
        }];
        req2.items.push(item_for(it, vec![m], carried));
        which.push(i);
    }
    if !req2.items.is_empty() {
        let resp = send(&req2).map_err(RemoteError::Send)?;
        let mut sub: Vec<Got> = which.iter().map(|_| Got::default()).collect();
        absorb(&resp, &req2, &mut sub)?;
        for (i, g) in which.into_iter().zip(sub) {
            got[i].sigs.extend(g.sigs);
            got[i].certificates.extend(g.certificates);
            got[i].provenance = g.provenance;
            got[i].timestamps.extend(g.timestamps);
        }
    }

    let mut out = Vec::new();
    for (it, g) in items.iter().zip(got) {
        let r = it.plan.request();
        let mut set = SignatureSet {
            signatures: Vec::new(),
            certificates: g.certificates,
            public_keys: Vec::new(),
            timestamps: Vec::new(),
        };
        // Classical first, as `sign_prepared` orders them.
        for want in [r.classical, r.pq].into_iter().flatten() {
            let (_, s, pk) = g
                .sigs
                .iter()
                .find(|(_, s, _)| s.alg == want)
                .ok_or_else(|| RemoteError::Answer(format!("{}: no {want} signature", it.name)))?;
            set.signatures.push(s.clone());
            set.public_keys.push(pk.clone());
        }
        // The tokens of the signatures kept, in their order.
        for s in &set.signatures {
            if let Some(t) = g.timestamps.iter().find(|t| t.covers(s)) {
                set.timestamps.push(t.clone());
            }
        }
        out.push(RemoteSigned {
            set,
            provenance: g.provenance,
        });
    }
    Ok(out)
}

/// What the daemon returned for one item so far.
#[derive(Default)]
struct Got {
    sigs: Vec<(WireMessage, Signature, Vec<u8>)>,
    certificates: Vec<Vec<u8>>,
    provenance: Option<String>,
    timestamps: Vec<SigTimestamp>,
}

/// Check an answer against its request and collect verified signatures.
fn absorb<E: std::error::Error + 'static>(
    resp: &DigestSignResponse,
    req: &DigestSignRequest,
    got: &mut [Got],
) -> Result<(), RemoteError<E>> {
    if resp.items.len() != req.items.len() || got.len() != req.items.len() {
        return Err(RemoteError::Answer(format!(
            "{} results for {} items",
            resp.items.len(),
            req.items.len()
        )));
    }
    for ((item, res), sink) in req.items.iter().zip(&resp.items).zip(got.iter_mut()) {
        if res.signatures.len() != item.sign.len() || res.public_keys.len() != item.sign.len() {
            return Err(RemoteError::Answer(format!(
                "{}: {} signatures for {} messages",
                item.name,
                res.signatures.len(),
                item.sign.len()
            )));
        }
        for ((m, s), pk) in item.sign.iter().zip(&res.signatures).zip(&res.public_keys) {
            let spki = b64(pk, "public key").map_err(RemoteError::Answer)?;
            let key = PublicKey::from_spki_der(m.alg, &spki)
                .map_err(|e| RemoteError::Answer(format!("{}: {e}", item.name)))?;
            let msg = m.decode().map_err(RemoteError::Answer)?;
            if s.alg != m.alg || s.key_id != key.key_id() {
                return Err(RemoteError::Answer(format!(
                    "{}: signature does not match the {} request or its key",
                    item.name, m.alg
                )));
            }
            key.verify(&msg, s).map_err(|e| {
                RemoteError::Answer(format!("{}: {} signature: {e}", item.name, m.alg))
            })?;
            sink.sigs.push((m.clone(), s.clone(), spki));
        }
        for c in &res.certificates {
            sink.certificates
                .push(b64(c, "certificate").map_err(RemoteError::Answer)?);
        }
        sink.provenance = res.provenance.clone();
        for t in &res.timestamps {
            if !res.signatures.iter().any(|s| t.covers(s)) {
                return Err(RemoteError::Answer(format!(
                    "{}: a timestamp token for a {} signature the answer does not have",
                    item.name, t.alg
                )));
            }
            sink.timestamps.push(t.clone());
        }
    }
    Ok(())
}
