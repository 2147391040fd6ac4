//! Format-aware digest throughput: the daemon's path (`fwseal_formats::prepare_stream` fed
//! 1 MiB reads of the file, as `fwseal-server`'s `pipeline::prepare_file` does) next to
//! `openssl dgst -sha512` over the same bytes on disk (the issue-15 denominator: SHA-512 has no
//! SHA-NI, so it is what the hardware does for the slower half of a hybrid request);
//! `openssl dgst -sha256` and GNU `sha256sum` are context.

use anyhow::{ensure, Context, Result};
use fwseal_crypto::SigAlg;
use fwseal_formats::{prepare_stream, Format, Mode, Request};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One measured input.
pub struct DigestRow {
    /// Size in bytes.
    pub bytes: u64,
    /// Hybrid request (SHA-256 + SHA-512 for ML-DSA-65), MB/s.
    pub hybrid: f64,
    /// Classical-only request (one digest), MB/s.
    pub classical: f64,
    /// `sha256sum`, MB/s: context.
    pub sha256sum: f64,
    /// `openssl dgst -sha256` (SHA-NI where the CPU has it), MB/s: context.
    pub openssl: f64,
    /// `openssl dgst -sha512`, MB/s: the denominator of the targets.
    pub openssl512: f64,
}

fn prepare_file(format: Format, path: &Path, req: &Request) -> Result<()> {
    // Same read size and limit as the daemon (pipeline::CHUNK, max_random_access_bytes).
    let mut s = prepare_stream(format, req, 256 << 20)?;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.update(&buf[..n])?;
    }
    let plan = s.finish()?;
    ensure!(!plan.digest().1.is_empty(), "empty digest");
    Ok(())
}

fn sha256sum(path: &Path) -> Result<()> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("run sha256sum")?;
    ensure!(out.status.success(), "sha256sum failed");
    Ok(())
}

/// `openssl dgst -<alg>` over `path` (`sha256`, `sha512`).
pub fn openssl_dgst(alg: &str, path: &Path) -> Result<()> {
    let out = Command::new("openssl")
        .args(["dgst", &format!("-{alg}")])
        .arg(path)
        .output()
        .context("run openssl dgst")?;
    ensure!(out.status.success(), "openssl dgst failed");
    Ok(())
}

pub fn best_secs(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Measure one file: best of `reps` runs each, interleaved (the machine is shared; the best run
/// is the one least disturbed by other work).
pub fn measure(
    label: &str,
    format: Format,
    path: &Path,
    classical: SigAlg,
    reps: usize,
) -> Result<DigestRow> {
    let bytes = std::fs::metadata(path)?.len();
    let hybrid_req = Request::hybrid(classical, SigAlg::MlDsa65, Mode::Embedded, "bench");
    let classical_req = Request {
        pq: None,
        ..hybrid_req.clone()
    };
    // Warm the page cache (both tools then read from memory) and check the input is accepted.
    prepare_file(format, path, &hybrid_req).with_context(|| format!("prepare {label}"))?;
    let (mut h, mut c, mut s, mut o, mut o5) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..reps {
        h = h.min(best_secs(1, || prepare_file(format, path, &hybrid_req))?);
        c = c.min(best_secs(1, || prepare_file(format, path, &classical_req))?);
        s = s.min(best_secs(1, || sha256sum(path))?);
        o = o.min(best_secs(1, || openssl_dgst("sha256", path))?);
        o5 = o5.min(best_secs(1, || openssl_dgst("sha512", path))?);
    }
    let mbs = |secs: f64| bytes as f64 / secs / 1e6;
    Ok(DigestRow {
        bytes,
        hybrid: mbs(h),
        classical: mbs(c),
        sha256sum: mbs(s),
        openssl: mbs(o),
        openssl512: mbs(o5),
    })
}
