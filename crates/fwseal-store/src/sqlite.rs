//! The SQLite backend: one database file in the state directory, WAL mode,
//! `synchronous=FULL`; writes are group-committed ([`SqliteStore::commit`]): one
//! `BEGIN IMMEDIATE` transaction, one fsync, for every write queued while the previous ran.

use crate::checkpoint::{Checkpoint, TrustedKeys};
use crate::meta::{ArtifactMeta, ArtifactQuery, MAX_LIST};
use crate::record::{
    hash_from_hex, record_hash, Action, AuditEntry, AuditRecord, Decision, Hash32,
    GENESIS_PREV_HASH,
};
use crate::verify::Report;
use crate::{ArtifactIndex, AuditLog, CheckpointRow, MalformedRow, RecordRow, StoreError};
use fwseal_crypto::KeyId;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Schema version stored in `PRAGMA user_version`. Version 2 added the approval jobs
/// (`jobs`, `job_approvals`); a version-1 database is migrated in place on open.
pub const SCHEMA_VERSION: i64 = 2;

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

#[cfg(test)]
pub(crate) const SCHEMA_V1_FOR_TESTS: &str = SCHEMA_V1;

/// SQLite implementation of [`AuditLog`] and [`ArtifactIndex`].
///
/// One connection behind a mutex serialises this process's writers; `BEGIN IMMEDIATE` plus a
/// busy timeout serialises writers from other processes. [`AuditLog::scan`] opens its own
/// read-only connection, so verification and export do not block appends.
pub struct SqliteStore {
    conn: Mutex<Connection>,
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
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Misuse(format!(
            "database cannot use WAL mode (got {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
            path,
        })
    }

    /// Open an existing database for reading only (verification and export tools). Appends
    /// fail. The schema must be one this version knows.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = read_only(&path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
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
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    // The audit tables are the same in every version; version 2 only added the job tables.
    if !(1..=SCHEMA_VERSION).contains(&v) {
        return Err(StoreError::Corrupt(format!(
            "schema version {v}, this build reads 1..={SCHEMA_VERSION}"
        )));
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match v {
        0 => {
            tx.execute_batch(SCHEMA_V1)?;
            tx.execute_batch(crate::jobs::SCHEMA_V2)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        1 => {
            tx.execute_batch(crate::jobs::SCHEMA_V2)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        other => {
            return Err(StoreError::Corrupt(format!(
                "schema version {other} is newer than this build ({SCHEMA_VERSION})"
            )))
        }
    }
    tx.commit()?;
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

pub(crate) fn parse_hash(what: &str, s: &str) -> Result<Hash32, String> {
    hash_from_hex(s).ok_or_else(|| format!("{what}: not 64 hex digits"))
}

fn parse_opt_hash(what: &str, s: Option<String>) -> Result<Option<Hash32>, String> {
    s.map(|s| parse_hash(what, &s)).transpose()
}

const AUDIT_COLUMNS: &str = "seq, prev_hash, hash, time, client, action, product, key_ids, \
     cert_sha256, input_sha256, output_sha256, format, mode, decision, reason, extra";

fn decode_record(row: &Row<'_>) -> RecordRow {
    let seq_raw: Result<i64, _> = row.get(0);
    let seq = seq_raw
        .ok()
        .and_then(|s| u64::try_from(s).ok())
        .filter(|&s| s > 0);
    let bad = |reason: String| MalformedRow { seq, reason };
    let Some(seq_val) = seq else {
        return Err(bad(format!(
            "seq {:?} is not a positive integer",
            row.get::<_, i64>(0).ok()
        )));
    };
    let text = |i: usize, name: &str| -> Result<String, MalformedRow> {
        row.get::<_, String>(i)
            .map_err(|e| bad(format!("{name}: {e}")))
    };
    let opt_text = |i: usize, name: &str| -> Result<Option<String>, MalformedRow> {
        row.get::<_, Option<String>>(i)
            .map_err(|e| bad(format!("{name}: {e}")))
    };
    let decision_s = text(13, "decision")?;
    let entry = AuditEntry {
        time: text(3, "time")?,
        client: text(4, "client")?,
        action: Action::from_name(&text(5, "action")?),
        product: opt_text(6, "product")?,
        key_ids: parse_key_ids(&text(7, "key_ids")?).map_err(bad)?,
        cert_sha256: parse_opt_hash("cert_sha256", opt_text(8, "cert_sha256")?).map_err(bad)?,
        input_sha256: parse_opt_hash("input_sha256", opt_text(9, "input_sha256")?).map_err(bad)?,
        output_sha256: parse_opt_hash("output_sha256", opt_text(10, "output_sha256")?)
            .map_err(bad)?,
        format: opt_text(11, "format")?,
        mode: opt_text(12, "mode")?,
        decision: Decision::from_name(&decision_s)
            .ok_or_else(|| bad(format!("decision {decision_s:?}")))?,
        reason: opt_text(14, "reason")?,
        extra: opt_text(15, "extra")?,
    };
    Ok(AuditRecord {
        seq: seq_val,
        prev_hash: parse_hash("prev_hash", &text(1, "prev_hash")?).map_err(bad)?,
        hash: parse_hash("hash", &text(2, "hash")?).map_err(bad)?,
        entry,
    })
}

fn decode_checkpoint(row: &Row<'_>) -> CheckpointRow {
    let seq = row
        .get::<_, i64>(0)
        .ok()
        .and_then(|s| u64::try_from(s).ok());
    let bad = |reason: String| MalformedRow { seq, reason };
    let seq_val = seq.ok_or_else(|| bad("seq is not a non-negative integer".into()))?;
    let head: String = row.get(1).map_err(|e| bad(format!("head_hash: {e}")))?;
    let sigs: String = row.get(2).map_err(|e| bad(format!("signatures: {e}")))?;
    Ok(Checkpoint {
        seq: seq_val,
        head_hash: parse_hash("head_hash", &head).map_err(bad)?,
        signatures: serde_json::from_str(&sigs).map_err(|e| bad(format!("signatures: {e}")))?,
    })
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Misuse(format!("seq {seq} out of range")))
}

fn insert_audit(tx: &rusqlite::Transaction<'_>, e: &AuditEntry) -> Result<AuditRecord, StoreError> {
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match head {
        None => (1u64, GENESIS_PREV_HASH),
        Some((s, h)) => {
            let s =
                u64::try_from(s).map_err(|_| StoreError::Corrupt(format!("last audit seq {s}")))?;
            let h = hash_from_hex(&h)
                .ok_or_else(|| StoreError::Corrupt(format!("audit record {s}: bad hash")))?;
            (
                s.checked_add(1)
                    .ok_or_else(|| StoreError::Corrupt("seq overflow".into()))?,
                h,
            )
        }
    };
    let hash = record_hash(seq, &prev_hash, e);
    tx.execute(
        &format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
        params![
            seq_i64(seq)?,
            hex::encode(prev_hash),
            hex::encode(hash),
            e.time,
            e.client,
            e.action.as_str(),
            e.product,
            key_ids_json(&e.key_ids),
            opt_hex(&e.cert_sha256),
            opt_hex(&e.input_sha256),
            opt_hex(&e.output_sha256),
            e.format,
            e.mode,
            e.decision.as_str(),
            e.reason,
            e.extra,
        ],
    )?;
    Ok(AuditRecord {
        seq,
        prev_hash,
        hash,
        entry: e.clone(),
    })
}

/// One pending durable write: an audit entry and optionally the artifact row it announces.
struct Pending {
    entry: AuditEntry,
    artifact: Option<ArtifactMeta>,
    done: Arc<Mutex<Option<Result<AuditRecord, String>>>>,
}

impl SqliteStore {
    /// Append `e` and, in the same transaction, index `artifact`: both are durable (fsync) when
    /// this returns, or neither is written.
    ///
    /// Group commit: concurrent callers queue their writes; whichever holds the connection
    /// commits every queued write in one transaction (one fsync), in queue order, and the
    /// others find their result ready when they get the connection.
    pub fn commit(
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
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(batch.len());
            for p in &batch {
                out.push(insert_audit(&tx, &p.entry)?);
                if let Some(m) = &p.artifact {
                    insert_artifact(&tx, m)?;
                }
            }
            tx.commit()?;
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

impl AuditLog for SqliteStore {
    fn append(&self, e: &AuditEntry) -> Result<AuditRecord, StoreError> {
        self.commit(e, None)
    }

    fn head(&self) -> Result<Option<(u64, Hash32)>, StoreError> {
        let conn = self.lock();
        let head: Option<(i64, String)> = conn
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        head.map(|(s, h)| {
            let seq = u64::try_from(s).map_err(|_| StoreError::Corrupt(format!("seq {s}")))?;
            let h = hash_from_hex(&h)
                .ok_or_else(|| StoreError::Corrupt(format!("audit record {s}: bad hash")))?;
            Ok((seq, h))
        })
        .transpose()
    }

    fn records(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = st.query(params![seq_i64(from_seq)?, limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_record(row).map_err(|m| {
                StoreError::Corrupt(format!("audit record {:?}: {}", m.seq, m.reason))
            })?);
        }
        Ok(out)
    }

    fn scan(&self, f: &mut dyn FnMut(RecordRow) -> bool) -> Result<(), StoreError> {
        // Own connection: a consistent snapshot (WAL) without holding the writer lock.
        let conn = read_only(&self.path)?;
        let tx = conn.unchecked_transaction()?;
        let mut st = tx.prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"
        ))?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            if !f(decode_record(row)) {
                break;
            }
        }
        Ok(())
    }

    fn store_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let sigs = serde_json::to_string(&cp.signatures)
            .map_err(|e| StoreError::Misuse(format!("checkpoint signatures: {e}")))?;
        let conn = self.lock();
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, head_hash, signatures) VALUES (?1, ?2, ?3)",
            params![seq_i64(cp.seq)?, hex::encode(cp.head_hash), sigs],
        )?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let conn = self.lock();
        let mut st =
            conn.prepare("SELECT seq, head_hash, signatures FROM audit_checkpoints ORDER BY id")?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_checkpoint(row));
        }
        Ok(out)
    }
}

const ARTIFACT_COLUMNS: &str = "id, product, format, mode, version, input_sha256, output_sha256, \
     detached_sha256, provenance_sha256, key_ids, client, created";

fn decode_artifact(row: &Row<'_>) -> Result<ArtifactMeta, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("artifact row: {e}"));
    let id: String = row.get(0)?;
    Ok(ArtifactMeta {
        product: row.get(1)?,
        format: row.get(2)?,
        mode: row.get(3)?,
        version: row.get(4)?,
        input_sha256: parse_hash("input_sha256", &row.get::<_, String>(5)?).map_err(corrupt)?,
        output_sha256: parse_hash("output_sha256", &row.get::<_, String>(6)?).map_err(corrupt)?,
        detached_sha256: parse_opt_hash("detached_sha256", row.get(7)?).map_err(corrupt)?,
        provenance_sha256: parse_opt_hash("provenance_sha256", row.get(8)?).map_err(corrupt)?,
        key_ids: parse_key_ids(&row.get::<_, String>(9)?).map_err(corrupt)?,
        client: row.get(10)?,
        created: row.get(11)?,
        id,
    })
}

fn sort_key(what: &str, t: &str) -> Result<String, StoreError> {
    crate::time::utc_sort_key(t)
        .ok_or_else(|| StoreError::Misuse(format!("{what} {t:?} is not RFC 3339 UTC")))
}

fn insert_artifact(conn: &Connection, m: &ArtifactMeta) -> Result<(), StoreError> {
    let created_key = sort_key("created", &m.created)?;
    conn.execute(
        &format!("INSERT INTO artifacts ({ARTIFACT_COLUMNS}, created_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            m.id,
            m.product,
            m.format,
            m.mode,
            m.version,
            hex::encode(m.input_sha256),
            hex::encode(m.output_sha256),
            opt_hex(&m.detached_sha256),
            opt_hex(&m.provenance_sha256),
            key_ids_json(&m.key_ids),
            m.client,
            m.created,
            created_key,
        ],
    )?;
    Ok(())
}

impl ArtifactIndex for SqliteStore {
    fn put_artifact(&self, m: &ArtifactMeta) -> Result<(), StoreError> {
        m.validate()?;
        let conn = self.lock();
        insert_artifact(&conn, m)
    }

    fn artifact(&self, id: &str) -> Result<Option<ArtifactMeta>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = ?1"
        ))?;
        let mut rows = st.query(params![id])?;
        match rows.next()? {
            Some(r) => Ok(Some(decode_artifact(r)?)),
            None => Ok(None),
        }
    }

    fn list_artifacts(
        &self,
        product: &str,
        q: &ArtifactQuery,
    ) -> Result<Vec<ArtifactMeta>, StoreError> {
        let since = q
            .since
            .as_deref()
            .map(|t| sort_key("since", t))
            .transpose()?;
        let until = q
            .until
            .as_deref()
            .map(|t| sort_key("until", t))
            .transpose()?;
        let digest = q.digest.as_ref().map(hex::encode);
        let limit = q.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
        let limit = i64::try_from(limit).unwrap_or(0);
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts
             WHERE product = ?1
               AND (?2 IS NULL OR version = ?2)
               AND (?3 IS NULL OR input_sha256 = ?3 OR output_sha256 = ?3
                    OR detached_sha256 = ?3 OR provenance_sha256 = ?3)
               AND (?4 IS NULL OR created_key >= ?4)
               AND (?5 IS NULL OR created_key < ?5)
             ORDER BY created_key DESC, id
             LIMIT ?6"
        ))?;
        let mut rows = st.query(params![product, q.version, digest, since, until, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(decode_artifact(r)?);
        }
        Ok(out)
    }
}
