//! A real fwseald for the demo and the benchmarks: provision a state directory (config with a
//! SoftHSM2 dev token, product keys via `fwseald keys create`, a client token), then start
//! `fwseald run` on a loopback port as often as needed (the bench restarts it to read a fresh
//! peak RSS).

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Product names in the bench config.
pub const PRODUCT: &str = "bench";
/// The RSA-3072 (Authenticode) product.
pub const PRODUCT_EFI: &str = "bench-efi";

/// A product of the generated config.
pub struct Product<'a> {
    pub name: &'a str,
    pub formats: &'a [&'a str],
    /// Classical algorithm, if not the default ECDSA P-256.
    pub classical: Option<&'a str>,
}

/// A provisioned appliance state directory (config, dev token, keys, client token).
pub struct Appliance {
    fwseald: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    /// The API token.
    pub token: String,
}

/// A running daemon; stopped (SIGTERM, then kill) on drop.
pub struct Running {
    child: Child,
    /// `host:port`.
    pub addr: String,
}

impl Running {
    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field (kB) of `/proc/<pid>/status`, e.g. `VmHWM`.
    pub fn status_kb(&self, field: &str) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in /proc/{}/status", self.pid()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command; its stdout + stderr, or an error carrying them when it fails.
pub fn check(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "{cmd:?} failed: {text}");
    Ok(text)
}

impl Appliance {
    /// Write a config under `dir`, create a SoftHSM2 dev token and the products' keys
    /// (`fwseald keys create`), as `cargo xtask demo` does.
    pub fn provision(fwseald: &Path, dir: &Path) -> Result<Self> {
        Self::provision_products(fwseald, dir, &[PRODUCT, PRODUCT_EFI])
    }

    /// As [`Appliance::provision`] (the bench's two products), creating keys for `products` only.
    pub fn provision_products(fwseald: &Path, dir: &Path, products: &[&str]) -> Result<Self> {
        let all = [
            Product {
                name: PRODUCT,
                formats: &["raw", "mcuboot", "dfu"],
                classical: None,
            },
            Product {
                name: PRODUCT_EFI,
                formats: &["efi"],
                classical: Some("rsa-pkcs1-sha256"),
            },
        ];
        let _ = std::fs::remove_dir_all(dir);
        Self::provision_with(fwseald, dir, "fwseal-bench-daemon", &all, products)
    }

    /// Provision `products` (all get keys unless `with_keys` names a subset) on a dev token
    /// labelled `label` under `dir/state`; uploads up to 2 GiB. Rate limits are off: the
    /// benchmark and the demo drive it from one loopback client, far above the defaults.
    pub fn provision_with(
        fwseald: &Path,
        dir: &Path,
        label: &str,
        products: &[Product],
        with_keys: &[&str],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let token = format!("tok-{nanos:x}");
        let token_hash = fwseal_crypto::DigestAlg::Sha256.hash(token.as_bytes());
        let hash: String = token_hash.iter().map(|b| format!("{b:02x}")).collect();
        let mut text = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nidentity = \"https://fwseal.demo/appliance\"\nmax_upload_bytes = {}\n[http]\nper_ip = {{ per_second = 0 }}\nper_client = {{ per_second = 0 }}\n[hsm]\ntoken_label = \"{label}\"\ndev_token = true\n",
            dir.join("state").display(),
            2u64 << 30
        );
        for p in products {
            let formats: Vec<String> = p.formats.iter().map(|f| format!("\"{f}\"")).collect();
            text.push_str(&format!(
                "[[product]]\nname = \"{}\"\nformats = [{}]\n",
                p.name,
                formats.join(", ")
            ));
            if let Some(c) = p.classical {
                text.push_str(&format!("classical = \"{c}\"\n"));
            }
        }
        text.push_str(&format!(
            "[[client]]\nname = \"client\"\ntoken_sha256 = \"{hash}\"\nroles = {{ \"*\" = [\"submitter\", \"factory\"] }}\n"
        ));
        let config = dir.join("fwseal.toml");
        std::fs::write(&config, text)?;
        let cfg = config.to_string_lossy().into_owned();
        for p in products
            .iter()
            .filter(|p| with_keys.is_empty() || with_keys.contains(&p.name))
        {
            check(
                Command::new(fwseald)
                    .args(["-c", &cfg, "keys", "create", "-p", p.name])
                    .env("FWSEAL_LOG", "warn"),
            )?;
        }
        Ok(Appliance {
            fwseald: fwseald.to_path_buf(),
            config,
            dir: dir.to_path_buf(),
            token,
        })
    }

    /// Append `text` (TOML tables, e.g. `[[oidc.issuers]]`) to the config before [`start`].
    ///
    /// [`start`]: Appliance::start
    pub fn append_config(&self, text: &str) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)?;
        writeln!(f, "\n{text}")?;
        Ok(())
    }

    /// The config file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The state directory's parent (config, log, state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon binary.
    pub fn fwseald_path(&self) -> PathBuf {
        self.fwseald.clone()
    }

    /// Start `fwseald run` and wait for its address.
    pub fn start(&self) -> Result<Running> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("fwseald.log"))?;
        let mut child = Command::new(&self.fwseald)
            .arg("-c")
            .arg(&self.config)
            .arg("run")
            .env("FWSEAL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("start fwseald")?;
        let stdout = child.stdout.take().context("fwseald stdout")?;
        let mut running = Running {
            child,
            addr: String::new(),
        };
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        running.addr = line
            .trim()
            .strip_prefix("fwseald listening on ")
            .with_context(|| format!("fwseald did not report its address (got {line:?})"))?
            .to_string();
        Ok(running)
    }
}
