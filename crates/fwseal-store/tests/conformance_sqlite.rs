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
