//! `docs/ci.md`, run as written: this test plays the CI runner for the documented GitHub Actions
//! workflow and GitLab pipeline, against a real fwseald on loopback configured with the
//! documented `[[oidc.issuers]]` / `[[oidc.rules]]` (only the JWKS location is pointed at
//! loopback). ID tokens are minted by the independent test issuer (`tests/oidc/issuer.py`,
//! PyJWT); GitHub's token-request endpoint is `tests/oidc/actions_token_service.py`.
//!
//! The runner: the workflow YAML is parsed (PyYAML, an independent parser), jobs run in `needs`
//! order, each in a fresh workspace; every `run:` step / `script:` runs with
//! `bash --noprofile --norc -eo pipefail` and only the environment the platform provides
//! (`GITHUB_*` or `CI_*`; `ACTIONS_ID_TOKEN_REQUEST_*` only for a job with `permissions:
//! id-token: write`; GitLab `id_tokens:` minted with the `aud` written there). `uses:` steps are
//! emulated (checkout copies the repository, upload/download-artifact carry paths between jobs),
//! the "Install fwseal" step and GitLab's `before_script` are replaced by the built `fwseal` on
//! PATH, `${{ vars.* }}` come from the test. Skipped with a message when python3, PyYAML or
//! PyJWT is missing, unless `FWSEAL_REQUIRE_JUDGES=1`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const GITHUB_ISS: &str = "https://token.actions.githubusercontent.com";
const GITLAB_ISS: &str = "https://gitlab.acme.example";
const GITLAB_HOST: &str = "gitlab.acme.example";

fn doc() -> String {
    std::fs::read_to_string(repo_root().join("docs/ci.md")).unwrap()
}

/// The body of the fenced block after `<!-- run: NAME -->`.
fn block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- run: {name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in docs/ci.md"));
    let rest = &doc[at + marker.len()..];
    let open = rest.find("```").expect("fence after the marker");
    let body = open + rest[open..].find('\n').expect("fence line") + 1;
    let close = rest[body..].find("```").expect("closing fence");
    rest[body..body + close].to_string()
}

/// python3 with PyYAML and PyJWT, or None (skip) / panic (judges required).
fn python() -> Option<PathBuf> {
    let py = tool("python3")?;
    let ok = Command::new(&py)
        .args(["-c", "import yaml, jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    assert!(
        !judges_required(),
        "python3 needs PyYAML, PyJWT and cryptography (FWSEAL_REQUIRE_JUDGES=1): cargo xtask deps"
    );
    eprintln!("SKIP: python3 lacks PyYAML, PyJWT or cryptography");
    None
}

fn yaml(py: &Path, text: &str) -> Value {
    let mut c = Command::new(py)
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut c.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML refused the document's YAML");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn oidc_script(name: &str) -> PathBuf {
    repo_root().join("tests/oidc").join(name)
}

/// A loopback server started from a Python script that prints `listening URL`; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            panic!("{cmd:?} did not start: {line:?}");
        };
        Server {
            url: url.to_string(),
            child,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One platform's issuer: a key, and its JWKS served on loopback.
struct Issuer {
    dir: tempfile::TempDir,
    server: Server,
}

impl Issuer {
    fn new(py: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        run_ok(
            Command::new(py)
                .arg(oidc_script("issuer.py"))
                .arg("keygen")
                .arg(dir.path())
                .args(["--kid", "k1"]),
        );
        let server = Server::start(
            Command::new(py)
                .arg(oidc_script("issuer.py"))
                .arg("serve")
                .arg(dir.path()),
        );
        Issuer { dir, server }
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks", self.server.url)
    }

    fn mint(&self, py: &Path, iss: &str, aud: &str, profile: &str, claims: &[String]) -> String {
        let mut c = Command::new(py);
        c.arg(oidc_script("issuer.py"))
            .arg("mint")
            .arg(self.dir.path())
            .args([
                "--kid",
                "k1",
                "--iss",
                iss,
                "--aud",
                aud,
                "--profile",
                profile,
            ]);
        for kv in claims {
            c.args(["--claim", kv]);
        }
        run_ok(&mut c).stdout.trim().to_string()
    }
}

/// The documented fwseald config with each issuer's JWKS pointed at its loopback server.
fn docs_config(github: &Issuer, gitlab: &Issuer) -> String {
    let mut cfg = block(&doc(), "ci-fwseald-config");
    for (live, local) in [
        (
            "jwks_url = \"https://token.actions.githubusercontent.com/.well-known/jwks\"",
            github,
        ),
        (
            "jwks_url = \"https://gitlab.acme.example/oauth/discovery/keys\"",
            gitlab,
        ),
    ] {
        assert!(cfg.contains(live), "docs/ci.md config lost {live}");
        cfg = cfg.replace(live, &format!("jwks_url = \"{}\"", local.jwks_url()));
    }
    cfg
}

/// The "repository" the pipelines check out: a Makefile that builds `build/widget.bin`, the
/// committed public keys and the gate's policy file.
fn checkout(a: &Appliance) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let fw = fixture("raw/sample.bin");
    std::fs::write(
        repo.path().join("Makefile"),
        format!(
            "build/widget.bin:\n\tmkdir -p build\n\tcp {} build/widget.bin\n",
            fw.display()
        ),
    )
    .unwrap();
    a.export_keys("widget");
    a.export_keys("fwseal-appliance");
    copy_tree(&a.path("keys"), &repo.path().join("keys"));
    std::fs::write(
        repo.path().join("gate.toml"),
        block(&doc(), "ci-gate-policy"),
    )
    .unwrap();
    repo
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let q = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &q);
        } else {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

/// A job's outcome.
#[derive(Debug)]
struct JobRun {
    ok: bool,
    log: String,
    workspace: tempfile::TempDir,
}

/// `bash --noprofile --norc -eo pipefail -c SCRIPT` in `ws` with exactly `env` (plus PATH with
/// the built fwseal first).
fn bash(ws: &Path, env: &BTreeMap<String, String>, script: &str) -> Run {
    let bin = cli_bin();
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        bin.parent().unwrap().display()
    );
    let mut c = Command::new("bash");
    c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(ws)
        .env_clear()
        .env("PATH", path)
        .env("HOME", ws);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

/// Jobs in an order that respects `needs` (a string or a list of job names).
fn job_order(jobs: &serde_json::Map<String, Value>, mut names: Vec<String>) -> Vec<String> {
    let needs = |j: &str| -> Vec<String> {
        match &jobs[j]["needs"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        }
    };
    let mut done: Vec<String> = Vec::new();
    while !names.is_empty() {
        let i = names
            .iter()
            .position(|n| needs(n).iter().all(|d| done.contains(d)))
            .expect("jobs with cyclic or unknown needs");
        done.push(names.remove(i));
    }
    done
}

/// Substitute `${{ expr }}` from `ctx`; an expression the test does not know fails the test.
fn expand(s: &str, ctx: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("unterminated ${{") + i;
        let expr = rest[i + 3..end].trim();
        out.push_str(
            ctx.get(expr)
                .unwrap_or_else(|| panic!("the test runner does not know ${{{{ {expr} }}}}")),
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn env_map(v: &Value, ctx: &BTreeMap<&str, String>) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), expand(&s, ctx))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a GitHub-hosted run of the workflow sees.
struct GithubRun<'a> {
    repository: &'a str,
    git_ref: &'a str,
    sha: &'a str,
    fwseal_url: &'a str,
    checkout: &'a Path,
    issuer: &'a Issuer,
}

/// Run the documented workflow; returns each job's outcome and the token service's request log.
fn run_github(py: &Path, wf: &Value, r: &GithubRun) -> (BTreeMap<String, JobRun>, Vec<Value>) {
    let jobs = wf["jobs"].as_object().expect("jobs");
    let ctx: BTreeMap<&str, String> = [("vars.FWSEAL_URL", r.fwseal_url.to_string())].into();
    let mut artifacts: BTreeMap<String, tempfile::TempDir> = BTreeMap::new();
    let mut results: BTreeMap<String, JobRun> = BTreeMap::new();
    let mut token_log = Vec::new();
    for name in job_order(jobs, jobs.keys().cloned().collect()) {
        let job = &jobs[&name];
        let ws = tempfile::tempdir().unwrap();
        let needs_ok = match &job["needs"] {
            Value::String(s) => results.get(s).is_some_and(|j| j.ok),
            Value::Array(a) => a
                .iter()
                .all(|s| results.get(s.as_str().unwrap()).is_some_and(|j| j.ok)),
            _ => true,
        };
        if !needs_ok {
            results.insert(
                name.clone(),
                JobRun {
                    ok: false,
                    log: "skipped: a needed job failed".into(),
                    workspace: ws,
                },
            );
            continue;
        }
        // Job-level permissions replace the workflow's.
        let perms = if job.get("permissions").is_some() {
            &job["permissions"]
        } else {
            &wf["permissions"]
        };
        let mut env: BTreeMap<String, String> = [
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", r.repository),
            ("GITHUB_REF", r.git_ref),
            ("GITHUB_SHA", r.sha),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_JOB", &name),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert("GITHUB_WORKSPACE".into(), ws.path().display().to_string());
        // The runner's token endpoint, for jobs allowed to request an ID token.
        let service_log = ws.path().join("..").join(format!(
            "token-service-{}.jsonl",
            ws.path().file_name().unwrap().to_string_lossy()
        ));
        let mut service = None;
        if perms["id-token"] == "write" {
            let request_token = format!("runner-request-token-{name}");
            let mut claims = vec![
                format!("repository={}", r.repository),
                format!("ref={}", r.git_ref),
                format!("sha={}", r.sha),
            ];
            if let Some(e) = job["environment"].as_str() {
                claims.push(format!("environment={e}"));
                claims.push(format!("sub=repo:{}:environment:{e}", r.repository));
            }
            let mut c = Command::new(py);
            c.arg(oidc_script("actions_token_service.py"))
                .arg(r.issuer.dir.path())
                .args(["--kid", "k1", "--iss", GITHUB_ISS, "--log"])
                .arg(&service_log)
                .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &request_token);
            for kv in &claims {
                c.args(["--claim", kv]);
            }
            let s = Server::start(&mut c);
            env.insert("ACTIONS_ID_TOKEN_REQUEST_URL".into(), s.url.clone());
            env.insert("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), request_token);
            service = Some(s);
        }
        env.extend(env_map(&wf["env"], &ctx));
        env.extend(env_map(&job["env"], &ctx));
        let mut ok = true;
        let mut log = String::new();
        for step in job["steps"].as_array().expect("steps") {
            let sname = step["name"].as_str().unwrap_or("");
            if let Some(uses) = step["uses"].as_str() {
                let with = &step["with"];
                let action = uses.split('@').next().unwrap();
                match action {
                    "actions/checkout" => copy_tree(r.checkout, ws.path()),
                    "actions/upload-artifact" => {
                        let keep = tempfile::tempdir().unwrap();
                        let p = with["path"].as_str().expect("upload path");
                        copy_tree(&ws.path().join(p), &keep.path().join(p));
                        artifacts.insert(with["name"].as_str().unwrap().to_string(), keep);
                    }
                    "actions/download-artifact" => {
                        let a = &artifacts[with["name"].as_str().unwrap()];
                        copy_tree(a.path(), ws.path());
                    }
                    other => panic!("the test runner cannot emulate {other}"),
                }
                continue;
            }
            let script = step["run"].as_str().expect("a step has run: or uses:");
            if sname == "Install fwseal" {
                assert!(script.contains("cargo install") && script.contains("fwseal-cli"));
                continue;
            }
            let mut senv = env.clone();
            senv.extend(env_map(&step["env"], &ctx));
            let out = bash(ws.path(), &senv, &expand(script, &ctx));
            log.push_str(&format!("--- step {sname}\n{}\n", out.text()));
            if !out.ok() {
                ok = false;
                break;
            }
        }
        drop(service);
        if let Ok(t) = std::fs::read_to_string(&service_log) {
            token_log.extend(t.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
            let _ = std::fs::remove_file(&service_log);
        }
        results.insert(
            name,
            JobRun {
                ok,
                log,
                workspace: ws,
            },
        );
    }
    (results, token_log)
}

/// What a GitLab pipeline for a tag sees.
struct GitlabRun<'a> {
    project: &'a str,
    tag: &'a str,
    sha: &'a str,
    fwseal_url: &'a str,
    checkout: &'a Path,
    issuer: &'a Issuer,
}

const GITLAB_KEYWORDS: &[&str] = &[
    "stages",
    "variables",
    "default",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
];

fn run_gitlab(py: &Path, pl: &Value, r: &GitlabRun) -> BTreeMap<String, JobRun> {
    let top = pl.as_object().expect("pipeline");
    let stages: Vec<String> = pl["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let mut names: Vec<String> = top
        .keys()
        .filter(|k| !GITLAB_KEYWORDS.contains(&k.as_str()) && !k.starts_with('.'))
        .cloned()
        .collect();
    names.sort_by_key(|n| {
        stages
            .iter()
            .position(|s| pl[n]["stage"] == s.as_str())
            .expect("job in a declared stage")
    });
    let names = job_order(top, names);
    let mut results: BTreeMap<String, JobRun> = BTreeMap::new();
    let ctx = BTreeMap::new();
    for name in names {
        let job = &pl[&name];
        let ws = tempfile::tempdir().unwrap();
        copy_tree(r.checkout, ws.path());
        let needs: Vec<String> = job["needs"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        if !needs.iter().all(|n| results.get(n).is_some_and(|j| j.ok)) {
            results.insert(
                name,
                JobRun {
                    ok: false,
                    log: "skipped: a needed job failed".into(),
                    workspace: ws,
                },
            );
            continue;
        }
        // Artifacts of the needed jobs.
        for n in &needs {
            for p in pl[n]["artifacts"]["paths"].as_array().into_iter().flatten() {
                let p = p.as_str().unwrap();
                copy_tree(&results[n].workspace.path().join(p), &ws.path().join(p));
            }
        }
        let mut env: BTreeMap<String, String> = [
            ("CI", "true"),
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_PATH", r.project),
            ("CI_COMMIT_TAG", r.tag),
            ("CI_COMMIT_REF_NAME", r.tag),
            ("CI_COMMIT_SHA", r.sha),
            ("CI_SERVER_URL", GITLAB_ISS),
            ("CI_JOB_NAME", &name),
            // The project's CI/CD variable (docs/ci.md §4).
            ("FWSEAL_URL", r.fwseal_url),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert("CI_PROJECT_DIR".into(), ws.path().display().to_string());
        env.extend(env_map(&pl["variables"], &ctx));
        env.extend(env_map(&job["variables"], &ctx));
        for (var, spec) in job["id_tokens"].as_object().into_iter().flatten() {
            let aud = spec["aud"].as_str().expect("id_tokens aud");
            let claims = vec![
                format!("project_path={}", r.project),
                format!("ref={}", r.tag),
                "ref_type=tag".to_string(),
                format!("sha={}", r.sha),
                format!("_host={GITLAB_HOST}"),
            ];
            env.insert(
                var.clone(),
                r.issuer.mint(py, GITLAB_ISS, aud, "gitlab", &claims),
            );
        }
        if let Some(bs) = job["before_script"].as_array() {
            let text: Vec<&str> = bs.iter().filter_map(Value::as_str).collect();
            assert!(
                text.iter()
                    .any(|l| l.contains("cargo install") && l.contains("fwseal-cli")),
                "before_script is the install step the runner replaces"
            );
        }
        let script: Vec<&str> = job["script"]
            .as_array()
            .expect("script")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let out = bash(ws.path(), &env, &script.join("\n"));
        results.insert(
            name,
            JobRun {
                ok: out.ok(),
                log: out.text(),
                workspace: ws,
            },
        );
    }
    results
}

/// The provenance statement of an envelope file (payload decoded, not verified: `fwseal verify`
/// in the gate did that).
fn statement(path: &Path) -> Value {
    use base64::Engine;
    let line = std::fs::read_to_string(path).unwrap();
    let env: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn setup(py: &Path, extra_rules: &str) -> (Issuer, Issuer, Appliance) {
    let github = Issuer::new(py);
    let gitlab = Issuer::new(py);
    let cfg = docs_config(&github, &gitlab);
    let a = Appliance::start("", &format!("{cfg}\n{extra_rules}"));
    (github, gitlab, a)
}

fn workflow(py: &Path) -> Value {
    yaml(py, &block(&doc(), "ci-github-workflow"))
}

#[test]
fn github_workflow_signs_and_its_gate_passes() {
    let Some(py) = python() else { return };
    let (github, _gitlab, a) = setup(&py, "");
    let repo = checkout(&a);
    let wf = workflow(&py);
    let sha = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c";
    let (jobs, token_log) = run_github(
        &py,
        &wf,
        &GithubRun {
            repository: "acme/widget",
            git_ref: "refs/tags/v1.4.0",
            sha,
            fwseal_url: &a.url,
            checkout: repo.path(),
            issuer: &github,
        },
    );
    let sign = &jobs["sign"];
    assert!(
        sign.ok,
        "sign job failed:\n{}\n{}",
        sign.log,
        a.stderr_log()
    );
    let gate = &jobs["gate"];
    assert!(gate.ok, "gate job failed:\n{}", gate.log);
    // The CLI asked the runner for a token: with the request token and the documented audience.
    let aud = wf["jobs"]["sign"]["env"]["FWSEAL_OIDC_AUDIENCE"]
        .as_str()
        .unwrap();
    assert!(!token_log.is_empty(), "no token request reached the runner");
    for r in &token_log {
        assert_eq!(r["bearer_ok"], true, "{r}");
        assert_eq!(r["audience"], aud, "{r}");
        assert_eq!(r["status"], 200, "{r}");
    }
    // The provenance records the verified claims from the token, and the gate checked them.
    let prov = gate
        .workspace
        .path()
        .join("build/widget.signed.bin.intoto.jsonl");
    let st = statement(&prov);
    let vc = &st["predicate"]["buildDefinition"]["externalParameters"]["verifiedClaims"];
    assert_eq!(vc["issuer"], GITHUB_ISS, "{st}");
    assert_eq!(vc["repository"], "acme/widget", "{st}");
    assert_eq!(vc["ref"], "refs/tags/v1.4.0", "{st}");
    assert_eq!(vc["commit"], sha, "{st}");
    assert_eq!(vc["environment"], "production", "{st}");
    // The envelope also passes the independent DSSE verifier.
    let Some(py3) = tool("python3") else { return };
    run_ok(
        Command::new(py3)
            .arg(py_verifier("provenance.py"))
            .arg("--envelope")
            .arg(&prov)
            .arg("--ec")
            .arg(a.path(APP_EC))
            .arg("--pq")
            .arg(a.path(APP_PQ))
            .arg("--subject")
            .arg(sha256_hex(
                &std::fs::read(gate.workspace.path().join("build/widget.signed.bin")).unwrap(),
            )),
    );
}

#[test]
fn github_gate_fails_for_an_image_signed_with_another_repositorys_token() {
    let Some(py) = python() else { return };
    // The documented rules alone refuse acme/gadget's release token outright.
    {
        let (github, _gitlab, a) = setup(&py, "");
        let repo = checkout(&a);
        let (jobs, _) = run_github(
            &py,
            &workflow(&py),
            &GithubRun {
                repository: "acme/gadget",
                git_ref: "refs/tags/v1.4.0",
                sha: "2222222222222222222222222222222222222222",
                fwseal_url: &a.url,
                checkout: repo.path(),
                issuer: &github,
            },
        );
        let sign = &jobs["sign"];
        assert!(!sign.ok, "another repository's token signed:\n{}", sign.log);
        assert!(sign.log.contains("401"), "{}", sign.log);
        assert!(!jobs["gate"].ok);
    }
    // An appliance that also admits acme/gadget for the product signs it — and the documented
    // gate, pinned to acme/widget, refuses the result.
    let extra = r#"
[[oidc.rules]]
issuer = "github"
client = "gadget-release-github"
roles = { widget = ["submitter"] }
claims = { repository = "acme/gadget" }
"#;
    let (github, _gitlab, a) = setup(&py, extra);
    let repo = checkout(&a);
    let (jobs, _) = run_github(
        &py,
        &workflow(&py),
        &GithubRun {
            repository: "acme/gadget",
            git_ref: "refs/tags/v1.4.0",
            sha: "2222222222222222222222222222222222222222",
            fwseal_url: &a.url,
            checkout: repo.path(),
            issuer: &github,
        },
    );
    let sign = &jobs["sign"];
    assert!(
        sign.ok,
        "sign job failed:\n{}\n{}",
        sign.log,
        a.stderr_log()
    );
    let gate = &jobs["gate"];
    assert!(
        !gate.ok,
        "the gate passed acme/gadget's image:\n{}",
        gate.log
    );
    assert!(
        gate.log.contains("repository") && gate.log.contains("acme/gadget"),
        "{}",
        gate.log
    );
}

#[test]
fn gitlab_pipeline_signs_and_its_policy_gate_passes() {
    let Some(py) = python() else { return };
    let (_github, gitlab, a) = setup(&py, "");
    let repo = checkout(&a);
    let pl = yaml(&py, &block(&doc(), "ci-gitlab-pipeline"));
    let sha = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";
    let jobs = run_gitlab(
        &py,
        &pl,
        &GitlabRun {
            project: "acme/widget",
            tag: "v2.0.1",
            sha,
            fwseal_url: &a.url,
            checkout: repo.path(),
            issuer: &gitlab,
        },
    );
    let sign = &jobs["sign-firmware"];
    assert!(
        sign.ok,
        "sign job failed:\n{}\n{}",
        sign.log,
        a.stderr_log()
    );
    let gate = &jobs["gate-firmware"];
    assert!(gate.ok, "gate job failed:\n{}", gate.log);
    let st = statement(
        &gate
            .workspace
            .path()
            .join("build/widget.signed.bin.intoto.jsonl"),
    );
    let vc = &st["predicate"]["buildDefinition"]["externalParameters"]["verifiedClaims"];
    assert_eq!(vc["issuer"], GITLAB_ISS, "{st}");
    assert_eq!(vc["repository"], "acme/widget", "{st}");
    assert_eq!(vc["ref"], "refs/tags/v2.0.1", "{st}");
    assert_eq!(vc["commit"], sha, "{st}");

    // A branch pipeline of the same project is not a release: the rule refuses its token.
    let branch = gitlab.mint(
        &py,
        GITLAB_ISS,
        pl["sign-firmware"]["id_tokens"]["FWSEAL_ID_TOKEN"]["aud"]
            .as_str()
            .unwrap(),
        "gitlab",
        &[
            "project_path=acme/widget".into(),
            "ref=main".into(),
            "ref_type=branch".into(),
            format!("_host={GITLAB_HOST}"),
        ],
    );
    std::fs::copy(fixture("raw/sample.bin"), a.path("branch.bin")).unwrap();
    let r = run(Command::new(cli_bin())
        .args(["sign", "-p", "widget", "branch.bin"])
        .current_dir(a.dir.path())
        .env_remove("FWSEAL_TOKEN")
        .env("FWSEAL_URL", &a.url)
        .env("FWSEAL_OIDC", "gitlab")
        .env("FWSEAL_ID_TOKEN", &branch));
    assert!(!r.ok() && r.stderr.contains("401"), "{}", r.text());
    assert!(!r.stderr.contains(&branch), "the token was printed");
}
