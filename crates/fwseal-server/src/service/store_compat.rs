//! Temporary: the store traits the service is written against, until fwseal-store exports them.
#![allow(missing_docs)]

use fwseal_store::{
    ArtifactIndex, ArtifactMeta, ArtifactStore, AuditEntry, AuditLog, AuditRecord, Hash32,
    JobQueue, SqliteStore, StoreError, StoredBlob,
};
use std::path::PathBuf;

pub trait Store: AuditLog + ArtifactIndex + JobQueue + Send + Sync {
    fn commit(&self, e: &AuditEntry, a: Option<&ArtifactMeta>) -> Result<AuditRecord, StoreError>;
}
impl Store for SqliteStore {
    fn commit(&self, e: &AuditEntry, a: Option<&ArtifactMeta>) -> Result<AuditRecord, StoreError> {
        SqliteStore::commit(self, e, a)
    }
}
pub struct Blob {
    pub reader: Box<dyn std::io::Read + Send>,
    pub len: u64,
}
pub trait BlobWriter: std::io::Write + Send {
    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError>;
}
impl BlobWriter for fwseal_store::ArtifactWriter {
    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError> {
        fwseal_store::ArtifactWriter::finish(*self)
    }
}
pub trait BlobStore: Send + Sync {
    fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError>;
    fn put(&self, data: &[u8]) -> Result<StoredBlob, StoreError>;
    fn open(&self, sha256: &Hash32) -> Result<Option<Blob>, StoreError>;
    fn check(&self, sha256: &Hash32) -> Result<Option<bool>, StoreError>;
    fn local_path(&self, sha256: &Hash32) -> Option<PathBuf>;
}
pub type FsBlobStore = ArtifactStore;
impl BlobStore for ArtifactStore {
    fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(ArtifactStore::writer(self)?))
    }
    fn put(&self, data: &[u8]) -> Result<StoredBlob, StoreError> {
        ArtifactStore::put(self, data)
    }
    fn open(&self, sha256: &Hash32) -> Result<Option<Blob>, StoreError> {
        Ok(match ArtifactStore::open(self, sha256)? {
            Some(f) => {
                let len = f.metadata()?.len();
                Some(Blob {
                    reader: Box::new(f),
                    len,
                })
            }
            None => None,
        })
    }
    fn check(&self, sha256: &Hash32) -> Result<Option<bool>, StoreError> {
        ArtifactStore::check(self, sha256)
    }
    fn local_path(&self, sha256: &Hash32) -> Option<PathBuf> {
        Some(self.path(sha256))
    }
}
