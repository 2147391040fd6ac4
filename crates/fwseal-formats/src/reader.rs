//! One bounded little/big-endian byte reader for every binary parser (MCUboot, DFU, PE, the
//! signature block). A read past the end is an error located at the byte offset where the read
//! started ([`FormatError::Malformed`] with [`crate::Location::Offset`]); nothing panics, and
//! nothing allocates but the error itself. `peek_*` read a field without building an error.

use crate::{Format, FormatError};

/// A cursor over `&[u8]`. `base` is the file offset of `data[0]`, so errors name file offsets
/// even when the reader covers a slice of the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    format: Format,
    data: &'a [u8],
    base: u64,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data` (at file offset `base`), positioned at its start.
    pub fn new(format: Format, data: &'a [u8], base: u64) -> Self {
        Reader {
            format,
            data,
            base,
            pos: 0,
        }
    }

    /// The same reader positioned at `pos` (relative to the data; may lie past the end, in
    /// which case the next read fails).
    pub fn at(self, pos: usize) -> Self {
        Reader { pos, ..self }
    }

    /// Position relative to the data.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// An error at file offset `base + pos`.
    pub fn err_at(&self, pos: usize, what: impl Into<String>) -> FormatError {
        FormatError::at(self.format, self.base.saturating_add(pos as u64), what)
    }

    /// The next `n` bytes; `what` is the error message if they are not all there.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|e| self.data.get(self.pos..e))
            .ok_or_else(|| self.err_at(self.pos, what))?;
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FormatError> {
        let a = peek(self.data, self.pos).ok_or_else(|| self.err_at(self.pos, what))?;
        self.pos += N;
        Ok(a)
    }

    /// Skip `n` bytes (they must exist).
    pub fn skip(&mut self, n: usize, what: &str) -> Result<(), FormatError> {
        self.bytes(n, what).map(|_| ())
    }

    /// Every byte from the position to the end (empty past the end); the reader ends up there.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.pos.max(self.data.len());
        r
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Little-endian u16.
    pub fn u16_le(&mut self, what: &str) -> Result<u16, FormatError> {
        self.array(what).map(u16::from_le_bytes)
    }

    /// Little-endian u32.
    pub fn u32_le(&mut self, what: &str) -> Result<u32, FormatError> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// Big-endian u32.
    pub fn u32_be(&mut self, what: &str) -> Result<u32, FormatError> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// Little-endian u64.
    pub fn u64_le(&mut self, what: &str) -> Result<u64, FormatError> {
        self.array(what).map(u64::from_le_bytes)
    }
}

fn peek<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Little-endian u16 at `at`, if the bytes are there (magic checks and fields whose bounds the
/// caller has already checked; no error is built).
pub(crate) fn peek_u16_le(data: &[u8], at: usize) -> Option<u16> {
    peek(data, at).map(u16::from_le_bytes)
}

/// Little-endian u32 at `at`, if the bytes are there.
pub(crate) fn peek_u32_le(data: &[u8], at: usize) -> Option<u32> {
    peek(data, at).map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    #[test]
    fn reads_and_locates_errors() {
        let d = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut r = Reader::new(Format::Dfu, &d, 100);
        assert_eq!(r.u8("a").ok(), Some(1));
        assert_eq!(r.u16_le("b").ok(), Some(0x0302));
        assert_eq!(r.u32_be("c").ok(), Some(0x0405_0607));
        assert_eq!(r.pos(), 7);
        let e = r.u32_le("cut").expect_err("short");
        assert_eq!(e.location(), Some(Location::Offset(107)));
        assert!(e.to_string().ends_with("cut"), "{e}");
        assert_eq!(r.pos(), 7, "a failed read does not move");
        assert_eq!(r.rest(), &[8, 9]);
        assert_eq!(r.rest(), &[] as &[u8]);
        let mut r = Reader::new(Format::Dfu, &d, 0).at(usize::MAX);
        assert!(r.u8("far").is_err());
        assert!(r.skip(1, "far").is_err());
        assert_eq!(r.rest(), &[] as &[u8]);
        assert_eq!(peek_u32_le(&d, 5), Some(0x0908_0706));
        assert_eq!(peek_u16_le(&d, 8), None);
        assert_eq!(
            Reader::new(Format::Raw, &d, 0).at(1).u64_le("x").ok(),
            Some(u64::from_le_bytes([2, 3, 4, 5, 6, 7, 8, 9]))
        );
    }
}
