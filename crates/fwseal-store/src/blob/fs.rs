//! The filesystem [`BlobStore`]: `<root>/sha256/<hh>/<64 hex>`, written atomically.
//!
//! A blob is written to `<root>/tmp/<random>.tmp` (same file system, so the final `rename` is
//! atomic), hashed as it is written, `fsync`ed, made read-only, renamed to its SHA-256 name,
//! and the directory is `fsync`ed. A crash at any point leaves either no file under the final
//! name or the complete one; leftovers in `tmp/` are deleted by [`FsBlobStore::new`].
//!
//! Staging ([`BlobWriter::stage`]): the `fsync`ed, read-only file is renamed to
//! `<root>/staged/<64 hex>.<random>` instead (the random part lets two requests stage the
//! same content); [`BlobStore::sync_staged`] `fsync`s `staged/` once for every blob staged so
//! far, and [`StagedBlob::publish`] renames the file to its final name without a further sync
//! (a rename is atomic: after a crash the file is under one of the two names, and
//! [`BlobStore::recover`] publishes it again if its record was committed). Per blob that is
//! one file `fsync`, plus one directory `fsync` per group of blobs (a signing stages three),
//! instead of a file and a directory `fsync` per blob. A publish that fails (no space for a new
//! shard directory, …) leaves the file in `staged/`.
//!
//! [`BlobStore::recover`] with [`Sweep::Quarantine`] moves unreferenced visible blobs to
//! `<root>/.swept/<unix time>-<random>/<64 hex>` (one directory per recovery, same file
//! system, so each move is an atomic `rename`); nothing there is served or swept again.
//!
//! Besides the [`BlobStore`] trait, [`FsBlobStore`] keeps its original inherent API (which the
//! trait methods of the same names wrap): `open` returns the [`File`], `writer` the concrete
//! [`FsBlobWriter`], `contains` a plain `bool`, and `path` names a blob's file.

use super::{Blob, BlobStore, BlobWriter, Recovery, StagedBlob, StoredBlob, Sweep};
use crate::record::Hash32;
use crate::StoreError;
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The blob store rooted at one directory (conventionally `<state>/artifacts`). Also known by
/// its original name, [`crate::ArtifactStore`].
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn random_name() -> Result<String, StoreError> {
    use rand_core::{OsRng, RngCore};
    let mut b = [0u8; 12];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| StoreError::Io(io::Error::other(e.to_string())))?;
    Ok(format!("{}.tmp", hex::encode(b)))
}

impl FsBlobStore {
    /// Use `root` (created if missing) and delete any temporary files a previous run left.
    /// Call once per process at startup: it deletes in-progress writes of other instances.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(root.join("sha256"))?;
        fs::create_dir_all(root.join("tmp"))?;
        fs::create_dir_all(root.join("staged"))?;
        sync_dir(&root)?;
        let store = FsBlobStore { root };
        store.clean_tmp()?;
        Ok(store)
    }

    /// Delete every file in `<root>/tmp/`. Returns how many were removed.
    pub fn clean_tmp(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for e in fs::read_dir(self.tmp_dir())? {
            let e = e?;
            if e.file_type()?.is_file() {
                fs::remove_file(e.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn staged_dir(&self) -> PathBuf {
        self.root.join("staged")
    }

    /// Make the blob's directory entry exist: create its shard (and make that durable) if new.
    fn ensure_shard(&self, sha256: &Hash32) -> Result<PathBuf, StoreError> {
        let shard = self.shard_dir(sha256);
        if !shard.is_dir() {
            fs::create_dir_all(&shard)?;
            sync_dir(&self.root.join("sha256"))?;
        }
        Ok(shard)
    }

    /// Move `from` (complete, synced) to the blob's final name unless that content is already
    /// there (then `from` is removed). Returns (path, existed).
    fn place(
        &self,
        from: &Path,
        sha256: &Hash32,
        size: u64,
    ) -> Result<(PathBuf, bool), StoreError> {
        self.ensure_shard(sha256)?;
        let dest = self.path(sha256);
        let existed = match fs::metadata(&dest) {
            Ok(m) => m.is_file() && m.len() == size,
            Err(_) => false,
        };
        if existed {
            fs::remove_file(from)?;
        } else {
            // Atomic: either the old name (absent or damaged) or the complete new file.
            fs::rename(from, &dest)?;
        }
        Ok((dest, existed))
    }

    /// [`BlobStore::recover`] for this store.
    pub fn recover(
        &self,
        referenced: &dyn Fn(&Hash32) -> bool,
        sweep: Sweep,
    ) -> Result<Recovery, StoreError> {
        let mut out = Recovery::default();
        for e in fs::read_dir(self.staged_dir())? {
            let e = e?;
            let path = e.path();
            let sha = e
                .file_name()
                .to_str()
                .and_then(|n| n.split_once('.'))
                .and_then(|(h, _)| parse_hex32(h));
            match sha {
                Some(sha) if referenced(&sha) => {
                    let size = e.metadata()?.len();
                    self.place(&path, &sha, size)?;
                    out.published.push(sha);
                }
                Some(sha) => {
                    fs::remove_file(&path)?;
                    out.discarded.push(sha);
                }
                None => fs::remove_file(&path)?,
            }
        }
        let mut quarantine: Option<PathBuf> = None;
        for shard in fs::read_dir(self.root.join("sha256"))? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for e in fs::read_dir(shard.path())? {
                let e = e?;
                let Some(sha) = e.file_name().to_str().and_then(parse_hex32) else {
                    continue;
                };
                if referenced(&sha) {
                    continue;
                }
                match sweep {
                    Sweep::Keep => out.unswept.push(sha),
                    Sweep::Quarantine => {
                        let q = match &quarantine {
                            Some(q) => q.clone(),
                            None => {
                                let q = self.new_quarantine()?;
                                quarantine = Some(q.clone());
                                q
                            }
                        };
                        fs::rename(e.path(), q.join(hex::encode(sha)))?;
                        out.swept.push(sha);
                    }
                }
            }
        }
        if let Some(q) = &quarantine {
            sync_dir(q)?;
            out.quarantine = Some(q.display().to_string());
        }
        if !(out.published.is_empty() && out.discarded.is_empty() && out.swept.is_empty()) {
            sync_dir(&self.staged_dir())?;
            for sha in out.published.iter().chain(&out.swept) {
                let _ = sync_dir(&self.shard_dir(sha));
            }
        }
        Ok(out)
    }

    /// A new, empty quarantine directory `<root>/.swept/<unix time>-<random>` (durable).
    fn new_quarantine(&self) -> Result<PathBuf, StoreError> {
        let base = self.root.join(".swept");
        fs::create_dir_all(&base)?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let rand = random_name()?;
        let q = base.join(format!("{secs}-{}", rand.trim_end_matches(".tmp")));
        fs::create_dir(&q)?;
        sync_dir(&base)?;
        sync_dir(&self.root)?;
        Ok(q)
    }

    fn shard_dir(&self, sha256: &Hash32) -> PathBuf {
        self.root.join("sha256").join(hex::encode(&sha256[..1]))
    }

    /// Where the blob with this SHA-256 lives (whether or not it exists).
    pub fn path(&self, sha256: &Hash32) -> PathBuf {
        self.shard_dir(sha256).join(hex::encode(sha256))
    }

    /// Whether the blob exists.
    pub fn contains(&self, sha256: &Hash32) -> bool {
        self.path(sha256).is_file()
    }

    /// Open the blob for reading; `None` if absent.
    pub fn open(&self, sha256: &Hash32) -> Result<Option<File>, StoreError> {
        match File::open(self.path(sha256)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Re-hash a stored blob: `Some(true)` if intact, `Some(false)` if its content no longer
    /// matches its name, `None` if absent.
    pub fn check(&self, sha256: &Hash32) -> Result<Option<bool>, StoreError> {
        let Some(mut f) = self.open(sha256)? else {
            return Ok(None);
        };
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(buf.get(..n).unwrap_or_default());
        }
        Ok(Some(<Hash32>::from(h.finalize()) == *sha256))
    }

    /// Start writing a new blob.
    pub fn writer(&self) -> Result<FsBlobWriter, StoreError> {
        let tmp_path = self.tmp_dir().join(random_name()?);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        Ok(FsBlobWriter {
            store: self.clone(),
            file: Some(file),
            tmp_path,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Store `data` in one go.
    pub fn put(&self, data: &[u8]) -> Result<StoredBlob, StoreError> {
        let mut w = self.writer()?;
        w.write(data)?;
        w.finish()
    }
}

/// Streams one blob into the store. Dropping it without [`FsBlobWriter::finish`] deletes the
/// temporary file; nothing ever appears under a final name until `finish` renames it there.
/// Also known by its original name, [`crate::ArtifactWriter`].
#[derive(Debug)]
pub struct FsBlobWriter {
    store: FsBlobStore,
    file: Option<File>,
    tmp_path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl FsBlobWriter {
    /// Append bytes (hashed as they are written).
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| StoreError::Misuse("artifact writer already finished".into()))?;
        f.write_all(data)?;
        self.hasher.update(data);
        self.size = self.size.saturating_add(data.len() as u64);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content `fsync`ed and read-only; its SHA-256.
    fn seal(&mut self) -> Result<Hash32, StoreError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| StoreError::Misuse("artifact writer already finished".into()))?;
        file.sync_all()?;
        let mut perms = file.metadata()?.permissions();
        perms.set_readonly(true);
        file.set_permissions(perms)?;
        drop(file);
        Ok(std::mem::take(&mut self.hasher).finalize().into())
    }

    /// Make the blob durable and visible under its SHA-256 name. If that content is already
    /// stored the temporary file is discarded (`existed = true`).
    pub fn finish(mut self) -> Result<StoredBlob, StoreError> {
        let sha256 = self.seal()?;
        let tmp = std::mem::take(&mut self.tmp_path);
        let (dest, existed) = match self.store.place(&tmp, &sha256, self.size) {
            Ok(x) => x,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if !existed {
            sync_dir(&self.store.shard_dir(&sha256))?;
        }
        Ok(StoredBlob {
            sha256,
            size: self.size,
            path: Some(dest),
            existed,
        })
    }

    /// Stage the blob ([`BlobWriter::stage`]): durable content under `staged/<sha>.<random>`,
    /// not visible.
    pub fn stage(mut self) -> Result<FsStagedBlob, StoreError> {
        let sha256 = self.seal()?;
        let name = format!("{}.{}", hex::encode(sha256), random_name()?);
        let staged = self.store.staged_dir().join(name);
        let tmp = std::mem::take(&mut self.tmp_path);
        if let Err(e) = fs::rename(&tmp, &staged) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(FsStagedBlob {
            store: self.store.clone(),
            path: staged,
            sha256,
            size: self.size,
        })
    }
}

/// A staged blob of an [`FsBlobStore`]; deleted when dropped unpublished.
#[derive(Debug)]
pub struct FsStagedBlob {
    store: FsBlobStore,
    /// Empty once published.
    path: PathBuf,
    sha256: Hash32,
    size: u64,
}

impl StagedBlob for FsStagedBlob {
    fn sha256(&self) -> Hash32 {
        self.sha256
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn publish(mut self: Box<Self>) -> Result<StoredBlob, StoreError> {
        let from = std::mem::take(&mut self.path);
        let (dest, existed) = self.store.place(&from, &self.sha256, self.size)?;
        Ok(StoredBlob {
            sha256: self.sha256,
            size: self.size,
            path: Some(dest),
            existed,
        })
    }
}

impl Drop for FsStagedBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn parse_hex32(s: &str) -> Option<Hash32> {
    let mut out = [0u8; 32];
    (s.len() == 64).then_some(())?;
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl Write for FsBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        FsBlobWriter::write(self, buf).map_err(|e| match e {
            StoreError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for FsBlobWriter {
    fn drop(&mut self) {
        if !self.tmp_path.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

impl BlobWriter for FsBlobWriter {
    fn size(&self) -> u64 {
        self.size
    }

    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError> {
        FsBlobWriter::finish(*self)
    }

    fn stage(self: Box<Self>) -> Result<Box<dyn StagedBlob>, StoreError> {
        Ok(Box::new(FsBlobWriter::stage(*self)?))
    }
}

impl BlobStore for FsBlobStore {
    fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(FsBlobStore::writer(self)?))
    }

    fn put(&self, data: &[u8]) -> Result<StoredBlob, StoreError> {
        FsBlobStore::put(self, data)
    }

    fn open(&self, sha256: &Hash32) -> Result<Option<Blob>, StoreError> {
        let Some(f) = FsBlobStore::open(self, sha256)? else {
            return Ok(None);
        };
        let len = f.metadata()?.len();
        Ok(Some(Blob {
            reader: Box::new(f),
            len,
        }))
    }

    fn check(&self, sha256: &Hash32) -> Result<Option<bool>, StoreError> {
        FsBlobStore::check(self, sha256)
    }

    fn sync_staged(&self) -> Result<(), StoreError> {
        Ok(sync_dir(&self.staged_dir())?)
    }

    fn recover(
        &self,
        referenced: &dyn Fn(&Hash32) -> bool,
        sweep: Sweep,
    ) -> Result<Recovery, StoreError> {
        FsBlobStore::recover(self, referenced, sweep)
    }

    fn contains(&self, sha256: &Hash32) -> Result<bool, StoreError> {
        Ok(FsBlobStore::contains(self, sha256))
    }

    fn local_path(&self, sha256: &Hash32) -> Option<PathBuf> {
        let p = self.path(sha256);
        p.is_file().then_some(p)
    }
}
