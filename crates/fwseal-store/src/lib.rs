//! fwseal-store: the appliance's tamper-evident audit log and its artifact store.
//!
//! - **Audit log** ([`AuditLog`]): append-only records, each hash-chained to the previous one
//!   by a documented canonical encoding ([`record::canonical_encoding`]); periodic
//!   [`Checkpoint`]s sign `(seq, head hash)` with the appliance's provenance keys; [`verify_db`]
//!   and [`verify_export`] recompute everything offline and name the first bad record.
//!   [`AuditLog::commit`] writes a record and the artifact row it announces in one durable
//!   transaction.
//! - **Artifact index** ([`ArtifactIndex`]): metadata of signed artifacts, queried by product.
//! - **Job queue** ([`JobQueue`]): pending M-of-N signing jobs and their approvals.
//! - **Blob store** ([`BlobStore`]): content-addressed (SHA-256) blobs written atomically;
//!   [`FsBlobStore`] keeps them as files.
//!
//! [`Store`] is the three database traits together: the server holds an `Arc<dyn Store>` and
//! an `Arc<dyn BlobStore>` and does not know the backend. The database backend today is SQLite
//! ([`SqliteStore`], module [`sqlite`]); a PostgreSQL backend implements the same three traits
//! in its own module and must pass the [`conformance`] suite (feature `conformance`).
//! Everything here is blocking: an async server calls it from `spawn_blocking`.
//! The on-disk formats are specified in the crate's `README.md`.
//!
//! ```
//! use fwseal_store::{Action, AuditEntry, AuditLog, Decision, SqliteStore, Store, TrustedKeys};
//! use std::sync::Arc;
//! let dir = tempfile::tempdir().unwrap();
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
//! let rec = store
//!     .append(&AuditEntry::new("2026-05-01T12:00:00Z", "ci-bot", Action::Sign, Decision::Allow))
//!     .unwrap();
//! assert_eq!(rec.seq, 1);
//! let report = store.verify(&TrustedKeys::new(vec![])).unwrap();
//! assert!(report.is_ok());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blob;
pub mod checkpoint;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod export;
pub mod jobs;
pub mod meta;
pub mod record;
pub mod sqlite;
pub mod time;
pub mod tree;
pub mod verify;

pub use blob::fs::{FsBlobStore, FsBlobWriter};
pub use blob::{Blob, BlobStore, BlobWriter, Recovery, StagedBlob, StoredBlob, Sweep};
pub use checkpoint::{checkpoint_message, Checkpoint, TrustedKeys};
pub use export::verify_export;
pub use jobs::{
    Approval, ApproveOutcome, CurrentPolicy, Job, JobQueue, JobRefusal, JobState, NewJob,
    OidcSubject, Principal,
};
pub use meta::{new_artifact_id, ArtifactMeta, ArtifactQuery};
pub use record::{Action, AuditEntry, AuditRecord, Decision, Hash32, GENESIS_PREV_HASH};
pub use sqlite::{verify_db, SqliteStore};
pub use verify::{Problem, ProblemKind, Report};

/// The filesystem blob store under its original name.
pub type ArtifactStore = FsBlobStore;
/// The filesystem blob writer under its original name.
pub type ArtifactWriter = FsBlobWriter;

use fwseal_crypto::Signer;

/// Errors from the store. `Misuse` is a caller bug (an invalid entry); `Corrupt` means the
/// stored data is not what this crate writes (tampering or damage); `Backend` is the database
/// failing (whichever backend: the error type names none); the rest are I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The caller passed something the store must not accept.
    #[error("API misuse: {0}")]
    Misuse(String),
    /// Stored data cannot be decoded.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The database backend failed (`backend` names it, e.g. `sqlite`; `source` is the
    /// backend's own error). Displayed as `database (sqlite): …`.
    #[error("database ({backend}): {source}")]
    Backend {
        /// Which backend: `sqlite`, `postgres`, ...
        backend: &'static str,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file system failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Signing a checkpoint failed.
    #[error("signing: {0}")]
    Signing(#[from] fwseal_crypto::CryptoError),
    /// A group commit this write was part of failed (the message is the batch's error).
    #[error("audit batch commit failed: {0}")]
    Batch(String),
    /// A Merkle root or proof could not be made: a leaf index or size beyond the tree
    /// (`TreeError::IndexOutOfRange`, `SizeBeyondSource`, `SizeOrder`: the caller asked for
    /// something the log does not have), or a stored node missing (`Source`).
    #[error("tree: {0}")]
    Tree(#[from] fwseal_tlog::TreeError),
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

/// The audit log. Implementations must make [`AuditLog::commit`] (and so
/// [`AuditLog::append`]) durable before returning and serialise concurrent writers (one chain,
/// no forks, no gaps).
///
/// Object-safe: every method, provided ones included, can be called on a `dyn AuditLog` or a
/// `dyn Store`.
pub trait AuditLog: Send + Sync {
    /// Append one record and, in the **same durable transaction**, index `artifact` (the
    /// artifact the record announces): assigns the next seq, chains the record, commits, and
    /// returns the record. When this returns `Ok` both are durable; when it fails neither is
    /// written (an invalid entry or artifact, or an artifact id that exists, fails it). The
    /// server calls this **before** releasing a signature; if it fails, nothing is released.
    ///
    /// Backends may group-commit concurrent callers into one transaction (SQLite does: one
    /// fsync for every write queued meanwhile); a failure of such a batch fails every write in
    /// it ([`StoreError::Batch`] for the others).
    fn commit(
        &self,
        entry: &AuditEntry,
        artifact: Option<&ArtifactMeta>,
    ) -> Result<AuditRecord, StoreError>;

    /// Append one record: [`AuditLog::commit`] without an artifact.
    fn append(&self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        self.commit(entry, None)
    }

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
    /// post-quantum) and store the checkpoint, with its signed tree head under the default
    /// origin ([`tree::default_origin`] of the classical key): see [`AuditLog::checkpoint_as`].
    fn checkpoint(
        &self,
        classical: &dyn Signer,
        pq: &dyn Signer,
    ) -> Result<Checkpoint, StoreError> {
        let origin = tree::default_origin(classical.public_key());
        self.checkpoint_as(&origin, classical, pq)
    }

    /// Sign the current head with the appliance's provenance keys and store the checkpoint:
    /// the v1 `(seq, head hash)` signatures and, over the same size (= `seq`) and the Merkle
    /// root of records `1..=seq`, a C2SP signed note for the log `origin` signed by the same
    /// two keys (`formats/log.md`). Appends may continue meanwhile: the checkpoint covers
    /// the head read at the start. An empty log gets a seq-0 checkpoint (root `MTH({})`).
    fn checkpoint_as(
        &self,
        origin: &str,
        classical: &dyn Signer,
        pq: &dyn Signer,
    ) -> Result<Checkpoint, StoreError> {
        let (seq, head) = self.head()?.unwrap_or((0, GENESIS_PREV_HASH));
        let root = self.tree_root(seq)?;
        let note = tree::sign_tree_head(origin, seq, &root, classical, pq)?;
        let mut cp = Checkpoint::sign(seq, head, &[classical, pq])?;
        cp.note = Some(note);
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

    /// The newest stored checkpoint that carries a signed tree head (not verified), if any.
    /// Among equal sizes the last stored wins.
    fn latest_tree_head(&self) -> Result<Option<Checkpoint>, StoreError> {
        let mut best: Option<Checkpoint> = None;
        for c in self.checkpoints()?.into_iter().filter_map(Result::ok) {
            if c.note.is_some() && best.as_ref().is_none_or(|b| c.seq >= b.seq) {
                best = Some(c);
            }
        }
        Ok(best)
    }

    /// A stored Merkle tree hash: level 0 is leaf `index`'s leaf hash, level `l > 0` the hash
    /// of the complete subtree of leaves `[index·2^l, (index+1)·2^l)`. `None` when not
    /// stored. A backend stores exactly the nodes [`tree::append_nodes`] names, in the same
    /// transaction as the records (so the tree always has one leaf per record).
    fn tree_hash(&self, level: u32, index: u64) -> Result<Option<Hash32>, StoreError>;

    /// The record committed together with artifact `artifact_id` by
    /// [`AuditLog::commit`] (the record that announced it), if any.
    fn artifact_record(&self, artifact_id: &str) -> Result<Option<AuditRecord>, StoreError>;

    /// The tree size: the number of records.
    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.head()?.map_or(0, |(s, _)| s))
    }

    /// `MTH` of the first `size` leaves (records `1..=size`).
    fn tree_root(&self, size: u64) -> Result<Hash32, StoreError> {
        let src = tree::LogSource {
            log: self,
            size: self.tree_size()?,
        };
        Ok(fwseal_tlog::root(&src, size)?)
    }

    /// The RFC 9162 inclusion proof of leaf `leaf_index` (record `leaf_index + 1`) in the tree
    /// of `tree_size` leaves.
    fn inclusion_proof(&self, leaf_index: u64, tree_size: u64) -> Result<Vec<Hash32>, StoreError> {
        let src = tree::LogSource {
            log: self,
            size: self.tree_size()?,
        };
        Ok(fwseal_tlog::inclusion_proof(&src, leaf_index, tree_size)?)
    }

    /// The RFC 9162 consistency proof from the tree of `old_size` leaves to `new_size`.
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash32>, StoreError> {
        let src = tree::LogSource {
            log: self,
            size: self.tree_size()?,
        };
        Ok(fwseal_tlog::consistency_proof(&src, old_size, new_size)?)
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
    /// Record a new artifact (see [`ArtifactMeta::validate`]). Fails if the id exists. (The
    /// server indexes artifacts through [`AuditLog::commit`], together with their record.)
    fn put_artifact(&self, meta: &ArtifactMeta) -> Result<(), StoreError>;

    /// One artifact by id.
    fn artifact(&self, id: &str) -> Result<Option<ArtifactMeta>, StoreError>;

    /// A product's artifacts matching `q`, newest first (by `created`, compared as instants;
    /// ties by id), at most `q.limit` (capped at [`meta::MAX_LIST`]). A `since`/`until` that
    /// is not RFC 3339 UTC is [`StoreError::Misuse`].
    fn list_artifacts(
        &self,
        product: &str,
        q: &ArtifactQuery,
    ) -> Result<Vec<ArtifactMeta>, StoreError>;

    /// Every blob an indexed artifact references (input, output, detached document,
    /// provenance), in no particular order, possibly with repeats: what
    /// [`BlobStore::recover`] keeps.
    fn artifact_blobs(&self) -> Result<Vec<Hash32>, StoreError>;
}

/// Everything the server needs from a database: the audit log, the artifact index and the job
/// queue, as one object-safe trait. Implemented for every type that implements the three (a
/// blanket impl), so `Arc<SqliteStore>` coerces to `Arc<dyn Store>` and every method of the
/// three traits can be called on the trait object:
///
/// ```
/// use fwseal_store::{ArtifactIndex, AuditLog, JobQueue, SqliteStore, Store};
/// use std::sync::Arc;
/// let dir = tempfile::tempdir().unwrap();
/// let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
/// assert_eq!(store.head().unwrap(), None);
/// assert!(store.list_artifacts("widget", &Default::default()).unwrap().is_empty());
/// assert!(JobQueue::fail_interrupted(&*store).unwrap().is_empty());
/// ```
pub trait Store: AuditLog + ArtifactIndex + JobQueue + Send + Sync {}

impl<T: AuditLog + ArtifactIndex + JobQueue + Send + Sync + ?Sized> Store for T {}
