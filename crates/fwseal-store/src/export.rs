//! JSON Lines export of the audit log, and its offline verification.
//!
//! Line 1 is the header `{"type":"header","format":"fwseal-audit-export","version":1}`; then
//! one line per record in seq order (`"type":"record"`), with each checkpoint line
//! (`"type":"checkpoint"`) right after the record it covers (seq-0 checkpoints after the
//! header). See the crate README for the fields.

use crate::checkpoint::{Checkpoint, TrustedKeys};
use crate::record::{hex32, AuditEntry, AuditRecord, Hash32};
use crate::verify::{ChainVerifier, Report};
use serde::{Deserialize, Serialize};

/// `format` value of the header line.
pub const EXPORT_FORMAT: &str = "fwseal-audit-export";
/// `version` value of the header line.
pub const EXPORT_VERSION: u32 = 1;

/// One line of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportLine {
    /// First line.
    Header {
        /// [`EXPORT_FORMAT`].
        format: String,
        /// [`EXPORT_VERSION`].
        version: u32,
    },
    /// A record.
    Record(Box<RecordLine>),
    /// A checkpoint.
    Checkpoint(Checkpoint),
}

/// A record as exported: chain fields plus the entry's fields at the same level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLine {
    /// Sequence number.
    pub seq: u64,
    /// Previous record's hash, hex.
    #[serde(with = "hex32")]
    pub prev_hash: Hash32,
    /// This record's stored hash, hex.
    #[serde(with = "hex32")]
    pub hash: Hash32,
    /// The content.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

impl From<&AuditRecord> for RecordLine {
    fn from(r: &AuditRecord) -> Self {
        RecordLine {
            seq: r.seq,
            prev_hash: r.prev_hash,
            hash: r.hash,
            entry: r.entry.clone(),
        }
    }
}

impl From<RecordLine> for AuditRecord {
    fn from(l: RecordLine) -> Self {
        AuditRecord {
            seq: l.seq,
            prev_hash: l.prev_hash,
            hash: l.hash,
            entry: l.entry,
        }
    }
}

/// Serialise one line (no trailing newline).
pub fn line_json(line: &ExportLine) -> String {
    // Serialising these types cannot fail (string keys, no non-finite floats).
    serde_json::to_string(line).unwrap_or_default()
}

/// The header line.
pub fn header() -> ExportLine {
    ExportLine::Header {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
    }
}

/// For a line that did not decode: (is it a checkpoint, its seq) as far as readable.
fn hints(line: &str) -> (bool, Option<u64>) {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) => (
            v.get("type").and_then(|t| t.as_str()) == Some("checkpoint"),
            v.get("seq").and_then(|s| s.as_u64()),
        ),
        Err(_) => (false, None),
    }
}

/// Verify an export offline: the hash chain in line order, and every checkpoint against
/// `keys`. Lines are split on `\n`; empty lines are ignored.
pub fn verify_export(data: &[u8], keys: &TrustedKeys) -> Report {
    enum Parsed<'a> {
        Line(ExportLine),
        Bad(&'a str, String),
    }
    let lines: Vec<(usize, Parsed<'_>)> = data
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(|b| b.is_ascii_whitespace()))
        .map(|(i, l)| {
            let n = i + 1;
            match std::str::from_utf8(l) {
                Err(e) => (n, Parsed::Bad("", format!("not UTF-8: {e}"))),
                Ok(s) => match serde_json::from_str::<ExportLine>(s) {
                    Ok(x) => (n, Parsed::Line(x)),
                    Err(e) => (n, Parsed::Bad(s, e.to_string())),
                },
            }
        })
        .collect();

    let checkpoints = lines
        .iter()
        .filter_map(|(n, p)| match p {
            Parsed::Line(ExportLine::Checkpoint(c)) => Some((c.clone(), Some(*n))),
            _ => None,
        })
        .collect();
    let mut v = ChainVerifier::new(checkpoints, keys);

    let mut header_seen = false;
    for (i, (n, p)) in lines.into_iter().enumerate() {
        match p {
            Parsed::Line(ExportLine::Header { format, version }) => {
                if i != 0 {
                    v.malformed_record(None, Some(n), "header line not at the start".into());
                } else if format != EXPORT_FORMAT || version != EXPORT_VERSION {
                    v.malformed_record(
                        None,
                        Some(n),
                        format!("unsupported export {format} version {version}"),
                    );
                }
                header_seen = true;
            }
            Parsed::Line(ExportLine::Record(r)) => {
                v.record(&AuditRecord::from(*r), Some(n));
            }
            Parsed::Line(ExportLine::Checkpoint(_)) => {}
            Parsed::Bad(s, why) => {
                let (is_checkpoint, seq) = hints(s);
                if is_checkpoint {
                    v.malformed_checkpoint(seq, Some(n), why);
                } else {
                    v.malformed_record(seq, Some(n), why);
                }
            }
        }
    }
    if !header_seen {
        v.malformed_record_note(None, None, "no header line".into());
    }
    v.finish()
}
