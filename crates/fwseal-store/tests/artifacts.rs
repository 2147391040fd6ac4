//! Content-addressed artifact files and the artifacts metadata table.

mod common;

use common::Db;
use fwseal_crypto::KeyId;
use fwseal_store::{
    new_artifact_id, ArtifactIndex, ArtifactMeta, ArtifactQuery, ArtifactStore, StoreError,
};
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
        dir.path()
            .join("artifacts/sha256")
            .join(&hexd[..2])
            .join(&hexd)
    );
    assert_eq!(st.path(&want), b.path);
    assert!(st.contains(&want));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut st.open(&want).expect("open").expect("some"), &mut got)
        .expect("read");
    assert_eq!(got, data);
    assert_eq!(st.check(&want).expect("check"), Some(true));
    assert!(std::fs::metadata(&b.path)
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
    let mut p = std::fs::metadata(&b.path).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    p.set_readonly(false);
    std::fs::set_permissions(&b.path, p).expect("chmod");
    std::fs::write(&b.path, b"bad").expect("damage");
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

#[test]
fn artifact_index_queries() {
    let db = Db::new();
    let s = db.open();
    let id = new_artifact_id().expect("id");
    assert_eq!(id.len(), 32);
    assert_ne!(id, new_artifact_id().expect("id"));
    let a = meta(&id, "widget", Some("1.0.0"), 1, "2026-05-01T10:00:00Z");
    let b = meta("b", "widget", Some("1.1.0"), 2, "2026-05-01T10:00:00.5Z");
    let c = meta("c", "widget", Some("1.1.0"), 3, "2026-05-02T00:00:00Z");
    let d = meta("d", "gadget", Some("1.1.0"), 4, "2026-05-03T00:00:00Z");
    for m in [&a, &b, &c, &d] {
        s.put_artifact(m).expect("put");
    }
    assert!(s.put_artifact(&a).is_err(), "duplicate id");
    assert_eq!(s.artifact(&id).expect("get"), Some(a.clone()));
    assert_eq!(s.artifact("nope").expect("get"), None);

    let ids = |q: ArtifactQuery| -> Vec<String> {
        s.list_artifacts("widget", &q)
            .expect("list")
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    // Newest first (sub-second ordering uses the normalised key, not string order).
    assert_eq!(ids(ArtifactQuery::default()), vec!["c", "b", id.as_str()]);
    assert_eq!(
        ids(ArtifactQuery {
            version: Some("1.1.0".into()),
            ..Default::default()
        }),
        vec!["c", "b"]
    );
    for digest in [[2u8; 32], [2 ^ 0xFF; 32], [2 ^ 0x0F; 32]] {
        assert_eq!(
            ids(ArtifactQuery {
                digest: Some(digest),
                ..Default::default()
            }),
            vec!["b"]
        );
    }
    assert_eq!(
        ids(ArtifactQuery {
            since: Some("2026-05-01T10:00:00.1Z".into()),
            until: Some("2026-05-02T00:00:00Z".into()),
            ..Default::default()
        }),
        vec!["b"]
    );
    assert_eq!(
        ids(ArtifactQuery {
            limit: Some(1),
            ..Default::default()
        }),
        vec!["c"]
    );
    // Another product's artifact is invisible from this one.
    assert!(ids(ArtifactQuery {
        digest: Some([4; 32]),
        ..Default::default()
    })
    .is_empty());
    assert!(matches!(
        s.list_artifacts(
            "widget",
            &ArtifactQuery {
                since: Some("last tuesday".into()),
                ..Default::default()
            }
        ),
        Err(StoreError::Misuse(_))
    ));
    for bad in [
        meta("", "widget", None, 9, "2026-05-01T10:00:00Z"),
        meta("../x", "widget", None, 9, "2026-05-01T10:00:00Z"),
        meta("e", "widget", None, 9, "2026-05-01T10:00:00+01:00"),
    ] {
        assert!(matches!(s.put_artifact(&bad), Err(StoreError::Misuse(_))));
    }
    drop(s);
    // Durable across reopen.
    let s = db.open();
    assert_eq!(s.artifact("c").expect("get"), Some(c));
}

#[test]
fn concurrent_commits_group_into_one_chain_with_their_artifacts() {
    use fwseal_store::AuditLog;
    let db = Db::new();
    let s = std::sync::Arc::new(db.open());
    const THREADS: u64 = 12;
    const EACH: u64 = 40;
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0..EACH {
                    let n = t * EACH + i;
                    let mut e = common::entry(n + 1);
                    e.client = format!("client-{t}");
                    let m = meta(
                        &format!("a{n}"),
                        "widget",
                        None,
                        n as u8,
                        "2026-05-01T10:00:00Z",
                    );
                    let rec = s.commit(&e, Some(&m)).expect("commit");
                    assert_eq!(rec.entry, e, "each caller gets its own record back");
                }
            });
        }
    });
    let recs = s.records(1, 10_000).expect("records");
    assert_eq!(recs.len() as u64, THREADS * EACH);
    for w in recs.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash, "one chain");
    }
    // Per client, records keep their submission order.
    for t in 0..THREADS {
        let mine: Vec<_> = recs
            .iter()
            .filter(|r| r.entry.client == format!("client-{t}"))
            .map(|r| r.entry.time.clone())
            .collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine.len() as u64, EACH);
        assert_eq!(mine, sorted);
    }
    for n in [0, THREADS * EACH - 1] {
        assert!(s.artifact(&format!("a{n}")).expect("artifact").is_some());
    }
    // A failing write (duplicate artifact id) writes neither its record nor its row.
    let before = s.records(1, 10_000).expect("records").len();
    let dup = meta("a0", "widget", None, 0, "2026-05-01T10:00:00Z");
    assert!(s.commit(&common::entry(9999), Some(&dup)).is_err());
    assert_eq!(s.records(1, 10_000).expect("records").len(), before);
    let keys = common::Keys::new();
    s.checkpoint(&keys.ecdsa, &keys.mldsa).expect("checkpoint");
    let rep = fwseal_store::verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep.is_ok(), "{:?}", rep.problems);
}
