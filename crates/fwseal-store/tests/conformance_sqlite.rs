//! The backend conformance suite (`fwseal_store::conformance`) against the SQLite store (a
//! fresh database file per case) and the filesystem blob store (a fresh directory per case).
//! Every case runs; a failure lists every failing case by name.

use fwseal_store::conformance::{self, CaseResult};
use fwseal_store::{BlobStore, FsBlobStore, SqliteStore, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn report(what: &str, results: &[CaseResult]) {
    for r in results {
        let status = if r.outcome.is_ok() { "ok" } else { "FAILED" };
        println!("{what} conformance: {} ... {status}", r.name);
    }
    match conformance::check(results) {
        Ok(n) => println!("{what} conformance: all {n} cases passed"),
        Err(e) => panic!("{what}: {e}"),
    }
}

#[test]
fn sqlite_store_passes_the_store_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    let make = || -> Arc<dyn Store> {
        let i = n.fetch_add(1, Ordering::Relaxed);
        Arc::new(SqliteStore::open(dir.path().join(format!("case{i}.db"))).expect("open"))
    };
    let results = conformance::store_suite(&make);
    assert_eq!(results.len(), conformance::store_cases().len());
    assert_eq!(
        n.load(Ordering::Relaxed),
        results.len(),
        "one fresh store per case"
    );
    report("SqliteStore", &results);
}

#[test]
fn fs_blob_store_passes_the_blob_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    let make = || -> Arc<dyn BlobStore> {
        let i = n.fetch_add(1, Ordering::Relaxed);
        Arc::new(FsBlobStore::new(dir.path().join(format!("case{i}"))).expect("open"))
    };
    let results = conformance::blob_suite(&make, &conformance::corrupt_local_file);
    assert_eq!(results.len(), conformance::blob_cases().len());
    report("FsBlobStore", &results);
}

/// The harness itself: a failing or panicking case is reported by name, and the others still
/// run.
#[test]
fn failing_cases_are_listed_by_name() {
    struct Broken;
    impl BlobStore for Broken {
        fn writer(&self) -> Result<Box<dyn fwseal_store::BlobWriter>, fwseal_store::StoreError> {
            Err(fwseal_store::StoreError::Misuse("no writes here".into()))
        }
        fn open(
            &self,
            _: &fwseal_store::Hash32,
        ) -> Result<Option<fwseal_store::Blob>, fwseal_store::StoreError> {
            panic!("open is broken")
        }
        fn check(
            &self,
            _: &fwseal_store::Hash32,
        ) -> Result<Option<bool>, fwseal_store::StoreError> {
            Ok(None)
        }
        fn sync_staged(&self) -> Result<(), fwseal_store::StoreError> {
            Ok(())
        }
        fn recover(
            &self,
            _: &dyn Fn(&fwseal_store::Hash32) -> bool,
            _: fwseal_store::Sweep,
        ) -> Result<fwseal_store::Recovery, fwseal_store::StoreError> {
            Ok(Default::default())
        }
    }
    let results = conformance::blob_suite(&|| Arc::new(Broken), &conformance::corrupt_local_file);
    assert_eq!(results.len(), conformance::blob_cases().len());
    assert!(results.iter().all(|r| r.outcome.is_err()));
    let e = conformance::check(&results).expect_err("all fail");
    for (name, _) in conformance::blob_cases() {
        assert!(e.contains(name), "{name} missing from:\n{e}");
    }
    assert!(e.contains("panicked: open is broken"), "{e}");
    assert!(e.contains("no writes here"), "{e}");
}

fn sha256(data: &[u8]) -> fwseal_store::Hash32 {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// A publish that fails (its shard directory cannot be created: the name is taken by a file)
/// leaves the blob staged, and `recover` publishes it once the cause is gone.
#[test]
fn fs_failed_publish_leaves_the_blob_staged_for_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::new(dir.path()).expect("open");
    let data = b"signed, recorded, not yet published";
    let sha = sha256(data);
    let shard = dir.path().join("sha256").join(hex::encode(&sha[..1]));
    std::fs::write(&shard, b"in the way").expect("block the shard");
    let staged = BlobStore::stage(&store, data).expect("stage");
    store.sync_staged().expect("sync");
    assert!(staged.publish().is_err(), "publish into a file succeeded");
    assert!(!FsBlobStore::contains(&store, &sha));
    assert_eq!(
        std::fs::read_dir(dir.path().join("staged"))
            .expect("staged dir")
            .count(),
        1,
        "the failed publish deleted the staged blob"
    );
    std::fs::remove_file(&shard).expect("unblock");
    let r = FsBlobStore::recover(&store, &|h| *h == sha, fwseal_store::Sweep::Quarantine)
        .expect("recover");
    assert_eq!(r.published, vec![sha]);
    assert_eq!(std::fs::read(store.path(&sha)).expect("published"), data);
}

/// Swept blobs are moved, not deleted: into `<root>/.swept/<time>-<random>/<hex>`, which the
/// recovery names.
#[test]
fn fs_sweep_moves_blobs_into_the_named_quarantine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::new(dir.path()).expect("open");
    let orphan = b"unreferenced signed image";
    let sha = FsBlobStore::put(&store, orphan).expect("put").sha256;
    let r =
        FsBlobStore::recover(&store, &|_| false, fwseal_store::Sweep::Quarantine).expect("recover");
    assert_eq!(r.swept, vec![sha]);
    let q = std::path::PathBuf::from(r.quarantine.expect("quarantine named"));
    assert_eq!(q.parent(), Some(dir.path().join(".swept").as_path()));
    assert_eq!(
        std::fs::read(q.join(hex::encode(sha))).expect("kept"),
        orphan
    );
    assert!(!FsBlobStore::contains(&store, &sha));
}
