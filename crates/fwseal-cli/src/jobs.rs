//! M-of-N approvals from the client side: `fwseal jobs`, `fwseal approve`, `fwseal reject`,
//! and the polling behind `fwseal sign --wait`.

use crate::client::{with_query, Client, JobEnded};
use crate::online::SignArgs;
use anyhow::{bail, Result};
use clap::Args;
use fwseal_api::{
    mode_name, ApproveBody, JobList, JobState, JobView, JobsFilter, JobsQuery, RejectBody,
};
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

fn approvals(j: &JobView) -> String {
    let names = j.approvers();
    format!(
        "{}/{}{}",
        names.len(),
        j.approvals_required,
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    )
}

fn print_job(j: &JobView) {
    println!("job:       {}", j.id);
    println!("state:     {}", j.state);
    println!(
        "product:   {} ({} {}, {})",
        j.product,
        j.format,
        mode_name(j.mode),
        j.name
    );
    println!("requester: {}", j.requester);
    println!("digest:    {} {}", j.digest.alg, j.digest.value);
    println!("input:     sha256 {}", j.input_sha256);
    for (k, v) in j.build.build_metadata() {
        println!("build:     {k} = {v}");
    }
    println!("approvals: {} of role {}", approvals(j), j.of_role);
    println!("expires:   {}", j.expires);
    if let Some(r) = &j.reason {
        println!("reason:    {r}");
    }
    if let Some(a) = &j.artifact_id {
        println!("artifact:  {a}");
    }
}

/// After a 202: say what happened and how to proceed.
pub fn print_submitted(input: &Path, j: &JobView) {
    println!(
        "{}: submitted as job {} (needs {} approval(s) by {} on {}, expires {})",
        input.display(),
        j.id,
        j.approvals_required,
        j.of_role,
        j.product,
        j.expires,
    );
    println!("  digest {} {}", j.digest.alg, j.digest.value);
}

/// Poll a job until it is signed (`Some(job)`), ended without a signature (error), or the
/// `--wait-timeout` passed (`None`).
pub fn wait_signed(client: &Client, id: &str, a: &SignArgs, json: bool) -> Result<Option<JobView>> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let j: JobView = client.get(&format!("/v1/jobs/{id}"))?;
        if j.state == JobState::Signed {
            return Ok(Some(j));
        }
        if j.state.ended_unsigned() {
            return Err(JobEnded(format!(
                "job {id} {}{}",
                j.state,
                j.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ))
            .into());
        }
        let progress = approvals(&j);
        if !json && progress != last {
            eprintln!("job {id}: {}, approvals {progress}", j.state);
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
    let query = JobsQuery {
        product: a.product.clone(),
        state: a.all.then_some(JobsFilter::All),
    };
    let path = with_query("/v1/jobs", &query)?;
    let v: JobList = client.get(&path)?;
    if !json {
        if v.jobs.is_empty() {
            println!("no jobs");
        }
        for j in &v.jobs {
            println!(
                "{}  {:<8} {:<10} {:<8} {:<8} by {:<12} approvals {}  expires {}  {}",
                j.id,
                j.state.name(),
                j.product,
                j.format.name(),
                mode_name(j.mode),
                j.requester,
                approvals(j),
                j.expires,
                j.name,
            );
            println!("    digest {} {}", j.digest.alg, j.digest.value);
        }
    }
    Ok(serde_json::to_value(&v)?)
}

/// `fwseal approve`: show the job, then send back the digest (yours with --digest).
pub fn approve(a: &ApproveArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    // With a pinned --digest the server's answer to the approval is authoritative: a job this
    // client may not view is still sent (and refused by the server, which audits it).
    let job = match client.get::<JobView>(&format!("/v1/jobs/{}", a.id)) {
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
        .map(|j| j.digest.value.clone())
        .unwrap_or_default();
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
        let want = job.input_sha256.as_str();
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
    let j: JobView = client.post_json(
        &format!("/v1/jobs/{}/approve", a.id),
        &ApproveBody { digest },
    )?;
    if !json {
        match j.state {
            JobState::Signed => println!(
                "approved; quorum reached: signed as artifact {}",
                j.artifact_id.as_deref().unwrap_or("?")
            ),
            _ => println!("approved; approvals {}", approvals(&j)),
        }
    }
    Ok(serde_json::to_value(&j)?)
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
    let j: JobView = client.post_json(
        &format!("/v1/jobs/{}/reject", a.id),
        &RejectBody {
            reason: a.reason.clone(),
        },
    )?;
    if !json {
        println!("job {} rejected", a.id);
    }
    Ok(serde_json::to_value(&j)?)
}
