//! The transparency log on the client side: `fwseal log checkpoint | verify-consistency |
//! monitor`, and the offline bundle check of `fwseal verify --bundle`.
//!
//! `--log-key KEYS` is the JSON answer of `GET /v1/appliance/keys` (what
//! `curl -H "Authorization: Bearer …" $FWSEAL_URL/v1/appliance/keys > appliance-keys.json`
//! saves): the appliance's ECDSA P-256 and ML-DSA-65 public keys. A tree head must be signed
//! by both (`formats/log.md` §5). The log's origin is `--origin`, by default the appliance's
//! default origin `fwseal.invalid/audit/<first 16 hex of the ECDSA key id>` (an appliance
//! configured with `log_origin` needs `--origin`).
//!
//! Exit codes: 0 verified; 1 a verification failed (bad signature, not included, not
//! consistent: a fork); 3 server unreachable; 4 unreadable input.

use crate::client::{write_atomic, ApiError, Client, Unreachable};
use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Args, Subcommand};
use fwseal_api::{Bundle, ConsistencyProof, ProductKeys, BUNDLE_FORMAT};
use fwseal_crypto::PublicKey;
use fwseal_tlog::Checkpoint as TreeHead;
use std::path::{Path, PathBuf};

/// A check that failed (exit 1), as opposed to input that could not be read (exit 4).
#[derive(Debug)]
pub struct LogFailure(pub String);
impl std::fmt::Display for LogFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for LogFailure {}

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(LogFailure(msg.into()).into())
}

/// `fwseal log …`.
#[derive(Subcommand)]
pub enum LogCmd {
    /// Fetch the newest signed tree head, verify it and print it.
    Checkpoint(CheckpointArgs),
    /// Check that the tree head in NEW extends the one in OLD (two signed-note files).
    VerifyConsistency(ConsistencyArgs),
    /// Fetch the newest tree head, check it extends the one in the state file, update it.
    Monitor(MonitorArgs),
}

/// The trusted log: keys and origin.
#[derive(Args, Clone)]
pub struct LogKeyArgs {
    /// The appliance keys: the JSON of `GET /v1/appliance/keys`.
    #[arg(long = "log-key")]
    pub log_key: PathBuf,
    /// The log's origin (default: the appliance's default origin, derived from its ECDSA key).
    #[arg(long)]
    pub origin: Option<String>,
}

/// `fwseal log checkpoint`.
#[derive(Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub trust: LogKeyArgs,
    /// Also save the note to this file.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// `fwseal log verify-consistency`.
#[derive(Args)]
pub struct ConsistencyArgs {
    /// The older signed tree head (note file).
    pub old: PathBuf,
    /// The newer signed tree head (note file).
    pub new: PathBuf,
    #[command(flatten)]
    pub trust: LogKeyArgs,
    /// The consistency proof (JSON of `GET /v1/log/consistency`), offline; default: ask the
    /// server.
    #[arg(long)]
    pub proof: Option<PathBuf>,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// `fwseal log monitor`.
#[derive(Args)]
pub struct MonitorArgs {
    /// The last tree head seen (a signed note); created on the first run.
    #[arg(long)]
    pub state: PathBuf,
    #[command(flatten)]
    pub trust: LogKeyArgs,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// The trusted log keys from the JSON of `GET /v1/appliance/keys`.
pub fn load_trust(a: &LogKeyArgs) -> Result<fwseal_tlog::TrustedKeys> {
    let text = std::fs::read_to_string(&a.log_key)
        .with_context(|| format!("read {}", a.log_key.display()))?;
    let pk: ProductKeys = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not the JSON of GET /v1/appliance/keys",
            a.log_key.display()
        )
    })?;
    let keys = pk
        .keys
        .iter()
        .map(|k| PublicKey::from_spki_pem(k.alg, &k.spki_pem))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: a key does not parse", a.log_key.display()))?;
    let origin = match &a.origin {
        Some(o) => o.clone(),
        None => {
            let ec = keys
                .iter()
                .find(|k| k.alg() == fwseal_crypto::SigAlg::EcdsaP256Sha256)
                .with_context(|| format!("{}: no ECDSA P-256 key", a.log_key.display()))?;
            fwseal_store::tree::default_origin(ec)
        }
    };
    let trust = fwseal_store::tree::note_trust(&origin, &fwseal_store::TrustedKeys::new(keys));
    if trust.keys.len() < 2 {
        bail!(
            "{}: needs the appliance's ECDSA P-256 and ML-DSA-65 keys",
            a.log_key.display()
        );
    }
    Ok(trust)
}

/// Verify a signed tree head (both halves) against the trusted log.
pub fn verify_note(note: &str, trust: &fwseal_tlog::TrustedKeys, what: &str) -> Result<TreeHead> {
    match fwseal_tlog::verify_checkpoint(note, trust) {
        Ok(c) => Ok(c),
        Err(e) => fail(format!("{what}: tree head does not verify: {e}")),
    }
}

fn read_note(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))
}

fn hashes(v: &[String], what: &str) -> Result<Vec<[u8; 32]>> {
    v.iter()
        .enumerate()
        .map(|(i, s)| {
            let raw = B64
                .decode(s)
                .map_err(|e| anyhow!("{what}[{i}]: not base64: {e}"))?;
            <[u8; 32]>::try_from(raw.as_slice())
                .map_err(|_| anyhow!("{what}[{i}]: {} bytes, not 32", raw.len()))
        })
        .collect()
}

fn fetch_note(url: Option<&str>) -> Result<String> {
    Client::from_env(url)?.get_text("/v1/log/checkpoint")
}

fn fetch_consistency(url: Option<&str>, old: u64, new: u64) -> Result<ConsistencyProof> {
    Client::from_env(url)?.get(&format!("/v1/log/consistency?old={old}&new={new}"))
}

/// Check that `new` extends `old` with `proof` (both already verified).
fn check_consistency(old: &TreeHead, new: &TreeHead, proof: &ConsistencyProof) -> Result<()> {
    if new.size < old.size {
        return fail(format!(
            "FORK: the newer tree head has size {} < {} of the older one (the log shrank)",
            new.size, old.size
        ));
    }
    if proof.old_size != old.size || proof.new_size != new.size {
        return fail(format!(
            "the consistency proof is for sizes {} -> {}, not {} -> {}",
            proof.old_size, proof.new_size, old.size, new.size
        ));
    }
    let p = hashes(&proof.proof, "proof")?;
    if let Err(e) = fwseal_tlog::verify_consistency(old.size, new.size, &old.root, &new.root, &p) {
        return fail(format!(
            "FORK: the tree head of size {} is not consistent with the one of size {} seen \
             before (consistency proof: {e}): the log was rewritten",
            new.size, old.size
        ));
    }
    Ok(())
}

fn print_head(h: &TreeHead, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "origin": h.origin, "size": h.size, "root": B64.encode(h.root)})
        );
    } else {
        println!("origin: {}", h.origin);
        println!("size:   {}", h.size);
        println!("root:   {}", B64.encode(h.root));
    }
}

/// `fwseal log checkpoint`.
fn checkpoint(a: &CheckpointArgs, json: bool) -> Result<()> {
    let trust = load_trust(&a.trust)?;
    let note = fetch_note(a.url.as_deref())?;
    let h = verify_note(&note, &trust, "the server's")?;
    if let Some(out) = &a.output {
        write_atomic(out, note.as_bytes())?;
    }
    print_head(&h, json);
    if !json {
        println!("verified: signed by the appliance's ECDSA P-256 and ML-DSA-65 keys");
    }
    Ok(())
}

/// `fwseal log verify-consistency`.
fn verify_consistency(a: &ConsistencyArgs, json: bool) -> Result<()> {
    let trust = load_trust(&a.trust)?;
    let old = verify_note(&read_note(&a.old)?, &trust, &a.old.display().to_string())?;
    let new = verify_note(&read_note(&a.new)?, &trust, &a.new.display().to_string())?;
    let proof: ConsistencyProof = match &a.proof {
        Some(p) => serde_json::from_str(&read_note(p)?)
            .with_context(|| format!("{}: not a consistency proof", p.display()))?,
        None if new.size < old.size => ConsistencyProof {
            old_size: old.size,
            new_size: new.size,
            proof: vec![],
        },
        None => fetch_consistency(a.url.as_deref(), old.size, new.size)?,
    };
    check_consistency(&old, &new, &proof)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "old_size": old.size, "new_size": new.size})
        );
    } else {
        println!(
            "consistent: the tree head of size {} extends the one of size {}",
            new.size, old.size
        );
    }
    Ok(())
}

/// `fwseal log monitor`.
fn monitor(a: &MonitorArgs, json: bool) -> Result<()> {
    let trust = load_trust(&a.trust)?;
    let note = fetch_note(a.url.as_deref())?;
    let new = verify_note(&note, &trust, "the server's")?;
    let old_note = match std::fs::read_to_string(&a.state) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("read {}", a.state.display())),
    };
    let Some(old_note) = old_note else {
        write_atomic(&a.state, note.as_bytes())?;
        if json {
            println!(
                "{}",
                serde_json::json!({"ok": true, "first_run": true, "size": new.size})
            );
        } else {
            println!(
                "first run: recorded the tree head of size {} in {}",
                new.size,
                a.state.display()
            );
        }
        return Ok(());
    };
    let old = verify_note(&old_note, &trust, &a.state.display().to_string())?;
    let proof = if new.size < old.size {
        ConsistencyProof {
            old_size: old.size,
            new_size: new.size,
            proof: vec![],
        }
    } else {
        fetch_consistency(a.url.as_deref(), old.size, new.size)?
    };
    check_consistency(&old, &new, &proof)?;
    write_atomic(&a.state, note.as_bytes())?;
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "old_size": old.size, "new_size": new.size})
        );
    } else {
        println!(
            "consistent: size {} -> {}; state updated ({})",
            old.size,
            new.size,
            a.state.display()
        );
    }
    Ok(())
}

/// Run a `fwseal log` command; returns the exit code.
pub fn run(cmd: &LogCmd, json: bool) -> u8 {
    let r = match cmd {
        LogCmd::Checkpoint(a) => checkpoint(a, json),
        LogCmd::VerifyConsistency(a) => verify_consistency(a, json),
        LogCmd::Monitor(a) => monitor(a, json),
    };
    exit_code(r, json)
}

fn exit_code(r: Result<()>, json: bool) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            let code = if e.downcast_ref::<LogFailure>().is_some()
                || e.downcast_ref::<ApiError>().is_some()
            {
                1
            } else if e.downcast_ref::<Unreachable>().is_some() {
                3
            } else {
                4
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
            }
            eprintln!("fwseal: {e:#}");
            code
        }
    }
}

/// What a verified bundle showed.
pub struct BundleOk {
    /// The record's seq.
    pub seq: u64,
    /// The tree size it is included in.
    pub tree_size: u64,
    /// The log's origin.
    pub origin: String,
    /// Its RFC 3161 tokens, in bundle order.
    pub timestamps: Vec<BundleTokenOk>,
}

/// One bundle token that was checked.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BundleTokenOk {
    /// What it covers (`image:<alg>:<key id>`, `provenance:<alg>:<key id>`, `checkpoint`).
    pub covers: String,
    /// `genTime` as the token states it.
    pub gen_time: String,
    /// The TSA (signer certificate subject).
    pub tsa: String,
    /// Verified against a `--tsa-cert` (false: none was given; the token was decoded and its
    /// imprint compared, but it is not trusted).
    pub verified: bool,
}

/// `fwseal verify IMAGE --bundle FILE --log-key KEYS`, offline: the bundle's `sign` record
/// names this image (its `output_sha256`), the record's canonical encoding is what the record
/// says and its leaf hash is included under the tree head's root, and the tree head is signed
/// by both trusted appliance keys. (`formats/log.md` §7.)
pub fn verify_bundle(
    image: &[u8],
    bundle_path: &Path,
    trust: &fwseal_tlog::TrustedKeys,
    tsa: &[Vec<u8>],
) -> Result<BundleOk> {
    let text = std::fs::read_to_string(bundle_path)
        .with_context(|| format!("read {}", bundle_path.display()))?;
    let b: Bundle = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a bundle", bundle_path.display()))?;
    if b.bundle_format != BUNDLE_FORMAT {
        bail!(
            "{}: bundle_format {:?}, expected {BUNDLE_FORMAT}",
            bundle_path.display(),
            b.bundle_format
        );
    }
    // 1. The record names this image.
    let image_sha = hex::encode(fwseal_crypto::DigestAlg::Sha256.hash(image));
    if b.record.action != "sign" || b.record.decision != "allow" {
        return fail(format!(
            "the bundle's record {} is a {} {}, not an allowed signing",
            b.record.seq, b.record.decision, b.record.action
        ));
    }
    if b.record.output_sha256.as_deref() != Some(image_sha.as_str()) {
        return fail(format!(
            "the bundle's record {} names image sha256 {}, this image is {image_sha}",
            b.record.seq,
            b.record.output_sha256.as_deref().unwrap_or("(none)")
        ));
    }
    // 2. The leaf is the record's canonical encoding (re-encoded here from its fields).
    let leaf = B64
        .decode(&b.canonical_encoding)
        .context("canonical_encoding: not base64")?;
    let line: fwseal_store::export::RecordLine =
        serde_json::from_value(serde_json::to_value(&b.record)?)
            .context("the bundle's record does not decode")?;
    let rec = fwseal_store::AuditRecord::from(line);
    if rec.canonical_encoding() != leaf {
        return fail("the bundle's canonical_encoding is not the encoding of its record");
    }
    if rec.computed_hash() != rec.hash {
        return fail("the bundle's record hash is not the hash of its encoding");
    }
    if b.leaf_index.checked_add(1) != Some(rec.seq) {
        return fail(format!(
            "leaf_index {} is not record {} - 1",
            b.leaf_index, rec.seq
        ));
    }
    // 3. The tree head is the appliance's.
    let head = verify_note(&b.checkpoint, trust, "the bundle's")?;
    if head.size != b.tree_size {
        return fail(format!(
            "the bundle's proof is for size {}, its tree head has size {}",
            b.tree_size, head.size
        ));
    }
    // 4. The leaf is in that tree.
    let proof = hashes(&b.inclusion_proof, "inclusion_proof")?;
    let lh = fwseal_tlog::leaf_hash(&leaf);
    if let Err(e) = fwseal_tlog::verify_inclusion(&lh, b.leaf_index, head.size, &proof, &head.root)
    {
        return fail(format!(
            "record {} is not included in the tree head of size {}: {e}",
            rec.seq, head.size
        ));
    }
    // 5. The detached document and provenance are the ones the record names, and every
    //    timestamp token covers what it says it covers.
    let extra: serde_json::Value = match &b.record.extra {
        Some(x) => serde_json::from_str(x).context("the bundle's record extra is not JSON")?,
        None => serde_json::Value::Null,
    };
    for (field, text) in [
        ("detached_sha256", &b.detached),
        ("provenance_sha256", &b.provenance),
    ] {
        if let (Some(want), Some(text)) = (extra.get(field).and_then(|v| v.as_str()), text) {
            let got = hex::encode(fwseal_crypto::DigestAlg::Sha256.hash(text.as_bytes()));
            if got != want {
                return fail(format!(
                    "the bundle's {} has sha256 {got}, its record names {want}",
                    field.trim_end_matches("_sha256")
                ));
            }
        }
    }
    let timestamps = b
        .timestamps
        .iter()
        .enumerate()
        .map(|(i, t)| check_bundle_token(&b, &extra, i, t, tsa))
        .collect::<Result<Vec<_>>>()?;
    Ok(BundleOk {
        seq: rec.seq,
        tree_size: head.size,
        origin: head.origin,
        timestamps,
    })
}

/// The bytes a bundle token's `covers` names (`formats/log.md` §7): an image signature's bytes
/// in the detached document, a decoded DSSE signature of the provenance, or the checkpoint
/// note's text.
fn covered_bytes(b: &Bundle, covers: &str) -> Result<Vec<u8>> {
    if covers == "checkpoint" {
        return Ok(b.checkpoint.as_bytes().to_vec());
    }
    let Some((what, alg_key)) = covers.split_once(':') else {
        return fail(format!("unknown covers value {covers:?}"));
    };
    let Some((alg, key)) = alg_key.rsplit_once(':') else {
        return fail(format!("unknown covers value {covers:?}"));
    };
    match what {
        "image" => {
            let Some(doc) = &b.detached else {
                return fail(format!(
                    "covers {covers:?}, but the bundle has no detached document"
                ));
            };
            let doc = fwseal_formats::detached::DetachedDoc::from_json(doc.as_bytes())
                .map_err(|e| LogFailure(format!("the bundle's detached document: {e}")))?;
            match doc
                .signatures
                .iter()
                .find(|s| s.alg.name() == alg && s.key_id.to_hex() == key)
            {
                Some(s) => Ok(s.bytes.clone()),
                None => fail(format!(
                    "covers {covers:?}: the detached document has no {alg} signature by key {key}"
                )),
            }
        }
        "provenance" => {
            let Some(env) = &b.provenance else {
                return fail(format!(
                    "covers {covers:?}, but the bundle has no provenance"
                ));
            };
            let env = fwseal_provenance::Envelope::from_json(env.as_bytes())
                .map_err(|e| LogFailure(format!("the bundle's provenance: {e}")))?;
            match env.signatures.iter().find(|s| s.keyid == key) {
                Some(s) => B64.decode(&s.sig).map_err(|e| {
                    LogFailure(format!("covers {covers:?}: DSSE sig is not base64: {e}")).into()
                }),
                None => fail(format!(
                    "covers {covers:?}: the provenance has no DSSE signature by key {key}"
                )),
            }
        }
        _ => fail(format!("unknown covers value {covers:?}")),
    }
}

/// Check bundle token `i`: its covers value names bytes in the bundle, its imprint is their
/// hash, an image or provenance token is the one the signing record lists under the same
/// covers (`extra.timestamps[].token_sha256`), and — given TSA certificates — it verifies
/// (`formats/timestamp.md`, "Verifying a token").
fn check_bundle_token(
    b: &Bundle,
    extra: &serde_json::Value,
    i: usize,
    t: &fwseal_api::BundleTimestamp,
    tsa: &[Vec<u8>],
) -> Result<BundleTokenOk> {
    let at = |m: String| LogFailure(format!("timestamps[{i}] ({}): {m}", t.covers));
    let token = B64
        .decode(&t.token)
        .map_err(|e| at(format!("token is not base64: {e}")))?;
    let data = covered_bytes(b, &t.covers).map_err(|e| at(format!("{e:#}")))?;
    if t.covers != "checkpoint" {
        let sha = hex::encode(fwseal_crypto::DigestAlg::Sha256.hash(&token));
        let listed = extra
            .get("timestamps")
            .and_then(|v| v.as_array())
            .is_some_and(|ts| {
                ts.iter().any(|r| {
                    r.get("covers").and_then(|c| c.as_str()) == Some(t.covers.as_str())
                        && r.get("token_sha256").and_then(|c| c.as_str()) == Some(sha.as_str())
                })
            });
        if !listed {
            return Err(at(format!(
                "the signing record does not list this token (sha256 {sha}) for {}",
                t.covers
            ))
            .into());
        }
    }
    let info = if tsa.is_empty() {
        let info = fwseal_tsa::inspect(&token).map_err(|e| at(e.to_string()))?;
        if info.imprint != info.hash_alg.hash(&data) {
            return Err(at(format!(
                "the token's message imprint is not the {} of what it covers",
                info.hash_alg
            ))
            .into());
        }
        info
    } else {
        fwseal_tsa::verify(&token, &data, tsa)
            .map_err(|e| at(format!("the token does not verify: {e}")))?
    };
    Ok(BundleTokenOk {
        covers: t.covers.clone(),
        gen_time: info.gen_time,
        tsa: info.tsa,
        verified: !tsa.is_empty(),
    })
}
