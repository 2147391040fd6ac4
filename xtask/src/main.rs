//! `cargo xtask <demo | test | fuzz | deps | bench | cortex-m>` — project automation in Rust instead of shell scripts.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

mod appliance;
mod bench;
mod bench_daemon;
mod bench_digest;
mod bench_inputs;
mod bench_tools;
mod bench_tsa;
mod bench_verify;
mod cortex_m;
mod demo;
mod demo_oidc;
mod kryoptic;
mod vectors;

/// Debian packages the tests and the demo need (the stock verifiers, SoftHSM2, QEMU + OVMF).
const APT_PACKAGES: &[&str] = &[
    "sbsigntool",
    "osslsigncode",
    "dfu-util",
    "srecord",
    "gnu-efi",
    "ovmf",
    "qemu-system-x86",
    "softhsm2",
    "opensc",
    "openssl",
    "sqlite3",
    "systemd",
    "binutils",
    "libclang-dev",
    "make",
    "perl",
    "faketime",
    "libssl-dev",
    "pkg-config",
];

/// Which command proves each package is installed.
const APT_PROBES: &[(&str, &str)] = &[
    ("sbsigntool", "sbverify"),
    ("osslsigncode", "osslsigncode"),
    ("dfu-util", "dfu-suffix"),
    ("srecord", "srec_cat"),
    ("gnu-efi", "/usr/lib/crt0-efi-x86_64.o"),
    ("ovmf", "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"),
    ("qemu-system-x86", "qemu-system-x86_64"),
    ("softhsm2", "softhsm2-util"),
    ("opensc", "pkcs11-tool"),
    ("openssl", "openssl"),
    ("sqlite3", "sqlite3"),
    ("systemd", "systemd-analyze"),
    ("binutils", "objcopy"),
    ("libclang-dev", "/usr/lib/llvm-14/lib/libclang.so"),
    ("make", "make"),
    ("perl", "perl"),
    ("faketime", "faketime"),
    ("libssl-dev", "/usr/include/openssl/sha.h"),
    ("pkg-config", "pkg-config"),
];

/// PyPI packages: the MCUboot judge, the OVMF variable-store tool, DSSE and ML-DSA verifiers,
/// and PyJWT for the independent OIDC issuer of the tests (`tests/oidc/issuer.py`).
const PIP_PACKAGES: &[&str] = &[
    "imgtool",
    "virt-firmware",
    "securesystemslib",
    "cryptography>=47",
    "slh-dsa==0.2.5",
    "PyJWT>=2.8",
    "PyYAML",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => {
            ensure_deps()?;
            demo::run(&root)
        }
        Some("deps") => ensure_deps(),
        Some("kryoptic") => {
            ensure_deps()?;
            kryoptic::ensure(&root).map(|p| println!("{}", p.display()))
        }
        Some("bench") => {
            ensure_deps()?;
            bench::run(&root, &args[1..])
        }
        Some("bench-inner") => bench::inner(&root, &args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("cortex-m") => cortex_m::run(&root, &args[1..]),
        Some("nostd") => nostd_check(&root),
        Some("vectors") => vectors::run(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo   sign a sample of every format in embedded and detached mode and check each with the stock verifier\n  \
                 test   install missing test dependencies (as root), then fmt, clippy and the whole test suite\n  \
                 deps   only install the test dependencies\n  \
                 fuzz   run every fuzz target for a bounded time (installs cargo-fuzz; stable toolchain)\n  \
                 vectors  generate the conformance kit (signed images, broken variants, manifest) [--out DIR, default vectors/]\n  \
                 nostd  prove fwseal-verify links neither std nor alloc (also part of `test`)\n  \
                 kryoptic  build the PKCS#11 3.2 soft token used by the native PQ key tests\n  \
                 cortex-m  run the fwseal-verify C ABI on an emulated Cortex-M4 (QEMU): conformance kit, code size, stack, instructions\n  \
                 bench  speed and scale (digests, daemon, stock tools, RSS, device verifier); writes BENCHMARKS.md [--quick] [--only SECTION]"
            );
            std::process::exit(2)
        }
    }
}

fn repo_root() -> Result<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(here
        .parent()
        .context("xtask has no parent dir")?
        .to_path_buf())
}

fn have(probe: &str) -> bool {
    if probe.starts_with('/') {
        return Path::new(probe).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(probe).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn sh(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let st = cmd.status().with_context(|| format!("spawn {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn pyca_has_mldsa() -> bool {
    python_has("cryptography.hazmat.primitives.asymmetric.mldsa")
}

/// Install missing system packages and Python tools when running as root; otherwise say exactly
/// what is missing and how to install it.
fn ensure_deps() -> Result<()> {
    let missing_apt: Vec<&str> = APT_PROBES
        .iter()
        .filter(|(_, probe)| !have(probe))
        .map(|(pkg, _)| *pkg)
        .collect();
    let mut missing_pip: Vec<&str> = Vec::new();
    if !have("imgtool") {
        missing_pip.push("imgtool");
    }
    if !have("virt-fw-vars") {
        missing_pip.push("virt-firmware");
    }
    if !python_has("securesystemslib") {
        missing_pip.push("securesystemslib");
    }
    if !pyca_has_mldsa() {
        missing_pip.push("cryptography>=47");
    }
    if !python_has("slhdsa") {
        missing_pip.push("slh-dsa==0.2.5");
    }
    // The independent OIDC test issuer (tests/oidc) and the docs/ci.md runner (YAML).
    if !python_has("jwt") {
        missing_pip.push("PyJWT>=2.8");
    }
    if !python_has("yaml") {
        missing_pip.push("PyYAML");
    }
    if missing_apt.is_empty() && missing_pip.is_empty() {
        return Ok(());
    }
    if !is_root() {
        eprintln!("missing test dependencies (run as root to install them automatically):");
        if !missing_apt.is_empty() {
            eprintln!("  apt-get install -y {}", missing_apt.join(" "));
        }
        if !missing_pip.is_empty() {
            eprintln!("  pip install '{}'", missing_pip.join("' '"));
        }
        if std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() == Ok("1") {
            bail!("stock verifiers are required (FWSEAL_REQUIRE_JUDGES=1) but not installed");
        }
        return Ok(());
    }
    if !missing_apt.is_empty() {
        sh(Command::new("apt-get").args(["update", "-qq"]))?;
        sh(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(APT_PACKAGES))?;
    }
    if !missing_pip.is_empty() {
        sh(Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(PIP_PACKAGES))?;
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test(extra: &[String]) -> Result<()> {
    ensure_deps()?;
    // The PKCS#11 3.2 token for the native post-quantum key tests (built once, then cached).
    let kryoptic = kryoptic::ensure(&repo_root()?)?;
    // On a machine set up by ensure_deps every judge must really run: a missing one fails.
    let require = std::env::var("FWSEAL_REQUIRE_JUDGES").unwrap_or_else(|_| "1".into());
    sh(cargo().args(["fmt", "--all", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    nostd_check(&repo_root()?)?;
    // The conformance kit, regenerated: the tests check the generator itself, while the
    // committed vectors/ stays what rigs download.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().unwrap_or_default().join("target"));
    let kit = target.join("vectors");
    vectors::generate(&repo_root()?, &kit)?;
    vectors::check_committed(&repo_root()?.join("vectors"), &kit)?;
    sh(cargo()
        .env("FWSEAL_VECTORS", &kit)
        .env("FWSEAL_REQUIRE_JUDGES", &require)
        .env(
            "FWSEAL_SLOW_TESTS",
            std::env::var("FWSEAL_SLOW_TESTS").unwrap_or_else(|_| "1".into()),
        )
        .env("FWSEAL_KRYOPTIC_MODULE", &kryoptic)
        .args(["test", "--workspace"])
        .args(extra))?;
    // The README's first command, on the embedded default: every format signed and judged by
    // its stock verifier, the OIDC signing and its gate. It must keep working on a fresh machine.
    demo::run(&repo_root()?)?;
    Ok(())
}

/// The no_std proof of fwseal-verify: a `#![no_std]` staticlib with its own panic handler and
/// no allocator calls it (crates/fwseal-verify/nostd). rustc refuses to build it if anything
/// links `std` (duplicate `panic_impl` lang item) or `alloc` (no global allocator).
fn nostd_check(root: &Path) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("nostd");
    sh(cargo()
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(root.join("crates/fwseal-verify/nostd/Cargo.toml"))
        .arg("--target-dir")
        .arg(target))
    .context(
        "fwseal-verify links std or alloc (see the duplicate lang item / allocator error above)",
    )
}

fn fuzz(args: &[String]) -> Result<()> {
    let secs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(60);
    let has_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_fuzz {
        sh(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }
    // cargo-fuzz passes nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP lets the stable
    // toolchain accept them, so no nightly toolchain is needed.
    // Detection over every fixture, one target per format (its descriptor names the target and
    // its fixtures), then the client-side hashing wire types.
    let mut targets: Vec<(&str, &str)> = vec![("detect", "fixtures")];
    targets.extend(
        fwseal_formats::FORMATS
            .iter()
            .map(|s| (s.fuzz_target, s.fixtures)),
    );
    targets.push(("remote", "fuzz/seeds/remote"));
    // The device-side verifier (crates/fwseal-verify), every format from one target.
    targets.push(("verify", "fuzz/seeds/verify"));
    // The transparency log: signed notes, checkpoints, proofs (crates/fwseal-tlog).
    targets.push(("tlog", "fuzz/seeds/tlog"));
    // RFC 3161: the built-in TSA's responder and the token parsers (crates/fwseal-tsa).
    targets.push(("tsa", "fuzz/seeds/tsa"));
    let mut summary = Vec::new();
    for (t, seeds) in targets {
        let corpus = Path::new("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", t])
            .arg(corpus.canonicalize()?)
            .current_dir("fuzz");
        let seed_dir = Path::new(seeds);
        if seed_dir.is_dir() {
            cmd.arg(seed_dir.canonicalize()?);
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1");
        eprintln!("+ {cmd:?}");
        let out = cmd.output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        let execs = err
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "?".into());
        if !out.status.success() {
            eprintln!("{err}");
            bail!("fuzz target {t} failed (crash or build error); see above");
        }
        summary.push(format!("{t:<10} {execs:>12} execs in {secs} s, no crash"));
    }
    println!("fuzz summary:");
    for l in summary {
        println!("  {l}");
    }
    Ok(())
}
