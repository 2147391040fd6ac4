//! Service hardening against the real daemon (SoftHSM2 dev token, SQLite): a batch re-checks
//! the client's role per part, non-file multipart fields are refused, anonymous denials cannot
//! flood the audit log, no signed blob survives a `kill -9` without its audit record, and
//! `fwseald keys` does not log mechanism probing as errors; a failed publish after the commit
//! loses nothing, a second daemon cannot take over a state directory, and a lost database does
//! not sweep the blob store.
//!
//! HTTP is spoken by small Python scripts (`python3` standard library only), so the requests
//! are exactly the bytes on the wire.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> Option<std::path::PathBuf> {
    tool("python3")
}

fn count(a: &Appliance, sql_where: &str) -> usize {
    a.sql(&format!("select count(*) from audit_log where {sql_where}"))
        .parse()
        .unwrap()
}

fn artifacts(a: &Appliance) -> usize {
    a.sql("select count(*) from artifacts").parse().unwrap()
}

/// A multipart part: (field name, filename, content).
const MULTIPART: &str = r#"
import http.client, json, sys, urllib.parse
def part(b, name, filename, data):
    d = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        d += f'; filename="{filename}"'
    return (f'--{b}\r\n{d}\r\nContent-Type: application/octet-stream\r\n\r\n').encode() + data + b'\r\n'
"#;

/// `version=1.2.3` as a plain form field is not an image: that part is refused with a 400
/// problem (and audited), the file part beside it is signed, and only one artifact appears.
#[test]
fn a_form_field_without_filename_is_refused_not_signed() {
    let Some(py) = python() else { return };
    let a = Appliance::start("", "");
    let script = format!(
        r#"{MULTIPART}
u = urllib.parse.urlparse(sys.argv[1])
b = 'XyZbOuNdArY'
body = part(b, 'version', None, b'1.2.3') + part(b, 'image', 'fw.bin', b'\x01' * 4096) + f'--{{b}}--\r\n'.encode()
c = http.client.HTTPConnection(u.hostname, u.port)
c.request('POST', '/v1/products/widget/sign-batch', body,
          {{'Authorization': 'Bearer {TOKEN}', 'Content-Type': f'multipart/form-data; boundary={{b}}'}})
r = c.getresponse()
print(r.status)
print(r.read().decode())
"#
    );
    let r = run_ok(Command::new(py).args(["-c", &script, &a.url]));
    let (status, body) = r.stdout.split_once('\n').unwrap();
    assert_eq!(status.trim(), "200", "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(results[0]["status"], 400, "{body}");
    assert_eq!(results[0]["body"]["code"], "bad-request", "{body}");
    assert!(
        results[0]["body"]["detail"]
            .as_str()
            .unwrap()
            .contains("not a file part"),
        "{body}"
    );
    assert_eq!(results[1]["status"], 201, "{body}");
    assert_eq!(results[1]["name"], "fw.bin");
    assert_eq!(artifacts(&a), 1, "the form field was signed as an image");
    assert_eq!(
        count(
            &a,
            "action = 'sign' and decision = 'deny' and reason like '%not a file part%'"
        ),
        1
    );
}

/// A batch that is still being received when the client's submitter role is revoked (SIGHUP)
/// signs no further part: the part sent before the revocation is signed, the one after it is
/// refused like an unknown product.
#[test]
fn a_batch_stops_signing_when_the_role_is_revoked_mid_request() {
    let Some(py) = python() else { return };
    let tok = sha256_hex(b"secret-batcher");
    let batcher = format!(
        "[[client]]\nname = \"batcher\"\ntoken_sha256 = \"{tok}\"\nroles = {{ \"widget\" = [\"submitter\"] }}\n"
    );
    let a = Appliance::start("", &batcher);
    // Part 1 and the next part's headers, then wait for a line on stdin, then part 2.
    let script = format!(
        r#"{MULTIPART}
u = urllib.parse.urlparse(sys.argv[1])
b = 'XyZbOuNdArY'
p2 = part(b, 'image', 'second.bin', b'\x02' * 4096) + f'--{{b}}--\r\n'.encode()
head, rest = p2[:120], p2[120:]
c = http.client.HTTPConnection(u.hostname, u.port)
c.putrequest('POST', '/v1/products/widget/sign-batch')
c.putheader('Authorization', 'Bearer secret-batcher')
c.putheader('Content-Type', f'multipart/form-data; boundary={{b}}')
c.putheader('Transfer-Encoding', 'chunked')
c.endheaders()
def chunk(data):
    c.send(f'{{len(data):x}}\r\n'.encode() + data + b'\r\n')
chunk(part(b, 'image', 'first.bin', b'\x01' * 4096) + head)
print('sent-first', flush=True)
sys.stdin.readline()
chunk(rest)
c.send(b'0\r\n\r\n')
r = c.getresponse()
print(r.status)
print(r.read().decode(), flush=True)
"#
    );
    let mut child = Command::new(py)
        .args(["-c", &script, &a.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "sent-first");
    // The first part is signed while the request is still open.
    let deadline = Instant::now() + Duration::from_secs(30);
    while artifacts(&a) < 1 {
        assert!(Instant::now() < deadline, "first part never signed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Revoke: batcher keeps no role on widget.
    let original = std::fs::read_to_string(&a.config).unwrap();
    let revoked = original.replace(r#""widget" = ["submitter"]"#, r#""uefi" = ["submitter"]"#);
    assert_ne!(revoked, original);
    std::fs::write(&a.config, &revoked).unwrap();
    a.sighup();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&a, "action = 'config-reload' and decision = 'allow'") < 1 {
        assert!(Instant::now() < deadline, "no config reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    let (status, body) = rest.split_once('\n').unwrap();
    assert_eq!(status.trim(), "200", "{rest}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(results[0]["status"], 201, "{body}");
    assert_eq!(
        results[1]["status"], 404,
        "part signed after the role was revoked: {body}"
    );
    assert_eq!(artifacts(&a), 1);
    assert_eq!(
        count(
            &a,
            "action = 'sign' and decision = 'deny' and client = 'batcher'"
        ),
        1
    );
}

/// 200 unauthenticated requests naming 7,000-character products (a 60,000-character one is a
/// 414 before authentication) add a bounded amount to the
/// audit log: the first is recorded (its product described by length and hash, not stored),
/// the rest are one summary record whose count says how many there were.
#[test]
fn anonymous_denials_with_huge_product_names_are_bounded_and_summarised() {
    let Some(py) = python() else { return };
    let mut a = Appliance::start("anonymous_denial_summary_secs = 3600", "");
    let rows =
        |a: &Appliance| -> usize { a.sql("select count(*) from audit_log").parse().unwrap() };
    let bytes = |a: &Appliance| -> usize {
        a.sql(
            "select coalesce(sum(length(coalesce(product,'')) + length(coalesce(reason,'')) \
             + length(coalesce(extra,''))), 0) from audit_log",
        )
        .parse()
        .unwrap()
    };
    let (rows0, bytes0) = (rows(&a), bytes(&a));
    let script = r#"
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
name = 'A' * 7000
codes = set()
for i in range(200):
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request('POST', f'/v1/products/{name}{i}/sign', b'x')
    r = c.getresponse(); r.read(); codes.add(r.status); c.close()
print(sorted(codes))
c = http.client.HTTPConnection(u.hostname, u.port)
c.request('POST', '/v1/products/' + 'A' * 60000 + '/sign', b'x')
r = c.getresponse(); r.read(); print(r.status)
"#;
    let deadline = Instant::now() + Duration::from_secs(120);
    let r = run_ok(Command::new(py).args(["-c", script, &a.url]));
    assert!(Instant::now() < deadline, "200 requests took too long");
    // Names up to the request-target limit (8 KiB) reach authentication and its audit record;
    // a longer target is refused before either (414, not audited: nothing of it is kept).
    assert_eq!(r.stdout.trim(), "[401]\n414", "{}", r.text());
    // The summary is written at the end of its interval or, as here, at shutdown.
    assert!(a.stop(), "fwseald did not stop cleanly");
    let added_rows = rows(&a) - rows0;
    let added_bytes = bytes(&a) - bytes0;
    assert!(
        added_rows <= 3,
        "{added_rows} audit rows for 200 anonymous denials"
    );
    assert!(
        added_bytes < 16 * 1024,
        "{added_bytes} bytes of audit text for 200 anonymous denials"
    );
    let full = count(&a, "client = 'anonymous' and action = 'sign'");
    assert_eq!(full, 1, "the first denial is recorded in full");
    let described =
        a.sql("select extra from audit_log where client = 'anonymous' and action = 'sign' limit 1");
    let v: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(v["requested_product"]["bytes"], 7_001, "{described}");
    assert_eq!(
        a.sql("select count(*) from audit_log where length(product) > 64"),
        "0"
    );
    let summary = a.sql(
        "select extra from audit_log where client = 'anonymous' and action = 'denied' \
         order by seq desc limit 1",
    );
    let v: serde_json::Value = serde_json::from_str(&summary)
        .unwrap_or_else(|e| panic!("no summary record ({e}): {summary:?}"));
    let s = &v["anonymous_denials"];
    assert_eq!(s["count"], 199, "{summary}");
    assert_eq!(s["samples"][0]["action"], "sign", "{summary}");
    assert!(s["samples"][0]["requested_product"]["sha256"].is_string());
}

/// Every blob in the artifact store is referenced by an indexed artifact (or a job), and every
/// indexed artifact has its `sign` audit record.
fn assert_blobs_accounted_for(a: &Appliance) {
    let mut refs: HashSet<String> = HashSet::new();
    let rows = a.sql(
        "select input_sha256 || ' ' || output_sha256 || ' ' || coalesce(detached_sha256,'') \
         || ' ' || coalesce(provenance_sha256,'') from artifacts",
    );
    for l in rows.lines() {
        refs.extend(l.split_whitespace().map(str::to_string));
    }
    for l in a.sql("select input_sha256 from jobs").lines() {
        refs.insert(l.trim().to_string());
    }
    let root = a.state.join("artifacts/sha256");
    let mut blobs = 0;
    for shard in std::fs::read_dir(&root).unwrap().flatten() {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            blobs += 1;
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(
                refs.contains(&name),
                "blob {name} is in the store but no artifact references it"
            );
        }
    }
    let staged: Vec<_> = std::fs::read_dir(a.state.join("artifacts/staged"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        staged.is_empty(),
        "{} staged blob(s) left after start-up",
        staged.len()
    );
    let unaudited: usize = a
        .sql(
            "select count(*) from artifacts where id not in (select json_extract(extra, \
             '$.artifact') from audit_log where action = 'sign' and decision = 'allow')",
        )
        .parse()
        .unwrap();
    assert_eq!(unaudited, 0, "indexed artifacts without a sign record");
    assert!(
        blobs >= 3 * artifacts(a).min(1),
        "blobs of the artifacts exist"
    );
}

/// `kill -9` while 16 clients sign: after each restart every blob in the store belongs to an
/// indexed, audited artifact (nothing signed is left behind unaudited). A blob left unreferenced
/// by an older version is swept at start-up and the sweep is audited.
#[test]
fn kill_9_under_load_leaves_no_unaudited_blob() {
    let Some(py) = python() else { return };
    let mut a = Appliance::start("", "");
    // An orphan of the kind older versions left: a signed-looking blob with no record.
    let orphan = b"orphan signed image from an older version";
    let oh = sha256_hex(orphan);
    let shard = a.state.join("artifacts/sha256").join(&oh[..2]);
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join(&oh), orphan).unwrap();

    let load = format!(
        r#"
import http.client, os, sys, threading, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
def worker():
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        while True:
            c.request('POST', '/v1/products/widget/sign', os.urandom(2048),
                      {{'Authorization': 'Bearer {TOKEN}'}})
            r = c.getresponse(); r.read()
    except Exception:
        pass
ts = [threading.Thread(target=worker, daemon=True) for _ in range(16)]
for t in ts: t.start()
for t in ts: t.join(30)
"#
    );
    let mut signed_total = 0;
    for round in 0..3 {
        let before = artifacts(&a);
        let mut client = Command::new(&py)
            .args(["-c", &load, &a.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let signing get going, then pull the plug mid-flight.
        let deadline = Instant::now() + Duration::from_secs(60);
        while artifacts(&a) < before + 30 {
            assert!(
                Instant::now() < deadline,
                "round {round}: no signing under load"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        a.crash();
        let _ = client.kill();
        let _ = client.wait();
        a.relaunch();
        signed_total = artifacts(&a);
        assert_blobs_accounted_for(&a);
    }
    assert!(signed_total >= 90);
    // Swept out of the store (not served), into the quarantine the audit record names — not
    // deleted (behaviour changed on purpose: the sweep used to delete it).
    assert!(!shard.join(&oh).exists(), "the orphan blob was not swept");
    let rec = a.sql(
        "select extra from audit_log where action = 'blob-recovery' and json_extract(extra, \
         '$.swept') > 0 order by seq limit 1",
    );
    let v: serde_json::Value = serde_json::from_str(&rec).unwrap();
    assert!(
        v["swept_sha256"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == oh.as_str()),
        "{rec}"
    );
    let q = std::path::PathBuf::from(v["quarantine"].as_str().expect("quarantine named"));
    assert!(q.starts_with(a.state.join("artifacts/.swept")), "{rec}");
    assert_eq!(std::fs::read(q.join(&oh)).unwrap(), orphan, "{rec}");
}

/// POST one image with curl-like Python; returns (status, body).
fn post_sign(py: &std::path::Path, a: &Appliance, data: &[u8]) -> (u16, serde_json::Value) {
    let script = format!(
        r#"
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
c.request('POST', '/v1/products/widget/sign', sys.stdin.buffer.read(),
          {{'Authorization': 'Bearer {TOKEN}'}})
r = c.getresponse()
print(r.status)
print(r.read().decode())
"#
    );
    let mut child = Command::new(py)
        .args(["-c", &script, &a.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, body) = text.split_once('\n').unwrap();
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

/// Publishing fails after the commit (the shard tree is not a directory, as when a shard
/// directory cannot be created): the signing stays recorded — an `allow` record and no `deny`
/// for it —, the client gets 500 `internal` saying so, the three blobs stay staged, and after a
/// restart (recovery) the artifact is fully downloadable.
#[test]
fn a_failed_publish_after_the_commit_loses_nothing() {
    let Some(py) = python() else { return };
    let mut a = Appliance::start("", "");
    let store = a.state.join("artifacts/sha256");
    let away = a.state.join("artifacts/sha256.away");
    std::fs::rename(&store, &away).unwrap();
    std::fs::write(&store, b"not a directory").unwrap();

    let (status, body) = post_sign(&py, &a, &[0x5a; 4096]);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "internal", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("signed and recorded"), "{body}");
    assert_eq!(count(&a, "action = 'sign' and decision = 'allow'"), 1);
    assert_eq!(
        count(&a, "action = 'sign' and decision = 'deny'"),
        0,
        "a recorded signing was also logged as refused"
    );
    assert_eq!(artifacts(&a), 1);
    let staged = a.state.join("artifacts/staged");
    assert_eq!(files_in(&staged), 3, "the staged blobs were deleted");

    // Space is back; the next start publishes them.
    assert!(a.stop());
    std::fs::remove_file(&store).unwrap();
    std::fs::rename(&away, &store).unwrap();
    a.relaunch();
    assert_eq!(files_in(&staged), 0);
    let want = a
        .sql("select id, output_sha256, detached_sha256, provenance_sha256 from artifacts")
        .replace('|', " ");
    let id = want.split(' ').next().unwrap().to_string();
    let script = format!(
        r#"
import hashlib, http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
out = ['{id}']
for part in ['image', 'detached', 'provenance']:
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request('GET', '/v1/artifacts/{id}/' + part, headers={{'Authorization': 'Bearer {TOKEN}'}})
    r = c.getresponse()
    body = r.read()
    out.append(hashlib.sha256(body).hexdigest() if r.status == 200 else f'{{part}}:{{r.status}}')
print(' '.join(out))
"#
    );
    let got = run_ok(Command::new(&py).args(["-c", &script, &a.url]));
    assert_eq!(got.stdout.trim(), want, "artifact not fully downloadable");
    let rec = a.sql(
        "select json_extract(extra, '$.published') from audit_log where action = 'blob-recovery'",
    );
    assert_eq!(rec, "3");
}

/// A second `fwseald run` on the same state directory exits non-zero naming the state dir and
/// the holder's pid, before touching anything: a staged blob of the first daemon (an in-flight
/// signing) is not deleted, and the first daemon keeps serving.
#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let a = Appliance::start("", "");
    let inflight = a
        .state
        .join("artifacts/staged")
        .join(format!("{}.inflight", sha256_hex(b"in flight")));
    std::fs::write(&inflight, b"in flight").unwrap();
    let mut second = Command::new(daemon_bin())
        .arg("-c")
        .arg(&a.config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = second.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second fwseald on the same state dir kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    let pid = std::fs::read_to_string(a.state.join("fwseald.lock")).unwrap();
    assert!(err.contains("in use by another fwseald"), "{err}");
    assert!(err.contains(&a.state.display().to_string()), "{err}");
    assert!(err.contains(&format!("pid {}", pid.trim())), "{err}");
    assert!(inflight.exists(), "the second daemon deleted a staged blob");
    a.assert_alive();
}

/// audit.db lost (a fresh database): the start-up sweep is refused — every signed blob stays
/// in the store, the refusal is logged as an error and audited — and the daemon serves.
#[test]
fn a_lost_database_does_not_sweep_the_store() {
    let mut a = Appliance::start("", "");
    std::fs::write(a.path("fw.bin"), [0x33u8; 2048]).unwrap();
    a.cli_ok(&["sign", "-p", "widget", "fw.bin"]);
    let before = a.artifact_count();
    assert!(before >= 3);
    assert!(a.stop());
    for f in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let _ = std::fs::rename(a.state.join(f), a.path(&format!("{f}.lost")));
    }
    a.relaunch();
    assert_eq!(a.artifact_count(), before, "the sweep deleted blobs");
    assert!(
        a.stderr_log().contains("sweep refused"),
        "{}",
        a.stderr_log()
    );
    let rec = a.sql(
        "select json_extract(extra, '$.sweep_refused') || ' ' || json_extract(extra, '$.unswept') \
         from audit_log where action = 'blob-recovery'",
    );
    assert_eq!(rec, format!("1 {before}"));
    a.assert_alive();
}

/// `fwseald keys create` and `keys list` log no ERROR lines (`create` used to print ~30
/// `ERROR cryptoki::mechanism … not supported`): the token's mechanisms are probed one by one,
/// not by converting its whole mechanism list.
#[test]
fn fwseald_keys_logs_no_error_lines() {
    let a = Appliance::start("", "[[product]]\nname = \"extra\"\nformats = [\"raw\"]\n");
    for args in [
        &["keys", "create", "-p", "extra"][..],
        &["keys", "list"][..],
    ] {
        let r = run_ok(
            Command::new(daemon_bin())
                .arg("-c")
                .arg(&a.config)
                .args(args),
        );
        assert!(!r.stderr.contains("ERROR"), "{args:?}:\n{}", r.text());
    }
}

/// Unmounts (lazily, so a still-running daemon cannot block it) when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A real full disk (a 24 MiB ext4 file system without reserved blocks, loop-mounted as the
/// state directory, filled by a balloon file to 15 levels between 200 kB and 0 bytes free):
/// every failure is a `500 internal` storage error naming its cause — never `503
/// hsm-unavailable` — and signing works again once space is freed. Needs root and loop
/// devices; where mounting is impossible the test says so and checks nothing.
#[test]
fn a_full_disk_is_a_storage_error_never_hsm_unavailable() {
    let Some(py) = python() else {
        assert!(!judges_required(), "python3 is required");
        return;
    };
    let mut a = Appliance::start("", "");
    assert!(a.stop(), "first stop");
    let img = a.path("disk.img");
    let state = a.path("state");
    let orig = a.path("state.orig");
    let mkfs = Command::new("truncate")
        .args(["-s", "24M"])
        .arg(&img)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("mkfs.ext4")
            .args(["-q", "-m", "0", "-F"])
            .arg(&img)
            .status()
            .is_ok_and(|s| s.success());
    std::fs::rename(&state, &orig).unwrap();
    std::fs::create_dir(&state).unwrap();
    let mounted = mkfs
        && Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&state)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot loop-mount an ext4 image here (needs root and loop devices)");
        return;
    }
    let _mount = Mount(state.clone());
    run_ok(Command::new("cp").arg("-a").arg(orig.join(".")).arg(&state));
    a.relaunch();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    assert_eq!(
        post_sign(&py, &a, &data).0,
        201,
        "signing before the disk fills"
    );

    let balloon = state.join("balloon");
    let avail = || -> u64 {
        let out = run_ok(
            Command::new("df")
                .args(["--output=avail", "-B1"])
                .arg(&state),
        );
        out.stdout.lines().last().unwrap().trim().parse().unwrap()
    };
    let (mut signed, mut failed) = (0, 0);
    for free in [
        200_000u64, 100_000, 60_000, 40_000, 30_000, 24_000, 20_000, 16_000, 12_000, 8_000, 6_000,
        4_000, 2_000, 1_000, 0,
    ] {
        let _ = std::fs::remove_file(&balloon);
        run_ok(&mut Command::new("sync"));
        // Near zero, fallocate itself can run out of room for its own metadata: then the disk
        // is as full as it gets, which is what this level wants anyway.
        let size = avail().saturating_sub(free).max(1);
        run(Command::new("fallocate")
            .args(["-l", &size.to_string()])
            .arg(&balloon));
        for _ in 0..4 {
            let (status, body) = post_sign(&py, &a, &data);
            match status {
                201 => signed += 1,
                500 => {
                    failed += 1;
                    assert_eq!(body["code"], "internal", "{free} bytes free: {body}");
                    let detail = body["detail"].as_str().unwrap_or_default();
                    assert!(
                        detail.contains("No space left") || detail.contains("disk is full"),
                        "{free} bytes free: the cause must be named: {body}"
                    );
                }
                other => panic!("{free} bytes free: HTTP {other} {body} (want 201 or 500)"),
            }
        }
    }
    assert!(failed > 0, "the disk never filled ({signed} signed)");
    let _ = std::fs::remove_file(&balloon);
    assert_eq!(
        post_sign(&py, &a, &data).0,
        201,
        "signing after space is freed"
    );
    a.assert_alive();
    assert!(a.stop(), "clean stop");
}
