//! Content-addressed blob storage: the [`BlobStore`] trait every backend implements, and the
//! filesystem backend [`fs::FsBlobStore`].
//!
//! A blob is named by the SHA-256 of its content. It becomes visible under that name only once
//! completely and durably written ([`BlobWriter::finish`]); a writer dropped before `finish`
//! leaves nothing visible. Storing content that is already present is a no-op
//! ([`StoredBlob::existed`]).
//!
//! **Staging** is for blobs that a record must announce first (a signed image, its detached
//! document and provenance: signed firmware must never be on disk without its audit record).
//! [`BlobWriter::stage`] makes the content durable under its SHA-256 in a staging area where
//! nothing can read it; [`BlobStore::sync_staged`] makes the staged names durable (one call for
//! several blobs); the caller then commits the record that references them, and only then
//! [`StagedBlob::publish`]es them. A staged blob dropped unpublished is deleted; a publish that
//! fails leaves its blob staged (the record is committed: the blob must not be lost). After a
//! crash or a failed publish, [`BlobStore::recover`] (at start-up, before serving) publishes the
//! staged blobs whose record was committed, deletes the others, and moves visible blobs no
//! record references to a quarantine (never deletes them: a lost or restored database must not
//! cost the signed artifacts; see [`Sweep`]).
//!
//! ```text
//! write ──stage──▶ staged (durable, invisible) ──sync_staged──▶ [commit record] ──publish──▶ visible
//!                     │                                          publish failed: stays staged ──┘ (recover)
//!                     └── dropped, or not referenced at recover ──▶ deleted
//! visible, not referenced at recover ──▶ quarantined (Sweep::Quarantine) or left (Sweep::Keep)
//! ```

pub mod fs;

use crate::record::Hash32;
use crate::StoreError;
use std::io::Write as _;
use std::path::PathBuf;

/// A blob after [`BlobWriter::finish`] or [`BlobStore::put`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// SHA-256 of the content.
    pub sha256: Hash32,
    /// Length in bytes.
    pub size: u64,
    /// Where it lives, for a backend that keeps blobs as plain files (see
    /// [`BlobStore::local_path`]); `None` otherwise.
    pub path: Option<PathBuf>,
    /// The same content was already stored (this write was a no-op).
    pub existed: bool,
}

/// A stored blob opened for reading ([`BlobStore::open`]).
pub struct Blob {
    /// The content, from its first byte.
    pub reader: Box<dyn std::io::Read + Send>,
    /// Its length in bytes.
    pub len: u64,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("len", &self.len).finish()
    }
}

/// Streams one new blob into a [`BlobStore`]; it is hashed as it is written. Dropping it
/// without [`BlobWriter::finish`] discards what was written: nothing becomes visible.
pub trait BlobWriter: std::io::Write + Send {
    /// Bytes written so far.
    fn size(&self) -> u64;

    /// Make the blob durable and visible under its SHA-256. If that content is already stored,
    /// what was written is discarded and `existed` is true.
    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError>;

    /// Make the content durable under its SHA-256 in the staging area, **not visible**
    /// ([`BlobStore::open`], `contains`, `check` and `local_path` do not see it) until
    /// [`StagedBlob::publish`]. Its staged name is durable once [`BlobStore::sync_staged`]
    /// returns.
    fn stage(self: Box<Self>) -> Result<Box<dyn StagedBlob>, StoreError>;
}

/// A blob written and durable but not visible ([`BlobWriter::stage`]). Dropping it without
/// [`StagedBlob::publish`] deletes it.
pub trait StagedBlob: Send {
    /// SHA-256 of the content.
    fn sha256(&self) -> Hash32;

    /// Length in bytes.
    fn size(&self) -> u64;

    /// Make it visible under its SHA-256 — after the record that references it is committed.
    /// Content already visible under that name is kept (`existed`). Needs no further sync: if
    /// the publication is lost in a crash, [`BlobStore::recover`] publishes it again.
    ///
    /// **On error the blob stays staged** (it is not deleted, whatever the cause): its record
    /// is committed, and [`BlobStore::recover`] publishes it at the next start.
    fn publish(self: Box<Self>) -> Result<StoredBlob, StoreError>;
}

/// What [`BlobStore::recover`] does with visible blobs no record references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Move them out of the store into a quarantine (the filesystem store:
    /// `<root>/.swept/<unix time>-<random>/<64 hex>`), listed in [`Recovery::swept`] and
    /// [`Recovery::quarantine`]. Nothing is deleted: an operator who restored an old database
    /// can move them back.
    Quarantine,
    /// Leave them where they are, listed in [`Recovery::unswept`] (the caller refuses to sweep,
    /// e.g. because the database references nothing at all and is likely lost).
    Keep,
}

/// What [`BlobStore::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Staged blobs whose record was committed, published now.
    pub published: Vec<Hash32>,
    /// Staged blobs no record references (their request never committed), deleted.
    pub discarded: Vec<Hash32>,
    /// Visible blobs no record references (left by an older version), moved to
    /// [`Recovery::quarantine`] ([`Sweep::Quarantine`]).
    pub swept: Vec<Hash32>,
    /// Where the swept blobs now are (`None` if none were swept).
    pub quarantine: Option<String>,
    /// Visible blobs no record references, left in place ([`Sweep::Keep`]).
    pub unswept: Vec<Hash32>,
}

impl Recovery {
    /// Nothing was changed, and nothing unreferenced was left in place.
    pub fn is_empty(&self) -> bool {
        self.published.is_empty()
            && self.discarded.is_empty()
            && self.swept.is_empty()
            && self.unswept.is_empty()
    }
}

/// A content-addressed (SHA-256) blob store. Object-safe: the server holds an
/// `Arc<dyn BlobStore>`. Implementations must be safe to use from many threads at once,
/// including concurrent writes of the same content.
pub trait BlobStore: Send + Sync {
    /// Start writing a new blob.
    fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError>;

    /// Store `data` in one go.
    fn put(&self, data: &[u8]) -> Result<StoredBlob, StoreError> {
        let mut w = self.writer()?;
        w.write_all(data)?;
        w.finish()
    }

    /// Stage `data` in one go ([`BlobWriter::stage`]).
    fn stage(&self, data: &[u8]) -> Result<Box<dyn StagedBlob>, StoreError> {
        let mut w = self.writer()?;
        w.write_all(data)?;
        w.stage()
    }

    /// Make the names of every blob staged so far durable (the filesystem store: one `fsync`
    /// of the staging directory). Call after staging and before committing the record that
    /// references the staged blobs.
    fn sync_staged(&self) -> Result<(), StoreError>;

    /// At start-up, before any request: publish every staged blob `referenced` accepts
    /// (its record was committed but the daemon stopped, or failed, before publishing it),
    /// delete the other staged blobs, and quarantine (or, with [`Sweep::Keep`], leave) every
    /// visible blob `referenced` rejects (no record announces it). Never deletes a visible
    /// blob. Not to be called while blobs are being written (the daemon holds the state
    /// directory's lock).
    fn recover(
        &self,
        referenced: &dyn Fn(&Hash32) -> bool,
        sweep: Sweep,
    ) -> Result<Recovery, StoreError>;

    /// Open the blob with this SHA-256 for reading; `None` if absent.
    fn open(&self, sha256: &Hash32) -> Result<Option<Blob>, StoreError>;

    /// Re-hash a stored blob: `Some(true)` if intact, `Some(false)` if its content no longer
    /// matches its name (corrupt), `None` if absent.
    fn check(&self, sha256: &Hash32) -> Result<Option<bool>, StoreError>;

    /// Whether the blob is stored (not re-hashed: see [`BlobStore::check`]).
    fn contains(&self, sha256: &Hash32) -> Result<bool, StoreError> {
        Ok(self.open(sha256)?.is_some())
    }

    /// For a backend whose blobs are plain files: the file holding this blob, if it is stored,
    /// so a caller can read it with random access (and without a copy). Other backends return
    /// `None` (the default), and callers copy the blob out through [`BlobStore::open`].
    fn local_path(&self, sha256: &Hash32) -> Option<PathBuf> {
        let _ = sha256;
        None
    }
}
