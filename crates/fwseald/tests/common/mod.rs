//! End-to-end helpers: a real `fwseald` (SoftHSM2 dev token, SQLite state) in a temp dir, the
//! `fwseal` CLI, and stock judges that are skipped when missing unless `FWSEAL_REQUIRE_JUDGES=1`.
#![allow(dead_code, clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "secret-ci";
pub const IDENTITY: &str = "https://fwseal.test/appliance";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn judges_required() -> bool {
    std::env::var("FWSEAL_REQUIRE_JUDGES")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// `Some(path)` if `tool` is on PATH; otherwise panics (judges required) or returns None.
pub fn tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(tool);
        if p.is_file() {
            return Some(p);
        }
    }
    if judges_required() {
        panic!("judge `{tool}` is not installed (FWSEAL_REQUIRE_JUDGES=1)");
    }
    eprintln!("SKIP: judge `{tool}` not installed");
    None
}

/// Output of a command.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run and require success.
pub fn run_ok(cmd: &mut Command) -> Run {
    let desc = format!("{cmd:?}");
    let r = run(cmd);
    assert!(r.ok(), "{desc} failed:\n{}", r.text());
    r
}

static BUILD_CLI: Once = Once::new();

/// Path of the `fwseal` CLI binary (built once if missing).
pub fn cli_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/e2e-xxxx -> target/debug/fwseal
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let bin = dir.join("fwseal");
    BUILD_CLI.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "fwseal-cli"])
            .current_dir(repo_root())
            .status()
            .expect("cargo build -p fwseal-cli");
        assert!(st.success(), "cargo build -p fwseal-cli failed");
    });
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

pub fn daemon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fwseald"))
}

/// A running appliance in its own temp dir.
pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub state: PathBuf,
    pub url: String,
    child: Option<Child>,
}

impl Appliance {
    /// Write a config (with `extra_top` lines before the tables and `extra_clients` appended),
    /// create the product keys, start `fwseald run` and wait for its "listening" line.
    pub fn start(extra_top: &str, extra_clients: &str) -> Self {
        Self::start_with_products(extra_top, extra_clients, &[])
    }

    /// Like [`Appliance::start`], also creating keys for `extra_products` (defined by
    /// `[[product]]` tables in `extra_clients`).
    pub fn start_with_products(
        extra_top: &str,
        extra_clients: &str,
        extra_products: &[&str],
    ) -> Self {
        Self::start_on(
            "[hsm]\ntoken_label = \"fwseal-e2e\"\ndev_token = true\n",
            extra_top,
            extra_clients,
            extra_products,
        )
    }

    /// The general form: `hsm` is the whole `[hsm]` table (fwseald inherits this process's
    /// environment, e.g. a PIN variable or a token's config path).
    pub fn start_on(
        hsm: &str,
        extra_top: &str,
        extra_clients: &str,
        extra_products: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let config = dir.path().join("fwseal.toml");
        let tok = sha256_hex(TOKEN.as_bytes());
        let text = format!(
            r#"listen = "127.0.0.1:0"
state_dir = "{state}"
identity = "{IDENTITY}"
{extra_top}
{hsm}
[[product]]
name = "widget"
formats = ["raw", "mcuboot", "ihex", "dfu"]
[[product]]
name = "uefi"
formats = ["efi"]
classical = "rsa-pkcs1-sha256"
[[client]]
name = "ci"
token_sha256 = "{tok}"
roles = {{ "*" = ["submitter", "factory", "metrics"] }}
{extra_clients}
"#,
            state = state.display()
        );
        std::fs::write(&config, text).expect("write config");
        for p in ["widget", "uefi"].iter().chain(extra_products) {
            run_ok(
                Command::new(daemon_bin())
                    .arg("-c")
                    .arg(&config)
                    .args(["keys", "create", "-p", p]),
            );
        }
        let mut me = Appliance {
            dir,
            config,
            state,
            url: String::new(),
            child: None,
        };
        me.launch();
        me
    }

    /// Start `fwseald run` on the existing config and state; wait for "listening".
    fn launch(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("fwseald.stderr"))
            .expect("stderr");
        let config = &self.config;
        let mut child = Command::new(daemon_bin())
            .arg("-c")
            .arg(config)
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn fwseald run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Some(addr) = line.trim().strip_prefix("fwseald listening on ") {
                            let _ = tx.send(addr.to_string());
                            // Drain the rest so the daemon never blocks on a full pipe.
                            let mut sink = Vec::new();
                            let _ = r.read_to_end(&mut sink);
                            break;
                        }
                    }
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => self.url = format!("http://{addr}"),
            Err(_) => {
                let log = self.stderr_log();
                self.stop();
                panic!("fwseald did not report listening; stderr:\n{log}");
            }
        }
    }

    /// Stop the daemon (SIGTERM) and start it again on the same config and state.
    pub fn restart(&mut self) {
        assert!(self.stop(), "fwseald did not exit cleanly on SIGTERM");
        self.launch();
    }

    /// `kill -9` the daemon (no shutdown at all) and wait for it to be gone.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the daemon again on the same config and state (after [`Appliance::crash`]).
    pub fn relaunch(&mut self) {
        assert!(self.child.is_none(), "the daemon is still running");
        self.launch();
    }

    /// Send SIGHUP (config reload).
    pub fn sighup(&self) {
        let pid = self.child.as_ref().expect("daemon running").id();
        run_ok(Command::new("kill").args(["-HUP", &pid.to_string()]));
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.path("fwseald.stderr")).unwrap_or_default()
    }

    /// `fwseal ARGS` against this appliance with `token`, cwd = the temp dir.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Run {
        run(Command::new(cli_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env("FWSEAL_URL", &self.url)
            .env("FWSEAL_TOKEN", token))
    }

    pub fn cli(&self, args: &[&str]) -> Run {
        self.cli_as(TOKEN, args)
    }

    pub fn cli_ok(&self, args: &[&str]) -> Run {
        let r = self.cli(args);
        assert!(r.ok(), "fwseal {args:?} failed:\n{}", r.text());
        r
    }

    /// `fwseald -c CONFIG keys export -p P -o keys` (host side).
    pub fn export_keys(&self, product: &str) {
        run_ok(
            Command::new(daemon_bin())
                .arg("-c")
                .arg(&self.config)
                .args(["keys", "export", "-p", product, "-o"])
                .arg(self.path("keys")),
        );
    }

    /// Copy a fixture into the temp dir; returns the file name.
    pub fn put_fixture(&self, rel: &str) -> String {
        let src = fixture(rel);
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(&src, self.path(&name)).expect("copy fixture");
        name
    }

    pub fn artifact_count(&self) -> usize {
        self.files_under("artifacts/sha256")
    }

    /// How many files (at any depth) are under `rel` in the state directory.
    pub fn files_under(&self, rel: &str) -> usize {
        fn walk(p: &Path) -> usize {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        1
                    }
                })
                .sum()
        }
        walk(&self.state.join(rel))
    }

    /// `fwseal --json sign ARGS` → the artifact id of the single result.
    pub fn sign_id(&self, args: &[&str]) -> String {
        let mut all = vec!["--json", "sign"];
        all.extend_from_slice(args);
        let r = self.cli_ok(&all);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v[0]["artifact_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no artifact id:\n{}", r.text()))
            .to_string()
    }

    pub fn audit_db(&self) -> PathBuf {
        self.state.join("audit.db")
    }

    /// `sqlite3 audit.db SQL` output.
    pub fn sql(&self, sql: &str) -> String {
        sqlite(&self.audit_db(), sql)
    }

    /// Whether the daemon still answers (`fwseal list -p widget`).
    pub fn assert_alive(&self) {
        let r = self.cli(&["list", "-p", "widget"]);
        assert!(r.ok(), "daemon no longer answers:\n{}", r.text());
    }

    /// SIGTERM, wait up to 30 s, then SIGKILL. Returns whether it exited on its own, successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(st)) => return st.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn sqlite(db: &Path, sql: &str) -> String {
    let bin = tool("sqlite3").expect("sqlite3 is needed to inspect the audit log");
    run_ok(Command::new(bin).arg(db).arg(sql))
        .stdout
        .trim()
        .to_string()
}

// ---- judges and keys shared by the end-to-end tests ----

pub const EC: &str = "keys/widget-v1-ecdsa-p256-sha256.pem";
pub const PQ: &str = "keys/widget-v1-ml-dsa-65.pem";
pub const UEFI_CERT: &str = "keys/uefi-v1-cert.pem";
pub const UEFI_PQ: &str = "keys/uefi-v1-ml-dsa-65.pem";
pub const APP_EC: &str = "keys/fwseal-appliance-v1-ecdsa-p256-sha256.pem";
pub const APP_PQ: &str = "keys/fwseal-appliance-v1-ml-dsa-65.pem";

pub fn provenance_args() -> Vec<&'static str> {
    vec![
        "--provenance-key",
        APP_EC,
        "--provenance-key",
        APP_PQ,
        "--builder-id",
        IDENTITY,
    ]
}

pub fn py_verifier(name: &str) -> String {
    repo_root()
        .join("tests/verifiers")
        .join(name)
        .display()
        .to_string()
}

/// Judge: independent provenance verifier, with the subject digest of `subject_file`.
pub fn judge_provenance(a: &Appliance, envelope: &str, subject_file: &str) {
    let Some(py) = tool("python3") else { return };
    let subject = sha256_hex(&std::fs::read(a.path(subject_file)).unwrap());
    run_ok(
        Command::new(py)
            .arg(py_verifier("provenance.py"))
            .args(["--envelope", envelope, "--ec", APP_EC, "--pq", APP_PQ])
            .args(["--subject", &subject])
            .current_dir(a.dir.path()),
    );
}

pub fn judge(a: &Appliance, name: &str, args: &[&str]) -> Option<Run> {
    let bin = tool(name)?;
    Some(run_ok(
        Command::new(bin).args(args).current_dir(a.dir.path()),
    ))
}

pub fn embedded_name(input: &str) -> String {
    match input.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.signed.{ext}"),
        None => format!("{input}.signed"),
    }
}

pub fn start_with_keys(extra_top: &str, extra_clients: &str) -> Appliance {
    let a = Appliance::start(extra_top, extra_clients);
    for p in ["widget", "uefi", "fwseal-appliance"] {
        a.export_keys(p);
    }
    a
}
