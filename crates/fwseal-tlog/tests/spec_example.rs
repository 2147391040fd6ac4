//! `formats/log.md` §6 is checked against the code: every `<!-- check: NAME -->` block is
//! parsed out of the document and compared with what fwseal-tlog produces, and a block the
//! test does not know (or a missing one) fails.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use fwseal_tlog::{
    consistency_proof, inclusion_proof, leaf_hash, root, sign_checkpoint, verify_checkpoint,
    verify_consistency, verify_inclusion, Checkpoint, EcdsaP256NoteSigner, Hash, HashSource,
    MemoryTree, MlDsa65NoteSigner, TrustedKeys,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DOC: &str = include_str!("../../../formats/log.md");
const ORIGIN: &str = "fwseal.example/log";

/// NAME → block body (lines between the fences, each ending in '\n').
fn blocks() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = DOC.lines();
    while let Some(l) = lines.next() {
        let Some(name) = l
            .strip_prefix("<!-- check: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("fence after check marker");
        assert!(fence.starts_with("```"), "{name}: no fence");
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert!(out.insert(name.to_owned(), body).is_none(), "{name} twice");
    }
    out
}

fn tree() -> MemoryTree {
    MemoryTree::from_leaves((0..4).map(|i| format!("fwseal-{i}")))
}

fn b64(h: &Hash) -> String {
    B64.encode(h)
}

fn hexs(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn signers() -> (EcdsaP256NoteSigner, MlDsa65NoteSigner) {
    let d = hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
        .expect("hex");
    let ec = EcdsaP256NoteSigner::new(ORIGIN, p256::ecdsa::SigningKey::from_slice(&d).expect("k"))
        .expect("ec");
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    (ec, MlDsa65NoteSigner::from_seed(ORIGIN, &seed).expect("pq"))
}

#[test]
fn every_check_block_is_known() {
    let names: Vec<String> = blocks().into_keys().collect();
    assert_eq!(
        names,
        ["log-consistency", "log-inclusion", "log-note", "log-tree"]
    );
}

#[test]
fn tree_values() {
    let t = tree();
    let sub = |a: u64, b: u64| -> Hash {
        // MTH(D[a:b]) for the aligned ranges the document lists.
        if b - a == 1 {
            t.leaf_hash(a).expect("leaf")
        } else if (b - a).is_power_of_two() {
            let level = (b - a).trailing_zeros();
            t.complete_subtree(level, a >> level)
                .expect("source")
                .expect("cached")
        } else {
            assert_eq!(a, 0);
            root(&t, b).expect("root")
        }
    };
    let mut want = String::new();
    for i in 0..4 {
        want.push_str(&format!(
            "{:<21}{}\n",
            format!("leaf[{i}]"),
            hex::encode(format!("fwseal-{i}"))
        ));
    }
    for i in 0..4u64 {
        let lh = leaf_hash(format!("fwseal-{i}").as_bytes());
        assert_eq!(lh, sub(i, i + 1));
        want.push_str(&format!(
            "{:<21}{}\n",
            format!("leaf_hash(leaf[{i}])"),
            hexs(&lh)
        ));
    }
    for (a, b) in [(0, 2), (2, 4), (0, 3), (0, 4)] {
        want.push_str(&format!(
            "{:<21}{}\n",
            format!("MTH(D[{a}:{b}])"),
            hexs(&sub(a, b))
        ));
    }
    assert_eq!(blocks()["log-tree"], want);
}

#[test]
fn inclusion_example() {
    let t = tree();
    let p = inclusion_proof(&t, 2, 4).expect("proof");
    let r = root(&t, 4).expect("root");
    verify_inclusion(&leaf_hash(b"fwseal-2"), 2, 4, &p, &r).expect("verifies");
    let want = json!({"type": "inclusion", "tree_size": 4, "leaf_index": 2,
        "leaf": B64.encode(b"fwseal-2"), "root": b64(&r),
        "proof": p.iter().map(b64).collect::<Vec<_>>()});
    let got: Value = serde_json::from_str(&blocks()["log-inclusion"]).expect("json");
    assert_eq!(got, want);
}

#[test]
fn consistency_example() {
    let t = tree();
    let p = consistency_proof(&t, 3, 4).expect("proof");
    let (r3, r4) = (root(&t, 3).expect("root"), root(&t, 4).expect("root"));
    verify_consistency(3, 4, &r3, &r4, &p).expect("verifies");
    let want = json!({"type": "consistency", "old_size": 3, "new_size": 4,
        "old_root": b64(&r3), "new_root": b64(&r4),
        "proof": p.iter().map(b64).collect::<Vec<_>>()});
    let got: Value = serde_json::from_str(&blocks()["log-consistency"]).expect("json");
    assert_eq!(got, want);
}

#[test]
fn signed_checkpoint_example() {
    let t = tree();
    let (ec, pq) = signers();
    let note = sign_checkpoint(ORIGIN, 4, &t.root(), &[&ec, &pq]).expect("sign");
    assert_eq!(
        blocks()["log-note"],
        note,
        "formats/log.md log-note block differs; the code produces:\n{note}"
    );
    let trusted = TrustedKeys::new(ORIGIN, vec![ec.verifier(), pq.verifier()]);
    assert_eq!(
        verify_checkpoint(&note, &trusted).expect("verifies"),
        Checkpoint::new(ORIGIN, 4, t.root())
    );
}
