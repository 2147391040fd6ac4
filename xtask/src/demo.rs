//! `cargo xtask demo` — sign a sample of every format in embedded and detached mode and check
//! each result with fwseal's own verifier and with the ecosystem's stock judge.
//!
//! Until `fwseald` and the HSM backend land (issues 3 and 4), the demo signs through the format
//! engine in-process with freshly generated **development keys** (ECDSA P-256 + ML-DSA-65;
//! RSA-3072 + ML-DSA-65 for .efi). It says so in its output.

use anyhow::{bail, Context, Result};
use fwseal_crypto::cert::{self_signed, CertParams};
use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::{assemble, extract, prepare, sign_prepared, Format, Mode, Request};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Sample {
    format: Format,
    file: &'static str,
}

const SAMPLES: &[Sample] = &[
    Sample {
        format: Format::Raw,
        file: "fixtures/raw/sample.bin",
    },
    Sample {
        format: Format::Raw,
        file: "fixtures/raw/sample.fw",
    },
    Sample {
        format: Format::Mcuboot,
        file: "fixtures/mcuboot/unsigned-h200.img",
    },
    Sample {
        format: Format::Ihex,
        file: "fixtures/hex/multi.hex",
    },
    Sample {
        format: Format::Dfu,
        file: "fixtures/dfu/dfu11.dfu",
    },
    Sample {
        format: Format::Dfu,
        file: "fixtures/dfu/dfuse.dfu",
    },
    Sample {
        format: Format::Efi,
        file: "fixtures/efi/hello.efi",
    },
];

struct Row {
    file: String,
    format: Format,
    mode: Mode,
    own: Result<(), String>,
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
    println!("fwseal demo: signing in-process with fresh DEVELOPMENT keys (the HSM-backed daemon is not built yet)\n");
    let out = root.join("target/demo");
    std::fs::create_dir_all(&out)?;
    let ec = SoftKey::generate(SigAlg::EcdsaP256Sha256)?;
    let pq = SoftKey::generate(SigAlg::MlDsa65)?;
    let rsa = SoftKey::generate(SigAlg::RsaPkcs1Sha256)?;
    let cert = self_signed(
        &rsa,
        &CertParams::code_signing("fwseal demo Secure Boot key"),
    )?;
    let w = |name: &str, data: &[u8]| -> Result<PathBuf> {
        let p = out.join(name);
        std::fs::write(&p, data).with_context(|| format!("write {}", p.display()))?;
        Ok(p)
    };
    let ec_pem = w("demo-ec.pem", ec.public_key().spki_pem().as_bytes())?;
    let pq_pem = w("demo-pq.pem", pq.public_key().spki_pem().as_bytes())?;
    let cert_pem = w(
        "demo-cert.pem",
        fwseal_crypto::verify::pem_encode("CERTIFICATE", &cert).as_bytes(),
    )?;
    // imgtool verify wants the key file; a PEM public key is accepted.
    let mut rows = Vec::new();
    for s in SAMPLES {
        let input_path = root.join(s.file);
        if !input_path.exists() {
            rows.push(Row {
                file: s.file.into(),
                format: s.format,
                mode: Mode::Embedded,
                own: Err("sample missing".into()),
                judge: "-".into(),
                judge_ok: Some(false),
            });
            continue;
        }
        let input = std::fs::read(&input_path)?;
        let classical: &dyn Signer = if s.format == Format::Efi { &rsa } else { &ec };
        let certs = if s.format == Format::Efi {
            vec![cert.clone()]
        } else {
            vec![]
        };
        for mode in [Mode::Embedded, Mode::Detached] {
            let req = Request::hybrid(classical.alg(), pq.alg(), mode, "demo");
            let base = Path::new(s.file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let res = (|| -> Result<(PathBuf, Option<PathBuf>, Vec<u8>)> {
                let plan = prepare(s.format, &input, &req)?;
                let set = sign_prepared(
                    plan.as_ref(),
                    Some(classical),
                    Some(&pq as &dyn Signer),
                    certs.clone(),
                )?;
                let doc = plan.detached(&set)?;
                match mode {
                    Mode::Embedded => {
                        let signed = assemble(&input, &plan.embed(&set)?)?;
                        let p = w(&format!("{base}.signed"), &signed)?;
                        let d = (s.format == Format::Efi)
                            .then(|| {
                                w(&format!("{base}.signed.sig.json"), doc.to_json().as_bytes())
                            })
                            .transpose()?;
                        Ok((p, d, signed))
                    }
                    Mode::Detached => {
                        let d = w(&format!("{base}.sig.json"), doc.to_json().as_bytes())?;
                        let p = w(&base, &input)?;
                        Ok((p, Some(d), input.clone()))
                    }
                }
            })();
            let (path, doc, bytes) = match res {
                Ok(x) => x,
                Err(e) => {
                    rows.push(Row {
                        file: s.file.into(),
                        format: s.format,
                        mode,
                        own: Err(format!("{e:#}")),
                        judge: "-".into(),
                        judge_ok: Some(false),
                    });
                    continue;
                }
            };
            let own = verify_own(s.format, mode, &bytes, doc.as_deref(), &[&ec, &pq, &rsa]);
            let (judge, judge_ok) = judge(
                root,
                s.format,
                mode,
                &path,
                doc.as_deref(),
                &ec_pem,
                &pq_pem,
                &cert_pem,
                &out,
                &input_path,
            );
            rows.push(Row {
                file: s.file.into(),
                format: s.format,
                mode,
                own,
                judge,
                judge_ok,
            });
        }
    }
    println!(
        "{:<36} {:<8} {:<9} {:<10} {:<34} result",
        "sample", "format", "mode", "fwseal", "stock judge"
    );
    let mut failed = 0;
    for r in &rows {
        let own = match &r.own {
            Ok(()) => "ok".to_string(),
            Err(_) => "FAIL".to_string(),
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
            "{:<36} {:<8} {:<9} {:<10} {:<34} {}",
            r.file,
            r.format.name(),
            format!("{:?}", r.mode).to_lowercase(),
            own,
            r.judge,
            res
        );
        if let Err(e) = &r.own {
            println!("    fwseal: {e}");
        }
    }
    println!("\noutputs in {}", out.display());
    if failed > 0 {
        bail!("{failed} of {} demo signings failed", rows.len());
    }
    Ok(())
}

fn verify_own(
    format: Format,
    mode: Mode,
    bytes: &[u8],
    doc: Option<&Path>,
    keys: &[&SoftKey],
) -> Result<(), String> {
    let key_for = |alg: SigAlg| {
        keys.iter().find(|k| {
            k.alg() == alg
                || (matches!(alg, SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256)
                    && k.rsa().is_some())
        })
    };
    if mode == Mode::Embedded {
        let ex = extract(format, bytes).map_err(|e| e.to_string())?;
        for s in &ex.signatures {
            let k = key_for(s.alg).ok_or("no key")?;
            k.public_key()
                .verify_bytes(&s.message, &s.bytes)
                .map_err(|e| format!("{}: {e}", s.alg))?;
        }
        if ex.signatures.is_empty() {
            return Err("no embedded signature".into());
        }
    }
    if let Some(d) = doc {
        let doc = fwseal_formats::detached::DetachedDoc::from_json(
            &std::fs::read(d).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let pq = doc
            .signatures
            .iter()
            .find(|s| s.alg.family() == fwseal_crypto::Family::PostQuantum);
        let classical = doc
            .signatures
            .iter()
            .find(|s| s.alg.family() == fwseal_crypto::Family::Classical);
        let req = Request {
            classical: classical.map(|s| s.alg),
            pq: pq.map(|s| s.alg),
            mode: Mode::Detached,
            options: fwseal_formats::SignOptions {
                product: doc.product.clone(),
                ..Default::default()
            },
        };
        // For an embedded .efi the PQ half in the document covers the image before embedding,
        // i.e. the Authenticode hash, which embedding does not change.
        let plan = prepare(format, bytes, &req).map_err(|e| e.to_string())?;
        if let Some(s) = pq {
            let k = key_for(s.alg).ok_or("no key")?;
            k.public_key()
                .verify_bytes(
                    &plan.pq_message(s.alg).map_err(|e| e.to_string())?,
                    &s.bytes,
                )
                .map_err(|e| format!("{}: {e}", s.alg))?;
        }
        if mode == Mode::Detached {
            if let Some(s) = classical {
                let k = key_for(s.alg).ok_or("no key")?;
                k.public_key()
                    .verify_bytes(
                        &plan
                            .classical_message(s.alg, pq)
                            .map_err(|e| e.to_string())?,
                        &s.bytes,
                    )
                    .map_err(|e| format!("{}: {e}", s.alg))?;
            }
        }
    }
    Ok(())
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
        _ => ("(fwseal verify only)".into(), Some(true)),
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
