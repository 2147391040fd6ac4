//! A real fwseald for the demo and the benchmarks: a config with a SoftHSM2 dev token under
//! `dir/state`, product keys created with `fwseald keys create`, `fwseald run` on a loopback port.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running daemon; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Appliance {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The client's API token.
    pub token: String,
    /// The config file.
    pub config: PathBuf,
}

/// A product of the generated config.
pub struct Product<'a> {
    pub name: &'a str,
    pub formats: &'a [&'a str],
    /// Classical algorithm, if not the default ECDSA P-256.
    pub classical: Option<&'a str>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Run a command; its stdout + stderr, or an error carrying them when it fails.
pub fn check(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "{cmd:?} failed: {text}");
    Ok(text)
}

impl Appliance {
    /// Write the config under `dir` (state in `dir/state`), create the products' keys, start the
    /// daemon. `label` names the dev token; `extra_top` goes before the tables.
    pub fn start(
        fwseald: &Path,
        dir: &Path,
        label: &str,
        products: &[Product],
        extra_top: &str,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let token = format!("tok-{nanos:x}");
        let hash = hex(&fwseal_crypto::DigestAlg::Sha256.hash(token.as_bytes()));
        let mut text = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nidentity = \"https://fwseal.demo/appliance\"\n{extra_top}\n[hsm]\ntoken_label = \"{label}\"\ndev_token = true\n",
            dir.join("state").display()
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
        for p in products {
            check(
                Command::new(fwseald)
                    .arg("-c")
                    .arg(&config)
                    .args(["keys", "create", "-p", p.name])
                    .env("FWSEAL_LOG", "warn"),
            )?;
        }
        let mut child = Command::new(fwseald)
            .arg("-c")
            .arg(&config)
            .arg("run")
            .env("FWSEAL_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("start fwseald")?;
        let stdout = child.stdout.take().context("fwseald stdout")?;
        let mut me = Appliance {
            child,
            url: String::new(),
            token,
            config,
        };
        let mut r = std::io::BufReader::new(stdout);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut r, &mut line)?;
        let addr = line
            .trim()
            .strip_prefix("fwseald listening on ")
            .context("fwseald did not report its address")?
            .to_string();
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        me.url = format!("http://{addr}");
        Ok(me)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (VmHWM), bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb: u64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmHWM")?;
        Ok(kb * 1024)
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
