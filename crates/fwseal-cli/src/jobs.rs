//! M-of-N approvals from the client side: `fwseal jobs`, `fwseal approve`, `fwseal reject`,
//! and the polling behind `fwseal sign --wait`.

use crate::client::{Client, JobEnded};
use crate::online::{urlencode, SignArgs};
use anyhow::{bail, Result};
use clap::Args;
use std::path::Path;
use std::time::{Duration, Instant};

/// `fwseal jobs`.
#[derive(Args)]
pub struct JobsArgs {
    /// Only this product's jobs.
    #[arg(long, short = 'p')]
    pub product: Option<String>,
    /// Include signed, rejected, expired and failed jobs.
    #[arg(long)]
    pub all: bool,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// `fwseal approve`.
#[derive(Args)]
pub struct ApproveArgs {
    /// Job id.
    pub id: String,
    /// The format-aware digest (hex) you inspected; refused unless it is the job's. Default:
    /// the digest the server shows for the job (printed before approving).
    #[arg(long, value_name = "HEX")]
    pub digest: Option<String>,
    /// Download the job's unsigned input to FILE first (to inspect or compare with your build)
    /// and refuse to approve unless it hashes to the job's input_sha256.
    #[arg(long, value_name = "FILE")]
    pub save_input: Option<std::path::PathBuf>,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// `fwseal reject`.
#[derive(Args)]
pub struct RejectArgs {
    /// Job id.
    pub id: String,
    /// Why (recorded in the job and the audit log).
    #[arg(long, required = true)]
    pub reason: String,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

fn approvals(j: &serde_json::Value) -> String {
    let names: Vec<&str> = j["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["approver"].as_str())
        .collect();
    format!(
        "{}/{}{}",
        names.len(),
        j["approvals_required"].as_u64().unwrap_or(0),
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    )
}

fn print_job(j: &serde_json::Value) {
    let s = |k: &str| j[k].as_str().unwrap_or("-").to_string();
    println!("job:       {}", s("id"));
    println!("state:     {}", s("state"));
    println!(
        "product:   {} ({} {}, {})",
        s("product"),
        s("format"),
        s("mode"),
        s("name")
    );
    println!("requester: {}", s("requester"));
    println!(
        "digest:    {} {}",
        j["digest"]["alg"].as_str().unwrap_or("?"),
        j["digest"]["value"].as_str().unwrap_or("?")
    );
    println!("input:     sha256 {}", s("input_sha256"));
    if let Some(b) = j["build"].as_object() {
        for (k, v) in b {
            if !matches!(k.as_str(), "mode" | "format" | "name") {
                println!("build:     {k} = {}", v.as_str().unwrap_or(&v.to_string()));
            }
        }
    }
    println!("approvals: {} of role {}", approvals(j), s("of_role"));
    println!("expires:   {}", s("expires"));
    if let Some(r) = j["reason"].as_str() {
        println!("reason:    {r}");
    }
    if let Some(a) = j["artifact_id"].as_str() {
        println!("artifact:  {a}");
    }
}

/// After a 202: say what happened and how to proceed.
pub fn print_submitted(input: &Path, j: &serde_json::Value) {
    println!(
        "{}: submitted as job {} (needs {} approval(s) by {} on {}, expires {})",
        input.display(),
        j["id"].as_str().unwrap_or("?"),
        j["approvals_required"].as_u64().unwrap_or(0),
        j["of_role"].as_str().unwrap_or("?"),
        j["product"].as_str().unwrap_or("?"),
        j["expires"].as_str().unwrap_or("?"),
    );
    println!(
        "  digest {} {}",
        j["digest"]["alg"].as_str().unwrap_or("?"),
        j["digest"]["value"].as_str().unwrap_or("?")
    );
}

/// Poll a job until it is signed (`Some(job)`), ended without a signature (error), or the
/// `--wait-timeout` passed (`None`).
pub fn wait_signed(
    client: &Client,
    id: &str,
    a: &SignArgs,
    json: bool,
) -> Result<Option<serde_json::Value>> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let j = client.get_json(&format!("/v1/jobs/{id}"))?;
        let state = j["state"].as_str().unwrap_or("?").to_string();
        match state.as_str() {
            "signed" => return Ok(Some(j)),
            "rejected" | "expired" | "failed" => {
                return Err(JobEnded(format!(
                    "job {id} {state}{}",
                    j["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ))
                .into())
            }
            _ => {}
        }
        let progress = approvals(&j);
        if !json && progress != last {
            eprintln!("job {id}: {state}, approvals {progress}");
            last = progress;
        }
        if a.wait_timeout
            .is_some_and(|t| start.elapsed() >= Duration::from_secs(t))
        {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_secs(a.poll_interval.max(1)));
    }
}

/// `fwseal jobs`.
pub fn list(a: &JobsArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    let mut q = Vec::new();
    if let Some(p) = &a.product {
        q.push(format!("product={}", urlencode(p)));
    }
    if a.all {
        q.push("state=all".to_string());
    }
    let path = format!(
        "/v1/jobs{}{}",
        if q.is_empty() { "" } else { "?" },
        q.join("&")
    );
    let v = client.get_json(&path)?;
    if !json {
        let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
        if jobs.is_empty() {
            println!("no jobs");
        }
        for j in &jobs {
            println!(
                "{}  {:<8} {:<10} {:<8} {:<8} by {:<12} approvals {}  expires {}  {}",
                j["id"].as_str().unwrap_or("?"),
                j["state"].as_str().unwrap_or("?"),
                j["product"].as_str().unwrap_or("?"),
                j["format"].as_str().unwrap_or("?"),
                j["mode"].as_str().unwrap_or("?"),
                j["requester"].as_str().unwrap_or("?"),
                approvals(j),
                j["expires"].as_str().unwrap_or("?"),
                j["name"].as_str().unwrap_or("?"),
            );
            println!(
                "    digest {} {}",
                j["digest"]["alg"].as_str().unwrap_or("?"),
                j["digest"]["value"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(v)
}

/// `fwseal approve`: show the job, then send back the digest (yours with --digest).
pub fn approve(a: &ApproveArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    // With a pinned --digest the server's answer to the approval is authoritative: a job this
    // client may not view is still sent (and refused by the server, which audits it).
    let job = match client.get_json(&format!("/v1/jobs/{}", a.id)) {
        Ok(j) => Some(j),
        Err(e) if a.digest.is_some() && e.downcast_ref::<crate::client::ApiError>().is_some() => {
            if !json {
                eprintln!("fwseal: cannot show job {}: {e:#}", a.id);
            }
            None
        }
        Err(e) => return Err(e),
    };
    let shown = job
        .as_ref()
        .and_then(|j| j["digest"]["value"].as_str())
        .unwrap_or_default()
        .to_string();
    let digest = match &a.digest {
        Some(d) => {
            let d = d.trim().to_ascii_lowercase();
            if hex::decode(&d).is_err() {
                bail!("--digest must be hex");
            }
            d
        }
        None => shown.clone(),
    };
    if let (Some(out), Some(job)) = (&a.save_input, &job) {
        client.download(&format!("/v1/jobs/{}/input", a.id), out, json)?;
        let got = sha256_file(out)?;
        let want = job["input_sha256"].as_str().unwrap_or_default();
        if got != want {
            bail!(
                "{}: sha256 {got} is not the job's input_sha256 {want}; not approving",
                out.display()
            );
        }
        if !json {
            println!("input saved to {} (sha256 {got})", out.display());
        }
    }
    if let (false, Some(job)) = (json, &job) {
        print_job(job);
        if digest != shown {
            eprintln!("warning: --digest differs from the job's digest; the server will refuse");
        }
    }
    let j: serde_json::Value = client.post_json(
        &format!("/v1/jobs/{}/approve", a.id),
        &serde_json::json!({ "digest": digest }),
    )?;
    if !json {
        match j["state"].as_str() {
            Some("signed") => println!(
                "approved; quorum reached: signed as artifact {}",
                j["artifact_id"].as_str().unwrap_or("?")
            ),
            _ => println!("approved; approvals {}", approvals(&j)),
        }
    }
    Ok(j)
}

fn sha256_file(p: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `fwseal reject`.
pub fn reject(a: &RejectArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    let j: serde_json::Value = client.post_json(
        &format!("/v1/jobs/{}/reject", a.id),
        &serde_json::json!({ "reason": a.reason }),
    )?;
    if !json {
        println!("job {} rejected", a.id);
    }
    Ok(j)
}
