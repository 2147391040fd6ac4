//! Pure, bounded verification of RFC 9162 inclusion (§2.1.3.2) and consistency (§2.1.4.2)
//! proofs. No allocation, no panics: every failure is a [`ProofError`].

use crate::merkle::{node_hash, Hash, EMPTY_ROOT};

/// The longest proof accepted, checked before any hashing. Trees have at most
/// [`MAX_TREE_SIZE`] leaves, so depth ≤ 63: an inclusion proof has ≤ 63 hashes and a
/// consistency proof ≤ 64 (the old subtree's node plus one sibling per level).
pub const MAX_PROOF_LEN: usize = 64;

/// The largest tree size accepted anywhere in this crate: 2^63. (Above it a consistency proof
/// can need 65 hashes; no log gets near it, and a size this large in a proof or checkpoint is
/// an attack or a bug.)
pub const MAX_TREE_SIZE: u64 = 1 << 63;

/// Why a proof was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More hashes than any tree of at most 2^64 − 1 leaves needs.
    #[error("proof has {len} hashes, more than the {MAX_PROOF_LEN} allowed")]
    TooLong { len: usize },
    /// A tree size above [`MAX_TREE_SIZE`].
    #[error("tree size {size} exceeds the maximum 2^63")]
    SizeTooLarge { size: u64 },
    /// Inclusion: `index >= size` (including every index of the empty tree).
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// Consistency: the old size is larger than the new one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder { old: u64, new: u64 },
    /// The proof ran out of hashes before reaching the root (RFC step: `sn` not 0 at the end).
    #[error("proof is too short for this index and size")]
    TooShort,
    /// The proof has hashes left after reaching the root (RFC step: `sn` is 0 mid-path).
    #[error("proof has hashes beyond the root for this index and size")]
    TooManyHashes,
    /// Consistency between 0 < old < new needs at least one hash (RFC step 1).
    #[error("consistency proof is empty")]
    Empty,
    /// Consistency with old size 0 or old == new: the only valid proof is the empty one.
    #[error(
        "consistency proof for old size {old}, new size {new} must be empty, has {len} hashes"
    )]
    NotEmpty { old: u64, new: u64, len: usize },
    /// The recomputed (new) root differs from the one given.
    #[error("recomputed root does not match the tree head")]
    RootMismatch,
    /// Consistency: the recomputed old root differs from the old tree head.
    #[error("recomputed old root does not match the old tree head")]
    OldRootMismatch,
}

fn check_bounds(proof: &[Hash], sizes: &[u64]) -> Result<(), ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLong { len: proof.len() });
    }
    if let Some(&size) = sizes.iter().find(|&&s| s > MAX_TREE_SIZE) {
        return Err(ProofError::SizeTooLarge { size });
    }
    Ok(())
}

/// Right-shift `fn_` and `sn` together until `fn_` has its low bit set or is 0.
fn shift_until_odd_or_zero(fn_: &mut u64, sn: &mut u64) {
    while *fn_ != 0 && *fn_ & 1 == 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// RFC 9162 §2.1.3.2: check that `leaf_hash` is leaf `index` of the tree of `size` leaves
/// whose root is `root`, given the inclusion path `proof` (deepest sibling first).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    check_bounds(proof, &[size])?;
    // 1. leaf_index must be < tree_size (this also refuses the empty tree).
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // 2. fn = leaf_index, sn = tree_size - 1; 3. r = hash.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    // 4. For each p in the path:
    for p in proof {
        // a. sn == 0: the path is longer than the tree is deep.
        if sn == 0 {
            return Err(ProofError::TooManyHashes);
        }
        // b. p is a left sibling if fn is odd or fn is the last node of its level.
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                shift_until_odd_or_zero(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        // c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. sn must be 0 and r the root.
    if sn != 0 {
        return Err(ProofError::TooShort);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: check that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`.
///
/// The RFC algorithm covers `0 < old_size < new_size`. The edge cases, as this crate (and
/// `formats/log.md`) defines them: `old_size == new_size` needs the empty proof and equal
/// roots; `old_size == 0` needs the empty proof and `old_root` = `MTH({})` (the empty tree
/// is a prefix of every tree); `old_size > new_size` is [`ProofError::SizeOrder`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    check_bounds(proof, &[old_size, new_size])?;
    if old_size > new_size {
        return Err(ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty {
                old: old_size,
                new: new_size,
                len: proof.len(),
            });
        }
        if old_size == 0 {
            if *old_root != EMPTY_ROOT {
                return Err(ProofError::OldRootMismatch);
            }
            return Ok(());
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    // 1. An empty path fails.
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::Empty);
    };
    // 2. If old_size is a power of two, old_root is (implicitly) prepended to the path.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    // 3. fn = old_size - 1, sn = new_size - 1.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // 4. Shift both right while fn is odd.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. fr = sr = first value.
    let (mut fr, mut sr) = (*seed, *seed);
    // 6. For each subsequent value c:
    for c in rest {
        // a.
        if sn == 0 {
            return Err(ProofError::TooManyHashes);
        }
        // b.
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                shift_until_odd_or_zero(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. sn == 0, fr == old_root, sr == new_root.
    if sn != 0 {
        return Err(ProofError::TooShort);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
