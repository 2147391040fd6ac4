//! Trusted public keys for offline verification, and the verification itself.

use anyhow::{bail, Context, Result};
use der::{Decode, Encode};
use fwseal_crypto::verify::spki_pem_decode;
use fwseal_crypto::{Family, KeyId, PublicKey, SigAlg};
use fwseal_formats::detached::DetachedDoc;
use fwseal_formats::{extract, prepare, Format, FoundSignature, Mode, Request, SignOptions};
use std::path::Path;

/// A trusted public key loaded from a PEM/DER SPKI or an X.509 certificate.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    /// Where it came from (for messages).
    pub source: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// SHA-256 of `spki`.
    pub key_id: KeyId,
    /// The certificate's validity (notBefore, notAfter; Unix seconds) when the key was given
    /// as an X.509 certificate: a signature by it is accepted only if the certificate is valid
    /// at the signature's verified timestamp, or now when it has none
    /// (`formats/timestamp.md`).
    pub validity: Option<(i64, i64)>,
}

impl TrustedKey {
    /// Load from a file: PEM `PUBLIC KEY`, PEM `CERTIFICATE`, or DER of either.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("read key {}", path.display()))?;
        let (label, der) = match std::str::from_utf8(&bytes) {
            Ok(t) if t.contains("-----BEGIN") => {
                spki_pem_decode(t).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            _ => (String::new(), bytes),
        };
        let (spki, validity) = if label == "CERTIFICATE"
            || (label.is_empty() && x509_cert::Certificate::from_der(&der).is_ok())
        {
            let cert = x509_cert::Certificate::from_der(&der)
                .with_context(|| format!("{}: not an X.509 certificate", path.display()))?;
            let v = &cert.tbs_certificate.validity;
            let secs = |t: &x509_cert::time::Time| {
                i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
            };
            (
                cert.tbs_certificate.subject_public_key_info.to_der()?,
                Some((secs(&v.not_before), secs(&v.not_after))),
            )
        } else {
            spki::SubjectPublicKeyInfoOwned::from_der(&der)
                .with_context(|| format!("{}: not a SubjectPublicKeyInfo", path.display()))?;
            (der, None)
        };
        Ok(TrustedKey {
            source: path.display().to_string(),
            key_id: KeyId::of_spki(&spki),
            spki,
            validity,
        })
    }
}

/// Which halves must be present and valid.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    /// Require a valid classical signature.
    pub classical: bool,
    /// Require a valid post-quantum signature.
    pub pq: bool,
}

/// One verified signature.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Checked {
    /// Algorithm.
    pub alg: SigAlg,
    /// The key that verified it.
    pub key_id: String,
    /// Key file.
    pub key_source: String,
    /// Where the signature came from (`embedded` / `detached`).
    pub origin: &'static str,
    /// Its RFC 3161 timestamp, if it carries one: `genTime` and whether the token was
    /// verified against a trusted TSA certificate (`--tsa-cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampSeen>,
}

/// A timestamp token found with a signature.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TimestampSeen {
    /// `genTime` (RFC 3339) as the token states it.
    pub gen_time: String,
    /// The TSA (signer certificate subject).
    pub tsa: String,
    /// Verified against a `--tsa-cert` (false: no TSA certificate was given, so the token was
    /// only decoded and the current time applies).
    pub verified: bool,
}

/// Unix seconds now.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 of Unix seconds (for messages).
fn rfc3339(t: i64) -> String {
    u64::try_from(t)
        .ok()
        .and_then(|s| {
            der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(s)).ok()
        })
        .map(|g| {
            let dt = g.to_date_time();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minutes(),
                dt.seconds()
            )
        })
        .unwrap_or_else(|| t.to_string())
}

/// The timestamp of `found`, checked against the trusted TSA certificates (`tsa`, DER): a
/// token that is present must verify when TSA certificates are given.
fn timestamp_of(
    found: &FoundSignature,
    tsa: &[Vec<u8>],
    origin: &str,
) -> Result<Option<(TimestampSeen, i64)>> {
    let Some(tok) = &found.timestamp else {
        return Ok(None);
    };
    let alg = found.alg;
    if tsa.is_empty() {
        let info = fwseal_tsa::inspect(tok)
            .with_context(|| format!("{origin} {alg} signature: timestamp token"))?;
        return Ok(Some((
            TimestampSeen {
                gen_time: info.gen_time,
                tsa: info.tsa,
                verified: false,
            },
            now_unix(),
        )));
    }
    let info = fwseal_tsa::verify(tok, &found.bytes, tsa)
        .with_context(|| format!("{origin} {alg} signature: timestamp token does not verify"))?;
    let t = info.gen_time_unix;
    Ok(Some((
        TimestampSeen {
            gen_time: info.gen_time,
            tsa: info.tsa,
            verified: true,
        },
        t,
    )))
}

/// The trusted keys for `alg` that the signature names (by key id, or by the format's key hint:
/// MCUboot's KEYHASH under the image hash algorithm, or its full PUBKEY). The format engine
/// decides what a hint means ([`FoundSignature::names_key`]).
fn find_key<'a>(keys: &'a [TrustedKey], found: &FoundSignature) -> Vec<&'a TrustedKey> {
    keys.iter()
        .filter(|k| PublicKey::from_spki_der(found.alg, &k.spki).is_ok())
        .filter(|k| found.names_key(&k.spki))
        .collect()
}

fn check(
    keys: &[TrustedKey],
    found: &FoundSignature,
    origin: &'static str,
    tsa: &[Vec<u8>],
) -> Result<Checked> {
    let (alg, msg, sig) = (found.alg, &found.message, &found.bytes);
    let cands = find_key(keys, found);
    if cands.is_empty() {
        bail!(
            "{origin} {alg} signature: no trusted key matches (key {})",
            match (&found.key_id, &found.key_hint) {
                (Some(k), _) => format!("id {}", k.to_hex()),
                (None, Some(h)) => h.to_string(),
                (None, None) => "not recorded".into(),
            }
        );
    }
    let ts = timestamp_of(found, tsa, origin)?;
    let mut last = None;
    for k in cands {
        let pk = PublicKey::from_spki_der(alg, &k.spki)?;
        if let Err(e) = pk.verify_bytes(msg, sig) {
            last = Some(format!("{origin} {alg} signature does not verify: {e}"));
            continue;
        }
        // A certificate must be valid when the signature was made: at its verified timestamp,
        // or now when it has none.
        if let Some((nb, na)) = k.validity {
            let (t, when) = match &ts {
                Some((seen, t)) if seen.verified => (*t, "its timestamp's genTime"),
                Some(_) => (
                    now_unix(),
                    "now (its timestamp is not trusted: no --tsa-cert)",
                ),
                None => (now_unix(), "now (it has no timestamp)"),
            };
            if t < nb || t > na {
                last = Some(format!(
                    "{origin} {alg} signature: certificate {} is valid {} .. {}, not at {when}, {}",
                    k.source,
                    rfc3339(nb),
                    rfc3339(na),
                    rfc3339(t)
                ));
                continue;
            }
        }
        return Ok(Checked {
            alg,
            key_id: k.key_id.to_hex(),
            key_source: k.source.clone(),
            origin,
            timestamp: ts.map(|(seen, _)| seen),
        });
    }
    bail!("{}", last.unwrap_or_default())
}

/// Verify an image offline: embedded signatures (if any) and a detached document (if given).
/// Returns every signature that verified; fails if any signature present fails, or a required
/// half is missing.
pub fn verify_image(
    format: Format,
    data: &[u8],
    doc: Option<&DetachedDoc>,
    keys: &[TrustedKey],
    need: Requirement,
    tsa: &[Vec<u8>],
) -> Result<Vec<Checked>> {
    let mut ok = Vec::new();
    let embedded = extract(format, data);
    match (&embedded, doc) {
        (Err(fwseal_formats::FormatError::NotSigned(_)), Some(_)) => {}
        (Err(e), _) => bail!("{e}"),
        (Ok(ex), _) => {
            for s in &ex.signatures {
                ok.push(check(keys, s, "embedded", tsa)?);
            }
        }
    }
    if let Some(doc) = doc {
        if doc.format != format {
            bail!("detached document is for {}, image is {format}", doc.format);
        }
        let classical = doc
            .signatures
            .iter()
            .find(|s| s.alg.family() == Family::Classical)
            .map(|s| s.alg);
        let pq = doc
            .signatures
            .iter()
            .find(|s| s.alg.family() == Family::PostQuantum)
            .map(|s| s.alg);
        // A format whose primary digest is selectable (raw) reads `raw_digest`; the others
        // ignore it and the digest comparison below catches a mismatch.
        let mut options = SignOptions {
            product: doc.product.clone(),
            raw_digest: doc.digest.alg,
            ..SignOptions::default()
        };
        // A sparse `.hex` image's digests depend on the gap byte its document records
        // (formats/hex.md §4); the signatures bind it, so reading it from the document is safe.
        if let Some(fill) = doc.extra.get("fill") {
            options.hex_fill = fill
                .as_u64()
                .and_then(|f| u8::try_from(f).ok())
                .with_context(|| format!("detached document extra.fill is not a byte: {fill}"))?;
        }
        let req = Request {
            classical,
            pq,
            mode: Mode::Detached,
            options,
        };
        let plan = prepare(format, data, &req)?;
        doc.check_digests(&*plan)?;
        let pq_sig = doc
            .signatures
            .iter()
            .find(|s| s.alg.family() == Family::PostQuantum);
        for s in &doc.signatures {
            let msg = match s.alg.family() {
                Family::PostQuantum => plan.pq_message(s.alg)?,
                Family::Classical => plan.classical_message(s.alg, pq_sig)?,
            };
            let found = FoundSignature {
                alg: s.alg,
                key_id: Some(s.key_id),
                key_hint: None,
                bytes: s.bytes.clone(),
                message: msg,
                timestamp: doc
                    .timestamps
                    .iter()
                    .find(|t| t.covers(s))
                    .map(|t| t.token.clone()),
            };
            ok.push(check(keys, &found, "detached", tsa)?);
        }
    }
    if ok.is_empty() {
        bail!("no signature found (image not signed and no detached document given)");
    }
    let has = |f: Family| ok.iter().any(|c| c.alg.family() == f);
    if need.classical && !has(Family::Classical) {
        bail!("policy requires a classical signature; none verified");
    }
    if need.pq && !has(Family::PostQuantum) {
        bail!("policy requires a post-quantum signature; none verified");
    }
    Ok(ok)
}

/// Every `CERTIFICATE` in a PEM file, as DER (at least one).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let certs =
        x509_cert::Certificate::load_pem_chain(pem).context("not a PEM certificate file")?;
    if certs.is_empty() {
        bail!("no CERTIFICATE in the file");
    }
    certs
        .iter()
        .map(|c| c.to_der().context("certificate"))
        .collect()
}
