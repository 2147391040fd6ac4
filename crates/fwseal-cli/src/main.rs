//! `fwseal` — the client: submit images for signing, fetch signed builds, and verify or inspect
//! images offline. It links no HSM library.
//!
//! Exit codes: 0 success; 1 verification failed / operation refused (also a job rejected,
//! expired or failed); 2 usage error; 3 server or network unreachable; 4 input unreadable or
//! malformed; 5 submitted for approval, not signed yet (`fwseal sign` without `--wait`, or
//! `--wait-timeout` passed).
#![forbid(unsafe_code)]

mod audit;
mod client;
mod gate;
mod hashlocal;
mod jobs;
mod log;
mod names;
mod oidc_token;
mod online;
mod trust;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use fwseal_formats::detached::DetachedDoc;
use fwseal_formats::{describe, detect, extract, Format};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use trust::{Requirement, TrustedKey};

/// Exit code: verification failed or the server refused.
const EXIT_FAILED: u8 = 1;
/// Exit code: input unreadable or malformed.
const EXIT_INPUT: u8 = 4;
/// Exit code: submitted for approval; nothing signed yet.
const EXIT_PENDING: u8 = 5;

#[derive(Parser)]
#[command(
    name = "fwseal",
    version,
    about = "Firmware signing client: sign, fetch, verify, inspect"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show an image's format, format-aware digest and any embedded signatures (offline).
    Inspect(InspectArgs),
    /// Verify an image's signatures offline against trusted public keys.
    Verify(VerifyArgs),
    /// Submit images to fwseald for signing.
    Sign(online::SignArgs),
    /// Fetch a signed artifact (image, detached document, provenance).
    Fetch(online::FetchArgs),
    /// List a product's signed artifacts.
    List(online::ListArgs),
    /// List signing jobs waiting for approval (yours, and those you may approve).
    Jobs(jobs::JobsArgs),
    /// Approve a pending job: shows its digest and sends it back (pin it with --digest).
    Approve(jobs::ApproveArgs),
    /// Reject a pending job (ends it).
    Reject(jobs::RejectArgs),
    /// Public key material.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// The transparency log: signed tree heads, consistency, monitoring.
    #[command(subcommand)]
    Log(log::LogCmd),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Export a product's public keys (PEM, DER, key id, C array, imgtool form, certificate).
    Export(online::KeysExportArgs),
}

#[derive(Args)]
struct FormatArg {
    /// Override format detection (raw, mcuboot, ihex, dfu, efi).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| format!("unknown format {s:?} ({})", Format::names()))
}

#[derive(Args)]
struct InspectArgs {
    /// Image file.
    input: PathBuf,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Args)]
struct VerifyArgs {
    /// Image file (signed, or the unsigned image with --detached).
    input: PathBuf,
    /// Trusted public key: PEM/DER SubjectPublicKeyInfo or X.509 certificate (repeatable).
    /// Optional with --bundle (then only the log inclusion is checked).
    #[arg(long = "key", short = 'k', required_unless_present = "bundle")]
    keys: Vec<PathBuf>,
    /// A bundle (`fwseal fetch --bundle`): check offline that its audit record names this
    /// image and is included under a tree head signed by the --log-key appliance keys.
    #[arg(long, requires = "log_key")]
    bundle: Option<PathBuf>,
    /// The appliance keys (JSON of `GET /v1/appliance/keys`) that sign the log's tree heads.
    #[arg(long = "log-key")]
    log_key: Option<PathBuf>,
    /// The log's origin (default: derived from the appliance's ECDSA key).
    #[arg(long)]
    origin: Option<String>,
    /// Detached signature document. Default: IMAGE.sig.json, picked up if it exists.
    #[arg(long)]
    detached: Option<PathBuf>,
    /// Trusted TSA certificate (PEM, repeatable): RFC 3161 timestamp tokens carried with the
    /// signatures must verify against one, and a signing certificate given with --key must be
    /// valid at the token's genTime (without a token: now); with --bundle, every token of the
    /// bundle must verify over what its `covers` names. Without it tokens are shown, not
    /// trusted.
    #[arg(long = "tsa-cert")]
    tsa_certs: Vec<PathBuf>,
    /// Accept images with only a classical signature.
    #[arg(long, conflicts_with = "pq_only")]
    classical_only: bool,
    /// Accept images with only a post-quantum signature.
    #[arg(long)]
    pq_only: bool,
    #[command(flatten)]
    gate: gate::GateArgs,
    #[command(flatten)]
    format: FormatArg,
}

fn read_input(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn detect_for(data: &[u8], path: &Path, over: Option<Format>) -> Result<Format> {
    if let Some(f) = over {
        return Ok(f);
    }
    let ext = path.extension().and_then(|e| e.to_str());
    Ok(detect(data, ext)?)
}

/// The digest of an unsigned image: what the device will check once it is signed.
fn unsigned_digest(format: Format, data: &[u8]) -> Option<(fwseal_crypto::DigestAlg, Vec<u8>)> {
    let req = fwseal_formats::Request {
        classical: Some(format.default_classical()),
        pq: None,
        mode: fwseal_formats::Mode::Detached,
        options: fwseal_formats::SignOptions {
            product: "inspect".into(),
            ..Default::default()
        },
    };
    fwseal_formats::prepare(format, data, &req)
        .ok()
        .map(|p| p.digest())
}

fn inspect(a: &InspectArgs, json: bool) -> Result<u8> {
    let data = read_input(&a.input)?;
    let format = match detect_for(&data, &a.input, a.format.format) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fwseal: {}: {e:#}", a.input.display());
            return Ok(EXIT_INPUT);
        }
    };
    let summary = match describe(format, &data) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fwseal: {}: {e}", a.input.display());
            return Ok(EXIT_INPUT);
        }
    };
    let ex = extract(format, &data);
    // The format-aware digest, whether or not the image is signed.
    let digest = match &ex {
        Ok(x) => Some(x.digest.clone()),
        Err(_) => unsigned_digest(format, &data),
    };
    if json {
        let sigs: Vec<serde_json::Value> = match &ex {
            Ok(x) => x
                .signatures
                .iter()
                .map(|s| serde_json::json!({"alg": s.alg, "key_id": s.key_id.map(|k| k.to_hex()), "bytes": s.bytes.len()}))
                .collect(),
            Err(_) => vec![],
        };
        let v = serde_json::json!({
            "file": a.input.display().to_string(),
            "format": format,
            "summary": summary,
            "digest": digest.as_ref().map(|d| serde_json::json!({"alg": d.0, "value": hex::encode(&d.1)})),
            "signed": ex.is_ok(),
            "signatures": sigs,
            "problem": ex.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("file:    {}", a.input.display());
        println!("format:  {format}");
        println!("{summary}");
        if let Some(d) = &digest {
            println!("digest:  {} {}", d.0, hex::encode(&d.1));
        }
        match &ex {
            Ok(x) => {
                if let Some(p) = &x.product {
                    println!("product: {p}");
                }
                if let Some(v) = x.image_version {
                    println!("version: {v}");
                }
                if let Some(c) = x.security_counter {
                    println!("security counter: {c}");
                }
                for s in &x.signatures {
                    println!(
                        "signature: {} ({} bytes) key {}",
                        s.alg,
                        s.bytes.len(),
                        s.key_id
                            .map(|k| k.to_hex())
                            .or_else(|| s.key_hint.as_ref().map(|h| h.to_string()))
                            .unwrap_or_else(|| "-".into())
                    );
                }
            }
            Err(fwseal_formats::FormatError::NotSigned(_)) => println!("signatures: none"),
            Err(e) => println!("signatures: unreadable: {e}"),
        }
    }
    Ok(0)
}

fn verify(a: &VerifyArgs, json: bool) -> Result<u8> {
    let data = read_input(&a.input)?;
    let mut tsa = Vec::new();
    for p in &a.tsa_certs {
        let pem = read_input(p)?;
        tsa.extend(trust::pem_certificates(&pem).with_context(|| format!("{}", p.display()))?);
    }
    if let (Some(bundle), Some(log_key)) = (&a.bundle, &a.log_key) {
        let trust = log::load_trust(&log::LogKeyArgs {
            log_key: log_key.clone(),
            origin: a.origin.clone(),
        })?;
        match log::verify_bundle(&data, bundle, &trust, &tsa) {
            Ok(ok) => {
                if !json {
                    println!(
                        "OK log: record {} (this image) is included in the tree head of size {} \
                         of {}, signed by the appliance's ECDSA P-256 and ML-DSA-65 keys",
                        ok.seq, ok.tree_size, ok.origin
                    );
                    for t in &ok.timestamps {
                        println!(
                            "{} bundle timestamp over {}: genTime {} by {}{}",
                            if t.verified { "OK" } else { "UNVERIFIED" },
                            t.covers,
                            t.gen_time,
                            t.tsa,
                            if t.verified {
                                ""
                            } else {
                                " (NOT verified: give --tsa-cert)"
                            }
                        );
                    }
                }
                if a.keys.is_empty() {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"ok": true, "log": {"seq": ok.seq, "tree_size": ok.tree_size, "origin": ok.origin, "timestamps": ok.timestamps}})
                        );
                    } else {
                        println!("{}: included in the log", a.input.display());
                    }
                    return Ok(0);
                }
            }
            Err(e) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"ok": false, "error": format!("{e:#}")})
                    );
                }
                eprintln!(
                    "fwseal: {}: bundle verification FAILED: {e:#}",
                    a.input.display()
                );
                return Ok(if e.downcast_ref::<log::LogFailure>().is_some() {
                    EXIT_FAILED
                } else {
                    EXIT_INPUT
                });
            }
        }
    }
    let format = match detect_for(&data, &a.input, a.format.format) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fwseal: {}: {e:#}", a.input.display());
            return Ok(EXIT_INPUT);
        }
    };
    let keys = a
        .keys
        .iter()
        .map(|p| TrustedKey::load(p))
        .collect::<Result<Vec<_>>>()?;
    let doc_path = a.detached.clone().or_else(|| {
        let p = names::detached_for(&a.input);
        p.exists().then_some(p)
    });
    let doc = match &doc_path {
        Some(p) => Some(
            DetachedDoc::from_json(&read_input(p)?).with_context(|| format!("{}", p.display()))?,
        ),
        None => None,
    };
    let need = Requirement {
        classical: !a.pq_only,
        pq: !a.classical_only,
    };
    let result =
        trust::verify_image(format, &data, doc.as_ref(), &keys, need, &tsa).and_then(|checked| {
            // The signatures that bind a hash-locally provenance to this image.
            let mut sigs: Vec<String> = fwseal_formats::extract(format, &data)
                .map(|x| x.signatures.iter().map(|s| sha256_hex(&s.bytes)).collect())
                .unwrap_or_default();
            if let Some(d) = &doc {
                sigs.extend(d.signatures.iter().map(|s| sha256_hex(&s.bytes)));
            }
            gate::check_provenance(&a.gate, &a.input, a.detached.as_deref(), &data, sigs)
                .map(|p| (checked, p))
        });
    match result {
        Ok((checked, prov)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ok": true, "format": format, "verified": checked,
                        "provenance": prov.as_ref().map(gate::Outcome::json),
                    }))?
                );
            } else {
                for c in &checked {
                    println!(
                        "OK {} {} signature by {} ({})",
                        c.origin, c.alg, c.key_id, c.key_source
                    );
                    if let Some(t) = &c.timestamp {
                        println!(
                            "   timestamp {} by {} ({})",
                            t.gen_time,
                            t.tsa,
                            if t.verified {
                                "verified"
                            } else {
                                "NOT verified: give --tsa-cert"
                            }
                        );
                    }
                }
                for line in prov.iter().flat_map(gate::Outcome::lines) {
                    println!("{line}");
                }
                println!("{}: verified ({format})", a.input.display());
            }
            Ok(0)
        }
        Err(e) => {
            if json {
                let mut v =
                    serde_json::json!({"ok": false, "format": format, "error": format!("{e:#}")});
                if let Some(c) = gate::failed_check(&e) {
                    v["failed_check"] = serde_json::Value::from(c);
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            // A policy file that cannot be read or parsed is bad input, not a failed check.
            if let Some(pe) = e.downcast_ref::<gate::PolicyFileError>() {
                eprintln!("fwseal: {pe}");
                return Ok(EXIT_INPUT);
            }
            eprintln!("fwseal: {}: verification FAILED: {e:#}", a.input.display());
            Ok(EXIT_FAILED)
        }
    }
}

/// Exit code: the server could not be reached.
const EXIT_UNREACHABLE: u8 = 3;

/// Map an online command's result to output and an exit code.
fn online_cmd(r: Result<serde_json::Value>, json: bool) -> Result<u8> {
    match r {
        Ok(v) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(0)
        }
        Err(e) => {
            if let Some(client::PendingJobs(v)) = e.downcast_ref::<client::PendingJobs>() {
                if json {
                    println!("{}", serde_json::to_string_pretty(v)?);
                } else {
                    eprintln!("fwseal: {e}");
                }
                return Ok(EXIT_PENDING);
            }
            let code = if e.downcast_ref::<client::Unreachable>().is_some() {
                EXIT_UNREACHABLE
            } else if e.downcast_ref::<client::ApiError>().is_some()
                || e.downcast_ref::<client::JobEnded>().is_some()
            {
                EXIT_FAILED
            } else {
                EXIT_INPUT
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
            }
            eprintln!("fwseal: {e:#}");
            Ok(code)
        }
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(fwseal_crypto::DigestAlg::Sha256.hash(b))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Inspect(a) => inspect(a, cli.json),
        Cmd::Verify(a) => verify(a, cli.json),
        Cmd::Sign(a) => online_cmd(online::sign(a, cli.json), cli.json),
        Cmd::Fetch(a) => online_cmd(online::fetch(a, cli.json), cli.json),
        Cmd::List(a) => online_cmd(online::list(a, cli.json), cli.json),
        Cmd::Jobs(a) => online_cmd(jobs::list(a, cli.json), cli.json),
        Cmd::Approve(a) => online_cmd(jobs::approve(a, cli.json), cli.json),
        Cmd::Reject(a) => online_cmd(jobs::reject(a, cli.json), cli.json),
        Cmd::Keys(KeysCmd::Export(a)) => online_cmd(online::keys_export(a, cli.json), cli.json),
        Cmd::Audit(audit::AuditCmd::Export(a)) => online_cmd(audit::export(a, cli.json), cli.json),
        Cmd::Audit(audit::AuditCmd::Verify(a)) => audit::verify(a, cli.json),
        Cmd::Log(c) => Ok(log::run(c, cli.json)),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fwseal: {e:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}
