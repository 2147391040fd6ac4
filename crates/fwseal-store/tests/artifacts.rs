//! Content-addressed artifact files and the artifacts metadata table.

mod common;

use common::Db;
use fwseal_crypto::KeyId;
use fwseal_store::{ArtifactIndex, ArtifactMeta, ArtifactStore, BlobStore};
use sha2::{Digest, Sha256};
use std::path::Path;

fn files_under(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).expect("read_dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn put_open_path_layout() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = ArtifactStore::new(dir.path().join("artifacts")).expect("store");
    let data = b"firmware image bytes".repeat(1000);
    let b = st.put(&data).expect("put");
    let want: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(b.sha256, want);
    assert_eq!(b.size, data.len() as u64);
    assert!(!b.existed);
    let hexd = hex::encode(want);
    assert_eq!(
        b.path,
        Some(
            dir.path()
                .join("artifacts/sha256")
                .join(&hexd[..2])
                .join(&hexd)
        )
    );
    assert_eq!(Some(st.path(&want)), b.path);
    assert_eq!(BlobStore::local_path(&st, &want), b.path);
    let path = b.path.clone().expect("a file-backed blob has a path");
    assert!(st.contains(&want));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut st.open(&want).expect("open").expect("some"), &mut got)
        .expect("read");
    assert_eq!(got, data);
    assert_eq!(st.check(&want).expect("check"), Some(true));
    assert!(std::fs::metadata(&path)
        .expect("meta")
        .permissions()
        .readonly());
    assert!(st.open(&[0u8; 32]).expect("open").is_none());
    assert_eq!(st.check(&[0u8; 32]).expect("check"), None);
}

#[test]
fn streaming_writer_matches_one_shot_and_put_is_idempotent() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = ArtifactStore::new(dir.path()).expect("store");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = st.writer().expect("writer");
    for c in data.chunks(4093) {
        w.write(c).expect("write");
    }
    assert_eq!(w.size(), data.len() as u64);
    let a = w.finish().expect("finish");
    let b = st.put(&data).expect("put again");
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(a.path, b.path);
    assert!(!a.existed);
    assert!(b.existed);
    // One blob, nothing left in tmp.
    assert_eq!(files_under(&dir.path().join("sha256")).len(), 1);
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    // std::io::Write works too.
    let mut w = st.writer().expect("writer");
    std::io::Write::write_all(&mut w, b"abc").expect("write");
    let c = w.finish().expect("finish");
    assert_eq!(c.sha256, <[u8; 32]>::from(Sha256::digest(b"abc")));
}

#[test]
fn writer_dropped_midway_leaves_nothing_visible() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = ArtifactStore::new(dir.path()).expect("store");
    let data = vec![0x5Au8; 100_000];
    let final_sha: [u8; 32] = Sha256::digest(&data).into();
    {
        let mut w = st.writer().expect("writer");
        w.write(&data[..50_000]).expect("write");
        // In flight: the partial content exists only in tmp/.
        assert_eq!(files_under(&dir.path().join("tmp")).len(), 1);
        assert!(files_under(&dir.path().join("sha256")).is_empty());
        // (dropped here, as when a request is cancelled)
    }
    assert!(!st.contains(&final_sha));
    assert!(files_under(&dir.path().join("sha256")).is_empty());
    assert!(files_under(&dir.path().join("tmp")).is_empty());
}

#[test]
fn crash_leftovers_are_cleaned_on_startup() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = ArtifactStore::new(dir.path()).expect("store");
    let mut w = st.writer().expect("writer");
    w.write(b"half of an image").expect("write");
    // A crash: the writer never runs its destructor.
    std::mem::forget(w);
    assert_eq!(files_under(&dir.path().join("tmp")).len(), 1);
    assert!(files_under(&dir.path().join("sha256")).is_empty());
    // Restart.
    let st2 = ArtifactStore::new(dir.path()).expect("reopen");
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    assert!(files_under(&dir.path().join("sha256")).is_empty());
    // And it still works.
    st2.put(b"whole image").expect("put");
}

#[test]
fn damaged_blob_is_detected_and_replaced_by_a_new_put() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = ArtifactStore::new(dir.path()).expect("store");
    let b = st.put(b"good content").expect("put");
    let path = b.path.clone().expect("a file-backed blob has a path");
    let mut p = std::fs::metadata(&path).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    p.set_readonly(false);
    std::fs::set_permissions(&path, p).expect("chmod");
    std::fs::write(&path, b"bad").expect("damage");
    assert_eq!(st.check(&b.sha256).expect("check"), Some(false));
    let again = st.put(b"good content").expect("put");
    assert!(!again.existed, "a wrong-size file is replaced");
    assert_eq!(st.check(&b.sha256).expect("check"), Some(true));
}

fn meta(id: &str, product: &str, version: Option<&str>, n: u8, created: &str) -> ArtifactMeta {
    ArtifactMeta {
        id: id.into(),
        product: product.into(),
        format: "raw".into(),
        mode: "embedded".into(),
        name: Some(format!("{id}.bin")),
        version: version.map(Into::into),
        input_sha256: [n; 32],
        output_sha256: [n ^ 0xFF; 32],
        detached_sha256: None,
        provenance_sha256: Some([n ^ 0x0F; 32]),
        key_ids: vec![KeyId([1; 32]), KeyId([2; 32])],
        client: Some("ci".into()),
        created: created.into(),
    }
}

// The artifact index's queries, duplicate refusal and validation, and concurrent group
// commits with their artifacts, are conformance cases (`fwseal_store::conformance`,
// `artifacts_*` and `audit_concurrent_commits_form_one_chain`), run against SQLite by
// `tests/conformance_sqlite.rs`. What is SQLite's own stays here.

#[test]
fn artifact_index_is_durable_across_reopen() {
    let db = Db::new();
    let s = db.open();
    let a = meta("a", "widget", Some("1.0.0"), 1, "2026-05-01T10:00:00Z");
    let b = meta("b", "widget", Some("1.1.0"), 2, "2026-05-01T10:00:00.5Z");
    let c = meta("c", "widget", Some("1.1.0"), 3, "2026-05-02T00:00:00Z");
    let d = meta("d", "gadget", Some("1.1.0"), 4, "2026-05-03T00:00:00Z");
    for m in [&a, &b, &c, &d] {
        s.put_artifact(m).expect("put");
    }
    drop(s);
    // Durable across reopen.
    let s = db.open();
    assert_eq!(s.artifact("c").expect("get"), Some(c));
    assert_eq!(
        s.list_artifacts("widget", &Default::default())
            .expect("list")
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec!["c", "b", "a"]
    );
}

#[test]
fn group_committed_artifacts_verify_with_verify_db() {
    use fwseal_store::AuditLog;
    let db = Db::new();
    let s = std::sync::Arc::new(db.open());
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0..10 {
                    let n = t * 10 + i;
                    let m = meta(
                        &format!("a{n}"),
                        "widget",
                        None,
                        n as u8,
                        "2026-05-01T10:00:00Z",
                    );
                    s.commit(&common::entry(n + 1), Some(&m)).expect("commit");
                }
            });
        }
    });
    let keys = common::Keys::new();
    s.checkpoint(&keys.ecdsa, &keys.mldsa).expect("checkpoint");
    drop(s);
    let rep = fwseal_store::verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.records, 40);
    assert_eq!(rep.last_good_checkpoint, Some(40));
    let s = db.open();
    for n in 0..40 {
        assert!(s.artifact(&format!("a{n}")).expect("artifact").is_some());
    }
}
