//! Known-answer tests against the RFC 6962 reference tree used across the Certificate
//! Transparency ecosystem.
//!
//! Source of the constants: transparency-dev/merkle, `testonly/constants.go`
//! (`LeafInputs`, `NodeHashes`, `RootHashes`, `EmptyRootHash`; the same 8 leaves and roots
//! as certificate-transparency's `merkle_tree_test`). The proofs below are the RFC 6962 test
//! paths of those suites (inclusion of leaves 0, 1, 2, 5; consistency 1→8, 2→5, 2→8, 6→8),
//! written here as the `NodeHashes` entries they consist of. Data only; no code was taken.

use fwseal_tlog::merkle::LeafHashes;
use fwseal_tlog::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    Hash, HashSource, MemoryTree, ProofError, EMPTY_ROOT,
};

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots for tree sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Complete-subtree hashes: `NODES[level][index]`.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

fn h(s: &str) -> Hash {
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

fn node(level: usize, index: usize) -> Hash {
    h(NODES[level][index])
}

fn tree() -> MemoryTree {
    MemoryTree::from_leaves(LEAVES.iter().map(|l| hex::decode(l).expect("hex")))
}

#[test]
fn roots_for_every_size() {
    let t = tree();
    let hashes: Vec<Hash> = LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).expect("hex")))
        .collect();
    assert_eq!(EMPTY_ROOT, h(ROOTS[0]));
    for (size, want) in ROOTS.iter().enumerate() {
        let size = size as u64;
        assert_eq!(
            root(&t, size).expect("root"),
            h(want),
            "cached, size {size}"
        );
        assert_eq!(
            root(&LeafHashes(&hashes), size).expect("root"),
            h(want),
            "uncached, size {size}"
        );
    }
    assert_eq!(t.root(), h(ROOTS[8]));
}

#[test]
fn complete_subtrees_match_node_hashes() {
    let t = tree();
    for (level, row) in NODES.iter().enumerate() {
        for (index, want) in row.iter().enumerate() {
            let got = t
                .complete_subtree(level as u32, index as u64)
                .expect("source")
                .expect("cached");
            assert_eq!(got, h(want), "level {level} index {index}");
        }
    }
    // Nothing beyond the tree is cached.
    assert_eq!(t.complete_subtree(3, 1).expect("source"), None);
    assert_eq!(t.complete_subtree(4, 0).expect("source"), None);
}

#[test]
fn inclusion_vectors() {
    let t = tree();
    // (leaf index, tree size, path)
    let cases: Vec<(u64, u64, Vec<Hash>)> = vec![
        (0, 1, vec![]),
        (0, 8, vec![node(0, 1), node(1, 1), node(2, 1)]),
        (5, 8, vec![node(0, 4), node(1, 3), node(2, 0)]),
        (2, 3, vec![node(1, 0)]),
        (1, 5, vec![node(0, 0), node(1, 1), node(0, 4)]),
    ];
    for (index, size, want) in cases {
        let got = inclusion_proof(&t, index, size).expect("proof");
        assert_eq!(got, want, "inclusion of {index} in {size}");
        let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).expect("hex"));
        verify_inclusion(&leaf, index, size, &got, &h(ROOTS[size as usize]))
            .unwrap_or_else(|e| panic!("inclusion of {index} in {size}: {e}"));
    }
}

#[test]
fn consistency_vectors() {
    let t = tree();
    let cases: Vec<(u64, u64, Vec<Hash>)> = vec![
        (1, 1, vec![]),
        (1, 8, vec![node(0, 1), node(1, 1), node(2, 1)]),
        (6, 8, vec![node(1, 2), node(1, 3), node(2, 0)]),
        (2, 5, vec![node(1, 1), node(0, 4)]),
        (2, 8, vec![node(1, 1), node(2, 1)]),
        (0, 8, vec![]),
    ];
    for (old, new, want) in cases {
        let got = consistency_proof(&t, old, new).expect("proof");
        assert_eq!(got, want, "consistency {old} -> {new}");
        verify_consistency(
            old,
            new,
            &h(ROOTS[old as usize]),
            &h(ROOTS[new as usize]),
            &got,
        )
        .unwrap_or_else(|e| panic!("consistency {old} -> {new}: {e}"));
    }
}

/// RFC 9162 verification proves inclusion relative to a (size, root) *pair*; the pair is what
/// the signed checkpoint authenticates. A proof for size 3 verifies against size 4 *with the
/// size-3 root* (same path shape), a pair no honest log can sign; against the real size-4
/// root it fails. `formats/log.md` states this.
#[test]
fn size_is_bound_by_the_tree_head_not_the_proof() {
    let t = tree();
    let leaf0 = leaf_hash(&[]);
    let p3 = inclusion_proof(&t, 0, 3).expect("proof");
    assert_eq!(verify_inclusion(&leaf0, 0, 4, &p3, &h(ROOTS[3])), Ok(()));
    assert_eq!(
        verify_inclusion(&leaf0, 0, 4, &p3, &h(ROOTS[4])),
        Err(ProofError::RootMismatch)
    );
}
