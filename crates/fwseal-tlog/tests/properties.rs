//! Exhaustive checks for every tree size 1..=64: every inclusion proof and every consistency
//! proof verifies, the cached and uncached generators agree with a naive MTH written here from
//! the RFC definition, and every mutation is refused (each single flipped bit of each proof
//! hash, wrong index, wrong size, wrong leaf, wrong roots, a hash dropped or added).

use fwseal_tlog::merkle::LeafHashes;
use fwseal_tlog::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root, verify_consistency,
    verify_inclusion, Hash, MemoryTree, ProofError, TreeError, EMPTY_ROOT, MAX_PROOF_LEN,
};

const N: u64 = 64;

/// MTH straight from RFC 9162 §2.1.1, over a slice (a third implementation).
fn naive_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_mth(&leaves[..k]), &naive_mth(&leaves[k..]))
        }
    }
}

fn leaves() -> Vec<Hash> {
    (0..N)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// The bits flipped in each proof hash of a tree of `n` leaves: all 256 up to 16 leaves;
/// beyond that one bit per byte, the bit position rotating with the byte (every byte and
/// every bit position is hit), to keep the run short on a shared 2-core machine.
fn bits(n: u64) -> Vec<usize> {
    if n <= 16 {
        (0..256).collect()
    } else {
        (0..32).map(|byte| byte * 8 + byte % 8).collect()
    }
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8] ^= 1 << (bit % 8);
    h
}

#[test]
fn roots_agree_with_naive_mth() {
    let hashes = leaves();
    let mut t = MemoryTree::new();
    assert_eq!(root(&t, 0).expect("root"), EMPTY_ROOT);
    for (i, lh) in hashes.iter().enumerate() {
        t.push_hash(*lh);
        let n = i + 1;
        let want = naive_mth(&hashes[..n]);
        assert_eq!(t.root(), want, "size {n}");
        assert_eq!(root(&LeafHashes(&hashes), n as u64).expect("root"), want);
        // Every earlier size is still served by the grown tree.
        for m in 0..=n {
            assert_eq!(root(&t, m as u64).expect("root"), naive_mth(&hashes[..m]));
        }
    }
    assert!(matches!(
        root(&t, N + 1),
        Err(TreeError::SizeBeyondSource {
            size: 65,
            available: 64
        })
    ));
}

#[test]
fn every_inclusion_proof_verifies_and_every_mutation_fails() {
    let hashes = leaves();
    let t = MemoryTree::from_leaves((0..N).map(|i| format!("leaf {i}")));
    let roots: Vec<Hash> = (0..=N).map(|n| naive_mth(&hashes[..n as usize])).collect();
    let proofs: Vec<Vec<Vec<Hash>>> = (0..=N)
        .map(|n| {
            (0..n)
                .map(|i| inclusion_proof(&t, i, n).expect("proof"))
                .collect()
        })
        .collect();
    let mut rejected = 0u64;
    for n in 1..=N {
        let r = &roots[n as usize];
        for i in 0..n {
            let p = &proofs[n as usize][i as usize];
            let lh = &hashes[i as usize];
            assert_eq!(
                p,
                &inclusion_proof(&LeafHashes(&hashes), i, n).expect("proof"),
                "cached and uncached disagree: {i} in {n}"
            );
            assert_eq!(verify_inclusion(lh, i, n, p, r), Ok(()), "{i} in {n}");
            let mut refuse = |res: Result<(), ProofError>, what: &str| {
                assert!(res.is_err(), "{what}: accepted ({i} in {n})");
                rejected += 1;
            };
            // Single flipped bits of every proof hash.
            for (k, ph) in p.iter().enumerate() {
                for &bit in &bits(n) {
                    let mut q = p.clone();
                    q[k] = flip(ph, bit);
                    refuse(verify_inclusion(lh, i, n, &q, r), "flipped proof bit");
                }
            }
            for bit in (0..256).step_by(17) {
                refuse(
                    verify_inclusion(&flip(lh, bit), i, n, p, r),
                    "flipped leaf bit",
                );
                refuse(
                    verify_inclusion(lh, i, n, p, &flip(r, bit)),
                    "flipped root bit",
                );
            }
            // Every other index (the path's shape determines the leaf's position).
            for j in 0..n {
                if j != i {
                    refuse(verify_inclusion(lh, j, n, p, r), "wrong index");
                    refuse(
                        verify_inclusion(&hashes[j as usize], i, n, p, r),
                        "wrong leaf",
                    );
                }
            }
            assert_eq!(
                verify_inclusion(lh, n, n, p, r),
                Err(ProofError::IndexOutOfRange { index: n, size: n })
            );
            // Every other size, against that size's real root: refused unless the proof is
            // that size's own proof too.
            for m in (i + 1)..=N {
                if m != n {
                    let same = proofs[m as usize][i as usize] == *p;
                    assert_eq!(
                        verify_inclusion(lh, i, m, p, &roots[m as usize]).is_ok(),
                        same,
                        "{i} in {n}, claimed size {m}"
                    );
                }
            }
            // One hash fewer, one more.
            if !p.is_empty() {
                refuse(
                    verify_inclusion(lh, i, n, &p[..p.len() - 1], r),
                    "truncated",
                );
                refuse(verify_inclusion(lh, i, n, &p[1..], r), "first hash dropped");
            }
            let mut longer = p.clone();
            longer.push(*r);
            refuse(verify_inclusion(lh, i, n, &longer, r), "extended");
        }
    }
    assert!(rejected > 200_000, "only {rejected} mutations checked");
}

#[test]
fn every_consistency_proof_verifies_and_every_mutation_fails() {
    let hashes = leaves();
    let t = MemoryTree::from_leaves((0..N).map(|i| format!("leaf {i}")));
    let roots: Vec<Hash> = (0..=N).map(|n| naive_mth(&hashes[..n as usize])).collect();
    let table: Vec<Vec<Vec<Hash>>> = (0..=N)
        .map(|n| {
            (0..=n)
                .map(|m| consistency_proof(&t, m, n).expect("proof"))
                .collect()
        })
        .collect();
    let proof = |m: u64, n: u64| table[n as usize][m as usize].clone();
    for n in 1..=N {
        for m in 0..=n {
            let p = proof(m, n);
            assert_eq!(
                p,
                consistency_proof(&LeafHashes(&hashes), m, n).expect("proof"),
                "cached and uncached disagree: {m} -> {n}"
            );
            let (rm, rn) = (&roots[m as usize], &roots[n as usize]);
            assert_eq!(verify_consistency(m, n, rm, rn, &p), Ok(()), "{m} -> {n}");
            let refuse = |res: Result<(), ProofError>, what: &str| {
                assert!(res.is_err(), "{what}: accepted ({m} -> {n})");
            };
            if m == 0 || m == n {
                assert!(p.is_empty());
                refuse(
                    verify_consistency(m, n, rm, rn, &[*rn]),
                    "non-empty trivial proof",
                );
                if m == n {
                    refuse(
                        verify_consistency(m, n, rm, &flip(rn, 3), &p),
                        "roots differ",
                    );
                } else {
                    refuse(verify_consistency(0, n, &flip(rm, 3), rn, &p), "empty root");
                }
                continue;
            }
            for (k, ph) in p.iter().enumerate() {
                for &bit in &bits(n) {
                    let mut q = p.clone();
                    q[k] = flip(ph, bit);
                    refuse(verify_consistency(m, n, rm, rn, &q), "flipped proof bit");
                }
            }
            for bit in (0..256).step_by(17) {
                refuse(
                    verify_consistency(m, n, &flip(rm, bit), rn, &p),
                    "old root bit",
                );
                refuse(
                    verify_consistency(m, n, rm, &flip(rn, bit), &p),
                    "new root bit",
                );
            }
            refuse(verify_consistency(m, n, rn, rm, &p), "roots swapped");
            // Every other old size and every other new size, with their real roots.
            for m2 in 1..=n {
                if m2 != m {
                    let same = m2 != n && proof(m2, n) == p;
                    assert_eq!(
                        verify_consistency(m2, n, &roots[m2 as usize], rn, &p).is_ok(),
                        same,
                        "{m} -> {n} claimed as {m2} -> {n}"
                    );
                }
            }
            for n2 in m..=N {
                if n2 != n {
                    let same = n2 != m && proof(m, n2) == p;
                    assert_eq!(
                        verify_consistency(m, n2, rm, &roots[n2 as usize], &p).is_ok(),
                        same,
                        "{m} -> {n} claimed as {m} -> {n2}"
                    );
                }
            }
            refuse(
                verify_consistency(m, n, rm, rn, &p[..p.len() - 1]),
                "truncated",
            );
            let mut longer = p.clone();
            longer.push(*rn);
            refuse(verify_consistency(m, n, rm, rn, &longer), "extended");
            assert_eq!(
                verify_consistency(n, m, rn, rm, &p),
                Err(ProofError::SizeOrder { old: n, new: m })
            );
        }
    }
}

#[test]
fn bounds_are_typed_errors() {
    let z = [0u8; 32];
    let long = vec![z; MAX_PROOF_LEN + 1];
    assert_eq!(
        verify_inclusion(&z, 0, 8, &long, &z),
        Err(ProofError::TooLong { len: 65 })
    );
    assert_eq!(
        verify_consistency(3, 8, &z, &z, &long),
        Err(ProofError::TooLong { len: 65 })
    );
    assert_eq!(
        verify_inclusion(&z, 0, 0, &[], &EMPTY_ROOT),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion(&z, u64::MAX - 1, u64::MAX, &[], &z),
        Err(ProofError::SizeTooLarge { size: u64::MAX })
    );
    assert_eq!(
        verify_consistency(1, (1 << 63) + 1, &z, &z, &[z]),
        Err(ProofError::SizeTooLarge {
            size: (1 << 63) + 1
        })
    );
    assert_eq!(
        verify_consistency(3, 8, &z, &z, &[]),
        Err(ProofError::Empty)
    );
    assert_eq!(
        verify_consistency(0, 8, &EMPTY_ROOT, &z, &[z]),
        Err(ProofError::NotEmpty {
            old: 0,
            new: 8,
            len: 1
        })
    );
    // A single-leaf tree: the leaf hash is the root, the proof is empty.
    let lh = leaf_hash(b"x");
    assert_eq!(verify_inclusion(&lh, 0, 1, &[], &lh), Ok(()));
    assert_eq!(
        verify_inclusion(&lh, 0, 1, &[lh], &lh),
        Err(ProofError::TooManyHashes)
    );
    assert_eq!(
        verify_inclusion(&lh, 0, 2, &[], &lh),
        Err(ProofError::TooShort)
    );
    // The largest allowed size: a proof of the right length is checked, not refused unread.
    let big = 1u64 << 63;
    assert_eq!(
        verify_inclusion(&z, big - 1, big, &vec![z; 63], &z),
        Err(ProofError::RootMismatch)
    );
    let t = MemoryTree::from_leaves([b"a"]);
    assert!(matches!(
        inclusion_proof(&t, 1, 1),
        Err(TreeError::IndexOutOfRange { index: 1, size: 1 })
    ));
    assert!(matches!(
        consistency_proof(&t, 2, 1),
        Err(TreeError::SizeOrder { old: 2, new: 1 })
    ));
    assert!(matches!(
        root(&t, u64::MAX),
        Err(TreeError::SizeTooLarge { .. })
    ));
}
