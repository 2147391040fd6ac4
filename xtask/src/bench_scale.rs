//! The scale half of `cargo xtask bench`: format-aware digest throughput on large inputs next to
//! `sha256sum`, the real daemon under load next to the raw primitive bound, fwseal next to the
//! stock signing tools, and the daemon's peak RSS while signing 1 GiB images.

use crate::appliance::{check, Appliance, Product};
use crate::load;
use anyhow::{Context, Result};
use fwseal_crypto::{SigAlg, SignedMessage, Signer};
use fwseal_formats::{files, Format, Mode, Request};
use fwseal_hsm::HsmSigner;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const MIB: u64 = 1 << 20;

/// Knobs: `--quick` shrinks everything for a CI smoke run.
pub struct Scale {
    pub quick: bool,
    /// Seconds per load point.
    pub load_secs: f64,
}

impl Scale {
    fn mib(&self, full: u64) -> u64 {
        if self.quick {
            (full / 16).max(4)
        } else {
            full
        }
    }
}

/// One result line: what, value, unit, target text, met?
pub struct Line {
    pub what: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

impl Line {
    fn new(what: impl Into<String>, value: impl Into<String>) -> Self {
        Line {
            what: what.into(),
            value: value.into(),
            target: String::new(),
            met: None,
        }
    }
    fn target(mut self, t: impl Into<String>, met: bool) -> Self {
        self.target = t.into();
        self.met = Some(met);
        self
    }
}

/// A deterministic byte stream (xorshift64*), written in 1 MiB blocks.
fn write_random(w: &mut impl Write, len: u64, seed: u64) -> Result<()> {
    let mut s = seed | 1;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        for c in buf.chunks_exact_mut(8) {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            c.copy_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = left.min(MIB) as usize;
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn make_raw(path: &Path, len: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_random(&mut f, len, 0x5eed)?;
    f.flush()?;
    Ok(())
}

/// An unsigned MCUboot image: 0x200-byte header (magic 0x96f3b83d, version 1.0.0) + body.
fn make_mcuboot(path: &Path, body: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut h = Vec::with_capacity(0x200);
    h.extend_from_slice(&0x96f3_b83du32.to_le_bytes()); // ih_magic
    h.extend_from_slice(&0u32.to_le_bytes()); // ih_load_addr
    h.extend_from_slice(&0x200u16.to_le_bytes()); // ih_hdr_size
    h.extend_from_slice(&0u16.to_le_bytes()); // ih_protect_tlv_size
    h.extend_from_slice(&u32::try_from(body)?.to_le_bytes()); // ih_img_size
    h.extend_from_slice(&0u32.to_le_bytes()); // ih_flags
    h.extend_from_slice(&[1, 0, 0, 0]); // ih_ver: 1.0.0
    h.extend_from_slice(&0u32.to_le_bytes()); // build
    h.resize(0x200, 0);
    f.write_all(&h)?;
    write_random(&mut f, body, 0x1a9)?;
    f.flush()?;
    Ok(())
}

/// A DFU 1.1 file: body + 16-byte suffix with the DFU CRC.
fn make_dfu(path: &Path, body: u64) -> Result<()> {
    make_raw(path, body)?;
    let mut crc = crc32fast::Hasher::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
    }
    let mut suffix = vec![
        0x00, 0x01, 0x34, 0x12, 0x83, 0x04, 0x00, 0x01, b'U', b'F', b'D', 16,
    ];
    crc.update(&suffix);
    let dw = !crc.finalize();
    suffix.extend_from_slice(&dw.to_le_bytes());
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(&suffix)?;
    Ok(())
}

/// Intel HEX text of about `text_len` bytes: 32-byte data records, an extended linear address
/// record every 64 KiB, an EOF record.
fn make_hex(path: &Path, text_len: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut s: u64 = 0x4e5;
    let mut addr: u32 = 0x0800_0000;
    let mut written = 0u64;
    let mut line = String::with_capacity(80);
    let record = |line: &mut String, kind: u8, a: u16, data: &[u8]| {
        use std::fmt::Write as _;
        line.clear();
        let mut sum = data.len() as u8;
        sum = sum
            .wrapping_add((a >> 8) as u8)
            .wrapping_add(a as u8)
            .wrapping_add(kind);
        let _ = write!(line, ":{:02X}{a:04X}{kind:02X}", data.len());
        for b in data {
            sum = sum.wrapping_add(*b);
            let _ = write!(line, "{b:02X}");
        }
        let _ = writeln!(line, "{:02X}", sum.wrapping_neg());
    };
    let mut data = [0u8; 32];
    while written < text_len {
        if addr & 0xffff == 0 {
            record(&mut line, 4, 0, &((addr >> 16) as u16).to_be_bytes());
            f.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        for b in data.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = s as u8;
        }
        record(&mut line, 0, addr as u16, &data);
        f.write_all(line.as_bytes())?;
        written += line.len() as u64;
        addr += 32;
    }
    f.write_all(b":00000001FF\n")?;
    f.flush()?;
    Ok(())
}

/// A PE32+ EFI application enlarged by a data section of `extra` bytes (binutils objcopy).
fn make_efi(root: &Path, path: &Path, extra: u64) -> Result<()> {
    let data = path.with_extension("section");
    make_raw(&data, extra)?;
    check(
        Command::new("objcopy")
            .arg(format!("--add-section=.big={}", data.display()))
            .arg("--set-section-flags=.big=contents,alloc,load,readonly,data")
            .arg(root.join("fixtures/efi/hello.efi"))
            .arg(path),
    )?;
    std::fs::remove_file(data)?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Seconds for `f`, median of `n` runs.
fn time_it(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(median(v))
}

fn hybrid_request(format: Format) -> Request {
    let classical = if format == Format::Efi {
        SigAlg::RsaPkcs1Sha256
    } else {
        SigAlg::EcdsaP256Sha256
    };
    Request::hybrid(classical, SigAlg::MlDsa65, Mode::Embedded, "bench")
}

/// Digest throughput per format vs `sha256sum` over the same file.
pub fn digests(root: &Path, dir: &Path, sc: &Scale) -> Result<Vec<Line>> {
    let cases: [(&str, Format, u64, f64); 5] = [
        ("bin", Format::Raw, sc.mib(256), 0.9),
        ("img", Format::Mcuboot, sc.mib(256), 0.9),
        ("dfu", Format::Dfu, sc.mib(256), 0.9),
        ("hex", Format::Ihex, sc.mib(64), 0.5),
        ("efi", Format::Efi, sc.mib(64), 0.0),
    ];
    let mut lines = Vec::new();
    for (ext, format, mib, target) in cases {
        let path = dir.join(format!("digest.{ext}"));
        match format {
            Format::Raw => make_raw(&path, mib * MIB)?,
            Format::Mcuboot => make_mcuboot(&path, mib * MIB)?,
            Format::Dfu => make_dfu(&path, mib * MIB)?,
            Format::Ihex => make_hex(&path, mib * MIB)?,
            _ => make_efi(root, &path, mib * MIB)?,
        }
        let len = std::fs::metadata(&path)?.len();
        let req = hybrid_request(format);
        // Warm the page cache, then alternate: ours, sha256sum, three times each.
        let _ = std::fs::read(&path)?;
        let ours = time_it(3, || {
            files::prepare_file(format, &path, &req, u64::MAX)
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}"))
        })?;
        let theirs = time_it(3, || {
            check(Command::new("sha256sum").arg(&path)).map(|_| ())
        })?;
        let (a, b) = (len as f64 / ours / 1e6, len as f64 / theirs / 1e6);
        let ratio = a / b;
        let mut l = Line::new(
            format!("digest .{ext} ({} MiB file)", len / MIB),
            format!("{a:.0} MB/s vs sha256sum {b:.0} MB/s = {ratio:.2}×"),
        );
        if target > 0.0 {
            l = l.target(format!("≥ {target}× sha256sum"), ratio >= target);
        }
        println!("{:<40} {}  {}", l.what, l.value, l.target);
        lines.push(l);
        std::fs::remove_file(&path)?;
    }
    Ok(lines)
}

/// Hybrid signatures/s with `threads` threads sharing the HSM signers, for `secs`.
pub fn raw_bound(ec: &HsmSigner, pq: &HsmSigner, threads: usize, secs: f64) -> Result<f64> {
    let t0 = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<u64> {
                    let mut n = 0u64;
                    let mut m = vec![0x5a; 260];
                    m[0] = t as u8;
                    while t0.elapsed().as_secs_f64() < secs {
                        m[252..].copy_from_slice(&n.to_le_bytes());
                        let msg = SignedMessage::Bytes(m.clone());
                        pq.sign(&msg)?;
                        ec.sign(&msg)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("panic"))?)
            .sum::<Result<u64>>()
    })?;
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

fn fwseald_release(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    check(Command::new(cargo).args(["build", "--release", "--quiet", "-p", "fwseald"]))?;
    Ok(root.join("target/release/fwseald"))
}

fn bench_products() -> [Product<'static>; 2] {
    [
        Product {
            name: "bench",
            formats: &["raw", "mcuboot", "ihex", "dfu"],
            classical: None,
        },
        Product {
            name: "uefi",
            formats: &["efi"],
            classical: Some("rsa-pkcs1-sha256"),
        },
    ]
}

/// Daemon throughput/latency for 64 KiB images at concurrency 1, 8, 32 next to the raw bound,
/// and per-image time next to imgtool, sbsign and osslsigncode.
pub fn daemon(root: &Path, dir: &Path, sc: &Scale, bound: f64) -> Result<Vec<Line>> {
    let fwseald = fwseald_release(root)?;
    let app = Appliance::start(
        &fwseald,
        &dir.join("load"),
        "fwseal-bench-load",
        &bench_products(),
        "",
    )?;
    let sign_url = |p: &str, q: &str| format!("{}/v1/products/{p}/sign?{q}", app.url);
    let mut img = Vec::new();
    write_random(&mut img, 64 << 10, 0x64)?;
    let body = Arc::new(img);
    let mut lines = Vec::new();
    for c in [1usize, 8, 32] {
        let r = load::run(
            &sign_url("bench", "mode=embedded&format=raw&name=fw.bin"),
            &app.token,
            body.clone(),
            c,
            sc.load_secs,
        )?;
        let rate = r.per_sec();
        println!(
            "daemon c={c:<2}: {rate:>7.0} images/s  p50 {:.1} ms  p99 {:.1} ms  ({} images)",
            r.p50_ms, r.p99_ms, r.completed
        );
        let mut l = Line::new(
            format!("daemon, 64 KiB .bin, hybrid, concurrency {c}"),
            format!(
                "{rate:.0} images/s = {:.0}% of bound; p50 {:.1} ms, p99 {:.1} ms",
                100.0 * rate / bound,
                r.p50_ms,
                r.p99_ms
            ),
        );
        if c == 8 {
            l = l.target(
                "≥ 70% of the raw bound, p99 ≤ 20 ms",
                rate >= 0.7 * bound && r.p99_ms <= 20.0,
            );
        }
        lines.push(l);
    }

    // Stock tools, one image at a time, same inputs.
    let tools = dir.join("tools");
    std::fs::create_dir_all(&tools)?;
    let bin = tools.join("app.bin");
    std::fs::write(&bin, &body[..])?;
    let ec_key = tools.join("ec.pem");
    check(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&ec_key),
    )?;
    let n_tool = if sc.quick { 2 } else { 6 };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let imgtool = |k: usize| {
        let mut c = Command::new("imgtool");
        c.args(["sign", "--key"])
            .arg(&ec_key)
            .args([
                "--version",
                "1.0.0",
                "--header-size",
                "0x200",
                "--pad-header",
                "--align",
                "4",
                "--slot-size",
                "0x100000",
            ])
            .arg(&bin)
            .arg(tools.join(format!("app-{k}.img")));
        c
    };
    let (imgtool_one, imgtool_rate) = tool_rates(cores, n_tool, imgtool)?;
    // fwseal on the same bytes as an unsigned MCUboot image (header + the same body), hybrid.
    let unsigned = tools.join("app-unsigned.img");
    check(
        Command::new("imgtool")
            .args([
                "create",
                "--version",
                "1.0.0",
                "--header-size",
                "0x200",
                "--pad-header",
                "--align",
                "4",
                "--slot-size",
                "0x100000",
            ])
            .arg(&bin)
            .arg(&unsigned),
    )?;
    let img_body = Arc::new(std::fs::read(&unsigned)?);
    let url = sign_url("bench", "mode=embedded&format=mcuboot&name=app.img");
    let one = load::run(&url, &app.token, img_body.clone(), 1, sc.load_secs)?;
    let best = load::run(&url, &app.token, img_body, 8, sc.load_secs)?;
    let ratio = best.per_sec() / imgtool_rate;
    let l = Line::new(
        "vs imgtool sign (64 KiB .bin → .img)",
        format!(
            "images/s: fwseal {:.0} (hybrid, daemon, concurrency 8) vs imgtool {imgtool_rate:.1} (ECDSA only, {cores} processes in parallel) = {ratio:.0}×; one at a time {:.1} ms vs {:.0} ms = {:.0}×",
            best.per_sec(),
            1e3 / one.per_sec(),
            imgtool_one * 1e3,
            imgtool_one * one.per_sec()
        ),
    )
    .target("≥ 100× imgtool's images/s", ratio >= 100.0);
    println!("{:<40} {}", l.what, l.value);
    lines.push(l);

    // .efi: sbsign and osslsigncode with RSA-3072 key + certificate files.
    let key = tools.join("rsa.key");
    let cert = tools.join("rsa.crt");
    check(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-newkey",
                "rsa:3072",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=bench",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    )?;
    let efi = root.join("fixtures/efi/hello.efi");
    let sbsign = |k: usize| {
        let mut c = Command::new("sbsign");
        c.arg("--key")
            .arg(&key)
            .arg("--cert")
            .arg(&cert)
            .arg("--output")
            .arg(tools.join(format!("sb-{k}.efi")))
            .arg(&efi);
        c
    };
    let ossl = |k: usize| {
        let out = tools.join(format!("os-{k}.efi"));
        let _ = std::fs::remove_file(&out);
        let mut c = Command::new("osslsigncode");
        c.args(["sign", "-certs"])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .arg("-in")
            .arg(&efi)
            .arg("-out")
            .arg(out);
        c
    };
    let sb = tool_rates(cores, n_tool, sbsign)?;
    let os = tool_rates(cores, n_tool, ossl)?;
    let url = sign_url("uefi", "mode=embedded&format=efi&name=hello.efi");
    let efi_body = Arc::new(std::fs::read(&efi)?);
    let one = load::run(&url, &app.token, efi_body.clone(), 1, sc.load_secs)?;
    let best = load::run(&url, &app.token, efi_body, 8, sc.load_secs)?;
    for (name, (t_one, rate)) in [("sbsign", sb), ("osslsigncode sign", os)] {
        let l = Line::new(
            format!(
                "vs {name} (.efi, {} KiB)",
                std::fs::metadata(&efi)?.len() >> 10
            ),
            format!(
                "images/s: fwseal {:.0} (RSA-3072 + ML-DSA-65 in SoftHSM2, daemon, concurrency 8) vs {name} {rate:.0} (RSA-3072 key file, {cores} processes) = {:.1}×; one at a time {:.1} ms vs {:.1} ms",
                best.per_sec(),
                best.per_sec() / rate,
                1e3 / one.per_sec(),
                t_one * 1e3
            ),
        );
        println!("{:<40} {}", l.what, l.value);
        lines.push(l);
    }
    Ok(lines)
}

/// A stock tool's time per image run alone (median of `n`), and its images/s with `procs`
/// processes running side by side (`n` images each).
fn tool_rates(procs: usize, n: usize, cmd: impl Fn(usize) -> Command + Sync) -> Result<(f64, f64)> {
    let one = time_it(n, || check(&mut cmd(0)).map(|_| ()))?;
    let t = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..procs)
            .map(|p| {
                let cmd = &cmd;
                s.spawn(move || -> Result<()> {
                    for _ in 0..n {
                        check(&mut cmd(p))?;
                    }
                    Ok(())
                })
            })
            .collect();
        hs.into_iter()
            .try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("panic"))?)
    })?;
    Ok((one, (procs * n) as f64 / t.elapsed().as_secs_f64()))
}

/// Peak RSS of a fresh daemon signing one large streamed image.
pub fn rss(root: &Path, dir: &Path, sc: &Scale) -> Result<Vec<Line>> {
    let fwseald = fwseald_release(root)?;
    let mib = if sc.quick { 64 } else { 1024 };
    let mut lines = Vec::new();
    for (ext, format) in [("bin", Format::Raw), ("img", Format::Mcuboot)] {
        let input = dir.join(format!("big.{ext}"));
        match format {
            Format::Raw => make_raw(&input, mib * MIB)?,
            _ => make_mcuboot(&input, mib * MIB)?,
        }
        let d = dir.join(format!("rss-{ext}"));
        let app = Appliance::start(
            &fwseald,
            &d,
            &format!("fwseal-bench-rss-{ext}"),
            &bench_products(),
            "max_upload_bytes = 2147483648\n",
        )?;
        let idle = app.peak_rss()?;
        let t = Instant::now();
        load::post_file(
            &format!(
                "{}/v1/products/bench/sign?mode=embedded&format={}&name=big.{ext}",
                app.url,
                format.name()
            ),
            &app.token,
            &input,
        )
        .with_context(|| format!("sign big.{ext}"))?;
        let secs = t.elapsed().as_secs_f64();
        let peak = app.peak_rss()?;
        let l = Line::new(
            format!("fwseald peak RSS, {mib} MiB .{ext} (streamed)"),
            format!(
                "{:.1} MiB (idle {:.1} MiB); signed in {secs:.1} s",
                peak as f64 / MIB as f64,
                idle as f64 / MIB as f64
            ),
        )
        .target("≤ 64 MiB", peak <= 64 * MIB);
        println!("{:<40} {}  {}", l.what, l.value, l.target);
        lines.push(l);
        drop(app);
        std::fs::remove_file(&input)?;
        let _ = std::fs::remove_dir_all(&d);
    }
    Ok(lines)
}
