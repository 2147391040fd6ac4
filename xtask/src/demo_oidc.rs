//! The demo's OIDC part: one signing authenticated by a GitHub Actions-shaped ID token, and the
//! verified-claims gate on it.
//!
//! An independent issuer (`tests/oidc/issuer.py`, PyJWT) serves its JWKS on loopback; a stand-in
//! for the Actions runner's token endpoint (`tests/oidc/actions_token_service.py`) mints tokens
//! with it. The demo's fwseald trusts that issuer for `acme/widget` tag builds
//! ([`config`]); `fwseal sign` gets its token the way a workflow does (`FWSEAL_OIDC=github`,
//! `docs/ci.md`). Two table rows: the OIDC signing passes `fwseal verify --issuer --repository
//! --ref`, and an image signed with the static token that merely *claims* `acme/widget` fails
//! the same gate (its repository is client-asserted only).

use crate::appliance::check;
use anyhow::{bail, Context, Result};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The issuer the demo's tokens carry (GitHub Actions').
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience the demo's fwseald accepts.
pub const AUDIENCE: &str = "https://fwseal.demo";
/// The repository and ref of the demo's release build.
pub const REPOSITORY: &str = "acme/widget";
/// A release tag.
pub const REF: &str = "refs/tags/v1.2.0";

/// The loopback issuer and token endpoint; killed on drop.
pub struct Servers {
    children: Vec<Child>,
    jwks_url: String,
    request_url: String,
    request_token: String,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawn a script that prints `listening URL`; the URL.
fn spawn_listening(cmd: &mut Command, children: &mut Vec<Child>) -> Result<String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    children.push(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    match line.trim().strip_prefix("listening ") {
        Some(u) => Ok(u.to_string()),
        None => bail!("{cmd:?} did not start (got {line:?})"),
    }
}

/// Whether python3 can run the test issuer (PyJWT + pyca).
pub fn available() -> bool {
    Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Create the issuer's key under `out/oidc-issuer` and start the JWKS server and the token
/// endpoint (tokens for [`REPOSITORY`] at [`REF`]).
pub fn start(root: &Path, out: &Path) -> Result<Servers> {
    let scripts = root.join("tests/oidc");
    let dir = out.join("oidc-issuer");
    check(
        Command::new("python3")
            .arg(scripts.join("issuer.py"))
            .arg("keygen")
            .arg(&dir)
            .args(["--kid", "demo-1"]),
    )?;
    let mut children = Vec::new();
    let jwks = spawn_listening(
        Command::new("python3")
            .arg(scripts.join("issuer.py"))
            .arg("serve")
            .arg(&dir),
        &mut children,
    )?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let request_token = format!("runner-{nanos:x}");
    let request_url = spawn_listening(
        Command::new("python3")
            .arg(scripts.join("actions_token_service.py"))
            .arg(&dir)
            .args(["--kid", "demo-1", "--iss", ISSUER])
            .args(["--claim", &format!("repository={REPOSITORY}")])
            .args(["--claim", &format!("ref={REF}")])
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &request_token),
        &mut children,
    )?;
    Ok(Servers {
        children,
        jwks_url: format!("{jwks}/jwks"),
        request_url,
        request_token,
    })
}

/// The fwseald config the demo adds: the issuer, and a rule admitting [`REPOSITORY`]'s tag
/// builds as submitters for `widget` (the format of `docs/ci.md`).
pub fn config(s: &Servers) -> String {
    format!(
        r#"[[oidc.issuers]]
name = "github"
kind = "github"
issuer = "{ISSUER}"
audience = ["{AUDIENCE}"]
algorithms = ["RS256"]
jwks_url = "{jwks}"

[[oidc.rules]]
issuer = "github"
client = "widget-release"
roles = {{ widget = ["submitter"] }}
claims = {{ repository = "{REPOSITORY}", ref = "refs/tags/v*" }}
"#,
        jwks = s.jwks_url
    )
}

/// One demo table row.
pub struct Row {
    pub label: String,
    pub own: Result<&'static str, String>,
    pub judge: String,
    pub judge_ok: Option<bool>,
}

/// What the rows need of the demo.
pub struct Ctx<'a> {
    pub root: &'a Path,
    pub out: &'a Path,
    pub fwseal: &'a Path,
    pub url: String,
    pub static_token: &'a str,
    /// Product keys (ECDSA, ML-DSA) of `widget`.
    pub keys: [&'a Path; 2],
    /// The appliance's provenance keys (ECDSA, ML-DSA).
    pub appliance: [&'a Path; 2],
}

fn gate(c: &Ctx, image: &Path) -> Command {
    let mut cmd = Command::new(c.fwseal);
    cmd.arg("verify")
        .arg(image)
        .arg("-k")
        .arg(c.keys[0])
        .arg("-k")
        .arg(c.keys[1])
        .arg("--provenance-key")
        .arg(c.appliance[0])
        .arg("--provenance-key")
        .arg(c.appliance[1])
        .args(["--issuer", ISSUER, "--repository", REPOSITORY])
        .args(["--ref", "refs/tags/v*"]);
    cmd
}

/// The independent provenance judge with `--verified` claim checks: whether it accepted.
fn judge(c: &Ctx, image: &Path) -> bool {
    let Ok(data) = std::fs::read(image) else {
        return false;
    };
    let subject: String = fwseal_crypto::DigestAlg::Sha256
        .hash(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut env = image.as_os_str().to_owned();
    env.push(".intoto.jsonl");
    Command::new("python3")
        .arg(c.root.join("tests/verifiers/provenance.py"))
        .arg("--envelope")
        .arg(env)
        .arg("--ec")
        .arg(c.appliance[0])
        .arg("--pq")
        .arg(c.appliance[1])
        .args(["--subject", &subject])
        .args(["--verified", &format!("repository={REPOSITORY}")])
        .args(["--verified", &format!("ref={REF}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sample(c: &Ctx, name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = c.out.join("oidc");
    std::fs::create_dir_all(&dir)?;
    let input = dir.join(format!("{name}.bin"));
    std::fs::copy(c.root.join("fixtures/raw/sample.bin"), &input)?;
    Ok((input, dir.join(format!("{name}.signed.bin"))))
}

/// Sign through the CLI with the runner's token endpoint (`FWSEAL_OIDC=github`), gate it; then
/// sign with the static token claiming the same repository, and show the gate refusing it.
pub fn rows(c: &Ctx, s: &Servers) -> Vec<Row> {
    let mut rows = Vec::new();
    let judge_name = "provenance.py --verified".to_string();

    // 1. An OIDC-authenticated signing: the gate passes on verified claims.
    let label = format!(
        "GitHub OIDC: {REPOSITORY} {}",
        REF.trim_start_matches("refs/tags/")
    );
    let signed = sample(c, "release").and_then(|(input, signed)| {
        check(
            Command::new(c.fwseal)
                .args(["sign", "-p", "widget"])
                .arg(&input)
                .env_remove("FWSEAL_TOKEN")
                .env("FWSEAL_URL", &c.url)
                .env("FWSEAL_OIDC", "github")
                .env("FWSEAL_OIDC_AUDIENCE", AUDIENCE)
                .env("ACTIONS_ID_TOKEN_REQUEST_URL", &s.request_url)
                .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &s.request_token),
        )?;
        Ok(signed)
    });
    match signed {
        Ok(signed) => {
            let own = check(&mut gate(c, &signed))
                .map(|_| "gate passed")
                .map_err(|e| format!("{e:#}"));
            rows.push(Row {
                label,
                own,
                judge: judge_name.clone(),
                judge_ok: Some(judge(c, &signed)),
            });
        }
        Err(e) => rows.push(Row {
            label,
            own: Err(format!("sign: {e:#}")),
            judge: "-".into(),
            judge_ok: Some(false),
        }),
    }

    // 2. The static token *claims* the same repository and ref: client-asserted only, so the
    //    same gate refuses it (and so does the independent judge).
    let label = format!("static token claiming {REPOSITORY}");
    let signed = sample(c, "claimed").and_then(|(input, signed)| {
        check(
            Command::new(c.fwseal)
                .args(["sign", "-p", "widget"])
                .args([
                    "--source-uri",
                    &format!("git+https://github.com/{REPOSITORY}"),
                ])
                .args(["--ref", REF])
                .arg(&input)
                .env_remove("FWSEAL_OIDC")
                .env("FWSEAL_URL", &c.url)
                .env("FWSEAL_TOKEN", c.static_token),
        )?;
        Ok(signed)
    });
    match signed {
        Ok(signed) => {
            let own = match gate(c, &signed).output() {
                Ok(o) if o.status.code() == Some(1) => {
                    let text = String::from_utf8_lossy(&o.stderr).into_owned();
                    // Refused because the provenance has only client-asserted claims (the
                    // issuer check, which has no client counterpart, says so first).
                    if text.contains("client-asserted") || text.contains("no verified claims") {
                        Ok("gate refused")
                    } else {
                        Err(format!(
                            "refused, but not for lacking verified claims: {text}"
                        ))
                    }
                }
                Ok(o) => Err(format!(
                    "the gate did not refuse a client-asserted repository (exit {:?})",
                    o.status.code()
                )),
                Err(e) => Err(e.to_string()),
            };
            rows.push(Row {
                label,
                own,
                judge: format!("{judge_name}: refuses"),
                judge_ok: Some(!judge(c, &signed)),
            });
        }
        Err(e) => rows.push(Row {
            label,
            own: Err(format!("sign: {e:#}")),
            judge: "-".into(),
            judge_ok: Some(false),
        }),
    }
    rows
}
