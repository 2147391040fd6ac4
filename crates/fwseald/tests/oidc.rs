//! OIDC workload tokens end to end: the real `fwseald` (SoftHSM2 dev token, SQLite) on
//! loopback, real HTTP, and an issuer nobody on the project wrote — `tests/oidc/issuer.py`
//! (pyca `cryptography` keys, PyJWT tokens, a JWKS and discovery document served over HTTP on
//! loopback, or a JWKS file). GitHub- and GitLab-shaped tokens sign; every bad token is refused
//! exactly like a wrong API token, audited with the check that failed, and the daemon keeps
//! serving; rotation, an issuer outage (cache, then fail closed), replay, `require_oidc`,
//! contradicting client claims, and OIDC approvers of a 2-of-N job.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test oidc`.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AUD: &str = "fwseal-test";
const GITLAB: &str = "https://gitlab.example.com";

/// The independent issuer: `tests/oidc/issuer.py` over a key directory.
struct Issuer {
    dir: PathBuf,
    server: Option<Child>,
    port: u16,
}

fn python_ok() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if judges_required() {
            panic!("python3 with PyJWT and cryptography is required (FWSEAL_REQUIRE_JUDGES=1)");
        }
        eprintln!("SKIP: python3 with PyJWT and cryptography not installed");
    }
    ok
}

fn issuer_py() -> PathBuf {
    repo_root().join("tests/oidc/issuer.py")
}

impl Issuer {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        Issuer {
            dir,
            server: None,
            port: 0,
        }
    }

    fn py(&self, args: &[&str]) -> Run {
        run_ok(
            Command::new("python3")
                .arg(issuer_py())
                .arg(args[0])
                .arg(&self.dir)
                .args(&args[1..]),
        )
    }

    fn keygen(&self, kid: &str, alg: &str, published: bool) {
        let mut a = vec!["keygen", "--kid", kid, "--alg", alg];
        if !published {
            a.push("--unpublished");
        }
        self.py(&a);
    }

    /// Serve on `port` (0: any) and wait for the `listening` line.
    fn serve(&mut self, port: u16) -> String {
        let mut child = Command::new("python3")
            .arg(issuer_py())
            .arg("serve")
            .arg(&self.dir)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().strip_prefix("listening ").unwrap().to_string();
        self.port = url.rsplit(':').next().unwrap().parse().unwrap();
        self.server = Some(child);
        url
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn jwks_requests(&self) -> usize {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "/jwks")
            .count()
    }

    /// Mint a token: `kid`, `iss`, a profile and further `issuer.py mint` arguments.
    fn mint(&self, kid: &str, iss: &str, profile: &str, more: &[&str]) -> String {
        let mut a = vec!["mint", "--kid", kid, "--iss", iss, "--aud", AUD];
        if !profile.is_empty() {
            a.extend(["--profile", profile]);
        }
        a.extend(more);
        self.py(&a).stdout.trim().to_string()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// `POST url` with a bearer token and body; (status, JSON answer).
fn post(url: &str, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut r = agent()
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

fn get(url: &str, token: &str) -> (u16, Vec<u8>) {
    let mut r = agent()
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap_or_default())
}

fn sign(a: &Appliance, product: &str, token: &str, query: &str) -> (u16, serde_json::Value) {
    post(
        &format!("{}/v1/products/{product}/sign?name=fw.bin{query}", a.url),
        token,
        b"firmware image bytes for the OIDC test",
    )
}

/// The part of a problem document that must not tell a refused token from a wrong one.
fn answer(v: &serde_json::Value) -> serde_json::Value {
    serde_json::json!([v["status"], v["code"], v["title"], v["detail"], v["type"]])
}

fn count(a: &Appliance, sql_where: &str) -> usize {
    a.sql(&format!("select count(*) from audit_log where {sql_where}"))
        .parse()
        .unwrap()
}

/// The in-toto statement of an artifact's provenance.
fn statement(a: &Appliance, id: &str, token: &str) -> serde_json::Value {
    let (st, body) = get(&format!("{}/v1/artifacts/{id}/provenance", a.url), token);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let env: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// Check a `firmware-sign/v2` statement: `externalParameters.verifiedClaims` holds the
/// token's issuer, repository, ref and commit, and `resolvedDependencies` the source as a
/// `git+https` URI at that ref with the token's commit as its `gitCommit`.
fn assert_provenance_states(stmt: &serde_json::Value, iss: &str, repo_uri: &str, commit: &str) {
    let def = &stmt["predicate"]["buildDefinition"];
    let bt = def["buildType"].as_str().unwrap_or_default();
    assert!(bt.ends_with("/firmware-sign/v2"), "buildType {bt}");
    let v = &def["externalParameters"]["verifiedClaims"];
    assert_eq!(v["issuer"], iss, "{stmt:#}");
    assert_eq!(v["repository"], "acme/widget", "{stmt:#}");
    assert_eq!(v["ref"], "refs/tags/v1.2.0", "{stmt:#}");
    assert_eq!(v["commit"], commit, "{stmt:#}");
    assert!(
        v["trust"]
            .as_str()
            .is_some_and(|t| t.starts_with("verified")),
        "{stmt:#}"
    );
    let deps = def["resolvedDependencies"].as_array().unwrap();
    let src = deps
        .iter()
        .find(|d| d["uri"].as_str().is_some_and(|u| u.starts_with("git+")))
        .unwrap_or_else(|| panic!("no git source dependency: {stmt:#}"));
    assert_eq!(src["uri"], format!("git+{repo_uri}@refs/tags/v1.2.0"));
    assert_eq!(src["digest"]["gitCommit"], commit);
}

/// The last audit record's `extra` for this where-clause.
fn last_extra(a: &Appliance, sql_where: &str) -> serde_json::Value {
    let x = a.sql(&format!(
        "select extra from audit_log where {sql_where} order by seq desc limit 1"
    ));
    serde_json::from_str(&x).unwrap_or(serde_json::Value::Null)
}

fn setup(root: &Path) -> (Issuer, Issuer, Issuer) {
    let mut gh = Issuer::new(root.join("gh"));
    gh.keygen("rsa1", "RS256", true);
    gh.keygen("ec1", "ES256", true);
    gh.keygen("stray", "RS256", false);
    gh.serve(0);
    let gl = Issuer::new(root.join("gl"));
    gl.keygen("gl1", "RS256", true);
    let idp = Issuer::new(root.join("idp"));
    idp.keygen("h1", "ES256", true);
    (gh, gl, idp)
}

fn config(gh: &Issuer, gl: &Issuer, idp: &Issuer, max_key_age: u64) -> String {
    format!(
        r#"
[[product]]
name = "secure"
formats = ["raw"]
approvals = {{ required = 2, of_role = "release-approver", expires_after_secs = 3600 }}
[[product]]
name = "locked"
formats = ["raw"]
require_oidc = true

[[oidc.issuers]]
name = "gh"
issuer = "{gh_url}"
kind = "github"
audience = ["{AUD}", "another-audience"]
algorithms = ["RS256"]
source_host = "https://github.com"
refresh_secs = 1
refetch_min_secs = 0
max_key_age_secs = {max_key_age}
http_timeout_secs = 2
skew_secs = 5
max_lifetime_secs = 900
refuse_replay = true

[[oidc.issuers]]
name = "gl"
issuer = "{GITLAB}"
kind = "gitlab"
audience = ["{AUD}"]
jwks_file = "{gl_jwks}"
skew_secs = 5

[[oidc.issuers]]
name = "idp"
issuer = "https://login.acme.example"
audience = ["{AUD}"]
algorithms = ["ES256"]
jwks_file = "{idp_jwks}"

[[oidc.rules]]
issuer = "gh"
client = "gha-widget"
claims = {{ repository = "acme/widget", ref = "refs/tags/v*" }}
roles = {{ widget = ["submitter", "factory"], locked = ["submitter", "factory"], secure = ["submitter", "factory"] }}

[[oidc.rules]]
issuer = "gh"
client = "gha-other"
claims = {{ repository = "acme/other" }}
roles = {{ uefi = ["submitter"] }}

[[oidc.rules]]
issuer = "gl"
client = "gitlab-widget"
claims = {{ project_path = "acme/widget", ref_type = "tag" }}
roles = {{ widget = ["submitter", "factory"] }}

[[oidc.rules]]
issuer = "idp"
client = "approvers"
claims = {{ email = "*@acme.example" }}
roles = {{ secure = ["release-approver"] }}

[[client]]
name = "static-locked"
token_sha256 = "{locked_hash}"
roles = {{ locked = ["submitter", "factory"] }}
"#,
        gh_url = gh.url(),
        gl_jwks = write_jwks(gl),
        idp_jwks = write_jwks(idp),
        locked_hash = sha256_hex(b"static.token.with.dots"),
    )
}

fn write_jwks(i: &Issuer) -> String {
    let p = i.dir.join("file-jwks.json");
    std::fs::write(&p, i.py(&["jwks"]).stdout).unwrap();
    p.display().to_string()
}

#[test]
fn oidc_tokens_authenticate_pipelines_and_approvers() {
    if !python_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (mut gh, gl, idp) = setup(root.path());
    let a = Appliance::start_with_products(
        "anonymous_denial_summary_secs = 0",
        &config(&gh, &gl, &idp, 4),
        &["secure", "locked"],
    );
    let iss = gh.url();
    let wrong = sign(&a, "widget", "not-a-valid-token", "");
    assert_eq!(wrong.0, 401);

    // --- GitHub-shaped token signs; the record carries the verified claims.
    let t = gh.mint("rsa1", &iss, "github", &[]);
    let (st, r) = sign(&a, "widget", &t, "");
    assert_eq!(st, 201, "{r}");
    let id = r["artifact_id"].as_str().unwrap().to_string();
    let x = last_extra(&a, "action = 'sign' and decision = 'allow'");
    assert_eq!(x["oidc"]["issuer"], iss);
    assert_eq!(
        x["oidc"]["subject"],
        "repo:acme/widget:ref:refs/tags/v1.2.0"
    );
    assert!(x["oidc"]["jti"].as_str().is_some_and(|j| j.len() == 32));
    assert_eq!(x["verified"]["repository"], "acme/widget");
    assert_eq!(x["verified"]["git_ref"], "refs/tags/v1.2.0");
    assert_eq!(x["verified"]["commit"], "a".repeat(40));
    assert_eq!(
        x["verified"]["source_uri"],
        "git+https://github.com/acme/widget"
    );
    assert_eq!(
        x["verified"]["run_url"],
        "https://github.com/acme/widget/actions/runs/5551234"
    );
    let client = a.sql(&format!("select client from artifacts where id = '{id}'"));
    assert_eq!(client, "gha-widget");
    // The same token reads (GET) within its lifetime; replay refusal is for POSTs.
    let stmt = statement(&a, &id, &t);
    assert_provenance_states(
        &stmt,
        &iss,
        "https://github.com/acme/widget",
        &"a".repeat(40),
    );
    let x = last_extra(&a, "action = 'fetch' and decision = 'allow'");
    assert_eq!(
        (x["oidc"]["issuer"].as_str(), x["oidc"]["subject"].as_str()),
        (
            Some(iss.as_str()),
            Some("repo:acme/widget:ref:refs/tags/v1.2.0")
        ),
        "an OIDC-authenticated fetch is audited with its issuer and subject"
    );

    // --- GitLab-shaped token (JWKS from a file) signs through the CLI, FWSEAL_TOKEN=<jwt>.
    let t = gl.mint("gl1", GITLAB, "gitlab", &[]);
    std::fs::write(a.path("fw.bin"), b"gitlab built firmware").unwrap();
    let r = a.cli_as(&t, &["sign", "-p", "widget", "fw.bin", "--json"]);
    assert!(r.ok(), "{}", r.text());
    let x = last_extra(&a, "action = 'sign' and decision = 'allow'");
    assert_eq!(x["oidc"]["issuer"], GITLAB);
    assert_eq!(x["verified"]["repository"], "acme/widget");
    assert_eq!(x["verified"]["git_ref"], "refs/tags/v1.2.0");
    assert_eq!(x["verified"]["commit"], "b".repeat(40));
    assert_eq!(
        x["verified"]["workflow_ref"],
        "gitlab.example.com/acme/widget//.gitlab-ci.yml@refs/tags/v1.2.0"
    );
    assert_eq!(
        x["verified"]["run_url"],
        format!("{GITLAB}/acme/widget/-/pipelines/455")
    );
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let id = signed[0]["artifact_id"].as_str().unwrap();
    let stmt = statement(&a, id, &gl.mint("gl1", GITLAB, "gitlab", &[]));
    assert_provenance_states(
        &stmt,
        GITLAB,
        "https://gitlab.example.com/acme/widget",
        &"b".repeat(40),
    );

    // --- Every bad token: the same answer as a wrong API token, audited with its check.
    let now = |s: i64| s.to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            gh.mint(
                "rsa1",
                &iss,
                "github",
                &["--iat-in", "-400", "--nbf-in", "-400", "--exp-in", "-60"],
            ),
            "expired",
        ),
        (
            "not yet valid",
            gh.mint(
                "rsa1",
                &iss,
                "github",
                &["--nbf-in", "120", "--iat-in", "-5"],
            ),
            "not-yet-valid",
        ),
        (
            "issued in the future",
            gh.mint(
                "rsa1",
                &iss,
                "github",
                &["--iat-in", "120", "--nbf-in", "-5", "--exp-in", "400"],
            ),
            "not-yet-valid",
        ),
        (
            "wrong audience",
            gh.py(&[
                "mint",
                "--kid",
                "rsa1",
                "--iss",
                &iss,
                "--aud",
                "someone-else",
                "--profile",
                "github",
            ])
            .stdout
            .trim()
            .to_string(),
            "audience",
        ),
        (
            "wrong issuer",
            gh.mint(
                "rsa1",
                "https://token.actions.githubusercontent.com",
                "github",
                &[],
            ),
            "issuer",
        ),
        (
            "unknown kid",
            gh.mint("stray", &iss, "github", &[]),
            "unknown-kid",
        ),
        (
            "tampered payload",
            gh.mint("rsa1", &iss, "github", &["--attack", "tamper"]),
            "signature",
        ),
        (
            "alg none",
            gh.mint("rsa1", &iss, "github", &["--attack", "none"]),
            "algorithm",
        ),
        (
            "HS256 with the RSA public key",
            gh.mint("rsa1", &iss, "github", &["--attack", "hs256-pubkey"]),
            "algorithm",
        ),
        (
            "ES256 against an RS256-only issuer",
            gh.mint("ec1", &iss, "github", &[]),
            "algorithm",
        ),
        (
            "lifetime too long",
            gh.mint("rsa1", &iss, "github", &["--exp-in", &now(1200)]),
            "lifetime",
        ),
        (
            "claims matching no rule",
            gh.mint(
                "rsa1",
                &iss,
                "github",
                &["--claim", "repository=evil/widget"],
            ),
            "no-matching-rule",
        ),
        (
            "branch where the rule wants tags",
            gh.mint("rsa1", &iss, "github", &["--claim", "ref=refs/heads/main"]),
            "no-matching-rule",
        ),
        (
            "no sub",
            gh.mint("rsa1", &iss, "github", &["--drop", "sub"]),
            "missing-claim",
        ),
    ];
    for (what, token, check) in &cases {
        let before = count(&a, "decision = 'deny'");
        let (st, body) = sign(&a, "widget", token, "");
        assert_eq!(st, 401, "{what}: {body}");
        assert_eq!(
            answer(&body),
            answer(&wrong.1),
            "{what}: a refused token looks like a wrong one"
        );
        assert_eq!(
            count(&a, "decision = 'deny'"),
            before + 1,
            "{what}: audited once"
        );
        let reason =
            a.sql("select reason from audit_log where decision = 'deny' order by seq desc limit 1");
        assert!(
            reason.contains(&format!("oidc token refused: {check}")),
            "{what}: reason {reason:?}"
        );
        assert!(
            !reason.contains(token.as_str()),
            "{what}: the token is never logged"
        );
        let x = last_extra(&a, "decision = 'deny'");
        assert_eq!(x["oidc"]["check"], *check, "{what}");
        // The token is never logged: neither its signature nor its claims part (an `alg:
        // none` token has an empty signature, so its claims part is the part to look for).
        let all = a.sql("select coalesce(extra, '') || coalesce(reason, '') from audit_log");
        for part in token.split('.').skip(1).filter(|p| p.len() >= 20) {
            assert!(
                !all.contains(&part[..20]),
                "{what}: a token part in the log"
            );
        }
    }
    // Once the signature verified, the denial names the subject and jti.
    let t = gh.mint(
        "rsa1",
        &iss,
        "github",
        &["--claim", "repository=evil/widget", "--jti", "evil-jti-1"],
    );
    assert_eq!(sign(&a, "widget", &t, "").0, 401);
    let x = last_extra(&a, "decision = 'deny'");
    assert_eq!(
        (x["oidc"]["subject"].as_str(), x["oidc"]["jti"].as_str()),
        (
            Some("repo:evil/widget:ref:refs/tags/v1.2.0"),
            Some("evil-jti-1")
        )
    );
    a.assert_alive();

    // --- A rule for product A used on product B: the same 404 as an unknown product.
    let t = gh.mint(
        "rsa1",
        &iss,
        "github",
        &["--claim", "repository=acme/other"],
    );
    let (st, body) = sign(&a, "widget", &t, "");
    assert_eq!(
        (st, body["code"].as_str()),
        (404, Some("no-such-product")),
        "{body}"
    );
    let (st, body) = sign(
        &a,
        "no-such-product",
        &gh.mint(
            "rsa1",
            &iss,
            "github",
            &["--claim", "repository=acme/other"],
        ),
        "",
    );
    assert_eq!(
        (st, body["code"].as_str()),
        (404, Some("no-such-product")),
        "{body}"
    );

    // --- A client claim contradicting the token is refused, naming the claim; agreeing
    // claims (another spelling of the same repository) are fine.
    let t = gh.mint("rsa1", &iss, "github", &[]);
    let (st, body) = sign(
        &a,
        "widget",
        &t,
        "&source_uri=https://github.com/evil/widget&commit=aaaa",
    );
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("claim-contradiction")),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("sourceRepository") && detail.contains("commit"),
        "{detail}"
    );
    let reason =
        a.sql("select reason from audit_log where decision = 'deny' order by seq desc limit 1");
    assert!(reason.contains("sourceRepository"), "{reason}");
    let t = gh.mint("rsa1", &iss, "github", &[]);
    let (st, body) = sign(
        &a,
        "widget",
        &t,
        "&source_uri=https://github.com/acme/widget.git&ref=v1.2.0",
    );
    assert_eq!(st, 201, "{body}");

    // --- Replay: the same jti again for a POST is refused (audited as replay).
    let t = gh.mint("rsa1", &iss, "github", &["--jti", "once-only"]);
    assert_eq!(sign(&a, "widget", &t, "").0, 201);
    let (st, body) = sign(&a, "widget", &t, "");
    assert_eq!((st, answer(&body)), (401, answer(&wrong.1)));
    let x = last_extra(&a, "decision = 'deny'");
    assert_eq!(
        (x["oidc"]["check"].as_str(), x["oidc"]["jti"].as_str()),
        (Some("replay"), Some("once-only"))
    );

    // --- require_oidc: a static token (with dots: tried as a static token first) is refused
    // for signing with 403 oidc-required, still reads; an OIDC token signs.
    let (st, body) = sign(&a, "locked", "static.token.with.dots", "");
    assert_eq!(
        (st, body["code"].as_str()),
        (403, Some("oidc-required")),
        "{body}"
    );
    let (st, _) = get(
        &format!("{}/v1/products/locked/artifacts", a.url),
        "static.token.with.dots",
    );
    assert_eq!(st, 200, "the static token authenticates and reads");
    assert!(a
        .sql("select reason from audit_log where decision = 'deny' order by seq desc limit 1")
        .contains("requires an OIDC token"));
    let (st, body) = sign(&a, "locked", &gh.mint("rsa1", &iss, "github", &[]), "");
    assert_eq!(st, 201, "{body}");

    // --- Rotation: a new kid is picked up without a restart (unknown kid → refetch).
    gh.keygen("rsa2", "RS256", true);
    gh.py(&["unpublish", "--kid", "rsa1"]);
    let (st, body) = sign(&a, "widget", &gh.mint("rsa2", &iss, "github", &[]), "");
    assert_eq!(st, 201, "rotated key: {body}");

    // --- Issuer down: the cached keys keep working, then requests fail closed (503) after
    // max_key_age_secs, audited; the daemon keeps serving static clients; the issuer back
    // means service back.
    let fetches = gh.jwks_requests();
    assert!(fetches >= 2, "fetched at start and refreshed: {fetches}");
    let port = gh.port;
    gh.stop();
    let down_at = Instant::now();
    let (st, body) = sign(&a, "widget", &gh.mint("rsa2", &iss, "github", &[]), "");
    assert_eq!(st, 201, "cached keys still serve: {body}");
    std::thread::sleep(
        Duration::from_secs(5).saturating_sub(down_at.elapsed()) + Duration::from_millis(500),
    );
    let (st, body) = sign(&a, "widget", &gh.mint("rsa2", &iss, "github", &[]), "");
    assert_eq!(
        (st, body["code"].as_str()),
        (503, Some("oidc-unavailable")),
        "{body}"
    );
    let x = last_extra(&a, "decision = 'deny'");
    assert_eq!(x["oidc"]["check"], "keys-stale");
    a.assert_alive();
    gh.serve(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (st, _) = sign(&a, "widget", &gh.mint("rsa2", &iss, "github", &[]), "");
        if st == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "keys never came back: {st}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // --- OIDC approvers of a 2-of-N job: two human subjects of one rule are two identities;
    // the same subject twice counts once; released provenance names issuer + subject.
    let (st, job) = sign(&a, "secure", &gh.mint("rsa2", &iss, "github", &[]), "");
    assert_eq!(st, 202, "{job}");
    let jid = job["id"].as_str().unwrap().to_string();
    let digest = job["digest"]["value"].as_str().unwrap().to_string();
    let approve = |sub: &str| {
        let t = idp.mint(
            "h1",
            "https://login.acme.example",
            "human",
            &["--claim", &format!("sub={sub}")],
        );
        post(
            &format!("{}/v1/jobs/{jid}/approve", a.url),
            &t,
            serde_json::json!({ "digest": digest })
                .to_string()
                .as_bytes(),
        )
    };
    let (st, v) = approve("alice");
    assert_eq!((st, v["state"].as_str()), (200, Some("pending")), "{v}");
    let (st, v) = approve("alice");
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("already-approved")),
        "{v}"
    );
    let outsider = idp.mint(
        "h1",
        "https://login.acme.example",
        "human",
        &[
            "--claim",
            "sub=mallory",
            "--claim",
            "email=mallory@evil.example",
        ],
    );
    let (st, _) = post(
        &format!("{}/v1/jobs/{jid}/approve", a.url),
        &outsider,
        serde_json::json!({ "digest": digest })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(st, 401, "an email outside the rule matches no rule");
    let (st, v) = approve("bob");
    assert_eq!((st, v["state"].as_str()), (200, Some("signed")), "{v}");
    let x = last_extra(&a, "action = 'sign' and decision = 'allow'");
    assert_eq!(
        x["approvers"],
        serde_json::json!(["approvers", "approvers"])
    );
    let approvers = &x["approver_identities"];
    assert_eq!(approvers.as_array().map(Vec::len), Some(2), "{x}");
    assert_eq!(approvers[0]["issuer"], "https://login.acme.example");
    let mut subs: Vec<&str> = approvers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["subject"].as_str())
        .collect();
    subs.sort_unstable();
    assert_eq!(subs, ["alice", "bob"]);
    assert_eq!(
        x["verified"]["repository"], "acme/widget",
        "the submitter's verified claims survive the job"
    );
    assert_eq!(x["oidc"]["issuer"], iss);
    let artifact = v["artifact_id"].as_str().unwrap().to_string();
    let stmt = statement(&a, &artifact, &gh.mint("rsa2", &iss, "github", &[]));
    assert_provenance_states(
        &stmt,
        &iss,
        "https://github.com/acme/widget",
        &"a".repeat(40),
    );
    let named: Vec<(String, String)> = stmt["predicate"]["buildDefinition"]["internalParameters"]
        ["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["issuer"].as_str().unwrap_or_default().to_string(),
                a["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let idp_iss = "https://login.acme.example".to_string();
    assert!(
        named.contains(&(idp_iss.clone(), "alice".into()))
            && named.contains(&(idp_iss, "bob".into())),
        "approvers in the provenance: {named:?}"
    );
    let approvals =
        a.sql("select count(*) from audit_log where action = 'approve' and decision = 'allow'");
    assert_eq!(approvals, "2");
    let x = last_extra(&a, "action = 'approve' and decision = 'allow'");
    assert_eq!(
        (x["oidc"]["issuer"].as_str(), x["oidc"]["subject"].as_str()),
        (Some("https://login.acme.example"), Some("bob"))
    );
    assert!(x["oidc"]["jti"].as_str().is_some(), "{x}");
    a.assert_alive();
}
