//! Typed errors. Input errors carry a location; API misuse is kept apart from bad input.

use crate::Format;

/// Where in the input a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Byte offset from the start of the file.
    Offset(u64),
    /// 1-based line number (Intel HEX).
    Line(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Offset(o) => write!(f, "byte offset {o} (0x{o:x})"),
            Location::Line(l) => write!(f, "line {l}"),
        }
    }
}

/// Errors from the format engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input is not a well-formed image of `format`.
    #[error("malformed {format} image at {at}: {what}")]
    Malformed {
        /// Format being parsed.
        format: Format,
        /// Where.
        at: Location,
        /// What is wrong.
        what: String,
    },
    /// A `.img` that is not MCUboot (Android boot, FIT, ...).
    #[error("unsupported .img flavour: {0}")]
    UnsupportedFlavour(String),
    /// The format cannot do what was asked (algorithm not carried, mode unsupported).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The input exceeds the size limit for a format that needs random access.
    #[error("input larger than the {limit}-byte limit for this format")]
    TooLarge {
        /// Limit in bytes.
        limit: u64,
    },
    /// The signed image would not fit the flash slot configured for it (MCUboot `slot size`):
    /// `image` bytes plus the `trailer` the bootloader keeps at the end of the slot exceed
    /// `slot`.
    #[error(
        "the signed {format} image does not fit its slot: {image} bytes (unsigned input {input} \
         bytes) + {trailer}-byte image trailer = {} bytes > slot size {slot} bytes, {} bytes over",
        image.saturating_add(*trailer),
        image.saturating_add(*trailer).saturating_sub(*slot)
    )]
    SlotOverflow {
        /// Format.
        format: Format,
        /// Size of the input as given.
        input: u64,
        /// Size of the signed image (the largest it can be: classical signatures counted at
        /// their longest encoding).
        image: u64,
        /// Bytes reserved at the end of the slot (imgtool's image trailer).
        trailer: u64,
        /// Slot size.
        slot: u64,
    },
    /// The image carries no signatures.
    #[error("{0} image carries no fwseal-recognised signature")]
    NotSigned(Format),
    /// Programming error by the caller.
    #[error("API misuse: {0}")]
    Misuse(String),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] fwseal_crypto::CryptoError),
}

impl FormatError {
    /// Shorthand for a [`FormatError::Malformed`] at a byte offset.
    pub fn at(format: Format, offset: u64, what: impl Into<String>) -> Self {
        FormatError::Malformed {
            format,
            at: Location::Offset(offset),
            what: what.into(),
        }
    }

    /// Shorthand for a [`FormatError::Malformed`] on a line.
    pub fn line(format: Format, line: u64, what: impl Into<String>) -> Self {
        FormatError::Malformed {
            format,
            at: Location::Line(line),
            what: what.into(),
        }
    }

    /// The location, for errors that have one.
    pub fn location(&self) -> Option<Location> {
        match self {
            FormatError::Malformed { at, .. } => Some(*at),
            _ => None,
        }
    }
}
