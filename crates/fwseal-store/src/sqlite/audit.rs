//! [`AuditLog`] on SQLite: tables `audit_log` and `audit_checkpoints`.

use super::{
    key_ids_json, opt_hex, parse_hash, parse_key_ids, parse_opt_hash, read_only, seq_i64,
    DbResult as _, SqliteStore,
};
use crate::checkpoint::Checkpoint;
use crate::meta::ArtifactMeta;
use crate::record::{
    canonical_encoding, hash_from_hex, record_hash, Action, AuditEntry, AuditRecord, Decision,
    Hash32, GENESIS_PREV_HASH,
};
use crate::{AuditLog, CheckpointRow, MalformedRow, RecordRow, StoreError};
use rusqlite::{params, OptionalExtension, Row};

/// Version 5: the Merkle tree over the records (`crate::tree`) and the checkpoints' signed
/// tree heads. `audit_tree(level, idx, hash)`: level 0 = leaf hashes (leaf `idx` = record
/// `idx + 1`), level `l` = complete subtree of leaves `[idx·2^l, (idx+1)·2^l)`; `hash` is 32
/// raw bytes. Append-only like the log. `artifact_records(artifact, seq)`: the record each
/// artifact was committed with (filled by the group commit; for artifacts older than version
/// 5, the migration takes the `sign` record whose `extra.artifact` names it).
pub(super) const SCHEMA_V5: &str = r#"
CREATE TABLE audit_tree (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
    BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
    BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
ALTER TABLE audit_checkpoints ADD COLUMN note TEXT;
CREATE TABLE artifact_records (
    artifact TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
) STRICT;
INSERT INTO artifact_records (artifact, seq)
    SELECT json_extract(extra, '$.artifact'), MIN(seq) FROM audit_log
    WHERE action = 'sign' AND decision = 'allow' AND json_valid(extra)
      AND json_extract(extra, '$.artifact') IN (SELECT id FROM artifacts)
    GROUP BY 1;
"#;

const AUDIT_COLUMNS: &str = "seq, prev_hash, hash, time, client, action, product, key_ids, \
     cert_sha256, input_sha256, output_sha256, format, mode, decision, reason, extra";

pub(super) fn decode_record(row: &Row<'_>) -> RecordRow {
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
    let note: Option<String> = row.get(3).map_err(|e| bad(format!("note: {e}")))?;
    Ok(Checkpoint {
        seq: seq_val,
        head_hash: parse_hash("head_hash", &head).map_err(bad)?,
        signatures: serde_json::from_str(&sigs).map_err(|e| bad(format!("signatures: {e}")))?,
        note,
    })
}

fn tree_get(tx: &rusqlite::Connection, level: u32, idx: u64) -> Result<Option<Hash32>, StoreError> {
    let h: Option<Vec<u8>> = tx
        .prepare_cached("SELECT hash FROM audit_tree WHERE level = ?1 AND idx = ?2")
        .db()?
        .query_row(params![level, seq_i64(idx)?], |r| r.get(0))
        .optional()
        .db()?;
    h.map(|h| {
        Hash32::try_from(h.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("tree node ({level}, {idx}) is not 32 bytes")))
    })
    .transpose()
}

/// Store leaf `index` and every node it completes (`crate::tree::append_nodes`).
fn tree_append(tx: &rusqlite::Connection, index: u64, leaf: Hash32) -> Result<(), StoreError> {
    let nodes = crate::tree::append_nodes(index, leaf, |l, i| {
        tree_get(tx, l, i)?.ok_or_else(|| {
            StoreError::Corrupt(format!("tree node ({l}, {i}) missing below leaf {index}"))
        })
    })?;
    let mut st = tx
        .prepare_cached("INSERT INTO audit_tree (level, idx, hash) VALUES (?1, ?2, ?3)")
        .db()?;
    for (l, i, h) in nodes {
        st.execute(params![l, seq_i64(i)?, &h[..]]).db()?;
    }
    Ok(())
}

/// Give every record without a leaf its leaf and nodes (after the migration to version 5,
/// the whole log; otherwise nothing). Refuses a tree with more leaves than records.
pub(super) fn complete_tree(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let leaves: i64 = tx
        .query_row("SELECT COUNT(*) FROM audit_tree WHERE level = 0", [], |r| {
            r.get(0)
        })
        .db()?;
    let records: i64 = tx
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_log", [], |r| {
            r.get(0)
        })
        .db()?;
    if leaves > records {
        return Err(StoreError::Corrupt(format!(
            "the Merkle tree has {leaves} leaves, the log {records} records"
        )));
    }
    if leaves == records {
        return Ok(());
    }
    let mut st = tx
        .prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq"
        ))
        .db()?;
    let mut rows = st.query(params![leaves]).db()?;
    let mut next = u64::try_from(leaves).unwrap_or(0);
    while let Some(row) = rows.next().db()? {
        let r = decode_record(row)
            .map_err(|m| StoreError::Corrupt(format!("audit record {:?}: {}", m.seq, m.reason)))?;
        if r.seq != next + 1 {
            return Err(StoreError::Corrupt(format!(
                "building the Merkle tree: expected record {}, found {}",
                next + 1,
                r.seq
            )));
        }
        tree_append(tx, next, r.leaf_hash())?;
        next += 1;
    }
    Ok(())
}

pub(super) fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    e: &AuditEntry,
) -> Result<AuditRecord, StoreError> {
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .db()?;
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
    tree_append(
        tx,
        seq - 1,
        fwseal_tlog::leaf_hash(&canonical_encoding(seq, &prev_hash, e)),
    )?;
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
    ).db()?;
    Ok(AuditRecord {
        seq,
        prev_hash,
        hash,
        entry: e.clone(),
    })
}

impl AuditLog for SqliteStore {
    fn commit(
        &self,
        e: &AuditEntry,
        artifact: Option<&ArtifactMeta>,
    ) -> Result<AuditRecord, StoreError> {
        self.group_commit(e, artifact)
    }

    fn head(&self) -> Result<Option<(u64, Hash32)>, StoreError> {
        let conn = self.lock();
        let head: Option<(i64, String)> = conn
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .db()?;
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
        let mut st = conn
            .prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))
            .db()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = st.query(params![seq_i64(from_seq)?, limit]).db()?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().db()? {
            out.push(decode_record(row).map_err(|m| {
                StoreError::Corrupt(format!("audit record {:?}: {}", m.seq, m.reason))
            })?);
        }
        Ok(out)
    }

    fn scan(&self, f: &mut dyn FnMut(RecordRow) -> bool) -> Result<(), StoreError> {
        // Own connection: a consistent snapshot (WAL) without holding the writer lock.
        let conn = read_only(&self.path)?;
        let tx = conn.unchecked_transaction().db()?;
        let mut st = tx
            .prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"
            ))
            .db()?;
        let mut rows = st.query([]).db()?;
        while let Some(row) = rows.next().db()? {
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
            "INSERT INTO audit_checkpoints (seq, head_hash, signatures, note) \
             VALUES (?1, ?2, ?3, ?4)",
            params![seq_i64(cp.seq)?, hex::encode(cp.head_hash), sigs, cp.note],
        )
        .db()?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(if self.schema >= 5 {
                "SELECT seq, head_hash, signatures, note FROM audit_checkpoints ORDER BY id"
            } else {
                "SELECT seq, head_hash, signatures, NULL FROM audit_checkpoints ORDER BY id"
            })
            .db()?;
        let mut rows = st.query([]).db()?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().db()? {
            out.push(decode_checkpoint(row));
        }
        Ok(out)
    }

    fn artifact_record(&self, artifact_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        if self.schema < 5 {
            return Ok(None);
        }
        let seq: Option<i64> = {
            let conn = self.lock();
            conn.query_row(
                "SELECT seq FROM artifact_records WHERE artifact = ?1",
                params![artifact_id],
                |r| r.get(0),
            )
            .optional()
            .db()?
        };
        let Some(seq) = seq else {
            return Ok(None);
        };
        let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("seq {seq}")))?;
        Ok(self.records(seq, 1)?.into_iter().find(|r| r.seq == seq))
    }

    fn tree_hash(&self, level: u32, index: u64) -> Result<Option<Hash32>, StoreError> {
        if self.schema < 5 {
            return Ok(None);
        }
        let conn = self.lock();
        tree_get(&conn, level, index)
    }
}
