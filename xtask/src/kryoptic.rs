//! `cargo xtask kryoptic`: build the kryoptic PKCS#11 3.2 soft token (ML-DSA, SLH-DSA) that the
//! native post-quantum key tests use, into `target/kryoptic/libkryoptic_pkcs11.so`.
//!
//! kryoptic needs OpenSSL ≥ 3.5, newer than Debian 12's, so it is built statically against
//! OpenSSL sources: both come from crates.io (`kryoptic`, and `openssl-src`, which carries the
//! OpenSSL source tree), fetched by cargo into its registry and copied under `target/kryoptic/`.
//! Three adjustments to those copies make the static build work (nothing of either is
//! committed here): kryoptic's manifest enables `ossl`'s `ossl-sys` feature (its crates.io
//! manifest only offers the dynamic, system-OpenSSL build); OpenSSL's `util/providers.num` — left
//! out of the `openssl-src` package — is recreated; and OpenSSL is configured `no-shared
//! no-module` (the package lacks the shared-library scripts; kryoptic links it statically). Cached: a finished build is reused until the
//! versions below change. Takes ~10 minutes on 2 cores the first time.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const KRYOPTIC: &str = "1.5.4";
const OPENSSL_SRC: &str = "300.6.1+3.6.3";

/// The built module, building it if needed.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    let out = root.join("target/kryoptic");
    let lib = out.join("libkryoptic_pkcs11.so");
    let stamp = out.join("VERSION");
    let want = format!("kryoptic {KRYOPTIC} openssl-src {OPENSSL_SRC}\n");
    if lib.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(lib);
    }
    let t = std::time::Instant::now();
    println!("building kryoptic {KRYOPTIC} against OpenSSL {OPENSSL_SRC} (first time: ~10 min)");
    let fetch = out.join("fetch");
    std::fs::create_dir_all(fetch.join("src"))?;
    std::fs::write(
        fetch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"kryoptic-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nkryoptic = {{ version = \"={KRYOPTIC}\", default-features = false }}\n\
             openssl-src = \"={OPENSSL_SRC}\"\n\n[workspace]\n"
        ),
    )?;
    std::fs::write(fetch.join("src/lib.rs"), "")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    sh(Command::new(&cargo)
        .args(["fetch", "--quiet", "--manifest-path"])
        .arg(fetch.join("Cargo.toml")))?;
    let registry = cargo_home().join("registry/src");
    let find = |name: &str| -> Result<PathBuf> {
        for index in std::fs::read_dir(&registry)? {
            let p = index?.path().join(name);
            if p.is_dir() {
                return Ok(p);
            }
        }
        bail!("{name} not found under {}", registry.display())
    };
    let build = out.join("build");
    let _ = std::fs::remove_dir_all(&build);
    std::fs::create_dir_all(&build)?;
    let (ksrc, osrc) = (build.join("kryoptic"), build.join("openssl"));
    copy_tree(&find(&format!("kryoptic-{KRYOPTIC}"))?, &ksrc)?;
    copy_tree(
        &find(&format!("openssl-src-{OPENSSL_SRC}"))?.join("openssl"),
        &osrc,
    )?;
    // The static build: `ossl` must pull in `ossl-sys` (which builds the OpenSSL sources).
    let manifest = ksrc.join("Cargo.toml");
    let m = std::fs::read_to_string(&manifest)?;
    let anchor = "[dependencies.ossl]\nversion = \"1.5.4\"\ndefault-features = false\n";
    anyhow::ensure!(m.contains(anchor), "unexpected kryoptic manifest");
    // (An empty [workspace] keeps cargo from adopting it into this repository's workspace.)
    std::fs::write(
        &manifest,
        m.replace(anchor, &format!("{anchor}features = [\"ossl-sys\"]\n")) + "\n[workspace]\n",
    )?;
    // OpenSSL's provider symbol list (one symbol), missing from the openssl-src package.
    let num = osrc.join("util/providers.num");
    if !num.exists() {
        std::fs::write(
            &num,
            "OSSL_provider_init                      1\t*\tEXIST::FUNCTION:\n",
        )?;
    }
    // openssl-src ships what a static build needs (not the shared-library scripts), and
    // kryoptic links libcrypto statically: configure OpenSSL without shared libraries and
    // loadable modules, on top of kryoptic's own options.
    std::fs::rename(osrc.join("Configure"), osrc.join("Configure.real"))?;
    std::fs::write(
        osrc.join("Configure"),
        "#!/bin/sh\nexec perl \"$(dirname \"$0\")/Configure.real\" no-shared no-module \"$@\"\n",
    )?;
    sh(Command::new("chmod").arg("+x").arg(osrc.join("Configure")))?;
    sh(Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--no-default-features",
            "--features",
            "standard,pqc",
            "--target-dir",
        ])
        .arg(build.join("target"))
        .current_dir(&ksrc)
        .env("KRYOPTIC_OPENSSL_SOURCES", &osrc))
    .context("building kryoptic")?;
    std::fs::copy(build.join("target/release/libkryoptic_pkcs11.so"), &lib)?;
    std::fs::write(&stamp, want)?;
    // The sources and intermediate objects are large; the module is all the tests need.
    let _ = std::fs::remove_dir_all(&build);
    println!(
        "kryoptic built in {:.0} s: {}",
        t.elapsed().as_secs_f64(),
        lib.display()
    );
    Ok(lib)
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    sh(Command::new("cp").arg("-r").arg(from).arg(to))
}

fn sh(cmd: &mut Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("spawn {cmd:?}"))?;
    anyhow::ensure!(st.success(), "{cmd:?} failed");
    Ok(())
}
