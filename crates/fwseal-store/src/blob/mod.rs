//! Content-addressed blob storage: the [`BlobStore`] trait every backend implements, and the
//! filesystem backend [`fs::FsBlobStore`].
//!
//! A blob is named by the SHA-256 of its content. It becomes visible under that name only once
//! completely and durably written ([`BlobWriter::finish`]); a writer dropped before `finish`
//! leaves nothing visible. Storing content that is already present is a no-op
//! ([`StoredBlob::existed`]).

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
