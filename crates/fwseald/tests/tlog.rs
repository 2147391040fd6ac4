//! The transparency log end to end (issue 13): real `fwseald` (SoftHSM2 dev token, SQLite),
//! the `fwseal` CLI, and two independent judges of every served proof — `fwseal_tlog::proof`
//! and `tests/verifiers/tlog.py` (written from `formats/log.md` alone).
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test tlog`.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const KEYS_JSON: &str = "appliance-keys.json";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// `GET path` as the `ci` client: (status, body text).
fn get(a: &Appliance, path: &str) -> (u16, String) {
    let mut r = agent()
        .get(&format!("{}{path}", a.url))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

fn get_json(a: &Appliance, path: &str) -> Value {
    let (st, body) = get(a, path);
    assert_eq!(st, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Save `GET /v1/appliance/keys` as `appliance-keys.json` (the `--log-key` file).
fn save_log_keys(a: &Appliance) {
    let (st, body) = get(a, "/v1/appliance/keys");
    assert_eq!(st, 200, "{body}");
    std::fs::write(a.path(KEYS_JSON), body).unwrap();
}

/// The appliance keys as the store's trust anchor.
fn trusted(a: &Appliance) -> fwseal_store::TrustedKeys {
    let pk: fwseal_api::ProductKeys =
        serde_json::from_slice(&std::fs::read(a.path(KEYS_JSON)).unwrap()).unwrap();
    let keys = pk
        .keys
        .iter()
        .map(|k| fwseal_crypto::PublicKey::from_spki_pem(k.alg, &k.spki_pem).unwrap())
        .collect();
    fwseal_store::TrustedKeys::new(keys)
}

fn max_seq(a: &Appliance) -> u64 {
    a.sql("select max(seq) from audit_log").parse().unwrap()
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

/// The Rust judge of a served inclusion proof (or bundle): the note is signed by the appliance
/// (both halves), names the proof's size, and the canonical encoding's leaf hash is included
/// under its root.
fn rust_inclusion(doc: &Value, keys: &fwseal_store::TrustedKeys) -> Result<(), String> {
    let note = doc["checkpoint"].as_str().ok_or("no checkpoint")?;
    let head = fwseal_store::tree::verify_tree_head(note, keys)?;
    let size = doc["tree_size"].as_u64().ok_or("no tree_size")?;
    if head.size != size {
        return Err(format!("note size {} != tree_size {size}", head.size));
    }
    let leaf = B64
        .decode(doc["canonical_encoding"].as_str().ok_or("no leaf")?)
        .map_err(|e| e.to_string())?;
    let proof = if doc.get("bundle_format").is_some() {
        hashes(&doc["inclusion_proof"])
    } else {
        hashes(&doc["proof"])
    };
    fwseal_tlog::verify_inclusion(
        &fwseal_tlog::leaf_hash(&leaf),
        doc["leaf_index"].as_u64().ok_or("no leaf_index")?,
        size,
        &proof,
        &head.root,
    )
    .map_err(|e| e.to_string())
}

/// `tlog.py --served…` on files in the appliance's dir: Some(accepted), None without python3
/// (unless judges are required).
fn py_served(a: &Appliance, args: &[&str]) -> Option<bool> {
    let Some(py) = tool("python3") else {
        assert!(!judges_required(), "python3 is required");
        return None;
    };
    let r = run(Command::new(py)
        .arg(py_verifier("tlog.py"))
        .args(args)
        .current_dir(a.dir.path()));
    assert!(
        matches!(r.code, Some(0) | Some(1)),
        "tlog.py could not judge {args:?}:\n{}",
        r.text()
    );
    Some(r.code == Some(0))
}

fn write_json(a: &Appliance, name: &str, v: &Value) {
    std::fs::write(a.path(name), serde_json::to_vec(v).unwrap()).unwrap();
}

/// Both judges on `doc` (written to `name`): accepted by both or refused by both.
fn both_judge_inclusion(
    a: &Appliance,
    keys: &fwseal_store::TrustedKeys,
    name: &str,
    doc: &Value,
) -> bool {
    write_json(a, name, doc);
    let rust = rust_inclusion(doc, keys);
    if let Some(py) = py_served(a, &["--served", name]) {
        assert_eq!(py, rust.is_ok(), "{name}: judges disagree (rust: {rust:?})");
    }
    rust.is_ok()
}

/// Flip one bit of a base64 32-byte hash.
fn flip(h: &str) -> String {
    let mut b = B64.decode(h).unwrap();
    b[0] ^= 1;
    B64.encode(b)
}

/// Replace the root line of a signed note (the signatures stay).
fn mutate_note_root(note: &str) -> String {
    let mut lines: Vec<String> = note.split('\n').map(String::from).collect();
    lines[2] = flip(&lines[2]);
    lines.join("\n")
}

#[test]
fn served_proofs_are_accepted_by_both_judges_and_mutations_fail() {
    let a = Appliance::start("", "");
    save_log_keys(&a);
    let keys = trusted(&a);
    for i in 0..3 {
        std::fs::write(a.path(&format!("fw{i}.bin")), format!("firmware {i}")).unwrap();
        a.sign_id(&["-p", "widget", &format!("fw{i}.bin")]);
    }
    let n = max_seq(&a);
    assert!(n >= 3, "{n} records");

    // Inclusion: first, middle and last record; the newest is newer than any tree head, so the
    // service signs one on demand.
    let mut judged = 0;
    for seq in [1, n / 2 + 1, n] {
        let doc = get_json(&a, &format!("/v1/log/inclusion?seq={seq}"));
        assert_eq!(doc["leaf_index"], seq - 1);
        assert_eq!(doc["record"]["seq"], seq);
        assert!(doc["tree_size"].as_u64().unwrap() >= seq);
        assert!(
            both_judge_inclusion(&a, &keys, "incl.json", &doc),
            "served proof of {seq} refused"
        );
        judged += 1;

        // Mutations: each must be refused by both judges.
        let mut bad = doc.clone();
        if let Some(p0) = bad["proof"].get(0).and_then(|h| h.as_str()).map(flip) {
            bad["proof"][0] = p0.into();
            assert!(!both_judge_inclusion(&a, &keys, "bad-proof.json", &bad));
        }
        let mut bad = doc.clone();
        let mut leaf = B64
            .decode(doc["canonical_encoding"].as_str().unwrap())
            .unwrap();
        let last = leaf.len() - 1;
        leaf[last] ^= 1;
        bad["canonical_encoding"] = B64.encode(leaf).into();
        assert!(!both_judge_inclusion(&a, &keys, "bad-leaf.json", &bad));
        let mut bad = doc.clone();
        bad["tree_size"] = (doc["tree_size"].as_u64().unwrap() + 1).into();
        assert!(!both_judge_inclusion(&a, &keys, "bad-size.json", &bad));
        let mut bad = doc.clone();
        bad["checkpoint"] = mutate_note_root(doc["checkpoint"].as_str().unwrap()).into();
        assert!(!both_judge_inclusion(&a, &keys, "bad-note.json", &bad));
    }
    assert_eq!(judged, 3);

    // The newest note is what GET /v1/log/checkpoint serves, byte for byte.
    let (st, old_note) = get(&a, "/v1/log/checkpoint");
    assert_eq!(st, 200);
    let old = fwseal_store::tree::verify_tree_head(&old_note, &keys).unwrap();
    std::fs::write(a.path("old.note"), &old_note).unwrap();

    // Grow the log, get a newer tree head (on demand, through an inclusion proof), and judge
    // the consistency proof between the two.
    std::fs::write(a.path("fw9.bin"), "firmware 9").unwrap();
    a.sign_id(&["-p", "widget", "fw9.bin"]);
    let n2 = max_seq(&a);
    let doc = get_json(&a, &format!("/v1/log/inclusion?seq={n2}"));
    let new_note = doc["checkpoint"].as_str().unwrap().to_string();
    let new = fwseal_store::tree::verify_tree_head(&new_note, &keys).unwrap();
    assert!(new.size > old.size, "{} !> {}", new.size, old.size);
    std::fs::write(a.path("new.note"), &new_note).unwrap();
    let cons = get_json(
        &a,
        &format!("/v1/log/consistency?old={}&new={}", old.size, new.size),
    );
    let rust = |c: &Value| {
        fwseal_tlog::verify_consistency(
            old.size,
            new.size,
            &old.root,
            &new.root,
            &hashes(&c["proof"]),
        )
    };
    rust(&cons).unwrap();
    write_json(&a, "cons.json", &cons);
    let args = ["--served-consistency", "cons.json", "old.note", "new.note"];
    assert_ne!(py_served(&a, &args), Some(false));
    let r = a.cli(&[
        "log",
        "verify-consistency",
        "old.note",
        "new.note",
        "--log-key",
        KEYS_JSON,
        "--proof",
        "cons.json",
    ]);
    assert!(r.ok(), "{}", r.text());

    let mut bad = cons.clone();
    bad["proof"][0] = flip(cons["proof"][0].as_str().unwrap()).into();
    assert!(rust(&bad).is_err());
    write_json(&a, "cons.json", &bad);
    assert_ne!(py_served(&a, &args), Some(true));
    let r = a.cli(&[
        "log",
        "verify-consistency",
        "old.note",
        "new.note",
        "--log-key",
        KEYS_JSON,
        "--proof",
        "cons.json",
    ]);
    assert_eq!(r.code, Some(1), "{}", r.text());

    // Out-of-range requests are the caller's error.
    let (st, _) = get(&a, &format!("/v1/log/inclusion?seq={}", n2 + 100));
    assert!((400..500).contains(&st), "{st}");
    let (st, _) = get(&a, "/v1/log/consistency?old=5&new=2");
    assert_eq!(st, 400);
    a.assert_alive();
}

/// `fwseal --json fetch ID -o DIR --bundle DIR/bundle.json` → (image path, bundle path), both
/// relative to the appliance dir.
fn fetch_bundle(a: &Appliance, id: &str, dir: &str) -> (String, String) {
    let bundle = format!("{dir}/bundle.json");
    let r = a.cli_ok(&["--json", "fetch", id, "-o", dir, "--bundle", &bundle]);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("fetch --json: {e}\n{}", r.text()));
    let image = v["image"].as_str().unwrap().to_string();
    (image, bundle)
}

fn verify_bundle(a: &Appliance, image: &str, bundle: &str, keys: &str, extra: &[&str]) -> Run {
    let mut args = vec!["verify", image, "--bundle", bundle, "--log-key", keys];
    args.extend_from_slice(extra);
    a.cli(&args)
}

#[test]
fn bundles_of_every_format_verify_offline_and_forgeries_fail() {
    let a = start_with_keys("", "");
    save_log_keys(&a);
    let keys = trusted(&a);
    let cases: [(&str, &str, bool); 7] = [
        ("widget", "raw/sample.bin", false),
        ("widget", "raw/sample.bin", true),
        ("widget", "mcuboot/unsigned-h200.img", false),
        ("widget", "hex/multi.hex", false),
        ("widget", "dfu/dfuse.dfu", false),
        ("widget", "dfu/dfu11.dfu", false),
        ("uefi", "efi/hello.efi", false),
    ];
    let mut verified = Vec::new();
    for (i, (product, fixture, detached)) in cases.iter().enumerate() {
        let input = a.put_fixture(fixture);
        let mut args = vec!["-p", *product];
        if *detached {
            args.push("--detached");
        }
        args.push(&input);
        let id = a.sign_id(&args);
        let dir = format!("out{i}");
        let (image, bundle) = fetch_bundle(&a, &id, &dir);
        let doc: Value = serde_json::from_slice(&std::fs::read(a.path(&bundle)).unwrap()).unwrap();
        assert_eq!(doc["bundle_format"], "fwseal-bundle/v1");
        assert_eq!(doc["artifact"], id.as_str());
        assert_eq!(doc["record"]["action"], "sign");
        assert_eq!(doc["timestamps"], serde_json::json!([]));
        assert!(
            both_judge_inclusion(&a, &keys, "bundle-judged.json", &doc),
            "{fixture}: bundle proof refused"
        );
        // Offline: the log inclusion alone, and together with the signature check.
        let r = verify_bundle(&a, &image, &bundle, KEYS_JSON, &[]);
        assert!(r.ok(), "{fixture}: {}", r.text());
        assert!(r.stdout.contains("OK log"), "{}", r.text());
        let (k1, k2) = if *product == "uefi" {
            (UEFI_CERT, UEFI_PQ)
        } else {
            (EC, PQ)
        };
        let mut extra = vec!["-k", k1, "-k", k2];
        extra.extend(provenance_args());
        let r = verify_bundle(&a, &image, &bundle, KEYS_JSON, &extra);
        assert!(r.ok(), "{fixture}: {}", r.text());
        verified.push((image, bundle, doc));
    }
    assert_eq!(verified.len(), cases.len());

    let (image0, bundle0, doc0) = &verified[0];
    // Another image with this bundle: the record does not name it.
    let (other_image, _, _) = &verified[2];
    let r = verify_bundle(&a, other_image, bundle0, KEYS_JSON, &[]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("sha256"), "{}", r.text());

    // A mutated inclusion proof / leaf index / note root.
    let forge = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut d = doc0.clone();
        f(&mut d);
        write_json(&a, name, &d);
        let r = verify_bundle(&a, image0, name, KEYS_JSON, &[]);
        assert_eq!(r.code, Some(1), "{name}: {}", r.text());
        assert!(r.stderr.contains("FAILED"), "{name}: {}", r.text());
    };
    if doc0["inclusion_proof"].get(0).is_some() {
        forge("bad-proof.json", &|d| {
            d["inclusion_proof"][0] = flip(d["inclusion_proof"][0].as_str().unwrap()).into()
        });
    }
    forge("bad-size.json", &|d| {
        d["tree_size"] = (d["tree_size"].as_u64().unwrap() + 1).into()
    });
    forge("bad-note.json", &|d| {
        d["checkpoint"] = mutate_note_root(d["checkpoint"].as_str().unwrap()).into()
    });

    // A note signed by another appliance's keys: trusting those keys (under this log's origin,
    // so the signature check is what refuses) fails, and so does this bundle's note against them.
    let b = Appliance::start("", "");
    save_log_keys(&b);
    std::fs::copy(b.path(KEYS_JSON), a.path("other-keys.json")).unwrap();
    let origin = doc0["checkpoint"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let r = verify_bundle(
        &a,
        image0,
        bundle0,
        "other-keys.json",
        &["--origin", &origin],
    );
    assert_eq!(r.code, Some(1), "{}", r.text());
    // And b's own tree head swapped into a's bundle is refused with a's keys.
    let (st, b_note) = get(&b, "/v1/log/checkpoint");
    assert_eq!(st, 200);
    forge("foreign-note.json", &|d| {
        d["checkpoint"] = b_note.clone().into()
    });
    a.assert_alive();
}

fn monitor(a: &Appliance) -> Run {
    a.cli(&[
        "log",
        "monitor",
        "--state",
        "monitor.note",
        "--log-key",
        KEYS_JSON,
    ])
}

/// Sign a fresh image and fetch its bundle: the service signs a tree head covering it.
fn sign_and_cover(a: &Appliance, name: &str) {
    std::fs::write(a.path(name), format!("firmware {name}")).unwrap();
    let id = a.sign_id(&["-p", "widget", name]);
    fetch_bundle(a, &id, &format!("{name}.out"));
}

/// The "Done when": a monitor that saw a tree head detects a rewrite of an old record
/// (a fork), and the store's own verification still detects it against the old checkpoints.
#[test]
fn monitor_detects_a_rewritten_log_and_verify_still_catches_it() {
    let mut a = Appliance::start("", "");
    save_log_keys(&a);
    let keys = trusted(&a);
    sign_and_cover(&a, "a.bin");
    sign_and_cover(&a, "b.bin");

    // First run records the newest tree head; a second run after growth checks consistency.
    let r = monitor(&a);
    assert!(r.ok(), "{}", r.text());
    assert!(r.stdout.contains("first run"), "{}", r.text());
    let first = std::fs::read_to_string(a.path("monitor.note")).unwrap();
    let first_head = fwseal_store::tree::verify_tree_head(&first, &keys).unwrap();
    assert!(first_head.size >= 3, "{}", first_head.size);
    sign_and_cover(&a, "c.bin");
    let r = monitor(&a);
    assert!(r.ok(), "{}", r.text());
    assert!(r.stdout.contains("consistent"), "{}", r.text());
    let seen = std::fs::read_to_string(a.path("monitor.note")).unwrap();
    let seen_head = fwseal_store::tree::verify_tree_head(&seen, &keys).unwrap();
    assert!(seen_head.size > first_head.size);

    // The attacker (root on the appliance) stops it and rewrites record 2 with its hash and the
    // chain after it recomputed, dropping the append-only triggers as crates/fwseal-store's
    // tests do. The Merkle tree rows are dropped too: the store rebuilds them from the
    // (rewritten) records on open, which is what an attacker recomputing them would write.
    assert!(a.stop(), "fwseald did not stop cleanly");
    let db = a.audit_db();
    // The shutdown checkpoint (the periodic checkpointer's path) signed a tree head too: every
    // checkpoint row carries a note.
    assert_eq!(
        a.sql("select count(*) from audit_checkpoints where note is null"),
        "0"
    );
    let shutdown_seq: u64 = a
        .sql("select max(seq) from audit_checkpoints")
        .parse()
        .unwrap();
    assert_eq!(shutdown_seq, max_seq(&a), "no checkpoint at shutdown");
    let recs = {
        let s = fwseal_store::SqliteStore::open_read_only(&db).unwrap();
        fwseal_store::AuditLog::records(&s, 1, 10_000).unwrap()
    };
    let mut sql = String::from(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_tree_no_delete; \
         DELETE FROM audit_tree;",
    );
    let mut prev = recs[0].hash;
    for r in &recs[1..] {
        let mut e = r.entry.clone();
        if r.seq == 2 {
            e.client = "mallory".into();
        }
        let h = fwseal_store::record::record_hash(r.seq, &prev, &e);
        sql.push_str(&format!(
            "UPDATE audit_log SET client = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {};",
            e.client.replace('\'', "''"),
            hex::encode(prev),
            hex::encode(h),
            r.seq
        ));
        prev = h;
    }
    sqlite(&db, &sql);
    assert_eq!(
        a.sql("select client from audit_log where seq = 2"),
        "mallory"
    );

    // Restarted, the appliance signs new tree heads with the same keys over the rewritten log.
    a.relaunch();
    sign_and_cover(&a, "d.bin");
    let (st, note) = get(&a, "/v1/log/checkpoint");
    assert_eq!(st, 200);
    let head = fwseal_store::tree::verify_tree_head(&note, &keys).unwrap();
    assert!(head.size > seen_head.size);

    let r = monitor(&a);
    assert_eq!(
        r.code,
        Some(1),
        "monitor accepted a rewritten log:\n{}",
        r.text()
    );
    assert!(r.stderr.contains("FORK"), "{}", r.text());
    assert!(r.stderr.contains("not consistent"), "{}", r.text());
    // The state file still holds the last good tree head.
    assert_eq!(
        std::fs::read_to_string(a.path("monitor.note")).unwrap(),
        seen
    );

    // The store's verification detects the rewrite against the checkpoints signed before it:
    // their v1 (seq, head) signatures and their tree heads no longer match the records.
    assert!(a.stop());
    let rep = fwseal_store::verify_db(&db, &keys).unwrap();
    assert!(!rep.is_ok(), "verify accepted the rewritten log");
    let kinds: Vec<_> = rep.problems.iter().map(|p| p.kind.clone()).collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, fwseal_store::ProblemKind::CheckpointHeadMismatch)),
        "{kinds:?}"
    );
    // (A checkpoint whose v1 head already mismatches is reported once, as that.) The tree
    // heads the monitor saw are not the roots of the rewritten log either.
    let s = fwseal_store::SqliteStore::open_read_only(&db).unwrap();
    for h in [&first_head, &seen_head] {
        let root = fwseal_store::AuditLog::tree_root(&s, h.size).unwrap();
        assert_ne!(root, h.root, "size {}", h.size);
    }
    // Every problem is at a checkpoint signed before the rewrite.
    assert!(
        rep.problems
            .iter()
            .all(|p| p.seq.is_some_and(|s| s <= seen_head.size + 10)),
        "{:?}",
        rep.problems
    );
}

const OTHER_TOKEN: &str = "secret-other";

fn get_as(a: &Appliance, token: Option<&str>, path: &str) -> u16 {
    let mut req = agent().get(&format!("{}{path}", a.url));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    req.call().unwrap().status().as_u16()
}

fn on_demand_checkpoints(a: &Appliance) -> u64 {
    a.sql("select count(*) from audit_log where action = 'checkpoint'")
        .parse()
        .unwrap()
}

/// On-demand tree heads: concurrent proof requests for a record newer than the newest tree
/// head share one signing, signings are at least `log_checkpoint_min_interval_ms` apart, and
/// who may read what follows docs/api.md.
#[test]
fn on_demand_tree_heads_are_coalesced_bounded_and_access_checked() {
    let other = format!(
        "[[client]]\nname = \"other\"\ntoken_sha256 = \"{}\"\nroles = {{ \"uefi\" = [\"factory\"] }}\n",
        sha256_hex(OTHER_TOKEN.as_bytes())
    );
    let a = Appliance::start("log_checkpoint_min_interval_ms = 1500", &other);
    save_log_keys(&a);
    let keys = trusted(&a);
    std::fs::write(a.path("x.bin"), "firmware x").unwrap();
    a.sign_id(&["-p", "widget", "x.bin"]);
    let seq = max_seq(&a);
    let before = on_demand_checkpoints(&a);

    let notes: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let doc = get_json(&a, &format!("/v1/log/inclusion?seq={seq}"));
                    doc["checkpoint"].as_str().unwrap().to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        on_demand_checkpoints(&a),
        before + 1,
        "8 concurrent callers must share one signing"
    );
    assert!(notes.iter().all(|n| n == &notes[0]), "different tree heads");
    let head = fwseal_store::tree::verify_tree_head(&notes[0], &keys).unwrap();
    assert!(head.size >= seq);
    let first_done = std::time::Instant::now();

    // A second on-demand signing waits out the rest of the interval.
    std::fs::write(a.path("y.bin"), "firmware y").unwrap();
    a.sign_id(&["-p", "widget", "y.bin"]);
    let seq2 = max_seq(&a);
    let doc = get_json(&a, &format!("/v1/log/inclusion?seq={seq2}"));
    assert!(
        first_done.elapsed() >= Duration::from_millis(1400),
        "two on-demand tree heads {:?} apart",
        first_done.elapsed()
    );
    assert_eq!(on_demand_checkpoints(&a), before + 2);
    let head2 =
        fwseal_store::tree::verify_tree_head(doc["checkpoint"].as_str().unwrap(), &keys).unwrap();
    assert!(head2.size >= seq2 && head2.size > head.size);
    // Covered now: no further signing.
    get_json(&a, &format!("/v1/log/inclusion?seq={seq2}"));
    assert_eq!(on_demand_checkpoints(&a), before + 2);

    // Access: no token → 401 everywhere; a client with a role on another product reads tree
    // heads and consistency proofs but not a widget record's inclusion proof.
    for p in [
        "/v1/log/checkpoint".to_string(),
        format!("/v1/log/inclusion?seq={seq}"),
        "/v1/log/consistency?old=1&new=2".to_string(),
    ] {
        assert_eq!(get_as(&a, None, &p), 401, "{p}");
    }
    assert_eq!(get_as(&a, Some(OTHER_TOKEN), "/v1/log/checkpoint"), 200);
    assert_eq!(
        get_as(&a, Some(OTHER_TOKEN), "/v1/log/consistency?old=1&new=2"),
        200
    );
    let st = get_as(
        &a,
        Some(OTHER_TOKEN),
        &format!("/v1/log/inclusion?seq={seq}"),
    );
    assert!(st == 403 || st == 404, "{st}");
    let denied: u64 = a
        .sql("select count(*) from audit_log where client = 'other' and decision = 'deny'")
        .parse()
        .unwrap();
    assert!(denied >= 1, "the refusal is audited");
}
