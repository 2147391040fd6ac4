//! fwseal-store: the appliance's tamper-evident audit log and its artifact store.
//!
//! - **Audit log** ([`AuditLog`]): append-only records, each hash-chained to the previous one
//!   by a documented canonical encoding ([`record::canonical_encoding`]); periodic
//!   [`Checkpoint`]s sign `(seq, head hash)` with the appliance's provenance keys; [`verify_db`]
//!   and [`verify_export`] recompute everything offline and name the first bad record.
//! - **Artifact index** ([`ArtifactIndex`]): metadata of signed artifacts, queried by product.
//! - **Artifact store** ([`ArtifactStore`]): content-addressed files written atomically.
//!
//! The backend today is SQLite ([`SqliteStore`]); a PostgreSQL backend would implement the same
//! two traits. Everything here is blocking: an async server calls it from `spawn_blocking`.
//! The on-disk formats are specified in the crate's `README.md`.
//!
//! ```
//! use fwseal_store::{Action, AuditEntry, AuditLog, Decision, SqliteStore, TrustedKeys};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
//! let rec = store
//!     .append(&AuditEntry::new("2026-05-01T12:00:00Z", "ci-bot", Action::Sign, Decision::Allow))
//!     .unwrap();
//! assert_eq!(rec.seq, 1);
//! let report = store.verify(&TrustedKeys::new(vec![])).unwrap();
//! assert!(report.is_ok());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod artifacts;
pub mod checkpoint;
pub mod export;
pub mod jobs;
pub mod meta;
pub mod record;
pub mod sqlite;
pub mod time;
pub mod verify;

pub use artifacts::{ArtifactStore, ArtifactWriter, StoredBlob};
pub use checkpoint::{checkpoint_message, Checkpoint, TrustedKeys};
pub use export::verify_export;
pub use jobs::{ApproveOutcome, Job, JobQueue, JobRefusal, JobState, NewJob};
pub use meta::{new_artifact_id, ArtifactMeta, ArtifactQuery};
pub use record::{Action, AuditEntry, AuditRecord, Decision, Hash32, GENESIS_PREV_HASH};
pub use sqlite::{verify_db, SqliteStore};
pub use verify::{Problem, ProblemKind, Report};

use fwseal_crypto::Signer;

/// Errors from the store. `Misuse` is a caller bug (an invalid entry); `Corrupt` means the
/// stored data is not what this crate writes (tampering or damage); the rest are I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The caller passed something the store must not accept.
    #[error("API misuse: {0}")]
    Misuse(String),
    /// Stored data cannot be decoded.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The file system failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Signing a checkpoint failed.
    #[error("signing: {0}")]
    Signing(#[from] fwseal_crypto::CryptoError),
    /// A group commit this write was part of failed (the message is the batch's error).
    #[error("audit batch commit failed: {0}")]
    Batch(String),
}

/// A stored record that could not be decoded (only possible after tampering or damage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedRow {
    /// Its sequence number, if that much is readable and positive.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// One row as read back: a record, or why it is not one.
pub type RecordRow = Result<AuditRecord, MalformedRow>;

/// One stored checkpoint as read back.
pub type CheckpointRow = Result<Checkpoint, MalformedRow>;

/// The audit log. Implementations must make [`AuditLog::append`] durable before returning and
/// serialise concurrent appenders (one chain, no forks).
pub trait AuditLog: Send + Sync {
    /// Append one record: assigns the next seq, chains it, commits durably, returns it. The
    /// server calls this **before** releasing a signature; if it fails, nothing is released.
    fn append(&self, entry: &AuditEntry) -> Result<AuditRecord, StoreError>;

    /// Seq and hash of the last record, `None` when empty.
    fn head(&self) -> Result<Option<(u64, Hash32)>, StoreError>;

    /// Up to `limit` records with seq ≥ `from_seq`, in seq order. Fails on a corrupt row.
    fn records(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Every stored row in seq order, including rows that do not decode, for verification.
    /// `f` returns `false` to stop early.
    fn scan(&self, f: &mut dyn FnMut(RecordRow) -> bool) -> Result<(), StoreError>;

    /// Store a checkpoint (made by [`AuditLog::checkpoint`], or received from elsewhere).
    fn store_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError>;

    /// Every stored checkpoint, oldest first.
    fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError>;

    /// Sign the current head with the appliance's provenance keys (classical and
    /// post-quantum) and store the checkpoint. Appends may continue meanwhile: the checkpoint
    /// covers the head read at the start. An empty log gets a seq-0 checkpoint.
    fn checkpoint(
        &self,
        classical: &dyn Signer,
        pq: &dyn Signer,
    ) -> Result<Checkpoint, StoreError> {
        let (seq, head) = self.head()?.unwrap_or((0, GENESIS_PREV_HASH));
        let cp = Checkpoint::sign(seq, head, &[classical, pq])?;
        self.store_checkpoint(&cp)?;
        Ok(cp)
    }

    /// The newest stored checkpoint that decodes, if any (not verified).
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self
            .checkpoints()?
            .into_iter()
            .filter_map(Result::ok)
            .max_by_key(|c| c.seq))
    }

    /// Write the whole log as JSON Lines (see [`export`]). Fails on a row that does not
    /// decode (run [`AuditLog::verify`] to see which). Returns the number of records written.
    fn export(&self, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        use export::{header, line_json, ExportLine, RecordLine};
        let mut cps: Vec<Checkpoint> = self
            .checkpoints()?
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|m| StoreError::Corrupt(format!("checkpoint: {}", m.reason)))?;
        cps.sort_by_key(|c| c.seq);
        let mut cps = cps.into_iter().peekable();
        let mut write = |l: &ExportLine| -> Result<(), StoreError> {
            out.write_all(line_json(l).as_bytes())?;
            out.write_all(b"\n")?;
            Ok(())
        };
        write(&header())?;
        let mut n = 0u64;
        let mut failure: Option<StoreError> = None;
        self.scan(&mut |row| {
            let step = || -> Result<(), StoreError> {
                let r = row.map_err(|m| {
                    StoreError::Corrupt(format!("record {:?}: {}", m.seq, m.reason))
                })?;
                while let Some(c) = cps.next_if(|c| c.seq < r.seq) {
                    write(&ExportLine::Checkpoint(c))?;
                }
                write(&ExportLine::Record(Box::new(RecordLine::from(&r))))?;
                Ok(())
            };
            match step() {
                Ok(()) => {
                    n += 1;
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        for c in cps {
            write(&ExportLine::Checkpoint(c))?;
        }
        Ok(n)
    }

    /// Recompute the chain and check every checkpoint against `keys`.
    fn verify(&self, keys: &TrustedKeys) -> Result<Report, StoreError> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for row in self.checkpoints()? {
            match row {
                Ok(c) => good.push((c, None)),
                Err(m) => bad.push(m),
            }
        }
        let mut v = verify::ChainVerifier::new(good, keys);
        for m in bad {
            v.malformed_checkpoint(m.seq, None, m.reason);
        }
        self.scan(&mut |row| {
            match row {
                Ok(r) => v.record(&r, None),
                Err(m) => v.malformed_record(m.seq, None, m.reason),
            }
            true
        })?;
        Ok(v.finish())
    }
}

/// Metadata of signed artifacts.
pub trait ArtifactIndex: Send + Sync {
    /// Record a new artifact. Fails if the id exists.
    fn put_artifact(&self, meta: &ArtifactMeta) -> Result<(), StoreError>;

    /// One artifact by id.
    fn artifact(&self, id: &str) -> Result<Option<ArtifactMeta>, StoreError>;

    /// A product's artifacts matching `q`, newest first.
    fn list_artifacts(
        &self,
        product: &str,
        q: &ArtifactQuery,
    ) -> Result<Vec<ArtifactMeta>, StoreError>;
}
