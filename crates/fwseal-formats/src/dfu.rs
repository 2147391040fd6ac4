//! DFU files (`.dfu`): plain DFU 1.1 files and ST DfuSe files. The byte-level contract is
//! `formats/dfu.md`.
//!
//! * **DFU 1.1**: `payload ‖ suffix` where the 16-byte suffix is `bcdDevice u16 ‖ idProduct u16 ‖
//!   idVendor u16 ‖ bcdDFU u16 ‖ "UFD" ‖ bLength=16 ‖ dwCRC u32` (all little-endian) and dwCRC is
//!   CRC-32 (reflected, poly 0xEDB88320, init 0xFFFFFFFF, **no** final xor) over every byte but the
//!   last four. The digest is SHA-256 (plus the digests the algorithms need) over the payload,
//!   excluding a fwseal signature block at its end. Embedded mode appends the block
//!   ([`crate::sigblock`]) to the payload, before a recomputed suffix. Prepared from a stream in
//!   constant memory: only the last `16 + sigblock::MAX_BLOCK_LEN` bytes are held back.
//! * **DfuSe** (`bcdDFU` 0x011a): `prefix ‖ targets ‖ suffix`. The digest is over the *canonical
//!   element encoding* ([`DfuSeFile::canonical`]); embedded mode adds one element holding the
//!   signature block at the end of the last target. DfuSe input is **buffered** (not streamed),
//!   up to [`DFUSE_MAX_LEN`] bytes: these are MCU flash images of a few MiB at most.

use crate::reader::{peek_u16_le, peek_u32_le, Reader};
use crate::sigblock::{self, BlockPlan, Layout};
use crate::{
    Detection, Extracted, Format, FormatError, FormatSpec, Mode, Part, Preparation, Prepared,
    Request, StreamPreparer,
};
use fwseal_crypto::{DigestAlg, Digests, Hasher, MultiHasher, SigAlg};

/// Length of the DFU suffix.
pub const SUFFIX_LEN: usize = 16;
/// The DFU suffix signature as it appears in the file ("DFU" reversed).
pub const SUFFIX_SIGNATURE: [u8; 3] = *b"UFD";
/// DfuSe prefix magic.
pub const DFUSE_MAGIC: [u8; 5] = *b"DfuSe";
/// DfuSe prefix length.
pub const DFUSE_PREFIX_LEN: usize = 11;
/// DfuSe target prefix length.
pub const DFUSE_TARGET_LEN: usize = 274;
/// DfuSe element header length (address, size).
pub const DFUSE_ELEMENT_LEN: usize = 8;
/// bcdDFU value that marks a DfuSe file.
pub const BCD_DFUSE: u16 = 0x011a;
/// Largest DfuSe file accepted (DfuSe input is buffered, not streamed).
pub const DFUSE_MAX_LEN: u64 = 64 << 20;
/// Bytes held back while streaming a DFU 1.1 file: the suffix plus the largest signature block.
const HOLD: usize = sigblock::MAX_BLOCK_LEN + SUFFIX_LEN;
/// Primary digest of DFU images.
const PRIMARY: DigestAlg = DigestAlg::Sha256;

/// The DFU / DfuSe descriptor.
pub static SPEC: FormatSpec = FormatSpec {
    format: Format::Dfu,
    name: "dfu",
    aliases: &["dfuse"],
    extensions: &["dfu"],
    id: 4,
    streams: true,
    summary: "DFU 1.1 / DfuSe file",
    doc: "formats/dfu.md",
    fixtures: "fixtures/dfu",
    fuzz_target: "dfu",
    carries_pq: true,
    rsa_scheme: None,
    default_classical: SigAlg::EcdsaP256Sha256,
    detect: |d| Detection::when(looks_like(d)),
    hint_mismatch: || Some(crate::wrong_magic(Format::Dfu)),
    prepare: Preparation::Stream(|req| Box::new(DfuStream::new(req))),
    extract,
    describe,
};

fn err(offset: u64, what: impl Into<String>) -> FormatError {
    FormatError::at(Format::Dfu, offset, what)
}
/// The DFU suffix CRC value (what `dwCRC` holds) of `data`: CRC-32 without the final xor.
pub fn suffix_crc(data: &[u8]) -> u32 {
    !crc32fast::hash(data)
}

/// Whether `data` looks like a DFU file: it ends with a DFU suffix (`"UFD"`, bLength 16, and a
/// known bcdDFU: 0x0100, 0x0110 or 0x011a), or it starts with the DfuSe prefix (`"DfuSe"`,
/// version 1). The CRC is not checked here (a file with a bad CRC is a *malformed* DFU file).
pub fn looks_like(data: &[u8]) -> bool {
    if data.len() >= DFUSE_PREFIX_LEN + SUFFIX_LEN
        && data.starts_with(&DFUSE_MAGIC)
        && data.get(5) == Some(&1)
    {
        return true;
    }
    let Some(s) = data.len().checked_sub(SUFFIX_LEN) else {
        return false;
    };
    data.get(s + 8..s + 12) == Some(b"UFD\x10".as_slice())
        && matches!(peek_u16_le(data, s + 6), Some(0x0100 | 0x0110 | BCD_DFUSE))
}

/// The DFU suffix fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suffix {
    /// bcdDevice.
    pub bcd_device: u16,
    /// idProduct.
    pub id_product: u16,
    /// idVendor.
    pub id_vendor: u16,
    /// bcdDFU (0x0100 for DFU 1.1, 0x011a for DfuSe).
    pub bcd_dfu: u16,
    /// dwCRC as recorded.
    pub crc: u32,
}

impl Suffix {
    /// Parse a 16-byte suffix found at file offset `base`.
    pub fn parse(s: &[u8], base: u64) -> Result<Self, FormatError> {
        if s.len() != SUFFIX_LEN {
            return Err(err(base, "DFU suffix must be 16 bytes"));
        }
        if s.get(8..11) != Some(SUFFIX_SIGNATURE.as_slice()) {
            return Err(err(
                base + 8,
                "no DFU suffix: signature bytes are not \"UFD\"",
            ));
        }
        if s.get(11) != Some(&(SUFFIX_LEN as u8)) {
            return Err(err(
                base + 11,
                format!(
                    "DFU suffix bLength is {}, only 16 is supported",
                    s.get(11).copied().unwrap_or(0)
                ),
            ));
        }
        let f = |at| peek_u16_le(s, at).unwrap_or(0);
        Ok(Suffix {
            bcd_device: f(0),
            id_product: f(2),
            id_vendor: f(4),
            bcd_dfu: f(6),
            crc: peek_u32_le(s, 12).unwrap_or(0),
        })
    }

    /// The first 12 bytes of the suffix (everything the CRC covers).
    pub fn head(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..2].copy_from_slice(&self.bcd_device.to_le_bytes());
        b[2..4].copy_from_slice(&self.id_product.to_le_bytes());
        b[4..6].copy_from_slice(&self.id_vendor.to_le_bytes());
        b[6..8].copy_from_slice(&self.bcd_dfu.to_le_bytes());
        b[8..11].copy_from_slice(&SUFFIX_SIGNATURE);
        b[11] = SUFFIX_LEN as u8;
        b
    }

    /// The full suffix with `crc` as dwCRC.
    pub fn encode(&self, crc: u32) -> [u8; SUFFIX_LEN] {
        let mut b = [0u8; SUFFIX_LEN];
        b[..12].copy_from_slice(&self.head());
        b[12..].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Parse the suffix at the end of `tail` (the last bytes of a file of `total` bytes), check the
/// CRC given the CRC state over the bytes before `tail`.
fn checked_suffix(
    tail: &[u8],
    total: u64,
    crc_before: &crc32fast::Hasher,
) -> Result<Suffix, FormatError> {
    let Some(s) = tail.len().checked_sub(SUFFIX_LEN) else {
        return Err(err(
            0,
            format!("file of {total} bytes is shorter than the 16-byte DFU suffix"),
        ));
    };
    let base = total - SUFFIX_LEN as u64;
    let suffix = Suffix::parse(tail.get(s..).unwrap_or_default(), base)?;
    let mut c = crc_before.clone();
    c.update(tail.get(..tail.len() - 4).unwrap_or_default());
    let computed = !c.finalize();
    if computed != suffix.crc {
        return Err(err(
            base + 12,
            format!(
                "DFU suffix CRC is 0x{:08x}, computed 0x{computed:08x}",
                suffix.crc
            ),
        ));
    }
    Ok(suffix)
}

// ---------------------------------------------------------------------------------------------
// DfuSe

/// One DfuSe element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// File offset of the element header (address ‖ size); the data follows it.
    pub offset: usize,
    /// dwElementAddress.
    pub address: u32,
    /// dwElementSize.
    pub size: u32,
    /// Whether this element is a fwseal signature element.
    pub signature: bool,
}

impl Element {
    fn data_range(&self) -> std::ops::Range<usize> {
        let s = self.offset + DFUSE_ELEMENT_LEN;
        s..s + self.size as usize
    }
    fn whole_range(&self) -> std::ops::Range<usize> {
        self.offset..self.data_range().end
    }
}

/// One DfuSe target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// File offset of the target prefix.
    pub offset: usize,
    /// bAlternateSetting.
    pub alt: u8,
    /// bTargetNamed (non-zero: named).
    pub named: u32,
    /// szTargetName up to its first NUL (lossy UTF-8).
    pub name: String,
    /// Elements in file order.
    pub elements: Vec<Element>,
}

/// A parsed DfuSe file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DfuSeFile {
    /// DFUImageSize as recorded.
    pub image_size: u32,
    /// Targets in file order.
    pub targets: Vec<Target>,
    /// The suffix.
    pub suffix: Suffix,
    /// Total file length.
    pub len: usize,
}

impl DfuSeFile {
    /// Parse and validate a complete DfuSe file (CRC, prefix, every target and element size).
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        let total = data.len() as u64;
        let suffix = checked_suffix(data, total, &crc32fast::Hasher::new())?;
        if !data.starts_with(&DFUSE_MAGIC) {
            return Err(err(0, "DfuSe prefix magic is not \"DfuSe\""));
        }
        if data.len() < DFUSE_PREFIX_LEN + SUFFIX_LEN {
            return Err(err(0, "file too short for a DfuSe prefix and suffix"));
        }
        if suffix.bcd_dfu != BCD_DFUSE {
            return Err(err(
                total - 10,
                format!(
                    "file has a DfuSe prefix but bcdDFU is 0x{:04x}, not 0x011a",
                    suffix.bcd_dfu
                ),
            ));
        }
        let version = data.get(5).copied().unwrap_or(0);
        if version != 1 {
            return Err(err(
                5,
                format!("DfuSe prefix version {version}, expected 1"),
            ));
        }
        let image_size = peek_u32_le(data, 6).unwrap_or(0);
        // UM0391 and dfuse-pack: the whole file, suffix included. Tolerate the variant that
        // leaves the suffix out; anything else lies.
        if u64::from(image_size) != total && u64::from(image_size) != total - SUFFIX_LEN as u64 {
            return Err(err(
                6,
                format!("DfuSe DFUImageSize is {image_size} but the file is {total} bytes"),
            ));
        }
        let n_targets = data.get(10).copied().unwrap_or(0);
        let end = data.len() - SUFFIX_LEN;
        let mut at = DFUSE_PREFIX_LEN;
        let mut targets = Vec::new();
        for t in 0..n_targets {
            let hdr = data
                .get(at..)
                .filter(|_| at + DFUSE_TARGET_LEN <= end)
                .ok_or_else(|| {
                    err(
                        at as u64,
                        format!(
                            "target {t} prefix (274 bytes) runs into the suffix; bTargets is {n_targets}"
                        ),
                    )
                })?;
            if !hdr.starts_with(b"Target") {
                return Err(err(
                    at as u64,
                    format!("target {t} signature is not \"Target\""),
                ));
            }
            // "Target" ‖ bAlternateSetting ‖ bTargetNamed ‖ szTargetName[255] ‖ dwTargetSize ‖
            // dwNbElements: the 274 bytes are there (checked above).
            let mut r = Reader::new(Format::Dfu, hdr, at as u64);
            let short = "truncated DfuSe target prefix";
            r.skip(6, short)?;
            let alt = r.u8(short)?;
            let named = r.u32_le(short)?;
            let raw_name = r.bytes(255, short)?;
            let name_end = raw_name
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(raw_name.len());
            let name =
                String::from_utf8_lossy(raw_name.get(..name_end).unwrap_or_default()).into_owned();
            let size = r.u32_le(short)? as usize;
            let count = r.u32_le(short)?;
            let body = at + DFUSE_TARGET_LEN;
            let body_end = body
                .checked_add(size)
                .filter(|&e| e <= end)
                .ok_or_else(|| {
                    err(
                        (at + 266) as u64,
                        format!("target {t} size {size} runs past the suffix at offset {end}"),
                    )
                })?;
            let mut elements = Vec::new();
            let mut e_at = body;
            for e in 0..count {
                if e_at + DFUSE_ELEMENT_LEN > body_end {
                    return Err(err(
                        e_at as u64,
                        format!(
                            "target {t} element {e} header runs past the target end at offset {body_end} (dwNbElements {count})"
                        ),
                    ));
                }
                let address = peek_u32_le(data, e_at).unwrap_or(0);
                let esize = peek_u32_le(data, e_at + 4).unwrap_or(0);
                let d_end = (e_at + DFUSE_ELEMENT_LEN)
                    .checked_add(esize as usize)
                    .filter(|&x| x <= body_end)
                    .ok_or_else(|| {
                        err(
                            (e_at + 4) as u64,
                            format!(
                                "target {t} element {e} size {esize} runs past the target end at offset {body_end}"
                            ),
                        )
                    })?;
                let d = data
                    .get(e_at + DFUSE_ELEMENT_LEN..d_end)
                    .unwrap_or_default();
                elements.push(Element {
                    offset: e_at,
                    address,
                    size: esize,
                    signature: is_block(d),
                });
                e_at = d_end;
            }
            if e_at != body_end {
                return Err(err(
                    e_at as u64,
                    format!(
                        "target {t}: {} bytes after its last element (target size {size})",
                        body_end - e_at
                    ),
                ));
            }
            targets.push(Target {
                offset: at,
                alt,
                named,
                name,
                elements,
            });
            at = body_end;
        }
        if at != end {
            return Err(err(
                at as u64,
                format!("{} bytes between the last target and the suffix", end - at),
            ));
        }
        let f = DfuSeFile {
            image_size,
            targets,
            suffix,
            len: data.len(),
        };
        // A signature element may only be the last element of the last target.
        let last = f.last_element_pos();
        for (ti, t) in f.targets.iter().enumerate() {
            for (ei, e) in t.elements.iter().enumerate() {
                if e.signature && Some((ti, ei)) != last {
                    return Err(err(
                        e.offset as u64,
                        "fwseal signature element is not the last element of the last target",
                    ));
                }
            }
        }
        Ok(f)
    }

    fn last_element_pos(&self) -> Option<(usize, usize)> {
        let ti = self.targets.len().checked_sub(1)?;
        let ei = self.targets.get(ti)?.elements.len().checked_sub(1)?;
        Some((ti, ei))
    }

    /// The fwseal signature element, if any.
    pub fn signature_element(&self) -> Option<&Element> {
        self.targets.last()?.elements.last().filter(|e| e.signature)
    }

    /// Feed the canonical element encoding to `f`:
    ///
    /// `u8 number of targets`, then for each target in file order `u8 bAlternateSetting ‖
    /// u32 LE number of elements`, then for each element in file order `u32 LE address ‖ u32 LE
    /// size ‖ data`. The fwseal signature element is left out (and not counted). Target names,
    /// the prefix and the suffix are not covered. Returns the encoding's length.
    pub fn canonical(&self, data: &[u8], f: &mut dyn FnMut(&[u8])) -> u64 {
        let mut n = 1u64;
        f(&[self.targets.len() as u8]);
        for t in &self.targets {
            let els: Vec<&Element> = t.elements.iter().filter(|e| !e.signature).collect();
            f(&[t.alt]);
            f(&(els.len() as u32).to_le_bytes());
            n += 5;
            for e in els {
                let r = e.whole_range();
                n += r.len() as u64;
                f(data.get(r).unwrap_or_default());
            }
        }
        n
    }
}

/// Whether an element's data is a fwseal signature block (header and footer magic at its ends).
fn is_block(d: &[u8]) -> bool {
    d.len() >= sigblock::HEADER_LEN + sigblock::FOOTER_LEN
        && d.starts_with(&sigblock::MAGIC)
        && d.ends_with(&sigblock::FOOTER_MAGIC)
}

// ---------------------------------------------------------------------------------------------
// Streaming preparation

enum State {
    /// Fewer than 5 bytes seen: DFU 1.1 or DfuSe not known yet.
    Undecided(Vec<u8>),
    /// DFU 1.1: constant memory.
    Plain {
        hasher: MultiHasher,
        crc: crc32fast::Hasher,
        flushed: u64,
        tail: Vec<u8>,
    },
    /// DfuSe: buffered up to [`DFUSE_MAX_LEN`].
    DfuSe(Vec<u8>),
}

/// Streaming preparation of a DFU file: constant memory for DFU 1.1 (at most
/// `2 × (16 + sigblock::MAX_BLOCK_LEN)` bytes plus one chunk held), buffered for DfuSe (up to
/// [`DFUSE_MAX_LEN`], beyond which it fails with [`FormatError::TooLarge`]).
pub struct DfuStream {
    req: Request,
    state: State,
}

impl DfuStream {
    /// New stream for `req`.
    pub fn new(req: Request) -> Self {
        DfuStream {
            req,
            state: State::Undecided(Vec::new()),
        }
    }
}

fn plain_state(req: &Request, head: Vec<u8>) -> State {
    State::Plain {
        hasher: MultiHasher::new(&req.digest_algs(PRIMARY)),
        crc: crc32fast::Hasher::new(),
        flushed: 0,
        tail: head,
    }
}

impl StreamPreparer for DfuStream {
    fn update(&mut self, chunk: &[u8]) -> Result<(), FormatError> {
        if let State::Undecided(buf) = &mut self.state {
            buf.extend_from_slice(chunk);
            if buf.len() < DFUSE_MAGIC.len() {
                return Ok(());
            }
            let buf = std::mem::take(buf);
            self.state = if buf.starts_with(&DFUSE_MAGIC) {
                State::DfuSe(Vec::new())
            } else {
                plain_state(&self.req, Vec::new())
            };
            return self.update(&buf);
        }
        match &mut self.state {
            State::Undecided(_) => Ok(()),
            State::DfuSe(buf) => {
                if (buf.len() as u64).saturating_add(chunk.len() as u64) > DFUSE_MAX_LEN {
                    return Err(FormatError::TooLarge {
                        limit: DFUSE_MAX_LEN,
                    });
                }
                buf.extend_from_slice(chunk);
                Ok(())
            }
            State::Plain {
                hasher,
                crc,
                flushed,
                tail,
            } => {
                *flushed += crate::raw::hold_back(tail, chunk, HOLD, |head| {
                    hasher.update(head);
                    crc.update(head);
                });
                Ok(())
            }
        }
    }

    fn finish(self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError> {
        let DfuStream { req, state } = *self;
        let state = match state {
            State::Undecided(buf) => plain_state(&req, buf),
            s => s,
        };
        match state {
            State::DfuSe(buf) => prepare_dfuse(req, buf),
            State::Plain {
                mut hasher,
                crc,
                flushed,
                tail,
            } => {
                let total = flushed + tail.len() as u64;
                let suffix = checked_suffix(&tail, total, &crc)?;
                if suffix.bcd_dfu == BCD_DFUSE {
                    return Err(err(
                        0,
                        "bcdDFU 0x011a marks a DfuSe file but the prefix magic is not \"DfuSe\"",
                    ));
                }
                let body = tail.get(..tail.len() - SUFFIX_LEN).unwrap_or_default();
                let keep = match sigblock::find_trailer(Format::Dfu, body)? {
                    Some(start) if flushed + start as u64 > 0 => {
                        let b = body.get(start..).unwrap_or_default();
                        sigblock::decode(Format::Dfu, b, flushed + start as u64)?;
                        start
                    }
                    _ => body.len(),
                };
                let kept = body.get(..keep).unwrap_or_default();
                hasher.update(kept);
                let mut payload_crc = crc;
                payload_crc.update(kept);
                Ok(plan(
                    req,
                    hasher.finish(),
                    Kind::Plain {
                        payload_len: flushed + keep as u64,
                        payload_crc,
                        suffix,
                    },
                ))
            }
            State::Undecided(_) => Err(FormatError::Misuse("unreachable DFU state".into())),
        }
    }
}

fn prepare_dfuse(req: Request, data: Vec<u8>) -> Result<Box<dyn Prepared>, FormatError> {
    let file = DfuSeFile::parse(&data)?;
    let mut h = MultiHasher::new(&req.digest_algs(PRIMARY));
    let canon_len = file.canonical(&data, &mut |b| h.update(b));
    let sig_address = if req.mode == Mode::Embedded {
        Some(signature_address(&file, &req)?)
    } else {
        None
    };
    Ok(plan(
        req,
        h.finish(),
        Kind::DfuSe {
            data,
            file,
            canon_len,
            sig_address,
        },
    ))
}

/// Where the signature element goes: the configured address, or the next 16-byte-aligned address
/// after the highest element of the last target.
fn signature_address(file: &DfuSeFile, req: &Request) -> Result<u32, FormatError> {
    let last = file.targets.last().ok_or_else(|| {
        FormatError::Unsupported("DfuSe file has no target to carry the signature element".into())
    })?;
    let ends = || {
        last.elements.iter().filter(|e| !e.signature).map(|e| {
            (
                u64::from(e.address),
                u64::from(e.address) + u64::from(e.size),
            )
        })
    };
    let addr = match req.options.dfuse_signature_address {
        Some(a) => {
            let a64 = u64::from(a);
            if let Some((s, _)) = ends().find(|&(s, e)| s <= a64 && a64 < e) {
                return Err(FormatError::Misuse(format!(
                    "DfuSe signature address 0x{a:08x} overlaps the element at 0x{s:08x}"
                )));
            }
            a64
        }
        None => {
            let hi = ends().map(|(_, e)| e).max().ok_or_else(|| {
                FormatError::Unsupported(
                    "the last DfuSe target has no element; set dfuse_signature_address".into(),
                )
            })?;
            hi.div_ceil(16) * 16
        }
    };
    u32::try_from(addr).map_err(|_| {
        FormatError::Unsupported(
            "no 32-bit address left after the last DfuSe element; set dfuse_signature_address"
                .into(),
        )
    })
}

enum Kind {
    Plain {
        payload_len: u64,
        payload_crc: crc32fast::Hasher,
        suffix: Suffix,
    },
    DfuSe {
        data: Vec<u8>,
        file: DfuSeFile,
        canon_len: u64,
        sig_address: Option<u32>,
    },
}

impl Kind {
    /// What the digests cover.
    fn range(&self) -> (u64, u64) {
        match self {
            Kind::Plain { payload_len, .. } => (0, *payload_len),
            Kind::DfuSe { canon_len, .. } => (0, *canon_len),
        }
    }
}

impl Layout for Kind {
    fn embed(&self, block: Vec<u8>) -> Result<Vec<Part>, FormatError> {
        match self {
            Kind::Plain {
                payload_len,
                payload_crc,
                suffix,
            } => {
                let mut c = payload_crc.clone();
                c.update(&block);
                c.update(&suffix.head());
                let mut tail = block;
                tail.extend_from_slice(&suffix.encode(!c.finalize()));
                Ok(vec![
                    Part::Input {
                        start: 0,
                        len: *payload_len,
                    },
                    Part::Bytes(tail),
                ])
            }
            Kind::DfuSe {
                data,
                file,
                sig_address,
                ..
            } => embed_dfuse(data, file, *sig_address, block),
        }
    }
}

/// A DFU / DfuSe signing plan.
fn plan(req: Request, digests: Digests, kind: Kind) -> Box<dyn Prepared> {
    Box::new(BlockPlan {
        format: Format::Dfu,
        req,
        digests,
        primary: PRIMARY,
        range: kind.range(),
        fill: None,
        layout: kind,
    })
}

fn embed_dfuse(
    data: &[u8],
    file: &DfuSeFile,
    sig_address: Option<u32>,
    block: Vec<u8>,
) -> Result<Vec<Part>, FormatError> {
    let addr = sig_address
        .ok_or_else(|| FormatError::Misuse("plan was prepared for detached mode".into()))?;
    let too_big = || FormatError::Unsupported("signed DfuSe file exceeds 4 GiB".into());
    let u32_of = |n: usize| u32::try_from(n).map_err(|_| too_big());
    let n_targets = file.targets.len();
    let (a0, a1) = (u64::from(addr), u64::from(addr) + block.len() as u64);
    if let Some(e) = file.targets.last().and_then(|t| {
        t.elements.iter().find(|e| {
            let (s, end) = (
                u64::from(e.address),
                u64::from(e.address) + u64::from(e.size),
            );
            !e.signature && a0 < end && s < a1
        })
    }) {
        return Err(FormatError::Misuse(format!(
            "signature element 0x{a0:08x}..0x{a1:08x} overlaps the element at 0x{:08x}",
            e.address
        )));
    }
    let mut parts = Vec::new();
    let mut total = DFUSE_PREFIX_LEN + SUFFIX_LEN;
    for (ti, t) in file.targets.iter().enumerate() {
        let kept: Vec<&Element> = t.elements.iter().filter(|e| !e.signature).collect();
        let is_last = ti + 1 == n_targets;
        let mut size: usize = kept.iter().map(|e| e.whole_range().len()).sum();
        let mut count = kept.len();
        if is_last {
            size += DFUSE_ELEMENT_LEN + block.len();
            count += 1;
        }
        let mut hdr = data
            .get(t.offset..t.offset + DFUSE_TARGET_LEN)
            .ok_or_else(|| FormatError::Misuse("target outside the input".into()))?
            .to_vec();
        hdr[266..270].copy_from_slice(&u32_of(size)?.to_le_bytes());
        hdr[270..274].copy_from_slice(&u32_of(count)?.to_le_bytes());
        total += DFUSE_TARGET_LEN + size;
        parts.push(Part::Bytes(hdr));
        for e in kept {
            let r = e.whole_range();
            parts.push(Part::Input {
                start: r.start as u64,
                len: r.len() as u64,
            });
        }
        if is_last {
            let mut el = addr.to_le_bytes().to_vec();
            el.extend_from_slice(&u32_of(block.len())?.to_le_bytes());
            el.extend_from_slice(&block);
            parts.push(Part::Bytes(el));
        }
    }
    // Keep the input's DFUImageSize convention (whole file, or without the suffix).
    let image_size = if file.image_size as usize == file.len {
        total
    } else {
        total - SUFFIX_LEN
    };
    let mut prefix = DFUSE_MAGIC.to_vec();
    prefix.push(1);
    prefix.extend_from_slice(&u32_of(image_size)?.to_le_bytes());
    prefix.push(n_targets as u8);
    parts.insert(0, Part::Bytes(prefix));
    let mut c = crc32fast::Hasher::new();
    for p in &parts {
        match p {
            Part::Bytes(b) => c.update(b),
            Part::Input { start, len } => c.update(
                data.get(*start as usize..(*start + *len) as usize)
                    .unwrap_or_default(),
            ),
        }
    }
    c.update(&file.suffix.head());
    parts.push(Part::Bytes(file.suffix.encode(!c.finalize()).to_vec()));
    Ok(parts)
}

// ---------------------------------------------------------------------------------------------
// Extract / describe

/// Parsed view of a DFU 1.1 file held in memory.
struct Plain<'a> {
    suffix: Suffix,
    /// Payload including a signature block, if any.
    body: &'a [u8],
    /// Start of the signature block within `body`.
    block: Option<usize>,
}

fn parse_plain(data: &[u8]) -> Result<Plain<'_>, FormatError> {
    let suffix = checked_suffix(data, data.len() as u64, &crc32fast::Hasher::new())?;
    if suffix.bcd_dfu == BCD_DFUSE {
        return Err(err(
            0,
            "bcdDFU 0x011a marks a DfuSe file but the prefix magic is not \"DfuSe\"",
        ));
    }
    let body = data.get(..data.len() - SUFFIX_LEN).unwrap_or_default();
    let block = sigblock::find_trailer(Format::Dfu, body)?.filter(|&s| s > 0);
    Ok(Plain {
        suffix,
        body,
        block,
    })
}

/// Extract the fwseal signature block of a signed DFU / DfuSe file and check its digests against
/// the file (payload for DFU 1.1, canonical element encoding for DfuSe).
pub fn extract(data: &[u8]) -> Result<Extracted, FormatError> {
    if data.starts_with(&DFUSE_MAGIC) {
        let file = DfuSeFile::parse(data)?;
        let e = file
            .signature_element()
            .ok_or(FormatError::NotSigned(Format::Dfu))?;
        let r = e.data_range();
        let base = r.start as u64;
        let d = sigblock::decode(Format::Dfu, data.get(r).unwrap_or_default(), base)?;
        let canon_len = file.canonical(data, &mut |_| {});
        sigblock::check_digests(Format::Dfu, &d, base, (0, canon_len), |a| {
            let mut h = Hasher::new(a);
            file.canonical(data, &mut |b| h.update(b));
            h.finish()
        })?;
        return d.extracted();
    }
    let p = parse_plain(data)?;
    let start = p.block.ok_or(FormatError::NotSigned(Format::Dfu))?;
    let d = sigblock::decode(
        Format::Dfu,
        p.body.get(start..).unwrap_or_default(),
        start as u64,
    )?;
    let payload = p.body.get(..start).unwrap_or_default();
    sigblock::check_digests(Format::Dfu, &d, start as u64, (0, start as u64), |a| {
        a.hash(payload)
    })?;
    d.extracted()
}

fn suffix_line(s: &Suffix) -> String {
    format!(
        "suffix: idVendor 0x{:04x}, idProduct 0x{:04x}, bcdDevice 0x{:04x}, bcdDFU 0x{:04x}, CRC 0x{:08x} (valid)",
        s.id_vendor, s.id_product, s.bcd_device, s.bcd_dfu, s.crc
    )
}

/// Describe the structure of a DFU / DfuSe file (validates it fully, CRC included).
pub fn describe(data: &[u8]) -> Result<String, FormatError> {
    use std::fmt::Write as _;
    let mut out = String::new();
    if data.starts_with(&DFUSE_MAGIC) {
        let file = DfuSeFile::parse(data)?;
        let _ = writeln!(
            out,
            "DfuSe file, {} bytes, DFUImageSize {}, {} target(s)",
            data.len(),
            file.image_size,
            file.targets.len()
        );
        for (i, t) in file.targets.iter().enumerate() {
            let _ = writeln!(
                out,
                "  target {i}: alt setting {}, name {:?}, {} element(s)",
                t.alt,
                if t.named != 0 { t.name.as_str() } else { "" },
                t.elements.len()
            );
            for (j, e) in t.elements.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    element {j}: address 0x{:08x}, size {}{}",
                    e.address,
                    e.size,
                    if e.signature {
                        " (fwseal signature block)"
                    } else {
                        ""
                    }
                );
            }
        }
        let _ = write!(out, "{}", suffix_line(&file.suffix));
    } else {
        let p = parse_plain(data)?;
        let payload = p.block.unwrap_or(p.body.len());
        let _ = writeln!(
            out,
            "DFU 1.1 file, {} bytes: payload {payload} bytes",
            data.len()
        );
        if let Some(s) = p.block {
            let _ = writeln!(
                out,
                "fwseal signature block: {} bytes at offset {s}",
                p.body.len() - s
            );
        }
        let _ = write!(out, "{}", suffix_line(&p.suffix));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_dfu_util_convention() {
        // dfuse-pack: crc = 0xffffffff & -zlib.crc32(data) - 1 == !crc32(data).
        assert_eq!(suffix_crc(b""), 0xffff_ffff);
        assert_eq!(suffix_crc(b"123456789"), !0xcbf4_3926);
    }

    #[test]
    fn looks_like_is_strict() {
        assert!(!looks_like(&[0u8; 100]));
        let mut d = vec![0u8; 20];
        d.extend_from_slice(
            &Suffix {
                bcd_device: 0,
                id_product: 1,
                id_vendor: 2,
                bcd_dfu: 0x100,
                crc: 0,
            }
            .encode(0),
        );
        assert!(looks_like(&d));
        let n = d.len();
        d[n - 5] = 15;
        assert!(!looks_like(&d));
    }
}
