//! Audit log on real SQLite files: append, checkpoints, verification, and every kind of
//! tampering the verifier must catch.

mod common;

use common::{attacker, entry, fill, Db, Keys};
use fwseal_crypto::soft::SoftKey;
use fwseal_crypto::{SigAlg, Signer};
use fwseal_store::record::record_hash;
use fwseal_store::{
    verify_db, Action, AuditEntry, AuditLog, Checkpoint, Decision, ProblemKind, SqliteStore,
    TrustedKeys, GENESIS_PREV_HASH,
};
use rusqlite::params;
use std::sync::Arc;

/// 10 records, checkpoints after 5 and after 10.
fn setup(keys: &Keys) -> Db {
    let db = Db::new();
    let s = db.open();
    fill(&s, 1, 5);
    let cp = s.checkpoint(&keys.ecdsa, &keys.mldsa).expect("checkpoint");
    assert_eq!(cp.seq, 5);
    fill(&s, 6, 10);
    s.checkpoint(&keys.ecdsa, &keys.mldsa).expect("checkpoint");
    db
}

fn kinds_at(r: &fwseal_store::Report, seq: u64) -> Vec<ProblemKind> {
    r.problems
        .iter()
        .filter(|p| p.seq == Some(seq) && !is_tree_head(&p.kind))
        .map(|p| p.kind.clone())
        .collect()
}

fn is_tree_head(k: &ProblemKind) -> bool {
    matches!(
        k,
        ProblemKind::TreeHeadMismatch(_) | ProblemKind::TreeHeadBadSignature(_)
    )
}

/// The checkpoint seqs whose signed tree head no longer matches the records.
fn tree_head_mismatches(r: &fwseal_store::Report) -> Vec<u64> {
    r.problems
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::TreeHeadMismatch(_)))
        .filter_map(|p| p.seq)
        .collect()
}

// Backend-neutral behaviour (appending, chaining, checkpoints through the API, invalid entries,
// the hybrid requirement, store-level verification) is in the conformance suite
// (`fwseal_store::conformance`, run against SQLite by `tests/conformance_sqlite.rs`). This file
// keeps what is SQLite's own: `verify_db` on the file, tampering through SQL, reopening.

#[test]
fn verify_db_reads_what_the_store_wrote() {
    let keys = Keys::new();
    let db = setup(&keys);
    let recs = db.open().records(1, 100).expect("records");
    assert_eq!(recs.len(), 10);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.entry, entry(i as u64 + 1), "record {} round-trips", r.seq);
    }

    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.records, 10);
    assert_eq!(rep.checkpoints, 2);
    assert_eq!(rep.checkpoints_ok, 2);
    assert_eq!(rep.last_good_checkpoint, Some(10));
    assert_eq!(rep.unanchored_records(), 0);
    assert_eq!(rep.head, Some((10, recs[9].hash)));
    assert_eq!(rep, db.open().verify(&keys.trusted()).expect("verify"));

    // Without the right keys, the checkpoints fail (and nothing else).
    let other = Keys::new();
    let rep = verify_db(&db.path, &other.trusted()).expect("verify");
    assert_eq!(rep.problems.len(), 2);
    assert!(rep
        .problems
        .iter()
        .all(|p| matches!(p.kind, ProblemKind::CheckpointBadSignature(_))));
}

#[test]
fn triggers_refuse_update_and_delete_through_sql() {
    let keys = Keys::new();
    let db = setup(&keys);
    let c = rusqlite::Connection::open(&db.path).expect("open");
    let e = c
        .execute("UPDATE audit_log SET client = 'x' WHERE seq = 1", [])
        .expect_err("update refused");
    assert!(e.to_string().contains("append-only"), "{e}");
    c.execute("DELETE FROM audit_log WHERE seq = 1", [])
        .expect_err("delete refused");
    c.execute("DELETE FROM audit_checkpoints", [])
        .expect_err("delete refused");
}

#[test]
fn edited_record_is_detected_at_its_seq() {
    let keys = Keys::new();
    let db = setup(&keys);
    attacker(&db.path)
        .execute("UPDATE audit_log SET client = 'mallory' WHERE seq = 4", [])
        .expect("tamper");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(!rep.is_ok());
    assert_eq!(rep.first_bad_seq(), Some(4));
    assert_eq!(kinds_at(&rep, 4), vec![ProblemKind::HashMismatch]);
    // Only that record is wrong in the chain: the later ones still chain to its stored hash.
    let chain: Vec<_> = rep
        .problems
        .iter()
        .filter(|p| !is_tree_head(&p.kind))
        .collect();
    assert_eq!(chain.len(), 1, "{:?}", rep.problems);
    // Every signed tree head covering seq 4 (checkpoints at 5 and 10) no longer matches the leaves.
    assert_eq!(
        tree_head_mismatches(&rep),
        vec![5, 10],
        "{:?}",
        rep.problems
    );
}

#[test]
fn edited_digest_and_decision_are_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    let c = attacker(&db.path);
    c.execute(
        "UPDATE audit_log SET output_sha256 = ?1 WHERE seq = 3",
        params![hex::encode([0u8; 32])],
    )
    .expect("tamper");
    c.execute("UPDATE audit_log SET decision = 'allow' WHERE seq = 6", [])
        .expect("tamper");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(rep.first_bad_seq(), Some(3));
    assert_eq!(kinds_at(&rep, 3), vec![ProblemKind::HashMismatch]);
    assert_eq!(kinds_at(&rep, 6), vec![ProblemKind::HashMismatch]);
}

#[test]
fn edit_with_recomputed_hash_breaks_the_next_link() {
    let keys = Keys::new();
    let db = setup(&keys);
    let s = db.open();
    let r4 = s.records(4, 1).expect("read").remove(0);
    let mut forged = r4.entry.clone();
    forged.client = "mallory".into();
    let h = record_hash(4, &r4.prev_hash, &forged);
    attacker(&db.path)
        .execute(
            "UPDATE audit_log SET client = 'mallory', hash = ?1 WHERE seq = 4",
            params![hex::encode(h)],
        )
        .expect("tamper");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(rep.first_bad_seq(), Some(5));
    assert_eq!(kinds_at(&rep, 5), vec![ProblemKind::PrevHashMismatch]);
    assert_eq!(
        tree_head_mismatches(&rep),
        vec![5, 10],
        "{:?}",
        rep.problems
    );
}

#[test]
fn consistent_rewrite_of_the_tail_is_caught_by_the_checkpoint() {
    let keys = Keys::new();
    let db = setup(&keys);
    let s = db.open();
    // Rewrite records 4..=10 with recomputed hashes: the chain alone is self-consistent.
    let recs = s.records(1, 100).expect("read");
    let c = attacker(&db.path);
    let mut prev = recs[2].hash;
    for r in &recs[3..] {
        let mut e = r.entry.clone();
        e.client = "mallory".into();
        let h = record_hash(r.seq, &prev, &e);
        c.execute(
            "UPDATE audit_log SET client = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            params![e.client, hex::encode(prev), hex::encode(h), r.seq as i64],
        )
        .expect("tamper");
        prev = h;
    }
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(rep.first_bad_seq(), Some(5));
    assert_eq!(kinds_at(&rep, 5), vec![ProblemKind::CheckpointHeadMismatch]);
    assert_eq!(
        kinds_at(&rep, 10),
        vec![ProblemKind::CheckpointHeadMismatch]
    );
    assert_eq!(rep.problems.len(), 2, "{:?}", rep.problems);
    assert_eq!(rep.last_good_checkpoint, None);
}

#[test]
fn deleted_record_is_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    attacker(&db.path)
        .execute("DELETE FROM audit_log WHERE seq = 3", [])
        .expect("tamper");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(rep.first_bad_seq(), Some(3));
    assert_eq!(
        kinds_at(&rep, 3),
        vec![ProblemKind::SeqGap {
            expected: 3,
            found: 4
        }]
    );
}

#[test]
fn deleted_record_with_renumbering_is_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    let c = attacker(&db.path);
    c.execute("DELETE FROM audit_log WHERE seq = 3", [])
        .expect("tamper");
    c.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 3", [])
        .expect("renumber");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(rep.first_bad_seq(), Some(3));
    assert!(kinds_at(&rep, 3).contains(&ProblemKind::PrevHashMismatch));
    assert!(kinds_at(&rep, 3).contains(&ProblemKind::HashMismatch));
    // The checkpoint at 10 now points past the end.
    assert!(kinds_at(&rep, 10).contains(&ProblemKind::CheckpointMissingRecord));
}

#[test]
fn truncated_tail_is_caught_by_the_checkpoint() {
    let keys = Keys::new();
    let db = setup(&keys);
    attacker(&db.path)
        .execute("DELETE FROM audit_log WHERE seq >= 9", [])
        .expect("tamper");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(
        rep.problems
            .iter()
            .map(|p| (p.seq, p.kind.clone()))
            .collect::<Vec<_>>(),
        vec![(Some(10), ProblemKind::CheckpointMissingRecord)]
    );
    assert_eq!(rep.last_good_checkpoint, Some(5));
}

#[test]
fn reordered_records_are_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    // Swap the contents (every column but seq) of records 3 and 4.
    let c = attacker(&db.path);
    let cols = "prev_hash, hash, time, client, action, product, key_ids, cert_sha256, \
                input_sha256, output_sha256, format, mode, decision, reason, extra";
    c.execute_batch(&format!(
        "CREATE TEMP TABLE t AS SELECT * FROM audit_log WHERE seq IN (3, 4);
         UPDATE audit_log SET ({cols}) = (SELECT {cols} FROM t WHERE t.seq = 4) WHERE seq = 3;
         UPDATE audit_log SET ({cols}) = (SELECT {cols} FROM t WHERE t.seq = 3) WHERE seq = 4;"
    ))
    .expect("swap");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert_eq!(rep.first_bad_seq(), Some(3));
    assert!(kinds_at(&rep, 3).contains(&ProblemKind::PrevHashMismatch));
    assert!(kinds_at(&rep, 3).contains(&ProblemKind::HashMismatch));
    assert!(kinds_at(&rep, 4).contains(&ProblemKind::HashMismatch));
}

#[test]
fn inserted_forged_record_is_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    let s = db.open();
    let r5 = s.records(5, 1).expect("read").remove(0);
    let c = attacker(&db.path);
    // Make room at 6 (two steps so the primary key never collides), then insert a record
    // whose own hash and prev_hash are computed correctly.
    c.execute_batch(
        "UPDATE audit_log SET seq = -seq WHERE seq >= 6;
         UPDATE audit_log SET seq = 1 - seq WHERE seq < 0;",
    )
    .expect("renumber");
    let forged = AuditEntry::new(
        "2026-05-01T12:00:05.500Z",
        "mallory",
        Action::Sign,
        Decision::Allow,
    );
    let h = record_hash(6, &r5.hash, &forged);
    c.execute(
        "INSERT INTO audit_log (seq, prev_hash, hash, time, client, action, key_ids, decision)
         VALUES (6, ?1, ?2, ?3, ?4, 'sign', '[]', 'allow')",
        params![
            hex::encode(r5.hash),
            hex::encode(h),
            forged.time,
            forged.client
        ],
    )
    .expect("insert");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    // Record 6 itself is well-formed; the old record 6, now 7, no longer fits.
    assert_eq!(rep.first_bad_seq(), Some(7));
    assert!(kinds_at(&rep, 7).contains(&ProblemKind::PrevHashMismatch));
    assert!(kinds_at(&rep, 7).contains(&ProblemKind::HashMismatch));
    // And the checkpoint at 10 now sees a different record there.
    assert!(kinds_at(&rep, 10).contains(&ProblemKind::CheckpointHeadMismatch));
}

#[test]
fn inserted_record_with_wrong_hash_or_bad_fields_is_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    let c = attacker(&db.path);
    let head = db.open().head().expect("head").expect("some").1;
    c.execute(
        "INSERT INTO audit_log (seq, prev_hash, hash, time, client, action, key_ids, decision)
         VALUES (11, ?1, ?2, '2026-05-02T00:00:00Z', 'mallory', 'sign', '[]', 'allow')",
        params![hex::encode(head), hex::encode([7u8; 32])],
    )
    .expect("insert");
    c.execute(
        "INSERT INTO audit_log (seq, prev_hash, hash, time, client, action, key_ids, decision)
         VALUES (-1, ?1, ?1, '2026-05-02T00:00:00Z', 'mallory', 'sign', '[]', 'maybe')",
        params![hex::encode([0u8; 32])],
    )
    .expect("insert");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep
        .problems
        .iter()
        .any(|p| p.seq.is_none() && matches!(p.kind, ProblemKind::Malformed(_))));
    assert_eq!(kinds_at(&rep, 11), vec![ProblemKind::HashMismatch]);
}

#[test]
fn forged_and_altered_checkpoints_are_detected() {
    let keys = Keys::new();
    let db = setup(&keys);
    let s = db.open();
    let head = s.head().expect("head").expect("some");

    // Altered: the checkpoint at 5 now claims seq 4 (signature no longer covers it).
    attacker(&db.path)
        .execute("UPDATE audit_checkpoints SET seq = 4 WHERE seq = 5", [])
        .expect("tamper");
    // Forged: signed by keys the verifier does not trust.
    let mallory = Keys::new();
    s.store_checkpoint(
        &Checkpoint::sign(head.0, head.1, &[&mallory.ecdsa, &mallory.mldsa]).expect("sign"),
    )
    .expect("store");
    // Classical half only, by a trusted key.
    s.store_checkpoint(&Checkpoint::sign(head.0, head.1, &[&keys.ecdsa]).expect("sign"))
        .expect("store");
    // Trusted keys, but a head that is not the chain's (a signer that was lied to).
    s.store_checkpoint(&Checkpoint::sign(7, [9u8; 32], &[&keys.ecdsa, &keys.mldsa]).expect("sign"))
        .expect("store");
    // Trusted keys, a record the log does not have.
    s.store_checkpoint(&Checkpoint::sign(50, head.1, &[&keys.ecdsa, &keys.mldsa]).expect("sign"))
        .expect("store");
    // A signature swapped in from another checkpoint.
    let mut swapped = Checkpoint::sign(3, head.1, &[&keys.ecdsa, &keys.mldsa]).expect("sign");
    let good = Checkpoint::sign(head.0, head.1, &[&keys.ecdsa, &keys.mldsa]).expect("sign");
    swapped.signatures[1] = good.signatures[1].clone();
    s.store_checkpoint(&swapped).expect("store");

    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    let bad_sig = |seq| {
        kinds_at(&rep, seq)
            .iter()
            .filter(|k| matches!(k, ProblemKind::CheckpointBadSignature(_)))
            .count()
    };
    assert_eq!(bad_sig(4), 1, "altered seq");
    assert_eq!(bad_sig(10), 2, "untrusted keys + classical only");
    assert_eq!(bad_sig(3), 1, "swapped signature");
    assert_eq!(kinds_at(&rep, 7), vec![ProblemKind::CheckpointHeadMismatch]);
    assert_eq!(
        kinds_at(&rep, 50),
        vec![ProblemKind::CheckpointMissingRecord]
    );
    assert_eq!(rep.checkpoints, 7);
    assert_eq!(rep.checkpoints_ok, 1, "only the original checkpoint at 10");
    assert_eq!(rep.first_bad_seq(), Some(3));
    assert!(rep.problems.iter().all(|p| p.is_checkpoint()));

    // Mangled stored signatures JSON.
    attacker(&db.path)
        .execute(
            "UPDATE audit_checkpoints SET signatures = 'nope' WHERE seq = 10",
            [],
        )
        .expect("tamper");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep
        .problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::CheckpointMalformed(_))));
}

#[test]
fn reopen_keeps_everything() {
    let keys = Keys::new();
    let db = setup(&keys);
    let before = db.open().records(1, 100).expect("read");
    // Every append committed: a brand-new connection sees all of it, and the chain continues.
    {
        let s = db.open();
        assert_eq!(s.head().expect("head").map(|h| h.0), Some(10));
        let r = s.append(&entry(11)).expect("append");
        assert_eq!((r.seq, r.prev_hash), (11, before[9].hash));
    }
    // A store that is never closed (as in a crash: no destructor, no checkpoint of the WAL)
    // has still committed what append returned.
    {
        let s = db.open();
        let r = s.append(&entry(12)).expect("append");
        assert_eq!(r.seq, 12);
        std::mem::forget(s);
    }
    let s = SqliteStore::open_read_only(&db.path).expect("ro");
    assert_eq!(s.head().expect("head").map(|h| h.0), Some(12));
    let after = s.records(1, 100).expect("read");
    assert_eq!(&after[..10], &before[..]);
    assert_eq!(after.len(), 12);
    assert_eq!(s.checkpoints().expect("cps").len(), 2);
    assert!(
        s.append(&entry(12)).is_err(),
        "read-only store refuses appends"
    );
    let rep = s.verify(&keys.trusted()).expect("verify");
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.unanchored_records(), 2);
    // WAL + synchronous=FULL on every connection.
    let c = rusqlite::Connection::open(&db.path).expect("open");
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
}

#[test]
fn concurrent_appenders_make_one_chain() {
    let keys = Keys::new();
    let db = Db::new();
    // Two stores on one file (like two processes) and four threads on each.
    let a = Arc::new(db.open());
    let b = Arc::new(db.open());
    let mut handles = Vec::new();
    for t in 0..8u64 {
        let s = if t % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(std::thread::spawn(move || {
            for i in 0..25 {
                s.append(&entry(t * 100 + i)).expect("append");
            }
        }));
    }
    for h in handles {
        h.join().expect("thread");
    }
    a.checkpoint(&keys.ecdsa, &keys.mldsa).expect("checkpoint");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.records, 200);
    assert_eq!(rep.last_good_checkpoint, Some(200));
}

#[test]
fn canonical_encoding_worked_example() {
    // The example in README.md ("Worked example"); the expected values were computed by the
    // independent Python verifier:
    // `python3 tests/verify_export.py --worked-example > tests/worked_example.txt`.
    let mut e = AuditEntry::new(
        "2026-05-01T12:00:00Z",
        "ci-bot",
        Action::Sign,
        Decision::Allow,
    );
    e.product = Some("widget".into());
    e.key_ids = vec![fwseal_crypto::KeyId([0x11; 32])];
    e.input_sha256 = Some([0x22; 32]);
    e.output_sha256 = Some([0x33; 32]);
    e.format = Some("raw".into());
    e.mode = Some("embedded".into());
    e.extra = Some(r#"{"run":42}"#.into());
    let enc = fwseal_store::record::canonical_encoding(1, &GENESIS_PREV_HASH, &e);
    let h = record_hash(1, &GENESIS_PREV_HASH, &e);
    let expected = format!("encoding {}\nhash {}\n", hex::encode(&enc), hex::encode(h));
    assert_eq!(expected, include_str!("worked_example.txt"));
    assert_eq!(enc.len(), 265);
    let msg = fwseal_store::checkpoint_message(1, &h);
    assert_eq!(msg.len(), 67);
    assert_eq!(&msg[..27], b"fwseal/audit-checkpoint/v1\0");
    assert_eq!(&msg[27..35], &1u64.to_be_bytes());
}

#[test]
fn checkpoint_signatures_are_standard() {
    // ECDSA half: DER over SHA-256(message); ML-DSA half: pure, empty context, over message.
    let keys = Keys::new();
    let cp = Checkpoint::sign(3, [5u8; 32], &[&keys.ecdsa, &keys.mldsa]).expect("sign");
    let m = fwseal_crypto::SignedMessage::Bytes(cp.message());
    keys.ecdsa
        .public_key()
        .verify(&m, &cp.signatures[0])
        .expect("ecdsa");
    keys.mldsa
        .public_key()
        .verify(&m, &cp.signatures[1])
        .expect("ml-dsa");
    assert_eq!(cp.signatures[0].alg, SigAlg::EcdsaP256Sha256);
    assert_eq!(cp.signatures[1].alg, SigAlg::MlDsa65);
    let _ = SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("gen");
    cp.verify_signatures(&TrustedKeys::new(vec![]))
        .expect_err("no trusted keys");
}

/// A schema-4 database (records and checkpoints, no tree, no notes) verifies read-only as
/// before, and opening it read-write migrates it: the tree is built from the records, and new
/// checkpoints carry tree heads.
#[test]
fn schema_4_database_verifies_and_migrates_to_the_tree() {
    let keys = Keys::new();
    let db = setup(&keys);
    let encodings: Vec<Vec<u8>> = {
        let s = db.open();
        s.records(1, 100)
            .expect("read")
            .iter()
            .map(|r| r.canonical_encoding())
            .collect()
    };
    // Turn it back into what schema 4 wrote.
    attacker(&db.path)
        .execute_batch(
            "DROP TRIGGER audit_tree_no_update; DROP TRIGGER audit_tree_no_delete;
             DROP TABLE audit_tree; DROP TABLE artifact_records;
             ALTER TABLE audit_checkpoints DROP COLUMN note;
             PRAGMA user_version = 4;",
        )
        .expect("downgrade");
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify v4");
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.checkpoints_ok, 2);

    let s = db.open();
    let v: i64 = rusqlite::Connection::open(&db.path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, 5);
    let mut mem = fwseal_tlog::MemoryTree::new();
    for e in &encodings {
        mem.push(e);
    }
    for size in [1u64, 5, 7, 10] {
        assert_eq!(
            s.tree_root(size).expect("root"),
            fwseal_tlog::root(&mem, size).expect("mem root"),
            "size {size}"
        );
    }
    assert!(s.latest_tree_head().expect("latest").is_none());
    fill(&s, 11, 12);
    let cp = s.checkpoint(&keys.ecdsa, &keys.mldsa).expect("checkpoint");
    let note = cp
        .note
        .as_deref()
        .expect("a tree head with the new checkpoint");
    let head = fwseal_store::tree::verify_tree_head(note, &keys.trusted()).expect("verifies");
    assert_eq!(head.size, 12);
    let rep = verify_db(&db.path, &keys.trusted()).expect("verify");
    assert!(rep.is_ok(), "{:?}", rep.problems);
    assert_eq!(rep.checkpoints_ok, 3);
}
