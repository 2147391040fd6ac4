//! `cargo xtask bench` — signing throughput through the HSM path next to the raw primitives,
//! measured in the same run on the same machine. Writes `BENCHMARKS.md`.
//!
//! `cargo xtask bench` re-runs itself as a release build (`bench-inner`) so the numbers are not
//! those of a debug build. `--seconds N` sets the time per measurement (default 3).

use anyhow::{Context, Result};
use fwseal_crypto::provider::PqProvider as _;
use fwseal_crypto::{soft::SoftKey, SigAlg, SignedMessage, Signer};
use fwseal_hsm::{keys, softhsm::DevToken, ClassicalKind, HsmSigner, PqMode, ProductId, Token};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Entry point of `cargo xtask bench`: rebuild in release and run `bench-inner`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "xtask",
            "--",
            "bench-inner",
        ])
        .args(args)
        .current_dir(root)
        .status()?;
    anyhow::ensure!(st.success(), "bench failed");
    Ok(())
}

fn rate(secs: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    // Warm up once (key expansion, session set-up), then count whole operations.
    f()?;
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs_f64(secs) {
        f()?;
        n += 1;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The measurements (release build).
pub fn inner(root: &Path, args: &[String]) -> Result<()> {
    let secs: f64 = args
        .windows(2)
        .find(|w| w[0] == "--seconds")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(3.0);
    let quick = args.iter().any(|a| a == "--quick");
    let scale = crate::bench_scale::Scale {
        quick,
        load_secs: if quick { 2.0 } else { secs.max(3.0) },
    };
    let state = root.join("target/bench/state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state)?;
    let mut dev = DevToken::new(&state);
    dev.label = "fwseal-bench".into();
    let token = Token::open(&dev.ensure().map_err(|e| anyhow::anyhow!("{e}"))?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let p = ProductId::new("bench").map_err(|e| anyhow::anyhow!("{e}"))?;
    keys::create_classical(&token, &p, 1, SigAlg::EcdsaP256Sha256, ClassicalKind::P256)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    keys::create_pq(
        &token,
        &p,
        1,
        SigAlg::MlDsa65,
        PqMode::WrappedSeed,
        fwseal_crypto::provider::default_provider(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let hsm_ec = HsmSigner::open(&token, &p, 1, SigAlg::EcdsaP256Sha256)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let hsm_pq =
        HsmSigner::open(&token, &p, 1, SigAlg::MlDsa65).map_err(|e| anyhow::anyhow!("{e}"))?;
    let soft_ec = SoftKey::generate(SigAlg::EcdsaP256Sha256)?;
    let seed = [7u8; 32];
    let soft_pq = SoftKey::from_pq_seed(SigAlg::MlDsa65, &seed)?;
    // A realistic message: the signature-block message of a raw image (~260 bytes).
    // RustCrypto's ML-DSA signing is deterministic and its rejection loop runs a number of times
    // fixed by (key, message): a constant message would measure one lucky or unlucky case. Every
    // signature therefore gets a fresh message (a counter in the last 8 bytes).
    let counter = std::cell::Cell::new(0u64);
    let msg = || {
        let n = counter.get().wrapping_add(1);
        counter.set(n);
        let mut m = vec![0x5a; 260];
        m[252..].copy_from_slice(&n.to_le_bytes());
        SignedMessage::Bytes(m)
    };
    // Both ML-DSA providers, each expanding the seed for every signature (the HSM's
    // wrapped-seed path uses `default_provider()`, i.e. aws-lc-rs for ML-DSA).
    let aws = fwseal_crypto::provider::AwsLc;
    let rustcrypto = fwseal_crypto::provider::RustCrypto;
    let pinned = fwseal_crypto::pq::public_from_seed(SigAlg::MlDsa65, &seed)?;

    type Op<'a> = (&'static str, Box<dyn FnMut() -> Result<()> + 'a>);
    let mut ops: Vec<Op> = vec![
        (
            "raw ECDSA P-256 sign (p256, in-process)",
            Box::new(|| soft_ec.sign(&msg()).map(|_| ()).context("sign")),
        ),
        (
            "raw ML-DSA-65 sign, expanded key (RustCrypto)",
            Box::new(|| soft_pq.sign(&msg()).map(|_| ()).context("sign")),
        ),
        (
            "ML-DSA-65 sign from seed (aws-lc-rs)",
            Box::new(|| {
                let SignedMessage::Bytes(b) = msg() else {
                    anyhow::bail!("message")
                };
                aws.sign_from_seed(SigAlg::MlDsa65, &seed, &b, &pinned)
                    .map(|_| ())
                    .context("sign")
            }),
        ),
        (
            "ML-DSA-65 sign from seed (RustCrypto)",
            Box::new(|| {
                let SignedMessage::Bytes(b) = msg() else {
                    anyhow::bail!("message")
                };
                rustcrypto
                    .sign_from_seed(SigAlg::MlDsa65, &seed, &b, &pinned)
                    .map(|_| ())
                    .context("sign")
            }),
        ),
        (
            "HSM ECDSA P-256 sign (SoftHSM2 CKM_ECDSA)",
            Box::new(|| hsm_ec.sign(&msg()).map(|_| ()).context("sign")),
        ),
        (
            "HSM ML-DSA-65 sign (wrapped seed: unwrap + expand + sign)",
            Box::new(|| hsm_pq.sign(&msg()).map(|_| ()).context("sign")),
        ),
        (
            "HSM hybrid P-256 + ML-DSA-65 (one image, both halves)",
            Box::new(|| {
                hsm_pq.sign(&msg())?;
                hsm_ec.sign(&msg())?;
                Ok(())
            }),
        ),
    ];
    // Interleave short rounds and take the median, so background load drifts across all
    // operations alike instead of skewing whichever ran during it.
    const ROUNDS: usize = 5;
    println!(
        "measuring: {ROUNDS} interleaved rounds, {secs} s per operation in total, one thread\n"
    );
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in ops.iter_mut().enumerate() {
            samples[i].push(rate(secs / ROUNDS as f64, f)?);
        }
    }
    let mut rows: Vec<(String, f64)> = Vec::new();
    for (i, (name, _)) in ops.iter().enumerate() {
        let mut v = samples[i].clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let med = v[v.len() / 2];
        println!(
            "{name:<58} {med:>10.0} /s   (rounds: {})",
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        rows.push((name.to_string(), med));
    }
    drop(ops);
    let (raw_ec, raw_pq, seed_aws, seed_rc, h_ec, h_pq, hybrid) = (
        rows[0].1, rows[1].1, rows[2].1, rows[3].1, rows[4].1, rows[5].1, rows[6].1,
    );
    // The bound: the faster ECDSA implementation measured (SoftHSM2's OpenSSL or p256) plus
    // ML-DSA-65 with an already expanded key, back to back.
    let best_ec = raw_ec.max(h_ec);
    let raw_hybrid = 1.0 / (1.0 / best_ec + 1.0 / raw_pq.max(seed_aws).max(seed_rc));
    println!(
        "\nraw hybrid bound (1 / (1/fastest ECDSA + 1/fastest ML-DSA-65)): {raw_hybrid:.0} /s"
    );
    println!("HSM hybrid / raw hybrid bound: {:.2}", hybrid / raw_hybrid);

    // The raw bound for the daemon: the same two HSM primitives, one thread per core.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bound = crate::bench_scale::raw_bound(&hsm_ec, &hsm_pq, cores, scale.load_secs)?;
    println!("raw hybrid bound through the HSM, {cores} threads: {bound:.0} /s\n");
    let work = root.join("target/bench/work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut scale_lines = crate::bench_scale::digests(root, &work, &scale)?;
    scale_lines.extend(crate::bench_scale::daemon(root, &work, &scale, bound)?);
    scale_lines.extend(crate::bench_scale::rss(root, &work, &scale)?);
    let _ = std::fs::remove_dir_all(&work);

    let commit = sh("git", &["rev-parse", "--short", "HEAD"]);
    let cpu = sh(
        "sh",
        &["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
    );
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut md = String::from("# Benchmarks\n\nWritten by `cargo xtask bench` (release build). Rerun it to refresh; numbers from a shared\n2-core machine are noisy.\n\n");
    md.push_str(&format!("- date: {date}\n- commit: {commit}\n- machine: {} cores, {}\n- time per operation: {secs} s in 5 interleaved rounds (median), one thread\n\n", sh("nproc", &[]), cpu.trim()));
    md.push_str("## Signing throughput: HSM path vs raw primitives\n\n| operation | per second |\n|---|---:|\n");
    for (n, r) in &rows {
        md.push_str(&format!("| {n} | {r:.0} |\n"));
    }
    md.push_str(&format!(
        "| raw hybrid bound: 1/(1/fastest ECDSA + 1/fastest ML-DSA-65) | {raw_hybrid:.0} |\n"
    ));
    md.push_str(&format!(
        "\nHSM hybrid reaches **{:.0}%** of the raw hybrid bound. ML-DSA-65: {h_pq:.0}/s through the\nwrapped-seed path (unwrap in SoftHSM2 + key expansion + signing with the default provider,\naws-lc-rs) vs {seed_aws:.0}/s for expansion + signing in process with aws-lc-rs and {seed_rc:.0}/s with\nRustCrypto ({raw_pq:.0}/s for RustCrypto with an already expanded key). The wrapped-seed path thus\nadds {:.0} µs per signature over in-process aws-lc-rs (the SoftHSM2 unwrap round trip and key\nhandling). ECDSA through SoftHSM2 runs at {h_ec:.0}/s vs {raw_ec:.0}/s for the pure-Rust p256 crate.\nMessages differ on every signature (ML-DSA's rejection loop count depends on key and message).\n",
        100.0 * hybrid / raw_hybrid,
        1e6 * (1.0 / h_pq - 1.0 / seed_aws)
    ));
    md.push_str(&format!(
        "\n## Scale: digests, the daemon under load, stock tools, memory{}\n\nRaw bound for the daemon: the same two HSM primitives (SoftHSM2 ECDSA P-256 + ML-DSA-65 from the\nwrapped seed) back to back on {cores} threads: **{bound:.0} hybrid signatures/s**. Each daemon\nsigning also signs its provenance (a second hybrid signature, appliance keys), commits an audit\nrecord (SQLite, `synchronous=FULL`) and writes three content-addressed blobs with fsync.\n\n| measurement | result | target | |\n|---|---|---|---|\n",
        if quick { " (--quick: sizes / 16)" } else { "" }
    ));
    for l in &scale_lines {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            l.what,
            l.value,
            l.target,
            match l.met {
                Some(true) => "MET",
                Some(false) => "MISSED",
                None => "",
            }
        ));
    }
    std::fs::write(root.join("BENCHMARKS.md"), md)?;
    println!("\nwrote BENCHMARKS.md");
    Ok(())
}
