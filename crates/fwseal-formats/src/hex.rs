//! Intel HEX (`.hex`): records 00–05, a sparse memory image, and the fwseal signature block
//! written as data records. The byte-level contract is `formats/hex.md`.
//!
//! * **Parsing** is strict: every record's checksum, byte count and hex digits are checked, the
//!   file must end with exactly one EOF record (blank lines may follow), no two data records may
//!   write the same address, and no address may pass 4 GiB. Errors name the 1-based line.
//! * **Digest**: the memory image from the lowest to the highest written address, gaps filled
//!   with [`SignOptions::hex_fill`](crate::SignOptions) (0xFF by default), hashed without
//!   materialising the gaps. It does not depend on line length, record order or the address
//!   record style (02 vs 04). The span is limited to [`MAX_SPAN`].
//! * **Embedded**: the signature block is written as data records (preceded by a type-04 record)
//!   at the signature address, just before the EOF record. Every original record is kept
//!   byte-for-byte. The block must lie above all image data; its footer ends at the highest
//!   address of the signed file, which is how [`extract`] and re-signing find it.
//! * **Detached**: [`crate::detached::message`] over the same memory-image digests.

use crate::reader::Reader;
use crate::sigblock::{self, BlockPlan, Layout};
use crate::{
    Detection, Extracted, Format, FormatError, FormatSpec, Location, Part, Preparation, Prepared,
    Request,
};
use fwseal_crypto::{DigestAlg, Digests, SigAlg};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Largest memory span (lowest to highest address, gaps included) fwseal hashes: 256 MiB.
/// Larger spans are almost always a stray record far from the image (e.g. at 0xFFFFFFF0), and
/// hashing them would cost time for fill bytes nobody flashes.
pub const MAX_SPAN: u64 = 256 << 20;

/// Data bytes per signature-block record fwseal writes.
pub const BLOCK_RECORD_LEN: usize = 16;

/// Default alignment of the signature address.
pub const SIGNATURE_ALIGN: u64 = 16;

/// The fill byte [`extract`] assumes (the default of `SignOptions::hex_fill`).
pub const DEFAULT_FILL: u8 = 0xff;

const FILL_CHUNK: usize = 4096;
const FOUR_GIB: u64 = 1 << 32;

/// The Intel HEX descriptor.
pub static SPEC: FormatSpec = FormatSpec {
    format: Format::Ihex,
    name: "ihex",
    aliases: &["hex"],
    extensions: &["hex"],
    id: 3,
    streams: false,
    summary: "Intel HEX text",
    doc: "formats/hex.md",
    fixtures: "fixtures/hex",
    fuzz_target: "ihex",
    carries_pq: true,
    rsa_scheme: None,
    default_classical: SigAlg::EcdsaP256Sha256,
    detect: |d| Detection::when(looks_like(d)),
    hint_mismatch: || Some(crate::wrong_magic(Format::Ihex)),
    prepare: Preparation::Buffered(prepare),
    extract,
    describe,
};

/// Whether `data` looks like Intel HEX: a `:` followed by at least ten hex digits.
pub fn looks_like(data: &[u8]) -> bool {
    data.first() == Some(&b':')
        && data
            .get(1..11)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
}

fn err(line: u64, what: impl Into<String>) -> FormatError {
    FormatError::line(Format::Ihex, line, what)
}

/// The line terminators a record may end with, by [`Record::eol_code`].
const EOLS: [&str; 4] = ["", "\n", "\r\n", "\r"];
const EOL_NONE: u8 = 0;
const EOL_LF: u8 = 1;
const EOL_CRLF: u8 = 2;
const EOL_CR: u8 = 3;

/// One record as found in the file.
#[derive(Clone, Debug)]
struct Record {
    /// 1-based line number.
    line: u64,
    /// Byte range of the line in the file, including its line terminator.
    start: usize,
    end: usize,
    /// The line terminator: an index into [`EOLS`].
    eol_code: u8,
    rtype: u8,
    offset: u16,
    /// The record's data bytes in `Parsed::bytes`.
    data: std::ops::Range<usize>,
}

/// Part of a data record placed at a contiguous range of addresses (16 bytes: a large file has
/// a million of them).
#[derive(Clone, Copy, Debug)]
struct Chunk {
    addr: u64,
    /// Index into `Parsed::records`.
    rec_idx: u32,
    /// Range of the record's data bytes (a record has at most 255).
    from_byte: u16,
    n_bytes: u16,
}

impl Chunk {
    fn new(addr: u64, rec: u32, from: usize, len: usize) -> Self {
        // A record carries at most 255 data bytes.
        Chunk {
            addr,
            rec_idx: rec,
            from_byte: from as u16,
            n_bytes: len as u16,
        }
    }
    fn rec(&self) -> usize {
        self.rec_idx as usize
    }
    fn from(&self) -> usize {
        usize::from(self.from_byte)
    }
    fn len(&self) -> usize {
        usize::from(self.n_bytes)
    }
}

/// A contiguous run of memory: borrowed from the decoded data when its records are in address
/// order (the usual case: no copy), else assembled.
#[derive(Clone, Debug)]
struct Seg<'a> {
    start: u64,
    bytes: Cow<'a, [u8]>,
    /// Where `bytes` starts in `Parsed::bytes`, while it is borrowed from there.
    at: Option<usize>,
}

impl Record {
    /// The line terminator (`""`, `"\n"`, `"\r\n"` or `"\r"`).
    fn eol(&self) -> &'static str {
        EOLS.get(usize::from(self.eol_code)).copied().unwrap_or("")
    }
}

impl Seg<'_> {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Keep the first `n` bytes.
    fn truncate(&mut self, n: usize) {
        match &mut self.bytes {
            Cow::Borrowed(b) => *b = b.get(..n).unwrap_or(b),
            Cow::Owned(v) => v.truncate(n),
        }
    }
}

/// A parsed file.
struct Parsed {
    records: Vec<Record>,
    /// Every record's data bytes, one after the other (no allocation per record).
    bytes: Vec<u8>,
    /// Data chunks sorted by address (non-overlapping).
    chunks: Vec<Chunk>,
    /// Index of the EOF record in `records`.
    eof: usize,
    /// Start address record: (type, value, line).
    start_address: Option<(u8, u32, u64)>,
    /// Number of lines.
    lines: u64,
}

/// Hex digit values; 0xff marks a byte that is not a hex digit.
const HEXVAL: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn hexval(c: u8) -> Option<u8> {
    match HEXVAL[usize::from(c)] {
        0xff => None,
        v => Some(v),
    }
}

/// Longest well-formed record: count, address (2), type, 255 data bytes, checksum.
const MAX_RECORD: usize = 1 + 2 + 1 + 255 + 1;

/// Decode the hex digits of a well-formed record in one pass (two table look-ups per byte, no
/// branch per digit). `None` if any digit is not a hex digit, the count is odd or the record is
/// too long: [`parse_record`] then takes the slow path, which names the exact fault.
fn decode_fast(digits: &[u8], buf: &mut [u8; MAX_RECORD]) -> Option<usize> {
    let n = digits.len() / 2;
    if !digits.len().is_multiple_of(2) || n > MAX_RECORD {
        return None;
    }
    let mut bad = 0u8;
    for (slot, pair) in buf.iter_mut().zip(digits.chunks_exact(2)) {
        let (h, l) = (HEXVAL[usize::from(pair[0])], HEXVAL[usize::from(pair[1])]);
        // A digit's value is at most 0x0f; a non-digit is 0xff.
        bad |= h | l;
        *slot = h << 4 | (l & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(n)
}

/// Parse one record (without its line terminator); its data bytes are appended to `out`.
fn parse_record(
    content: &[u8],
    line: u64,
    out: &mut Vec<u8>,
) -> Result<(u8, u16, std::ops::Range<usize>), FormatError> {
    match content.first() {
        Some(b':') => {}
        Some(&c) => {
            return Err(err(
                line,
                format!("record does not start with ':' (found byte 0x{c:02x})"),
            ))
        }
        None => return Err(err(line, "empty record")),
    }
    let digits = content.get(1..).unwrap_or_default();
    // Decoded into a stack buffer (no allocation per record); a longer, malformed record is
    // still decoded to the end so the errors below report what it holds.
    let mut buf = [0u8; MAX_RECORD];
    let mut n = 0usize;
    if let Some(fast) = decode_fast(digits, &mut buf) {
        n = fast;
    } else {
        for (i, pair) in digits.chunks(2).enumerate() {
            let col = 2 + 2 * i;
            let hi = pair.first().copied().unwrap_or(b'?');
            let Some(h) = hexval(hi) else {
                return Err(err(
                    line,
                    format!("bad hex digit {:?} at column {col}", char::from(hi)),
                ));
            };
            let Some(&lo) = pair.get(1) else {
                return Err(err(
                    line,
                    format!(
                        "odd number of hex digits ({}): truncated record",
                        digits.len()
                    ),
                ));
            };
            let Some(l) = hexval(lo) else {
                return Err(err(
                    line,
                    format!("bad hex digit {:?} at column {}", char::from(lo), col + 1),
                ));
            };
            if let Some(slot) = buf.get_mut(n) {
                *slot = h << 4 | l;
            }
            n += 1;
        }
    }
    if n < 5 {
        return Err(err(
            line,
            format!(
                "truncated record: {n} bytes, a record needs at least 5 (count, address, type, checksum)"
            ),
        ));
    }
    let count = usize::from(buf[0]);
    if n != count + 5 {
        return Err(err(
            line,
            format!(
                "byte count 0x{:02x} says {count} data bytes but the record holds {}",
                buf[0],
                n - 5
            ),
        ));
    }
    // n ≤ MAX_RECORD here (count ≤ 255), so every byte is in `buf`.
    let bytes = &buf[..n];
    let sum = bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    if sum != 0 {
        let stored = bytes[bytes.len() - 1];
        let want = stored.wrapping_sub(sum);
        return Err(err(
            line,
            format!("bad checksum: record says 0x{stored:02x}, computed 0x{want:02x}"),
        ));
    }
    let offset = u16::from_be_bytes([bytes[1], bytes[2]]);
    let rtype = bytes[3];
    let at = out.len();
    out.extend_from_slice(&bytes[4..4 + count]);
    Ok((rtype, offset, at..at + count))
}

/// One piece of the text, decoded.
struct Piece {
    /// Lines and data ranges relative to the piece until [`parse`] places them.
    records: Vec<Record>,
    arena: Vec<u8>,
    /// Lines in the piece (blank ones included), up to the first bad record.
    lines: u64,
    /// The first record that does not decode: its line within the piece and its content range
    /// in the file (decoded again with its file line number to report it).
    bad: Option<(u64, std::ops::Range<usize>)>,
}

/// Texts at least this long are decoded in two halves on two threads.
const PARALLEL_DECODE_MIN: usize = 4 << 20;

/// Phase 1 of [`parse`] over `text`, which starts at file offset `base`.
fn decode_piece(text: &[u8], base: usize) -> Piece {
    let mut records = Vec::with_capacity(text.len() / 40);
    let mut arena: Vec<u8> = Vec::with_capacity(text.len() / 2);
    let mut pos = 0usize;
    let mut line = 0u64;
    while pos < text.len() {
        line += 1;
        let rest = text.get(pos..).unwrap_or_default();
        let (content_end, next, eol) = match memchr::memchr(b'\n', rest) {
            Some(i) => {
                if i > 0 && rest.get(i - 1) == Some(&b'\r') {
                    (pos + i - 1, pos + i + 1, EOL_CRLF)
                } else {
                    (pos + i, pos + i + 1, EOL_LF)
                }
            }
            None => {
                if rest.last() == Some(&b'\r') {
                    (text.len() - 1, text.len(), EOL_CR)
                } else {
                    (text.len(), text.len(), EOL_NONE)
                }
            }
        };
        let content = text.get(pos..content_end).unwrap_or_default();
        let start = pos;
        pos = next;
        if content.is_empty() {
            continue;
        }
        match parse_record(content, line, &mut arena) {
            Ok((rtype, offset, data)) => records.push(Record {
                line,
                start: base + start,
                end: base + next,
                eol_code: eol,
                rtype,
                offset,
                data,
            }),
            Err(_) => {
                return Piece {
                    records,
                    arena,
                    lines: line,
                    bad: Some((line, base + start..base + content_end)),
                }
            }
        }
    }
    Piece {
        records,
        arena,
        lines: line,
        bad: None,
    }
}

/// Phase 1 over the whole file: two halves (split after a line feed) on two threads for a
/// large text, else one.
fn decode_all(data: &[u8], parallel_min: usize) -> Vec<Piece> {
    let split = (data.len() >= parallel_min)
        .then(|| memchr::memchr(b'\n', data.get(data.len() / 2..).unwrap_or_default()))
        .flatten()
        .map(|i| data.len() / 2 + i + 1)
        .filter(|&at| at < data.len());
    let Some(at) = split else {
        return vec![decode_piece(data, 0)];
    };
    let (head, tail) = data.split_at(at);
    std::thread::scope(|scope| {
        let second = std::thread::Builder::new()
            .name("fwseal-hex".into())
            .spawn_scoped(scope, move || decode_piece(tail, at));
        let first = decode_piece(head, 0);
        let second = match second.map(|t| t.join()) {
            Ok(Ok(p)) => p,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // No thread: decode it here.
            Err(_) => decode_piece(tail, at),
        };
        vec![first, second]
    })
}

fn parse(data: &[u8]) -> Result<Parsed, FormatError> {
    parse_with(data, PARALLEL_DECODE_MIN)
}

/// [`parse`], decoding in two halves from `parallel_min` bytes of text.
fn parse_with(data: &[u8], parallel_min: usize) -> Result<Parsed, FormatError> {
    let pieces = decode_all(data, parallel_min);
    let mut records: Vec<Record> = Vec::new();
    let mut arena: Vec<u8> = Vec::new();
    let mut chunks = Vec::with_capacity(pieces.iter().map(|p| p.records.len()).sum());
    let mut eof: Option<usize> = None;
    let mut start_address: Option<(u8, u32, u64)> = None;
    // Address-record state: base and whether it came from a 02 (segment) record.
    let mut base: u64 = 0;
    let mut segment_mode = false;
    let mut line = 0u64;
    // Phase 2, in file order: the state that spans lines (addresses, EOF, start address).
    for piece in pieces {
        let first_line = line;
        let shift = arena.len();
        if arena.is_empty() {
            arena = piece.arena;
        } else {
            arena.extend_from_slice(&piece.arena);
        }
        let mut placed = piece.records;
        for r in &mut placed {
            r.line += first_line;
            r.data = r.data.start + shift..r.data.end + shift;
        }
        let from = records.len();
        if records.is_empty() {
            records = placed;
        } else {
            records.append(&mut placed);
        }
        for idx in from..records.len() {
            let Some(r) = records.get(idx) else { break };
            line = r.line;
            if let Some(e) = eof {
                let e: &Record = &records[e];
                return Err(err(
                    line,
                    format!("data after the end-of-file record (line {})", e.line),
                ));
            }
            let (rtype, offset) = (r.rtype, r.offset);
            let bytes = arena.get(r.data.clone()).unwrap_or_default();
            let want_len = |n: usize, what: &str| {
                if bytes.len() == n {
                    Ok(())
                } else {
                    Err(err(
                        line,
                        format!(
                            "{what} record (type {rtype:02x}) must carry {n} data bytes, found {}",
                            bytes.len()
                        ),
                    ))
                }
            };
            let idx32 = u32::try_from(idx).map_err(|_| err(line, "more than 2^32 records"))?;
            match rtype {
                0x00 => {
                    let n = bytes.len();
                    let off = u64::from(offset);
                    if segment_mode && off + n as u64 > 0x1_0000 {
                        // Intel: segment addressing wraps within the 64 KiB segment.
                        let first = (0x1_0000 - off) as usize;
                        chunks.push(Chunk::new(base + off, idx32, 0, first));
                        chunks.push(Chunk::new(base, idx32, first, n - first));
                    } else if n > 0 {
                        let addr = base + off;
                        if addr + n as u64 > FOUR_GIB {
                            return Err(err(
                                line,
                                format!(
                                    "data record at 0x{addr:x} with {n} bytes wraps past 4 GiB"
                                ),
                            ));
                        }
                        chunks.push(Chunk::new(addr, idx32, 0, n));
                    }
                }
                0x01 => {
                    want_len(0, "end-of-file")?;
                    eof = Some(idx);
                }
                0x02 => {
                    want_len(2, "extended segment address")?;
                    base = u64::from(u16::from_be_bytes([bytes[0], bytes[1]])) << 4;
                    segment_mode = true;
                }
                0x04 => {
                    want_len(2, "extended linear address")?;
                    base = u64::from(u16::from_be_bytes([bytes[0], bytes[1]])) << 16;
                    segment_mode = false;
                }
                0x03 | 0x05 => {
                    want_len(4, "start address")?;
                    if let Some((_, _, first)) = start_address {
                        return Err(err(
                            line,
                            format!("second start address record (the first is on line {first})"),
                        ));
                    }
                    let v = Reader::new(Format::Ihex, bytes, 0).u32_be("start address")?;
                    start_address = Some((rtype, v, line));
                }
                t => return Err(err(line, format!("unknown record type 0x{t:02x}"))),
            }
        }
        line = first_line + piece.lines;
        if let Some((l, content)) = piece.bad {
            let line = first_line + l;
            if let Some(e) = eof {
                let e: &Record = &records[e];
                return Err(err(
                    line,
                    format!("data after the end-of-file record (line {})", e.line),
                ));
            }
            let content = data.get(content).unwrap_or_default();
            return Err(match parse_record(content, line, &mut Vec::new()) {
                Err(e) => e,
                Ok(_) => err(line, "record decodes differently the second time"),
            });
        }
    }
    let eof = eof.ok_or_else(|| {
        err(
            line.max(1),
            "missing end-of-file record (:00000001FF) at the end of the file",
        )
    })?;
    chunks.sort_by_key(|c| c.addr);
    // Overlap check: the chunk reaching furthest so far against the next one.
    let mut reach: Option<(u64, usize)> = None;
    for c in &chunks {
        if let Some((end, prev)) = reach {
            if c.addr < end {
                let (a, b) = (records[prev].line, records[c.rec()].line);
                let (first, second) = (a.min(b), a.max(b));
                return Err(err(
                    second,
                    format!(
                        "overlapping data: address 0x{:x} is written by line {first} and line {second}",
                        c.addr
                    ),
                ));
            }
        }
        let end = c.addr + c.len() as u64;
        if reach.is_none_or(|(e, _)| end > e) {
            reach = Some((end, c.rec()));
        }
    }
    Ok(Parsed {
        records,
        bytes: arena,
        chunks,
        eof,
        start_address,
        lines: line,
    })
}

impl Parsed {
    /// A record's data bytes.
    fn data(&self, r: &Record) -> &[u8] {
        self.bytes.get(r.data.clone()).unwrap_or_default()
    }

    fn bytes_of(&self, c: &Chunk) -> &[u8] {
        self.records
            .get(c.rec())
            .and_then(|r| self.data(r).get(c.from()..c.from() + c.len()))
            .unwrap_or_default()
    }

    /// The memory image as contiguous segments.
    fn memory(&self) -> Vec<Seg<'_>> {
        let mut segs: Vec<Seg<'_>> = Vec::new();
        for c in &self.chunks {
            let b = self.bytes_of(c);
            let at = self.records.get(c.rec()).map(|r| r.data.start + c.from());
            match segs.last_mut() {
                Some(s) if s.end() == c.addr => match (&mut s.bytes, s.at, at) {
                    // The next bytes of the decoded data: widen the borrowed slice.
                    (Cow::Borrowed(cur), Some(from), Some(at)) if from + cur.len() == at => {
                        *cur = self.bytes.get(from..at + b.len()).unwrap_or(cur);
                    }
                    (bytes, _, _) => {
                        bytes.to_mut().extend_from_slice(b);
                        s.at = None;
                    }
                },
                _ => segs.push(Seg {
                    start: c.addr,
                    bytes: Cow::Borrowed(b),
                    at,
                }),
            }
        }
        segs
    }

    /// The line of the record carrying `addr`, or the last line.
    fn line_of(&self, addr: u64) -> u64 {
        let i = self.chunks.partition_point(|c| c.addr <= addr);
        i.checked_sub(1)
            .and_then(|i| self.chunks.get(i))
            .filter(|c| addr < c.addr + c.len() as u64)
            .and_then(|c| self.records.get(c.rec()))
            .map_or(self.lines.max(1), |r| r.line)
    }

    /// Turn a sigblock error located at a memory address into one located at a line.
    fn relocate(&self, e: FormatError) -> FormatError {
        match e {
            FormatError::Malformed {
                at: Location::Offset(a),
                what,
                ..
            } => err(
                self.line_of(a),
                format!("signature block byte at address 0x{a:x}: {what}"),
            ),
            e => e,
        }
    }
}

/// A located signature block in memory.
struct FoundBlock {
    addr: u64,
    len: u64,
    decoded: sigblock::Decoded,
}

/// Find the signature block whose footer ends at the highest address, and remove it from
/// `segs`. `Ok(None)` if the memory does not end with the footer magic.
fn take_block(p: &Parsed, segs: &mut Vec<Seg<'_>>) -> Result<Option<FoundBlock>, FormatError> {
    let Some(top) = segs.last() else {
        return Ok(None);
    };
    let n = top.bytes.len();
    if n < sigblock::FOOTER_LEN || top.bytes[n - 8..] != sigblock::FOOTER_MAGIC {
        return Ok(None);
    }
    let foot = n - sigblock::FOOTER_LEN;
    let foot_addr = top.start + foot as u64;
    let claimed = top
        .bytes
        .get(foot..foot + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    if !(sigblock::HEADER_LEN + sigblock::FOOTER_LEN..=sigblock::MAX_BLOCK_LEN).contains(&claimed)
        || claimed > n
    {
        return Err(err(
            p.line_of(foot_addr),
            format!(
                "signature block footer at 0x{foot_addr:x} claims {claimed} bytes, which do not fit the contiguous data below it"
            ),
        ));
    }
    let off = n - claimed;
    let addr = top.start + off as u64;
    let block = &top.bytes[off..];
    if block[..4] != sigblock::MAGIC {
        return Err(err(
            p.line_of(addr),
            format!("signature block footer points at 0x{addr:x}, which holds no \"FWSB\" header"),
        ));
    }
    let decoded = sigblock::decode(Format::Ihex, block, addr).map_err(|e| p.relocate(e))?;
    let len = claimed as u64;
    if let Some(top) = segs.last_mut() {
        top.truncate(off);
        if top.bytes.is_empty() {
            segs.pop();
        }
    }
    Ok(Some(FoundBlock { addr, len, decoded }))
}

/// `(lowest address, span)` of the image, checking the span limit.
fn image_range(p: &Parsed, segs: &[Seg<'_>]) -> Result<(u64, u64), FormatError> {
    let (Some(first), Some(last)) = (segs.first(), segs.last()) else {
        return Err(err(
            p.lines.max(1),
            "no data records: the memory image is empty",
        ));
    };
    let span = last.end() - first.start;
    if span > MAX_SPAN {
        return Err(err(
            p.line_of(last.end() - 1),
            format!(
                "memory image spans {span} bytes (0x{:x}..0x{:x}), more than the {MAX_SPAN}-byte limit",
                first.start,
                last.end()
            ),
        ));
    }
    Ok((first.start, span))
}

/// Hash the memory image, gaps filled with `fill`, without materialising the gaps.
fn image_digests(segs: &[Seg<'_>], algs: &[DigestAlg], fill: u8) -> Digests {
    // The image is in memory: each digest on its own thread reads it where it is.
    let fill_buf = [fill; FILL_CHUNK];
    let mut parts: Vec<&[u8]> = Vec::new();
    feed_image(segs, &fill_buf, |b| parts.push(b));
    fwseal_crypto::digest_parts(&parts, algs, || ()).0
}

/// The memory image in address order, gaps filled from `fill_buf`, in pieces.
fn feed_image<'a>(
    segs: &'a [Seg<'_>],
    fill_buf: &'a [u8; FILL_CHUNK],
    mut f: impl FnMut(&'a [u8]),
) {
    let mut at: Option<u64> = None;
    for s in segs {
        if let Some(mut cur) = at {
            while cur < s.start {
                let n = (s.start - cur).min(FILL_CHUNK as u64) as usize;
                f(&fill_buf[..n]);
                cur += n as u64;
            }
        }
        f(&s.bytes);
        at = Some(s.end());
    }
}

/// Intel HEX layout: the block as data records at the signature address, before the EOF record.
struct Records {
    /// Output before the new block records (original records, old block records dropped).
    head: Vec<Part>,
    /// From the EOF record to the end of the file.
    tail: Part,
    eol: &'static str,
    sig_addr: u64,
}

impl Layout for Records {
    fn embed(&self, block: Vec<u8>) -> Result<Vec<Part>, FormatError> {
        if self.sig_addr + block.len() as u64 > FOUR_GIB {
            return Err(FormatError::Misuse(format!(
                "a {}-byte signature block at 0x{:x} would pass the 4 GiB address limit",
                block.len(),
                self.sig_addr
            )));
        }
        let mut parts = self.head.clone();
        // Every line before the EOF record ends with a terminator, so the new records always
        // start on a fresh line.
        parts.push(Part::Bytes(
            data_records(self.sig_addr, &block, self.eol).into_bytes(),
        ));
        parts.push(self.tail.clone());
        Ok(parts)
    }
}

/// Encode one record line.
fn record(rtype: u8, offset: u16, data: &[u8], eol: &str) -> String {
    let mut s = String::with_capacity(11 + 2 * data.len() + 2);
    let [oh, ol] = offset.to_be_bytes();
    let count = data.len() as u8;
    let mut sum = count.wrapping_add(oh).wrapping_add(ol).wrapping_add(rtype);
    let _ = write!(s, ":{count:02X}{offset:04X}{rtype:02X}");
    for &b in data {
        let _ = write!(s, "{b:02X}");
        sum = sum.wrapping_add(b);
    }
    let _ = write!(s, "{:02X}{eol}", sum.wrapping_neg());
    s
}

/// Records writing `bytes` at `addr` (type 04 whenever the upper 16 bits change; no record
/// crosses a 64 KiB boundary).
fn data_records(addr: u64, bytes: &[u8], eol: &str) -> String {
    let mut out = String::new();
    let mut upper = None;
    let mut a = addr;
    let mut rest = bytes;
    while !rest.is_empty() {
        let hi = (a >> 16) as u16;
        if upper != Some(hi) {
            out.push_str(&record(0x04, 0, &hi.to_be_bytes(), eol));
            upper = Some(hi);
        }
        let to_boundary = (0x1_0000 - (a & 0xffff)) as usize;
        let n = rest.len().min(BLOCK_RECORD_LEN).min(to_boundary);
        let (now, later) = rest.split_at(n);
        out.push_str(&record(0x00, (a & 0xffff) as u16, now, eol));
        rest = later;
        a += n as u64;
    }
    out
}

/// What happens to each original record when the old block is removed.
enum Fate {
    Keep,
    Drop,
    /// Keep only the first `n` data bytes.
    Truncate(usize),
}

fn fates(p: &Parsed, block: Option<(u64, u64)>) -> Result<Vec<Fate>, FormatError> {
    let mut fates: Vec<Fate> = p.records.iter().map(|_| Fate::Keep).collect();
    let Some((bs, blen)) = block else {
        return Ok(fates);
    };
    let be = bs + blen;
    // Bytes of each data record inside the block, by data index.
    let mut inside: Vec<Vec<bool>> = p
        .records
        .iter()
        .map(|r| vec![false; r.data.len()])
        .collect();
    for c in &p.chunks {
        let (s, e) = (c.addr, c.addr + c.len() as u64);
        if e <= bs || s >= be {
            continue;
        }
        if let Some(flags) = inside.get_mut(c.rec()) {
            for k in 0..c.len() {
                let a = s + k as u64;
                if a >= bs && a < be {
                    if let Some(f) = flags.get_mut(c.from() + k) {
                        *f = true;
                    }
                }
            }
        }
    }
    for (i, flags) in inside.iter().enumerate() {
        let n_in = flags.iter().filter(|&&f| f).count();
        if n_in == 0 {
            continue;
        }
        let keep = flags.len() - n_in;
        if flags.iter().skip(keep).all(|&f| f) {
            if let Some(f) = fates.get_mut(i) {
                *f = if keep == 0 {
                    Fate::Drop
                } else {
                    Fate::Truncate(keep)
                };
            }
        } else {
            let line = p.records.get(i).map_or(0, |r| r.line);
            return Err(err(
                line,
                "record mixes image data and signature-block bytes in an order that cannot be separated",
            ));
        }
    }
    // An address record (02/04) whose every governed data record was dropped goes too.
    let mut i = 0;
    while i < p.records.len() {
        if matches!(p.records[i].rtype, 0x02 | 0x04) {
            let mut governed = 0;
            let mut dropped = 0;
            let mut j = i + 1;
            while j < p.records.len() && !matches!(p.records[j].rtype, 0x01 | 0x02 | 0x04) {
                if p.records[j].rtype == 0x00 {
                    governed += 1;
                    if matches!(fates[j], Fate::Drop) {
                        dropped += 1;
                    }
                }
                j += 1;
            }
            if governed > 0 && governed == dropped {
                fates[i] = Fate::Drop;
            }
        }
        i += 1;
    }
    Ok(fates)
}

/// Prepare a signing plan for an Intel HEX file.
pub fn prepare(data: &[u8], req: &Request) -> Result<Box<dyn Prepared>, FormatError> {
    req.validate()?;
    let p = parse(data)?;
    let mut segs = p.memory();
    let old = take_block(&p, &mut segs)?;
    let range = image_range(&p, &segs)?;
    let algs = req.digest_algs(DigestAlg::Sha256);
    let digests = image_digests(&segs, &algs, req.options.hex_fill);
    let hi = range.0 + range.1;
    let sig_addr = match req.options.hex_signature_address {
        Some(a) if u64::from(a) < hi => {
            return Err(FormatError::Misuse(format!(
                "hex signature address 0x{a:08x} overlaps the image (data spans 0x{:08x}..0x{hi:08x}); \
                 the signature block must lie above the highest data byte",
                range.0
            )))
        }
        Some(a) => u64::from(a),
        None => hi.div_ceil(SIGNATURE_ALIGN) * SIGNATURE_ALIGN,
    };
    let fates = fates(&p, old.as_ref().map(|b| (b.addr, b.len)))?;
    let eof = p
        .records
        .get(p.eof)
        .ok_or_else(|| FormatError::Misuse("EOF record index".into()))?;
    let mut head = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    let flush = |run: &mut Option<(usize, usize)>, head: &mut Vec<Part>| {
        if let Some((s, e)) = run.take() {
            head.push(Part::Input {
                start: s as u64,
                len: (e - s) as u64,
            });
        }
    };
    // Everything before the EOF line, minus dropped records; blank lines are kept.
    let mut pos = 0usize;
    for (r, fate) in p.records.iter().zip(&fates).take(p.eof) {
        // Blank lines between the previous record and this one.
        if r.start > pos {
            run = Some(match run {
                Some((s, _)) => (s, r.start),
                None => (pos, r.start),
            });
        }
        match fate {
            Fate::Keep => {
                run = Some(match run {
                    Some((s, _)) => (s, r.end),
                    None => (r.start, r.end),
                });
            }
            Fate::Drop => flush(&mut run, &mut head),
            Fate::Truncate(n) => {
                flush(&mut run, &mut head);
                let d = p.data(r).get(..*n).unwrap_or_default();
                head.push(Part::Bytes(record(0x00, r.offset, d, r.eol()).into_bytes()));
            }
        }
        pos = r.end;
    }
    if eof.start > pos {
        run = Some(match run {
            Some((s, _)) => (s, eof.start),
            None => (pos, eof.start),
        });
    }
    flush(&mut run, &mut head);
    let eol = match p.records.first().map(|r| r.eol()) {
        Some("\r\n") => "\r\n",
        _ => "\n",
    };
    let tail = Part::Input {
        start: eof.start as u64,
        len: (data.len() - eof.start) as u64,
    };
    Ok(Box::new(BlockPlan {
        format: Format::Ihex,
        req: req.clone(),
        digests,
        primary: DigestAlg::Sha256,
        range,
        // Record the fill byte so a verifier needs no out-of-band configuration.
        fill: Some(req.options.hex_fill),
        layout: Records {
            head,
            tail,
            eol,
            sig_addr,
        },
    }))
}

/// Extract the signature block of a signed HEX file and check its digests against the memory
/// image, with gaps filled by the block's FILL byte (0xFF for blocks that record none).
pub fn extract(data: &[u8]) -> Result<Extracted, FormatError> {
    extract_with_fill(data, DEFAULT_FILL)
}

/// [`extract`] with `fill` as the gap byte for blocks that do not record one (the FILL TLV,
/// when present, always wins: it is signed).
pub fn extract_with_fill(data: &[u8], fill: u8) -> Result<Extracted, FormatError> {
    let p = parse(data)?;
    let mut segs = p.memory();
    let b = take_block(&p, &mut segs)?.ok_or(FormatError::NotSigned(Format::Ihex))?;
    let range = image_range(&p, &segs)?;
    let d = &b.decoded;
    let algs: Vec<DigestAlg> = d.meta.digests.iter().map(|(a, _)| *a).collect();
    let digests = image_digests(&segs, &algs, d.meta.fill.unwrap_or(fill));
    sigblock::check_digests(Format::Ihex, d, b.addr, range, |a| {
        digests.get(a).unwrap_or_default().to_vec()
    })
    .map_err(|e| p.relocate(e))?;
    d.extracted()
}

/// Describe a HEX file: records, segments, start address, signature block.
pub fn describe(data: &[u8]) -> Result<String, FormatError> {
    let p = parse(data)?;
    let mut segs = p.memory();
    let block = take_block(&p, &mut segs)?;
    let n_data = p.records.iter().filter(|r| r.rtype == 0x00).count();
    let bytes: usize = segs.iter().map(|s| s.bytes.len()).sum();
    let mut s = format!(
        "Intel HEX: {} records ({n_data} data), {} segment(s), {bytes} data bytes",
        p.records.len(),
        segs.len()
    );
    const SHOW: usize = 32;
    for g in segs.iter().take(SHOW) {
        let _ = write!(
            s,
            "\n  segment 0x{:08x}..0x{:08x} ({} bytes)",
            g.start,
            g.end(),
            g.bytes.len()
        );
    }
    if segs.len() > SHOW {
        let _ = write!(s, "\n  ... {} more segments", segs.len() - SHOW);
    }
    match p.start_address {
        Some((0x05, v, _)) => {
            let _ = write!(s, "\n  start address: 0x{v:08x} (linear, type 05)");
        }
        Some((_, v, _)) => {
            let _ = write!(
                s,
                "\n  start address: CS:IP {:04x}:{:04x} (segment, type 03)",
                v >> 16,
                v & 0xffff
            );
        }
        None => s.push_str("\n  start address: none"),
    }
    if let Some(b) = block {
        let _ = write!(
            s,
            "\n  fwseal signature block at 0x{:08x} ({} bytes, {} signature(s), product {:?})",
            b.addr,
            b.len,
            b.decoded.signatures.len(),
            b.decoded.meta.product
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexfile(lines: &[&str]) -> Vec<u8> {
        let mut s = lines.join("\n");
        s.push('\n');
        s.into_bytes()
    }

    #[test]
    fn record_encoding_matches_the_spec_example() {
        // The classic example record (Wikipedia, "Intel HEX").
        let d = [
            0x21, 0x46, 0x01, 0x36, 0x01, 0x21, 0x47, 0x01, 0x36, 0x00, 0x7e, 0xfe, 0x09, 0xd2,
            0x19, 0x01,
        ];
        assert_eq!(
            record(0, 0x0100, &d, ""),
            ":10010000214601360121470136007EFE09D2190140"
        );
        assert_eq!(record(1, 0, &[], ""), ":00000001FF");
    }

    #[test]
    fn segment_mode_wraps_within_the_segment() {
        let f = hexfile(&[":020000021000EC", ":04FFFE0001020304F5", ":00000001FF"]);
        let p = parse(&f).expect("parse");
        let m = p.memory();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].start, m[0].bytes.to_vec()), (0x10000, vec![3, 4]));
        assert_eq!((m[1].start, m[1].bytes.to_vec()), (0x1fffe, vec![1, 2]));
    }

    /// Decoding in two halves gives what one pass gives: the same records, lines and memory, or
    /// the same error (line numbers included), wherever the fault is.
    #[test]
    fn two_half_decode_equals_one_pass() {
        let mut text = String::new();
        for i in 0..400u32 {
            if i % 64 == 0 {
                text.push_str(&record(0x04, 0, &((i / 64) as u16).to_be_bytes(), "\n"));
            }
            let data: Vec<u8> = (0..16).map(|k| (i * 16 + k) as u8).collect();
            text.push_str(&record(0x00, ((i % 64) * 16) as u16, &data, "\r\n"));
            if i % 97 == 0 {
                text.push('\n');
            }
        }
        text.push_str(":00000001FF\n");
        let base = text.into_bytes();
        let summary = |r: Result<Parsed, FormatError>| match r {
            Ok(p) => {
                let lines: Vec<(u64, usize, usize)> =
                    p.records.iter().map(|r| (r.line, r.start, r.end)).collect();
                let mem: Vec<(u64, Vec<u8>)> = p
                    .memory()
                    .iter()
                    .map(|s| (s.start, s.bytes.to_vec()))
                    .collect();
                format!("ok {} {:?} {:?} {}", p.lines, lines, mem, p.eof)
            }
            Err(e) => format!("error {e}"),
        };
        let mut cases = vec![base.clone()];
        for at in [
            5,
            base.len() / 3,
            base.len() / 2 - 3,
            base.len() / 2 + 40,
            base.len() - 30,
        ] {
            for byte in [b'G', b'0', b'\n', b':'] {
                let mut v = base.clone();
                v[at] = byte;
                cases.push(v);
            }
        }
        // An EOF record in the first half, data after it in the second.
        let mut early = base.clone();
        let eof = b":00000001FF\n";
        early.splice(100..100, eof.iter().copied());
        cases.push(early);
        for (n, case) in cases.iter().enumerate() {
            let one = summary(parse_with(case, usize::MAX));
            let two = summary(parse_with(case, 0));
            assert_eq!(one, two, "case {n}");
        }
    }

    #[test]
    fn fill_is_streamed_exactly() {
        let segs = vec![
            Seg {
                start: 10,
                bytes: vec![1, 2, 3].into(),
                at: None,
            },
            Seg {
                start: 10 + 3 + 3 * FILL_CHUNK as u64 + 17,
                bytes: vec![4].into(),
                at: None,
            },
        ];
        let mut flat = vec![1, 2, 3];
        flat.extend(std::iter::repeat_n(0xa5u8, 3 * FILL_CHUNK + 17));
        flat.push(4);
        let d = image_digests(&segs, &[DigestAlg::Sha256, DigestAlg::Sha512], 0xa5);
        assert_eq!(
            d.get(DigestAlg::Sha256),
            Some(DigestAlg::Sha256.hash(&flat).as_slice())
        );
        assert_eq!(
            d.get(DigestAlg::Sha512),
            Some(DigestAlg::Sha512.hash(&flat).as_slice())
        );
    }
}
