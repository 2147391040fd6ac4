//! Pending signing jobs of M-of-N products and their approvals.
//!
//! A job is created `pending` when a product with an approval policy receives a sign request;
//! its input lives in the [`crate::ArtifactStore`] under its SHA-256. Every state change is one
//! `BEGIN IMMEDIATE` transaction that re-reads the job first, so two approvals racing for the
//! last slot cannot both reach the quorum: exactly one caller gets
//! [`ApproveOutcome::Quorum`] (and the job moves to `signing`), the other is refused.
//!
//! ```text
//! pending ──approve (M-th distinct)──▶ signing ──finish──▶ signed
//!    │                                    └──────fail────▶ failed
//!    └──reject──▶ rejected        (pending past its expiry reads as expired)
//! ```
//!
//! The store never reads the clock: callers pass the current time (`now_unix`).

use crate::record::Hash32;
use crate::sqlite::{parse_hash, SqliteStore};
use crate::StoreError;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

pub(crate) const SCHEMA_V2: &str = r#"
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    product       TEXT NOT NULL,
    format        TEXT NOT NULL,
    mode          TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT,
    input_sha256  TEXT NOT NULL,
    input_len     INTEGER NOT NULL,
    digest_alg    TEXT NOT NULL,
    digest        TEXT NOT NULL,
    requester     TEXT NOT NULL,
    params        TEXT NOT NULL,
    key_version   INTEGER,
    required      INTEGER NOT NULL,
    of_role       TEXT NOT NULL,
    created       TEXT NOT NULL,
    expires       TEXT NOT NULL,
    expires_unix  INTEGER NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    artifact_id   TEXT
) STRICT;
CREATE INDEX jobs_by_product ON jobs(product, state);
CREATE TABLE job_approvals (
    job_id    TEXT NOT NULL REFERENCES jobs(id),
    approver  TEXT NOT NULL,
    digest    TEXT NOT NULL,
    time      TEXT NOT NULL,
    PRIMARY KEY (job_id, approver)
) STRICT;
CREATE TRIGGER job_approvals_no_update BEFORE UPDATE ON job_approvals
    BEGIN SELECT RAISE(ABORT, 'job_approvals is append-only'); END;
CREATE TRIGGER job_approvals_no_delete BEFORE DELETE ON job_approvals
    BEGIN SELECT RAISE(ABORT, 'job_approvals is append-only'); END;
"#;

/// A job's stored state. `expired` is not stored: a `pending` job past its expiry is reported
/// as [`JobState::Expired`] by [`Job::state_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for approvals.
    Pending,
    /// Quorum reached; the signature is being made.
    Signing,
    /// Signed; `artifact_id` names the result.
    Signed,
    /// Rejected by an approver.
    Rejected,
    /// Pending past its expiry.
    Expired,
    /// Signing was refused or interrupted after the quorum (`reason` says why).
    Failed,
}

impl JobState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Signing => "signing",
            JobState::Signed => "signed",
            JobState::Rejected => "rejected",
            JobState::Expired => "expired",
            JobState::Failed => "failed",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [
            JobState::Pending,
            JobState::Signing,
            JobState::Signed,
            JobState::Rejected,
            JobState::Expired,
            JobState::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What a new job records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewJob {
    /// Job id (same syntax as artifact ids).
    pub id: String,
    /// Product.
    pub product: String,
    /// Detected format name.
    pub format: String,
    /// `embedded` or `detached`.
    pub mode: String,
    /// Input file name as submitted.
    pub name: String,
    /// Image version, if requested.
    pub version: Option<String>,
    /// SHA-256 of the input (its address in the artifact store).
    #[serde(with = "crate::record::hex32")]
    pub input_sha256: Hash32,
    /// Input length in bytes.
    pub input_len: u64,
    /// Format-aware digest algorithm (the digest the device checks).
    pub digest_alg: String,
    /// Format-aware digest; approvals bind to it.
    #[serde(with = "hex_vec")]
    pub digest: Vec<u8>,
    /// Requesting client.
    pub requester: String,
    /// The sign request's parameters (JSON object: build metadata etc.).
    pub params: serde_json::Value,
    /// The product key version current at submission.
    pub key_version: Option<u32>,
    /// Approvals required (M).
    pub required: u32,
    /// Role approvers must hold on the product.
    pub of_role: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Expiry time, RFC 3339 UTC.
    pub expires: String,
    /// Expiry, Unix seconds (what the store compares).
    #[serde(skip)]
    pub expires_unix: i64,
}

/// One recorded approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Approver identity.
    pub approver: String,
    /// When, RFC 3339 UTC.
    pub time: String,
}

/// A stored job with its approvals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    /// What was submitted.
    #[serde(flatten)]
    pub job: NewJob,
    /// Stored state (see [`Job::state_at`] for the state including expiry).
    pub state: JobState,
    /// Rejection or failure reason.
    pub reason: Option<String>,
    /// The signed artifact, once signed.
    pub artifact_id: Option<String>,
    /// Distinct approvals so far, oldest first.
    pub approvals: Vec<Approval>,
}

impl Job {
    /// The state at `now_unix`: a pending job past its expiry is expired.
    pub fn state_at(&self, now_unix: i64) -> JobState {
        if self.state == JobState::Pending && now_unix >= self.job.expires_unix {
            JobState::Expired
        } else {
            self.state
        }
    }

    /// Approver identities, oldest first.
    pub fn approvers(&self) -> Vec<String> {
        self.approvals.iter().map(|a| a.approver.clone()).collect()
    }
}

/// Why an approval or rejection was refused. Checked inside the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobRefusal {
    /// No such job.
    NotFound,
    /// The requester tried to approve or reject their own job.
    SelfApproval,
    /// This identity already approved.
    AlreadyApproved,
    /// The job expired.
    Expired,
    /// The job was rejected (reason).
    Rejected(Option<String>),
    /// The job is already signed (artifact id) or being signed.
    AlreadySigned(Option<String>),
    /// Signing failed after the quorum (reason).
    Failed(Option<String>),
    /// The approval names a different digest than the job's.
    DigestMismatch,
}

/// Result of [`JobQueue::approve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApproveOutcome {
    /// Recorded; more approvals are needed.
    Recorded {
        /// Distinct approvals now.
        approvals: u32,
        /// Required.
        required: u32,
    },
    /// Recorded and the quorum is reached: the job moved to `signing` and this caller (only
    /// this one) must sign it. Carries the job with every approval.
    Quorum(Box<Job>),
    /// Refused; nothing changed.
    Refused(JobRefusal),
}

/// The pending-job queue.
pub trait JobQueue: Send + Sync {
    /// Record a new pending job. Fails if the id exists.
    fn create_job(&self, job: &NewJob) -> Result<(), StoreError>;
    /// One job by id.
    fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Jobs of `products` (all stored states; newest first, at most `limit`).
    fn list_jobs(&self, products: &[String], limit: usize) -> Result<Vec<Job>, StoreError>;
    /// Add `approver`'s approval of `digest` (the format-aware digest they inspected). The
    /// quorum is the larger of the job's stored M and `min_required` (the current policy's M,
    /// so tightening the policy also applies to pending jobs; the stored M is raised).
    fn approve(
        &self,
        id: &str,
        approver: &str,
        digest: &[u8],
        time: &str,
        now_unix: i64,
        min_required: u32,
    ) -> Result<ApproveOutcome, StoreError>;
    /// Reject a pending job. `Ok(None)` when done, `Ok(Some(refusal))` otherwise.
    fn reject(
        &self,
        id: &str,
        who: &str,
        reason: &str,
        now_unix: i64,
    ) -> Result<Option<JobRefusal>, StoreError>;
    /// `signing` → `signed` with the artifact id.
    fn finish_job(&self, id: &str, artifact_id: &str) -> Result<(), StoreError>;
    /// `signing` → `failed` with a reason.
    fn fail_job(&self, id: &str, reason: &str) -> Result<(), StoreError>;
    /// Jobs left in `signing` by a crash become `failed` ("interrupted"); returns their ids.
    fn fail_interrupted(&self) -> Result<Vec<String>, StoreError>;
}

mod hex_vec {
    use serde::Serializer;
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

const JOB_COLUMNS: &str = "id, product, format, mode, name, version, input_sha256, input_len, \
     digest_alg, digest, requester, params, key_version, required, of_role, created, expires, \
     expires_unix, state, reason, artifact_id";

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("job {id}: bad {what}"))
}

fn decode_job(row: &Row<'_>) -> Result<Job, StoreError> {
    let id: String = row.get(0)?;
    let input: String = row.get(6)?;
    let digest: String = row.get(9)?;
    let params: String = row.get(11)?;
    let state: String = row.get(18)?;
    let len: i64 = row.get(7)?;
    let kv: Option<i64> = row.get(12)?;
    let req: i64 = row.get(13)?;
    Ok(Job {
        job: NewJob {
            product: row.get(1)?,
            format: row.get(2)?,
            mode: row.get(3)?,
            name: row.get(4)?,
            version: row.get(5)?,
            input_sha256: parse_hash("input_sha256", &input).map_err(|_| corrupt(&id, "input"))?,
            input_len: u64::try_from(len).map_err(|_| corrupt(&id, "input_len"))?,
            digest_alg: row.get(8)?,
            digest: hex::decode(&digest).map_err(|_| corrupt(&id, "digest"))?,
            requester: row.get(10)?,
            params: serde_json::from_str(&params).map_err(|_| corrupt(&id, "params"))?,
            key_version: kv
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt(&id, "key_version"))?,
            required: u32::try_from(req).map_err(|_| corrupt(&id, "required"))?,
            of_role: row.get(14)?,
            created: row.get(15)?,
            expires: row.get(16)?,
            expires_unix: row.get(17)?,
            id: id.clone(),
        },
        state: JobState::from_name(&state).ok_or_else(|| corrupt(&id, "state"))?,
        reason: row.get(19)?,
        artifact_id: row.get(20)?,
        approvals: vec![],
    })
}

fn load(conn: &rusqlite::Connection, id: &str) -> Result<Option<Job>, StoreError> {
    let job = conn
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            params![id],
            |r| Ok(decode_job(r)),
        )
        .optional()?
        .transpose()?;
    let Some(mut job) = job else { return Ok(None) };
    let mut st = conn.prepare(
        "SELECT approver, time FROM job_approvals WHERE job_id = ?1 ORDER BY time, approver",
    )?;
    let rows = st.query_map(params![id], |r| {
        Ok(Approval {
            approver: r.get(0)?,
            time: r.get(1)?,
        })
    })?;
    for a in rows {
        job.approvals.push(a?);
    }
    Ok(Some(job))
}

/// Refusal for a job that is not pending (or is expired) at `now_unix`.
fn not_open(job: &Job, now_unix: i64) -> Option<JobRefusal> {
    match job.state_at(now_unix) {
        JobState::Pending => None,
        JobState::Expired => Some(JobRefusal::Expired),
        JobState::Rejected => Some(JobRefusal::Rejected(job.reason.clone())),
        JobState::Signed | JobState::Signing => {
            Some(JobRefusal::AlreadySigned(job.artifact_id.clone()))
        }
        JobState::Failed => Some(JobRefusal::Failed(job.reason.clone())),
    }
}

fn set_state(
    store: &SqliteStore,
    id: &str,
    from: JobState,
    to: JobState,
    reason: Option<&str>,
    artifact: Option<&str>,
) -> Result<(), StoreError> {
    let conn = store.lock();
    let n = conn.execute(
        "UPDATE jobs SET state = ?3, reason = COALESCE(?4, reason), \
         artifact_id = COALESCE(?5, artifact_id) WHERE id = ?1 AND state = ?2",
        params![id, from.as_str(), to.as_str(), reason, artifact],
    )?;
    if n != 1 {
        return Err(StoreError::Misuse(format!(
            "job {id} is not in state {}",
            from.as_str()
        )));
    }
    Ok(())
}

impl JobQueue for SqliteStore {
    fn create_job(&self, j: &NewJob) -> Result<(), StoreError> {
        if !crate::meta::valid_id(&j.id) {
            return Err(StoreError::Misuse(format!("job id {:?} is invalid", j.id)));
        }
        if j.required == 0 {
            return Err(StoreError::Misuse(
                "a job needs at least one approval".into(),
            ));
        }
        let conn = self.lock();
        conn.execute(
            &format!(
                "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                 ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 'pending', NULL, NULL)"
            ),
            params![
                j.id,
                j.product,
                j.format,
                j.mode,
                j.name,
                j.version,
                hex::encode(j.input_sha256),
                i64::try_from(j.input_len).map_err(|_| StoreError::Misuse("input_len".into()))?,
                j.digest_alg,
                hex::encode(&j.digest),
                j.requester,
                j.params.to_string(),
                j.key_version.map(i64::from),
                i64::from(j.required),
                j.of_role,
                j.created,
                j.expires,
                j.expires_unix,
            ],
        )?;
        Ok(())
    }

    fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        load(&self.lock(), id)
    }

    fn list_jobs(&self, products: &[String], limit: usize) -> Result<Vec<Job>, StoreError> {
        let conn = self.lock();
        let mut ids = Vec::new();
        {
            let mut st = conn.prepare(
                "SELECT id FROM jobs WHERE product = ?1 ORDER BY created DESC, id LIMIT ?2",
            )?;
            let lim = i64::try_from(limit).unwrap_or(i64::MAX);
            for p in products {
                let rows = st.query_map(params![p, lim], |r| r.get::<_, String>(0))?;
                for r in rows {
                    ids.push(r?);
                }
            }
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(j) = load(&conn, &id)? {
                out.push(j);
            }
        }
        out.sort_by(|a, b| {
            b.job
                .created
                .cmp(&a.job.created)
                .then(a.job.id.cmp(&b.job.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    fn approve(
        &self,
        id: &str,
        approver: &str,
        digest: &[u8],
        time: &str,
        now_unix: i64,
        min_required: u32,
    ) -> Result<ApproveOutcome, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(mut job) = load(&tx, id)? else {
            return Ok(ApproveOutcome::Refused(JobRefusal::NotFound));
        };
        if let Some(r) = not_open(&job, now_unix) {
            return Ok(ApproveOutcome::Refused(r));
        }
        if job.job.requester == approver {
            return Ok(ApproveOutcome::Refused(JobRefusal::SelfApproval));
        }
        if job.approvals.iter().any(|a| a.approver == approver) {
            return Ok(ApproveOutcome::Refused(JobRefusal::AlreadyApproved));
        }
        if job.job.digest != digest {
            return Ok(ApproveOutcome::Refused(JobRefusal::DigestMismatch));
        }
        tx.execute(
            "INSERT INTO job_approvals (job_id, approver, digest, time) VALUES (?1, ?2, ?3, ?4)",
            params![id, approver, hex::encode(digest), time],
        )?;
        job.approvals.push(Approval {
            approver: approver.to_string(),
            time: time.to_string(),
        });
        if min_required > job.job.required {
            tx.execute(
                "UPDATE jobs SET required = ?2 WHERE id = ?1",
                params![id, i64::from(min_required)],
            )?;
            job.job.required = min_required;
        }
        let n = u32::try_from(job.approvals.len()).unwrap_or(u32::MAX);
        let out = if n >= job.job.required {
            let changed = tx.execute(
                "UPDATE jobs SET state = 'signing' WHERE id = ?1 AND state = 'pending'",
                params![id],
            )?;
            if changed != 1 {
                return Err(StoreError::Corrupt(format!("job {id}: state changed")));
            }
            job.state = JobState::Signing;
            ApproveOutcome::Quorum(Box::new(job))
        } else {
            ApproveOutcome::Recorded {
                approvals: n,
                required: job.job.required,
            }
        };
        tx.commit()?;
        Ok(out)
    }

    fn reject(
        &self,
        id: &str,
        who: &str,
        reason: &str,
        now_unix: i64,
    ) -> Result<Option<JobRefusal>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(job) = load(&tx, id)? else {
            return Ok(Some(JobRefusal::NotFound));
        };
        if let Some(r) = not_open(&job, now_unix) {
            return Ok(Some(r));
        }
        tx.execute(
            "UPDATE jobs SET state = 'rejected', reason = ?2 WHERE id = ?1 AND state = 'pending'",
            params![id, format!("rejected by {who}: {reason}")],
        )?;
        tx.commit()?;
        Ok(None)
    }

    fn finish_job(&self, id: &str, artifact_id: &str) -> Result<(), StoreError> {
        set_state(
            self,
            id,
            JobState::Signing,
            JobState::Signed,
            None,
            Some(artifact_id),
        )
    }

    fn fail_job(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        set_state(
            self,
            id,
            JobState::Signing,
            JobState::Failed,
            Some(reason),
            None,
        )
    }

    fn fail_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM jobs WHERE state = 'signing'")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        tx.execute(
            "UPDATE jobs SET state = 'failed', reason = 'signing was interrupted (daemon stopped); resubmit' \
             WHERE state = 'signing'",
            [],
        )?;
        tx.commit()?;
        Ok(ids)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(id: &str, required: u32, expires_unix: i64) -> NewJob {
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
            params: serde_json::json!({"commit": "abc"}),
            key_version: Some(1),
            required,
            of_role: "approver".into(),
            created: "2026-05-01T12:00:00Z".into(),
            expires: "2026-05-01T13:00:00Z".into(),
            expires_unix,
        }
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(d.path().join("db")).unwrap();
        (d, s)
    }

    const T: &str = "2026-05-01T12:30:00Z";

    #[test]
    fn quorum_is_reached_once_by_distinct_approvers() {
        let (_d, s) = open();
        s.create_job(&job("j1", 2, 100)).unwrap();
        let ap = |who: &str| s.approve("j1", who, &[1, 2, 3], T, 50, 0).unwrap();
        assert_eq!(ap("ci"), ApproveOutcome::Refused(JobRefusal::SelfApproval));
        assert_eq!(
            ap("alice"),
            ApproveOutcome::Recorded {
                approvals: 1,
                required: 2
            }
        );
        assert_eq!(
            ap("alice"),
            ApproveOutcome::Refused(JobRefusal::AlreadyApproved)
        );
        assert_eq!(
            s.approve("j1", "bob", &[9], T, 50, 0).unwrap(),
            ApproveOutcome::Refused(JobRefusal::DigestMismatch)
        );
        match ap("bob") {
            ApproveOutcome::Quorum(j) => {
                assert_eq!(j.approvers(), vec!["alice", "bob"]);
                assert_eq!(j.state, JobState::Signing);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ap("carol"),
            ApproveOutcome::Refused(JobRefusal::AlreadySigned(None))
        );
        s.finish_job("j1", "art1").unwrap();
        let j = s.job("j1").unwrap().unwrap();
        assert_eq!(j.state, JobState::Signed);
        assert_eq!(j.artifact_id.as_deref(), Some("art1"));
        assert!(s.finish_job("j1", "art2").is_err(), "signs at most once");
    }

    #[test]
    fn expiry_rejection_and_unknown_jobs_are_refused() {
        let (_d, s) = open();
        s.create_job(&job("j1", 2, 100)).unwrap();
        assert_eq!(
            s.approve("j1", "alice", &[1, 2, 3], T, 100, 0).unwrap(),
            ApproveOutcome::Refused(JobRefusal::Expired)
        );
        assert_eq!(
            s.job("j1").unwrap().unwrap().state_at(100),
            JobState::Expired
        );
        s.create_job(&job("j2", 1, 100)).unwrap();
        assert_eq!(s.reject("j2", "bob", "bad build", 50).unwrap(), None);
        assert_eq!(
            s.approve("j2", "alice", &[1, 2, 3], T, 50, 0).unwrap(),
            ApproveOutcome::Refused(JobRefusal::Rejected(Some(
                "rejected by bob: bad build".into()
            )))
        );
        assert_eq!(
            s.approve("nope", "alice", &[1, 2, 3], T, 50, 0).unwrap(),
            ApproveOutcome::Refused(JobRefusal::NotFound)
        );
        let l = s.list_jobs(&["widget".into()], 10).unwrap();
        assert_eq!(l.len(), 2);
        assert!(s.list_jobs(&["other".into()], 10).unwrap().is_empty());
    }

    #[test]
    fn approvals_persist_and_interrupted_signing_fails() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(d.path().join("db")).unwrap();
            s.create_job(&job("j1", 2, 100)).unwrap();
            s.approve("j1", "alice", &[1, 2, 3], T, 50, 0).unwrap();
            s.create_job(&job("j2", 1, 100)).unwrap();
            assert!(matches!(
                s.approve("j2", "alice", &[1, 2, 3], T, 50, 0).unwrap(),
                ApproveOutcome::Quorum(_)
            ));
        }
        let s = SqliteStore::open(d.path().join("db")).unwrap();
        assert_eq!(s.job("j1").unwrap().unwrap().approvers(), vec!["alice"]);
        assert_eq!(s.fail_interrupted().unwrap(), vec!["j2".to_string()]);
        assert_eq!(s.job("j2").unwrap().unwrap().state, JobState::Failed);
    }

    #[test]
    fn a_tightened_policy_raises_the_quorum_of_pending_jobs() {
        let (_d, s) = open();
        s.create_job(&job("j1", 1, 100)).unwrap();
        assert_eq!(
            s.approve("j1", "alice", &[1, 2, 3], T, 50, 2).unwrap(),
            ApproveOutcome::Recorded {
                approvals: 1,
                required: 2
            }
        );
        assert_eq!(s.job("j1").unwrap().unwrap().job.required, 2);
        // A later loosening does not lower it again.
        assert!(matches!(
            s.approve("j1", "bob", &[1, 2, 3], T, 50, 1).unwrap(),
            ApproveOutcome::Quorum(_)
        ));
    }

    #[test]
    fn racing_last_approvals_reach_the_quorum_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        let s = SqliteStore::open(&p).unwrap();
        for i in 0..20 {
            s.create_job(&job(&format!("j{i}"), 2, 100)).unwrap();
            s.approve(&format!("j{i}"), "alice", &[1, 2, 3], T, 50, 0)
                .unwrap();
        }
        // Two processes' worth of connections, one approver each, racing on every job.
        let handles: Vec<_> = ["bob", "carol"]
            .into_iter()
            .map(|who| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let s = SqliteStore::open(&p).unwrap();
                    (0..20)
                        .map(|i| {
                            matches!(
                                s.approve(&format!("j{i}"), who, &[1, 2, 3], T, 50, 0)
                                    .unwrap(),
                                ApproveOutcome::Quorum(_)
                            )
                        })
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        let wins: Vec<Vec<bool>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (i, (b, c)) in wins[0].iter().zip(&wins[1]).enumerate() {
            assert!(b ^ c, "job j{i}: exactly one quorum");
            assert_eq!(s.job(&format!("j{i}")).unwrap().unwrap().approvals.len(), 2);
        }
    }

    #[test]
    fn a_version_1_database_is_migrated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        {
            let c = rusqlite::Connection::open(&p).unwrap();
            c.execute_batch(crate::sqlite::SCHEMA_V1_FOR_TESTS).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
        }
        let s = SqliteStore::open(&p).unwrap();
        s.create_job(&job("j1", 1, 100)).unwrap();
        assert!(s.job("j1").unwrap().is_some());
    }
}
