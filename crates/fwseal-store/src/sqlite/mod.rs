//! The SQLite backend: one database file in the state directory, WAL mode,
//! `synchronous=FULL`; writes are group-committed ([`AuditLog::commit`]): one
//! `BEGIN IMMEDIATE` transaction, one fsync, for every write queued while the previous ran.
//!
//! Everything that knows SQL or `rusqlite` is in this module tree: this file (open, schema,
//! migrations, the group commit, shared column codecs), `audit` ([`AuditLog`]), `artifacts`
//! ([`crate::ArtifactIndex`]) and `jobs` ([`crate::JobQueue`]). Its errors leave it as
//! [`StoreError::Backend`] with `backend = "sqlite"`.

mod artifacts;
mod audit;
mod jobs;

use crate::checkpoint::TrustedKeys;
use crate::meta::ArtifactMeta;
use crate::record::{hash_from_hex, AuditEntry, AuditRecord, Hash32};
use crate::verify::Report;
use crate::{AuditLog, StoreError};
use fwseal_crypto::KeyId;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The name this backend gives in [`StoreError::Backend`].
pub const BACKEND: &str = "sqlite";

/// A `rusqlite` error as a [`StoreError`] (kept private: no public signature names rusqlite).
fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        source: Box::new(e),
    }
}

/// `.db()?` converts a `rusqlite` result inside this module tree.
trait DbResult<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(db_error)
    }
}

/// Schema version stored in `PRAGMA user_version`. Version 2 added the approval jobs
/// (`jobs`, `job_approvals`), version 3 the artifacts' input `name` (older rows keep `NULL`),
/// version 4 OIDC identities on jobs and approvals (`jobs::SCHEMA_V4`), version 5 the audit
/// log's Merkle tree (`audit::SCHEMA_V5`: `audit_tree`, the checkpoints' `note`); an older
/// database is migrated in place on open (the tree is built from the existing records).
pub const SCHEMA_VERSION: i64 = 5;

/// Version 3: the input's name in the artifact index.
const SCHEMA_V3: &str = "ALTER TABLE artifacts ADD COLUMN name TEXT;";

const SCHEMA_V1: &str = r#"
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    time          TEXT NOT NULL,
    client        TEXT NOT NULL,
    action        TEXT NOT NULL,
    product       TEXT,
    key_ids       TEXT NOT NULL,
    cert_sha256   TEXT,
    input_sha256  TEXT,
    output_sha256 TEXT,
    format        TEXT,
    mode          TEXT,
    decision      TEXT NOT NULL,
    reason        TEXT,
    extra         TEXT
) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE audit_checkpoints (
    id         INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    head_hash  TEXT NOT NULL,
    signatures TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

CREATE TABLE artifacts (
    id                TEXT PRIMARY KEY,
    product           TEXT NOT NULL,
    format            TEXT NOT NULL,
    mode              TEXT NOT NULL,
    version           TEXT,
    input_sha256      TEXT NOT NULL,
    output_sha256     TEXT NOT NULL,
    detached_sha256   TEXT,
    provenance_sha256 TEXT,
    key_ids           TEXT NOT NULL,
    client            TEXT,
    created           TEXT NOT NULL,
    created_key       TEXT NOT NULL
) STRICT;
CREATE INDEX artifacts_by_product ON artifacts(product, created_key);
CREATE INDEX artifacts_by_input ON artifacts(input_sha256);
CREATE INDEX artifacts_by_output ON artifacts(output_sha256);
"#;

/// SQLite implementation of [`AuditLog`], [`crate::ArtifactIndex`] and [`crate::JobQueue`]
/// (so of [`crate::Store`]).
///
/// One connection behind a mutex serialises this process's writers; `BEGIN IMMEDIATE` plus a
/// busy timeout serialises writers from other processes. [`AuditLog::scan`] opens its own
/// read-only connection, so verification and export do not block appends.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// `PRAGMA user_version` when opened (read-only handles accept older versions, whose
    /// checkpoints have no `note` column and which have no tree).
    schema: i64,
    /// Writes waiting for the next group commit ([`SqliteStore::commit`]).
    queue: Mutex<Vec<Pending>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path.display())
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10)).db()?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Misuse(format!(
            "database cannot use WAL mode (got {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    conn.pragma_update(None, "foreign_keys", "ON").db()?;
    Ok(())
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).db()?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            schema: SCHEMA_VERSION,
            queue: Mutex::new(Vec::new()),
            path,
        })
    }

    /// Open an existing database for reading only (verification and export tools). Appends
    /// fail. The schema must be one this version knows.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = read_only(&path)?;
        let schema: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .db()?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            schema,
            queue: Mutex::new(Vec::new()),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`AuditLog::commit`] (the group commit), callable on the concrete type without the
    /// trait in scope, as before the trait had it.
    pub fn commit(
        &self,
        e: &AuditEntry,
        artifact: Option<&ArtifactMeta>,
    ) -> Result<AuditRecord, StoreError> {
        self.group_commit(e, artifact)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves at most an open transaction, which rusqlite
        // rolls back on drop; the connection itself stays usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_only(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .db()?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).db()?;
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .db()?;
    // Versions 2 to 4 only added the job tables and columns; version 5 added the tree and the
    // checkpoints' notes, which readers of older versions do without.
    if !(1..=SCHEMA_VERSION).contains(&v) {
        return Err(StoreError::Corrupt(format!(
            "schema version {v}, this build reads 1..={SCHEMA_VERSION}"
        )));
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
    match v {
        0..SCHEMA_VERSION => {
            // Each step brings version `v` to `v + 1`.
            if v < 1 {
                tx.execute_batch(SCHEMA_V1).db()?;
            }
            if v < 2 {
                tx.execute_batch(jobs::SCHEMA_V2).db()?;
            }
            if v < 3 {
                tx.execute_batch(SCHEMA_V3).db()?;
            }
            if v < 4 {
                tx.execute_batch(jobs::SCHEMA_V4).db()?;
            }
            tx.execute_batch(audit::SCHEMA_V5).db()?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .db()?;
        }
        SCHEMA_VERSION => {}
        other => {
            return Err(StoreError::Corrupt(format!(
                "schema version {other} is newer than this build ({SCHEMA_VERSION})"
            )))
        }
    }
    // A database migrated from version 4 has records but no tree yet: build it (once, O(n)).
    audit::complete_tree(&tx)?;
    tx.commit().db()?;
    Ok(())
}

/// Open the database at `path` read-only and verify it: see [`AuditLog::verify`].
pub fn verify_db(path: impl AsRef<Path>, keys: &TrustedKeys) -> Result<Report, StoreError> {
    SqliteStore::open_read_only(path)?.verify(keys)
}

fn opt_hex(h: &Option<Hash32>) -> Option<String> {
    h.as_ref().map(hex::encode)
}

fn key_ids_json(k: &[KeyId]) -> String {
    serde_json::to_string(&k.iter().map(KeyId::to_hex).collect::<Vec<_>>()).unwrap_or_default()
}

fn parse_key_ids(s: &str) -> Result<Vec<KeyId>, String> {
    let v: Vec<String> = serde_json::from_str(s).map_err(|e| format!("key_ids: {e}"))?;
    v.iter()
        .map(|k| KeyId::from_hex(k).ok_or_else(|| format!("key_ids: bad key id {k:?}")))
        .collect()
}

fn parse_hash(what: &str, s: &str) -> Result<Hash32, String> {
    hash_from_hex(s).ok_or_else(|| format!("{what}: not 64 hex digits"))
}

fn parse_opt_hash(what: &str, s: Option<String>) -> Result<Option<Hash32>, String> {
    s.map(|s| parse_hash(what, &s)).transpose()
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Misuse(format!("seq {seq} out of range")))
}

fn sort_key(what: &str, t: &str) -> Result<String, StoreError> {
    crate::time::utc_sort_key(t)
        .ok_or_else(|| StoreError::Misuse(format!("{what} {t:?} is not RFC 3339 UTC")))
}

/// One pending durable write: an audit entry and optionally the artifact row it announces.
struct Pending {
    entry: AuditEntry,
    artifact: Option<ArtifactMeta>,
    done: Arc<Mutex<Option<Result<AuditRecord, String>>>>,
}

impl SqliteStore {
    /// [`AuditLog::commit`]: append `e` and, in the same transaction, index `artifact`: both
    /// are durable (fsync) when this returns, or neither is written.
    ///
    /// Group commit: concurrent callers queue their writes; whichever holds the connection
    /// commits every queued write in one transaction (one fsync), in queue order, and the
    /// others find their result ready when they get the connection.
    fn group_commit(
        &self,
        e: &AuditEntry,
        artifact: Option<&ArtifactMeta>,
    ) -> Result<AuditRecord, StoreError> {
        e.validate()?;
        if let Some(m) = artifact {
            m.validate()?;
            sort_key("created", &m.created)?;
        }
        let done = Arc::new(Mutex::new(None));
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Pending {
                entry: e.clone(),
                artifact: artifact.cloned(),
                done: done.clone(),
            });
        let mut conn = self.lock();
        let ready = done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(r) = ready {
            return r.map_err(StoreError::Batch);
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        let outcome = (|| -> Result<Vec<AuditRecord>, StoreError> {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let mut out = Vec::with_capacity(batch.len());
            for p in &batch {
                let rec = audit::insert_audit(&tx, &p.entry)?;
                if let Some(m) = &p.artifact {
                    artifacts::insert_artifact(&tx, m)?;
                    tx.execute(
                        "INSERT INTO artifact_records (artifact, seq) VALUES (?1, ?2)",
                        rusqlite::params![m.id, seq_i64(rec.seq)?],
                    )
                    .db()?;
                }
                out.push(rec);
            }
            tx.commit().db()?;
            Ok(out)
        })();
        // Results are handed out while the connection is still held, so a caller whose write
        // was in this batch finds it ready as soon as it gets the connection.
        let mut mine = None;
        match outcome {
            Ok(records) => {
                for (p, r) in batch.into_iter().zip(records) {
                    if Arc::ptr_eq(&p.done, &done) {
                        mine = Some(Ok(r));
                    } else {
                        *p.done.lock().unwrap_or_else(|x| x.into_inner()) = Some(Ok(r));
                    }
                }
            }
            Err(err) => {
                let msg = err.to_string();
                for p in batch {
                    if Arc::ptr_eq(&p.done, &done) {
                        mine = Some(Err(err_again(&err, &msg)));
                    } else {
                        *p.done.lock().unwrap_or_else(|x| x.into_inner()) = Some(Err(msg.clone()));
                    }
                }
            }
        }
        drop(conn);
        mine.unwrap_or_else(|| Err(StoreError::Batch("write lost from its batch".into())))
    }
}

/// The committing caller gets its own error back with its original type where possible.
fn err_again(e: &StoreError, msg: &str) -> StoreError {
    match e {
        StoreError::Misuse(m) => StoreError::Misuse(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        _ => StoreError::Batch(msg.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_are_backend_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = SqliteStore::open(dir.path().join("missing-dir").join("db"))
            .expect_err("no such directory");
        assert!(
            matches!(
                err,
                StoreError::Backend {
                    backend: "sqlite",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("database (sqlite): "), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
