//! The fwseal signature block (`formats/signature-block.md`) at the end of a raw image, an
//! Intel HEX memory image, a DFU 1.1 payload or a DfuSe canonical element encoding.
//!
//! Reads: the footer `[N-16, N)`, the block `[S, N-16)` (parsed as it streams: the protected
//! area is kept — a valid one is at most [`PROT_MAX`] bytes — and each SIGNATURE is verified as
//! soon as its bytes are in), then the covered bytes `[0, IMAGE_RANGE length)`, hashed with
//! every DIGEST algorithm present.

use crate::error::{Error, Reason};
use crate::hash::Hashers;
use crate::keys;
use crate::verifier::Ctx;
use crate::{
    check, Alg, DigestAlg, Format, ImageVersion, Product, Read, Verified, MAX_BLOCK_LEN,
    MAX_SIGNATURE_LEN,
};

const MAGIC: &[u8; 4] = b"FWSB";
const FOOTER_MAGIC: &[u8; 8] = b"fwsealSB";

const TLV_FORMAT: u16 = 0x0001;
const TLV_DIGEST: u16 = 0x0002;
const TLV_PRODUCT: u16 = 0x0003;
const TLV_IMAGE_VERSION: u16 = 0x0004;
const TLV_SECURITY_COUNTER: u16 = 0x0005;
const TLV_IMAGE_RANGE: u16 = 0x0006;
const TLV_FILL: u16 = 0x0007;
const TLV_SIGNATURE: u16 = 0x0101;

/// The largest valid protected area: every protected type once (DIGEST once per algorithm) at
/// its longest — FORMAT 9 + DIGEST 41 + 57 + 73 + PRODUCT 263 + IMAGE_VERSION 16 +
/// SECURITY_COUNTER 12 + IMAGE_RANGE 24 + FILL 9 = 504 bytes. Anything longer holds a duplicate
/// or unknown TLV, which the streaming parser rejects when that TLV's header arrives.
pub(crate) const PROT_MAX: usize = 504;
/// The buffer holds more than [`PROT_MAX`]: a DIGEST's algorithm (and so a duplicate one) is
/// known only once its value is in, so three 65-byte DIGESTs are stored before the third is
/// refused (+48), and the header of the TLV that makes an area too long (+8) is stored before it
/// is refused.
const PROT_CAP: usize = PROT_MAX + 48 + 8;
/// `"fwseal/sigblock/v1/ihex\0"`, the longest domain prefix.
const PREFIX_MAX: usize = 24;
/// Intel HEX: largest memory image span (formats/hex.md §2).
const HEX_MAX_SPAN: u64 = 256 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Footer,
    Block,
    Body,
    Done,
}

/// Where the unprotected-area parser is.
#[derive(Clone, Copy)]
enum Unprot {
    /// Collecting a TLV header (8 bytes) that starts at `at`.
    Header { acc: [u8; 8], n: u8, at: u64 },
    /// Collecting the 36 fixed bytes of a SIGNATURE of `len` value bytes.
    Fixed {
        acc: [u8; 36],
        n: u8,
        len: u32,
        at: u64,
    },
    /// Collecting signature bytes into the signature buffer.
    Sig {
        alg: Alg,
        key_id: [u8; 32],
        left: u32,
        at: u64,
    },
    /// Skipping the rest of a signature that cannot be checked (already recorded).
    Skip { left: u32 },
}

/// Signature-block verification state.
pub(crate) struct Block {
    format: Format,
    phase: Phase,
    /// Footer, then block header.
    acc: [u8; 16],
    acc_n: u8,
    l: u32,
    s: u64,
    p: u32,
    u: u32,
    /// Domain prefix ‖ protected area: the signed message `M`.
    msg: [u8; PREFIX_MAX + PROT_CAP],
    prefix: u8,
    /// Protected bytes stored.
    prot_n: u16,
    /// Start of the next protected TLV (relative to the area).
    ppos: u16,
    /// The protected TLV whose value is awaited: (type, header position, value length).
    pval: Option<(u16, u16, u16)>,
    format_seen: bool,
    /// Position in `msg` of each DIGEST's bytes, by algorithm, and its TLV's image offset.
    digests: [Option<(u16, u64)>; 3],
    /// DIGEST algorithms in TLV order.
    digest_order: [Option<DigestAlg>; 3],
    ndigest: u8,
    product: Option<(u16, u8)>,
    version: Option<ImageVersion>,
    counter: Option<(u32, u64)>,
    range: Option<(u64, u64, u64)>,
    fill_seen: bool,
    fill: Option<u8>,
    unprot: Unprot,
    nsig: u16,
    hashers: Hashers,
}

impl Block {
    pub(crate) fn new(format: Format) -> Self {
        Block {
            format,
            phase: Phase::Footer,
            acc: [0; 16],
            acc_n: 0,
            l: 0,
            s: 0,
            p: 0,
            u: 0,
            msg: [0; PREFIX_MAX + PROT_CAP],
            prefix: 0,
            prot_n: 0,
            ppos: 0,
            pval: None,
            format_seen: false,
            digests: [None; 3],
            digest_order: [None; 3],
            ndigest: 0,
            product: None,
            version: None,
            counter: None,
            range: None,
            fill_seen: false,
            fill: None,
            unprot: Unprot::Header {
                acc: [0; 8],
                n: 0,
                at: 0,
            },
            nsig: 0,
            hashers: Hashers::default(),
        }
    }

    /// FORMAT id and domain name of the image format.
    fn format_id(&self) -> (u8, &'static [u8]) {
        match self.format {
            Format::Raw => (1, b"raw"),
            Format::Hex => (3, b"ihex"),
            _ => (4, b"dfu"),
        }
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        if ctx.n < 16 {
            return Err(Error::at(
                Reason::NoSignatureBlock,
                0,
                "image shorter than a signature block footer",
            ));
        }
        Ok(Some(Read {
            offset: ctx.n - 16,
            len: 16,
        }))
    }

    pub(crate) fn feed(&mut self, ctx: &mut Ctx<'_>, off: u64, data: &[u8]) -> Result<(), Error> {
        match self.phase {
            Phase::Footer => {
                let n = usize::from(self.acc_n);
                self.acc[n..n + data.len()].copy_from_slice(data);
                self.acc_n += data.len() as u8;
                Ok(())
            }
            Phase::Block => self.feed_block(ctx, off, data),
            Phase::Body => {
                self.hashers.update(data);
                Ok(())
            }
            Phase::Done => Err(Error::misuse("bytes fed after the last read")),
        }
    }

    pub(crate) fn end_read(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        match self.phase {
            Phase::Footer => self.footer(ctx),
            Phase::Block => {
                // The unprotected parser rejects an area that ends inside a TLV; here the
                // area is complete.
                if self.nsig == 0 {
                    return Err(Error::at(
                        Reason::Malformed,
                        self.s + 16 + u64::from(self.p),
                        "signature block carries no SIGNATURE",
                    ));
                }
                let (_, len, _) = self.range.unwrap_or((0, 0, 0));
                self.phase = Phase::Body;
                Ok(Some(Read { offset: 0, len }))
            }
            Phase::Body | Phase::Done => {
                self.phase = Phase::Done;
                Ok(None)
            }
        }
    }

    fn footer(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        let n = ctx.n;
        let f = self.acc;
        if &f[8..16] != FOOTER_MAGIC {
            return Err(Error::at(
                Reason::NoSignatureBlock,
                n - 8,
                "no signature block footer (\"fwsealSB\") at the end of the image",
            ));
        }
        let l = u32_at(&f, 0);
        if l < 32 {
            return Err(Error::at(
                Reason::BadLength,
                n - 16,
                "footer block_len is smaller than a header and a footer (32)",
            ));
        }
        if l > MAX_BLOCK_LEN {
            return Err(Error::at(
                Reason::BadLength,
                n - 16,
                "footer block_len exceeds the 1 MiB limit",
            ));
        }
        if u64::from(l) > n {
            return Err(Error::at(
                Reason::Truncated,
                n - 16,
                "footer block_len is larger than the image",
            ));
        }
        if u32_at(&f, 4) != 0 {
            return Err(Error::at(
                Reason::Malformed,
                n - 12,
                "footer reserved field is not zero",
            ));
        }
        self.l = l;
        self.s = n - u64::from(l);
        if self.s == 0 {
            return Err(match self.format {
                // formats/dfu.md §2: a block that would start at offset 0 is not one.
                Format::Dfu => Error::at(
                    Reason::NoSignatureBlock,
                    0,
                    "a block starting at offset 0 is not a DFU signature block",
                ),
                _ => Error::at(
                    Reason::Malformed,
                    0,
                    "empty image: nothing precedes the signature block",
                ),
            });
        }
        self.acc_n = 0;
        self.phase = Phase::Block;
        Ok(Some(Read {
            offset: self.s,
            len: u64::from(l) - 16,
        }))
    }

    fn feed_block(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut off: u64,
        mut data: &[u8],
    ) -> Result<(), Error> {
        while !data.is_empty() {
            let rel = off - self.s;
            let take = if rel < 16 {
                let n = (16 - rel as usize).min(data.len());
                let a = usize::from(self.acc_n);
                self.acc[a..a + n].copy_from_slice(&data[..n]);
                self.acc_n += n as u8;
                if self.acc_n == 16 {
                    self.header()?;
                }
                n
            } else if rel < 16 + u64::from(self.p) {
                let n = ((16 + u64::from(self.p) - rel) as usize).min(data.len());
                self.prot_feed(&data[..n])?;
                n
            } else {
                self.unprot_feed(ctx, off, data)?;
                data.len()
            };
            off += take as u64;
            data = &data[take..];
        }
        Ok(())
    }

    fn header(&mut self) -> Result<(), Error> {
        let (h, s) = (self.acc, self.s);
        if &h[..4] != MAGIC {
            return Err(Error::at(
                Reason::BadMagic,
                s,
                "the footer is present but the block does not start with \"FWSB\"",
            ));
        }
        if u16_at(&h, 4) != 1 {
            return Err(Error::at(
                Reason::Malformed,
                s + 4,
                "signature block version is not 1",
            ));
        }
        if u16_at(&h, 6) != 16 {
            return Err(Error::at(
                Reason::Malformed,
                s + 6,
                "signature block header_len is not 16",
            ));
        }
        let (p, u) = (u32_at(&h, 8), u32_at(&h, 12));
        if 32 + u64::from(p) + u64::from(u) != u64::from(self.l) {
            return Err(Error::at(
                Reason::BadLength,
                s + 8,
                "16 + protected_len + unprotected_len + 16 is not the footer's block_len",
            ));
        }
        self.p = p;
        self.u = u;
        let (_, name) = self.format_id();
        let prefix = b"fwseal/sigblock/v1/";
        self.msg[..prefix.len()].copy_from_slice(prefix);
        self.msg[prefix.len()..prefix.len() + name.len()].copy_from_slice(name);
        self.msg[prefix.len() + name.len()] = 0;
        self.prefix = (prefix.len() + name.len() + 1) as u8;
        let unprot_at = s + 16 + u64::from(p);
        self.unprot = Unprot::Header {
            acc: [0; 8],
            n: 0,
            at: unprot_at,
        };
        if p == 0 {
            self.prot_done()?;
        } else {
            self.check_cut(0, u64::from(p), s + 16)?;
        }
        self.check_cut(unprot_at, unprot_at + u64::from(u), unprot_at)?;
        Ok(())
    }

    /// A TLV header starting at `pos` in an area ending at `end` must fit (8 bytes).
    fn check_cut(&self, pos: u64, end: u64, abs: u64) -> Result<(), Error> {
        if pos < end && end - pos < 8 {
            return Err(Error::at(
                Reason::BadLength,
                abs,
                "a TLV header is cut by the end of its area",
            ));
        }
        Ok(())
    }

    fn prot_abs(&self, pos: u16) -> u64 {
        self.s + 16 + u64::from(pos)
    }

    fn prot_feed(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let need_to = match self.pval {
                None => usize::from(self.ppos) + 8,
                Some((_, at, len)) => usize::from(at) + 8 + usize::from(len),
            };
            let have = usize::from(self.prot_n);
            let n = (need_to - have).min(data.len());
            let base = usize::from(self.prefix) + have;
            self.msg[base..base + n].copy_from_slice(&data[..n]);
            self.prot_n += n as u16;
            data = &data[n..];
            if usize::from(self.prot_n) == need_to {
                match self.pval {
                    None => self.prot_header()?,
                    Some(_) => self.prot_value()?,
                }
            }
        }
        Ok(())
    }

    fn prot(&self, pos: usize, len: usize) -> &[u8] {
        let b = usize::from(self.prefix) + pos;
        &self.msg[b..b + len]
    }

    fn prot_header(&mut self) -> Result<(), Error> {
        let at = self.ppos;
        let abs = self.prot_abs(at);
        let h = self.prot(usize::from(at), 8);
        let (t, reserved, len) = (u16_at(h, 0), u16_at(h, 2), u32_at(h, 4));
        if reserved != 0 {
            return Err(Error::at(
                Reason::Malformed,
                abs + 2,
                "TLV reserved field is not zero",
            ));
        }
        if 8 + u64::from(len) > u64::from(self.p) - u64::from(at) {
            return Err(Error::at(
                Reason::BadLength,
                abs + 4,
                "TLV length runs past the end of the protected area",
            ));
        }
        let seen = match t {
            TLV_FORMAT => self.format_seen,
            TLV_DIGEST => self.ndigest == 3,
            TLV_PRODUCT => self.product.is_some(),
            TLV_IMAGE_VERSION => self.version.is_some(),
            TLV_SECURITY_COUNTER => self.counter.is_some(),
            TLV_IMAGE_RANGE => self.range.is_some(),
            TLV_FILL => {
                if self.format != Format::Hex {
                    return Err(Error::at(
                        Reason::Malformed,
                        abs,
                        "FILL TLV in a block of a format other than Intel HEX",
                    ));
                }
                self.fill_seen
            }
            _ => {
                return Err(Error::at(
                    Reason::UnknownTlv,
                    abs,
                    "unknown TLV type in the protected area",
                ))
            }
        };
        if seen {
            return Err(Error::at(
                Reason::DuplicateTlv,
                abs,
                "protected TLV appears twice",
            ));
        }
        let ok = match t {
            TLV_FORMAT | TLV_FILL => len == 1,
            TLV_DIGEST => matches!(len, 33 | 49 | 65),
            TLV_PRODUCT => (1..=255).contains(&len),
            TLV_IMAGE_VERSION => len == 8,
            TLV_SECURITY_COUNTER => len == 4,
            _ => len == 16,
        };
        if !ok {
            return Err(Error::at(
                Reason::Malformed,
                abs + 4,
                "TLV value has the wrong length for its type",
            ));
        }
        match t {
            TLV_FORMAT => self.format_seen = true,
            TLV_FILL => self.fill_seen = true,
            _ => {}
        }
        self.pval = Some((t, at, len as u16));
        Ok(())
    }

    fn prot_value(&mut self) -> Result<(), Error> {
        let Some((t, at, len)) = self.pval.take() else {
            return Ok(());
        };
        let abs = self.prot_abs(at);
        let vpos = usize::from(at) + 8;
        let mut vb = [0u8; 255];
        vb[..usize::from(len)].copy_from_slice(self.prot(vpos, usize::from(len)));
        let v = &vb[..usize::from(len)];
        match t {
            TLV_FORMAT => {
                let id = v[0];
                if !(1..=5).contains(&id) {
                    return Err(Error::at(Reason::Malformed, abs + 8, "unknown format id"));
                }
                if id != self.format_id().0 {
                    return Err(Error::at(
                        Reason::FormatMismatch,
                        abs + 8,
                        "FORMAT names another format than the one being verified",
                    ));
                }
            }
            TLV_DIGEST => {
                let alg = DigestAlg::from_id(v[0]).ok_or(Error::at(
                    Reason::Malformed,
                    abs + 8,
                    "unknown digest algorithm id",
                ))?;
                if usize::from(len) != 1 + alg.output_len() {
                    return Err(Error::at(
                        Reason::Malformed,
                        abs + 4,
                        "DIGEST length does not match its algorithm",
                    ));
                }
                if self.digests[alg.index()].is_some() {
                    return Err(Error::at(
                        Reason::DuplicateTlv,
                        abs,
                        "two DIGEST TLVs with the same algorithm",
                    ));
                }
                self.digests[alg.index()] =
                    Some(((usize::from(self.prefix) + vpos + 1) as u16, abs));
                self.digest_order[usize::from(self.ndigest)] = Some(alg);
                self.ndigest += 1;
            }
            TLV_PRODUCT => {
                if core::str::from_utf8(v).is_err() {
                    return Err(Error::at(
                        Reason::Malformed,
                        abs + 8,
                        "PRODUCT is not UTF-8",
                    ));
                }
                self.product = Some((vpos as u16, len as u8));
            }
            TLV_IMAGE_VERSION => {
                self.version = Some(ImageVersion {
                    major: v[0],
                    minor: v[1],
                    revision: u16_at(v, 2),
                    build: u32_at(v, 4),
                });
            }
            TLV_SECURITY_COUNTER => self.counter = Some((u32_at(v, 0), abs + 8)),
            TLV_IMAGE_RANGE => self.range = Some((u64_at(v, 0), u64_at(v, 8), abs + 8)),
            _ => self.fill = Some(v[0]),
        }
        self.ppos = at + 8 + len;
        if u32::from(self.ppos) == self.p {
            self.prot_done()?;
        } else {
            self.check_cut(
                u64::from(self.ppos),
                u64::from(self.p),
                self.prot_abs(self.ppos),
            )?;
        }
        Ok(())
    }

    /// The protected area is complete: required TLVs, IMAGE_RANGE against the layout.
    fn prot_done(&mut self) -> Result<(), Error> {
        let at = self.s + 16;
        let missing = |what| Err(Error::at(Reason::Malformed, at, what));
        if !self.format_seen {
            return missing("signature block has no FORMAT TLV");
        }
        if self.ndigest == 0 {
            return missing("signature block has no DIGEST TLV");
        }
        if self.product.is_none() {
            return missing("signature block has no PRODUCT TLV");
        }
        let Some((start, len, rat)) = self.range else {
            return missing("signature block has no IMAGE_RANGE TLV");
        };
        match self.format {
            Format::Hex => {
                if len == 0 || len > HEX_MAX_SPAN {
                    return Err(Error::at(
                        Reason::Malformed,
                        rat + 8,
                        "IMAGE_RANGE length is 0 or beyond the 256 MiB Intel HEX span",
                    ));
                }
                if len > self.s {
                    return Err(Error::at(
                        Reason::BadLength,
                        rat + 8,
                        "IMAGE_RANGE length runs into the signature block",
                    ));
                }
                if start
                    .checked_add(self.s + u64::from(self.l))
                    .is_none_or(|top| top > 1 << 32)
                {
                    return Err(Error::at(
                        Reason::Malformed,
                        rat,
                        "the Intel HEX image and its block do not fit below 4 GiB",
                    ));
                }
            }
            _ => {
                if start != 0 || len != self.s {
                    return Err(Error::at(
                        Reason::BadLength,
                        rat,
                        "IMAGE_RANGE is not (0, offset of the signature block)",
                    ));
                }
            }
        }
        for alg in self.digest_order.into_iter().flatten() {
            self.hashers.enable(alg);
        }
        Ok(())
    }

    fn unprot_feed(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut off: u64,
        mut data: &[u8],
    ) -> Result<(), Error> {
        let end = self.s + u64::from(self.l) - 16;
        while !data.is_empty() {
            let take;
            match &mut self.unprot {
                Unprot::Header { acc, n, at } => {
                    let k = (8 - usize::from(*n)).min(data.len());
                    acc[usize::from(*n)..usize::from(*n) + k].copy_from_slice(&data[..k]);
                    *n += k as u8;
                    take = k;
                    if *n == 8 {
                        let (h, at) = (*acc, *at);
                        let (t, reserved, len) = (u16_at(&h, 0), u16_at(&h, 2), u32_at(&h, 4));
                        if reserved != 0 {
                            return Err(Error::at(
                                Reason::Malformed,
                                at + 2,
                                "TLV reserved field is not zero",
                            ));
                        }
                        if 8 + u64::from(len) > end - at {
                            return Err(Error::at(
                                Reason::BadLength,
                                at + 4,
                                "TLV length runs past the end of the unprotected area",
                            ));
                        }
                        if t != TLV_SIGNATURE {
                            return Err(Error::at(
                                Reason::UnknownTlv,
                                at,
                                "unknown TLV type in the unprotected area",
                            ));
                        }
                        if len < 37 {
                            return Err(Error::at(
                                Reason::Malformed,
                                at + 4,
                                "SIGNATURE TLV shorter than 37 bytes",
                            ));
                        }
                        self.unprot = Unprot::Fixed {
                            acc: [0; 36],
                            n: 0,
                            len,
                            at,
                        };
                    }
                }
                Unprot::Fixed { acc, n, len, at } => {
                    let k = (36 - usize::from(*n)).min(data.len());
                    acc[usize::from(*n)..usize::from(*n) + k].copy_from_slice(&data[..k]);
                    *n += k as u8;
                    take = k;
                    if *n == 36 {
                        let (f, len, at) = (*acc, *len, *at);
                        self.signature_start(ctx, &f, len, at)?;
                    }
                }
                Unprot::Sig { left, .. } => {
                    let k = (*left as usize).min(data.len());
                    *left -= k as u32;
                    ctx.sig.push(&data[..k]);
                    take = k;
                    if *left == 0 {
                        self.signature_done(ctx);
                    }
                }
                Unprot::Skip { left } => {
                    let k = (*left as usize).min(data.len());
                    *left -= k as u32;
                    take = k;
                    if *left == 0 {
                        self.next_header(off + k as u64)?;
                    }
                }
            }
            off += take as u64;
            data = &data[take..];
        }
        Ok(())
    }

    /// The next unprotected TLV starts at `at`.
    fn next_header(&mut self, at: u64) -> Result<(), Error> {
        let end = self.s + u64::from(self.l) - 16;
        self.check_cut(at, end, at)?;
        self.unprot = Unprot::Header {
            acc: [0; 8],
            n: 0,
            at,
        };
        Ok(())
    }

    /// The fixed fields of a SIGNATURE (value of `len` bytes, TLV header at `at`) are in.
    fn signature_start(
        &mut self,
        ctx: &mut Ctx<'_>,
        f: &[u8; 36],
        len: u32,
        at: u64,
    ) -> Result<(), Error> {
        let (id, reserved) = (u16_at(f, 0), u16_at(f, 2));
        let mut key_id = [0u8; 32];
        key_id.copy_from_slice(&f[4..36]);
        let sig_len = len - 36;
        let sig_at = at + 44;
        self.nsig = self.nsig.saturating_add(1);
        if reserved != 0 {
            return Err(Error::at(
                Reason::Malformed,
                at + 10,
                "SIGNATURE reserved field is not zero",
            ));
        }
        let skip = Unprot::Skip { left: sig_len };
        let Some(alg) = Alg::from_id(id) else {
            ctx.out.sig_fail(Error::at(
                Reason::UnsupportedAlgorithm,
                at + 8,
                "signature algorithm not implemented by this verifier (RSA or unknown id)",
            ));
            self.unprot = skip;
            return Ok(());
        };
        if let Some(n) = alg.signature_len() {
            if n != sig_len as usize {
                return Err(Error::at(
                    Reason::Malformed,
                    at + 4,
                    "post-quantum SIGNATURE of the wrong length for its algorithm",
                ));
            }
        }
        self.unprot = skip;
        if !alg.supported() {
            ctx.out.sig_fail(Error::at(
                Reason::UnsupportedAlgorithm,
                at + 8,
                "signature algorithm not compiled in (feature slh-dsa)",
            ));
        } else if self.digests[alg.digest().index()].is_none() {
            ctx.out.missing(Error::at(
                Reason::DigestMissing,
                at + 8,
                "the DIGEST matched to this signature's algorithm is not in the block",
            ));
        } else if keys::find_by_id(ctx.keys, alg, &key_id).is_none() {
            ctx.out.sig_fail(Error::at(
                Reason::UntrustedKey,
                at + 12,
                "signature key id matches no trusted key of its algorithm",
            ));
        } else if sig_len as usize > MAX_SIGNATURE_LEN {
            ctx.out.sig_fail(crate::verifier::invalid(alg, sig_at));
        } else {
            ctx.sig.len = 0;
            self.unprot = Unprot::Sig {
                alg,
                key_id,
                left: sig_len,
                at: sig_at,
            };
        }
        Ok(())
    }

    fn signature_done(&mut self, ctx: &mut Ctx<'_>) {
        let Unprot::Sig {
            alg, key_id, at, ..
        } = self.unprot
        else {
            return;
        };
        let p = usize::from(self.prefix) + self.p as usize;
        if let Some(key) = keys::find_by_id(ctx.keys, alg, &key_id) {
            let msg = check::Message::Bytes(&self.msg[..p]);
            ctx.check(&key, msg, at);
        }
        let next = at + ctx.sig.len as u64;
        // The next header position cannot be cut here: signature_start checked the length.
        if let Err(e) = self.next_header(next) {
            ctx.out.sig_fail(e);
        }
    }

    pub(crate) fn finish(&self, ctx: &Ctx<'_>) -> Result<Verified, Error> {
        if self.phase != Phase::Done {
            return Err(Error::misuse("finish() before the image was read"));
        }
        let computed = self.hashers.clone().finish();
        for alg in self.digest_order.into_iter().flatten() {
            let (pos, at) = self.digests[alg.index()].unwrap_or((0, 0));
            let want = &self.msg[usize::from(pos)..usize::from(pos) + alg.output_len()];
            if computed[alg.index()].as_ref().map(|d| d.as_bytes()) != Some(want) {
                return Err(Error::at(
                    Reason::DigestMismatch,
                    at,
                    "DIGEST differs from the digest of the covered bytes",
                ));
            }
        }
        ctx.verdict(self.counter.map(|c| c.0), self.counter.map(|c| c.1))?;
        let mut v = ctx.verified();
        v.security_counter = self.counter.map(|c| c.0);
        v.image_version = self.version;
        v.product = self
            .product
            .map(|(pos, len)| Product::new(self.prot(usize::from(pos), usize::from(len))));
        v.image_range = self.range.map(|(s, l, _)| (s, l));
        v.fill = self.fill;
        v.block_offset = Some(self.s);
        v.covered_len = self.range.map_or(0, |r| r.1);
        Ok(v)
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from(u32_at(b, i)) | (u64::from(u32_at(b, i + 4)) << 32)
}
