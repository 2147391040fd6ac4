//! `cargo xtask bench` section 6: the device verifier (`crates/fwseal-verify`) on the host —
//! verification speed per algorithm and image size through the streaming API fed 4 KiB
//! flash-sized reads, the context size, and the stack high-water marks the C harness measures
//! (`crates/fwseal-verify-ffi/tests/c_harness.rs`, the figures `docs/bootloader.md` §6 cites).
//!
//! Images are signed in memory by the signing side (fwseal-formats + software keys) over
//! fixed-seed PRNG bodies. Every measurement is interleaved over rounds (median), and each row
//! also gives the time as a multiple of hashing the same bytes with the same digests in-process
//! (fwseal-crypto's SHA-2): that ratio is what the verifier adds, and it holds up on a loaded
//! machine better than the absolute figures.

use crate::bench::Section;
use crate::bench_inputs::{mcuboot_header, Prng};
use anyhow::{Context, Result};
use fwseal_crypto::{soft::SoftKey, DigestAlg, SigAlg, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Format, Mode, Request, SignOptions};
use fwseal_verify::{Policy, Require, TrustedKey, Verifier, CONTEXT_SIZE};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// The flash read the device does per `update` (one sector / page buffer).
const CHUNK: usize = 4 * KIB;

struct Case {
    label: String,
    format: fwseal_verify::Format,
    image: Vec<u8>,
    keys: Vec<Vec<u8>>,
    policy: Policy,
    /// The digests the signing side computed (what a bare hash baseline computes too).
    digests: Vec<DigestAlg>,
}

fn key(cache: &mut Vec<(SigAlg, SoftKey)>, alg: SigAlg) -> Result<usize> {
    if let Some(i) = cache.iter().position(|(a, _)| *a == alg) {
        return Ok(i);
    }
    cache.push((alg, SoftKey::generate(alg).context("keygen")?));
    Ok(cache.len() - 1)
}

fn short(a: SigAlg) -> &'static str {
    match a {
        SigAlg::EcdsaP256Sha256 => "P-256",
        SigAlg::EcdsaP384Sha384 => "P-384",
        SigAlg::MlDsa44 => "ML-DSA-44",
        SigAlg::MlDsa65 => "ML-DSA-65",
        SigAlg::MlDsa87 => "ML-DSA-87",
        SigAlg::SlhDsaSha2_128s => "SLH-DSA-SHA2-128s",
        SigAlg::SlhDsaSha2_128f => "SLH-DSA-SHA2-128f",
        SigAlg::SlhDsaSha2_192s => "SLH-DSA-SHA2-192s",
        SigAlg::SlhDsaSha2_256s => "SLH-DSA-SHA2-256s",
        _ => "?",
    }
}

fn size_label(n: usize) -> String {
    if n >= MIB {
        format!("{} MiB", n / MIB)
    } else {
        format!("{} KiB", n / KIB)
    }
}

/// Sign a `body`-byte image of `format` (raw or MCUboot) with the given halves.
fn case(
    cache: &mut Vec<(SigAlg, SoftKey)>,
    format: Format,
    body: usize,
    classical: Option<SigAlg>,
    pq: Option<SigAlg>,
) -> Result<Case> {
    let payload = Prng::new(0x7e + body as u64).bytes(body);
    let input = match format {
        Format::Mcuboot => {
            let mut v = mcuboot_header(u32::try_from(body)?).to_vec();
            v.extend_from_slice(&payload);
            v
        }
        _ => payload,
    };
    let ci = classical.map(|a| key(cache, a)).transpose()?;
    let pi = pq.map(|a| key(cache, a)).transpose()?;
    let req = Request {
        classical,
        pq,
        mode: Mode::Embedded,
        options: SignOptions {
            product: "bench".into(),
            ..SignOptions::default()
        },
    };
    let plan = prepare(format, &input, &req).map_err(crate::bench::e)?;
    let set = sign_prepared(
        plan.as_ref(),
        ci.map(|i| &cache[i].1 as &dyn Signer),
        pi.map(|i| &cache[i].1 as &dyn Signer),
        vec![],
    )
    .map_err(crate::bench::e)?;
    let image =
        assemble(&input, &plan.embed(&set).map_err(crate::bench::e)?).map_err(crate::bench::e)?;
    let keys = ci
        .into_iter()
        .chain(pi)
        .map(|i| cache[i].1.public_key().spki_der().to_vec())
        .collect();
    let mut digests: Vec<DigestAlg> = classical
        .into_iter()
        .chain(pq)
        .map(|a| a.digest_alg())
        .collect();
    digests.dedup();
    let halves = match (classical, pq) {
        (Some(c), Some(p)) => format!("{} + {}", short(c), short(p)),
        (Some(a), None) | (None, Some(a)) => short(a).to_string(),
        (None, None) => anyhow::bail!("no signature"),
    };
    let (vformat, fname) = match format {
        Format::Mcuboot => (fwseal_verify::Format::Mcuboot, "MCUboot"),
        _ => (fwseal_verify::Format::Raw, "raw"),
    };
    let require = match (classical, pq) {
        (Some(_), Some(_)) => Require::Both,
        (Some(_), None) => Require::ClassicalOnly,
        _ => Require::PqOnly,
    };
    Ok(Case {
        label: format!("{halves}, {fname} {}", size_label(body)),
        format: vformat,
        image,
        keys,
        policy: Policy {
            require,
            min_security_counter: 0,
        },
        digests,
    })
}

/// One streaming verification: every read copied through a 4 KiB buffer, as from flash.
fn verify_streamed(c: &Case, buf: &mut [u8; CHUNK]) -> Result<()> {
    let keys: Vec<TrustedKey<'_>> = c.keys.iter().map(|k| TrustedKey::Spki(k)).collect();
    let mut v =
        Verifier::new(c.format, c.image.len() as u64, &keys, c.policy).map_err(crate::bench::e)?;
    while let Some(r) = v.next_read() {
        let (start, end) = (
            usize::try_from(r.offset)?,
            usize::try_from(r.offset + r.len)?,
        );
        for chunk in c.image[start..end].chunks(CHUNK) {
            let b = &mut buf[..chunk.len()];
            b.copy_from_slice(chunk);
            v.update(b).map_err(crate::bench::e)?;
        }
    }
    v.finish().map_err(crate::bench::e)?;
    Ok(())
}

fn bare_digests(c: &Case) {
    for d in &c.digests {
        std::hint::black_box(d.hash(std::hint::black_box(&c.image)));
    }
}

/// Seconds per call of `f`: at least `min_reps` calls and `secs` seconds.
fn per_call(secs: f64, min_reps: u32, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    let mut n = 0u32;
    while n < min_reps || t.elapsed().as_secs_f64() < secs {
        f()?;
        n += 1;
    }
    Ok(t.elapsed().as_secs_f64() / f64::from(n))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The stack high-water marks: the C harness's self-signed images test with `-m`, in release
/// (its `measure` lines: name, oneshot|stream, stack bytes, time, unit).
fn harness_stack(root: &Path) -> Result<Vec<(String, u64, u64)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("verify: C harness stack measurement (cargo test --release -p fwseal-verify-ffi --test c_harness)");
    let o = Command::new(cargo)
        .current_dir(root)
        .args([
            "test",
            "--release",
            "--quiet",
            "-p",
            "fwseal-verify-ffi",
            "--test",
            "c_harness",
            "--",
            "--exact",
            "c_harness_verifies_images_signed_by_the_signing_side",
            "--nocapture",
        ])
        .output()
        .context("run cargo test")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    anyhow::ensure!(o.status.success(), "C harness test failed:\n{text}");
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 4 || f[0] != "measure" {
            continue;
        }
        let stack: u64 = f[3].parse().context("stack bytes")?;
        let i = match out.iter().position(|(n, _, _)| n == f[1]) {
            Some(i) => i,
            None => {
                out.push((f[1].to_string(), 0, 0));
                out.len() - 1
            }
        };
        match f[2] {
            "oneshot" => out[i].1 = stack,
            _ => out[i].2 = stack,
        }
    }
    anyhow::ensure!(!out.is_empty(), "no measure lines:\n{text}");
    Ok(out)
}

/// Section 6.
pub fn section(root: &Path, quick: bool, scale: usize, out: &mut Vec<Section>) -> Result<()> {
    use SigAlg::*;
    let mut cache = Vec::new();
    let mut cases = Vec::new();
    let small = 64 * KIB;
    println!("verify: signing the images");
    // Each algorithm alone (its policy: classical only / PQ only), 64 KiB raw.
    for a in [
        EcdsaP256Sha256,
        EcdsaP384Sha384,
        MlDsa44,
        MlDsa65,
        MlDsa87,
        SlhDsaSha2_128s,
        SlhDsaSha2_128f,
        SlhDsaSha2_192s,
        SlhDsaSha2_256s,
    ] {
        let (c, p) = if a.family() == fwseal_crypto::Family::PostQuantum {
            (None, Some(a))
        } else {
            (Some(a), None)
        };
        cases.push(case(&mut cache, Format::Raw, small, c, p)?);
    }
    // The hybrid pairs, raw at three sizes; MCUboot for the default pair and the largest.
    let sizes = [small, MIB, 16 * MIB].map(|s| (s / scale).max(KIB));
    for (c, p) in [
        (EcdsaP256Sha256, MlDsa44),
        (EcdsaP256Sha256, MlDsa65),
        (EcdsaP384Sha384, MlDsa87),
        (EcdsaP256Sha256, SlhDsaSha2_128s),
    ] {
        for s in sizes {
            cases.push(case(&mut cache, Format::Raw, s, Some(c), Some(p))?);
        }
    }
    for s in sizes {
        cases.push(case(
            &mut cache,
            Format::Mcuboot,
            s,
            Some(EcdsaP256Sha256),
            Some(MlDsa65),
        )?);
    }
    cases.push(case(
        &mut cache,
        Format::Mcuboot,
        small,
        Some(EcdsaP384Sha384),
        Some(MlDsa87),
    )?);

    // Interleaved rounds, median per case (background load drifts across all cases alike).
    let rounds = if quick { 3 } else { 5 };
    let secs = if quick { 0.05 } else { 0.3 };
    let mut buf = [0u8; CHUNK];
    let mut t_verify = vec![Vec::new(); cases.len()];
    let mut t_hash = vec![Vec::new(); cases.len()];
    println!("verify: {} cases, {rounds} interleaved rounds", cases.len());
    for _ in 0..rounds {
        for (i, c) in cases.iter().enumerate() {
            t_verify[i].push(per_call(secs, 2, || verify_streamed(c, &mut buf))?);
            t_hash[i].push(per_call(secs / 2.0, 2, || {
                bare_digests(c);
                Ok(())
            })?);
        }
    }

    let mut sec = Section::new("fwseal-verify on the host (streaming, 4 KiB reads)");
    for (i, c) in cases.iter().enumerate() {
        let (tv, th) = (median(t_verify[i].clone()), median(t_hash[i].clone()));
        let digests: Vec<&str> = c.digests.iter().map(|d| d.name()).collect();
        sec.row(
            format!("{} ({})", c.label, digests.join(" + ")),
            format!(
                "{:.0} µs = {:.0} MB/s = {:.2}× bare digests",
                tv * 1e6,
                c.image.len() as f64 / tv / 1e6,
                tv / th
            ),
        );
    }
    sec.row(
        "context: core::mem::size_of::<Verifier>() (CONTEXT_SIZE, this build: x86-64, slh-dsa on)",
        format!("{CONTEXT_SIZE} B"),
    );
    match harness_stack(root) {
        Ok(stacks) => {
            // The accepted images (the policy variants repeat the same figures).
            for (name, one, stream) in stacks.into_iter().filter(|s| s.0.ends_with("/valid")) {
                sec.row(
                    format!("stack high-water, C ABI (x86-64 release): {name}"),
                    format!("{stream} B streaming / {one} B one-shot"),
                );
            }
        }
        Err(e) => sec.notes.push(format!("stack rows missing: {e:#}")),
    }
    let bodies: Vec<String> = sizes.iter().map(|s| size_label(*s)).collect();
    sec.notes.push(format!(
        "One verification = `Verifier::new` (SPKI keys parsed) → every `next_read` range copied \
         through a 4 KiB buffer into `update` → `finish`, one thread; median of {rounds} interleaved \
         rounds of ≥ {secs} s per case. MB/s counts the whole device image (body {} plus the \
         signature block / TLVs). \"× bare digests\" = the verification time ÷ hashing the whole image once \
         with each digest listed (fwseal-crypto SHA-2, same process, same rounds): ≈ 1 for large images \
         means hashing dominates, and the 64 KiB rows are dominated by the signature checks. \
         Stack rows: `cargo test --release -p fwseal-verify-ffi --test c_harness -- --exact \
         c_harness_verifies_images_signed_by_the_signing_side --nocapture` (the harness's painted-stack \
         `measure` lines, `panic=abort` staticlib, 3,000-byte bodies; they include the harness's own \
         frame, a few hundred bytes). Cortex-M4 figures: `cargo xtask cortex-m`, docs/bootloader.md §6 and §9.",
        bodies.join(" / ")
    ));
    out.push(sec);
    Ok(())
}
