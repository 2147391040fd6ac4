//! `fwseal audit verify` (offline, over the SQLite database or a JSONL export) and
//! `fwseal audit export` (from the server).

use crate::trust::TrustedKey;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Audit subcommands.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verify the hash chain and the signed checkpoints, offline.
    Verify(VerifyArgs),
    /// Download the audit log as JSON Lines (auditor role).
    Export(ExportArgs),
}

/// `fwseal audit verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The appliance's SQLite audit database (state_dir/audit.db).
    #[arg(long, conflicts_with = "export")]
    pub db: Option<PathBuf>,
    /// A JSON Lines export (`fwseal audit export`).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Trusted appliance public key (ECDSA P-256 and ML-DSA-65), repeatable.
    #[arg(long = "key", short = 'k', required = true)]
    pub keys: Vec<PathBuf>,
}

/// `fwseal audit export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Output file.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

fn trusted(paths: &[PathBuf]) -> Result<fwseal_store::TrustedKeys> {
    let mut keys = Vec::new();
    for p in paths {
        let t = TrustedKey::load(p)?;
        let alg = fwseal_crypto::SigAlg::ALL
            .into_iter()
            .find(|alg| fwseal_crypto::PublicKey::from_spki_der(*alg, &t.spki).is_ok())
            .with_context(|| format!("{}: unsupported key type", p.display()))?;
        keys.push(fwseal_crypto::PublicKey::from_spki_der(alg, &t.spki)?);
    }
    Ok(fwseal_store::TrustedKeys::new(keys))
}

/// Verify; exit 0 when the log is intact, 1 with the first problem otherwise.
pub fn verify(a: &VerifyArgs, json: bool) -> Result<u8> {
    let keys = trusted(&a.keys)?;
    let report = match (&a.db, &a.export) {
        (Some(db), None) => {
            fwseal_store::verify_db(db, &keys).with_context(|| format!("open {}", db.display()))?
        }
        (None, Some(e)) => fwseal_store::verify_export(
            &std::fs::read(e).with_context(|| format!("read {}", e.display()))?,
            &keys,
        ),
        _ => bail!("give exactly one of --db or --export"),
    };
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": report.is_ok(),
                "records": report.records,
                "checkpoints": report.checkpoints,
                "checkpoints_ok": report.checkpoints_ok,
                "last_good_checkpoint": report.last_good_checkpoint,
                "first_bad_seq": report.first_bad_seq(),
                "problems": problems,
            }))?
        );
    }
    if report.is_ok() {
        if !json {
            println!(
                "audit log OK: {} records, {} checkpoints (last good checkpoint at seq {})",
                report.records,
                report.checkpoints_ok,
                report
                    .last_good_checkpoint
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        Ok(0)
    } else {
        for p in &problems {
            eprintln!("fwseal: audit: {p}");
        }
        eprintln!(
            "fwseal: audit log verification FAILED (first bad seq {})",
            report
                .first_bad_seq()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into())
        );
        Ok(1)
    }
}

/// Download the export.
pub fn export(a: &ExportArgs, json: bool) -> Result<serde_json::Value> {
    let c = crate::client::Client::from_env(a.url.as_deref())?;
    let n = c.download("/v1/audit/export", &a.output, json)?;
    if !json {
        println!("{} ({n} bytes)", a.output.display());
    }
    Ok(serde_json::json!({"output": a.output, "bytes": n}))
}
