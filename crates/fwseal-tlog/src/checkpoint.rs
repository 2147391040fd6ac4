//! C2SP `tlog-checkpoint` (<https://c2sp.org/tlog-checkpoint>) note text:
//!
//! ```text
//! <origin>\n
//! <tree size, ASCII decimal, no leading zeros>\n
//! <root hash, standard base64 of 32 bytes>\n
//! [<extension line>\n]*
//! ```
//!
//! signed as a C2SP signed note ([`crate::note`]).

use crate::merkle::Hash;
use crate::note::{self, NoteError, NoteSigner, TrustedKeys};
use crate::proof::MAX_TREE_SIZE;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// A tree head: which log, how many leaves, which root; plus opaque extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Extension lines (without their newline); the spec does not recommend them.
    pub extensions: Vec<String>,
}

/// Why a checkpoint body was refused (1-based line numbers).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint text is not valid note text: {0}")]
    Text(NoteError),
    #[error("checkpoint has {got} lines, needs at least 3 (origin, size, root)")]
    TooFewLines { got: usize },
    #[error("checkpoint line {line} is empty")]
    EmptyLine { line: usize },
    #[error("the origin or an extension line contains a newline")]
    Newline,
    #[error("tree size {0:?} is not ASCII decimal")]
    SizeNotDecimal(String),
    #[error("tree size {0:?} has a leading zero")]
    SizeLeadingZero(String),
    #[error("tree size {0:?} does not fit in 64 bits")]
    SizeOverflow(String),
    #[error("tree size {0} exceeds the maximum 2^63")]
    SizeTooLarge(u64),
    #[error("root hash is not canonical standard base64")]
    RootNotBase64,
    #[error("root hash is {0} bytes, expected 32")]
    RootLength(usize),
}

/// Why [`verify_checkpoint`] refused a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signed note: {0}")]
    Note(#[from] NoteError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint origin {found:?} is not the trusted log's {expected:?}")]
    OriginMismatch { found: String, expected: String },
}

fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointError::SizeNotDecimal(s.to_owned()));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(CheckpointError::SizeLeadingZero(s.to_owned()));
    }
    let n: u64 = s
        .parse()
        .map_err(|_| CheckpointError::SizeOverflow(s.to_owned()))?;
    if n > MAX_TREE_SIZE {
        return Err(CheckpointError::SizeTooLarge(n));
    }
    Ok(n)
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text. Fails if a field would not parse back (empty or multi-line origin or
    /// extension, control characters, size above 2^63).
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        if self.size > MAX_TREE_SIZE {
            return Err(CheckpointError::SizeTooLarge(self.size));
        }
        if self.origin.contains('\n') || self.extensions.iter().any(|e| e.contains('\n')) {
            return Err(CheckpointError::Newline);
        }
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        // Parsing our own output is the one definition of validity.
        let back = Checkpoint::parse(t.as_bytes())?;
        if back != *self {
            // Unreachable once the fields hold no newline; kept so no text that reads back
            // differently is ever signed.
            return Err(CheckpointError::Newline);
        }
        Ok(t)
    }

    /// Parse checkpoint note text (what [`note::verify_note`] returns), strictly.
    pub fn parse(text: &[u8]) -> Result<Self, CheckpointError> {
        let s = std::str::from_utf8(text).map_err(|e| {
            CheckpointError::Text(NoteError::NotUtf8 {
                at: e.valid_up_to(),
            })
        })?;
        note::check_text(s).map_err(CheckpointError::Text)?;
        let lines: Vec<&str> = s[..s.len() - 1].split('\n').collect();
        if let Some(i) = lines.iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: i + 1 });
        }
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines { got: lines.len() });
        }
        let size = parse_size(lines[1])?;
        let raw = B64
            .decode(lines[2])
            .map_err(|_| CheckpointError::RootNotBase64)?;
        let root: Hash = raw
            .as_slice()
            .try_into()
            .map_err(|_| CheckpointError::RootLength(raw.len()))?;
        Ok(Checkpoint {
            origin: lines[0].to_owned(),
            size,
            root,
            extensions: lines[3..].iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// Sign this checkpoint with every signer: the whole signed note.
    pub fn sign(&self, signers: &[&dyn NoteSigner]) -> Result<String, VerifyError> {
        let text = self.to_text()?;
        Ok(note::sign_note(&text, signers)?)
    }
}

/// Sign the checkpoint `(origin, size, root)` (no extension lines) with every signer; returns
/// the signed note text.
pub fn sign_checkpoint(
    origin: &str,
    size: u64,
    root: &Hash,
    signers: &[&dyn NoteSigner],
) -> Result<String, VerifyError> {
    Checkpoint::new(origin, size, *root).sign(signers)
}

/// Verify a signed checkpoint against `trusted` (signatures first, per the note spec; with
/// `trusted.require_hybrid`, both an ECDSA P-256 and an ML-DSA-65 signature by trusted keys),
/// then parse the body and check its origin is the trusted log's.
pub fn verify_checkpoint(
    note_text: impl AsRef<[u8]>,
    trusted: &TrustedKeys,
) -> Result<Checkpoint, VerifyError> {
    let text = note::verify_note(note_text.as_ref(), trusted)?;
    let cp = Checkpoint::parse(text.as_bytes())?;
    if cp.origin != trusted.origin {
        return Err(VerifyError::OriginMismatch {
            found: cp.origin,
            expected: trusted.origin.clone(),
        });
    }
    Ok(cp)
}
