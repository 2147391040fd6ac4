//! Offline verification of a hash-chained log and its checkpoints.

use crate::checkpoint::{Checkpoint, TrustedKeys};
use crate::record::{AuditRecord, Hash32, GENESIS_PREV_HASH};
use crate::tree::verify_tree_head;
use fwseal_tlog::{MemoryTree, EMPTY_ROOT};
use std::collections::BTreeMap;

/// At most this many problems are listed in a [`Report`]; more set `problems_truncated`.
pub const MAX_PROBLEMS: usize = 1000;

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A record or line could not be decoded.
    Malformed(String),
    /// Records are missing: the next record should have been `expected`, it is `found`
    /// (deletion, or records out of order).
    SeqGap {
        /// The sequence number that should have come next.
        expected: u64,
        /// The one that did.
        found: u64,
    },
    /// A record's sequence number is lower than one already seen (reordering or duplication).
    SeqOutOfOrder {
        /// The sequence number that should have come next.
        expected: u64,
        /// The one that did.
        found: u64,
    },
    /// `prev_hash` is not the hash of the previous record.
    PrevHashMismatch,
    /// The stored hash is not the hash of the record's content.
    HashMismatch,
    /// A checkpoint's signatures do not verify against the trusted keys.
    CheckpointBadSignature(String),
    /// A checkpoint names a head hash that is not the recomputed hash of its record.
    CheckpointHeadMismatch,
    /// A checkpoint covers a record the log does not have (truncation or deletion).
    CheckpointMissingRecord,
    /// A checkpoint could not be decoded.
    CheckpointMalformed(String),
    /// A checkpoint's signed tree head does not verify: untrusted key, bad signature, not
    /// hybrid, or a note or checkpoint body that does not parse.
    TreeHeadBadSignature(String),
    /// A checkpoint's signed tree head names another size than the checkpoint's seq, or a
    /// root that is not the Merkle root recomputed from records `1..=seq`. (Reported only
    /// when the v1 head matched: a rewritten record is one finding per checkpoint,
    /// [`ProblemKind::CheckpointHeadMismatch`].)
    TreeHeadMismatch(String),
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProblemKind::Malformed(m) => write!(f, "malformed: {m}"),
            ProblemKind::SeqGap { expected, found } => {
                write!(
                    f,
                    "expected record {expected}, found {found} (records missing)"
                )
            }
            ProblemKind::SeqOutOfOrder { expected, found } => {
                write!(
                    f,
                    "expected record {expected}, found {found} (out of order or duplicate)"
                )
            }
            ProblemKind::PrevHashMismatch => {
                f.write_str("prev_hash is not the hash of the previous record")
            }
            ProblemKind::HashMismatch => {
                f.write_str("stored hash does not match the record's content")
            }
            ProblemKind::CheckpointBadSignature(m) => write!(f, "checkpoint signature: {m}"),
            ProblemKind::CheckpointHeadMismatch => {
                f.write_str("checkpoint head hash does not match the record's recomputed hash")
            }
            ProblemKind::CheckpointMissingRecord => {
                f.write_str("checkpoint covers a record that is not in the log")
            }
            ProblemKind::CheckpointMalformed(m) => write!(f, "malformed checkpoint: {m}"),
            ProblemKind::TreeHeadBadSignature(m) => write!(f, "signed tree head: {m}"),
            ProblemKind::TreeHeadMismatch(m) => write!(f, "signed tree head mismatch: {m}"),
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The sequence number concerned (for checkpoints: the checkpoint's seq), when known.
    pub seq: Option<u64>,
    /// The export line (1-based), when verifying an export.
    pub line: Option<usize>,
    /// What.
    pub kind: ProblemKind,
}

impl Problem {
    /// Whether this is about a checkpoint rather than a record.
    pub fn is_checkpoint(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::CheckpointBadSignature(_)
                | ProblemKind::CheckpointHeadMismatch
                | ProblemKind::CheckpointMissingRecord
                | ProblemKind::CheckpointMalformed(_)
                | ProblemKind::TreeHeadBadSignature(_)
                | ProblemKind::TreeHeadMismatch(_)
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.is_checkpoint() {
            "checkpoint at seq"
        } else {
            "seq"
        };
        match (self.seq, self.line) {
            (Some(s), Some(l)) => write!(f, "{what} {s} (line {l}): {}", self.kind),
            (Some(s), None) => write!(f, "{what} {s}: {}", self.kind),
            (None, Some(l)) => write!(f, "line {l}: {}", self.kind),
            (None, None) => write!(f, "{}", self.kind),
        }
    }
}

/// The outcome of verifying a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records read.
    pub records: u64,
    /// Sequence number and stored hash of the last record read.
    pub head: Option<(u64, Hash32)>,
    /// Checkpoints read.
    pub checkpoints: usize,
    /// Checkpoints whose signatures verify and whose head matches the chain.
    pub checkpoints_ok: usize,
    /// Highest seq covered by a good checkpoint. Records after it (or all, if `None`) are
    /// protected by the chain only: a truncation of that tail cannot be detected.
    pub last_good_checkpoint: Option<u64>,
    /// Findings, in the order found.
    pub problems: Vec<Problem>,
    /// More than [`MAX_PROBLEMS`] findings; the rest were dropped.
    pub problems_truncated: bool,
}

impl Report {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The lowest sequence number with a problem (records and checkpoints).
    pub fn first_bad_seq(&self) -> Option<u64> {
        self.problems.iter().filter_map(|p| p.seq).min()
    }

    /// The problem at [`Report::first_bad_seq`] (or the first one found without a seq).
    pub fn first_problem(&self) -> Option<&Problem> {
        match self.first_bad_seq() {
            Some(s) => self.problems.iter().find(|p| p.seq == Some(s)),
            None => self.problems.first(),
        }
    }

    /// Records after the last good checkpoint.
    pub fn unanchored_records(&self) -> u64 {
        let head = self.head.map(|h| h.0).unwrap_or(0);
        head.saturating_sub(self.last_good_checkpoint.unwrap_or(0))
    }
}

/// A checkpoint waiting for its record: the v1 checkpoint, its export line, and the verified
/// tree head's root (`None`: no note).
type PendingCheckpoint = (Checkpoint, Option<usize>, Option<Hash32>);

/// Streaming verifier: give it the checkpoints first, then every record in log order. It
/// rebuilds the Merkle tree from the records (one leaf per record read, in order) to check
/// each signed tree head's root.
pub struct ChainVerifier {
    pending: BTreeMap<u64, Vec<PendingCheckpoint>>,
    expected: u64,
    prev: Option<Hash32>,
    tree: MemoryTree,
    report: Report,
}

impl ChainVerifier {
    /// Check the checkpoints' signatures now; their heads are matched as records arrive.
    pub fn new(checkpoints: Vec<(Checkpoint, Option<usize>)>, keys: &TrustedKeys) -> Self {
        let mut v = ChainVerifier {
            pending: BTreeMap::new(),
            expected: 1,
            prev: Some(GENESIS_PREV_HASH),
            tree: MemoryTree::new(),
            report: Report::default(),
        };
        for (cp, line) in checkpoints {
            v.report.checkpoints += 1;
            if let Err(m) = cp.verify_signatures(keys) {
                v.problem(Some(cp.seq), line, ProblemKind::CheckpointBadSignature(m));
                continue;
            }
            let root = match &cp.note {
                None => None,
                Some(note) => match verify_tree_head(note, keys) {
                    Err(m) => {
                        v.problem(Some(cp.seq), line, ProblemKind::TreeHeadBadSignature(m));
                        continue;
                    }
                    Ok(th) if th.size != cp.seq => {
                        let m = format!("tree size {} for checkpoint seq {}", th.size, cp.seq);
                        v.problem(Some(cp.seq), line, ProblemKind::TreeHeadMismatch(m));
                        continue;
                    }
                    Ok(th) => Some(th.root),
                },
            };
            if cp.seq == 0 {
                v.checkpoint_result(&cp, line, &GENESIS_PREV_HASH, root, &EMPTY_ROOT);
            } else {
                v.pending.entry(cp.seq).or_default().push((cp, line, root));
            }
        }
        v
    }

    fn problem(&mut self, seq: Option<u64>, line: Option<usize>, kind: ProblemKind) {
        if self.report.problems.len() >= MAX_PROBLEMS {
            self.report.problems_truncated = true;
        } else {
            self.report.problems.push(Problem { seq, line, kind });
        }
    }

    fn checkpoint_result(
        &mut self,
        cp: &Checkpoint,
        line: Option<usize>,
        computed: &Hash32,
        signed_root: Option<Hash32>,
        computed_root: &Hash32,
    ) {
        if &cp.head_hash != computed {
            self.problem(Some(cp.seq), line, ProblemKind::CheckpointHeadMismatch);
        } else if signed_root.is_some_and(|r| &r != computed_root) {
            let m = format!(
                "signed root is not the Merkle root of records 1..={} recomputed from the log",
                cp.seq
            );
            self.problem(Some(cp.seq), line, ProblemKind::TreeHeadMismatch(m));
        } else {
            self.report.checkpoints_ok += 1;
            let best = self.report.last_good_checkpoint.unwrap_or(0).max(cp.seq);
            self.report.last_good_checkpoint = Some(best);
        }
    }

    /// A checkpoint that could not be decoded.
    pub fn malformed_checkpoint(&mut self, seq: Option<u64>, line: Option<usize>, why: String) {
        self.report.checkpoints += 1;
        self.problem(seq, line, ProblemKind::CheckpointMalformed(why));
    }

    /// A record that could not be decoded. If its seq is known the chain position advances
    /// past it (so one bad row is one finding, not a cascade).
    pub fn malformed_record(&mut self, seq: Option<u64>, line: Option<usize>, why: String) {
        self.report.records += 1;
        self.problem(seq, line, ProblemKind::Malformed(why));
        // A row without a usable seq is not part of the chain: the position stays put.
        if let Some(s) = seq {
            self.expected = s.saturating_add(1);
            self.prev = None;
        }
    }

    /// A problem with a record that does not change the chain position (e.g. a record whose
    /// hash chains correctly but whose fields are invalid).
    pub fn malformed_record_note(&mut self, seq: Option<u64>, line: Option<usize>, why: String) {
        self.problem(seq, line, ProblemKind::Malformed(why));
    }

    /// The next record in log order.
    pub fn record(&mut self, r: &AuditRecord, line: Option<usize>) {
        self.report.records += 1;
        let contiguous = r.seq == self.expected;
        if r.seq > self.expected {
            let expected = self.expected;
            self.problem(
                Some(expected),
                line,
                ProblemKind::SeqGap {
                    expected,
                    found: r.seq,
                },
            );
        } else if r.seq < self.expected {
            let expected = self.expected;
            self.problem(
                Some(r.seq),
                line,
                ProblemKind::SeqOutOfOrder {
                    expected,
                    found: r.seq,
                },
            );
        }
        if contiguous {
            if let Some(prev) = self.prev {
                if prev != r.prev_hash {
                    self.problem(Some(r.seq), line, ProblemKind::PrevHashMismatch);
                }
            }
        }
        let computed = r.computed_hash();
        if computed != r.hash {
            self.problem(Some(r.seq), line, ProblemKind::HashMismatch);
        }
        if let Err(e) = r.entry.validate() {
            // The hash decides authenticity; a field the store would never have accepted is
            // reported on its own.
            self.problem(Some(r.seq), line, ProblemKind::Malformed(e.to_string()));
        }
        self.tree.push(&r.canonical_encoding());
        if let Some(cps) = self.pending.remove(&r.seq) {
            // The tree holds one leaf per record read; when records are missing or out of
            // order its size differs from `seq` and the root cannot match.
            let root = if self.tree.len() == r.seq {
                self.tree.root()
            } else {
                [0u8; 32]
            };
            for (cp, l, signed_root) in cps {
                self.checkpoint_result(&cp, l, &computed, signed_root, &root);
            }
        }
        self.prev = Some(r.hash);
        self.expected = r.seq.saturating_add(1);
        self.report.head = Some((r.seq, r.hash));
    }

    /// Finish: checkpoints whose record never came are reported.
    pub fn finish(mut self) -> Report {
        let pending = std::mem::take(&mut self.pending);
        for (seq, cps) in pending {
            for (_, line, _) in cps {
                self.problem(Some(seq), line, ProblemKind::CheckpointMissingRecord);
            }
        }
        self.report
    }
}
