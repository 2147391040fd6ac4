//! Shared helpers for the store tests: real SQLite files in a temp dir, software provenance
//! keys, and a raw connection that plays the attacker.
#![allow(dead_code)]
// `is_multiple_of` is newer than the workspace MSRV (1.85).
#![allow(clippy::manual_is_multiple_of)]

use fwseal_crypto::soft::SoftKey;
use fwseal_crypto::{KeyId, SigAlg, Signer};
use fwseal_store::{Action, AuditEntry, AuditLog, Decision, SqliteStore, TrustedKeys};
use std::path::{Path, PathBuf};

pub struct Keys {
    pub ecdsa: SoftKey,
    pub mldsa: SoftKey,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            ecdsa: SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("p256"),
            mldsa: SoftKey::generate(SigAlg::MlDsa65).expect("ml-dsa-65"),
        }
    }

    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::new(vec![
            self.ecdsa.public_key().clone(),
            self.mldsa.public_key().clone(),
        ])
    }
}

pub struct Db {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        Db { dir, path }
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).expect("open store")
    }
}

/// The i-th test entry: varied actions, optional fields present or not.
pub fn entry(i: u64) -> AuditEntry {
    let action = match i % 4 {
        0 => Action::Fetch,
        1 => Action::Sign,
        2 => Action::Denied,
        _ => Action::KeyRotate,
    };
    let decision = if i % 4 == 2 {
        Decision::Deny
    } else {
        Decision::Allow
    };
    let mut e = AuditEntry::new(
        format!(
            "2026-05-01T12:{:02}:{:02}.{:03}Z",
            (i / 60) % 60,
            i % 60,
            i % 1000
        ),
        format!("client-{}", i % 3),
        action,
        decision,
    );
    if i % 2 == 1 {
        e.product = Some("widget".into());
        e.key_ids = vec![KeyId([i as u8; 32]), KeyId([0xAB; 32])];
        e.input_sha256 = Some([i as u8 ^ 0x55; 32]);
        e.output_sha256 = Some([i as u8 ^ 0xAA; 32]);
        e.format = Some("raw".into());
        e.mode = Some(if i % 3 == 0 { "detached" } else { "embedded" }.into());
    }
    if i % 5 == 0 {
        e.cert_sha256 = Some([0x42; 32]);
    }
    if decision == Decision::Deny {
        e.reason = Some("client lacks role submitter".into());
    }
    if i % 3 == 0 {
        e = e.with_extra(&serde_json::json!({"n": i, "note": "ünïcode ✓"}));
    }
    e
}

/// Append entries `from..=to`.
pub fn fill(store: &SqliteStore, from: u64, to: u64) {
    for i in from..=to {
        let r = store.append(&entry(i)).expect("append");
        assert_eq!(r.seq, i);
    }
}

/// A raw connection with the append-only triggers removed: what someone with write access to
/// the file can do.
pub fn attacker(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).expect("raw open");
    c.execute_batch(
        "DROP TRIGGER IF EXISTS audit_log_no_update;
         DROP TRIGGER IF EXISTS audit_log_no_delete;
         DROP TRIGGER IF EXISTS audit_checkpoints_no_update;
         DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;",
    )
    .expect("drop triggers");
    c
}
