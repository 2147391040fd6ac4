//! RFC 9162 §2.1 Merkle Tree Hash and proof generation.
//!
//! - `leaf_hash(d) = SHA-256(0x00 || d)`, `node_hash(l, r) = SHA-256(0x01 || l || r)`;
//! - `MTH({}) = SHA-256("")` ([`EMPTY_ROOT`]), `MTH({d}) = leaf_hash(d)`, and for `n > 1`,
//!   with `k` the largest power of two smaller than `n`,
//!   `MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))`.
//!
//! Generation reads leaf hashes through [`HashSource`], so a store backend can serve them
//! from its own tables. Every range the RFC recursion visits, `D[s:s+m]`, starts at a
//! multiple of the smallest power of two `≥ m`; so whenever `m` is a power of two the range
//! is the *complete, aligned* subtree `(level = log2 m, index = s >> level)`, and a source
//! that keeps such hashes ([`HashSource::complete_subtree`]) short-cuts the recursion there.
//!
//! **Complexity.** Without cached subtrees, [`root`], [`inclusion_proof`] and
//! [`consistency_proof`] each read every leaf hash of the tree once and compute `n - 1` node
//! hashes: O(n) time, O(log n) stack (recursion depth ≤ 64). With every complete subtree
//! cached (as [`MemoryTree`] does), each is O(log n): the proof's O(log n) siblings are each
//! made of at most O(log n) complete subtrees, so O(log² n) cache reads in the worst case.

use sha2::{Digest, Sha256};
use std::error::Error as StdError;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Boxed error from a [`HashSource`] (a database error, say).
pub type SourceError = Box<dyn StdError + Send + Sync + 'static>;

/// `MTH({})`: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Errors of proof *generation* (bad arguments or a failing source). Verification has its
/// own error type, [`crate::ProofError`].
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// An inclusion proof for a leaf the tree of that size does not have.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("consistency proof from size {old} to the smaller size {new}")]
    SizeOrder { old: u64, new: u64 },
    /// A tree size above [`crate::proof::MAX_TREE_SIZE`] (2^63).
    #[error("tree size {size} exceeds the maximum 2^63")]
    SizeTooLarge { size: u64 },
    /// The source holds fewer leaves than the tree size asked for.
    #[error("tree size {size} exceeds the {available} leaves the source holds")]
    SizeBeyondSource { size: u64, available: u64 },
    /// The source failed to produce a hash.
    #[error("hash source: {0}")]
    Source(SourceError),
}

/// Where proof generation reads the tree from.
pub trait HashSource {
    /// How many leaves the source holds (proofs may be asked for any size up to this).
    fn size(&self) -> u64;

    /// The leaf hash (`SHA-256(0x00 || leaf)`) of leaf `index` (`index < size()`).
    fn leaf_hash(&self, index: u64) -> Result<Hash, SourceError>;

    /// The hash of the complete subtree of `2^level` leaves starting at leaf
    /// `index << level`, if the source keeps it; `Ok(None)` makes the caller compute it from
    /// below. Called only for subtrees wholly inside `size()`. The default keeps none.
    fn complete_subtree(&self, level: u32, index: u64) -> Result<Option<Hash>, SourceError> {
        let _ = (level, index);
        Ok(None)
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start : start + len])`, `len >= 1`.
fn subtree<S: HashSource + ?Sized>(src: &S, start: u64, len: u64) -> Result<Hash, TreeError> {
    if len == 1 {
        return src.leaf_hash(start).map_err(TreeError::Source);
    }
    if len.is_power_of_two() {
        let level = len.trailing_zeros();
        if let Some(h) = src
            .complete_subtree(level, start >> level)
            .map_err(TreeError::Source)?
        {
            return Ok(h);
        }
    }
    let k = split_point(len);
    let left = subtree(src, start, k)?;
    let right = subtree(src, start + k, len - k)?;
    Ok(node_hash(&left, &right))
}

fn check_size<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<(), TreeError> {
    if size > crate::proof::MAX_TREE_SIZE {
        return Err(TreeError::SizeTooLarge { size });
    }
    let available = src.size();
    if size > available {
        return Err(TreeError::SizeBeyondSource { size, available });
    }
    Ok(())
}

/// `MTH(D[0:size])`: the root of the tree made of the source's first `size` leaves.
pub fn root<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<Hash, TreeError> {
    check_size(src, size)?;
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    subtree(src, 0, size)
}

/// RFC 9162 §2.1.3.1 `PATH(index, D[0:size])`: the inclusion proof of leaf `index` in the
/// tree of `size` leaves, leaf-side sibling first.
pub fn inclusion_proof<S: HashSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError> {
    check_size(src, size)?;
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    path(src, index, 0, size, &mut out)?;
    Ok(out)
}

/// `PATH(m, D[start : start + n])`, appended to `out` in RFC order (deepest first).
fn path<S: HashSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(src, m, start, k, out)?;
        out.push(subtree(src, start + k, n - k)?);
    } else {
        path(src, m - k, start + k, n - k, out)?;
        out.push(subtree(src, start, k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1 `PROOF(old, D[0:new])`: the consistency proof that the tree of `old`
/// leaves is a prefix of the tree of `new` leaves. Empty when `old == 0` or `old == new`
/// (nothing to prove; [`crate::verify_consistency`] accepts only the empty proof there).
pub fn consistency_proof<S: HashSource + ?Sized>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, TreeError> {
    check_size(src, new)?;
    if old > new {
        return Err(TreeError::SizeOrder { old, new });
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    subproof(src, old, 0, new, true, &mut out)?;
    Ok(out)
}

/// `SUBPROOF(m, D[start : start + n], b)`, appended to `out` in RFC order.
fn subproof<S: HashSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    n: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    if m == n {
        if !b {
            out.push(subtree(src, start, n)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, k, b, out)?;
        out.push(subtree(src, start + k, n - k)?);
    } else {
        subproof(src, m - k, start + k, n - k, false, out)?;
        out.push(subtree(src, start, k)?);
    }
    Ok(())
}

/// An in-memory tree that keeps every complete-subtree hash, keyed by (level, index):
/// `levels[l][i]` is the hash of leaves `[i·2^l, (i+1)·2^l)`. Appending is amortised O(1)
/// node hashes (O(log n) worst case); roots and proofs for *any* size up to [`Self::len`]
/// are O(log² n) lookups (see the module documentation). Memory: about `2n` hashes.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of the given leaf byte strings, in order.
    pub fn from_leaves<I, L>(leaves: I) -> Self
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut t = Self::new();
        for l in leaves {
            t.push(l.as_ref());
        }
        t
    }

    /// Append a leaf (its bytes); returns its index.
    pub fn push(&mut self, leaf: &[u8]) -> u64 {
        self.push_hash(leaf_hash(leaf))
    }

    /// Append a leaf by its leaf hash; returns its index.
    pub fn push_hash(&mut self, h: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let index = self.levels[0].len() as u64;
        self.levels[0].push(h);
        let mut level = 0;
        // Complete the subtrees the new leaf closes: while this level has an even count, its
        // last two hashes are the children of a new node one level up.
        while self.levels[level].len() & 1 == 0 {
            let n = self.levels[level].len();
            let node = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(node);
            level += 1;
        }
        index
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// No leaves yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        // `root` cannot fail here: the size is our own and the source never errors.
        root(self, self.len()).unwrap_or(EMPTY_ROOT)
    }
}

impl HashSource for MemoryTree {
    fn size(&self) -> u64 {
        self.len()
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash, SourceError> {
        self.levels
            .first()
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied()
            .ok_or_else(|| format!("no leaf {index}").into())
    }

    fn complete_subtree(&self, level: u32, index: u64) -> Result<Option<Hash>, SourceError> {
        Ok(usize::try_from(level)
            .ok()
            .and_then(|l| self.levels.get(l))
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied())
    }
}

/// A [`HashSource`] over a slice of leaf hashes, with no cache: every root and proof is
/// computed from the leaves (O(n)). Useful to check [`MemoryTree`] and in tests.
#[derive(Clone, Copy, Debug)]
pub struct LeafHashes<'a>(pub &'a [Hash]);

impl HashSource for LeafHashes<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash, SourceError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
            .ok_or_else(|| format!("no leaf {index}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let h: Hash = Sha256::digest(b"").into();
        assert_eq!(h, EMPTY_ROOT);
        assert_eq!(MemoryTree::new().root(), EMPTY_ROOT);
    }
}
