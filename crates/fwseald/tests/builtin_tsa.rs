//! The built-in RFC 3161 Time-Stamping Authority end to end (issue 13): a real `fwseald`
//! (SoftHSM2 dev token, SQLite) with `[tsa_server]`, requests made and replies judged by the
//! stock `openssl ts` (and `osslsigncode` for an Authenticode countersignature), serials across
//! restarts and a SIGKILL, the audit record of every answer.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test builtin_tsa`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const POLICY: &str = "1.3.6.1.4.1.55555.7.1";

fn tsa_section(anonymous: bool) -> String {
    format!(
        "[tsa_server]\npolicy_oid = \"{POLICY}\"\naccuracy_ms = 1500\nanonymous = {anonymous}\n\
         subject_cn = \"fwseal test TSA\"\ncertificate_days = 30\n"
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// `POST /v1/tsa` with `content_type` and an optional token: (status, content type, body).
fn post_tsa(
    a: &Appliance,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut req = agent()
        .post(&format!("{}/v1/tsa", a.url))
        .header("Content-Type", content_type);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.send(body).unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .unwrap_or_default();
    (status, ct, body)
}

fn get(a: &Appliance, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent().get(&format!("{}{path}", a.url));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

fn problem_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["code"].as_str().unwrap_or_default().to_string()
}

fn openssl(a: &Appliance, args: &[&str]) -> Run {
    run(Command::new("openssl").args(args).current_dir(a.dir.path()))
}

/// `openssl ts -query -data DATA <args> -out q.tsq`, POSTed with the `ci` token (or none);
/// the reply saved as `out`. Returns the reply.
fn stamp(a: &Appliance, data: &str, args: &[&str], token: Option<&str>, out: &str) -> Vec<u8> {
    let mut q = vec!["ts", "-query", "-data", data];
    q.extend_from_slice(args);
    q.extend_from_slice(&["-out", "q.tsq"]);
    let r = openssl(a, &q);
    assert!(r.ok(), "openssl ts -query: {}", r.text());
    let query = std::fs::read(a.path("q.tsq")).unwrap();
    let (st, ct, body) = post_tsa(a, token, "application/timestamp-query", &query);
    assert_eq!(st, 200, "POST /v1/tsa: {}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/timestamp-reply");
    std::fs::write(a.path(out), &body).unwrap();
    body
}

/// `openssl ts -reply -in R -text`.
fn reply_text(a: &Appliance, reply: &str) -> String {
    let r = openssl(a, &["ts", "-reply", "-in", reply, "-text"]);
    assert!(r.ok(), "openssl ts -reply -text: {}", r.text());
    r.stdout
}

/// The serial number `openssl ts -reply -text` shows (`Serial number: 0x0A`, or decimal).
fn serial(text: &str) -> u128 {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial number:"))
        .unwrap_or_else(|| panic!("no serial in:\n{text}"))
        .trim();
    match line.strip_prefix("0x") {
        Some(h) => u128::from_str_radix(h, 16).unwrap(),
        None => line.parse().unwrap(),
    }
}

fn verify(a: &Appliance, how: &[&str], reply: &str, ca: &str) -> Run {
    let mut args = vec!["ts", "-verify"];
    args.extend_from_slice(how);
    args.extend_from_slice(&["-in", reply, "-CAfile", ca]);
    openssl(a, &args)
}

fn verified(r: &Run) -> bool {
    r.ok() && r.stdout.contains("Verification: OK")
}

fn save_cert(a: &Appliance, token: Option<&str>, file: &str) -> String {
    let (st, pem) = get(a, "/v1/tsa/certificate", token);
    assert_eq!(st, 200, "GET /v1/tsa/certificate: {pem}");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    std::fs::write(a.path(file), &pem).unwrap();
    pem
}

/// Exactly one `allow` `timestamp` record carries serial `s` (hex as openssl prints it).
fn assert_audited(a: &Appliance, s: u128) {
    let hex = format!("{s:x}");
    let hex = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    };
    let n = a.sql(&format!(
        "select count(*) from audit_log where action = 'timestamp' and decision = 'allow' \
         and product = 'fwseal-tsa' and json_extract(extra, '$.serial') = '{hex}'"
    ));
    assert_eq!(n, "1", "audit records for serial {hex}");
}

/// Everything `openssl` can judge of a TSA that requires a token, including serials across a
/// restart, a SIGKILL and a key rotation, and the audit record of every answer.
#[test]
fn openssl_judges_the_builtin_tsa() {
    if tool("openssl").is_none() || tool("sqlite3").is_none() {
        return;
    }
    let mut a = Appliance::start(&tsa_section(false), "");
    std::fs::write(a.path("data.bin"), b"firmware bytes to timestamp\n").unwrap();
    std::fs::write(a.path("other.bin"), b"some other bytes\n").unwrap();

    // The certificate: for authenticated clients; `keys export` writes the same one.
    assert_eq!(get(&a, "/v1/tsa/certificate", None).0, 401);
    let pem = save_cert(&a, Some(TOKEN), "tsa.pem");
    a.export_keys("fwseal-tsa");
    assert_eq!(
        std::fs::read_to_string(a.path("keys/fwseal-tsa-v1-cert.pem")).unwrap(),
        pem
    );
    let r = openssl(&a, &["x509", "-in", "tsa.pem", "-noout", "-text"]);
    assert!(r.ok(), "{}", r.text());
    assert!(r.stdout.contains("CN = fwseal test TSA"), "{}", r.stdout);
    assert!(r.stdout.contains("Time Stamping"), "{}", r.stdout);

    let mut serials = Vec::new();
    let digest = sha256_hex(&std::fs::read(a.path("data.bin")).unwrap());
    for (i, args) in [
        &["-sha256", "-cert"][..],
        &["-sha512", "-cert"][..],
        &["-sha384", "-cert"][..],
        &["-sha256"][..],
    ]
    .iter()
    .enumerate()
    {
        let out = format!("r{i}.tsr");
        stamp(&a, "data.bin", args, Some(TOKEN), &out);
        // Without -cert the token carries no certificate: openssl is given it as untrusted.
        let mut how = vec!["-data", "data.bin"];
        if !args.contains(&"-cert") {
            how.extend_from_slice(&["-untrusted", "tsa.pem"]);
        }
        let r = verify(&a, &how, &out, "tsa.pem");
        assert!(verified(&r), "{args:?}: {}", r.text());
        let mut how = vec!["-data", "other.bin"];
        if !args.contains(&"-cert") {
            how.extend_from_slice(&["-untrusted", "tsa.pem"]);
        }
        let r = verify(&a, &how, &out, "tsa.pem");
        assert!(
            !verified(&r),
            "other data verified ({args:?}): {}",
            r.text()
        );
        let text = reply_text(&a, &out);
        assert!(text.contains("Status: Granted"), "{text}");
        assert!(text.contains(&format!("Policy OID: {POLICY}")), "{text}");
        assert!(
            text.contains("Accuracy: 0x01 seconds, 0x01F4 millis"),
            "accuracy not shown:\n{text}"
        );
        serials.push(serial(&text));
    }
    // The -digest form, sha256.
    let r = verify(&a, &["-digest", &digest], "r0.tsr", "tsa.pem");
    assert!(verified(&r), "{}", r.text());
    let wrong = sha256_hex(b"not the data");
    let r = verify(&a, &["-digest", &wrong], "r0.tsr", "tsa.pem");
    assert!(!verified(&r), "{}", r.text());

    // Serials strictly increase: across requests, a clean restart and a SIGKILL.
    a.restart();
    stamp(
        &a,
        "data.bin",
        &["-sha256", "-cert"],
        Some(TOKEN),
        "after-restart.tsr",
    );
    serials.push(serial(&reply_text(&a, "after-restart.tsr")));
    a.crash();
    a.relaunch();
    stamp(
        &a,
        "data.bin",
        &["-sha256", "-cert"],
        Some(TOKEN),
        "after-crash.tsr",
    );
    serials.push(serial(&reply_text(&a, "after-crash.tsr")));
    let r = verify(&a, &["-data", "data.bin"], "after-crash.tsr", "tsa.pem");
    assert!(verified(&r), "{}", r.text());
    assert!(
        serials.windows(2).all(|w| w[0] < w[1]),
        "serials do not strictly increase: {serials:?}"
    );
    for s in &serials {
        assert_audited(&a, *s);
    }
    let extra = a.sql(
        "select extra from audit_log where action = 'timestamp' and decision = 'allow' \
         order by seq desc limit 1",
    );
    let x: serde_json::Value = serde_json::from_str(&extra).unwrap();
    assert_eq!(x["policy"], POLICY, "{x}");
    assert_eq!(x["hash_alg"], "sha256", "{x}");
    assert_eq!(x["imprint"], digest.as_str(), "{x}");
    assert_eq!(
        x["token_sha256"].as_str().unwrap().len(),
        64,
        "token hash: {x}"
    );
    assert!(x["gen_time"].as_str().unwrap().ends_with('Z'), "{x}");
    assert_eq!(a.sql("select client from audit_log where action = 'timestamp' and decision = 'allow' order by seq desc limit 1"), "ci");

    // Refusals: 200 rejections (audited as deny), never a 500.
    let denies = || -> u64 {
        a.sql("select count(*) from audit_log where action = 'timestamp' and decision = 'deny'")
            .parse()
            .unwrap()
    };
    let before = denies();
    let (st, _, body) = post_tsa(
        &a,
        Some(TOKEN),
        "application/timestamp-query",
        b"\x30\x03garbage",
    );
    assert_eq!(st, 200);
    std::fs::write(a.path("garbled.tsr"), &body).unwrap();
    let text = reply_text(&a, "garbled.tsr");
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.contains("Failure info: the data submitted has the wrong format\n"),
        "{text}"
    );
    // A hash the TSA does not accept (SHA-1).
    let r = openssl(
        &a,
        &[
            "ts", "-query", "-data", "data.bin", "-sha1", "-out", "sha1.tsq",
        ],
    );
    assert!(r.ok(), "{}", r.text());
    let (st, _, body) = post_tsa(
        &a,
        Some(TOKEN),
        "application/timestamp-query",
        &std::fs::read(a.path("sha1.tsq")).unwrap(),
    );
    assert_eq!(st, 200);
    std::fs::write(a.path("sha1.tsr"), &body).unwrap();
    let text = reply_text(&a, "sha1.tsr");
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.to_lowercase()
            .contains("unrecognized or unsupported algorithm"),
        "{text}"
    );
    // A policy the TSA does not offer.
    let r = openssl(
        &a,
        &[
            "ts",
            "-query",
            "-data",
            "data.bin",
            "-sha256",
            "-tspolicy",
            "1.2.3.4",
            "-out",
            "pol.tsq",
        ],
    );
    assert!(r.ok(), "{}", r.text());
    let (st, _, body) = post_tsa(
        &a,
        Some(TOKEN),
        "application/timestamp-query",
        &std::fs::read(a.path("pol.tsq")).unwrap(),
    );
    assert_eq!(st, 200);
    std::fs::write(a.path("pol.tsr"), &body).unwrap();
    assert!(reply_text(&a, "pol.tsr").contains("Status: Rejected"));
    assert_eq!(denies(), before + 3, "each rejection has a deny record");
    let reason = a.sql(
        "select reason from audit_log where action = 'timestamp' and decision = 'deny' \
         order by seq desc limit 1",
    );
    assert!(reason.contains("rejected"), "{reason}");

    // HTTP-level refusals: problem documents.
    let query = std::fs::read(a.path("q.tsq")).unwrap();
    let (st, _, body) = post_tsa(&a, Some(TOKEN), "application/octet-stream", &query);
    assert_eq!(st, 415, "{}", String::from_utf8_lossy(&body));
    assert_eq!(problem_code(&body), "unsupported-media-type");
    let (st, _, body) = post_tsa(&a, None, "application/timestamp-query", &query);
    assert_eq!(st, 401, "{}", String::from_utf8_lossy(&body));
    assert_eq!(problem_code(&body), "unauthenticated");
    let (st, _, body) = post_tsa(
        &a,
        Some(TOKEN),
        "application/timestamp-query",
        &vec![0x30; 64 * 1024 + 1],
    );
    assert_eq!(st, 413, "{}", String::from_utf8_lossy(&body));
    assert_eq!(problem_code(&body), "too-large");
    // The 415, the 401 (the first unauthenticated request of its interval is recorded in
    // full) and the 413.
    assert_eq!(denies(), before + 6, "415, 401 and 413 are audited too");

    // Metrics count the answers.
    let (st, m) = get(&a, "/metrics", Some(TOKEN));
    assert_eq!(st, 200);
    assert!(
        m.contains("fwseal_timestamps_total{outcome=\"rejected\"} 3"),
        "{m}"
    );

    // No durable record, no token: with the audit log refusing `timestamp` grants (a trigger
    // in the live database), the answer is a 500 problem, not a TimeStampResp.
    let granted = || -> u64 {
        a.sql("select count(*) from audit_log where action = 'timestamp' and decision = 'allow'")
            .parse()
            .unwrap()
    };
    let n = granted();
    a.sql(
        "create trigger refuse_grants before insert on audit_log \
         when new.action = 'timestamp' and new.decision = 'allow' \
         begin select raise(abort, 'test: audit refused'); end",
    );
    let (st, ct, body) = post_tsa(&a, Some(TOKEN), "application/timestamp-query", &query);
    assert_eq!(st, 500, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/problem+json");
    assert_eq!(problem_code(&body), "internal");
    a.sql("drop trigger refuse_grants");
    assert_eq!(granted(), n);
    stamp(
        &a,
        "data.bin",
        &["-sha256", "-cert"],
        Some(TOKEN),
        "after-audit.tsr",
    );
    assert_eq!(granted(), n + 1);

    // Rotation: a new key and certificate; new tokens verify with the new certificate only.
    run_ok(Command::new(daemon_bin()).arg("-c").arg(&a.config).args([
        "keys",
        "rotate",
        "-p",
        "fwseal-tsa",
    ]));
    let new_pem = save_cert(&a, Some(TOKEN), "tsa2.pem");
    assert_ne!(new_pem, pem);
    stamp(
        &a,
        "data.bin",
        &["-sha256", "-cert"],
        Some(TOKEN),
        "rotated.tsr",
    );
    let s = serial(&reply_text(&a, "rotated.tsr"));
    assert!(s > *serials.last().unwrap());
    assert_audited(&a, s);
    assert!(verified(&verify(
        &a,
        &["-data", "data.bin"],
        "rotated.tsr",
        "tsa2.pem"
    )));
    assert!(!verified(&verify(
        &a,
        &["-data", "data.bin"],
        "rotated.tsr",
        "tsa.pem"
    )));

    // Without a usable TSA key (every version retired) the answer is 503, as for signing.
    for v in ["1", "2"] {
        run_ok(Command::new(daemon_bin()).arg("-c").arg(&a.config).args([
            "keys",
            "retire",
            "-p",
            "fwseal-tsa",
            "--version",
            v,
        ]));
    }
    let (st, _, body) = post_tsa(&a, Some(TOKEN), "application/timestamp-query", &query);
    assert_eq!(st, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(problem_code(&body), "hsm-unavailable");
    assert_eq!(get(&a, "/v1/tsa/certificate", Some(TOKEN)).0, 503);
    a.assert_alive();
}

/// `anonymous = true`: stock clients without a token (openssl via HTTP, osslsigncode -ts).
#[test]
fn anonymous_tsa_serves_stock_clients() {
    if tool("openssl").is_none() || tool("sqlite3").is_none() {
        return;
    }
    let a = Appliance::start(&tsa_section(true), "");
    std::fs::write(a.path("data.bin"), b"anonymous data\n").unwrap();
    save_cert(&a, None, "tsa.pem");
    stamp(&a, "data.bin", &["-sha256", "-cert"], None, "r.tsr");
    let r = verify(&a, &["-data", "data.bin"], "r.tsr", "tsa.pem");
    assert!(verified(&r), "{}", r.text());
    let s = serial(&reply_text(&a, "r.tsr"));
    assert_audited(&a, s);
    assert_eq!(
        a.sql("select client from audit_log where action = 'timestamp' order by seq desc limit 1"),
        "anonymous"
    );
    // A wrong token is still refused.
    let query = std::fs::read(a.path("q.tsq")).unwrap();
    let (st, _, _) = post_tsa(&a, Some("wrong"), "application/timestamp-query", &query);
    assert_eq!(st, 401);

    // osslsigncode: an Authenticode signature countersigned by the built-in TSA.
    let Some(ossl) = tool("osslsigncode") else {
        return;
    };
    let efi = a.put_fixture("efi/hello.efi");
    let r = openssl(
        &a,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "signer.key",
            "-out",
            "signer.pem",
            "-subj",
            "/CN=throwaway signer",
            "-days",
            "2",
        ],
    );
    assert!(r.ok(), "{}", r.text());
    let url = format!("{}/v1/tsa", a.url);
    let r = run(Command::new(&ossl)
        .args([
            "sign",
            "-h",
            "sha256",
            "-certs",
            "signer.pem",
            "-key",
            "signer.key",
        ])
        .args(["-ts", &url, "-in", &efi, "-out", "stamped.efi"])
        .current_dir(a.dir.path()));
    assert!(r.ok(), "osslsigncode sign -ts: {}", r.text());
    let r = run(Command::new(&ossl)
        .args(["verify", "-CAfile", "signer.pem", "-TSA-CAfile", "tsa.pem"])
        .args(["-in", "stamped.efi"])
        .current_dir(a.dir.path()));
    assert!(r.ok(), "osslsigncode verify: {}", r.text());
    assert!(
        r.stdout
            .contains("Timestamp Server Signature verification: ok"),
        "{}",
        r.text()
    );
    let n: u64 = a
        .sql("select count(*) from audit_log where action = 'timestamp' and decision = 'allow'")
        .parse()
        .unwrap();
    assert_eq!(n, 2, "the osslsigncode request was audited");
}

/// Without `[tsa_server]` the endpoints do not exist, and `keys create -p fwseal-tsa` says
/// what is missing.
#[test]
fn without_tsa_server_the_endpoints_are_404() {
    let a = Appliance::start("", "");
    let (st, _, body) = post_tsa(&a, Some(TOKEN), "application/timestamp-query", b"x");
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(problem_code(&body), "not-found");
    assert_eq!(get(&a, "/v1/tsa/certificate", Some(TOKEN)).0, 404);
    let r = run(Command::new(daemon_bin()).arg("-c").arg(&a.config).args([
        "keys",
        "create",
        "-p",
        "fwseal-tsa",
    ]));
    assert_eq!(r.code, Some(2), "{}", r.text());
    assert!(r.stderr.contains("[tsa_server]"), "{}", r.text());
    assert!(!Path::new(&a.state.join("tsa-serial")).exists());
}
