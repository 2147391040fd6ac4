//! `fwseal verify` over the conformance kit (`vectors/`, or env `FWSEAL_VECTORS`): every vector
//! whose `verifiers` include `fwseal-cli` (those with a file and no minimum security counter,
//! which the CLI has no option for) is verified offline with the kit's PEM keys and the policy's
//! `--pq-only` / `--classical-only`, and the exit status must match `expect`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn fwseal_verify_cli_agrees_with_the_kit() {
    let dir = std::env::var_os("FWSEAL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors"));
    let text = match std::fs::read_to_string(dir.join("manifest.json")) {
        Ok(t) => t,
        Err(e) if std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() != Ok("1") => {
            eprintln!("SKIP: {}: {e} (run `cargo xtask vectors`)", dir.display());
            return;
        }
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    let vectors: Vec<Value> = serde_json::from_str(&text).expect("manifest.json");
    let (mut checked, mut bad) = (0, Vec::new());
    for v in &vectors {
        if !v["verifiers"]
            .as_array()
            .expect("verifiers")
            .iter()
            .any(|x| x == "fwseal-cli")
        {
            continue;
        }
        let name = v["name"].as_str().expect("name");
        assert_eq!(v["policy"]["min_security_counter"], 0, "{name}");
        let format = match v["format"].as_str().expect("format") {
            "hex" => "ihex",
            "dfuse" => "dfu",
            f => f,
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fwseal"));
        cmd.arg("verify")
            .arg(dir.join(v["file"].as_str().expect("file")))
            .args(["--format", format]);
        for k in v["keys"].as_array().expect("keys") {
            let pem = k.as_str().expect("key").replace(".spki.der", ".pem");
            cmd.arg("--key").arg(dir.join(pem));
        }
        match v["policy"]["require"].as_str() {
            Some("pq") => {
                cmd.arg("--pq-only");
            }
            Some("classical") => {
                cmd.arg("--classical-only");
            }
            _ => {}
        }
        let o = cmd.output().expect("run fwseal");
        let accepted = o.status.success();
        if accepted != (v["expect"] == "accept") {
            bad.push(format!(
                "{name}: fwseal verify {} (kit: {} {}): {}",
                if accepted { "accepted" } else { "rejected" },
                v["expect"],
                v["reason"],
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} vectors apply to fwseal-cli");
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!("fwseal verify: {checked} vectors agree");
}
