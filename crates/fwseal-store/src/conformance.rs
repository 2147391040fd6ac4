//! The backend conformance suite (feature `conformance`): every behaviour the server relies on,
//! written against the traits only, so that each backend runs the same cases unchanged.
//!
//! - [`store_suite`] runs every [`store_cases`] case against a fresh [`Store`] from `make`
//!   (one per case): the audit chain and its group commit, checkpoints, export and verification,
//!   the artifact index and the job queue.
//! - [`blob_suite`] runs every [`blob_cases`] case against a fresh [`BlobStore`]; `corrupt`
//!   damages a stored blob behind the store's back (for file-backed stores:
//!   [`corrupt_local_file`]).
//! - [`check`] turns the results into one error that names every failing case.
//!
//! A backend's test (SQLite: `tests/conformance_sqlite.rs`) is a few lines:
//!
//! ```no_run
//! use fwseal_store::{conformance, SqliteStore, Store};
//! use std::sync::{atomic::{AtomicUsize, Ordering}, Arc};
//! let dir = tempfile::tempdir().unwrap();
//! let n = AtomicUsize::new(0);
//! let make = || -> Arc<dyn Store> {
//!     let i = n.fetch_add(1, Ordering::Relaxed);
//!     Arc::new(SqliteStore::open(dir.path().join(format!("{i}.db"))).unwrap())
//! };
//! let results = conformance::store_suite(&make);
//! if let Err(e) = conformance::check(&results) {
//!     panic!("{e}");
//! }
//! ```
//!
//! Cases never `unwrap`: each returns `Err` with the failing line and values, and a case that
//! panics (in the backend) is caught and reported as failed, so one run lists every failure.
// `is_multiple_of` is newer than the workspace MSRV (1.85).
#![allow(clippy::manual_is_multiple_of)]

use crate::export::{line_json, ExportLine, RecordLine};
use crate::jobs::INTERRUPTED_REASON;
use crate::meta::MAX_LIST;
use crate::record::record_hash;
use crate::{
    new_artifact_id, verify_export, Action, ApproveOutcome, ArtifactMeta, ArtifactQuery,
    AuditEntry, BlobStore, Checkpoint, CurrentPolicy, Decision, Hash32, Job, JobRefusal, JobState,
    NewJob, OidcSubject, Principal, ProblemKind, Report, Store, StoreError, Sweep, TrustedKeys,
    GENESIS_PREV_HASH,
};
use fwseal_crypto::soft::SoftKey;
use fwseal_crypto::{KeyId, SigAlg, Signer};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// What a case returns: `Err` says what failed, and where.
pub type CaseOutcome = Result<(), String>;

/// One [`Store`] case.
pub type StoreCase = fn(&dyn Store) -> CaseOutcome;

/// Damages the stored content of a blob (`sha256`) so that it reads back as `bytes`, bypassing
/// the store; the blob cases use it to check that corruption is detected.
pub type Corrupter<'a> = dyn Fn(&dyn BlobStore, &Hash32, &[u8]) -> CaseOutcome + 'a;

/// One [`BlobStore`] case.
pub type BlobCase = fn(&dyn BlobStore, &Corrupter<'_>) -> CaseOutcome;

/// The result of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name (stable: backends' test output and bug reports use it).
    pub name: &'static str,
    /// `Ok` if it passed.
    pub outcome: CaseOutcome,
}

/// Fail the case unless `cond` holds.
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        if !$cond {
            return Err(format!("line {}: ensure!({}) failed", line!(), stringify!($cond)));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("line {}: {}", line!(), format!($($fmt)+)));
        }
    };
}

/// Fail the case unless `a == b`, showing both.
macro_rules! ensure_eq {
    ($a:expr, $b:expr $(,)?) => {
        ensure_eq!($a, $b, "{} == {}", stringify!($a), stringify!($b))
    };
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (left, right) = (&$a, &$b);
        if left != right {
            return Err(format!(
                "line {}: {}\n    left: {:?}\n   right: {:?}",
                line!(),
                format!($($fmt)+),
                left,
                right
            ));
        }
    }};
}

/// `?` with a label: turns a `Result` error or a `None` into the case's error.
trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    #[track_caller]
    fn ctx(self, what: &str) -> Result<T, String> {
        let at = std::panic::Location::caller().line();
        self.map_err(|e| format!("line {at}: {what}: {e}"))
    }
}

impl<T> Ctx<T> for Option<T> {
    #[track_caller]
    fn ctx(self, what: &str) -> Result<T, String> {
        let at = std::panic::Location::caller().line();
        self.ok_or_else(|| format!("line {at}: {what}: got None"))
    }
}

fn run(name: &'static str, f: impl FnOnce() -> CaseOutcome) -> CaseResult {
    let outcome = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic payload".into());
            Err(format!("panicked: {msg}"))
        }
    };
    CaseResult { name, outcome }
}

/// Run every [`store_cases`] case, each against a fresh, empty store from `make`.
pub fn store_suite(make: &dyn Fn() -> Arc<dyn Store>) -> Vec<CaseResult> {
    store_cases()
        .into_iter()
        .map(|(name, case)| {
            run(name, || {
                let store = make();
                case(&*store)
            })
        })
        .collect()
}

/// Run every [`blob_cases`] case, each against a fresh, empty blob store from `make`.
pub fn blob_suite(
    make: &dyn Fn() -> Arc<dyn BlobStore>,
    corrupt: &Corrupter<'_>,
) -> Vec<CaseResult> {
    blob_cases()
        .into_iter()
        .map(|(name, case)| {
            run(name, || {
                let store = make();
                case(&*store, corrupt)
            })
        })
        .collect()
}

/// `Ok(number of cases)` if every case passed; otherwise an error naming every failing case
/// with its message.
pub fn check(results: &[CaseResult]) -> Result<usize, String> {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|e| format!("  {}: {}", r.name, e.replace('\n', "\n    ")))
        })
        .collect();
    if failed.is_empty() {
        Ok(results.len())
    } else {
        Err(format!(
            "{} of {} conformance cases failed:\n{}",
            failed.len(),
            results.len(),
            failed.join("\n")
        ))
    }
}

/// A [`Corrupter`] for backends whose blobs are plain files ([`BlobStore::local_path`]): makes
/// the file writable and overwrites it with `bytes`.
pub fn corrupt_local_file(store: &dyn BlobStore, sha256: &Hash32, bytes: &[u8]) -> CaseOutcome {
    let path = store
        .local_path(sha256)
        .ctx("corrupt_local_file needs a blob with a local path")?;
    let mut perms = std::fs::metadata(&path).ctx("metadata")?.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).ctx("chmod")?;
    std::fs::write(&path, bytes).ctx("overwrite")
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Software provenance keys (ECDSA P-256 + ML-DSA-65) for signing checkpoints in tests.
pub struct TestKeys {
    /// The classical half.
    pub ecdsa: SoftKey,
    /// The post-quantum half.
    pub mldsa: SoftKey,
}

impl TestKeys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self, String> {
        Ok(TestKeys {
            ecdsa: SoftKey::generate(SigAlg::EcdsaP256Sha256).ctx("generate P-256 key")?,
            mldsa: SoftKey::generate(SigAlg::MlDsa65).ctx("generate ML-DSA-65 key")?,
        })
    }

    /// Both public keys, hybrid required.
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::new(vec![
            self.ecdsa.public_key().clone(),
            self.mldsa.public_key().clone(),
        ])
    }
}

/// The i-th sample entry: varied actions, optional fields present or not, non-ASCII `extra`.
pub fn sample_entry(i: u64) -> AuditEntry {
    let action = match i % 4 {
        0 => Action::Fetch,
        1 => Action::Sign,
        2 => Action::Denied,
        _ => Action::KeyRotate,
    };
    let decision = if i % 4 == 2 {
        Decision::Deny
    } else {
        Decision::Allow
    };
    let mut e = AuditEntry::new(
        format!(
            "2026-05-01T12:{:02}:{:02}.{:03}Z",
            (i / 60) % 60,
            i % 60,
            i % 1000
        ),
        format!("client-{}", i % 3),
        action,
        decision,
    );
    if i % 2 == 1 {
        e.product = Some("widget".into());
        e.key_ids = vec![KeyId([i as u8; 32]), KeyId([0xAB; 32])];
        e.input_sha256 = Some([i as u8 ^ 0x55; 32]);
        e.output_sha256 = Some([i as u8 ^ 0xAA; 32]);
        e.format = Some("raw".into());
        e.mode = Some(if i % 3 == 0 { "detached" } else { "embedded" }.into());
    }
    if i % 5 == 0 {
        e.cert_sha256 = Some([0x42; 32]);
    }
    if decision == Decision::Deny {
        e.reason = Some("client lacks role submitter".into());
    }
    if i % 3 == 0 {
        e = e.with_extra(&serde_json::json!({"n": i, "note": "ünïcode ✓"}));
    }
    e
}

/// A sample artifact row; `n` varies the digests (input `[n; 32]`, output `[n ^ 0xFF; 32]`,
/// provenance `[n ^ 0x0F; 32]`).
pub fn sample_artifact(
    id: &str,
    product: &str,
    version: Option<&str>,
    n: u8,
    created: &str,
) -> ArtifactMeta {
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

/// A sample job of product `widget` requested by `ci`, digest `[1, 2, 3]`.
pub fn sample_job(id: &str, required: u32, expires_unix: i64) -> NewJob {
    NewJob {
        id: id.into(),
        product: "widget".into(),
        format: "raw".into(),
        mode: "embedded".into(),
        name: "a.bin".into(),
        version: None,
        input_sha256: [7; 32],
        input_len: 10,
        digest_alg: "sha256".into(),
        digest: vec![1, 2, 3],
        requester: "ci".into(),
        requester_oidc: None,
        verified: None,
        params: serde_json::json!({"commit": "abc"}),
        key_version: Some(1),
        required,
        of_role: "approver".into(),
        created: "2026-05-01T12:00:00Z".into(),
        expires: "2026-05-01T13:00:00Z".into(),
        expires_unix,
    }
}

/// Append sample entries `from..=to`, checking each gets its seq.
fn fill(s: &dyn Store, from: u64, to: u64) -> CaseOutcome {
    for i in from..=to {
        let r = s.append(&sample_entry(i)).ctx("append")?;
        ensure_eq!(r.seq, i, "append of entry {i}");
    }
    Ok(())
}

/// 10 records, checkpoints after 5 and after 10.
fn setup(s: &dyn Store, keys: &TestKeys) -> CaseOutcome {
    fill(s, 1, 5)?;
    let cp = s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    ensure_eq!(cp.seq, 5);
    fill(s, 6, 10)?;
    s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    Ok(())
}

fn kinds_at(r: &Report, seq: u64) -> Vec<ProblemKind> {
    r.problems
        .iter()
        .filter(|p| p.seq == Some(seq))
        .map(|p| p.kind.clone())
        .collect()
}

fn sha256(data: &[u8]) -> Hash32 {
    Sha256::digest(data).into()
}

// ---------------------------------------------------------------------------------------------
// Store cases
// ---------------------------------------------------------------------------------------------

/// Every store case, by name, in the order [`store_suite`] runs them.
pub fn store_cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("audit_empty_log", audit_empty_log),
        (
            "audit_seq0_checkpoint_on_empty_log",
            audit_seq0_checkpoint_on_empty_log,
        ),
        (
            "audit_append_assigns_consecutive_seqs_and_chains",
            audit_append_chains,
        ),
        (
            "audit_commit_returns_and_indexes",
            audit_commit_returns_and_indexes,
        ),
        (
            "audit_failing_commit_writes_nothing",
            audit_failing_commit_writes_nothing,
        ),
        (
            "audit_invalid_entries_are_refused",
            audit_invalid_entries_are_refused,
        ),
        (
            "audit_concurrent_commits_form_one_chain",
            audit_concurrent_commits_form_one_chain,
        ),
        (
            "audit_head_records_scan_export_verify_agree",
            audit_views_agree,
        ),
        (
            "checkpoints_store_list_latest_verify",
            checkpoints_store_list_latest_verify,
        ),
        (
            "checkpoints_forged_and_altered_are_detected",
            checkpoints_forged_are_detected,
        ),
        (
            "checkpoints_hybrid_requirement_can_be_relaxed",
            checkpoints_hybrid_can_be_relaxed,
        ),
        (
            "artifacts_put_get_list_filters",
            artifacts_put_get_list_filters,
        ),
        (
            "artifacts_duplicate_id_is_refused",
            artifacts_duplicate_id_is_refused,
        ),
        (
            "artifacts_order_limit_and_time_bounds",
            artifacts_order_limit_and_time_bounds,
        ),
        (
            "blob_references_of_artifacts_and_jobs",
            blob_references_of_artifacts_and_jobs,
        ),
        ("jobs_create_get_list", jobs_create_get_list),
        (
            "jobs_quorum_is_reached_once_by_distinct_approvers",
            jobs_quorum_once,
        ),
        (
            "jobs_expiry_rejection_and_unknown_jobs_are_refused",
            jobs_expiry_rejection_unknown,
        ),
        (
            "jobs_tightened_policy_raises_the_quorum",
            jobs_tightened_policy,
        ),
        (
            "jobs_only_approvers_who_count_now_reach_the_quorum",
            jobs_revoked_approver,
        ),
        (
            "jobs_oidc_identities_are_issuer_and_subject",
            jobs_oidc_identities,
        ),
        (
            "jobs_racing_approvals_reach_the_quorum_once",
            jobs_racing_approvals,
        ),
        (
            "jobs_finish_and_fail_only_from_signing",
            jobs_finish_and_fail,
        ),
        ("jobs_fail_interrupted", jobs_fail_interrupted),
        (
            "tree_roots_and_proofs_match_the_records",
            tree_roots_and_proofs_match_the_records,
        ),
        (
            "tree_heads_are_signed_with_every_checkpoint",
            tree_heads_are_signed_with_every_checkpoint,
        ),
        (
            "artifact_record_is_the_record_committed_with_it",
            artifact_record_is_the_record_committed_with_it,
        ),
        (
            "tree_heads_forged_or_mismatched_are_detected",
            tree_heads_forged_or_mismatched_are_detected,
        ),
    ]
}

fn audit_empty_log(s: &dyn Store) -> CaseOutcome {
    ensure_eq!(s.head().ctx("head")?, None);
    ensure!(s.records(1, 100).ctx("records")?.is_empty());
    let mut rows = 0;
    s.scan(&mut |_| {
        rows += 1;
        true
    })
    .ctx("scan")?;
    ensure_eq!(rows, 0);
    ensure!(s.checkpoints().ctx("checkpoints")?.is_empty());
    ensure_eq!(s.latest_checkpoint().ctx("latest_checkpoint")?, None);
    let mut out = Vec::new();
    ensure_eq!(s.export(&mut out).ctx("export")?, 0);
    ensure_eq!(
        String::from_utf8_lossy(&out),
        "{\"type\":\"header\",\"format\":\"fwseal-audit-export\",\"version\":1}\n"
    );
    let rep = s.verify(&TrustedKeys::new(vec![])).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!((rep.records, rep.head, rep.checkpoints), (0, None, 0));
    Ok(())
}

fn audit_seq0_checkpoint_on_empty_log(s: &dyn Store) -> CaseOutcome {
    let keys = TestKeys::generate()?;
    ensure_eq!(s.head().ctx("head")?, None);
    let cp = s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    ensure_eq!((cp.seq, cp.head_hash), (0, GENESIS_PREV_HASH));
    let rep = s.verify(&keys.trusted()).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!(rep.checkpoints_ok, 1);
    ensure_eq!(s.latest_checkpoint().ctx("latest")?, Some(cp));
    Ok(())
}

fn audit_append_chains(s: &dyn Store) -> CaseOutcome {
    let keys = TestKeys::generate()?;
    setup(s, &keys)?;
    let recs = s.records(1, 100).ctx("records")?;
    ensure_eq!(recs.len(), 10);
    ensure_eq!(recs[0].seq, 1);
    ensure_eq!(recs[0].prev_hash, GENESIS_PREV_HASH);
    for w in recs.windows(2) {
        ensure_eq!(w[1].prev_hash, w[0].hash, "record {} chains", w[1].seq);
        ensure_eq!(w[1].seq, w[0].seq + 1);
    }
    for (i, r) in recs.iter().enumerate() {
        ensure_eq!(
            r.entry,
            sample_entry(i as u64 + 1),
            "record {} round-trips",
            r.seq
        );
        ensure_eq!(r.hash, record_hash(r.seq, &r.prev_hash, &r.entry));
    }
    ensure_eq!(s.head().ctx("head")?, Some((10, recs[9].hash)));

    let rep = s.verify(&keys.trusted()).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!(rep.records, 10);
    ensure_eq!(rep.checkpoints, 2);
    ensure_eq!(rep.checkpoints_ok, 2);
    ensure_eq!(rep.last_good_checkpoint, Some(10));
    ensure_eq!(rep.unanchored_records(), 0);
    ensure_eq!(rep.head, Some((10, recs[9].hash)));

    // Without the right keys, the checkpoints fail (and nothing else).
    let other = TestKeys::generate()?;
    let rep = s.verify(&other.trusted()).ctx("verify")?;
    ensure_eq!(rep.problems.len(), 2);
    ensure!(rep
        .problems
        .iter()
        .all(|p| matches!(p.kind, ProblemKind::CheckpointBadSignature(_))));
    Ok(())
}

fn audit_commit_returns_and_indexes(s: &dyn Store) -> CaseOutcome {
    let e1 = sample_entry(1);
    let r1 = s.commit(&e1, None).ctx("commit without artifact")?;
    ensure_eq!((r1.seq, r1.prev_hash), (1, GENESIS_PREV_HASH));
    ensure_eq!(r1.entry, e1);
    ensure_eq!(r1.hash, record_hash(1, &GENESIS_PREV_HASH, &e1));
    ensure!(s
        .list_artifacts("widget", &ArtifactQuery::default())
        .ctx("list")?
        .is_empty());

    let e2 = sample_entry(3);
    let m = sample_artifact("art-1", "widget", Some("1.0.0"), 7, "2026-05-01T10:00:00Z");
    let r2 = s.commit(&e2, Some(&m)).ctx("commit with artifact")?;
    ensure_eq!((r2.seq, r2.prev_hash), (2, r1.hash));
    ensure_eq!(r2.entry, e2);
    // Both are visible once commit returns.
    ensure_eq!(s.records(2, 10).ctx("records")?, vec![r2.clone()]);
    ensure_eq!(s.artifact("art-1").ctx("artifact")?, Some(m.clone()));
    ensure_eq!(
        s.list_artifacts("widget", &ArtifactQuery::default())
            .ctx("list")?,
        vec![m]
    );
    let r3 = s.append(&sample_entry(4)).ctx("append")?;
    ensure_eq!((r3.seq, r3.prev_hash), (3, r2.hash));
    ensure_eq!(s.head().ctx("head")?, Some((3, r3.hash)));
    Ok(())
}

fn audit_failing_commit_writes_nothing(s: &dyn Store) -> CaseOutcome {
    let m1 = sample_artifact("a1", "widget", None, 1, "2026-05-01T10:00:00Z");
    let r1 = s.commit(&sample_entry(1), Some(&m1)).ctx("commit")?;
    let head = Some((1, r1.hash));

    // A duplicate artifact id fails the commit: no record, the existing row unchanged.
    let mut dup = sample_artifact("a1", "widget", Some("9.9.9"), 2, "2026-05-02T10:00:00Z");
    dup.client = Some("mallory".into());
    ensure!(
        s.commit(&sample_entry(2), Some(&dup)).is_err(),
        "commit with a duplicate artifact id succeeded"
    );
    ensure_eq!(s.head().ctx("head")?, head);
    ensure_eq!(s.artifact("a1").ctx("artifact")?, Some(m1.clone()));

    // An invalid entry with a valid artifact: neither.
    let m2 = sample_artifact("a2", "widget", None, 2, "2026-05-01T10:00:00Z");
    let bad_entry = AuditEntry::new("yesterday", "c", Action::Sign, Decision::Allow);
    ensure!(matches!(
        s.commit(&bad_entry, Some(&m2)),
        Err(StoreError::Misuse(_))
    ));
    ensure_eq!(s.artifact("a2").ctx("artifact")?, None);
    ensure_eq!(s.head().ctx("head")?, head);

    // A valid entry with an invalid artifact: neither.
    for bad in [
        sample_artifact("../x", "widget", None, 3, "2026-05-01T10:00:00Z"),
        sample_artifact("a3", "widget", None, 3, "2026-05-01T10:00:00+01:00"),
        sample_artifact("a4", "", None, 3, "2026-05-01T10:00:00Z"),
    ] {
        ensure!(
            matches!(
                s.commit(&sample_entry(2), Some(&bad)),
                Err(StoreError::Misuse(_))
            ),
            "artifact {:?} / {:?} accepted",
            bad.id,
            bad.created
        );
        ensure_eq!(s.artifact(&bad.id).ctx("artifact")?, None);
        ensure_eq!(s.head().ctx("head")?, head);
    }
    ensure_eq!(s.records(1, 100).ctx("records")?.len(), 1);
    ensure!(
        s.list_artifacts("widget", &ArtifactQuery::default())
            .ctx("list")?
            .len()
            == 1
    );

    // The chain continues without a gap.
    let r2 = s.commit(&sample_entry(2), Some(&m2)).ctx("commit")?;
    ensure_eq!((r2.seq, r2.prev_hash), (2, r1.hash));
    ensure_eq!(s.artifact("a2").ctx("artifact")?, Some(m2));
    Ok(())
}

fn audit_invalid_entries_are_refused(s: &dyn Store) -> CaseOutcome {
    for t in [
        "",
        "yesterday",
        "2026-05-01T12:00:00+02:00",
        "2026-05-01 12:00:00Z",
    ] {
        let e = AuditEntry::new(t, "c", Action::Sign, Decision::Allow);
        ensure!(
            matches!(s.append(&e), Err(StoreError::Misuse(_))),
            "time {t:?} accepted"
        );
    }
    let e = AuditEntry::new("2026-05-01T12:00:00Z", "", Action::Sign, Decision::Allow);
    ensure!(matches!(s.append(&e), Err(StoreError::Misuse(_))));
    let mut e = AuditEntry::new("2026-05-01T12:00:00Z", "c", Action::Sign, Decision::Allow);
    e.extra = Some("{not json".into());
    ensure!(matches!(s.append(&e), Err(StoreError::Misuse(_))));
    ensure_eq!(s.head().ctx("head")?, None, "nothing was written");
    Ok(())
}

fn audit_concurrent_commits_form_one_chain(s: &dyn Store) -> CaseOutcome {
    const THREADS: u64 = 12;
    const EACH: u64 = 40;
    let outcomes: Vec<CaseOutcome> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                sc.spawn(move || -> CaseOutcome {
                    for i in 0..EACH {
                        let n = t * EACH + i;
                        let mut e = sample_entry(n + 1);
                        e.client = format!("client-{t}");
                        let m = sample_artifact(
                            &format!("a{n}"),
                            "widget",
                            None,
                            n as u8,
                            "2026-05-01T10:00:00Z",
                        );
                        let rec = s.commit(&e, Some(&m)).ctx("commit")?;
                        ensure_eq!(rec.entry, e, "each caller gets its own record back");
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("committing thread panicked".into()))
            })
            .collect()
    });
    for o in outcomes {
        o?;
    }
    let recs = s.records(1, 10_000).ctx("records")?;
    ensure_eq!(recs.len() as u64, THREADS * EACH);
    for (i, r) in recs.iter().enumerate() {
        ensure_eq!(r.seq, i as u64 + 1, "gap-free seqs");
    }
    for w in recs.windows(2) {
        ensure_eq!(w[1].prev_hash, w[0].hash, "one chain");
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
        ensure_eq!(mine.len() as u64, EACH);
        ensure_eq!(mine, sorted);
    }
    for n in 0..THREADS * EACH {
        ensure!(
            s.artifact(&format!("a{n}")).ctx("artifact")?.is_some(),
            "artifact a{n} missing"
        );
    }
    // A failing write (duplicate artifact id) writes neither its record nor its row.
    let before = s.records(1, 10_000).ctx("records")?.len();
    let dup = sample_artifact("a0", "widget", None, 0, "2026-05-01T10:00:00Z");
    ensure!(s.commit(&sample_entry(9999), Some(&dup)).is_err());
    ensure_eq!(s.records(1, 10_000).ctx("records")?.len(), before);
    let keys = TestKeys::generate()?;
    s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    let rep = s.verify(&keys.trusted()).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!(rep.records, THREADS * EACH);
    ensure_eq!(rep.last_good_checkpoint, Some(THREADS * EACH));
    // The tree the group commits stored is the tree of the records, in seq order.
    let leaves: Vec<Hash32> = recs.iter().map(|r| r.leaf_hash()).collect();
    let n = THREADS * EACH;
    ensure_eq!(
        s.tree_root(n).ctx("tree_root")?,
        fwseal_tlog::root(&fwseal_tlog::LeafHashes(&leaves), n).ctx("root")?
    );
    Ok(())
}

fn audit_views_agree(s: &dyn Store) -> CaseOutcome {
    let keys = TestKeys::generate()?;
    // A seq-0 checkpoint, then records 1..=10 with checkpoints after 5 and 10.
    s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    setup(s, &keys)?;
    let all = s.records(1, 100).ctx("records")?;
    ensure_eq!(all.len(), 10);
    ensure_eq!(s.head().ctx("head")?, Some((10, all[9].hash)));

    // Paging.
    let seqs = |v: Vec<crate::AuditRecord>| v.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    ensure_eq!(seqs(s.records(4, 3).ctx("records")?), vec![4, 5, 6]);
    ensure_eq!(seqs(s.records(9, 100).ctx("records")?), vec![9, 10]);
    ensure_eq!(seqs(s.records(0, 2).ctx("records")?), vec![1, 2]);
    ensure!(s.records(11, 10).ctx("records")?.is_empty());
    ensure!(s.records(1, 0).ctx("records")?.is_empty());

    // scan: every row, in order, the same records; stops when told.
    let mut scanned = Vec::new();
    let mut bad = Vec::new();
    s.scan(&mut |row| {
        match row {
            Ok(r) => scanned.push(r),
            Err(m) => bad.push(m),
        }
        true
    })
    .ctx("scan")?;
    ensure!(bad.is_empty(), "{bad:?}");
    ensure_eq!(scanned, all);
    let mut calls = 0;
    s.scan(&mut |_| {
        calls += 1;
        calls < 3
    })
    .ctx("scan")?;
    ensure_eq!(calls, 3, "scan stops when the callback returns false");

    // export: header, seq-0 checkpoint, records in order, each checkpoint after its record.
    let cps: Vec<Checkpoint> = s
        .checkpoints()
        .ctx("checkpoints")?
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|m| format!("checkpoint row: {m:?}"))?;
    ensure_eq!(
        cps.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![0, 5, 10]
    );
    let mut out = Vec::new();
    ensure_eq!(s.export(&mut out).ctx("export")?, 10);
    let text = String::from_utf8(out.clone()).ctx("export is UTF-8")?;
    let lines: Vec<&str> = text.lines().collect();
    let mut want = vec![line_json(&crate::export::header())];
    want.push(line_json(&ExportLine::Checkpoint(cps[0].clone())));
    for r in &all {
        want.push(line_json(&ExportLine::Record(Box::new(RecordLine::from(
            r,
        )))));
        if let Some(c) = cps.iter().find(|c| c.seq == r.seq) {
            want.push(line_json(&ExportLine::Checkpoint(c.clone())));
        }
    }
    ensure_eq!(lines, want.iter().map(String::as_str).collect::<Vec<_>>());
    ensure!(text.ends_with('\n'));

    // verify (the store) and verify_export (the export) agree with each other and the head.
    let tk = keys.trusted();
    let rep = s.verify(&tk).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!(
        (rep.records, rep.checkpoints, rep.checkpoints_ok),
        (10, 3, 3)
    );
    ensure_eq!(rep.last_good_checkpoint, Some(10));
    ensure_eq!(rep.head, Some((10, all[9].hash)));
    let xrep = verify_export(&out, &tk);
    ensure!(xrep.is_ok(), "{:?}", xrep.problems);
    ensure_eq!(
        (xrep.records, xrep.checkpoints, xrep.checkpoints_ok),
        (rep.records, rep.checkpoints, rep.checkpoints_ok)
    );
    ensure_eq!(xrep.head, rep.head);
    ensure_eq!(xrep.last_good_checkpoint, rep.last_good_checkpoint);
    Ok(())
}

fn checkpoints_store_list_latest_verify(s: &dyn Store) -> CaseOutcome {
    let keys = TestKeys::generate()?;
    ensure_eq!(s.latest_checkpoint().ctx("latest")?, None);
    fill(s, 1, 3)?;
    let cp3 = s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    let head3 = s.head().ctx("head")?.ctx("head")?;
    ensure_eq!((cp3.seq, cp3.head_hash), head3);
    ensure_eq!(cp3.signatures.len(), 2);
    ensure_eq!(cp3.signatures[0].alg, SigAlg::EcdsaP256Sha256);
    ensure_eq!(cp3.signatures[1].alg, SigAlg::MlDsa65);
    cp3.verify_signatures(&keys.trusted())
        .ctx("checkpoint verifies")?;
    fill(s, 4, 6)?;
    let cp6 = s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    ensure_eq!(cp6.seq, 6);
    // A checkpoint received from elsewhere, of an older head, stored last.
    let r2 = s.records(2, 1).ctx("records")?;
    let r2 = r2.first().ctx("record 2")?;
    let cp2 = Checkpoint::sign(2, r2.hash, &[&keys.ecdsa, &keys.mldsa]).ctx("sign")?;
    s.store_checkpoint(&cp2).ctx("store_checkpoint")?;

    let stored: Vec<Checkpoint> = s
        .checkpoints()
        .ctx("checkpoints")?
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|m| format!("checkpoint row: {m:?}"))?;
    ensure_eq!(
        stored,
        vec![cp3, cp6.clone(), cp2],
        "every checkpoint, oldest first"
    );
    ensure_eq!(
        s.latest_checkpoint().ctx("latest")?,
        Some(cp6),
        "the highest seq, not the last stored"
    );
    let rep = s.verify(&keys.trusted()).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!((rep.checkpoints, rep.checkpoints_ok), (3, 3));
    ensure_eq!(rep.last_good_checkpoint, Some(6));

    let other = TestKeys::generate()?;
    let rep = s.verify(&other.trusted()).ctx("verify")?;
    ensure_eq!(rep.checkpoints_ok, 0);
    ensure_eq!(rep.last_good_checkpoint, None);
    ensure_eq!(rep.unanchored_records(), 6);
    ensure_eq!(
        rep.problems
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::CheckpointBadSignature(_)))
            .count(),
        3
    );
    ensure_eq!(rep.problems.len(), 3);
    Ok(())
}

fn checkpoints_forged_are_detected(s: &dyn Store) -> CaseOutcome {
    let keys = TestKeys::generate()?;
    setup(s, &keys)?;
    let head = s.head().ctx("head")?.ctx("head")?;

    // Forged: signed by keys the verifier does not trust.
    let mallory = TestKeys::generate()?;
    s.store_checkpoint(
        &Checkpoint::sign(head.0, head.1, &[&mallory.ecdsa, &mallory.mldsa]).ctx("sign")?,
    )
    .ctx("store")?;
    // Classical half only, by a trusted key.
    s.store_checkpoint(&Checkpoint::sign(head.0, head.1, &[&keys.ecdsa]).ctx("sign")?)
        .ctx("store")?;
    // Trusted keys, but a head that is not the chain's (a signer that was lied to).
    s.store_checkpoint(&Checkpoint::sign(7, [9u8; 32], &[&keys.ecdsa, &keys.mldsa]).ctx("sign")?)
        .ctx("store")?;
    // Trusted keys, a record the log does not have.
    s.store_checkpoint(&Checkpoint::sign(50, head.1, &[&keys.ecdsa, &keys.mldsa]).ctx("sign")?)
        .ctx("store")?;
    // A signature swapped in from another checkpoint.
    let mut swapped = Checkpoint::sign(3, head.1, &[&keys.ecdsa, &keys.mldsa]).ctx("sign")?;
    let good = Checkpoint::sign(head.0, head.1, &[&keys.ecdsa, &keys.mldsa]).ctx("sign")?;
    let sig = good.signatures.get(1).ctx("second signature")?.clone();
    *swapped.signatures.get_mut(1).ctx("second signature")? = sig;
    s.store_checkpoint(&swapped).ctx("store")?;

    let rep = s.verify(&keys.trusted()).ctx("verify")?;
    let bad_sig = |seq| {
        kinds_at(&rep, seq)
            .iter()
            .filter(|k| matches!(k, ProblemKind::CheckpointBadSignature(_)))
            .count()
    };
    ensure_eq!(bad_sig(10), 2, "untrusted keys + classical only");
    ensure_eq!(bad_sig(3), 1, "swapped signature");
    ensure_eq!(kinds_at(&rep, 7), vec![ProblemKind::CheckpointHeadMismatch]);
    ensure_eq!(
        kinds_at(&rep, 50),
        vec![ProblemKind::CheckpointMissingRecord]
    );
    ensure_eq!(rep.checkpoints, 7);
    ensure_eq!(rep.checkpoints_ok, 2, "only the originals at 5 and 10");
    ensure_eq!(rep.last_good_checkpoint, Some(10));
    ensure_eq!(rep.first_bad_seq(), Some(3));
    ensure!(rep.problems.iter().all(|p| p.is_checkpoint()));
    ensure_eq!(rep.problems.len(), 5, "{:?}", rep.problems);
    Ok(())
}

fn checkpoints_hybrid_can_be_relaxed(s: &dyn Store) -> CaseOutcome {
    let keys = TestKeys::generate()?;
    fill(s, 1, 3)?;
    let h = s.head().ctx("head")?.ctx("head")?;
    s.store_checkpoint(&Checkpoint::sign(h.0, h.1, &[&keys.mldsa]).ctx("sign")?)
        .ctx("store")?;
    ensure!(!s.verify(&keys.trusted()).ctx("verify")?.is_ok());
    let mut relaxed = keys.trusted();
    relaxed.require_hybrid = false;
    ensure!(s.verify(&relaxed).ctx("verify")?.is_ok());
    Ok(())
}

fn artifacts_put_get_list_filters(s: &dyn Store) -> CaseOutcome {
    let id = new_artifact_id().ctx("id")?;
    ensure_eq!(id.len(), 32);
    ensure!(id != new_artifact_id().ctx("id")?);
    let a = sample_artifact(&id, "widget", Some("1.0.0"), 1, "2026-05-01T10:00:00Z");
    let b = sample_artifact("b", "widget", Some("1.1.0"), 2, "2026-05-01T10:00:00.5Z");
    let c = sample_artifact("c", "widget", Some("1.1.0"), 3, "2026-05-02T00:00:00Z");
    let d = sample_artifact("d", "gadget", Some("1.1.0"), 4, "2026-05-03T00:00:00Z");
    for m in [&a, &b, &c, &d] {
        s.put_artifact(m).ctx("put")?;
    }
    ensure!(s.put_artifact(&a).is_err(), "duplicate id");
    ensure_eq!(s.artifact(&id).ctx("get")?, Some(a.clone()));
    ensure_eq!(s.artifact("nope").ctx("get")?, None);
    ensure_eq!(s.artifact("c").ctx("get")?, Some(c.clone()));

    let ids = |q: ArtifactQuery| -> Result<Vec<String>, String> {
        Ok(s.list_artifacts("widget", &q)
            .ctx("list")?
            .into_iter()
            .map(|m| m.id)
            .collect())
    };
    // Newest first (sub-second ordering compares instants, not strings).
    ensure_eq!(ids(ArtifactQuery::default())?, vec!["c", "b", id.as_str()]);
    ensure_eq!(
        ids(ArtifactQuery {
            version: Some("1.1.0".into()),
            ..Default::default()
        })?,
        vec!["c", "b"]
    );
    for digest in [[2u8; 32], [2 ^ 0xFF; 32], [2 ^ 0x0F; 32]] {
        ensure_eq!(
            ids(ArtifactQuery {
                digest: Some(digest),
                ..Default::default()
            })?,
            vec!["b"]
        );
    }
    ensure_eq!(
        ids(ArtifactQuery {
            since: Some("2026-05-01T10:00:00.1Z".into()),
            until: Some("2026-05-02T00:00:00Z".into()),
            ..Default::default()
        })?,
        vec!["b"]
    );
    ensure_eq!(
        ids(ArtifactQuery {
            limit: Some(1),
            ..Default::default()
        })?,
        vec!["c"]
    );
    ensure_eq!(
        ids(ArtifactQuery {
            version: Some("1.1.0".into()),
            digest: Some([3; 32]),
            ..Default::default()
        })?,
        vec!["c"],
        "all filters apply"
    );
    // Another product's artifact is invisible from this one.
    ensure!(ids(ArtifactQuery {
        digest: Some([4; 32]),
        ..Default::default()
    })?
    .is_empty());
    ensure_eq!(
        s.list_artifacts("gadget", &ArtifactQuery::default())
            .ctx("list")?,
        vec![d]
    );
    ensure!(s
        .list_artifacts("nobody", &ArtifactQuery::default())
        .ctx("list")?
        .is_empty());
    ensure!(matches!(
        s.list_artifacts(
            "widget",
            &ArtifactQuery {
                since: Some("last tuesday".into()),
                ..Default::default()
            }
        ),
        Err(StoreError::Misuse(_))
    ));
    ensure!(matches!(
        s.list_artifacts(
            "widget",
            &ArtifactQuery {
                until: Some("2026-05-01T10:00:00+01:00".into()),
                ..Default::default()
            }
        ),
        Err(StoreError::Misuse(_))
    ));
    for bad in [
        sample_artifact("", "widget", None, 9, "2026-05-01T10:00:00Z"),
        sample_artifact("../x", "widget", None, 9, "2026-05-01T10:00:00Z"),
        sample_artifact("e", "widget", None, 9, "2026-05-01T10:00:00+01:00"),
    ] {
        ensure!(
            matches!(s.put_artifact(&bad), Err(StoreError::Misuse(_))),
            "{:?} accepted",
            bad.id
        );
    }
    ensure_eq!(s.artifact("e").ctx("get")?, None);
    Ok(())
}

fn artifacts_duplicate_id_is_refused(s: &dyn Store) -> CaseOutcome {
    let a = sample_artifact("same", "widget", Some("1.0.0"), 1, "2026-05-01T10:00:00Z");
    s.put_artifact(&a).ctx("put")?;
    let mut other = sample_artifact("same", "gadget", Some("2.0.0"), 2, "2026-05-02T10:00:00Z");
    other.client = Some("mallory".into());
    ensure!(s.put_artifact(&other).is_err(), "duplicate id accepted");
    ensure_eq!(s.artifact("same").ctx("get")?, Some(a.clone()));
    ensure!(s
        .list_artifacts("gadget", &ArtifactQuery::default())
        .ctx("list")?
        .is_empty());
    ensure_eq!(
        s.list_artifacts("widget", &ArtifactQuery::default())
            .ctx("list")?,
        vec![a]
    );
    Ok(())
}

fn artifacts_order_limit_and_time_bounds(s: &dyn Store) -> CaseOutcome {
    // Equal instants written differently, sub-second differences, and ties broken by id.
    let rows = [
        ("t1", "2026-05-01T09:59:59.999Z"),
        ("t2", "2026-05-01T10:00:00Z"),
        ("t3", "2026-05-01T10:00:00.000000001Z"),
        ("t4b", "2026-05-01T10:00:00.5Z"),
        ("t4a", "2026-05-01T10:00:00.500Z"),
        ("t5", "2026-05-01T10:00:01Z"),
        ("t6", "2026-05-02T00:00:00Z"),
    ];
    for (i, (id, t)) in rows.iter().enumerate() {
        s.put_artifact(&sample_artifact(id, "widget", None, i as u8, t))
            .ctx("put")?;
    }
    let ids = |q: ArtifactQuery| -> Result<Vec<String>, String> {
        Ok(s.list_artifacts("widget", &q)
            .ctx("list")?
            .into_iter()
            .map(|m| m.id)
            .collect())
    };
    ensure_eq!(
        ids(ArtifactQuery::default())?,
        vec!["t6", "t5", "t4a", "t4b", "t3", "t2", "t1"]
    );
    ensure_eq!(
        ids(ArtifactQuery {
            limit: Some(3),
            ..Default::default()
        })?,
        vec!["t6", "t5", "t4a"]
    );
    ensure_eq!(
        ids(ArtifactQuery {
            limit: Some(MAX_LIST + 5),
            ..Default::default()
        })?
        .len(),
        7
    );
    // since is inclusive, until exclusive; both compare instants.
    ensure_eq!(
        ids(ArtifactQuery {
            since: Some("2026-05-01T10:00:00.000Z".into()),
            until: Some("2026-05-01T10:00:00.50Z".into()),
            ..Default::default()
        })?,
        vec!["t3", "t2"]
    );
    ensure_eq!(
        ids(ArtifactQuery {
            since: Some("2026-05-01T10:00:00.5Z".into()),
            until: Some("2026-05-02T00:00:00Z".into()),
            ..Default::default()
        })?,
        vec!["t5", "t4a", "t4b"]
    );
    // More rows than MAX_LIST: a page is capped.
    for i in 0..(MAX_LIST + 1) {
        s.put_artifact(&sample_artifact(
            &format!("bulk{i:05}"),
            "bulk",
            None,
            0,
            "2026-05-01T00:00:00Z",
        ))
        .ctx("put")?;
    }
    let page = s
        .list_artifacts(
            "bulk",
            &ArtifactQuery {
                limit: Some(MAX_LIST + 1),
                ..Default::default()
            },
        )
        .ctx("list")?;
    ensure_eq!(page.len(), MAX_LIST);
    ensure_eq!(page.first().map(|m| m.id.as_str()), Some("bulk00000"));
    Ok(())
}

const T: &str = "2026-05-01T12:30:00Z";

fn approve(
    s: &dyn Store,
    id: &str,
    who: &str,
    now: i64,
    min: u32,
) -> Result<ApproveOutcome, String> {
    let policy = CurrentPolicy {
        min_required: min,
        counts: &|_| true,
    };
    s.approve(id, &Principal::named(who), &[1, 2, 3], T, now, &policy)
        .ctx("approve")
}

fn get_job(s: &dyn Store, id: &str) -> Result<Job, String> {
    s.job(id).ctx("job")?.ctx("job exists")
}

fn blob_references_of_artifacts_and_jobs(s: &dyn Store) -> CaseOutcome {
    ensure!(s.artifact_blobs().ctx("artifact_blobs")?.is_empty());
    ensure!(s.job_inputs().ctx("job_inputs")?.is_empty());
    let mut a = sample_artifact("a1", "widget", None, 3, "2026-05-01T00:00:00Z");
    a.detached_sha256 = Some([0x44; 32]);
    s.put_artifact(&a).ctx("put")?;
    let mut got = s.artifact_blobs().ctx("artifact_blobs")?;
    got.sort();
    got.dedup();
    let mut want = vec![[3; 32], [3 ^ 0xFF; 32], [0x44; 32], [3 ^ 0x0F; 32]];
    want.sort();
    ensure_eq!(got, want);
    s.create_job(&sample_job("j1", 1, 100)).ctx("create")?;
    ensure_eq!(
        s.job_inputs().ctx("job_inputs")?,
        vec![sample_job("j1", 1, 100).input_sha256]
    );
    Ok(())
}

fn jobs_create_get_list(s: &dyn Store) -> CaseOutcome {
    let j1 = sample_job("j1", 2, 100);
    s.create_job(&j1).ctx("create")?;
    ensure_eq!(
        s.job("j1").ctx("job")?,
        Some(Job {
            job: j1.clone(),
            state: JobState::Pending,
            reason: None,
            artifact_id: None,
            approvals: vec![],
        })
    );
    ensure_eq!(s.job("nope").ctx("job")?, None);
    ensure!(s.create_job(&j1).is_err(), "duplicate job id accepted");
    let mut bad = sample_job("../x", 1, 100);
    ensure!(matches!(s.create_job(&bad), Err(StoreError::Misuse(_))));
    bad.id = "j-zero".into();
    bad.required = 0;
    ensure!(matches!(s.create_job(&bad), Err(StoreError::Misuse(_))));
    ensure_eq!(s.job("j-zero").ctx("job")?, None);

    let mut j2 = sample_job("j2", 1, 100);
    j2.created = "2026-05-01T12:05:00Z".into();
    j2.version = Some("2.0.0".into());
    j2.key_version = None;
    j2.params = serde_json::json!({"build": {"n": 7, "tags": ["a", "ü"]}});
    s.create_job(&j2).ctx("create")?;
    let mut j3 = sample_job("j3", 1, 100);
    j3.product = "gadget".into();
    j3.created = "2026-05-01T12:10:00Z".into();
    s.create_job(&j3).ctx("create")?;
    ensure_eq!(get_job(s, "j2")?.job, j2, "every field round-trips");

    let list = |products: &[&str], limit: usize| -> Result<Vec<String>, String> {
        let products: Vec<String> = products.iter().map(|p| p.to_string()).collect();
        Ok(s.list_jobs(&products, limit)
            .ctx("list_jobs")?
            .into_iter()
            .map(|j| j.job.id)
            .collect())
    };
    ensure_eq!(list(&["widget"], 10)?, vec!["j2", "j1"], "newest first");
    ensure_eq!(list(&["widget", "gadget"], 10)?, vec!["j3", "j2", "j1"]);
    ensure_eq!(list(&["gadget", "widget"], 2)?, vec!["j3", "j2"]);
    ensure_eq!(list(&["widget"], 1)?, vec!["j2"]);
    ensure!(list(&["other"], 10)?.is_empty());
    ensure!(list(&[], 10)?.is_empty());
    // Listed jobs carry their approvals and stored state.
    ensure!(matches!(
        approve(s, "j1", "alice", 50, 0)?,
        ApproveOutcome::Recorded { .. }
    ));
    let listed = s.list_jobs(&["widget".into()], 10).ctx("list_jobs")?;
    let l1 = listed.iter().find(|j| j.job.id == "j1").ctx("j1 listed")?;
    ensure_eq!(l1.approvers(), vec!["alice"]);
    ensure_eq!(l1.state, JobState::Pending);
    Ok(())
}

fn jobs_quorum_once(s: &dyn Store) -> CaseOutcome {
    s.create_job(&sample_job("j1", 2, 100)).ctx("create")?;
    ensure_eq!(
        approve(s, "j1", "ci", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::SelfApproval)
    );
    ensure_eq!(
        approve(s, "j1", "alice", 50, 0)?,
        ApproveOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    ensure_eq!(
        approve(s, "j1", "alice", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::AlreadyApproved)
    );
    ensure_eq!(
        s.approve(
            "j1",
            &Principal::named("bob"),
            &[9],
            T,
            50,
            &CurrentPolicy::ANYONE
        )
        .ctx("approve")?,
        ApproveOutcome::Refused(JobRefusal::DigestMismatch)
    );
    ensure_eq!(
        get_job(s, "j1")?.approvers(),
        vec!["alice"],
        "refusals change nothing"
    );
    match approve(s, "j1", "bob", 50, 0)? {
        ApproveOutcome::Quorum(j) => {
            ensure_eq!(j.approvers(), vec!["alice", "bob"]);
            ensure_eq!(j.state, JobState::Signing);
            ensure_eq!(j.job, sample_job("j1", 2, 100));
        }
        other => return Err(format!("expected the quorum, got {other:?}")),
    }
    ensure_eq!(get_job(s, "j1")?.state, JobState::Signing);
    ensure_eq!(
        approve(s, "j1", "carol", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::AlreadySigned(None))
    );
    s.finish_job("j1", "art1").ctx("finish")?;
    let j = get_job(s, "j1")?;
    ensure_eq!(j.state, JobState::Signed);
    ensure_eq!(j.artifact_id.as_deref(), Some("art1"));
    ensure!(s.finish_job("j1", "art2").is_err(), "signs at most once");
    ensure_eq!(
        approve(s, "j1", "carol", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::AlreadySigned(Some("art1".into())))
    );
    ensure_eq!(get_job(s, "j1")?.approvers(), vec!["alice", "bob"]);
    Ok(())
}

fn jobs_expiry_rejection_unknown(s: &dyn Store) -> CaseOutcome {
    s.create_job(&sample_job("j1", 2, 100)).ctx("create")?;
    ensure_eq!(
        approve(s, "j1", "alice", 100, 0)?,
        ApproveOutcome::Refused(JobRefusal::Expired)
    );
    let j1 = get_job(s, "j1")?;
    ensure_eq!(j1.state_at(100), JobState::Expired);
    ensure_eq!(j1.state_at(99), JobState::Pending);
    ensure_eq!(j1.state, JobState::Pending, "expiry is not stored");
    ensure!(j1.approvals.is_empty());
    ensure_eq!(
        s.reject("j1", "bob", "too late", 101).ctx("reject")?,
        Some(JobRefusal::Expired)
    );
    s.create_job(&sample_job("j2", 1, 100)).ctx("create")?;
    ensure_eq!(s.reject("j2", "bob", "bad build", 50).ctx("reject")?, None);
    let j2 = get_job(s, "j2")?;
    ensure_eq!(j2.state, JobState::Rejected);
    ensure_eq!(j2.reason.as_deref(), Some("rejected by bob: bad build"));
    ensure_eq!(
        approve(s, "j2", "alice", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::Rejected(Some(
            "rejected by bob: bad build".into()
        )))
    );
    ensure_eq!(
        s.reject("j2", "carol", "again", 50).ctx("reject")?,
        Some(JobRefusal::Rejected(Some(
            "rejected by bob: bad build".into()
        )))
    );
    ensure_eq!(
        approve(s, "nope", "alice", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::NotFound)
    );
    ensure_eq!(
        s.reject("nope", "alice", "x", 50).ctx("reject")?,
        Some(JobRefusal::NotFound)
    );
    let l = s.list_jobs(&["widget".into()], 10).ctx("list")?;
    ensure_eq!(l.len(), 2);
    ensure!(s.list_jobs(&["other".into()], 10).ctx("list")?.is_empty());
    Ok(())
}

fn jobs_tightened_policy(s: &dyn Store) -> CaseOutcome {
    s.create_job(&sample_job("j1", 1, 100)).ctx("create")?;
    ensure_eq!(
        approve(s, "j1", "alice", 50, 2)?,
        ApproveOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    ensure_eq!(get_job(s, "j1")?.job.required, 2);
    // A later loosening does not lower it again.
    ensure!(matches!(
        approve(s, "j1", "bob", 50, 1)?,
        ApproveOutcome::Quorum(_)
    ));
    // A refused approval does not raise it.
    s.create_job(&sample_job("j2", 1, 100)).ctx("create")?;
    ensure_eq!(
        approve(s, "j2", "ci", 50, 3)?,
        ApproveOutcome::Refused(JobRefusal::SelfApproval)
    );
    ensure_eq!(get_job(s, "j2")?.job.required, 1);
    Ok(())
}

fn jobs_revoked_approver(s: &dyn Store) -> CaseOutcome {
    // Alice approved, then lost the role: her approval stays stored but no longer counts.
    s.create_job(&sample_job("j1", 2, 100)).ctx("create")?;
    approve(s, "j1", "alice", 50, 0)?;
    let not_alice = CurrentPolicy {
        min_required: 0,
        counts: &|who| who.name != "alice",
    };
    ensure_eq!(
        s.approve(
            "j1",
            &Principal::named("bob"),
            &[1, 2, 3],
            T,
            50,
            &not_alice
        )
        .ctx("approve")?,
        ApproveOutcome::Recorded {
            approvals: 1,
            required: 2
        },
        "a revoked approver does not complete the quorum"
    );
    let j = get_job(s, "j1")?;
    ensure_eq!(j.state, JobState::Pending);
    ensure_eq!(
        j.approvers(),
        vec!["alice", "bob"],
        "both approvals stay stored"
    );
    match s
        .approve(
            "j1",
            &Principal::named("carol"),
            &[1, 2, 3],
            T,
            50,
            &not_alice,
        )
        .ctx("approve")?
    {
        ApproveOutcome::Quorum(j) => {
            ensure_eq!(
                j.approvers(),
                vec!["bob", "carol"],
                "only those who counted"
            );
        }
        other => return Err(format!("expected the quorum, got {other:?}")),
    }
    ensure_eq!(
        get_job(s, "j1")?.approvers(),
        vec!["alice", "bob", "carol"],
        "nothing is deleted"
    );
    Ok(())
}

fn oidc_principal(name: &str, issuer: &str, subject: &str) -> Principal {
    Principal {
        name: name.into(),
        oidc: Some(OidcSubject {
            issuer: issuer.into(),
            subject: subject.into(),
        }),
        claims: Some(serde_json::json!({"sub": subject, "email": format!("{subject}@x")})),
    }
}

fn jobs_oidc_identities(s: &dyn Store) -> CaseOutcome {
    // An OIDC-requested job: its requester is issuer + subject, whatever its client name; two
    // people matched by one rule share a name but are two identities; one subject counts once.
    let idp = "https://idp.example";
    let mut j = sample_job("j1", 3, 100);
    j.requester = "pipelines".into();
    j.requester_oidc = Some(OidcSubject {
        issuer: "https://ci.example".into(),
        subject: "repo:acme/widget".into(),
    });
    j.verified = Some(serde_json::json!({"issuer": "https://ci.example", "commit": "abc"}));
    s.create_job(&j).ctx("create")?;
    let got = get_job(s, "j1")?;
    ensure_eq!(got.job.requester_oidc, j.requester_oidc, "requester stored");
    ensure_eq!(got.job.verified, j.verified, "verified claims stored");
    let any = CurrentPolicy::ANYONE;
    let ok = |who: &Principal| s.approve("j1", who, &[1, 2, 3], T, 50, &any).ctx("approve");
    ensure_eq!(
        ok(&oidc_principal(
            "other",
            "https://ci.example",
            "repo:acme/widget"
        ))?,
        ApproveOutcome::Refused(JobRefusal::SelfApproval),
        "the requester's issuer + subject under another name is still the requester"
    );
    ensure_eq!(
        ok(&Principal::named("pipelines"))?,
        ApproveOutcome::Recorded {
            approvals: 1,
            required: 3
        },
        "a static client named like the OIDC requester is another identity"
    );
    let alice = oidc_principal("humans", idp, "alice");
    ensure_eq!(
        ok(&alice)?,
        ApproveOutcome::Recorded {
            approvals: 2,
            required: 3
        }
    );
    ensure_eq!(
        ok(&oidc_principal("humans-renamed", idp, "alice"))?,
        ApproveOutcome::Refused(JobRefusal::AlreadyApproved),
        "one subject counts once, whatever its name"
    );
    match ok(&oidc_principal(
        "humans",
        "https://other-idp.example",
        "alice",
    ))? {
        ApproveOutcome::Quorum(j) => {
            let mut names = j.approvers();
            names.sort();
            ensure_eq!(
                names,
                vec!["humans", "humans", "pipelines"],
                "the same subject at another issuer is another identity"
            );
        }
        other => return Err(format!("expected the quorum, got {other:?}")),
    }
    let stored = get_job(s, "j1")?;
    ensure_eq!(
        stored
            .approvals
            .iter()
            .find(|a| a.approver.key() == alice.key())
            .map(|a| a.approver.clone()),
        Some(alice),
        "name, issuer, subject and claims round-trip"
    );
    Ok(())
}

fn jobs_racing_approvals(s: &dyn Store) -> CaseOutcome {
    const JOBS: usize = 20;
    for i in 0..JOBS {
        s.create_job(&sample_job(&format!("j{i}"), 2, 100))
            .ctx("create")?;
        approve(s, &format!("j{i}"), "alice", 50, 0)?;
    }
    // Two approvers racing on every job's last slot.
    let wins: Vec<Result<Vec<bool>, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = ["bob", "carol"]
            .into_iter()
            .map(|who| {
                sc.spawn(move || -> Result<Vec<bool>, String> {
                    (0..JOBS)
                        .map(|i| {
                            Ok(matches!(
                                approve(s, &format!("j{i}"), who, 50, 0)?,
                                ApproveOutcome::Quorum(_)
                            ))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("approver panicked".into())))
            .collect()
    });
    let wins: Vec<Vec<bool>> = wins.into_iter().collect::<Result<_, _>>()?;
    let (b, c) = (wins.first().ctx("bob")?, wins.get(1).ctx("carol")?);
    for (i, (b, c)) in b.iter().zip(c).enumerate() {
        ensure!(b ^ c, "job j{i}: exactly one quorum (bob {b}, carol {c})");
        ensure_eq!(get_job(s, &format!("j{i}"))?.approvals.len(), 2);
    }

    // Eight approvers racing from zero on a 3-of-N job: two recorded, one quorum, the rest
    // refused as already signing.
    s.create_job(&sample_job("wide", 3, 100)).ctx("create")?;
    let outcomes: Vec<Result<ApproveOutcome, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..8)
            .map(|k| sc.spawn(move || approve(s, "wide", &format!("approver-{k}"), 50, 0)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("approver panicked".into())))
            .collect()
    });
    let outcomes: Vec<ApproveOutcome> = outcomes.into_iter().collect::<Result<_, _>>()?;
    let quorum = outcomes
        .iter()
        .filter(|o| matches!(o, ApproveOutcome::Quorum(_)))
        .count();
    let recorded = outcomes
        .iter()
        .filter(|o| matches!(o, ApproveOutcome::Recorded { .. }))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| **o == ApproveOutcome::Refused(JobRefusal::AlreadySigned(None)))
        .count();
    ensure_eq!((quorum, recorded, refused), (1, 2, 5), "{outcomes:?}");
    let mut counts: Vec<u32> = outcomes
        .iter()
        .filter_map(|o| match o {
            ApproveOutcome::Recorded { approvals, .. } => Some(*approvals),
            _ => None,
        })
        .collect();
    counts.sort_unstable();
    ensure_eq!(
        counts,
        vec![1, 2],
        "each recorded approval saw the ones before it"
    );
    let wide = get_job(s, "wide")?;
    ensure_eq!(wide.approvals.len(), 3);
    ensure_eq!(wide.state, JobState::Signing);
    Ok(())
}

fn jobs_finish_and_fail(s: &dyn Store) -> CaseOutcome {
    s.create_job(&sample_job("j1", 1, 100)).ctx("create")?;
    ensure!(
        matches!(s.finish_job("j1", "art"), Err(StoreError::Misuse(_))),
        "a pending job cannot be finished"
    );
    ensure!(
        matches!(s.fail_job("j1", "x"), Err(StoreError::Misuse(_))),
        "a pending job cannot be failed"
    );
    ensure_eq!(get_job(s, "j1")?.state, JobState::Pending);
    ensure!(s.finish_job("nope", "art").is_err());
    ensure!(s.fail_job("nope", "x").is_err());

    ensure!(matches!(
        approve(s, "j1", "alice", 50, 0)?,
        ApproveOutcome::Quorum(_)
    ));
    s.fail_job("j1", "recomputed digest differs").ctx("fail")?;
    let j = get_job(s, "j1")?;
    ensure_eq!(j.state, JobState::Failed);
    ensure_eq!(j.reason.as_deref(), Some("recomputed digest differs"));
    ensure_eq!(j.artifact_id, None);
    ensure!(
        s.finish_job("j1", "art").is_err(),
        "a failed job cannot be signed"
    );
    ensure!(s.fail_job("j1", "again").is_err());
    ensure_eq!(
        approve(s, "j1", "bob", 50, 0)?,
        ApproveOutcome::Refused(JobRefusal::Failed(Some("recomputed digest differs".into())))
    );
    ensure_eq!(
        s.reject("j1", "bob", "x", 50).ctx("reject")?,
        Some(JobRefusal::Failed(Some("recomputed digest differs".into())))
    );

    s.create_job(&sample_job("j2", 1, 100)).ctx("create")?;
    ensure!(matches!(
        approve(s, "j2", "alice", 50, 0)?,
        ApproveOutcome::Quorum(_)
    ));
    s.finish_job("j2", "art2").ctx("finish")?;
    ensure!(
        s.fail_job("j2", "late").is_err(),
        "a signed job cannot fail"
    );
    let j = get_job(s, "j2")?;
    ensure_eq!(
        (j.state, j.artifact_id.as_deref(), j.reason),
        (JobState::Signed, Some("art2"), None)
    );
    ensure_eq!(
        s.reject("j2", "bob", "x", 50).ctx("reject")?,
        Some(JobRefusal::AlreadySigned(Some("art2".into())))
    );
    Ok(())
}

fn jobs_fail_interrupted(s: &dyn Store) -> CaseOutcome {
    ensure!(s.fail_interrupted().ctx("fail_interrupted")?.is_empty());
    s.create_job(&sample_job("j1", 2, 100)).ctx("create")?;
    approve(s, "j1", "alice", 50, 0)?;
    for id in ["j2", "j3", "j4"] {
        s.create_job(&sample_job(id, 1, 100)).ctx("create")?;
        ensure!(matches!(
            approve(s, id, "alice", 50, 0)?,
            ApproveOutcome::Quorum(_)
        ));
    }
    s.finish_job("j3", "art3").ctx("finish")?;
    let mut failed = s.fail_interrupted().ctx("fail_interrupted")?;
    failed.sort();
    ensure_eq!(failed, vec!["j2".to_string(), "j4".to_string()]);
    for id in ["j2", "j4"] {
        let j = get_job(s, id)?;
        ensure_eq!(j.state, JobState::Failed);
        ensure_eq!(j.reason.as_deref(), Some(INTERRUPTED_REASON));
    }
    let j1 = get_job(s, "j1")?;
    ensure_eq!(
        (j1.state, j1.approvers()),
        (JobState::Pending, vec!["alice".to_string()])
    );
    ensure_eq!(get_job(s, "j3")?.state, JobState::Signed);
    ensure!(s.fail_interrupted().ctx("fail_interrupted")?.is_empty());
    // The job that stayed pending still completes normally.
    ensure!(matches!(
        approve(s, "j1", "bob", 50, 0)?,
        ApproveOutcome::Quorum(_)
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Blob cases
// ---------------------------------------------------------------------------------------------

/// Every blob case, by name, in the order [`blob_suite`] runs them.
pub fn blob_cases() -> Vec<(&'static str, BlobCase)> {
    vec![
        ("blob_put_open_check_contains", blob_put_open_check_contains),
        ("blob_put_is_idempotent", blob_put_is_idempotent),
        ("blob_empty_blob", blob_empty_blob),
        (
            "blob_writer_streams_multi_mib",
            blob_writer_streams_multi_mib,
        ),
        (
            "blob_unfinished_writer_leaves_nothing",
            blob_unfinished_writer_leaves_nothing,
        ),
        (
            "blob_corrupt_blob_is_detected",
            blob_corrupt_blob_is_detected,
        ),
        ("blob_concurrent_writes", blob_concurrent_writes),
        (
            "blob_staged_is_invisible_until_published",
            blob_staged_is_invisible_until_published,
        ),
        (
            "blob_recover_publishes_referenced_and_quarantines_the_rest",
            blob_recover_publishes_referenced_and_quarantines_the_rest,
        ),
        (
            "blob_recover_keep_leaves_unreferenced_blobs_visible",
            blob_recover_keep_leaves_unreferenced_blobs_visible,
        ),
    ]
}

fn read_blob(b: &dyn BlobStore, sha: &Hash32) -> Result<Vec<u8>, String> {
    let mut blob = b.open(sha).ctx("open")?.ctx("blob present")?;
    let mut got = Vec::new();
    blob.reader.read_to_end(&mut got).ctx("read")?;
    ensure_eq!(
        blob.len,
        got.len() as u64,
        "Blob::len is the content's length"
    );
    Ok(got)
}

fn blob_put_open_check_contains(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    let data = b"firmware image bytes".repeat(1000);
    let want = sha256(&data);
    let missing = [0u8; 32];
    ensure!(!b.contains(&want).ctx("contains")?);
    let stored = b.put(&data).ctx("put")?;
    ensure_eq!(stored.sha256, want);
    ensure_eq!(stored.size, data.len() as u64);
    ensure!(!stored.existed);
    ensure!(b.contains(&want).ctx("contains")?);
    ensure_eq!(read_blob(b, &want)?, data);
    ensure_eq!(b.check(&want).ctx("check")?, Some(true));
    // A file-backed store names a file holding exactly the content.
    if let Some(p) = b.local_path(&want) {
        ensure_eq!(std::fs::read(&p).ctx("read local path")?, data);
        ensure_eq!(stored.path.as_deref(), Some(p.as_path()));
    }
    ensure!(b.open(&missing).ctx("open")?.is_none());
    ensure_eq!(b.check(&missing).ctx("check")?, None);
    ensure!(!b.contains(&missing).ctx("contains")?);
    ensure_eq!(b.local_path(&missing), None);
    Ok(())
}

fn blob_put_is_idempotent(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    let first = b.put(b"same content").ctx("put")?;
    let second = b.put(b"same content").ctx("put")?;
    ensure!(!first.existed);
    ensure!(second.existed);
    ensure_eq!(
        (first.sha256, first.size, &first.path),
        (second.sha256, second.size, &second.path)
    );
    let mut w = b.writer().ctx("writer")?;
    w.write_all(b"same content").ctx("write")?;
    let third = w.finish().ctx("finish")?;
    ensure!(
        third.existed,
        "a streamed write of stored content is a no-op too"
    );
    ensure_eq!(third.sha256, first.sha256);
    ensure_eq!(read_blob(b, &first.sha256)?, b"same content".to_vec());
    let other = b.put(b"other content").ctx("put")?;
    ensure!(!other.existed);
    ensure!(other.sha256 != first.sha256);
    Ok(())
}

fn blob_empty_blob(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    let e = b.put(b"").ctx("put")?;
    ensure_eq!((e.sha256, e.size), (sha256(b""), 0));
    ensure!(read_blob(b, &e.sha256)?.is_empty());
    ensure_eq!(b.check(&e.sha256).ctx("check")?, Some(true));
    Ok(())
}

fn blob_writer_streams_multi_mib(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    const LEN: u32 = 5 * 1024 * 1024 + 3;
    let data: Vec<u8> = (0..LEN).map(|i| (i.wrapping_mul(7) % 251) as u8).collect();
    let want = sha256(&data);
    let mut w = b.writer().ctx("writer")?;
    ensure_eq!(w.size(), 0);
    let mut written = 0u64;
    for c in data.chunks(65_521) {
        w.write_all(c).ctx("write")?;
        written += c.len() as u64;
        ensure_eq!(w.size(), written);
    }
    w.flush().ctx("flush")?;
    ensure!(!b.contains(&want).ctx("contains")?, "visible before finish");
    let stored = w.finish().ctx("finish")?;
    ensure_eq!(stored.sha256, want);
    ensure_eq!(stored.size, u64::from(LEN));
    ensure!(!stored.existed);
    // Read back in small pieces, hashing as we go.
    let mut blob = b.open(&want).ctx("open")?.ctx("blob present")?;
    ensure_eq!(blob.len, u64::from(LEN));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 10_007];
    let mut total = 0u64;
    loop {
        let n = blob.reader.read(&mut buf).ctx("read")?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).ctx("read length")?);
        total += n as u64;
    }
    ensure_eq!(total, u64::from(LEN));
    ensure_eq!(<Hash32>::from(h.finalize()), want);
    ensure_eq!(b.check(&want).ctx("check")?, Some(true));
    ensure!(b.put(&data).ctx("put")?.existed);
    Ok(())
}

fn blob_unfinished_writer_leaves_nothing(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    let data = vec![0x5Au8; 100_000];
    let full = sha256(&data);
    let half = sha256(&data[..50_000]);
    {
        let mut w = b.writer().ctx("writer")?;
        w.write_all(&data[..50_000]).ctx("write")?;
        // (dropped here, as when a request is cancelled)
    }
    for sha in [&full, &half] {
        ensure!(!b.contains(sha).ctx("contains")?);
        ensure!(b.open(sha).ctx("open")?.is_none());
        ensure_eq!(b.check(sha).ctx("check")?, None);
        ensure_eq!(b.local_path(sha), None);
    }
    // An empty writer dropped: nothing either (not even the empty blob).
    drop(b.writer().ctx("writer")?);
    ensure!(!b.contains(&sha256(b"")).ctx("contains")?);
    // And the store still works.
    let mut w = b.writer().ctx("writer")?;
    w.write_all(&data).ctx("write")?;
    let stored = w.finish().ctx("finish")?;
    ensure_eq!(stored.sha256, full);
    ensure!(!stored.existed);
    ensure_eq!(read_blob(b, &full)?, data);
    Ok(())
}

fn blob_corrupt_blob_is_detected(b: &dyn BlobStore, corrupt: &Corrupter<'_>) -> CaseOutcome {
    let good = b.put(b"good content").ctx("put")?;
    let other = b.put(b"other content").ctx("put")?;
    corrupt(b, &good.sha256, b"bad").map_err(|e| format!("corrupting the blob: {e}"))?;
    ensure_eq!(b.check(&good.sha256).ctx("check")?, Some(false));
    ensure_eq!(
        b.check(&other.sha256).ctx("check")?,
        Some(true),
        "others intact"
    );
    ensure!(
        b.contains(&good.sha256).ctx("contains")?,
        "corrupt is not missing"
    );
    Ok(())
}

fn blob_staged_is_invisible_until_published(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    let data = b"signed firmware".to_vec();
    let sha = sha256(&data);
    let invisible = |what: &str| -> CaseOutcome {
        ensure!(!b.contains(&sha).ctx("contains")?, "{what}: visible");
        ensure!(b.open(&sha).ctx("open")?.is_none(), "{what}: opens");
        ensure_eq!(b.check(&sha).ctx("check")?, None, "{what}");
        ensure_eq!(b.local_path(&sha), None, "{what}");
        Ok(())
    };
    // Staged and synced, then dropped (the commit failed): never visible, and gone.
    {
        let st = b.stage(&data).ctx("stage")?;
        ensure_eq!(st.sha256(), sha);
        ensure_eq!(st.size(), data.len() as u64);
        b.sync_staged().ctx("sync")?;
        invisible("staged")?;
    }
    invisible("dropped")?;
    ensure!(
        b.recover(&|_| true, Sweep::Quarantine)
            .ctx("recover")?
            .published
            .is_empty(),
        "a dropped staged blob was left behind"
    );
    // Staged twice (two requests, same content), published: visible once, both succeed.
    let mut w = b.writer().ctx("writer")?;
    w.write_all(&data).ctx("write")?;
    let one = w.stage().ctx("stage")?;
    let two = b.stage(&data).ctx("stage")?;
    b.sync_staged().ctx("sync")?;
    invisible("staged twice")?;
    let p1 = one.publish().ctx("publish")?;
    ensure_eq!(p1.sha256, sha);
    ensure!(!p1.existed);
    ensure_eq!(read_blob(b, &sha)?, data);
    ensure_eq!(b.check(&sha).ctx("check")?, Some(true));
    ensure!(two.publish().ctx("publish")?.existed);
    ensure_eq!(read_blob(b, &sha)?, data);
    Ok(())
}

fn blob_recover_publishes_referenced_and_quarantines_the_rest(
    b: &dyn BlobStore,
    _: &Corrupter<'_>,
) -> CaseOutcome {
    let (kept, orphan, staged_ok, staged_lost) = (
        b"indexed".to_vec(),
        b"orphan".to_vec(),
        b"committed, not yet published".to_vec(),
        b"never committed".to_vec(),
    );
    b.put(&kept).ctx("put")?;
    b.put(&orphan).ctx("put")?;
    // Staged blobs left by a crash: forget the handles without deleting (as a crash would).
    std::mem::forget(b.stage(&staged_ok).ctx("stage")?);
    std::mem::forget(b.stage(&staged_lost).ctx("stage")?);
    b.sync_staged().ctx("sync")?;
    let refs = [sha256(&kept), sha256(&staged_ok)];
    let r = b
        .recover(&|h| refs.contains(h), Sweep::Quarantine)
        .ctx("recover")?;
    ensure_eq!(r.published, vec![sha256(&staged_ok)]);
    ensure_eq!(r.discarded, vec![sha256(&staged_lost)]);
    ensure_eq!(r.swept, vec![sha256(&orphan)]);
    ensure!(r.unswept.is_empty());
    ensure!(r.quarantine.is_some(), "swept blobs without a quarantine");
    ensure_eq!(read_blob(b, &sha256(&kept))?, kept);
    ensure_eq!(read_blob(b, &sha256(&staged_ok))?, staged_ok);
    // Quarantined: no longer in the store (not served), but not deleted either.
    ensure!(!b.contains(&sha256(&orphan)).ctx("contains")?);
    ensure!(!b.contains(&sha256(&staged_lost)).ctx("contains")?);
    // Nothing left to do the second time (the quarantine is not swept again).
    let again = b
        .recover(&|h| refs.contains(h), Sweep::Quarantine)
        .ctx("recover")?;
    ensure!(again.is_empty(), "{again:?}");
    ensure_eq!(again.quarantine, None);
    Ok(())
}

fn blob_recover_keep_leaves_unreferenced_blobs_visible(
    b: &dyn BlobStore,
    _: &Corrupter<'_>,
) -> CaseOutcome {
    let (one, two) = (b"signed a".to_vec(), b"signed b".to_vec());
    b.put(&one).ctx("put")?;
    b.put(&two).ctx("put")?;
    // What a start on a lost database does: nothing is referenced, nothing is swept.
    let r = b.recover(&|_| false, Sweep::Keep).ctx("recover")?;
    let mut unswept = r.unswept.clone();
    unswept.sort();
    let mut want = vec![sha256(&one), sha256(&two)];
    want.sort();
    ensure_eq!(unswept, want);
    ensure!(r.swept.is_empty());
    ensure_eq!(r.quarantine, None);
    ensure_eq!(read_blob(b, &sha256(&one))?, one);
    ensure_eq!(read_blob(b, &sha256(&two))?, two);
    Ok(())
}

fn blob_concurrent_writes(b: &dyn BlobStore, _: &Corrupter<'_>) -> CaseOutcome {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let want = sha256(&data);
    let results: Vec<Result<Hash32, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..6)
            .map(|k| {
                let data = &data;
                sc.spawn(move || -> Result<Hash32, String> {
                    if k % 2 == 0 {
                        Ok(b.put(data).ctx("put")?.sha256)
                    } else {
                        let mut w = b.writer().ctx("writer")?;
                        for c in data.chunks(4093) {
                            w.write_all(c).ctx("write")?;
                        }
                        Ok(w.finish().ctx("finish")?.sha256)
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("writer panicked".into())))
            .collect()
    });
    for r in results {
        ensure_eq!(r?, want);
    }
    ensure_eq!(b.check(&want).ctx("check")?, Some(true));
    ensure_eq!(read_blob(b, &want)?, data);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Merkle tree and signed tree heads
// ---------------------------------------------------------------------------------------------

fn tree_roots_and_proofs_match_the_records(s: &dyn Store) -> CaseOutcome {
    use fwseal_tlog::{verify_consistency, verify_inclusion, LeafHashes, TreeError};
    ensure_eq!(s.tree_size().ctx("size")?, 0);
    ensure_eq!(s.tree_root(0).ctx("empty root")?, fwseal_tlog::EMPTY_ROOT);
    const N: u64 = 21;
    fill(s, 1, N)?;
    ensure_eq!(s.tree_size().ctx("size")?, N);
    let recs = s.records(1, 100).ctx("records")?;
    // Leaf i is the canonical encoding of record i + 1.
    let leaves: Vec<Hash32> = recs
        .iter()
        .map(|r| {
            fwseal_tlog::leaf_hash(&crate::record::canonical_encoding(
                r.seq,
                &r.prev_hash,
                &r.entry,
            ))
        })
        .collect();
    for (i, l) in leaves.iter().enumerate() {
        ensure_eq!(s.tree_hash(0, i as u64).ctx("leaf")?, Some(*l), "leaf {i}");
    }
    ensure_eq!(
        s.tree_hash(0, N).ctx("leaf")?,
        None,
        "no leaf beyond the log"
    );
    let reference = |size: u64| fwseal_tlog::root(&LeafHashes(&leaves), size);
    let mut roots = Vec::new();
    for size in 0..=N {
        let r = s.tree_root(size).ctx("tree_root")?;
        ensure_eq!(
            r,
            reference(size).ctx("reference root")?,
            "root of size {size}"
        );
        roots.push(r);
    }
    for size in 1..=N {
        let root = roots[size as usize];
        for i in 0..size {
            let p = s.inclusion_proof(i, size).ctx("inclusion_proof")?;
            ensure!(
                verify_inclusion(&leaves[i as usize], i, size, &p, &root).is_ok(),
                "inclusion of {i} in {size}"
            );
            // Another leaf, or a flipped proof hash, fails.
            let other = leaves[((i + 1) % N) as usize];
            ensure!(verify_inclusion(&other, i, size, &p, &root).is_err());
            if let Some(first) = p.first() {
                let mut bad = p.clone();
                bad[0] = [first[0] ^ 1; 32];
                ensure!(verify_inclusion(&leaves[i as usize], i, size, &bad, &root).is_err());
            }
        }
        for old in 0..=size {
            let p = s.consistency_proof(old, size).ctx("consistency_proof")?;
            ensure!(
                verify_consistency(old, size, &roots[old as usize], &root, &p).is_ok(),
                "consistency {old} -> {size}"
            );
            if 0 < old && old < size {
                ensure!(
                    verify_consistency(old, size, &roots[old as usize], &[7u8; 32], &p).is_err(),
                    "consistency {old} -> {size} against another root"
                );
            }
        }
    }
    // Out of range: typed tree errors, not panics.
    ensure!(matches!(
        s.inclusion_proof(N, N),
        Err(StoreError::Tree(TreeError::IndexOutOfRange { .. }))
    ));
    ensure!(matches!(
        s.inclusion_proof(0, N + 1),
        Err(StoreError::Tree(TreeError::SizeBeyondSource { .. }))
    ));
    ensure!(matches!(
        s.consistency_proof(5, 4),
        Err(StoreError::Tree(TreeError::SizeOrder { .. }))
    ));
    ensure!(s.tree_root(N + 1).is_err());
    // Proofs are short: at most ceil(log2 n) hashes.
    ensure!(s.inclusion_proof(0, N).ctx("proof")?.len() <= 5);
    Ok(())
}

fn tree_heads_are_signed_with_every_checkpoint(s: &dyn Store) -> CaseOutcome {
    use crate::tree::{default_origin, note_trust};
    let keys = TestKeys::generate()?;
    ensure_eq!(s.latest_tree_head().ctx("latest")?, None);
    let origin = default_origin(keys.ecdsa.public_key());
    ensure!(origin.starts_with("fwseal.invalid/audit/") && origin.len() == 21 + 16);
    let trust = note_trust(&origin, &keys.trusted());
    // Empty log: size 0, MTH({}).
    let cp0 = s.checkpoint(&keys.ecdsa, &keys.mldsa).ctx("checkpoint")?;
    let th = fwseal_tlog::verify_checkpoint(cp0.note.as_deref().ctx("note")?, &trust)
        .ctx("tree head 0 verifies")?;
    ensure_eq!((th.size, th.root), (0, fwseal_tlog::EMPTY_ROOT));
    setup(s, &keys)?;
    let latest = s.latest_tree_head().ctx("latest")?.ctx("a tree head")?;
    ensure_eq!(latest.seq, 10);
    let note = latest.note.as_deref().ctx("note")?;
    let th = fwseal_tlog::verify_checkpoint(note, &trust).ctx("tree head verifies")?;
    ensure_eq!(th.origin, origin);
    ensure_eq!(th.size, 10, "size = the v1 checkpoint's seq");
    ensure_eq!(th.root, s.tree_root(10).ctx("root")?);
    // Both halves: ECDSA alone is not enough.
    let mut only_ec = trust.clone();
    only_ec
        .keys
        .retain(|k| k.sig_type() == fwseal_tlog::SigType::EcdsaP256);
    ensure!(fwseal_tlog::verify_checkpoint(note, &only_ec).is_err());
    // Another log's origin is refused.
    let other = note_trust("example.com/other", &keys.trusted());
    ensure!(fwseal_tlog::verify_checkpoint(note, &other).is_err());
    // A configured origin; an invalid one is refused before anything is stored.
    let before = s.checkpoints().ctx("checkpoints")?.len();
    ensure!(matches!(
        s.checkpoint_as("has a space", &keys.ecdsa, &keys.mldsa),
        Err(StoreError::Misuse(_))
    ));
    ensure_eq!(s.checkpoints().ctx("checkpoints")?.len(), before);
    fill(s, 11, 12)?;
    let cp = s
        .checkpoint_as("log.example.com/fwseal", &keys.ecdsa, &keys.mldsa)
        .ctx("checkpoint_as")?;
    let th = fwseal_tlog::verify_checkpoint(
        cp.note.as_deref().ctx("note")?,
        &note_trust("log.example.com/fwseal", &keys.trusted()),
    )
    .ctx("configured origin")?;
    ensure_eq!((th.size, th.root), (12, s.tree_root(12).ctx("root")?));
    ensure_eq!(s.latest_tree_head().ctx("latest")?, Some(cp.clone()));
    // Consistency between two signed heads, from the store's proof.
    let old = fwseal_tlog::verify_checkpoint(note, &trust).ctx("old")?;
    let p = s.consistency_proof(old.size, th.size).ctx("proof")?;
    ensure!(fwseal_tlog::verify_consistency(old.size, th.size, &old.root, &th.root, &p).is_ok());
    // Stored and listed with the note; the whole log verifies, export included.
    let stored = s.checkpoints().ctx("checkpoints")?;
    ensure!(stored
        .iter()
        .all(|c| c.as_ref().is_ok_and(|c| c.note.is_some())));
    let rep = s.verify(&keys.trusted()).ctx("verify")?;
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!(rep.checkpoints_ok, 4);
    let mut out = Vec::new();
    s.export(&mut out).ctx("export")?;
    let text = String::from_utf8(out.clone()).ctx("utf-8")?;
    ensure!(text.contains("\"note\":"), "export carries the notes");
    let rep = verify_export(&out, &keys.trusted());
    ensure!(rep.is_ok(), "{:?}", rep.problems);
    ensure_eq!(rep.checkpoints_ok, 4);
    Ok(())
}

fn tree_heads_forged_or_mismatched_are_detected(s: &dyn Store) -> CaseOutcome {
    use crate::tree::{default_origin, sign_tree_head};
    let keys = TestKeys::generate()?;
    setup(s, &keys)?;
    let origin = default_origin(keys.ecdsa.public_key());
    let (seq, head) = s.head().ctx("head")?.ctx("head")?;
    let root = s.tree_root(seq).ctx("root")?;
    let with_note = |note: String| -> Result<Checkpoint, String> {
        let mut cp = Checkpoint::sign(seq, head, &[&keys.ecdsa, &keys.mldsa]).ctx("sign")?;
        cp.note = Some(note);
        Ok(cp)
    };
    // 1. The right v1 head, a tree head with another root (a tree that is not the records').
    let wrong_root =
        sign_tree_head(&origin, seq, &[5u8; 32], &keys.ecdsa, &keys.mldsa).ctx("sign")?;
    s.store_checkpoint(&with_note(wrong_root)?).ctx("store")?;
    // 2. A tree head of another size.
    let r9 = s.tree_root(9).ctx("root 9")?;
    let wrong_size = sign_tree_head(&origin, 9, &r9, &keys.ecdsa, &keys.mldsa).ctx("sign")?;
    s.store_checkpoint(&with_note(wrong_size)?).ctx("store")?;
    // 3. A tree head signed by keys the verifier does not trust.
    let mallory = TestKeys::generate()?;
    let forged = sign_tree_head(&origin, seq, &root, &mallory.ecdsa, &mallory.mldsa).ctx("sign")?;
    s.store_checkpoint(&with_note(forged)?).ctx("store")?;
    // 4. The classical half only (the ML-DSA line removed).
    let good = sign_tree_head(&origin, seq, &root, &keys.ecdsa, &keys.mldsa).ctx("sign")?;
    let half: String = {
        let mut lines: Vec<&str> = good.split_inclusive('\n').collect();
        lines.pop();
        lines.concat()
    };
    s.store_checkpoint(&with_note(half)?).ctx("store")?;
    // 5. A text edit under intact signatures.
    let edited = good.replacen(&format!("\n{seq}\n"), &format!("\n{}\n", seq + 1), 1);
    ensure!(edited != good);
    s.store_checkpoint(&with_note(edited)?).ctx("store")?;
    // 6. Not a note at all.
    s.store_checkpoint(&with_note("garbage".into())?)
        .ctx("store")?;

    let check = |rep: &Report| -> CaseOutcome {
        let at = kinds_at(rep, seq);
        let mismatches = at
            .iter()
            .filter(|k| matches!(k, ProblemKind::TreeHeadMismatch(_)))
            .count();
        let bad_sigs = at
            .iter()
            .filter(|k| matches!(k, ProblemKind::TreeHeadBadSignature(_)))
            .count();
        ensure_eq!(mismatches, 2, "wrong root, wrong size: {at:?}");
        ensure_eq!(bad_sigs, 4, "untrusted, half, edited, garbage: {at:?}");
        ensure_eq!(rep.problems.len(), 6, "{:?}", rep.problems);
        ensure!(rep.problems.iter().all(|p| p.is_checkpoint()));
        ensure_eq!(rep.checkpoints_ok, 2, "only the originals");
        ensure_eq!(rep.last_good_checkpoint, Some(10));
        Ok(())
    };
    check(&s.verify(&keys.trusted()).ctx("verify")?)?;
    let mut out = Vec::new();
    s.export(&mut out).ctx("export")?;
    check(&verify_export(&out, &keys.trusted()))?;
    Ok(())
}

fn artifact_record_is_the_record_committed_with_it(s: &dyn Store) -> CaseOutcome {
    fill(s, 1, 3)?;
    let m = sample_artifact("art-1", "widget", None, 1, "2026-05-01T10:00:00Z");
    let rec = s.commit(&sample_entry(4), Some(&m)).ctx("commit")?;
    fill(s, 5, 6)?;
    ensure_eq!(
        s.artifact_record("art-1").ctx("artifact_record")?,
        Some(rec)
    );
    ensure_eq!(s.artifact_record("nope").ctx("artifact_record")?, None);
    // A failed commit (duplicate id) leaves the first association alone.
    ensure!(s.commit(&sample_entry(7), Some(&m)).is_err());
    ensure_eq!(
        s.artifact_record("art-1")
            .ctx("artifact_record")?
            .map(|r| r.seq),
        Some(4)
    );
    Ok(())
}
