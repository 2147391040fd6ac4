//! MCUboot images (`formats/mcuboot.md`): header, protected TLVs (SEC_CNT, FWSEAL_PQ_SIG —
//! last), unprotected TLVs (SHA256/SHA384/SHA512, KEYHASH/PUBKEY, ECDSA_SIG).
//!
//! Reads:
//! 1. the header `[0, 32)`;
//! 2. the TLV areas `[B, N)` (`B` = `ih_hdr_size + ih_img_size`): structure, SEC_CNT, the PQ
//!    signature (buffered), the image hash values and the key TLV;
//! 3. the hashed bytes `[0, B + ih_protect_tlv_size)`: the image hash(es) and, cut at the
//!    FWSEAL_PQ_SIG header, the PQ digest; then the PQ signature is verified;
//! 4. only if there is a classical signature TLV: the unprotected area again, verifying each
//!    signature against the image hash computed in 3.
//!
//! The header, the protected area and the unprotected area are read twice; each second read is
//! compared with the first (the header byte for byte, the areas by SHA-256) so that what was
//! parsed is what was authenticated. A difference is `api-misuse`.

use crate::check::{self, Message};
use crate::error::{Error, Reason};
use crate::hash::{fingerprint, fingerprint_done, Digest, Fingerprint, Hasher, Hashers};
use crate::keys;
use crate::verifier::{invalid, Ctx};
use crate::{Alg, DigestAlg, ImageVersion, Read, Verified};
use sha2::Digest as _;

const IMAGE_MAGIC: u32 = 0x96f3_b83d;
const PROT_MAGIC: u16 = 0x6908;
const UNPROT_MAGIC: u16 = 0x6907;
const IMAGE_F_ENCRYPTED: u32 = 0x04 | 0x08;

const TLV_KEYHASH: u16 = 0x01;
const TLV_PUBKEY: u16 = 0x02;
const TLV_SHA256: u16 = 0x10;
const TLV_SHA384: u16 = 0x11;
const TLV_SHA512: u16 = 0x12;
const TLV_RSA2048_PSS: u16 = 0x20;
const TLV_ECDSA_SIG: u16 = 0x22;
const TLV_RSA3072_PSS: u16 = 0x23;
const TLV_SEC_CNT: u16 = 0x50;
const TLV_FWSEAL_PQ_SIG: u16 = 0x46a0;

/// Longest KEYHASH/PUBKEY kept (a P-384 SPKI is 120 bytes); a longer one matches no key this
/// crate supports.
const HINT_MAX: usize = 128;
/// ECDSA_SIG bytes kept: the DER (≤ 2 + 127 bytes in short form); imgtool's `--pad-sig`
/// zero padding after it is ignored, as `fwseal verify` does.
const ECDSA_KEEP: usize = 129;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Tlvs,
    Hashed,
    Unprot2,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Area {
    Prot,
    Unprot,
}

#[derive(Clone, Copy)]
enum Tlv {
    /// The 4-byte `image_tlv_info` of `area`, starting at `at`.
    Info {
        area: Area,
        acc: [u8; 4],
        n: u8,
        at: u64,
    },
    /// A 4-byte TLV header starting at `at`.
    Header { acc: [u8; 4], n: u8, at: u64 },
    /// The value of a TLV (header at `at`), `pos` of `len` bytes seen.
    Value {
        typ: u16,
        at: u64,
        len: u16,
        pos: u16,
    },
}

/// What happens to the bytes of the PQ / classical signature being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Collect {
    /// Not decided yet (PQ: before its 34 fixed bytes).
    Pending,
    /// Into the signature buffer.
    Buffer,
    /// Dropped (already recorded as unsupported / untrusted / invalid).
    Skip,
}

#[derive(Clone, Copy)]
struct Pq {
    at: u64,
    alg: Option<Alg>,
    key_id: [u8; 32],
    collect: Collect,
}

/// MCUboot verification state.
pub(crate) struct Mcu {
    phase: Phase,
    hdr: [u8; 32],
    hdr_n: u8,
    /// Body end (`ih_hdr_size + ih_img_size`).
    b: u64,
    prot: u16,
    version: ImageVersion,
    tlv: Tlv,
    /// Area of the TLV being parsed, and where it ends.
    cur: Area,
    area_end: u64,
    vacc: [u8; HINT_MAX],
    // Protected area.
    sec_cnt: Option<(u32, u64)>,
    pq: Option<Pq>,
    // Unprotected area (first read).
    hashes: [[u8; 64]; 3],
    hash_at: [Option<u64>; 3],
    hash_conflict: [bool; 3],
    first_hash: Option<DigestAlg>,
    hint: Option<(u16, u16)>,
    hint_bytes: [u8; HINT_MAX],
    nclassical: u16,
    // Second reads.
    fp: Fingerprint,
    fp_prot: [u8; 32],
    fp_unprot: [u8; 32],
    // Hashed read.
    hashers: Hashers,
    pq_h: Option<Hasher>,
    pq_digest: Option<Digest>,
    img_digest: Option<Digest>,
    // Unprotected area, second read: the classical signature being collected.
    classical: Option<(Alg, u64, Collect)>,
}

impl Mcu {
    pub(crate) fn new() -> Self {
        Mcu {
            phase: Phase::Header,
            hdr: [0; 32],
            hdr_n: 0,
            b: 0,
            prot: 0,
            version: ImageVersion {
                major: 0,
                minor: 0,
                revision: 0,
                build: 0,
            },
            tlv: Tlv::Header {
                acc: [0; 4],
                n: 0,
                at: 0,
            },
            cur: Area::Prot,
            area_end: 0,
            vacc: [0; HINT_MAX],
            sec_cnt: None,
            pq: None,
            hashes: [[0; 64]; 3],
            hash_at: [None; 3],
            hash_conflict: [false; 3],
            first_hash: None,
            hint: None,
            hint_bytes: [0; HINT_MAX],
            nclassical: 0,
            fp: fingerprint(),
            fp_prot: [0; 32],
            fp_unprot: [0; 32],
            hashers: Hashers::default(),
            pq_h: None,
            pq_digest: None,
            img_digest: None,
            classical: None,
        }
    }

    /// Offset of the unprotected area.
    fn u0(&self) -> u64 {
        self.b + u64::from(self.prot)
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        if ctx.n < 32 {
            return Err(Error::at(
                Reason::Truncated,
                ctx.n,
                "image shorter than the 32-byte MCUboot header",
            ));
        }
        Ok(Some(Read { offset: 0, len: 32 }))
    }

    pub(crate) fn feed(&mut self, ctx: &mut Ctx<'_>, off: u64, data: &[u8]) -> Result<(), Error> {
        match self.phase {
            Phase::Header => {
                let n = usize::from(self.hdr_n);
                self.hdr[n..n + data.len()].copy_from_slice(data);
                self.hdr_n += data.len() as u8;
                Ok(())
            }
            Phase::Tlvs => {
                let u0 = self.u0();
                // Fingerprint the protected area, then the unprotected one.
                let split = if off < u0 {
                    ((u0 - off) as usize).min(data.len())
                } else {
                    0
                };
                self.fp.update(&data[..split]);
                if off + split as u64 == u0 && split > 0 {
                    self.fp_prot =
                        fingerprint_done(core::mem::replace(&mut self.fp, fingerprint()));
                }
                self.fp.update(&data[split..]);
                self.tlv_feed(ctx, off, data, false)
            }
            Phase::Hashed => {
                self.hashed_feed(off, data)?;
                Ok(())
            }
            Phase::Unprot2 => {
                self.fp.update(data);
                self.tlv_feed(ctx, off, data, true).map_err(|e| {
                    if e.reason() == Reason::ApiMisuse {
                        e
                    } else {
                        changed()
                    }
                })
            }
            Phase::Done => Err(Error::misuse("bytes fed after the last read")),
        }
    }

    pub(crate) fn end_read(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        match self.phase {
            Phase::Header => self.header(ctx),
            Phase::Tlvs => {
                let u0 = self.u0();
                if ctx.n == u0 {
                    return Err(Error::at(
                        Reason::NoSignatureBlock,
                        u0,
                        "MCUboot image without an unprotected TLV area",
                    ));
                }
                self.fp_unprot = fingerprint_done(core::mem::replace(&mut self.fp, fingerprint()));
                self.start_hashed(ctx)
            }
            Phase::Hashed => self.end_hashed(ctx),
            Phase::Unprot2 => {
                let fp = fingerprint_done(core::mem::replace(&mut self.fp, fingerprint()));
                if fp != self.fp_unprot {
                    return Err(changed());
                }
                self.phase = Phase::Done;
                Ok(None)
            }
            Phase::Done => Ok(None),
        }
    }

    fn header(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        let h = self.hdr;
        if le32(&h, 0) != IMAGE_MAGIC {
            return Err(Error::at(Reason::BadMagic, 0, "ih_magic is not 0x96f3b83d"));
        }
        let hdr_size = le16(&h, 8);
        let prot = le16(&h, 10);
        let img_size = le32(&h, 12);
        if hdr_size < 32 {
            return Err(Error::at(
                Reason::Malformed,
                8,
                "ih_hdr_size is smaller than the 32-byte header",
            ));
        }
        if (1..4).contains(&prot) {
            return Err(Error::at(
                Reason::BadLength,
                10,
                "ih_protect_tlv_size cannot hold the 4-byte TLV info header",
            ));
        }
        if le32(&h, 16) & IMAGE_F_ENCRYPTED != 0 {
            return Err(Error::at(
                Reason::UnsupportedAlgorithm,
                16,
                "encrypted MCUboot image: the hash is over the plaintext",
            ));
        }
        self.version = ImageVersion {
            major: h[20],
            minor: h[21],
            revision: le16(&h, 22),
            build: le32(&h, 24),
        };
        let n = ctx.n;
        self.b = u64::from(hdr_size) + u64::from(img_size);
        self.prot = prot;
        if n < u64::from(hdr_size) || n < self.b {
            return Err(Error::at(
                Reason::Truncated,
                n,
                "image shorter than ih_hdr_size + ih_img_size",
            ));
        }
        if n == self.b {
            return Err(Error::at(
                Reason::NoSignatureBlock,
                n,
                "MCUboot image without TLV areas",
            ));
        }
        if n < self.u0() {
            return Err(Error::at(
                Reason::Truncated,
                n,
                "image shorter than ih_protect_tlv_size says",
            ));
        }
        if prot > 0 {
            self.tlv = Tlv::Info {
                area: Area::Prot,
                acc: [0; 4],
                n: 0,
                at: self.b,
            };
        } else {
            self.start_unprot(n)?;
        }
        self.phase = Phase::Tlvs;
        Ok(Some(Read {
            offset: self.b,
            len: n - self.b,
        }))
    }

    fn start_unprot(&mut self, n: u64) -> Result<(), Error> {
        let u0 = self.u0();
        if n > u0 && n - u0 < 4 {
            return Err(Error::at(
                Reason::Truncated,
                n,
                "unprotected TLV info header cut by the end of the image",
            ));
        }
        self.tlv = Tlv::Info {
            area: Area::Unprot,
            acc: [0; 4],
            n: 0,
            at: u0,
        };
        Ok(())
    }

    fn tlv_feed(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut off: u64,
        mut data: &[u8],
        second: bool,
    ) -> Result<(), Error> {
        while !data.is_empty() {
            let take;
            match &mut self.tlv {
                Tlv::Info { area, acc, n, at } => {
                    let k = (4 - usize::from(*n)).min(data.len());
                    acc[usize::from(*n)..usize::from(*n) + k].copy_from_slice(&data[..k]);
                    *n += k as u8;
                    take = k;
                    if *n == 4 {
                        let (area, acc, at) = (*area, *acc, *at);
                        self.info(ctx, area, &acc, at)?;
                    }
                }
                Tlv::Header { acc, n, at } => {
                    let k = (4 - usize::from(*n)).min(data.len());
                    acc[usize::from(*n)..usize::from(*n) + k].copy_from_slice(&data[..k]);
                    *n += k as u8;
                    take = k;
                    if *n == 4 {
                        let (acc, at) = (*acc, *at);
                        self.tlv_header(ctx, &acc, at, second)?;
                    }
                }
                Tlv::Value { typ, at, len, pos } => {
                    let k = (usize::from(*len - *pos)).min(data.len());
                    let (typ, at, len, p) = (*typ, *at, *len, *pos);
                    *pos += k as u16;
                    take = k;
                    self.value_bytes(ctx, typ, at, len, p, &data[..k], second)?;
                    if p + k as u16 == len {
                        self.value_end(ctx, typ, at, len, second)?;
                        self.next_tlv(ctx.n, at + 4 + u64::from(len))?;
                    }
                }
            }
            off += take as u64;
            data = &data[take..];
        }
        let _ = off;
        Ok(())
    }

    fn area(&self) -> Area {
        self.cur
    }

    fn info(&mut self, ctx: &mut Ctx<'_>, area: Area, acc: &[u8; 4], at: u64) -> Result<(), Error> {
        let (magic, tot) = (le16(acc, 0), le16(acc, 2));
        let n = ctx.n;
        match area {
            Area::Prot => {
                if magic != PROT_MAGIC {
                    return Err(Error::at(
                        Reason::BadMagic,
                        at,
                        "protected TLV info magic is not 0x6908",
                    ));
                }
                if tot != self.prot {
                    return Err(Error::at(
                        Reason::BadLength,
                        at + 2,
                        "protected it_tlv_tot is not ih_protect_tlv_size",
                    ));
                }
            }
            Area::Unprot => {
                if magic == PROT_MAGIC && self.prot == 0 {
                    return Err(Error::at(
                        Reason::BadLength,
                        10,
                        "protected TLV area present but ih_protect_tlv_size is 0",
                    ));
                }
                if magic != UNPROT_MAGIC {
                    return Err(Error::at(
                        Reason::BadMagic,
                        at,
                        "unprotected TLV info magic is not 0x6907",
                    ));
                }
                if tot < 4 {
                    return Err(Error::at(
                        Reason::BadLength,
                        at + 2,
                        "unprotected it_tlv_tot is smaller than its 4-byte header",
                    ));
                }
                let end = at + u64::from(tot);
                if end > n {
                    return Err(Error::at(
                        Reason::Truncated,
                        at + 2,
                        "unprotected it_tlv_tot runs past the end of the image",
                    ));
                }
                if end < n {
                    return Err(Error::at(
                        Reason::Malformed,
                        end,
                        "bytes after the unprotected TLV area (slot padding is not accepted)",
                    ));
                }
            }
        }
        self.cur = area;
        self.area_end = at + u64::from(tot);
        self.next_tlv(n, at + 4)
    }

    /// The next TLV of the current area starts at `p` (or the area ends there).
    fn next_tlv(&mut self, n: u64, p: u64) -> Result<(), Error> {
        if p == self.area_end {
            if self.area() == Area::Prot {
                self.start_unprot(n)?;
            } else {
                // The unprotected area ends at the end of the image: nothing more is read.
                self.tlv = Tlv::Header {
                    acc: [0; 4],
                    n: 0,
                    at: p,
                };
            }
            return Ok(());
        }
        if self.area_end - p < 4 {
            return Err(Error::at(
                Reason::BadLength,
                p,
                "a TLV header is cut by the end of its area",
            ));
        }
        self.tlv = Tlv::Header {
            acc: [0; 4],
            n: 0,
            at: p,
        };
        Ok(())
    }

    fn tlv_header(
        &mut self,
        ctx: &mut Ctx<'_>,
        acc: &[u8; 4],
        at: u64,
        second: bool,
    ) -> Result<(), Error> {
        let (typ, len) = (le16(acc, 0), le16(acc, 2));
        if at + 4 + u64::from(len) > self.area_end {
            return Err(Error::at(
                Reason::BadLength,
                at + 2,
                "TLV length runs past the end of its area",
            ));
        }
        match self.area() {
            Area::Prot => {
                if let Some(pq) = self.pq {
                    return Err(Error::at(
                        Reason::PqTlvNotLast,
                        pq.at,
                        "FWSEAL_PQ_SIG is not the last protected TLV",
                    ));
                }
                match typ {
                    TLV_SEC_CNT => {
                        if self.sec_cnt.is_some() {
                            return Err(Error::at(
                                Reason::DuplicateTlv,
                                at,
                                "SEC_CNT appears twice in the protected area",
                            ));
                        }
                        if len != 4 {
                            return Err(Error::at(
                                Reason::Malformed,
                                at + 2,
                                "SEC_CNT is not 4 bytes",
                            ));
                        }
                    }
                    TLV_FWSEAL_PQ_SIG => {
                        if len < 34 {
                            return Err(Error::at(
                                Reason::Malformed,
                                at + 2,
                                "FWSEAL_PQ_SIG shorter than 34 bytes",
                            ));
                        }
                        self.pq = Some(Pq {
                            at,
                            alg: None,
                            key_id: [0; 32],
                            collect: Collect::Pending,
                        });
                    }
                    _ => {}
                }
            }
            Area::Unprot => {
                if second {
                    match typ {
                        TLV_ECDSA_SIG => {
                            let alg = match self.first_hash {
                                Some(DigestAlg::Sha256) => Some(Alg::EcdsaP256),
                                Some(DigestAlg::Sha384) => Some(Alg::EcdsaP384),
                                _ => None,
                            };
                            ctx.sig.len = 0;
                            self.classical = Some(match alg {
                                Some(a) => (a, at, Collect::Buffer),
                                None => {
                                    ctx.out.sig_fail(Error::at(
                                        Reason::ClassicalSignatureInvalid,
                                        at,
                                        "ECDSA_SIG with a SHA-512 image hash (ECDSA pairs with SHA256/SHA384)",
                                    ));
                                    (Alg::EcdsaP256, at, Collect::Skip)
                                }
                            });
                        }
                        TLV_RSA2048_PSS | TLV_RSA3072_PSS => {
                            ctx.out.sig_fail(Error::at(
                                Reason::UnsupportedAlgorithm,
                                at,
                                "RSA signature TLV: RSA is not implemented by fwseal-verify",
                            ));
                        }
                        _ => {}
                    }
                } else {
                    match typ {
                        TLV_ECDSA_SIG | TLV_RSA2048_PSS | TLV_RSA3072_PSS => {
                            self.nclassical = self.nclassical.saturating_add(1);
                        }
                        _ => {}
                    }
                }
            }
        }
        self.tlv = Tlv::Value {
            typ,
            at,
            len,
            pos: 0,
        };
        if len == 0 {
            self.value_end(ctx, typ, at, len, second)?;
            self.next_tlv(ctx.n, at + 4)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn value_bytes(
        &mut self,
        ctx: &mut Ctx<'_>,
        typ: u16,
        at: u64,
        len: u16,
        pos: u16,
        data: &[u8],
        second: bool,
    ) -> Result<(), Error> {
        let prot = self.area() == Area::Prot;
        let keep = |vacc: &mut [u8; HINT_MAX], pos: u16, data: &[u8]| {
            let p = usize::from(pos);
            if p < HINT_MAX {
                let n = data.len().min(HINT_MAX - p);
                vacc[p..p + n].copy_from_slice(&data[..n]);
            }
        };
        if prot && !second {
            if typ == TLV_FWSEAL_PQ_SIG {
                let mut data = data;
                let mut pos = pos;
                if pos < 34 {
                    let n = (34 - usize::from(pos)).min(data.len());
                    keep(&mut self.vacc, pos, &data[..n]);
                    pos += n as u16;
                    data = &data[n..];
                    if pos == 34 {
                        self.pq_fixed(ctx, at, len)?;
                    }
                }
                if !data.is_empty() {
                    if let Some(pq) = self.pq {
                        if pq.collect == Collect::Buffer {
                            ctx.sig.push(data);
                        }
                    }
                }
            } else if typ == TLV_SEC_CNT {
                keep(&mut self.vacc, pos, data);
            }
        } else if !prot {
            if second {
                if typ == TLV_ECDSA_SIG {
                    if let Some((_, _, Collect::Buffer)) = self.classical {
                        let p = usize::from(pos);
                        if p < ECDSA_KEEP {
                            let n = data.len().min(ECDSA_KEEP - p);
                            ctx.sig.push(&data[..n]);
                        }
                    }
                }
            } else if matches!(
                typ,
                TLV_SHA256 | TLV_SHA384 | TLV_SHA512 | TLV_KEYHASH | TLV_PUBKEY
            ) {
                keep(&mut self.vacc, pos, data);
            }
        }
        Ok(())
    }

    /// The 34 fixed bytes of FWSEAL_PQ_SIG (alg id, key id) are in.
    fn pq_fixed(&mut self, ctx: &mut Ctx<'_>, at: u64, len: u16) -> Result<(), Error> {
        let id = le16(&self.vacc, 0);
        let mut key_id = [0u8; 32];
        key_id.copy_from_slice(&self.vacc[2..34]);
        let sig_len = usize::from(len) - 34;
        let mut collect = Collect::Skip;
        let alg = Alg::from_id(id);
        match alg {
            None => ctx.out.sig_fail(Error::at(
                Reason::UnsupportedAlgorithm,
                at + 4,
                "FWSEAL_PQ_SIG algorithm not implemented by this verifier (unknown id)",
            )),
            Some(a) if !a.is_pq() => {
                return Err(Error::at(
                    Reason::Malformed,
                    at + 4,
                    "FWSEAL_PQ_SIG names a classical algorithm",
                ))
            }
            Some(a) => {
                if a.signature_len() != Some(sig_len) {
                    return Err(Error::at(
                        Reason::Malformed,
                        at + 2,
                        "FWSEAL_PQ_SIG signature of the wrong length for its algorithm",
                    ));
                }
                if !a.supported() {
                    ctx.out.sig_fail(Error::at(
                        Reason::UnsupportedAlgorithm,
                        at + 4,
                        "FWSEAL_PQ_SIG algorithm not compiled in (feature slh-dsa)",
                    ));
                } else if keys::find_by_id(ctx.keys, a, &key_id).is_none() {
                    ctx.out.sig_fail(Error::at(
                        Reason::UntrustedKey,
                        at + 6,
                        "FWSEAL_PQ_SIG key id matches no trusted key of its algorithm",
                    ));
                } else {
                    collect = Collect::Buffer;
                    ctx.sig.len = 0;
                }
            }
        }
        self.pq = Some(Pq {
            at,
            alg,
            key_id,
            collect,
        });
        Ok(())
    }

    fn value_end(
        &mut self,
        ctx: &mut Ctx<'_>,
        typ: u16,
        at: u64,
        len: u16,
        second: bool,
    ) -> Result<(), Error> {
        let prot = self.area() == Area::Prot;
        if prot && !second {
            if typ == TLV_SEC_CNT {
                self.sec_cnt = Some((le32(&self.vacc, 0), at + 4));
            }
        } else if !prot && !second {
            match typ {
                TLV_SHA256 | TLV_SHA384 | TLV_SHA512 => {
                    let alg = hash_alg(typ);
                    let i = alg.index();
                    let v = &self.vacc[..alg.output_len()];
                    if usize::from(len) != alg.output_len() {
                        // A hash value of the wrong length cannot equal the recomputed hash.
                        self.hash_conflict[i] = true;
                        self.hash_at[i].get_or_insert(at);
                    } else if self.hash_at[i].is_some() {
                        if self.hashes[i][..alg.output_len()] != *v {
                            self.hash_conflict[i] = true;
                        }
                    } else {
                        self.hashes[i][..alg.output_len()].copy_from_slice(v);
                        self.hash_at[i] = Some(at);
                    }
                    self.first_hash.get_or_insert(alg);
                }
                TLV_KEYHASH | TLV_PUBKEY => {
                    // The last key TLV is the one used (formats/mcuboot.md).
                    let n = usize::from(len).min(HINT_MAX);
                    self.hint_bytes[..n].copy_from_slice(&self.vacc[..n]);
                    self.hint = Some((typ, len));
                }
                _ => {}
            }
        } else if !prot && second && typ == TLV_ECDSA_SIG {
            if let Some((alg, at, Collect::Buffer)) = self.classical.take() {
                self.check_classical(ctx, alg, at, usize::from(len));
            }
        }
        Ok(())
    }

    /// Verify the collected ECDSA_SIG (`total` bytes in the TLV) with the trusted keys the key
    /// TLV names (all keys of the algorithm if there is none).
    fn check_classical(&self, ctx: &mut Ctx<'_>, alg: Alg, at: u64, total: usize) {
        let kept = ctx.sig.len;
        let b = &ctx.sig.buf[..kept];
        // imgtool --pad-sig: a short-form DER SEQUENCE followed by padding; keep the DER only.
        let der_len = match b {
            [0x30, l, ..] if *l < 0x80 && usize::from(*l) + 2 <= total => usize::from(*l) + 2,
            _ => total,
        };
        let Some(img) = self.img_digest else {
            return;
        };
        let img_alg = self.first_hash.unwrap_or(DigestAlg::Sha256);
        let hint = self.hint.map(|(t, l)| (t, usize::from(l)));
        let mut candidates = 0;
        let mut verified = None;
        for k in ctx.keys.iter().filter_map(|k| keys::parse(k).ok()) {
            if k.alg != alg {
                continue;
            }
            let named = match hint {
                None => true,
                Some((_, l)) if l > HINT_MAX => false,
                Some((TLV_KEYHASH, l)) => k.hash_matches(img_alg, &self.hint_bytes[..l]),
                Some((_, l)) => k.spki_equals(&self.hint_bytes[..l]),
            };
            if !named {
                continue;
            }
            candidates += 1;
            if der_len <= kept && check::verify(&k, Message::Prehash(img.as_bytes()), &b[..der_len])
            {
                verified = Some(k.key_id());
                break;
            }
        }
        match verified {
            Some(id) => ctx.out.sig_ok(alg, id),
            None if candidates == 0 => ctx.out.sig_fail(Error::at(
                Reason::UntrustedKey,
                at,
                "the key KEYHASH/PUBKEY names is not a trusted key of the signature's algorithm",
            )),
            None => ctx.out.sig_fail(invalid(alg, at + 4)),
        }
    }

    fn start_hashed(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        for (i, alg) in [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512]
            .into_iter()
            .enumerate()
        {
            if self.hash_at[i].is_some() {
                self.hashers.enable(alg);
            }
        }
        if let Some(Pq {
            alg: Some(a),
            collect: Collect::Buffer,
            ..
        }) = self.pq
        {
            if self.hashers.get(a.digest()).is_none() {
                self.pq_h = Some(Hasher::new(a.digest()));
            }
        }
        let _ = ctx;
        self.phase = Phase::Hashed;
        Ok(Some(Read {
            offset: 0,
            len: self.u0(),
        }))
    }

    fn hashed_feed(&mut self, off: u64, data: &[u8]) -> Result<(), Error> {
        let end = off + data.len() as u64;
        if off < 32 {
            let e = (end.min(32)) as usize;
            if self.hdr[off as usize..e] != data[..e - off as usize] {
                return Err(changed());
            }
        }
        if end > self.b {
            let s = self.b.saturating_sub(off) as usize;
            self.fp.update(&data[s..]);
        }
        let cut = match self.pq {
            Some(Pq {
                at,
                collect: Collect::Buffer,
                alg: Some(a),
                ..
            }) if self.pq_digest.is_none() => Some((at, a.digest())),
            _ => None,
        };
        match cut {
            Some((at, alg)) if end >= at => {
                let k = (at - off) as usize;
                self.hashers.update(&data[..k]);
                let d = match self.pq_h.take() {
                    Some(mut h) => {
                        h.update(&data[..k]);
                        h.finish()
                    }
                    None => match self.hashers.get(alg) {
                        Some(h) => h.clone().finish(),
                        None => Hasher::new(alg).finish(),
                    },
                };
                self.pq_digest = Some(d);
                self.hashers.update(&data[k..]);
            }
            _ => {
                self.hashers.update(data);
                if let Some(h) = &mut self.pq_h {
                    h.update(data);
                }
            }
        }
        Ok(())
    }

    fn end_hashed(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<Read>, Error> {
        if self.prot > 0 {
            let fp = fingerprint_done(core::mem::replace(&mut self.fp, fingerprint()));
            if fp != self.fp_prot {
                return Err(changed());
            }
        }
        let computed = core::mem::take(&mut self.hashers).finish();
        for (i, d) in computed.iter().enumerate() {
            let (Some(at), Some(d)) = (self.hash_at[i], d) else {
                continue;
            };
            let alg = [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512][i];
            if self.hash_conflict[i] || self.hashes[i][..alg.output_len()] != *d.as_bytes() {
                ctx.out.mismatch(Error::at(
                    Reason::DigestMismatch,
                    at,
                    "image hash TLV differs from the hash of header, body and protected TLVs",
                ));
            }
        }
        match self.first_hash {
            Some(a) => self.img_digest = computed[a.index()],
            None => ctx.out.missing(Error::at(
                Reason::DigestMissing,
                self.u0(),
                "no image hash TLV (SHA256/SHA384/SHA512) in the unprotected area",
            )),
        }
        if ctx.out.digest_mismatch.is_some() || ctx.out.digest_missing.is_some() {
            // The verdict is the digest error: no signature needs checking.
            self.phase = Phase::Done;
            return Ok(None);
        }
        if let (
            Some(Pq {
                alg: Some(a),
                collect: Collect::Buffer,
                at,
                key_id,
            }),
            Some(d),
        ) = (self.pq, self.pq_digest)
        {
            let prefix = b"fwseal/mcuboot/v1\0";
            let mut m = [0u8; 18 + 1 + 64];
            m[..18].copy_from_slice(prefix);
            m[18] = a.digest().id();
            m[19..19 + d.as_bytes().len()].copy_from_slice(d.as_bytes());
            let mlen = 19 + d.as_bytes().len();
            if let Some(k) = keys::find_by_id(ctx.keys, a, &key_id) {
                ctx.check(&k, Message::Bytes(&m[..mlen]), at + 38);
            }
        }
        if self.nclassical == 0 {
            self.phase = Phase::Done;
            return Ok(None);
        }
        self.tlv = Tlv::Info {
            area: Area::Unprot,
            acc: [0; 4],
            n: 0,
            at: self.u0(),
        };
        self.phase = Phase::Unprot2;
        Ok(Some(Read {
            offset: self.u0(),
            len: ctx.n - self.u0(),
        }))
    }

    pub(crate) fn finish(&self, ctx: &Ctx<'_>) -> Result<Verified, Error> {
        if self.phase != Phase::Done {
            return Err(Error::misuse("finish() before the image was read"));
        }
        ctx.verdict(self.sec_cnt.map(|c| c.0), self.sec_cnt.map(|c| c.1))?;
        let mut v = ctx.verified();
        v.security_counter = self.sec_cnt.map(|c| c.0);
        v.image_version = Some(self.version);
        v.covered_len = self.u0();
        Ok(v)
    }
}

fn changed() -> Error {
    Error::misuse("bytes of a range read twice differ between the reads")
}

fn hash_alg(typ: u16) -> DigestAlg {
    match typ {
        TLV_SHA256 => DigestAlg::Sha256,
        TLV_SHA384 => DigestAlg::Sha384,
        _ => DigestAlg::Sha512,
    }
}

fn le16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
