//! `cargo xtask demo` — sign a sample of every format in embedded and detached mode and check
//! each result with fwseal's own verifier and with the ecosystem's stock judge.
//!
//! It provisions a SoftHSM2 dev token under `target/demo/state`, creates the demo products' keys
//! (`fwseald keys create`), starts `fwseald` on a loopback port, signs every sample through the
//! `fwseal` CLI, verifies each result with `fwseal verify` (signatures and provenance) and with
//! the ecosystem's stock judge, stops the daemon and verifies the audit log. It also signs once
//! with a GitHub Actions-shaped OIDC ID token and gates the result on its verified claims
//! ([`crate::demo_oidc`]).

use crate::appliance::{check, Appliance, Product};
use anyhow::{bail, Result};
use fwseal_crypto::SigAlg;
use fwseal_formats::{Format, Mode};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Sample images; each one's format is what its extension names (`Format::from_name`).
const SAMPLES: &[&str] = &[
    "fixtures/raw/sample.bin",
    "fixtures/raw/sample.fw",
    "fixtures/mcuboot/unsigned-h200.img",
    "fixtures/hex/multi.hex",
    "fixtures/dfu/dfu11.dfu",
    "fixtures/dfu/dfuse.dfu",
    "fixtures/efi/hello.efi",
];

struct Sample {
    format: Format,
    file: &'static str,
}

/// Formats whose products sign with RSA by default (Authenticode).
fn needs_rsa(f: Format) -> bool {
    matches!(
        f.default_classical(),
        SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256
    )
}

fn samples() -> Result<Vec<Sample>> {
    SAMPLES
        .iter()
        .map(|file| {
            let ext = Path::new(file)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            match Format::from_name(ext) {
                Some(format) => Ok(Sample { format, file }),
                None => bail!("demo sample {file}: no format has the extension {ext:?}"),
            }
        })
        .collect()
}

struct Row {
    file: String,
    format: String,
    mode: String,
    /// What `fwseal verify` concluded ("ok", "gate passed", "gate refused") or why it failed.
    own: Result<&'static str, String>,
    judge: String,
    judge_ok: Option<bool>,
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn run_judge(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            (o.status.success() && !text.contains("ERROR"), text)
        }
        Err(e) => (false, e.to_string()),
    }
}

pub fn run(root: &Path) -> Result<()> {
    println!("fwseal demo: SoftHSM2 dev token + fwseald on loopback + the fwseal CLI\n");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    check(Command::new(&cargo).args(["build", "--quiet", "-p", "fwseald", "-p", "fwseal-cli"]))?;
    let bin = root.join("target/debug");
    let (fwseald, fwseal) = (bin.join("fwseald"), bin.join("fwseal"));
    let out = root.join("target/demo");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("keys"))?;
    // Every format goes to the product whose key it needs: ECDSA ("widget") or RSA ("uefi-app").
    let (rsa_formats, ec_formats): (Vec<&str>, Vec<&str>) = fwseal_formats::FORMATS
        .iter()
        .map(|s| s.name)
        .partition(|n| Format::from_name(n).is_some_and(needs_rsa));
    let app = Appliance::provision_with(
        &fwseald,
        &out,
        "fwseal-demo",
        &[
            Product {
                name: "widget",
                formats: &ec_formats,
                classical: None,
            },
            Product {
                name: "uefi-app",
                formats: &rsa_formats,
                classical: Some("rsa-pkcs1-sha256"),
            },
        ],
        &[],
    )?;
    let cfg = app.config().to_string_lossy().into_owned();
    let token = app.token.clone();
    let keys = out.join("keys");
    for p in ["widget", "uefi-app", "fwseal-appliance"] {
        check(
            Command::new(&fwseald)
                .args(["-c", &cfg, "keys", "export", "-p", p, "-o"])
                .arg(&keys)
                .env("FWSEAL_LOG", "warn"),
        )?;
    }
    let k = |n: &str| keys.join(n);
    let (ec, pq) = (
        k("widget-v1-ecdsa-p256-sha256.pem"),
        k("widget-v1-ml-dsa-65.pem"),
    );
    let (cert, epq) = (k("uefi-app-v1-cert.pem"), k("uefi-app-v1-ml-dsa-65.pem"));
    let (aec, apq) = (
        k("fwseal-appliance-v1-ecdsa-p256-sha256.pem"),
        k("fwseal-appliance-v1-ml-dsa-65.pem"),
    );

    // The OIDC issuer's JWKS must be served before fwseald starts (it fetches keys at start).
    let oidc = if crate::demo_oidc::available() {
        let s = crate::demo_oidc::start(root, &out)?;
        app.append_config(&crate::demo_oidc::config(&s))?;
        Some(s)
    } else {
        println!("python3 lacks PyJWT: the OIDC rows are skipped (cargo xtask deps installs it)");
        None
    };
    let daemon = app.start()?;
    let addr = daemon.addr.clone();
    println!("fwseald listening on {addr}\n");

    let mut rows = Vec::new();
    for s in &samples()? {
        let input_path = root.join(s.file);
        let base = Path::new(s.file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rsa = needs_rsa(s.format);
        let product = if rsa { "uefi-app" } else { "widget" };
        let (ck, cp): (&Path, &Path) = if rsa { (&cert, &epq) } else { (&ec, &pq) };
        for mode in [Mode::Embedded, Mode::Detached] {
            let dir = out.join(format!("{mode:?}").to_lowercase());
            std::fs::create_dir_all(&dir)?;
            let input = dir.join(&base);
            std::fs::copy(&input_path, &input)?;
            let mut sign = Command::new(&fwseal);
            sign.args([
                "sign",
                "-p",
                product,
                "--source-uri",
                "git+https://git.example/demo",
            ])
            .arg(&input);
            if mode == Mode::Detached {
                sign.arg("--detached");
            }
            sign.env("FWSEAL_URL", format!("http://{addr}"))
                .env("FWSEAL_TOKEN", &token);
            if let Err(e) = check(&mut sign) {
                rows.push(Row {
                    file: s.file.into(),
                    format: s.format.name().into(),
                    mode: mode_name(mode),
                    own: Err(format!("{e:#}")),
                    judge: "-".into(),
                    judge_ok: Some(false),
                });
                continue;
            }
            let signed = match mode {
                Mode::Embedded => {
                    let stem = input
                        .file_stem()
                        .map(|x| x.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let ext = input
                        .extension()
                        .map(|x| x.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    dir.join(format!("{stem}.signed.{ext}"))
                }
                Mode::Detached => input.clone(),
            };
            // The provenance is named after the image in both modes (formats/provenance.md).
            let mut prov = signed.clone().into_os_string();
            prov.push(".intoto.jsonl");
            let own = check(
                Command::new(&fwseal)
                    .arg("verify")
                    .arg(&signed)
                    .arg("-k")
                    .arg(ck)
                    .arg("-k")
                    .arg(cp)
                    .arg("--provenance")
                    .arg(&prov)
                    .arg("--provenance-key")
                    .arg(&aec)
                    .arg("--provenance-key")
                    .arg(&apq)
                    .args([
                        "--builder-id",
                        "https://fwseal.demo/appliance",
                        "--source-uri",
                        "git+https://git.example/demo",
                        // A static-token signing: its source is only client-asserted.
                        "--accept-client-claims",
                    ]),
            )
            .map(|_| "ok")
            .map_err(|e| format!("{e:#}"));
            let mut doc = signed.clone().into_os_string();
            doc.push(".sig.json");
            let doc = PathBuf::from(doc);
            let doc = doc.exists().then_some(doc);
            let (judge, judge_ok) = judge(
                root,
                s.format,
                mode,
                &signed,
                doc.as_deref(),
                ck,
                cp,
                &cert,
                &dir,
                &input_path,
            );
            rows.push(Row {
                file: s.file.into(),
                format: s.format.name().into(),
                mode: mode_name(mode),
                own,
                judge,
                judge_ok,
            });
        }
    }
    if let Some(servers) = &oidc {
        let ctx = crate::demo_oidc::Ctx {
            root,
            out: &out,
            fwseal: &fwseal,
            url: format!("http://{addr}"),
            static_token: &token,
            keys: [&ec, &pq],
            appliance: [&aec, &apq],
        };
        for r in crate::demo_oidc::rows(&ctx, servers) {
            rows.push(Row {
                file: r.label,
                format: "raw".into(),
                mode: "embedded".into(),
                own: r.own,
                judge: r.judge,
                judge_ok: r.judge_ok,
            });
        }
    }
    drop(daemon);
    drop(oidc);
    let audit = check(
        Command::new(&fwseal)
            .args(["audit", "verify", "--db"])
            .arg(out.join("state/audit.db"))
            .arg("-k")
            .arg(&aec)
            .arg("-k")
            .arg(&apq),
    );

    println!(
        "{:<36} {:<8} {:<9} {:<14} {:<34} result",
        "sample", "format", "mode", "fwseal verify", "stock judge"
    );
    let mut failed = 0;
    for r in &rows {
        let own = match &r.own {
            Ok(what) => *what,
            Err(_) => "FAIL",
        };
        let res = match r.judge_ok {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "judge not installed",
        };
        if r.own.is_err() || r.judge_ok == Some(false) {
            failed += 1;
        }
        println!(
            "{:<36} {:<8} {:<9} {:<14} {:<34} {}",
            r.file, r.format, r.mode, own, r.judge, res
        );
        if let Err(e) = &r.own {
            println!("    {e}");
        }
    }
    match &audit {
        Ok(t) => println!("\n{}", t.trim()),
        Err(e) => {
            failed += 1;
            println!("\naudit log: FAIL {e:#}");
        }
    }
    println!("outputs in {}", out.display());
    if failed > 0 {
        bail!("{failed} demo check(s) failed");
    }
    Ok(())
}

fn mode_name(m: Mode) -> String {
    format!("{m:?}").to_lowercase()
}

#[allow(clippy::too_many_arguments)]
fn judge(
    root: &Path,
    format: Format,
    mode: Mode,
    path: &Path,
    doc: Option<&Path>,
    ec: &Path,
    pq: &Path,
    cert: &Path,
    out: &Path,
    original: &Path,
) -> (String, Option<bool>) {
    let py = |script: &str| root.join("tests/verifiers").join(script);
    match (format, mode) {
        (Format::Raw, Mode::Embedded) => {
            let (ok, _) = run_judge(
                Command::new("python3")
                    .arg(py("sigblock.py"))
                    .args(["--format", "raw", "--require-both", "--image"])
                    .arg(path)
                    .arg("--key")
                    .arg(ec)
                    .arg("--key")
                    .arg(pq),
            );
            ("sigblock.py (pyca, from the spec)".into(), Some(ok))
        }
        (Format::Raw, Mode::Detached) => {
            if !have("openssl") {
                return ("openssl dgst -verify".into(), None);
            }
            let Some(d) = doc else {
                return ("openssl dgst -verify".into(), Some(false));
            };
            let sig = (|| -> Option<Vec<u8>> {
                let doc = fwseal_formats::detached::DetachedDoc::from_json(&std::fs::read(d).ok()?)
                    .ok()?;
                Some(
                    doc.signatures
                        .iter()
                        .find(|s| s.alg == SigAlg::EcdsaP256Sha256)?
                        .bytes
                        .clone(),
                )
            })();
            let Some(sig) = sig else {
                return ("openssl dgst -verify".into(), Some(false));
            };
            let sigp = out.join("raw.sig.der");
            if std::fs::write(&sigp, sig).is_err() {
                return ("openssl dgst -verify".into(), Some(false));
            }
            let (ok, text) = run_judge(
                Command::new("openssl")
                    .args(["dgst", "-sha256", "-verify"])
                    .arg(ec)
                    .arg("-signature")
                    .arg(&sigp)
                    .arg(path),
            );
            (
                "openssl dgst -sha256 -verify".into(),
                Some(ok && text.contains("Verified OK")),
            )
        }
        (Format::Mcuboot, Mode::Embedded) => {
            if !have("imgtool") {
                return ("imgtool verify".into(), None);
            }
            let (ok, _) = run_judge(
                Command::new("imgtool")
                    .arg("verify")
                    .arg("-k")
                    .arg(ec)
                    .arg(path),
            );
            ("imgtool verify -k".into(), Some(ok))
        }
        (Format::Ihex, Mode::Embedded) => {
            let (ok, _) = run_judge(
                Command::new("python3")
                    .arg(py("hex_verify.py"))
                    .arg(path)
                    .arg("--ecdsa-p256")
                    .arg(ec)
                    .arg("--mldsa65")
                    .arg(pq),
            );
            let cmp = if have("srec_cat") && have("srec_cmp") {
                // Original ranges unchanged: drop everything above the original image, compare.
                let trimmed = out.join("multi.trimmed.hex");
                let top = highest_hex_address(original).unwrap_or(0);
                let a = run_judge(
                    Command::new("srec_cat")
                        .arg(path)
                        .arg("-intel")
                        .arg("-exclude")
                        .arg(format!("{:#x}", top))
                        .arg("0xFFFFFFFF")
                        .arg("-o")
                        .arg(&trimmed)
                        .arg("-intel"),
                )
                .0;
                a && run_judge(
                    Command::new("srec_cmp")
                        .arg(original)
                        .arg("-intel")
                        .arg(&trimmed)
                        .arg("-intel"),
                )
                .0
            } else {
                ok
            };
            ("hex_verify.py + srec_cmp".into(), Some(ok && cmp))
        }
        (Format::Dfu, _) => {
            if !have("dfu-suffix") || !have("dfuse-pack") {
                return ("dfu-suffix -c / dfuse-pack -d".into(), None);
            }
            let (ok, _) = run_judge(Command::new("dfu-suffix").arg("-c").arg(path));
            let dfuse = std::fs::read(path)
                .map(|d| d.starts_with(b"DfuSe"))
                .unwrap_or(false);
            if dfuse {
                let (ok2, _) = run_judge(Command::new("dfuse-pack").arg("-d").arg(path));
                ("dfu-suffix -c + dfuse-pack -d".into(), Some(ok && ok2))
            } else {
                ("dfu-suffix -c".into(), Some(ok))
            }
        }
        (Format::Efi, Mode::Embedded) => {
            if !have("sbverify") {
                return ("sbverify --cert".into(), None);
            }
            let (a, _) = run_judge(Command::new("sbverify").arg("--cert").arg(cert).arg(path));
            let b = if have("osslsigncode") {
                run_judge(
                    Command::new("osslsigncode")
                        .args(["verify", "-CAfile"])
                        .arg(cert)
                        .arg("-in")
                        .arg(path),
                )
                .0
            } else {
                a
            };
            ("sbverify + osslsigncode verify".into(), Some(a && b))
        }
        // No stock judge reads a detached fwseal document for these formats.
        (Format::Mcuboot | Format::Ihex | Format::Efi, Mode::Detached) => {
            ("(fwseal verify only)".into(), Some(true))
        }
    }
}

/// One past the highest data address of an Intel HEX file (for the srec_cmp check).
fn highest_hex_address(p: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    let mut base = 0u64;
    let mut top = 0u64;
    for l in text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(':') && l.len() >= 11)
    {
        let n = u64::from_str_radix(&l[1..3], 16).ok()?;
        let addr = u64::from_str_radix(&l[3..7], 16).ok()?;
        match &l[7..9] {
            "00" => top = top.max(base + addr + n),
            "04" => base = u64::from_str_radix(&l[9..13], 16).ok()? << 16,
            "02" => base = u64::from_str_radix(&l[9..13], 16).ok()? << 4,
            _ => {}
        }
    }
    Some(top)
}
