//! M-of-N approvals end to end: the real `fwseald` (SoftHSM2 dev token, SQLite), the real
//! `fwseal` CLI as requester and approvers, stock judges on the result.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test approvals`.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEC_EC: &str = "keys/secure-v1-ecdsa-p256-sha256.pem";
const SEC_PQ: &str = "keys/secure-v1-ml-dsa-65.pem";
const APP_EC: &str = "keys/fwseal-appliance-v1-ecdsa-p256-sha256.pem";
const APP_PQ: &str = "keys/fwseal-appliance-v1-ml-dsa-65.pem";

const ALICE: &str = "secret-alice";
const BOB: &str = "secret-bob";
const CAROL: &str = "secret-carol";
const DAVE: &str = "secret-dave";
const EVE: &str = "secret-eve";

fn client(name: &str, token: &str, roles: &str) -> String {
    format!(
        "[[client]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nroles = {{ {roles} }}\n",
        sha256_hex(token.as_bytes())
    )
}

/// `secure`: 2 of 3 release approvers, one hour to decide. `quick`: 1 approval, expires after
/// one second. Alice, Bob and Carol approve; Dave only fetches `secure` (factory); Eve has no
/// role on `secure` at all.
fn clients(required: u32) -> String {
    let mut s = format!(
        r#"[[product]]
name = "secure"
formats = ["raw", "mcuboot"]
approvals = {{ required = {required}, of_role = "release-approver", expires_after_secs = 3600 }}
[[product]]
name = "quick"
formats = ["raw"]
approvals = {{ required = 1, of_role = "release-approver", expires_after_secs = 1 }}
[[product]]
name = "staged"
formats = ["raw"]
approvals = {{ required = 1, of_role = "release-approver", key_versions = [2] }}
"#
    );
    s.push_str(&client(
        "alice",
        ALICE,
        r#""secure" = ["release-approver"], "quick" = ["release-approver"], "staged" = ["release-approver"]"#,
    ));
    s.push_str(&client("bob", BOB, r#""secure" = ["release-approver"]"#));
    s.push_str(&client("carol", CAROL, r#""secure" = ["approver"]"#));
    s.push_str(&client("dave", DAVE, r#""secure" = ["factory"]"#));
    s.push_str(&client("eve", EVE, r#""uefi" = ["submitter"]"#));
    s
}

fn start() -> Appliance {
    let a = Appliance::start_with_products("", &clients(2), &["secure", "quick", "staged"]);
    for p in ["secure", "fwseal-appliance"] {
        a.export_keys(p);
    }
    a
}

fn count(a: &Appliance, sql_where: &str) -> usize {
    a.sql(&format!("select count(*) from audit_log where {sql_where}"))
        .parse()
        .unwrap()
}

fn denies(a: &Appliance) -> usize {
    count(a, "decision = 'deny'")
}

/// Submit `file` to `product` without --wait: exit 5 and a pending job. Returns (id, digest).
fn submit(a: &Appliance, product: &str, file: &str) -> (String, String) {
    let r = a.cli(&["--json", "sign", "-p", product, file]);
    assert_eq!(
        r.code,
        Some(5),
        "pending sign must exit 5:\n{}\n{}",
        r.text(),
        a.stderr_log()
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let job = &v[0];
    assert_eq!(job["state"], "pending", "{}", r.text());
    assert!(job.get("artifact_id").is_none_or(|x| x.is_null()));
    (
        job["id"].as_str().unwrap().to_string(),
        job["digest"]["value"].as_str().unwrap().to_string(),
    )
}

/// A refusal: exit 1, stderr names `status` and `code`, the newest deny record is for the
/// command's action, and the artifact index did not grow.
fn refused(a: &Appliance, what: &str, token: &str, args: &[&str], status: &str, code: &str) {
    let deny = denies(a);
    let arts = artifacts(a);
    let r = a.cli_as(token, args);
    assert_eq!(r.code, Some(1), "{what}: expected exit 1:\n{}", r.text());
    assert!(
        r.stderr.contains(status) && r.stderr.contains(code),
        "{what}: stderr lacks {status} {code}:\n{}",
        r.text()
    );
    // One more deny record (two when the CLI's preceding GET of the job was refused too).
    let now = denies(a);
    assert!(
        now == deny + 1 || now == deny + 2,
        "{what}: {} new deny records",
        now - deny
    );
    let action =
        a.sql("select action from audit_log where decision = 'deny' order by seq desc limit 1");
    assert_eq!(action, args[0], "{what}: the deny record names the action");
    assert_eq!(artifacts(a), arts, "{what}: an artifact appeared");
}

fn artifacts(a: &Appliance) -> usize {
    a.sql("select count(*) from artifacts").parse().unwrap()
}

fn job_json(a: &Appliance, token: &str, id: &str) -> serde_json::Value {
    let r = a.cli_as(token, &["--json", "jobs", "--all", "-p", "secure"]);
    assert!(r.ok(), "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("job {id} not listed for this client:\n{}", r.text()))
}

#[test]
fn two_of_three_signs_only_after_two_distinct_approvals_across_a_restart() {
    let mut a = start();
    let img = a.put_fixture("mcuboot/unsigned-h200.img");
    let (id, digest) = submit(&a, "secure", &img);
    assert_eq!(count(&a, "action = 'job-submit' and decision = 'allow'"), 1);
    assert_eq!(artifacts(&a), 0, "nothing is signed at submission");

    // Approvers see the job with its digest, format and requester.
    let j = job_json(&a, ALICE, &id);
    assert_eq!(j["digest"]["value"], digest.as_str());
    assert_eq!(j["format"], "mcuboot");
    assert_eq!(j["requester"], "ci");
    let r = a.cli_as(BOB, &["jobs"]);
    assert!(
        r.ok() && r.stdout.contains(&id) && r.stdout.contains(&digest),
        "{}",
        r.text()
    );
    // The job names the exact input the approvers can hash themselves.
    let input = std::fs::read(a.path(&img)).unwrap();
    assert_eq!(j["input_sha256"], sha256_hex(&input).as_str());

    // Refusals, each audited.
    refused(
        &a,
        "self-approval",
        TOKEN,
        &["approve", &id],
        "403",
        "self-approval",
    );
    refused(
        &a,
        "no approver role",
        DAVE,
        &["approve", &id, "--digest", &digest],
        "403",
        "not-an-approver",
    );
    refused(
        &a,
        "no role on the product",
        EVE,
        &["approve", &id, "--digest", &digest],
        "404",
        "no-such-job",
    );
    refused(
        &a,
        "unknown job",
        ALICE,
        &[
            "approve",
            "0123456789abcdef0123456789abcdef",
            "--digest",
            &digest,
        ],
        "404",
        "no-such-job",
    );
    let last = if digest.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &digest[..digest.len() - 1]);
    refused(
        &a,
        "wrong digest",
        ALICE,
        &["approve", &id, "--digest", &wrong],
        "409",
        "digest-mismatch",
    );

    // First approval (after downloading the input and checking its hash): recorded, still
    // unsigned, nothing fetchable.
    let r = a.cli_as(
        ALICE,
        &[
            "approve",
            &id,
            "--digest",
            &digest,
            "--save-input",
            "inspected.img",
        ],
    );
    assert!(r.ok() && r.stdout.contains("1/2"), "{}", r.text());
    assert_eq!(std::fs::read(a.path("inspected.img")).unwrap(), input);
    assert_eq!(artifacts(&a), 0, "one approval must not sign");
    let j = job_json(&a, TOKEN, &id);
    assert_eq!(j["state"], "pending");
    assert!(j["artifact_id"].is_null());
    let r = a.cli(&["--json", "list", "-p", "secure"]);
    assert!(r.ok(), "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 0, "{}", r.text());
    refused(
        &a,
        "double approval",
        ALICE,
        &["approve", &id],
        "409",
        "already-approved",
    );

    // A restart keeps the job and the first approval.
    a.restart();
    let j = job_json(&a, BOB, &id);
    assert_eq!(j["state"], "pending");
    let approvers: Vec<&str> = j["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["approver"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, ["alice"]);
    refused(
        &a,
        "double approval after restart",
        ALICE,
        &["approve", &id],
        "409",
        "already-approved",
    );

    // Second distinct approval: signed.
    let r = a.cli_as(BOB, &["approve", &id]);
    assert!(
        r.ok() && r.stdout.contains("signed as artifact"),
        "{}",
        r.text()
    );
    assert_eq!(artifacts(&a), 1);
    let j = job_json(&a, TOKEN, &id);
    assert_eq!(j["state"], "signed");
    let art = j["artifact_id"].as_str().unwrap().to_string();
    refused(
        &a,
        "approval after signing",
        CAROL,
        &["approve", &id],
        "409",
        "job-signed",
    );

    // The requester fetches it; `fwseal verify` on the fetched image (its provenance found by
    // the naming rule) and imgtool accept it.
    a.cli_ok(&["fetch", &art, "-o", "out"]);
    let signed = "out/unsigned-h200.signed.img";
    let r = a.cli_ok(&[
        "verify",
        signed,
        "-k",
        SEC_EC,
        "-k",
        SEC_PQ,
        "--provenance-key",
        APP_EC,
        "--provenance-key",
        APP_PQ,
        "--builder-id",
        IDENTITY,
    ]);
    assert!(r.stdout.contains("OK provenance"), "{}", r.text());
    if let Some(imgtool) = tool("imgtool") {
        run_ok(
            Command::new(imgtool)
                .args(["verify", "-k", SEC_EC, signed])
                .current_dir(a.dir.path()),
        );
    }

    // The provenance names both approvers.
    let env = std::fs::read_to_string(a.path("out/unsigned-h200.signed.img.intoto.jsonl")).unwrap();
    let env: serde_json::Value = serde_json::from_str(env.trim()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let stmt: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let internal = &stmt["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(
        internal["approvers"],
        serde_json::json!([{"name": "alice"}, {"name": "bob"}]),
        "{stmt}"
    );
    assert_eq!(internal["product"], "secure");

    // The audit log: two approvals, one sign naming the job and both approvers.
    assert_eq!(count(&a, "action = 'approve' and decision = 'allow'"), 2);
    let extra = a.sql("select extra from audit_log where action = 'sign' and decision = 'allow'");
    let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
    assert_eq!(extra["job"], id.as_str());
    assert_eq!(extra["approvers"], serde_json::json!(["alice", "bob"]));
    assert_eq!(extra["artifact"], art.as_str());
    assert_eq!(extra["digest"]["value"], digest.as_str());

    assert!(a.stop(), "fwseald did not exit cleanly");
    let db = a.audit_db().display().to_string();
    let r = a.cli(&["audit", "verify", "--db", &db, "-k", APP_EC, "-k", APP_PQ]);
    assert!(r.ok(), "audit verify:\n{}", r.text());
}

fn spawn_cli(a: &Appliance, token: &str, args: &[&str]) -> std::process::Child {
    Command::new(cli_bin())
        .args(args)
        .current_dir(a.dir.path())
        .env("FWSEAL_URL", &a.url)
        .env("FWSEAL_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The id of the newest pending `secure` job whose input is `name`, waiting until it appears.
fn wait_for_job(a: &Appliance, name: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = a.cli_as(ALICE, &["--json", "jobs", "-p", "secure"]);
        assert!(r.ok(), "{}", r.text());
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        if let Some(j) = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
        {
            return (
                j["id"].as_str().unwrap().to_string(),
                j["digest"]["value"].as_str().unwrap().to_string(),
            );
        }
        assert!(Instant::now() < deadline, "job for {name} never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sign_wait_racing_approvals_rejection_and_expiry() {
    let a = start();

    // `fwseal sign --wait` polls until the quorum; the two final approvals race and only one
    // of them signs.
    let bin = a.put_fixture("raw/sample.bin");
    let waiter = spawn_cli(
        &a,
        TOKEN,
        &[
            "sign",
            "--wait",
            "--poll-interval",
            "1",
            "-p",
            "secure",
            "--detached",
            &bin,
        ],
    );
    let (id, digest) = wait_for_job(&a, &bin);
    // For a raw image the format-aware digest is what `fwseal inspect` computes offline.
    let ins = a.cli_ok(&["inspect", &bin]);
    assert!(ins.stdout.contains(&digest), "{}\nvs {digest}", ins.text());
    let r = a.cli_as(ALICE, &["approve", &id]);
    assert!(r.ok(), "{}", r.text());
    let (b, c) = (
        spawn_cli(&a, BOB, &["approve", &id]),
        spawn_cli(&a, CAROL, &["approve", &id]),
    );
    let (b, c) = (finish(b), finish(c));
    let won = [&b, &c].iter().filter(|r| r.ok()).count();
    assert_eq!(
        won,
        1,
        "exactly one racing approval signs:\n{}\n{}",
        b.text(),
        c.text()
    );
    let lost = if b.ok() { &c } else { &b };
    assert!(lost.stderr.contains("job-signed"), "{}", lost.text());
    let n = a.sql(&format!(
        "select count(*) from audit_log where action = 'sign' and decision = 'allow' \
         and json_extract(extra, '$.job') = '{id}'"
    ));
    assert_eq!(n, "1", "the job signed once");
    let w = finish(waiter);
    assert!(w.ok(), "sign --wait:\n{}", w.text());
    assert!(w.stdout.contains("approved by alice"), "{}", w.text());
    // The detached document's classical half, checked by openssl over the unchanged input.
    let doc = format!("{bin}.sig.json");
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path(&doc)).unwrap()).unwrap();
    let ec = d["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["alg"] == "ecdsa-p256-sha256")
        .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(ec["bytes"].as_str().unwrap())
        .unwrap();
    std::fs::write(a.path("ec.sig"), der).unwrap();
    if let Some(openssl) = tool("openssl") {
        run_ok(
            Command::new(openssl)
                .args([
                    "dgst",
                    "-sha256",
                    "-verify",
                    SEC_EC,
                    "-signature",
                    "ec.sig",
                    &bin,
                ])
                .current_dir(a.dir.path()),
        );
    }
    a.cli_ok(&[
        "verify",
        &bin,
        "--detached",
        &doc,
        "-k",
        SEC_EC,
        "-k",
        SEC_PQ,
    ]);

    // A rejection ends the job: the waiting requester gets exit 1, approvals are refused.
    std::fs::write(a.path("other.bin"), b"another firmware build\n".repeat(100)).unwrap();
    let waiter = spawn_cli(
        &a,
        TOKEN,
        &[
            "sign",
            "--wait",
            "--poll-interval",
            "1",
            "-p",
            "secure",
            "--format",
            "raw",
            "other.bin",
        ],
    );
    let (id2, _) = wait_for_job(&a, "other.bin");
    refused(
        &a,
        "reject without the role",
        DAVE,
        &["reject", &id2, "--reason", "x"],
        "403",
        "not-an-approver",
    );
    let r = a.cli_as(BOB, &["reject", &id2, "--reason", "wrong build flags"]);
    assert!(r.ok(), "{}", r.text());
    assert_eq!(count(&a, "action = 'reject' and decision = 'allow'"), 1);
    refused(
        &a,
        "approval after rejection",
        ALICE,
        &["approve", &id2],
        "409",
        "job-rejected",
    );
    let w = finish(waiter);
    assert_eq!(
        w.code,
        Some(1),
        "sign --wait on a rejected job:\n{}",
        w.text()
    );
    assert!(
        w.stderr.contains("rejected") && w.stderr.contains("wrong build flags"),
        "{}",
        w.text()
    );
    assert!(!a.path("other.signed.bin").exists());

    // Expiry: `quick` jobs expire after one second.
    let r = a.cli(&[
        "--json",
        "sign",
        "-p",
        "quick",
        "--format",
        "raw",
        "other.bin",
    ]);
    assert_eq!(r.code, Some(5), "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let id3 = v[0]["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2100));
    refused(
        &a,
        "approval after expiry",
        ALICE,
        &["approve", &id3],
        "409",
        "job-expired",
    );
    let r = a.cli_as(ALICE, &["--json", "jobs", "--all", "-p", "quick"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let j = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id3.as_str())
        .unwrap()
        .clone();
    assert_eq!(j["state"], "expired");
    let r = a.cli_as(ALICE, &["--json", "jobs", "-p", "quick"]);
    assert!(
        !r.stdout.contains(&id3),
        "expired jobs are not pending:\n{}",
        r.text()
    );
    a.assert_alive();
}

fn job_state(a: &Appliance, id: &str) -> String {
    a.sql(&format!("select state from jobs where id = '{id}'"))
}

fn rotate(a: &Appliance, product: &str) {
    run_ok(
        Command::new(daemon_bin())
            .arg("-c")
            .arg(&a.config)
            .args(["keys", "rotate", "-p", product]),
    );
}

/// `key_versions = [2]`: version 1 signs immediately, version 2 needs the approval, and a key
/// rotation while a job is pending fails the job at release instead of signing with a key the
/// approvers did not expect. The requester may withdraw their own job.
#[test]
fn key_versions_limit_the_policy_and_a_key_change_fails_the_job() {
    let a = start();
    let bin = a.put_fixture("raw/sample.bin");
    a.cli_ok(&["sign", "-p", "staged", &bin]);
    assert_eq!(
        artifacts(&a),
        1,
        "key version 1 is not covered by the policy"
    );

    rotate(&a, "staged");
    let (id, _) = submit(&a, "staged", &bin);
    let (withdrawn, _) = submit(&a, "staged", &bin);
    let r = a.cli(&["reject", &withdrawn, "--reason", "withdrawn by CI"]);
    assert!(r.ok(), "the requester withdraws: {}", r.text());
    assert_eq!(job_state(&a, &withdrawn), "rejected");

    rotate(&a, "staged");
    let deny = denies(&a);
    let r = a.cli_as(ALICE, &["approve", &id]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("key version changed"), "{}", r.text());
    assert_eq!(job_state(&a, &id), "failed");
    assert_eq!(artifacts(&a), 1, "nothing signed");
    assert_eq!(denies(&a), deny + 1);
    let reason =
        a.sql("select reason from audit_log where decision = 'deny' order by seq desc limit 1");
    assert!(
        reason.contains(&id) && reason.contains("release refused"),
        "{reason}"
    );
    refused(
        &a,
        "approval of a failed job",
        ALICE,
        &["approve", &id],
        "409",
        "job-failed",
    );

    // Version 3 is outside the policy again.
    a.cli_ok(&["sign", "-p", "staged", &bin]);
    assert_eq!(artifacts(&a), 2);
}

fn wait_reload(a: &Appliance, decision: &str, before: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = count(
            a,
            &format!("action = 'config-reload' and decision = '{decision}'"),
        );
        if n > before {
            return a.sql(&format!(
                "select extra from audit_log where action = 'config-reload' and decision = '{decision}' \
                 order by seq desc limit 1"
            ));
        }
        assert!(
            Instant::now() < deadline,
            "no {decision} config-reload record"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_keeps_the_old_config_when_the_new_one_is_invalid_and_release_rechecks_the_digest() {
    let a = start();
    let original = std::fs::read_to_string(&a.config).unwrap();
    // 4 approvals but only 3 clients hold the role: invalid, the old config (2 of 3) stays.
    let bad = original.replace("required = 2,", "required = 4,");
    assert_ne!(bad, original);
    std::fs::write(&a.config, &bad).unwrap();
    a.sighup();
    let extra = wait_reload(&a, "deny", 0);
    let v: serde_json::Value = serde_json::from_str(&extra).unwrap();
    assert_eq!(v["config_sha256"], sha256_hex(bad.as_bytes()).as_str());
    let reason =
        a.sql("select reason from audit_log where action = 'config-reload' and decision = 'deny'");
    assert!(reason.contains("only 3 client(s)"), "{reason}");
    let bin = a.put_fixture("raw/sample.bin");
    let r = a.cli(&["--json", "sign", "-p", "secure", &bin]);
    assert_eq!(r.code, Some(5), "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v[0]["approvals_required"], 2,
        "the old policy still applies"
    );
    let pending = v[0]["id"].as_str().unwrap().to_string();
    let r = a.cli_as(ALICE, &["approve", &pending]);
    assert!(r.ok(), "{}", r.text());

    // A valid change is taken and audited with the file's hash: 3 of 3, and raw images of
    // `secure` now hashed with SHA-512.
    let policy =
        "approvals = { required = 2, of_role = \"release-approver\", expires_after_secs = 3600 }";
    assert!(original.contains(policy));
    let good = original.replace(
        policy,
        &format!(
            "{}\noptions = {{ raw_digest = \"sha512\" }}",
            policy.replace("required = 2,", "required = 3,")
        ),
    );
    std::fs::write(&a.config, &good).unwrap();
    a.sighup();
    let extra = wait_reload(&a, "allow", 0);
    let v: serde_json::Value = serde_json::from_str(&extra).unwrap();
    assert_eq!(v["config_sha256"], sha256_hex(good.as_bytes()).as_str());
    let r = a.cli(&["--json", "sign", "-p", "secure", &bin]);
    assert_eq!(r.code, Some(5), "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["approvals_required"], 3, "the new policy applies");
    assert_eq!(v[0]["digest"]["alg"], "sha512");

    // The stricter M also applies to the job submitted before the reload...
    let r = a.cli_as(BOB, &["approve", &pending]);
    assert!(r.ok() && r.stdout.contains("2/3"), "{}", r.text());
    assert_eq!(job_state(&a, &pending), "pending");
    // ...and at its release the image's digest is recomputed under the new options: it no
    // longer equals the SHA-256 the approvers approved, so nothing is signed.
    let before = artifacts(&a);
    let deny = denies(&a);
    let r = a.cli_as(CAROL, &["approve", &pending]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("digest-mismatch"), "{}", r.text());
    assert_eq!(job_state(&a, &pending), "failed");
    assert_eq!(artifacts(&a), before);
    assert_eq!(denies(&a), deny + 1);
    let reason =
        a.sql("select reason from audit_log where decision = 'deny' order by seq desc limit 1");
    assert!(reason.contains("recomputed digest"), "{reason}");
}

/// Roles are checked against the current configuration when the quorum is evaluated: an
/// approval given by a client whose approver role was revoked since (SIGHUP) no longer counts,
/// so it cannot complete a quorum, and the release records only the approvers who counted.
#[test]
fn an_approver_revoked_by_sighup_no_longer_counts() {
    let a = start();
    let bin = a.put_fixture("raw/sample.bin");
    let (id, _) = submit(&a, "secure", &bin);
    let r = a.cli_as(ALICE, &["approve", &id]);
    assert!(r.ok() && r.stdout.contains("1/2"), "{}", r.text());

    // Alice loses the release-approver role on `secure` (the config stays valid: Bob and Carol
    // still hold it).
    let original = std::fs::read_to_string(&a.config).unwrap();
    let revoked = original.replace(r#""secure" = ["release-approver"], "quick""#, r#""quick""#);
    assert_ne!(revoked, original, "alice's role line changed");
    std::fs::write(&a.config, &revoked).unwrap();
    a.sighup();
    wait_reload(&a, "allow", 0);

    // Bob's approval is the second stored one, but only the first that counts: no signature.
    let before = artifacts(&a);
    let r = a.cli_as(BOB, &["approve", &id]);
    assert!(r.ok(), "{}", r.text());
    assert_eq!(
        job_state(&a, &id),
        "pending",
        "a revoked approver completed the quorum"
    );
    assert_eq!(artifacts(&a), before);
    let job = job_json(&a, BOB, &id);
    let shown: Vec<&str> = job["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["approver"].as_str().unwrap())
        .collect();
    assert_eq!(shown, vec!["bob"], "the job lists the approvals that count");
    // Alice's approval stays in the audit log.
    assert_eq!(
        count(
            &a,
            "action = 'approve' and decision = 'allow' and client = 'alice'"
        ),
        1
    );

    // Carol completes it: signed, with exactly the approvers who counted.
    let r = a.cli_as(CAROL, &["approve", &id]);
    assert!(r.ok(), "{}", r.text());
    assert_eq!(job_state(&a, &id), "signed");
    let extra = a.sql(
        "select extra from audit_log where action = 'sign' and decision = 'allow' \
         order by seq desc limit 1",
    );
    let v: serde_json::Value = serde_json::from_str(&extra).unwrap();
    assert_eq!(v["job"], id.as_str());
    assert_eq!(
        v["approvers"],
        serde_json::json!(["bob", "carol"]),
        "{extra}"
    );
}
