//! Typed verdicts: a stable [`Reason`] (the shared reason codes of the conformance kit) plus
//! where and what.

use core::fmt;

/// Why an image was rejected (or `Ok`). The discriminants are stable (the C ABI returns them)
/// and [`Reason::code`] gives the conformance kit's reason string.
///
/// Precedence when several apply: structural (`Truncated` … `PqTlvNotLast`) → digests
/// (`DigestMismatch`, `DigestMissing`) → `SecurityCounterTooLow` → signatures
/// (`UnsupportedAlgorithm`, `UntrustedKey`, `*SignatureInvalid`, `*SignatureMissing`).
/// `InvalidKey` and `ApiMisuse` are not verdicts on the image: they report a mistake of the
/// integrator (a trusted key that does not parse, bytes fed out of order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Reason {
    /// Accepted (never inside an [`Error`]).
    Ok = 0,
    /// The image, block or TLV area is shorter than its own headers say.
    Truncated = 1,
    /// A length field is inconsistent with another (block_len vs header, `it_tlv_tot`, a TLV
    /// running past its area).
    BadLength = 2,
    /// A magic number is wrong (`FWSB` behind a valid footer, MCUboot `0x96f3b83d`, `0x6907`,
    /// `0x6908`).
    BadMagic = 3,
    /// Any other structural error (version, reserved field, value length for a type, UTF-8, …).
    Malformed = 4,
    /// No signature block footer / an MCUboot image without an unprotected TLV area.
    NoSignatureBlock = 5,
    /// A TLV type unknown where it appears (signature block: every unknown type).
    UnknownTlv = 6,
    /// A TLV that may appear once appears twice.
    DuplicateTlv = 7,
    /// The FORMAT TLV names another format than the one being verified.
    FormatMismatch = 8,
    /// A DIGEST / SHA256 / SHA384 / SHA512 TLV differs from the recomputed digest.
    DigestMismatch = 9,
    /// The digest matched to a signature's algorithm (or MCUboot's image hash) is absent.
    DigestMissing = 10,
    /// An algorithm id this verifier does not implement (RSA, an unknown id, SLH-DSA without
    /// the `slh-dsa` feature).
    UnsupportedAlgorithm = 11,
    /// A signature names a key (key id / KEYHASH / PUBKEY) that no trusted key matches.
    UntrustedKey = 12,
    /// A classical (ECDSA) signature does not verify.
    ClassicalSignatureInvalid = 13,
    /// A post-quantum (ML-DSA / SLH-DSA) signature does not verify.
    PqSignatureInvalid = 14,
    /// The policy requires the classical half and there is none.
    ClassicalSignatureMissing = 15,
    /// The policy requires the post-quantum half and there is none.
    PqSignatureMissing = 16,
    /// MCUboot: the FWSEAL_PQ_SIG TLV is not the last protected TLV.
    PqTlvNotLast = 17,
    /// The security counter (absent = 0) is below the policy minimum.
    SecurityCounterTooLow = 18,
    /// Not a verdict: a trusted key given to [`crate::Verifier::new`] does not parse, is not in
    /// the canonical encoding key ids are computed over, or is for an unsupported algorithm.
    InvalidKey = 19,
    /// Not a verdict: the caller broke the streaming protocol (more bytes than
    /// [`crate::Verifier::next_read`] asked for, `finish` before the last read, different
    /// bytes for a range read twice).
    ApiMisuse = 20,
}

impl Reason {
    /// Every reason, in discriminant order.
    pub const ALL: [Reason; 21] = [
        Reason::Ok,
        Reason::Truncated,
        Reason::BadLength,
        Reason::BadMagic,
        Reason::Malformed,
        Reason::NoSignatureBlock,
        Reason::UnknownTlv,
        Reason::DuplicateTlv,
        Reason::FormatMismatch,
        Reason::DigestMismatch,
        Reason::DigestMissing,
        Reason::UnsupportedAlgorithm,
        Reason::UntrustedKey,
        Reason::ClassicalSignatureInvalid,
        Reason::PqSignatureInvalid,
        Reason::ClassicalSignatureMissing,
        Reason::PqSignatureMissing,
        Reason::PqTlvNotLast,
        Reason::SecurityCounterTooLow,
        Reason::InvalidKey,
        Reason::ApiMisuse,
    ];

    /// The stable reason string (the conformance kit's `reason` field).
    pub const fn code(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::Truncated => "truncated",
            Reason::BadLength => "bad-length",
            Reason::BadMagic => "bad-magic",
            Reason::Malformed => "malformed",
            Reason::NoSignatureBlock => "no-signature-block",
            Reason::UnknownTlv => "unknown-tlv",
            Reason::DuplicateTlv => "duplicate-tlv",
            Reason::FormatMismatch => "format-mismatch",
            Reason::DigestMismatch => "digest-mismatch",
            Reason::DigestMissing => "digest-missing",
            Reason::UnsupportedAlgorithm => "unsupported-algorithm",
            Reason::UntrustedKey => "untrusted-key",
            Reason::ClassicalSignatureInvalid => "classical-signature-invalid",
            Reason::PqSignatureInvalid => "pq-signature-invalid",
            Reason::ClassicalSignatureMissing => "classical-signature-missing",
            Reason::PqSignatureMissing => "pq-signature-missing",
            Reason::PqTlvNotLast => "pq-tlv-not-last",
            Reason::SecurityCounterTooLow => "security-counter-too-low",
            Reason::InvalidKey => "invalid-key",
            Reason::ApiMisuse => "api-misuse",
        }
    }

    /// Inverse of [`Reason::code`].
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether this reason is a verdict on the image (everything but `InvalidKey`/`ApiMisuse`).
    pub const fn is_verdict(self) -> bool {
        !matches!(self, Reason::InvalidKey | Reason::ApiMisuse)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejection: the [`Reason`], the byte offset in the image where the problem is (when there
/// is one), and a fixed English description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    reason: Reason,
    offset: Option<u64>,
    detail: &'static str,
}

impl Error {
    pub(crate) const fn new(reason: Reason, offset: Option<u64>, detail: &'static str) -> Self {
        Error {
            reason,
            offset,
            detail,
        }
    }

    pub(crate) const fn at(reason: Reason, offset: u64, detail: &'static str) -> Self {
        Error::new(reason, Some(offset), detail)
    }

    pub(crate) const fn misuse(detail: &'static str) -> Self {
        Error::new(Reason::ApiMisuse, None, detail)
    }

    /// The reason.
    pub const fn reason(&self) -> Reason {
        self.reason
    }

    /// The stable reason string (`"bad-magic"`, `"pq-signature-invalid"`, …).
    pub const fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// Byte offset in the image (the device image: see [`crate::Format`]) of the field at fault.
    pub const fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// What is wrong, in English (fixed text; no input bytes are echoed).
    pub const fn detail(&self) -> &'static str {
        self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(
                f,
                "{} at byte offset {o} (0x{o:x}): {}",
                self.code(),
                self.detail
            ),
            None => write!(f, "{}: {}", self.code(), self.detail),
        }
    }
}

impl core::error::Error for Error {}
