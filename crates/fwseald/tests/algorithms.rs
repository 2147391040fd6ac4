//! End to end, every algorithm pair: one real `fwseald` (SoftHSM2 dev token, SQLite) with one
//! product per (classical, post-quantum) pair fwseal offers (`SigAlg::ALL`, the names
//! `hsm-config/fwseal.toml` documents; RSA keys at the default 3072 bits), every format signed by
//! upload (embedded and detached) and by `--hash-locally`, and every output checked by
//! `fwseal verify` with the product's exported public keys.
//!
//! SLH-DSA's small-signature ("s") parameter sets take 5–12 s per signature on a loaded 2-core
//! machine, so by default their pairs sign embedded only and fewer formats: SLH-DSA-SHA2-256s
//! (the largest signature) two formats per pair, rotating so it meets every format; 128s and
//! 192s one format per pair. Every other pair signs every format embedded and detached, and
//! raw + MCUboot hash-locally. `FWSEAL_FULL_MATRIX=1` signs every format in every mode (and
//! every non-.efi format hash-locally) for every pair.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test algorithms`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fwseal_crypto::{Family, SigAlg};
use fwseal_formats::Format;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Inputs, one per format (DFU twice: DfuSe and DFU 1.1).
const INPUTS: [(&str, Format); 6] = [
    ("raw/sample.bin", Format::Raw),
    ("mcuboot/unsigned-h200.img", Format::Mcuboot),
    ("efi/hello.efi", Format::Efi),
    ("hex/multi.hex", Format::Ihex),
    ("dfu/dfuse.dfu", Format::Dfu),
    ("dfu/dfu11.dfu", Format::Dfu),
];

/// The whole run must finish within this (it is a bound, not a benchmark).
const DEADLINE: Duration = Duration::from_secs(900);

fn slow(pq: SigAlg) -> bool {
    matches!(
        pq,
        SigAlg::SlhDsaSha2_128s | SigAlg::SlhDsaSha2_192s | SigAlg::SlhDsaSha2_256s
    )
}

struct Pair {
    product: String,
    classical: SigAlg,
    pq: SigAlg,
    /// Indexes into INPUTS this pair signs, and whether detached and hash-locally too.
    inputs: Vec<usize>,
    all_modes: bool,
}

fn pairs(full: bool) -> Vec<Pair> {
    let of = |f: Family| -> Vec<SigAlg> {
        SigAlg::ALL
            .into_iter()
            .filter(|a| a.family() == f)
            .collect()
    };
    let (classical, pq) = (of(Family::Classical), of(Family::PostQuantum));
    let mut out = Vec::new();
    for q in &pq {
        for (i, c) in classical.iter().enumerate() {
            let n = INPUTS.len();
            // Rotations over the classical algorithms (.efi, index 2, lands on RSA products).
            let (inputs, all_modes) = match q {
                _ if full || !slow(*q) => ((0..n).collect(), true),
                SigAlg::SlhDsaSha2_256s => (vec![i % n, (i + 4) % n], false),
                SigAlg::SlhDsaSha2_192s => (vec![(i + 4) % n], false),
                _ => (vec![i % n], false),
            };
            out.push(Pair {
                product: format!("pair-{}-{}", c.name(), q.name()),
                classical: *c,
                pq: *q,
                inputs,
                all_modes,
            });
        }
    }
    out
}

fn config(pairs: &[Pair]) -> String {
    pairs
        .iter()
        .map(|p| {
            format!(
                "[[product]]\nname = \"{}\"\nclassical = \"{}\"\npq = \"{}\"\n",
                p.product,
                p.classical.name(),
                p.pq.name()
            )
        })
        .collect()
}

/// `fwseal verify` must pass and name both halves with the algorithms the format signs with.
fn verify(a: &Appliance, what: &str, args: &[&str], keys: &[String], want: &[String]) {
    let mut v = vec!["verify"];
    v.extend(args);
    for k in keys {
        v.extend(["-k", k.as_str()]);
    }
    let r = a.cli(&v);
    assert!(r.ok(), "{what}: fwseal {v:?}:\n{}", r.text());
    for w in want {
        assert!(r.stdout.contains(w), "{what}: no {w:?} in\n{}", r.text());
    }
    assert!(r.stdout.contains(": verified ("), "{what}: {}", r.text());
}

/// An input copied for one pair, and its format.
type Item = (String, Format);

fn run_pair(a: &Appliance, p: &Pair, full: bool) -> usize {
    let t0 = Instant::now();
    let dir = p.product.as_str();
    std::fs::create_dir_all(a.path(dir).join("hl")).unwrap();
    let key = |alg: SigAlg| format!("keys/{}-v1-{}.pem", p.product, alg.name());
    let mut checked = 0;
    // Upload (embedded, then detached) and hash-locally, one CLI call per mode for all inputs
    // the product can sign; .efi with an ECDSA product is refused (OVMF refuses ECDSA).
    let mut batch = Vec::new();
    let mut hl = Vec::new();
    for &i in &p.inputs {
        let (rel, format) = INPUTS[i];
        let name = rel.rsplit('/').next().unwrap();
        let src = fixture(rel);
        let here = format!("{dir}/{name}");
        std::fs::copy(&src, a.path(&here)).unwrap();
        if format == Format::Efi && p.classical.name().starts_with("ecdsa") {
            let r = a.cli(&["sign", "-p", &p.product, &here]);
            assert!(
                !r.ok() && r.stderr.contains("unsupported") && r.stderr.contains("ECDSA"),
                "{}: .efi with {} must be refused as unsupported:\n{}",
                p.product,
                p.classical,
                r.text()
            );
            continue;
        }
        if format == Format::Mcuboot || format == Format::Raw || (full && format != Format::Efi) {
            let h = format!("{dir}/hl/{name}");
            std::fs::copy(&src, a.path(&h)).unwrap();
            hl.push((h, format));
        }
        batch.push((here, format));
    }
    let names = |v: &[Item]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let mut modes: Vec<(&str, Vec<&str>, &[Item])> = vec![("embedded", vec![], batch.as_slice())];
    if p.all_modes {
        modes.push(("detached", vec!["--detached"], batch.as_slice()));
        modes.push(("hash-locally", vec!["--hash-locally"], hl.as_slice()));
    }
    for (mode, flags, items) in modes {
        if items.is_empty() {
            continue;
        }
        let files = names(items);
        let mut args = vec!["sign", "-p", p.product.as_str()];
        args.extend(flags.iter().copied());
        args.extend(files.iter().map(String::as_str));
        let r = a.cli(&args);
        assert!(r.ok(), "{} {mode}: {}", p.product, r.text());
        for (input, format) in items {
            let c = format.classical_alg(p.classical);
            let mut keys = vec![key(p.classical), key(p.pq)];
            if c.name().starts_with("rsa") {
                keys.push(format!("keys/{}-v1-cert.pem", p.product));
            }
            let want = [
                format!("{c} signature by"),
                format!("{} signature by", p.pq),
            ];
            let what = format!("{} {mode} {input}", p.product);
            if mode == "detached" {
                let doc = format!("{input}.sig.json");
                verify(a, &what, &[input, "--detached", &doc], &keys, &want);
            } else {
                verify(a, &what, &[&embedded_name(input)], &keys, &want);
            }
            checked += 1;
        }
    }
    eprintln!("{}: {checked} outputs in {:?}", p.product, t0.elapsed());
    checked
}

#[test]
fn every_algorithm_pair_signs_every_format_and_fwseal_verify_accepts_it() {
    let started = Instant::now();
    let full = std::env::var("FWSEAL_FULL_MATRIX").is_ok_and(|v| v == "1");
    let pairs = pairs(full);
    let names: Vec<&str> = pairs.iter().map(|p| p.product.as_str()).collect();
    let a = Appliance::start_with_products("", &config(&pairs), &names);
    for p in &names {
        a.export_keys(p);
    }
    let keyed = started.elapsed();
    // A few workers: the daemon signs concurrently, the CLI calls overlap.
    let next = AtomicUsize::new(0);
    let checked = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(p) = pairs.get(i) else { break };
                assert!(
                    started.elapsed() < DEADLINE,
                    "matrix exceeded {DEADLINE:?} before {}",
                    p.product
                );
                checked.fetch_add(run_pair(&a, p, full), Ordering::SeqCst);
            });
        }
    });
    let checked = checked.into_inner();
    eprintln!(
        "{} pairs, {checked} signed outputs verified; keys {keyed:?}, total {:?}",
        pairs.len(),
        started.elapsed()
    );
    // 4 classical × 7 PQ algorithms, and every pair produced verified outputs.
    assert_eq!(pairs.len(), 28);
    assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
    let per_product: usize = a
        .sql(
            "select count(distinct product) from audit_log where action = 'sign' \
             and decision = 'allow' and product like 'pair-%'",
        )
        .parse()
        .unwrap();
    assert_eq!(per_product, pairs.len(), "every pair signed");
    // Fast pairs: 6 inputs embedded + detached (.efi refused for the 8 ECDSA pairs) + raw and
    // MCUboot hash-locally; "s" pairs: 2 + 1 + 1 inputs embedded per classical algorithm,
    // less .efi on an ECDSA product.
    if !full {
        assert_eq!(
            checked,
            8 * (12 + 2) + 8 * (10 + 2) + 4 * 4,
            "outputs verified"
        );
    }
    a.assert_alive();
}
