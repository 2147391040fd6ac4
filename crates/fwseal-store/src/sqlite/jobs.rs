//! [`JobQueue`] on SQLite: tables `jobs` and `job_approvals` (schema version 2; version 4 added
//! the OIDC columns: a job's requester issuer/subject and verified claims, an approval's name,
//! issuer, subject and matched claims — `job_approvals.approver` holds [`Principal::key`]). Every state
//! change is one `BEGIN IMMEDIATE` transaction that re-reads the job first, so two approvals
//! racing for the last slot cannot both reach the quorum.

use super::{parse_hash, DbResult as _, SqliteStore};
use crate::jobs::{
    approval_refusal, counted, quorum, rejection_reason, validate_new_job, Approval,
    ApproveOutcome, CurrentPolicy, Job, JobQueue, JobRefusal, JobState, NewJob, OidcSubject,
    Principal, INTERRUPTED_REASON,
};
use crate::StoreError;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

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

/// Version 4: OIDC identities (older rows keep `NULL`: a static-token requester or approver,
/// whose key is its name).
pub(crate) const SCHEMA_V4: &str = r#"
ALTER TABLE jobs ADD COLUMN requester_issuer TEXT;
ALTER TABLE jobs ADD COLUMN requester_subject TEXT;
ALTER TABLE jobs ADD COLUMN verified TEXT;
ALTER TABLE job_approvals ADD COLUMN name TEXT;
ALTER TABLE job_approvals ADD COLUMN issuer TEXT;
ALTER TABLE job_approvals ADD COLUMN subject TEXT;
ALTER TABLE job_approvals ADD COLUMN claims TEXT;
"#;

fn oidc_subject(issuer: Option<String>, subject: Option<String>) -> Option<OidcSubject> {
    match (issuer, subject) {
        (Some(issuer), Some(subject)) => Some(OidcSubject { issuer, subject }),
        _ => None,
    }
}

const JOB_COLUMNS: &str = "id, product, format, mode, name, version, input_sha256, input_len, \
     digest_alg, digest, requester, params, key_version, required, of_role, created, expires, \
     expires_unix, state, reason, artifact_id, requester_issuer, requester_subject, verified";

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("job {id}: bad {what}"))
}

fn decode_job(row: &Row<'_>) -> Result<Job, StoreError> {
    let id: String = row.get(0).db()?;
    let input: String = row.get(6).db()?;
    let digest: String = row.get(9).db()?;
    let params: String = row.get(11).db()?;
    let state: String = row.get(18).db()?;
    let len: i64 = row.get(7).db()?;
    let kv: Option<i64> = row.get(12).db()?;
    let req: i64 = row.get(13).db()?;
    let verified: Option<String> = row.get(23).db()?;
    Ok(Job {
        job: NewJob {
            product: row.get(1).db()?,
            format: row.get(2).db()?,
            mode: row.get(3).db()?,
            name: row.get(4).db()?,
            version: row.get(5).db()?,
            input_sha256: parse_hash("input_sha256", &input).map_err(|_| corrupt(&id, "input"))?,
            input_len: u64::try_from(len).map_err(|_| corrupt(&id, "input_len"))?,
            digest_alg: row.get(8).db()?,
            digest: hex::decode(&digest).map_err(|_| corrupt(&id, "digest"))?,
            requester: row.get(10).db()?,
            params: serde_json::from_str(&params).map_err(|_| corrupt(&id, "params"))?,
            key_version: kv
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt(&id, "key_version"))?,
            required: u32::try_from(req).map_err(|_| corrupt(&id, "required"))?,
            of_role: row.get(14).db()?,
            created: row.get(15).db()?,
            expires: row.get(16).db()?,
            expires_unix: row.get(17).db()?,
            requester_oidc: oidc_subject(row.get(21).db()?, row.get(22).db()?),
            verified: verified
                .map(|v| serde_json::from_str(&v))
                .transpose()
                .map_err(|_| corrupt(&id, "verified"))?,
            id: id.clone(),
        },
        state: JobState::from_name(&state).ok_or_else(|| corrupt(&id, "state"))?,
        reason: row.get(19).db()?,
        artifact_id: row.get(20).db()?,
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
        .optional()
        .db()?
        .transpose()?;
    let Some(mut job) = job else { return Ok(None) };
    let mut st = conn
        .prepare(
            "SELECT approver, time, name, issuer, subject, claims FROM job_approvals \
             WHERE job_id = ?1 ORDER BY time, approver",
        )
        .db()?;
    let rows = st
        .query_map(params![id], |r| {
            let key: String = r.get(0)?;
            let name: Option<String> = r.get(2)?;
            let claims: Option<String> = r.get(5)?;
            Ok((
                Principal {
                    name: name.unwrap_or(key),
                    oidc: oidc_subject(r.get(3)?, r.get(4)?),
                    claims: None,
                },
                r.get::<_, String>(1)?,
                claims,
            ))
        })
        .db()?;
    for a in rows {
        let (mut approver, time, claims) = a.db()?;
        approver.claims = claims
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|_| corrupt(id, "approval claims"))?;
        job.approvals.push(Approval { approver, time });
    }
    Ok(Some(job))
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
    let n = conn
        .execute(
            "UPDATE jobs SET state = ?3, reason = COALESCE(?4, reason), \
         artifact_id = COALESCE(?5, artifact_id) WHERE id = ?1 AND state = ?2",
            params![id, from.as_str(), to.as_str(), reason, artifact],
        )
        .db()?;
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
        validate_new_job(j)?;
        let conn = self.lock();
        conn.execute(
            &format!(
                "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                 ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 'pending', NULL, NULL, ?19, ?20, \
                 ?21)"
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
                j.requester_oidc.as_ref().map(|o| o.issuer.as_str()),
                j.requester_oidc.as_ref().map(|o| o.subject.as_str()),
                j.verified.as_ref().map(|v| v.to_string()),
            ],
        )
        .db()?;
        Ok(())
    }

    fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        load(&self.lock(), id)
    }

    fn list_jobs(&self, products: &[String], limit: usize) -> Result<Vec<Job>, StoreError> {
        let conn = self.lock();
        let mut ids = Vec::new();
        {
            let mut st = conn
                .prepare(
                    "SELECT id FROM jobs WHERE product = ?1 ORDER BY created DESC, id LIMIT ?2",
                )
                .db()?;
            let lim = i64::try_from(limit).unwrap_or(i64::MAX);
            for p in products {
                let rows = st
                    .query_map(params![p, lim], |r| r.get::<_, String>(0))
                    .db()?;
                for r in rows {
                    ids.push(r.db()?);
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
        approver: &Principal,
        digest: &[u8],
        time: &str,
        now_unix: i64,
        policy: &CurrentPolicy<'_>,
    ) -> Result<ApproveOutcome, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let Some(mut job) = load(&tx, id)? else {
            return Ok(ApproveOutcome::Refused(JobRefusal::NotFound));
        };
        if let Some(r) = approval_refusal(&job, approver, digest, now_unix) {
            return Ok(ApproveOutcome::Refused(r));
        }
        tx.execute(
            "INSERT INTO job_approvals (job_id, approver, digest, time, name, issuer, subject, \
             claims) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                approver.key(),
                hex::encode(digest),
                time,
                approver.name,
                approver.oidc.as_ref().map(|o| o.issuer.as_str()),
                approver.oidc.as_ref().map(|o| o.subject.as_str()),
                approver.claims.as_ref().map(|c| c.to_string()),
            ],
        )
        .db()?;
        job.approvals.push(Approval {
            approver: approver.clone(),
            time: time.to_string(),
        });
        let required = quorum(job.job.required, policy.min_required);
        if required != job.job.required {
            tx.execute(
                "UPDATE jobs SET required = ?2 WHERE id = ?1",
                params![id, i64::from(required)],
            )
            .db()?;
            job.job.required = required;
        }
        let counting = counted(&job, policy);
        let n = u32::try_from(counting.len()).unwrap_or(u32::MAX);
        let out = if n >= job.job.required {
            let changed = tx
                .execute(
                    "UPDATE jobs SET state = 'signing' WHERE id = ?1 AND state = 'pending'",
                    params![id],
                )
                .db()?;
            if changed != 1 {
                return Err(StoreError::Corrupt(format!("job {id}: state changed")));
            }
            job.state = JobState::Signing;
            job.approvals = counting;
            ApproveOutcome::Quorum(Box::new(job))
        } else {
            ApproveOutcome::Recorded {
                approvals: n,
                required: job.job.required,
            }
        };
        tx.commit().db()?;
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
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let Some(job) = load(&tx, id)? else {
            return Ok(Some(JobRefusal::NotFound));
        };
        if let Some(r) = crate::jobs::not_open(&job, now_unix) {
            return Ok(Some(r));
        }
        tx.execute(
            "UPDATE jobs SET state = 'rejected', reason = ?2 WHERE id = ?1 AND state = 'pending'",
            params![id, rejection_reason(who, reason)],
        )
        .db()?;
        tx.commit().db()?;
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

    fn job_inputs(&self) -> Result<Vec<crate::Hash32>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare("SELECT input_sha256 FROM jobs").db()?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).db()?;
        let mut out = Vec::new();
        for r in rows {
            let h = r.db()?;
            out.push(parse_hash("input_sha256", &h).map_err(StoreError::Corrupt)?);
        }
        Ok(out)
    }

    fn fail_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let ids: Vec<String> = {
            let mut st = tx
                .prepare("SELECT id FROM jobs WHERE state = 'signing'")
                .db()?;
            let rows = st.query_map([], |r| r.get::<_, String>(0)).db()?;
            rows.collect::<Result<_, _>>().db()?
        };
        tx.execute(
            "UPDATE jobs SET state = 'failed', reason = ?1 WHERE state = 'signing'",
            params![INTERRUPTED_REASON],
        )
        .db()?;
        tx.commit().db()?;
        Ok(ids)
    }
}

// The job rules through the trait (quorum, refusals, expiry, rejection, policy tightening,
// racing approvals on one handle, finish/fail) are conformance cases
// (`fwseal_store::conformance`, `jobs_*`). These tests are SQLite's own: persistence across
// reopening, racing connections (as from two processes), and the schema migration.
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

    const T: &str = "2026-05-01T12:30:00Z";

    #[test]
    fn approvals_persist_and_interrupted_signing_fails() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(d.path().join("db")).unwrap();
            s.create_job(&job("j1", 2, 100)).unwrap();
            s.approve(
                "j1",
                &Principal::named("alice"),
                &[1, 2, 3],
                T,
                50,
                &CurrentPolicy::ANYONE,
            )
            .unwrap();
            s.create_job(&job("j2", 1, 100)).unwrap();
            assert!(matches!(
                s.approve(
                    "j2",
                    &Principal::named("alice"),
                    &[1, 2, 3],
                    T,
                    50,
                    &CurrentPolicy::ANYONE
                )
                .unwrap(),
                ApproveOutcome::Quorum(_)
            ));
        }
        let s = SqliteStore::open(d.path().join("db")).unwrap();
        assert_eq!(s.job("j1").unwrap().unwrap().approvers(), vec!["alice"]);
        assert_eq!(s.fail_interrupted().unwrap(), vec!["j2".to_string()]);
        assert_eq!(s.job("j2").unwrap().unwrap().state, JobState::Failed);
    }

    #[test]
    fn racing_last_approvals_reach_the_quorum_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        let s = SqliteStore::open(&p).unwrap();
        for i in 0..20 {
            s.create_job(&job(&format!("j{i}"), 2, 100)).unwrap();
            s.approve(
                &format!("j{i}"),
                &Principal::named("alice"),
                &[1, 2, 3],
                T,
                50,
                &CurrentPolicy::ANYONE,
            )
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
                                s.approve(
                                    &format!("j{i}"),
                                    &Principal::named(who),
                                    &[1, 2, 3],
                                    T,
                                    50,
                                    &CurrentPolicy::ANYONE
                                )
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
            c.execute_batch(crate::sqlite::SCHEMA_V1).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
        }
        let s = SqliteStore::open(&p).unwrap();
        s.create_job(&job("j1", 1, 100)).unwrap();
        assert!(s.job("j1").unwrap().is_some());
    }
}
