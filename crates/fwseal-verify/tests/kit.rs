//! The conformance kit (`vectors/`, `cargo xtask vectors`; env `FWSEAL_VECTORS` names another
//! copy, e.g. the one `cargo xtask test` regenerates) through fwseal-verify and the independent
//! Python verifiers (`tests/verifiers/kit.py`): verdict **and** reason of every vector, one-shot
//! and streamed in small chunks, and the Python judge's verdicts against the manifest.

mod common;

use common::{repo_root, verify_chunked};
use fwseal_verify::{verify, Error, Format, Policy, Require, TrustedKey, Verified};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn require_judges() -> bool {
    std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() == Ok("1")
}

/// The kit directory and its manifest; `None` (skip) when it is absent outside CI.
fn kit() -> Option<(PathBuf, Vec<Value>)> {
    let dir = std::env::var_os("FWSEAL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("vectors"));
    let path = dir.join("manifest.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !require_judges() => {
            eprintln!("SKIP: {}: {e} (run `cargo xtask vectors`)", path.display());
            return None;
        }
        Err(e) => panic!(
            "{}: {e} (generate it with `cargo xtask vectors`)",
            path.display()
        ),
    };
    let v: Vec<Value> = serde_json::from_str(&text).expect("manifest.json");
    assert!(v.len() >= 100, "the kit has only {} vectors", v.len());
    Some((dir, v))
}

fn applies(v: &Value, verifier: &str) -> bool {
    v["verifiers"]
        .as_array()
        .expect("verifiers")
        .iter()
        .any(|x| x == verifier)
}

fn code(r: &Result<Verified, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn fwseal_verify_agrees_with_every_vector() {
    let Some((dir, vectors)) = kit() else { return };
    let mut bad = Vec::new();
    let mut checked = 0;
    for v in vectors.iter().filter(|v| applies(v, "fwseal-verify")) {
        let name = v["name"].as_str().expect("name");
        let f = Format::from_name(v["format"].as_str().expect("format")).expect("known format");
        let image = std::fs::read(dir.join(v["device_image"].as_str().expect("device_image")))
            .expect("device image");
        let keys: Vec<Vec<u8>> = v["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| std::fs::read(dir.join(k.as_str().expect("key path"))).expect("key"))
            .collect();
        let keys: Vec<TrustedKey<'_>> = keys.iter().map(|k| TrustedKey::Spki(k)).collect();
        let policy = Policy {
            require: match v["policy"]["require"].as_str() {
                Some("both") => Require::Both,
                Some("pq") => Require::PqOnly,
                Some("classical") => Require::ClassicalOnly,
                other => panic!("{name}: require {other:?}"),
            },
            min_security_counter: v["policy"]["min_security_counter"]
                .as_u64()
                .expect("min_security_counter") as u32,
        };
        let want = v["reason"].as_str().expect("reason");
        assert_eq!(
            v["expect"] == "accept",
            want == "ok",
            "{name}: expect and reason disagree"
        );
        let got = verify(f, &image, &keys, policy);
        if code(&got) != want {
            bad.push(format!(
                "{name}: one-shot {} (want {want}): {got:?}",
                code(&got)
            ));
        }
        for chunk in [1, 61, 4096] {
            let got = verify_chunked(f, &image, &keys, policy, chunk);
            if code(&got) != want {
                bad.push(format!("{name}: chunks of {chunk}: {}", code(&got)));
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 100,
        "only {checked} vectors apply to fwseal-verify"
    );
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!("fwseal-verify: {checked} vectors, one-shot + 3 chunk sizes each, all agree");
}

/// The manifest exercises every format, both verdicts, and the reason vocabulary.
#[test]
fn the_kit_covers_every_format_and_reason() {
    let Some((_, vectors)) = kit() else { return };
    for f in Format::ALL {
        for expect in ["accept", "reject"] {
            assert!(
                vectors
                    .iter()
                    .any(|v| v["format"] == f.name() && v["expect"] == expect),
                "no {expect} vector for {}",
                f.name()
            );
        }
    }
    for reason in [
        "ok",
        "truncated",
        "bad-length",
        "bad-magic",
        "malformed",
        "no-signature-block",
        "unknown-tlv",
        "duplicate-tlv",
        "format-mismatch",
        "digest-mismatch",
        "digest-missing",
        "unsupported-algorithm",
        "untrusted-key",
        "classical-signature-invalid",
        "classical-signature-missing",
        "pq-signature-invalid",
        "pq-signature-missing",
        "pq-tlv-not-last",
        "security-counter-too-low",
    ] {
        assert!(
            vectors.iter().any(|v| v["reason"] == reason),
            "no vector with reason {reason}"
        );
    }
}

/// The independent Python verifiers (`tests/verifiers/kit.py`, written from `formats/*.md`)
/// over the whole kit: the same verdict on every vector, the same reason where they name one.
#[test]
fn python_verifiers_agree_with_the_kit() {
    let Some((dir, vectors)) = kit() else { return };
    let script = repo_root().join("tests/verifiers/kit.py");
    let probe = Command::new("python3")
        .args([
            "-c",
            "from cryptography.hazmat.primitives.asymmetric import mldsa",
        ])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        assert!(
            !require_judges(),
            "python3 with pyca cryptography >= 47 is required (FWSEAL_REQUIRE_JUDGES=1)"
        );
        eprintln!("SKIP: python3 with pyca cryptography >= 47 not available");
        return;
    }
    let o = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("run kit.py");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() || o.status.code() == Some(1),
        "kit.py crashed:\n{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut bad = Vec::new();
    let (mut checked, mut same_reason, mut skipped) = (0, 0, 0);
    for v in vectors.iter().filter(|v| applies(v, "python")) {
        let name = v["name"].as_str().expect("name");
        let line = out
            .lines()
            .find(|l| l.split('\t').next() == Some(name))
            .unwrap_or_else(|| panic!("kit.py printed no verdict for {name}"));
        let f: Vec<&str> = line.split('\t').collect();
        let (verdict, reason) = (f[1], f[2]);
        if verdict == "skip" {
            // only what pyca cannot verify (SLH-DSA without the `slhdsa` package)
            assert!(
                name.contains("slh-dsa") && !require_judges(),
                "kit.py skipped {name}: {line}"
            );
            skipped += 1;
            continue;
        }
        checked += 1;
        if verdict != v["expect"] {
            bad.push(format!(
                "{name}: python {verdict} ({line}), kit {}",
                v["reason"]
            ));
        } else if reason != "?" && reason != v["reason"] {
            bad.push(format!(
                "{name}: python reason {reason}, kit {}",
                v["reason"]
            ));
        } else if reason != "?" {
            same_reason += 1;
        }
    }
    assert!(checked >= 100, "python judged only {checked} vectors");
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!(
        "python: {checked} vectors agree ({same_reason} with the same reason code), {skipped} skipped"
    );
}
