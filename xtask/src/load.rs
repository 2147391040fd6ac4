//! Closed-loop HTTP load against a running fwseald: `concurrency` client threads, each posting
//! the same image back to back for a fixed time, recording every request's latency.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one load run measured.
pub struct LoadResult {
    pub completed: u64,
    pub secs: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl LoadResult {
    pub fn per_sec(&self) -> f64 {
        self.completed as f64 / self.secs
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// One POST of `body` to `url` (full URL with query); the status must be 201.
pub fn post_once(agent: &ureq::Agent, url: &str, token: &str, body: &[u8]) -> Result<()> {
    let mut resp = agent
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .context("POST")?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    anyhow::ensure!(status == 201, "sign answered {status}: {text}");
    Ok(())
}

/// POST a file (streamed from disk) once; the status must be 201.
pub fn post_file(url: &str, token: &str, path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut resp = agent()
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", &len.to_string())
        .send(ureq::SendBody::from_owned_reader(f))
        .context("POST")?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    anyhow::ensure!(status == 201, "sign answered {status}: {text}");
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Run `concurrency` clients for `secs` seconds (after one warm-up request each).
pub fn run(
    url: &str,
    token: &str,
    body: Arc<Vec<u8>>,
    concurrency: usize,
    secs: f64,
) -> Result<LoadResult> {
    let start_line = Arc::new(std::sync::Barrier::new(concurrency + 1));
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (url, token, body, start_line) = (
            url.to_string(),
            token.to_string(),
            body.clone(),
            start_line.clone(),
        );
        handles.push(std::thread::spawn(move || -> Result<Vec<f64>> {
            let a = agent();
            post_once(&a, &url, &token, &body)?; // connection + warm-up
            start_line.wait();
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                post_once(&a, &url, &token, &body)?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok(lat)
        }));
    }
    start_line.wait();
    let t0 = Instant::now();
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("load thread panicked"))??,
        );
    }
    let elapsed = t0.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok(LoadResult {
        completed: all.len() as u64,
        secs: elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
}
