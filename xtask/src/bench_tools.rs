//! The stock per-file signing tools with keys on disk: `imgtool sign` (ECDSA P-256),
//! `sbsign` and `osslsigncode sign` (RSA-3072), timed on the same inputs as fwseal.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Images per second of one tool, serially and with one process per core.
pub struct ToolRate {
    /// Tool and key.
    pub name: &'static str,
    /// One process at a time.
    pub serial: f64,
    /// `workers` processes at a time.
    pub parallel: f64,
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Key files for the tools, made once per run.
pub struct ToolKeys {
    /// imgtool ECDSA P-256 key (PEM).
    pub ec: PathBuf,
    /// RSA-3072 key (PEM).
    pub rsa: PathBuf,
    /// Self-signed certificate for `rsa`.
    pub cert: PathBuf,
}

/// Generate the keys under `dir` (imgtool keygen, openssl req).
pub fn keys(dir: &Path) -> Result<ToolKeys> {
    let k = ToolKeys {
        ec: dir.join("imgtool-ec256.pem"),
        rsa: dir.join("rsa3072.key.pem"),
        cert: dir.join("rsa3072.crt.pem"),
    };
    if have("imgtool") {
        run_ok(
            Command::new("imgtool")
                .args(["keygen", "-t", "ecdsa-p256", "-k"])
                .arg(&k.ec),
        )?;
    }
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout",
            ])
            .arg(&k.rsa)
            .arg("-out")
            .arg(&k.cert)
            .args(["-days", "30", "-subj", "/CN=fwseal bench"]),
    )?;
    Ok(k)
}

/// Time `n` runs of `make(i)` one after another, then `n` runs with `workers` at a time.
fn rate(n: usize, workers: usize, make: impl Fn(usize) -> Command + Sync) -> Result<(f64, f64)> {
    run_ok(&mut make(0))?; // warm the page cache (Python imports, shared libraries)
    let t = Instant::now();
    for i in 0..n {
        run_ok(&mut make(i))?;
    }
    let serial = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                let make = &make;
                s.spawn(move || -> Result<()> {
                    for i in (w..n).step_by(workers) {
                        run_ok(&mut make(i))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("tool worker panicked"))??;
        }
        Ok(())
    })?;
    let parallel = n as f64 / t.elapsed().as_secs_f64();
    Ok((serial, parallel))
}

/// `imgtool sign` of `bin` (raw body → MCUboot image, ECDSA P-256, header 0x20 padded in).
pub fn imgtool(
    k: &ToolKeys,
    bin: &Path,
    out: &Path,
    n: usize,
    workers: usize,
) -> Result<Option<ToolRate>> {
    if !have("imgtool") {
        return Ok(None);
    }
    let (serial, parallel) = rate(n, workers, |i| {
        let mut c = Command::new("imgtool");
        c.args(["sign", "--key"])
            .arg(&k.ec)
            .args([
                "--version",
                "1.0.0",
                "--header-size",
                "0x20",
                "--pad-header",
                "--align",
                "4",
                "--slot-size",
                "0x100000",
            ])
            .arg(bin)
            .arg(out.with_extension(format!("{i}.img")));
        c
    })?;
    Ok(Some(ToolRate {
        name: "imgtool sign (ECDSA P-256 key file)",
        serial,
        parallel,
    }))
}

/// `sbsign` and `osslsigncode sign` of `efi` with the RSA-3072 key and certificate.
pub fn efi_tools(
    k: &ToolKeys,
    efi: &Path,
    out: &Path,
    n: usize,
    workers: usize,
) -> Result<Vec<ToolRate>> {
    let mut v = Vec::new();
    if have("sbsign") {
        let (serial, parallel) = rate(n, workers, |i| {
            let mut c = Command::new("sbsign");
            c.arg("--key")
                .arg(&k.rsa)
                .arg("--cert")
                .arg(&k.cert)
                .arg("--output")
                .arg(out.with_extension(format!("sbsign.{i}.efi")))
                .arg(efi);
            c
        })?;
        v.push(ToolRate {
            name: "sbsign (RSA-3072 key file)",
            serial,
            parallel,
        });
    }
    if have("osslsigncode") {
        let (serial, parallel) = rate(n, workers, |i| {
            let o = out.with_extension(format!("osslsigncode.{i}.efi"));
            let _ = std::fs::remove_file(&o);
            let mut c = Command::new("osslsigncode");
            c.args(["sign", "-h", "sha256", "-certs"])
                .arg(&k.cert)
                .arg("-key")
                .arg(&k.rsa)
                .arg("-in")
                .arg(efi)
                .arg("-out")
                .arg(o);
            c
        })?;
        v.push(ToolRate {
            name: "osslsigncode sign (RSA-3072 key file)",
            serial,
            parallel,
        });
    }
    Ok(v)
}
