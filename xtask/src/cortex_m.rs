//! `cargo xtask cortex-m`: the C ABI of fwseal-verify on an emulated Cortex-M4, and the same
//! harness on the host for comparison.
//!
//! 1. Builds `libfwseal_verify_ffi.a` for `thumbv7em-none-eabihf` with Debian's `rustc-web`
//!    (the rustup toolchains here have no Cortex-M standard library; Debian ships its source in
//!    `rust-web-src`, so `-Zbuild-std=core` builds `core` for the target), `panic=abort`,
//!    `opt-level=s`, LTO — with and without the `slh-dsa` feature.
//! 2. Links the conformance harness (`crates/fwseal-verify-ffi/tests/c/harness.c`, the same file
//!    the host test runs) with `arm-none-eabi-gcc`, newlib's semihosting (`rdimon`) stdio and
//!    `crates/fwseal-verify-ffi/cortex-m/` (start-up, MPS2 linker script), and a stub that only
//!    references the API, to measure the verifier's own code size (`arm-none-eabi-size`).
//! 3. Runs the harness under `qemu-system-arm -M mps2-an386` with `-icount shift=0` (one
//!    instruction = 1 ns of virtual time) over the conformance kit: every verdict is checked as
//!    on the host, and each accepted vector reports its stack high-water mark and its
//!    instruction count. QEMU does not model cycles (no DWT): instructions are what it gives.
//! 4. Runs the host build of the same harness for the host stack and time.
//!
//! Not part of `cargo xtask test` (it installs ~1 GB of cross tools). Installs them as root.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APT: &[&str] = &[
    "gcc-arm-none-eabi",
    "libnewlib-arm-none-eabi",
    "qemu-system-arm",
    "rustc-web",
    "cargo-web",
    "rust-web-src",
];
const PROBES: &[&str] = &[
    "/usr/bin/arm-none-eabi-gcc",
    "/usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/librdimon.a",
    "/usr/bin/qemu-system-arm",
    "/usr/bin/rustc",
    "/usr/bin/cargo",
    "/usr/lib/rustlib/src/rust/library/core/Cargo.toml",
];
const TARGET: &str = "thumbv7em-none-eabihf";
const CFLAGS: &[&str] = &[
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-O2",
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
];

struct Opts {
    kit: PathBuf,
    chunks: String,
    timeout: Duration,
}

fn parse(root: &Path, args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        kit: root.join("vectors"),
        chunks: "509".into(),
        timeout: Duration::from_secs(1800),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--kit" => o.kit = PathBuf::from(val()?),
            "--chunks" => o.chunks = val()?.clone(),
            "--timeout" => o.timeout = Duration::from_secs(val()?.parse()?),
            _ => {
                bail!("usage: cargo xtask cortex-m [--kit DIR] [--chunks 1,509,0] [--timeout SECS]")
            }
        }
    }
    o.kit = o
        .kit
        .canonicalize()
        .with_context(|| format!("{}: run `cargo xtask vectors` first", o.kit.display()))?;
    Ok(o)
}

fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = PROBES
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::is_root() {
        bail!(
            "missing {missing:?}; install: apt-get install -y --no-install-recommends {}",
            APT.join(" ")
        );
    }
    crate::sh(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::sh(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(APT),
    )
}

fn target_dir(root: &Path, sub: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(sub)
}

/// Build the staticlib for Cortex-M with Debian's toolchain; returns the `.a`.
fn build_thumb(root: &Path, slh: bool) -> Result<PathBuf> {
    let dir = target_dir(root, if slh { "cortex-m" } else { "cortex-m-no-slh" });
    let mut cmd = Command::new("/usr/bin/cargo");
    // Debian's cargo/rustc first on PATH; rustup's proxies would pick the host-only toolchain.
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("/usr/bin:{path}"))
        .env("RUSTC", "/usr/bin/rustc")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .args(["build", "--release", "--locked", "-p", "fwseal-verify-ffi"])
        .args(["-Zbuild-std=core", "--target", TARGET])
        .arg("--target-dir")
        .arg(&dir)
        .current_dir(root);
    if !slh {
        cmd.args(["--no-default-features", "--features", "panic-handler"]);
    }
    crate::sh(&mut cmd)?;
    Ok(dir.join(TARGET).join("release/libfwseal_verify_ffi.a"))
}

fn arm_gcc(args: &[&str], extra: &[&Path], out: &Path) -> Result<()> {
    let mut cmd = Command::new("arm-none-eabi-gcc");
    cmd.args(CFLAGS).args(args);
    for p in extra {
        cmd.arg(p);
    }
    cmd.args(["-Wl,--gc-sections", "-o"]).arg(out);
    crate::sh(&mut cmd)
}

/// `text data bss` of an ELF.
fn size(elf: &Path) -> Result<(u64, u64, u64)> {
    let o = Command::new("arm-none-eabi-size").arg(elf).output()?;
    let s = String::from_utf8_lossy(&o.stdout);
    let nums: Vec<u64> = s
        .lines()
        .nth(1)
        .context("arm-none-eabi-size output")?
        .split_whitespace()
        .take(3)
        .map(|v| v.parse())
        .collect::<Result<_, _>>()?;
    Ok((nums[0], nums[1], nums[2]))
}

/// Run a command with a wall-clock limit; returns (success, stdout).
fn run_limited(cmd: &mut Command, limit: Duration) -> Result<(bool, String, Duration)> {
    eprintln!("+ {cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let mut out = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    loop {
        if let Some(st) = child.try_wait()? {
            let text = reader.join().unwrap_or_default();
            return Ok((st.success(), text, start.elapsed()));
        }
        if start.elapsed() > limit {
            child.kill()?;
            let _ = child.wait();
            bail!("{cmd:?} took more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `measure` lines: vector → (mode → (stack, time)).
type Measures = BTreeMap<String, BTreeMap<String, (u64, u64)>>;

fn measures(text: &str) -> Measures {
    let mut m = Measures::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() == 6 && f[0] == "measure" {
            if let (Ok(stack), Ok(t)) = (f[3].parse(), f[4].parse()) {
                m.entry(f[1].to_string())
                    .or_default()
                    .insert(f[2].to_string(), (stack, t));
            }
        }
    }
    m
}

fn summary(text: &str) -> Result<(u64, u64)> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("harness: "))
        .context("no `harness:` summary line")?;
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok((n[0], n[1]))
}

fn host_harness(root: &Path, kit: &Path, work: &Path) -> Result<String> {
    let dir = target_dir(root, "ffi-host");
    crate::sh(
        crate::cargo()
            .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
            .args(["build", "--release", "--locked", "-p", "fwseal-verify-ffi"])
            .arg("--target-dir")
            .arg(&dir),
    )?;
    let ffi = root.join("crates/fwseal-verify-ffi");
    let exe = work.join("harness-host");
    crate::sh(
        Command::new("gcc")
            .args(["-std=c99", "-D_POSIX_C_SOURCE=200112L", "-O2", "-I"])
            .arg(ffi.join("include"))
            .arg(ffi.join("tests/c/harness.c"))
            .arg(dir.join("release/libfwseal_verify_ffi.a"))
            .args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
                "-o",
            ])
            .arg(&exe),
    )?;
    let (ok, text, _) = run_limited(
        Command::new(&exe).args(["-m", "-c", "509,0"]).arg(kit),
        Duration::from_secs(600),
    )?;
    if !ok {
        bail!("host harness failed:\n{text}");
    }
    Ok(text)
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let o = parse(root, args)?;
    ensure_tools()?;
    let ffi = root.join("crates/fwseal-verify-ffi");
    let cm = ffi.join("cortex-m");
    let work = target_dir(root, "cortex-m-work");
    std::fs::create_dir_all(&work)?;

    let lib = build_thumb(root, true)?;
    let lib_no_slh = build_thumb(root, false)?;

    // code size: a stub that references every API function, minus the same stub without them
    let include = format!("-I{}", ffi.join("include").display());
    let stub_src = work.join("stub.c");
    std::fs::write(
        &stub_src,
        "#include \"fwseal_verify.h\"\n\
         volatile uint32_t sink;\n\
         #ifdef WITH_VERIFIER\n\
         static fwseal_verify_ctx ctx;\n\
         #endif\n\
         int main(void) {\n\
         #ifdef WITH_VERIFIER\n\
           uint8_t b[1] = {0}; uint64_t o, l; fwseal_verify_policy p = {0, 0};\n\
           fwseal_verify_details d;\n\
           sink = (uint32_t)fwseal_verify_init(&ctx, 1, 1, 0, 0, &p);\n\
           sink += (uint32_t)fwseal_verify_next_read(&ctx, &o, &l);\n\
           sink += (uint32_t)fwseal_verify_update(&ctx, b, 1);\n\
           sink += (uint32_t)fwseal_verify_finish(&ctx, &d);\n\
           sink += (uint32_t)fwseal_verify_image(1, b, 1, 0, 0, &p, &d);\n\
           sink += (uint32_t)fwseal_verify_reason_str(1)[0];\n\
         #endif\n\
           return (int)sink;\n\
         }\n",
    )?;
    let startup = cm.join("startup.c");
    let ld = format!("-T{}", cm.join("mps2.ld").display());
    let mut sizes = Vec::new();
    let base = work.join("stub-base.elf");
    arm_gcc(
        &[&include, "--specs=rdimon.specs", "-nostartfiles", &ld],
        &[&stub_src, &startup],
        &base,
    )?;
    let base_size = size(&base)?;
    for (name, l) in [("with SLH-DSA", &lib), ("without SLH-DSA", &lib_no_slh)] {
        let elf = work.join(format!("stub-{}.elf", sizes.len()));
        let mut a = vec![
            include.as_str(),
            "--specs=rdimon.specs",
            "-nostartfiles",
            &ld,
            "-DWITH_VERIFIER",
        ];
        let nsd = "-DFWSEAL_VERIFY_NO_SLH_DSA";
        if l == &lib_no_slh {
            a.push(nsd);
        }
        arm_gcc(&a, &[&stub_src, &startup, l], &elf)?;
        let s = size(&elf)?;
        sizes.push((
            name,
            s.0 - base_size.0,
            s.1.saturating_sub(base_size.1),
            s.2 - base_size.2,
        ));
    }

    // the conformance harness on the emulated Cortex-M4
    let elf = work.join("harness.elf");
    arm_gcc(
        &[
            &include,
            "--specs=rdimon.specs",
            "-nostartfiles",
            &ld,
            "-DFWSEAL_HARNESS_CORTEX_M",
            "-DREPEAT=1",
        ],
        &[&startup, &ffi.join("tests/c/harness.c"), &lib],
        &elf,
    )?;
    let harness_size = size(&elf)?;
    let sh_args = format!(
        "enable=on,target=native,arg=harness,arg=-m,arg=-c,arg={},arg={}",
        o.chunks,
        o.kit.display()
    );
    let (ok, text, wall) = run_limited(
        Command::new("qemu-system-arm")
            .args(["-M", "mps2-an386", "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", &sh_args])
            .args(["-icount", "shift=0,align=off,sleep=off"])
            .arg("-kernel")
            .arg(&elf),
        o.timeout,
    )?;
    std::fs::write(work.join("qemu-harness.log"), &text)?;
    for l in text.lines().filter(|l| l.starts_with("FAIL")) {
        eprintln!("{l}");
    }
    let (passed, failed) = summary(&text)?;
    let cm_m = measures(&text);

    let host_text = host_harness(root, &o.kit, &work)?;
    std::fs::write(work.join("host-harness.log"), &host_text)?;
    let host_m = measures(&host_text);

    println!("## Cortex-M4 (QEMU mps2-an386, {TARGET}, opt-level=s, LTO, panic=abort)\n");
    println!("Conformance kit on the emulated Cortex-M4: {passed} passed, {failed} failed (chunks {}), {:.0} s wall.\n", o.chunks, wall.as_secs_f64());
    println!("Code size of the verifier (stub referencing the API, minus the empty stub; arm-none-eabi-size):\n");
    println!("| build | text | data | bss |\n|---|---:|---:|---:|");
    for (n, t, d, b) in &sizes {
        println!("| {n} | {t} | {d} | {b} |");
    }
    println!(
        "\nWhole harness ELF (verifier + newlib stdio + harness): text {} data {} bss {}.\n",
        harness_size.0, harness_size.1, harness_size.2
    );
    println!("Per accepted vector (stack high-water mark in bytes, incl. the harness's call frame; instructions from QEMU -icount; host: release build, ns):\n");
    println!("| vector | M4 one-shot stack | M4 stream stack | M4 one-shot instr | M4 stream instr | host one-shot stack | host stream stack | host one-shot µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, modes) in &cm_m {
        let g = |m: &Measures, mode: &str| m.get(name).and_then(|x| x.get(mode)).copied();
        let f = |v: Option<(u64, u64)>, i: usize| {
            v.map(|(s, t)| if i == 0 { s.to_string() } else { t.to_string() })
                .unwrap_or_else(|| "–".into())
        };
        let us = g(&host_m, "oneshot").map(|(_, t)| format!("{:.0}", t as f64 / 1000.0));
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            f(modes.get("oneshot").copied(), 0),
            f(modes.get("stream").copied(), 0),
            f(modes.get("oneshot").copied(), 1),
            f(modes.get("stream").copied(), 1),
            f(g(&host_m, "oneshot"), 0),
            f(g(&host_m, "stream"), 0),
            us.unwrap_or_else(|| "–".into()),
        );
    }
    println!("\nLogs: {}", work.display());
    if !ok || failed > 0 {
        bail!("the harness failed on the emulated Cortex-M4 ({failed} failures; see {}/qemu-harness.log)", work.display());
    }
    Ok(())
}
