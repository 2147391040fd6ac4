//! The transparency log (issue 13): signed tree heads, inclusion and consistency proofs, the
//! artifact bundle, and on-demand checkpoints.
//!
//! Access (documented in `docs/api.md`):
//! - the newest tree head and consistency proofs reveal only tree sizes and roots: **any
//!   authenticated client** (as `GET /v1/appliance/keys`); not audited when allowed (a
//!   monitor polls them), refused requests are audited as everywhere;
//! - an inclusion proof discloses its record: the `auditor` (or `admin`) role on `"*"`, a role
//!   (any) on the record's product, or being the record's own client; allowed reads are
//!   audited (`audit-read`);
//! - a bundle is an artifact read: whoever may fetch the artifact (factory or submitter on its
//!   product), audited as a `fetch`.
//!
//! On-demand checkpoints: a proof or bundle whose record is newer than the newest tree head
//! makes the service sign one. Signings are serialised by one mutex, and a caller re-checks
//! "is it covered now?" once it holds it, so concurrent callers share one signing; on-demand
//! signings are at most one per `log_checkpoint_min_interval_ms` (a caller waits out the
//! rest of the interval). Each is preceded by an audit record (`checkpoint`, naming the
//! requester and the seq), which the new tree head covers.
//!
//! Checkpoint timestamps (`formats/timestamp.md`): with `[tsa]` configured, every signed tree
//! head gets an RFC 3161 token over its note text, recorded in the log itself as a
//! `checkpoint-timestamp` record (genTime, TSA, serial, the note's SHA-256 and the token) — the
//! next tree head covers it. A tree head that adds nothing but such records since the last
//! timestamped one is not timestamped again (otherwise every periodic checkpoint would add a
//! record for the next one to stamp). A checkpoint is never refused for want of a token: when
//! no TSA answers, one deny record per outage says so and the next checkpoint tries again.

use super::{entry, entry_by, ServiceError, SigningService};
use crate::auth::{allowed, roles, Identity};
use crate::config::Role;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use fwseal_api::{
    Bundle, BundleTimestamp, ConsistencyProof, InclusionProof, LogRecord, BUNDLE_FORMAT,
};
use fwseal_store::{Action, AuditRecord, Checkpoint, Decision, StoreError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The service's log state: the signing mutex and when the last on-demand signing was.
#[derive(Debug, Default)]
pub struct LogState {
    last_on_demand: Mutex<Option<Instant>>,
    /// The last checkpoint timestamp attempt failed (one deny record per outage).
    stamp_failing: std::sync::atomic::AtomicBool,
}

/// The action name of an on-demand checkpoint's audit record.
pub const CHECKPOINT_ACTION: &str = "checkpoint";
/// A timestamped tree head: size, note text, token.
struct StampedHead {
    size: u64,
    note: String,
    token: Vec<u8>,
}

/// The action name of a checkpoint timestamp's audit record.
pub const CHECKPOINT_TIMESTAMP_ACTION: &str = "checkpoint-timestamp";
/// How far after a checkpoint of size N [`SigningService::checkpoint_timestamp`] looks for its
/// `checkpoint-timestamp` record (it is appended right after the signing, but signings by
/// other requests may come between).
const STAMP_LOOKAHEAD: usize = 256;

/// The export-line view of a record.
pub fn log_record(r: &AuditRecord) -> LogRecord {
    let h = |x: &[u8; 32]| hex::encode(x);
    let e = &r.entry;
    LogRecord {
        seq: r.seq,
        prev_hash: h(&r.prev_hash),
        hash: h(&r.hash),
        time: e.time.clone(),
        client: e.client.clone(),
        action: e.action.as_str().to_string(),
        product: e.product.clone(),
        key_ids: e.key_ids.iter().map(|k| k.to_hex()).collect(),
        cert_sha256: e.cert_sha256.as_ref().map(h),
        input_sha256: e.input_sha256.as_ref().map(h),
        output_sha256: e.output_sha256.as_ref().map(h),
        format: e.format.clone(),
        mode: e.mode.clone(),
        decision: e.decision.as_str().to_string(),
        reason: e.reason.clone(),
        extra: e.extra.clone(),
    }
}

fn b64_all(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

/// A store error of proof generation: out-of-range requests are the caller's.
fn tree_error(e: StoreError) -> ServiceError {
    use fwseal_tlog::TreeError;
    match e {
        StoreError::Tree(
            t @ (TreeError::IndexOutOfRange { .. }
            | TreeError::SizeOrder { .. }
            | TreeError::SizeTooLarge { .. }
            | TreeError::SizeBeyondSource { .. }),
        ) => ServiceError::BadRequest(t.to_string()),
        e => ServiceError::Store(e),
    }
}

impl SigningService {
    /// Sign a checkpoint (v1 + tree head) of the current head with the appliance keys, under
    /// the configured origin (`log_origin`, else [`fwseal_store::tree::default_origin`]). The
    /// periodic checkpointer and the shutdown checkpoint call this.
    pub fn checkpoint_now(&self) -> Result<Checkpoint, ServiceError> {
        let _g = self
            .tlog
            .last_on_demand
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.sign_checkpoint_locked()
    }

    fn sign_checkpoint_locked(&self) -> Result<Checkpoint, ServiceError> {
        let a = self.keys.appliance_signers()?;
        let origin = match &self.config().log_origin {
            Some(o) => o.clone(),
            None => fwseal_store::tree::default_origin(a.classical.public_key()),
        };
        let cp = self
            .store
            .checkpoint_as(&origin, a.classical.as_ref(), a.pq.as_ref())?;
        self.stamp_checkpoint(&cp);
        Ok(cp)
    }

    /// Whether the tree head of size `seq` adds anything but `checkpoint-timestamp` records
    /// to the last timestamped one (found among the 8 records before it; further back counts
    /// as "adds something").
    fn needs_stamp(&self, seq: u64) -> Result<bool, ServiceError> {
        if seq == 0 {
            return Ok(false);
        }
        let from = seq.saturating_sub(7).max(1);
        let recent = self.store.records(from, 8)?;
        for r in recent.iter().rev().filter(|r| r.seq <= seq) {
            let is_stamp = r.entry.action.as_str() == CHECKPOINT_TIMESTAMP_ACTION;
            if !is_stamp {
                return Ok(true);
            }
            if r.entry.decision == Decision::Allow {
                // Everything after the timestamped head is stamps: nothing new to stamp.
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Timestamp a just-signed tree head (see the module documentation). Failures are logged
    /// and audited, never returned: the checkpoint itself stands.
    fn stamp_checkpoint(&self, cp: &Checkpoint) {
        use sha2::Digest as _;
        use std::sync::atomic::Ordering;
        let cfg = self.config();
        let Some(ts) = cfg.tsa.as_ref().and_then(|t| t.timestamper()) else {
            return;
        };
        let Some(note) = cp.note.as_deref() else {
            return;
        };
        match self.needs_stamp(cp.seq) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint timestamp: cannot read the log head");
                return;
            }
        }
        let note_sha = hex::encode(sha2::Sha256::digest(note.as_bytes()));
        let ev = entry(
            "fwseald",
            Action::Other(CHECKPOINT_TIMESTAMP_ACTION.into()),
            None,
            Decision::Allow,
        );
        let written = match ts.stamp(note.as_bytes()) {
            Ok(stamp) => {
                let mut extra = stamp.audit("checkpoint");
                extra["checkpoint_seq"] = cp.seq.into();
                extra["note_sha256"] = note_sha.into();
                extra["token"] = B64.encode(&stamp.token).into();
                let ok = self.audit(&ev.with_extra(&extra));
                if ok.is_ok() {
                    self.tlog.stamp_failing.store(false, Ordering::Relaxed);
                }
                ok
            }
            Err(e) => {
                tracing::warn!(error = %e, seq = cp.seq, "no RFC 3161 timestamp for the checkpoint");
                if self.tlog.stamp_failing.swap(true, Ordering::Relaxed) {
                    return;
                }
                let mut ev = ev.with_extra(&serde_json::json!({
                    "checkpoint_seq": cp.seq,
                    "note_sha256": note_sha,
                }));
                ev.decision = Decision::Deny;
                ev.reason = Some(format!("no RFC 3161 timestamp for the checkpoint: {e}"));
                self.audit(&ev)
            }
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "checkpoint timestamp: audit append failed");
        }
    }

    /// The first timestamped tree head whose `checkpoint-timestamp` record is among the
    /// [`STAMP_LOOKAHEAD`] records after `after` and whose size satisfies `fits`: its size,
    /// note text (several notes of one size may exist; the token covers one) and token.
    fn stamped_tree_head(
        &self,
        after: u64,
        fits: impl Fn(u64) -> bool,
    ) -> Result<Option<StampedHead>, ServiceError> {
        use sha2::Digest as _;
        let found = self
            .store
            .records(after + 1, STAMP_LOOKAHEAD)?
            .into_iter()
            .find_map(|r| {
                let e = &r.entry;
                if e.action.as_str() != CHECKPOINT_TIMESTAMP_ACTION || e.decision != Decision::Allow
                {
                    return None;
                }
                let x: serde_json::Value = serde_json::from_str(e.extra.as_deref()?).ok()?;
                let size = x.get("checkpoint_seq")?.as_u64()?;
                if !fits(size) {
                    return None;
                }
                let token = B64.decode(x.get("token")?.as_str()?).ok()?;
                Some((size, x.get("note_sha256")?.as_str()?.to_string(), token))
            });
        let Some((size, note_sha, token)) = found else {
            return Ok(None);
        };
        let note = self
            .store
            .checkpoints()?
            .into_iter()
            .filter_map(Result::ok)
            .filter(|c| c.seq == size)
            .filter_map(|c| c.note)
            .find(|n| hex::encode(sha2::Sha256::digest(n.as_bytes())) == note_sha);
        Ok(note.map(|note| StampedHead { size, note, token }))
    }

    /// The tree head a bundle for record `seq` proves against, with its timestamp token when
    /// one can be found: the first timestamped tree head covering the record, else the newest
    /// tree head covering it (signed on demand) and its token if it has one.
    fn bundle_tree_head(
        &self,
        who: &Identity,
        seq: u64,
    ) -> Result<(u64, String, Option<Vec<u8>>), ServiceError> {
        if let Some(h) = self.stamped_tree_head(seq, |size| size >= seq)? {
            return Ok((h.size, h.note, Some(h.token)));
        }
        let cp = self.tree_head_covering(who, seq)?;
        if let Some(h) = self.stamped_tree_head(cp.seq, |size| size == cp.seq)? {
            return Ok((h.size, h.note, Some(h.token)));
        }
        let note = cp
            .note
            .ok_or_else(|| ServiceError::internal("tree head without a note"))?;
        Ok((cp.seq, note, None))
    }

    /// The newest tree head of size ≥ `seq`, signing one on demand if there is none
    /// (coalesced, bounded: see the module documentation).
    fn tree_head_covering(&self, who: &Identity, seq: u64) -> Result<Checkpoint, ServiceError> {
        let covers = |c: &Option<Checkpoint>| c.as_ref().is_some_and(|c| c.seq >= seq);
        let latest = self.store.latest_tree_head()?;
        if covers(&latest) {
            return latest.ok_or_else(|| ServiceError::internal("tree head vanished"));
        }
        let mut last = self
            .tlog
            .last_on_demand
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let latest = self.store.latest_tree_head()?;
        if covers(&latest) {
            // Someone signed while we waited for the mutex.
            return latest.ok_or_else(|| ServiceError::internal("tree head vanished"));
        }
        let min = Duration::from_millis(self.config().log_checkpoint_min_interval_ms);
        if let Some(t) = *last {
            let since = t.elapsed();
            if since < min {
                std::thread::sleep(min - since);
            }
        }
        let ev = entry(
            "fwseald",
            Action::Other(CHECKPOINT_ACTION.into()),
            None,
            Decision::Allow,
        )
        .with_extra(&serde_json::json!({
            "on_demand": true,
            "requested_by": who.name,
            "seq": seq,
        }));
        self.audit(&ev)?;
        let cp = self.sign_checkpoint_locked()?;
        *last = Some(Instant::now());
        Ok(cp)
    }

    /// `GET /v1/log/checkpoint`: the newest signed tree head (note text). An appliance that
    /// has signed none yet signs one now.
    pub fn log_checkpoint(&self, who: &Identity) -> Result<String, ServiceError> {
        self.audited(who, Action::AuditRead, None, || {
            let cp = match self.store.latest_tree_head()? {
                Some(c) => c,
                None => self.tree_head_covering(who, 0)?,
            };
            cp.note
                .ok_or_else(|| ServiceError::internal("tree head without a note"))
        })
    }

    /// `GET /v1/log/consistency?old=A&new=B`.
    pub fn log_consistency(
        &self,
        who: &Identity,
        old: u64,
        new: u64,
    ) -> Result<ConsistencyProof, ServiceError> {
        self.audited(who, Action::AuditRead, None, || {
            let proof = self.store.consistency_proof(old, new).map_err(tree_error)?;
            Ok(ConsistencyProof {
                old_size: old,
                new_size: new,
                proof: b64_all(&proof),
            })
        })
    }

    /// Whether `who` may see record `r` (see the module documentation).
    fn may_see_record(&self, who: &Identity, r: &AuditRecord) -> bool {
        let cfg = self.config();
        let global = roles(&cfg, who)
            .and_then(|m| m.get("*"))
            .is_some_and(|rs| rs.contains(&Role::Auditor) || rs.contains(&Role::Admin));
        let on_product = r.entry.product.as_deref().is_some_and(|p| {
            [
                Role::Factory,
                Role::Submitter,
                Role::Auditor,
                Role::ReleaseApprover,
            ]
            .iter()
            .any(|role| allowed(&cfg, who, p, *role))
        });
        global || on_product || r.entry.client == who.name
    }

    /// `GET /v1/log/inclusion?seq=N[&size=M]`: `size` defaults to the newest tree head's
    /// (signed on demand when record `seq` is newer).
    pub fn log_inclusion(
        &self,
        who: &Identity,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, ServiceError> {
        let rec = self.audited(who, Action::AuditRead, None, || {
            let tree = self.store.tree_size()?;
            if seq == 0 || seq > tree {
                return Err(ServiceError::BadRequest(format!(
                    "seq {seq} is not in the log (records 1..={tree})"
                )));
            }
            let rec = self
                .store
                .records(seq, 1)?
                .into_iter()
                .find(|r| r.seq == seq)
                .ok_or_else(|| ServiceError::internal(format!("record {seq} missing")))?;
            if !self.may_see_record(who, &rec) {
                return Err(ServiceError::Forbidden(format!(
                    "record {seq} is not visible to this client (it needs the auditor role on \
                     \"*\", a role on the record's product, or to be the record's client)"
                )));
            }
            Ok(rec)
        })?;
        let product = rec.entry.product.clone();
        self.audited(who, Action::AuditRead, product.as_deref(), || {
            let (tree_size, note) = match size {
                Some(m) => {
                    let note = self
                        .store
                        .checkpoints()?
                        .into_iter()
                        .filter_map(Result::ok)
                        .filter(|c| c.seq == m)
                        .find_map(|c| c.note);
                    (m, note)
                }
                None => {
                    let cp = self.tree_head_covering(who, seq)?;
                    (cp.seq, cp.note)
                }
            };
            let proof = self
                .store
                .inclusion_proof(seq - 1, tree_size)
                .map_err(tree_error)?;
            let mut ev = entry_by(who, Action::AuditRead, product.as_deref(), Decision::Allow);
            ev.output_sha256 = rec.entry.output_sha256;
            self.audit(&ev.with_extra(&serde_json::json!({
                "log": "inclusion", "seq": seq, "size": tree_size,
            })))?;
            Ok(InclusionProof {
                leaf_index: seq - 1,
                tree_size,
                proof: b64_all(&proof),
                record: log_record(&rec),
                canonical_encoding: B64.encode(rec.canonical_encoding()),
                checkpoint: note,
            })
        })
    }

    /// `GET /v1/artifacts/{id}/bundle`: the artifact's digests, detached document,
    /// provenance, its `sign` record with an inclusion proof, and the tree head it proves
    /// against (signed on demand when the record is newer than the newest one).
    pub fn artifact_bundle(&self, who: &Identity, id: &str) -> Result<Bundle, ServiceError> {
        let meta = self.fetchable(who, id)?;
        self.audited(who, Action::Fetch, Some(&meta.product), || {
            let rec = self.store.artifact_record(id)?.ok_or_else(|| {
                ServiceError::Unsupported(format!(
                    "artifact {id} has no audit record in the log's tree (signed before the \
                     log had one?)"
                ))
            })?;
            let read = |sha: Option<[u8; 32]>| -> Result<Option<String>, ServiceError> {
                let Some(sha) = sha else { return Ok(None) };
                let mut blob = self.blobs.open(&sha)?.ok_or_else(|| {
                    ServiceError::internal("artifact content missing from the store")
                })?;
                let mut s = String::new();
                std::io::Read::read_to_string(&mut blob.reader, &mut s)
                    .map_err(|e| ServiceError::internal(format!("artifact part: {e}")))?;
                Ok(Some(s))
            };
            let detached = read(meta.detached_sha256)?;
            let provenance = read(meta.provenance_sha256)?;
            let mut ev = entry_by(who, Action::Fetch, Some(&meta.product), Decision::Allow);
            ev.output_sha256 = Some(meta.output_sha256);
            self.audit(&ev.with_extra(&serde_json::json!({"artifact": id, "part": "bundle"})))?;
            let (size, note, cp_token) = self.bundle_tree_head(who, rec.seq)?;
            let proof = self
                .store
                .inclusion_proof(rec.seq - 1, size)
                .map_err(tree_error)?;
            let mut timestamps = Vec::new();
            if let Some(t) = cp_token {
                timestamps.push(BundleTimestamp {
                    covers: "checkpoint".into(),
                    token: B64.encode(t),
                });
            }
            Ok(Bundle {
                bundle_format: BUNDLE_FORMAT.into(),
                artifact: id.to_string(),
                output_sha256: hex::encode(meta.output_sha256),
                input_sha256: hex::encode(meta.input_sha256),
                detached,
                provenance,
                canonical_encoding: B64.encode(rec.canonical_encoding()),
                leaf_index: rec.seq - 1,
                record: log_record(&rec),
                tree_size: size,
                inclusion_proof: b64_all(&proof),
                checkpoint: note,
                timestamps,
            })
        })
    }
}
