//! MCUboot images (`.img`): header, body, protected TLV area (`0x6908`) and unprotected TLV
//! area (`0x6907`), as MCUboot's `bootutil/image.h` and imgtool define them. Spec:
//! `formats/mcuboot.md`.
//!
//! The device hashes `header ‖ body ‖ protected TLV area` (SHA-256, or SHA-384 for ECDSA P-384)
//! and checks the classical signature over that hash. fwseal adds the post-quantum half as a
//! **protected** vendor TLV ([`TLV_FWSEAL_PQ_SIG`], placed last in the protected area): stock
//! MCUboot ignores unknown protected TLVs, and the classical signature covers it.
//!
//! Embedded mode keeps every pre-existing protected TLV (security counter, dependencies, ...),
//! replaces an existing fwseal PQ TLV and every unprotected TLV (so re-signing replaces, never
//! stacks), and rewrites `ih_protect_tlv_size`. Preparation streams: the body is hashed as it
//! arrives; only the header region and the TLV trailer (≤ 2 × 64 KiB) are buffered.

use crate::reader::{peek_u16_le, peek_u32_le, Reader};
use crate::{
    detached, Detection, Extracted, Format, FormatError, FormatSpec, FoundSignature, ImageVersion,
    KeyHint, Mode, Part, Preparation, Prepared, Request, StreamPreparer,
};
use fwseal_crypto::{
    DigestAlg, Digests, Family, Hasher, KeyId, MultiHasher, PublicKey, SigAlg, Signature,
    SignatureSet, SignedMessage,
};
use serde::{Deserialize, Serialize};

/// `ih_magic`.
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// Size of `struct image_header`.
pub const HEADER_LEN: usize = 32;
/// `it_magic` of the unprotected TLV area.
pub const TLV_INFO_MAGIC: u16 = 0x6907;
/// `it_magic` of the protected TLV area.
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;
/// KEYHASH: hash of the public key (SPKI DER for ECDSA, PKCS#1 for RSA) under the image hash.
pub const TLV_KEYHASH: u16 = 0x01;
/// PUBKEY: the full public key (same encoding as KEYHASH hashes), for `MCUBOOT_HW_KEY` builds.
pub const TLV_PUBKEY: u16 = 0x02;
/// SHA-256 image hash.
pub const TLV_SHA256: u16 = 0x10;
/// SHA-384 image hash.
pub const TLV_SHA384: u16 = 0x11;
/// SHA-512 image hash.
pub const TLV_SHA512: u16 = 0x12;
/// RSA-2048 PSS signature.
pub const TLV_RSA2048_PSS: u16 = 0x20;
/// ECDSA signature (DER).
pub const TLV_ECDSA_SIG: u16 = 0x22;
/// RSA-3072 PSS signature.
pub const TLV_RSA3072_PSS: u16 = 0x23;
/// ED25519 signature.
pub const TLV_ED25519: u16 = 0x24;
/// Security counter (u32, protected).
pub const TLV_SEC_CNT: u16 = 0x50;
/// fwseal post-quantum signature (protected). In MCUboot's vendor-reserved range `xxA0-xxFF`
/// (0x46 = 'F'). Value: `alg id (u16 LE) ‖ key id (32) ‖ signature`.
pub const TLV_FWSEAL_PQ_SIG: u16 = 0x46a0;
/// Domain prefix of the post-quantum message.
pub const PQ_DOMAIN: &[u8] = b"fwseal/mcuboot/v1\0";

const IMAGE_F_ENCRYPTED: u32 = 0x0000_0004 | 0x0000_0008;
/// Most bytes accepted after the body: two TLV areas of at most 65,535 bytes each.
const MAX_TAIL: usize = 2 * 0xffff;
const PQ_TLV_FIXED: usize = 4 + 2 + 32;

/// Which TLV names the classical key in the unprotected area (imgtool `--public-key-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublicKeyFormat {
    /// KEYHASH (`0x01`): the image hash algorithm over the key's MCUboot encoding (imgtool's
    /// default, `hash`). The bootloader finds the key among its built-in keys by this hash.
    #[default]
    Hash,
    /// PUBKEY (`0x02`): the key's MCUboot encoding itself (imgtool `full`). Bootloaders built
    /// with `MCUBOOT_HW_KEY` (TF-M, nRF) need it: they hash the key and compare the hash with
    /// one held in hardware.
    Full,
}

/// imgtool's `DEFAULT_MAX_SECTORS`.
pub const DEFAULT_MAX_SECTORS: u32 = 128;
/// imgtool's `DEFAULT_MAX_ALIGN`.
pub const DEFAULT_MAX_ALIGN: u8 = 8;

/// The flash slot a signed image must fit, as `imgtool sign --slot-size` checks it: the image
/// plus the image trailer MCUboot keeps at the end of the slot (swap status, flags, magic) must
/// not exceed `size`. Field names follow imgtool's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Slot {
    /// Slot size in bytes (`-S/--slot-size`).
    pub size: u32,
    /// Flash write alignment (`--align`: 1, 2, 4, 8, 16 or 32).
    pub align: u8,
    /// `--max-align` (8, 16 or 32); `None` = max(8, `align`), as imgtool.
    pub max_align: Option<u8>,
    /// `-M/--max-sectors`: sectors the swap status area tracks.
    pub max_sectors: u32,
    /// `--overwrite-only`: the trailer holds no swap status.
    pub overwrite_only: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            size: 0,
            align: 1,
            max_align: None,
            max_sectors: DEFAULT_MAX_SECTORS,
            overwrite_only: false,
        }
    }
}

impl Slot {
    /// A slot of `size` bytes with imgtool's defaults for everything else.
    pub fn new(size: u32) -> Self {
        Slot {
            size,
            ..Slot::default()
        }
    }

    /// The values imgtool accepts.
    pub fn validate(&self) -> Result<(), String> {
        if self.size == 0 {
            return Err("slot size must be at least 1 byte".into());
        }
        if ![1, 2, 4, 8, 16, 32].contains(&self.align) {
            return Err(format!(
                "align {} is not one of 1, 2, 4, 8, 16, 32",
                self.align
            ));
        }
        if let Some(m) = self.max_align {
            if ![8, 16, 32].contains(&m) {
                return Err(format!("max_align {m} is not one of 8, 16, 32"));
            }
        }
        if self.max_sectors == 0 {
            return Err("max_sectors must be at least 1".into());
        }
        Ok(())
    }

    /// Bytes MCUboot reserves at the end of the slot: imgtool's `_trailer_size` for an
    /// unencrypted image (fwseal refuses encrypted ones). Swap: `max_sectors × 3 × align`
    /// (status area) `+ 4 × max_align` (image_ok, copy_done, swap_info, swap_size)
    /// `+ align_up(16, max_align)` (magic); overwrite-only: `2 × max_align + align_up(16,
    /// max_align)`. Defaults (align 1, 128 sectors): 432 bytes.
    pub fn trailer_size(&self) -> u64 {
        let max_align = u64::from(
            self.max_align
                .unwrap_or_else(|| self.align.max(DEFAULT_MAX_ALIGN)),
        )
        .max(1);
        let magic = 16u64.div_ceil(max_align) * max_align;
        if self.overwrite_only {
            2 * max_align + magic
        } else {
            u64::from(self.max_sectors) * 3 * u64::from(self.align) + 4 * max_align + magic
        }
    }

    /// Refuse an image of `image` bytes (from an input of `input` bytes) that does not fit.
    pub fn check(&self, input: u64, image: u64) -> Result<(), FormatError> {
        let trailer = self.trailer_size();
        if image.saturating_add(trailer) > u64::from(self.size) {
            return Err(FormatError::SlotOverflow {
                format: Format::Mcuboot,
                input,
                image,
                trailer,
                slot: u64::from(self.size),
            });
        }
        Ok(())
    }
}

/// The public key as MCUboot embeds and hashes it (imgtool's `get_public_bytes`): the
/// SubjectPublicKeyInfo DER for ECDSA, the PKCS#1 `RSAPublicKey` DER for RSA. `spki` must be a
/// key for `alg`.
pub fn public_key_bytes(alg: SigAlg, spki: &[u8]) -> Result<Vec<u8>, FormatError> {
    let key = PublicKey::from_spki_der(alg, spki)?;
    Ok(match alg {
        SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256 => key.raw()?,
        _ => spki.to_vec(),
    })
}

/// The largest key TLV value and signature TLV value MCUboot carries for `alg`, for the slot
/// check (which must not depend on the random length of an ECDSA signature's DER).
fn classical_tlvs_max(
    alg: SigAlg,
    key: PublicKeyFormat,
    hash: DigestAlg,
) -> Result<usize, FormatError> {
    // (MCUboot key encoding, longest signature): P-256 SPKI 91 / DER ≤ 72, P-384 SPKI 120 /
    // DER ≤ 104, RSA-3072 (the largest RSA TLV) PKCS#1 398 / 384.
    let (key_len, sig_len) = match alg {
        SigAlg::EcdsaP256Sha256 => (91, 72),
        SigAlg::EcdsaP384Sha384 => (120, 104),
        SigAlg::RsaPssSha256 => (398, 384),
        a => {
            return Err(FormatError::Unsupported(format!(
                "MCUboot has no signature TLV for {a}"
            )))
        }
    };
    let key_tlv = match key {
        PublicKeyFormat::Hash => hash.len(),
        PublicKeyFormat::Full => key_len,
    };
    Ok(4 + key_tlv + 4 + sig_len)
}

/// The MCUboot descriptor.
pub static SPEC: FormatSpec = FormatSpec {
    format: Format::Mcuboot,
    name: "mcuboot",
    aliases: &["img"],
    extensions: &["img"],
    id: 2,
    streams: true,
    summary: "MCUboot image",
    doc: "formats/mcuboot.md",
    fixtures: "fixtures/mcuboot",
    fuzz_target: "mcuboot",
    carries_pq: true,
    rsa_scheme: Some(SigAlg::RsaPssSha256),
    default_classical: SigAlg::EcdsaP256Sha256,
    detect,
    hint_mismatch: || {
        Some(FormatError::UnsupportedFlavour(
            "file has an .img extension but no MCUboot header magic (0x96f3b83d)".into(),
        ))
    },
    prepare: Preparation::Stream(|req| Box::new(McubootStream::new(req))),
    extract,
    describe,
};

/// Content detection: the MCUboot magic; the other `.img` flavours fwseal meets (Android boot,
/// FIT / device tree) are refused here rather than signed as raw images.
fn detect(data: &[u8]) -> Detection {
    if looks_like(data) {
        Detection::Match
    } else if data.starts_with(b"ANDROID!") {
        Detection::Refuse(FormatError::UnsupportedFlavour(
            "Android boot image (magic \"ANDROID!\"); only MCUboot .img is supported".into(),
        ))
    } else if data.starts_with(&[0xd0, 0x0d, 0xfe, 0xed]) {
        Detection::Refuse(FormatError::UnsupportedFlavour(
            "FIT / device-tree blob (magic d00dfeed); only MCUboot .img is supported".into(),
        ))
    } else {
        Detection::NoMatch
    }
}

fn bad(off: u64, what: impl Into<String>) -> FormatError {
    FormatError::at(Format::Mcuboot, off, what)
}

/// Whether `data` starts with the MCUboot header magic.
pub fn looks_like(data: &[u8]) -> bool {
    peek_u32_le(data, 0) == Some(IMAGE_MAGIC)
}

/// The fixed part of `struct image_header`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// `ih_load_addr`.
    pub load_addr: u32,
    /// `ih_hdr_size`: size of the header region (≥ 32; the rest is padding).
    pub hdr_size: u16,
    /// `ih_protect_tlv_size`: size of the protected TLV area including its info header, or 0.
    pub protect_tlv_size: u16,
    /// `ih_img_size`: body size, not including the header.
    pub img_size: u32,
    /// `ih_flags`.
    pub flags: u32,
    /// `ih_ver`.
    pub version: ImageVersion,
}

impl Header {
    /// Parse and check the first 32 bytes.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        if data.len() < HEADER_LEN {
            return Err(bad(
                data.len() as u64,
                format!("truncated header: {} of 32 bytes", data.len()),
            ));
        }
        // The 32 bytes are there: no read below can run short.
        let short = "truncated header";
        let mut r = Reader::new(Format::Mcuboot, data, 0);
        let magic = r.u32_le(short)?;
        if magic != IMAGE_MAGIC {
            return Err(bad(
                0,
                format!("ih_magic is 0x{magic:08x}, expected 0x{IMAGE_MAGIC:08x}"),
            ));
        }
        let h = Header {
            load_addr: r.u32_le(short)?,
            hdr_size: r.u16_le(short)?,
            protect_tlv_size: r.u16_le(short)?,
            img_size: r.u32_le(short)?,
            flags: r.u32_le(short)?,
            version: ImageVersion {
                major: r.u8(short)?,
                minor: r.u8(short)?,
                revision: r.u16_le(short)?,
                build: r.u32_le(short)?,
            },
        };
        if usize::from(h.hdr_size) < HEADER_LEN {
            return Err(bad(
                8,
                format!(
                    "ih_hdr_size {} is smaller than the 32-byte header",
                    h.hdr_size
                ),
            ));
        }
        if h.protect_tlv_size != 0 && h.protect_tlv_size < 4 {
            return Err(bad(
                10,
                format!(
                    "ih_protect_tlv_size {} cannot hold the 4-byte TLV info header",
                    h.protect_tlv_size
                ),
            ));
        }
        Ok(h)
    }

    /// Offset of the first byte after the body.
    pub fn body_end(&self) -> u64 {
        u64::from(self.hdr_size) + u64::from(self.img_size)
    }

    fn encrypted(&self) -> bool {
        self.flags & IMAGE_F_ENCRYPTED != 0
    }
}

/// One TLV entry. Offsets are relative to the trailer slice it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    /// `it_type`.
    pub kind: u16,
    /// Offset of the 4-byte TLV header.
    pub at: usize,
    /// `it_len`.
    pub len: u16,
}

impl Tlv {
    fn value<'a>(&self, tail: &'a [u8]) -> &'a [u8] {
        let s = self.at.saturating_add(4);
        tail.get(s..s.saturating_add(usize::from(self.len)))
            .unwrap_or_default()
    }
    fn raw<'a>(&self, tail: &'a [u8]) -> &'a [u8] {
        tail.get(self.at..self.at.saturating_add(4 + usize::from(self.len)))
            .unwrap_or_default()
    }
}

/// A TLV area: info header at `at` (relative to the trailer), `tot` bytes including it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Area {
    /// Offset of the info header.
    pub at: usize,
    /// `it_tlv_tot`.
    pub tot: u16,
    /// Entries in order.
    pub tlvs: Vec<Tlv>,
}

impl Area {
    fn end(&self) -> usize {
        self.at + usize::from(self.tot)
    }
}

/// The bytes after the body: optional protected area, optional unprotected area.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailer {
    /// Protected TLV area (`0x6908`).
    pub protected: Option<Area>,
    /// Unprotected TLV area (`0x6907`).
    pub unprotected: Option<Area>,
}

impl Trailer {
    /// Length of the protected area (0 if none).
    pub fn protected_len(&self) -> usize {
        self.protected.as_ref().map_or(0, |a| usize::from(a.tot))
    }
}

fn parse_area(
    tail: &[u8],
    at: usize,
    base: u64,
    magic: u16,
    name: &str,
) -> Result<Area, FormatError> {
    let abs = |o: usize| base.saturating_add(o as u64);
    let m = peek_u16_le(tail, at).ok_or_else(|| {
        bad(
            abs(tail.len()),
            format!("truncated: {name} TLV info header missing"),
        )
    })?;
    if m != magic {
        return Err(bad(
            abs(at),
            format!("{name} TLV info magic is 0x{m:04x}, expected 0x{magic:04x}"),
        ));
    }
    let tot = peek_u16_le(tail, at + 2).ok_or_else(|| {
        bad(
            abs(tail.len()),
            format!("truncated: {name} TLV info header cut short"),
        )
    })?;
    if tot < 4 {
        return Err(bad(
            abs(at + 2),
            format!("{name} it_tlv_tot {tot} is smaller than its own 4-byte header"),
        ));
    }
    let end = at + usize::from(tot);
    if end > tail.len() {
        return Err(bad(
            abs(at + 2),
            format!(
                "{name} it_tlv_tot {tot} runs past the end of the file ({} bytes available)",
                tail.len() - at
            ),
        ));
    }
    let mut tlvs = Vec::new();
    let mut p = at + 4;
    while p < end {
        if end - p < 4 {
            return Err(bad(
                abs(p),
                format!(
                    "truncated TLV header in the {name} area ({} bytes left)",
                    end - p
                ),
            ));
        }
        let kind = peek_u16_le(tail, p).unwrap_or(0);
        let len = peek_u16_le(tail, p + 2).unwrap_or(0);
        let next = p + 4 + usize::from(len);
        if next > end {
            return Err(bad(
                abs(p + 2),
                format!(
                    "TLV 0x{kind:04x} length {len} runs past the end of the {name} area at {}",
                    abs(end)
                ),
            ));
        }
        tlvs.push(Tlv { kind, at: p, len });
        p = next;
    }
    Ok(Area { at, tot, tlvs })
}

/// Parse the trailer (`tail` = every byte after the body, starting at file offset `base`).
pub fn parse_trailer(tail: &[u8], base: u64, hdr: &Header) -> Result<Trailer, FormatError> {
    let mut t = Trailer::default();
    let mut p = 0usize;
    if hdr.protect_tlv_size > 0 {
        let a = parse_area(tail, 0, base, TLV_PROT_INFO_MAGIC, "protected")?;
        if a.tot != hdr.protect_tlv_size {
            return Err(bad(
                base + 2,
                format!(
                    "protected it_tlv_tot {} disagrees with ih_protect_tlv_size {}",
                    a.tot, hdr.protect_tlv_size
                ),
            ));
        }
        p = a.end();
        t.protected = Some(a);
    } else if peek_u16_le(tail, 0) == Some(TLV_PROT_INFO_MAGIC) {
        return Err(bad(
            base,
            "protected TLV area present but ih_protect_tlv_size is 0",
        ));
    }
    if p < tail.len() {
        let a = parse_area(tail, p, base, TLV_INFO_MAGIC, "unprotected")?;
        let end = a.end();
        if end != tail.len() {
            return Err(bad(
                base + end as u64,
                format!(
                    "{} trailing bytes after the TLV area (slot-padded images are not supported)",
                    tail.len() - end
                ),
            ));
        }
        t.unprotected = Some(a);
    }
    Ok(t)
}

/// Image hash TLV type for a hash algorithm.
fn hash_tlv(alg: DigestAlg) -> u16 {
    match alg {
        DigestAlg::Sha256 => TLV_SHA256,
        DigestAlg::Sha384 => TLV_SHA384,
        DigestAlg::Sha512 => TLV_SHA512,
    }
}

fn hash_of_tlv(kind: u16) -> Option<DigestAlg> {
    match kind {
        TLV_SHA256 => Some(DigestAlg::Sha256),
        TLV_SHA384 => Some(DigestAlg::Sha384),
        TLV_SHA512 => Some(DigestAlg::Sha512),
        _ => None,
    }
}

/// The image hash algorithm MCUboot uses with `classical` (SHA-256 unless ECDSA P-384).
pub fn image_hash_alg(classical: Option<SigAlg>) -> DigestAlg {
    match classical {
        Some(SigAlg::EcdsaP384Sha384) => DigestAlg::Sha384,
        _ => DigestAlg::Sha256,
    }
}

fn tlv_bytes(kind: u16, value: &[u8]) -> Result<Vec<u8>, FormatError> {
    let len = u16::try_from(value.len())
        .map_err(|_| FormatError::Unsupported(format!("TLV 0x{kind:04x} value over 64 KiB")))?;
    let mut v = Vec::with_capacity(4 + value.len());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(value);
    Ok(v)
}

/// The fwseal PQ TLV for `sig`: `0x46a0 ‖ len ‖ alg id ‖ key id ‖ signature`.
pub fn pq_tlv(sig: &Signature) -> Result<Vec<u8>, FormatError> {
    let mut v = Vec::with_capacity(34 + sig.bytes.len());
    v.extend_from_slice(&sig.alg.id().to_le_bytes());
    v.extend_from_slice(&sig.key_id.0);
    v.extend_from_slice(&sig.bytes);
    tlv_bytes(TLV_FWSEAL_PQ_SIG, &v)
}

/// The post-quantum message given the digest of bytes `[0, start of the PQ TLV)`.
pub fn pq_message_for(da: DigestAlg, digest: &[u8]) -> SignedMessage {
    let mut m = PQ_DOMAIN.to_vec();
    m.push(da.id());
    m.extend_from_slice(digest);
    SignedMessage::Bytes(m)
}

fn pq_tlv_len(alg: SigAlg) -> Result<usize, FormatError> {
    alg.fixed_signature_len()
        .map(|n| n + PQ_TLV_FIXED)
        .ok_or_else(|| FormatError::Unsupported(format!("{alg} has no fixed signature length")))
}

/// One way the final header may look (see [`McubootStream`]).
struct Candidate {
    prot_size: u16,
    header: Vec<u8>,
}

/// Streaming preparation: constant memory (header region + ≤ 128 KiB of TLV trailer).
///
/// In embedded hybrid mode the final `ih_protect_tlv_size` — which the hash covers first — depends
/// on whether the input already carries a fwseal PQ TLV, which is only known at the end. The body
/// is therefore hashed under at most two candidate headers ("no PQ TLV yet" and "replacing a PQ
/// TLV of the same algorithm"); the second exists only when the protected area is large enough.
pub struct McubootStream {
    req: Request,
    pos: u64,
    head: Vec<u8>,
    hdr: Option<Header>,
    cands: Vec<Candidate>,
    /// Every candidate's states, candidate by candidate ([`McubootStream::algs`] each), hashed
    /// in parallel.
    states: MultiHasher,
    tail: Vec<u8>,
}

impl McubootStream {
    /// New stream.
    pub fn new(req: Request) -> Self {
        McubootStream {
            req,
            pos: 0,
            head: Vec::new(),
            hdr: None,
            cands: Vec::new(),
            states: MultiHasher::default(),
            tail: Vec::new(),
        }
    }

    fn algs(&self) -> Vec<DigestAlg> {
        self.req.digest_algs(image_hash_alg(self.req.classical))
    }

    fn start(&mut self, hdr: &Header) -> Result<(), FormatError> {
        if hdr.encrypted() {
            return Err(FormatError::Unsupported(
                "encrypted MCUboot image: its hash is over the plaintext; sign before encrypting"
                    .into(),
            ));
        }
        let orig = hdr.protect_tlv_size;
        let mut sizes = vec![orig];
        if self.req.mode == Mode::Embedded {
            if let Some(alg) = self.req.classical {
                if alg == SigAlg::RsaPkcs1Sha256 {
                    return Err(FormatError::Unsupported(
                        "MCUboot verifies RSA-PSS only; use rsa-pss-sha256".into(),
                    ));
                }
            }
            if let Some(pq) = self.req.pq {
                let l = pq_tlv_len(pq)?;
                let fresh = usize::from(orig) + l + if orig == 0 { 4 } else { 0 };
                let fresh = u16::try_from(fresh).map_err(|_| {
                    FormatError::Unsupported(format!(
                        "{pq} signature does not fit the 64 KiB protected TLV area"
                    ))
                })?;
                sizes = vec![fresh];
                if usize::from(orig) >= l + 4 {
                    sizes.push(orig);
                }
            }
        }
        let algs = self.algs();
        let mut states = Vec::new();
        for s in sizes {
            let mut header = self.head.clone();
            if let Some(b) = header.get_mut(10..12) {
                b.copy_from_slice(&s.to_le_bytes());
            }
            for a in &algs {
                let mut h = Hasher::new(*a);
                h.update(&header);
                states.push(h);
            }
            self.cands.push(Candidate {
                prot_size: s,
                header,
            });
        }
        self.states = MultiHasher::from_states(states);
        Ok(())
    }
}

impl StreamPreparer for McubootStream {
    fn update(&mut self, mut chunk: &[u8]) -> Result<(), FormatError> {
        while !chunk.is_empty() {
            match &self.hdr {
                None => {
                    let n = HEADER_LEN.saturating_sub(self.head.len()).min(chunk.len());
                    self.head.extend_from_slice(&chunk[..n]);
                    chunk = &chunk[n..];
                    self.pos += n as u64;
                    if self.head.len() == HEADER_LEN {
                        self.hdr = Some(Header::parse(&self.head)?);
                    }
                }
                Some(h) if self.head.len() < usize::from(h.hdr_size) => {
                    let n = (usize::from(h.hdr_size) - self.head.len()).min(chunk.len());
                    self.head.extend_from_slice(&chunk[..n]);
                    chunk = &chunk[n..];
                    self.pos += n as u64;
                }
                Some(h) => {
                    let h = h.clone();
                    if self.cands.is_empty() {
                        self.start(&h)?;
                    }
                    let end = h.body_end();
                    if self.pos < end {
                        let n = usize::try_from(end - self.pos)
                            .unwrap_or(usize::MAX)
                            .min(chunk.len());
                        // Every state of every candidate header (in parallel for large
                        // images).
                        self.states.update(&chunk[..n]);
                        chunk = &chunk[n..];
                        self.pos += n as u64;
                    } else {
                        if self.tail.len().saturating_add(chunk.len()) > MAX_TAIL {
                            return Err(bad(
                                end.saturating_add(MAX_TAIL as u64),
                                "more than 128 KiB after the image body: not MCUboot TLV areas \
                                 (ih_img_size wrong, or a slot-padded image)",
                            ));
                        }
                        self.tail.extend_from_slice(chunk);
                        self.pos += chunk.len() as u64;
                        chunk = &[];
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError> {
        let hdr = match &self.hdr {
            Some(h) if self.head.len() == usize::from(h.hdr_size) => h.clone(),
            Some(h) => {
                return Err(bad(
                    self.pos,
                    format!(
                        "truncated: ih_hdr_size is {} but the file ends at {}",
                        h.hdr_size, self.pos
                    ),
                ))
            }
            None => return Header::parse(&self.head).and(Err(bad(self.pos, "truncated"))),
        };
        if self.cands.is_empty() {
            self.start(&hdr)?;
        }
        let end = hdr.body_end();
        if self.pos < end {
            return Err(bad(
                self.pos,
                format!(
                    "truncated body: ih_img_size {} puts the body end at {end}, file ends at {}",
                    hdr.img_size, self.pos
                ),
            ));
        }
        let trailer = parse_trailer(&self.tail, end, &hdr)?;
        let tail = std::mem::take(&mut self.tail);
        let prot_len = trailer.protected_len();
        let prot_area = tail.get(..prot_len).unwrap_or_default();
        let embed_pq = self.req.mode == Mode::Embedded && self.req.pq.is_some();

        // The protected bytes that precede the (new) PQ TLV, and which candidate applies.
        let (prot_prefix, want_size) = if embed_pq {
            let mut kept = Vec::new();
            let mut old: Option<&Tlv> = None;
            if let Some(a) = &trailer.protected {
                for t in &a.tlvs {
                    if t.kind == TLV_FWSEAL_PQ_SIG {
                        if old.is_some() {
                            return Err(bad(
                                end + t.at as u64,
                                "more than one fwseal PQ signature TLV",
                            ));
                        }
                        old = Some(t);
                    } else {
                        kept.extend_from_slice(t.raw(&tail));
                    }
                }
            }
            let l = self.req.pq.map(pq_tlv_len).transpose()?.unwrap_or(0);
            let size = 4 + kept.len() + l;
            let size = u16::try_from(size).map_err(|_| {
                FormatError::Unsupported("protected TLV area would exceed 64 KiB".into())
            })?;
            let mut p = TLV_PROT_INFO_MAGIC.to_le_bytes().to_vec();
            p.extend_from_slice(&size.to_le_bytes());
            p.extend_from_slice(&kept);
            (p, size)
        } else {
            (prot_area.to_vec(), hdr.protect_tlv_size)
        };
        let per = self.algs().len();
        let (i, cand) = self
            .cands
            .into_iter()
            .enumerate()
            .find(|(_, c)| c.prot_size == want_size)
            .ok_or_else(|| {
                FormatError::Unsupported(
                    "the image carries a fwseal PQ signature TLV of another algorithm; \
                     re-sign it with the same post-quantum algorithm, or from the unsigned image"
                        .into(),
                )
            })?;
        if let Some(slot) = &self.req.options.mcuboot_slot {
            let image = match self.req.mode {
                // The image is not changed.
                Mode::Detached => self.pos,
                Mode::Embedded => {
                    let hash = image_hash_alg(self.req.classical);
                    let pq = self.req.pq.map(pq_tlv_len).transpose()?.unwrap_or(0);
                    let pq = if embed_pq { pq } else { 0 };
                    let classical = self
                        .req
                        .classical
                        .map(|c| classical_tlvs_max(c, self.req.options.mcuboot_public_key, hash))
                        .transpose()?
                        .unwrap_or(0);
                    let unprot = 4 + 4 + hash.len() + classical;
                    (cand.header.len() + prot_prefix.len() + pq + unprot) as u64
                        + u64::from(hdr.img_size)
                }
            };
            slot.check(self.pos, image)?;
        }
        let mut hashers: Vec<Hasher> = self
            .states
            .into_states()
            .into_iter()
            .skip(i * per)
            .take(per)
            .collect();
        for h in &mut hashers {
            h.update(&prot_prefix);
        }
        Ok(Box::new(McubootPlan {
            req: self.req,
            header: cand.header,
            body: (u64::from(hdr.hdr_size), u64::from(hdr.img_size)),
            prot_prefix,
            hashers,
        }))
    }
}

/// A prepared MCUboot image.
pub struct McubootPlan {
    req: Request,
    header: Vec<u8>,
    body: (u64, u64),
    /// Embedded hybrid: protected info header + kept TLVs (the PQ TLV follows). Otherwise the
    /// protected area as it is.
    prot_prefix: Vec<u8>,
    /// States after `header ‖ body ‖ prot_prefix`.
    hashers: Vec<Hasher>,
}

impl McubootPlan {
    fn state(&self, alg: DigestAlg) -> Result<Hasher, FormatError> {
        self.hashers
            .iter()
            .find(|h| h.alg() == alg)
            .cloned()
            .ok_or_else(|| FormatError::Misuse(format!("no {alg} state for this request")))
    }

    fn digests(&self) -> Digests {
        Digests(
            self.hashers
                .iter()
                .map(|h| (h.alg(), h.clone().finish()))
                .collect(),
        )
    }

    fn hash_alg(&self) -> DigestAlg {
        image_hash_alg(self.req.classical)
    }

    fn embed_pq(&self) -> bool {
        self.req.mode == Mode::Embedded && self.req.pq.is_some()
    }

    /// The PQ TLV bytes for `pq`, checked against the request.
    fn pq_tlv_checked(&self, pq: Option<&Signature>) -> Result<Vec<u8>, FormatError> {
        if !self.embed_pq() {
            return Ok(Vec::new());
        }
        let want = self.req.pq.unwrap_or(SigAlg::MlDsa65);
        let sig = pq.ok_or_else(|| {
            FormatError::Misuse("the MCUboot classical message needs the PQ signature".into())
        })?;
        if sig.alg != want || Some(sig.bytes.len()) != want.fixed_signature_len() {
            return Err(FormatError::Misuse(format!(
                "PQ signature is {} of {} bytes, the plan reserved {want}",
                sig.alg,
                sig.bytes.len()
            )));
        }
        pq_tlv(sig)
    }

    fn image_hash(&self, pq: Option<&Signature>) -> Result<Vec<u8>, FormatError> {
        let mut h = self.state(self.hash_alg())?;
        h.update(&self.pq_tlv_checked(pq)?);
        Ok(h.finish())
    }
}

/// The key TLV for the classical signature `sig`: KEYHASH (`hash` over the key's MCUboot
/// encoding) or PUBKEY (the encoding itself).
fn key_tlv(
    format: PublicKeyFormat,
    hash: DigestAlg,
    sig: &Signature,
    set: &SignatureSet,
) -> Result<Vec<u8>, FormatError> {
    let Some(spki) = set.public_key_for(&sig.key_id) else {
        // SHA-256 over the SPKI DER is both our key id and imgtool's KEYHASH for P-256.
        if sig.alg == SigAlg::EcdsaP256Sha256 && format == PublicKeyFormat::Hash {
            return tlv_bytes(TLV_KEYHASH, &sig.key_id.0);
        }
        return Err(FormatError::Misuse(format!(
            "the MCUboot key TLV for {} needs the public key in SignatureSet.public_keys",
            sig.alg
        )));
    };
    let key = public_key_bytes(sig.alg, spki)?;
    match format {
        PublicKeyFormat::Hash => tlv_bytes(TLV_KEYHASH, &hash.hash(&key)),
        PublicKeyFormat::Full => tlv_bytes(TLV_PUBKEY, &key),
    }
}

impl Prepared for McubootPlan {
    fn format(&self) -> Format {
        Format::Mcuboot
    }
    fn request(&self) -> &Request {
        &self.req
    }
    /// `ih_ver` from the header (the request's version is not written into MCUboot images).
    fn image_version(&self) -> Option<ImageVersion> {
        Header::parse(&self.header).ok().map(|h| h.version)
    }
    /// The image hash over `header ‖ body ‖ protected area` as far as it is known before signing:
    /// exact in detached and classical-only modes; in embedded hybrid mode it stops before the PQ
    /// TLV (the final image hash also covers the PQ signature).
    fn digest(&self) -> (DigestAlg, Vec<u8>) {
        let a = self.hash_alg();
        (a, self.state(a).map(|h| h.finish()).unwrap_or_default())
    }
    fn pq_message(&self, alg: SigAlg) -> Result<SignedMessage, FormatError> {
        match self.req.mode {
            Mode::Detached => detached::message(Format::Mcuboot, alg, &self.digests()),
            Mode::Embedded => {
                let da = alg.digest_alg();
                Ok(pq_message_for(da, &self.state(da)?.finish()))
            }
        }
    }
    fn classical_needs_pq(&self) -> bool {
        self.req.mode == Mode::Embedded && self.req.pq.is_some()
    }
    fn classical_message(
        &self,
        alg: SigAlg,
        pq: Option<&Signature>,
    ) -> Result<SignedMessage, FormatError> {
        match self.req.mode {
            Mode::Detached => detached::message(Format::Mcuboot, alg, &self.digests()),
            Mode::Embedded => Ok(SignedMessage::Prehashed {
                alg: self.hash_alg(),
                digest: self.image_hash(pq)?,
            }),
        }
    }
    fn embed(&self, set: &SignatureSet) -> Result<Vec<Part>, FormatError> {
        if self.req.mode != Mode::Embedded {
            return Err(FormatError::Misuse(
                "embed called on a detached-mode plan".into(),
            ));
        }
        let pq = set.post_quantum();
        let pq_tlv = self.pq_tlv_checked(pq)?;
        let hash = self.hash_alg();
        let mut h = self.state(hash)?;
        h.update(&pq_tlv);
        let image_hash = h.finish();

        let mut unprot = tlv_bytes(hash_tlv(hash), &image_hash)?;
        if let Some(alg) = self.req.classical {
            let sig = set
                .classical()
                .filter(|s| s.alg == alg)
                .ok_or_else(|| FormatError::Misuse(format!("no {alg} signature in the set")))?;
            unprot.extend(key_tlv(
                self.req.options.mcuboot_public_key,
                hash,
                sig,
                set,
            )?);
            let kind = match (sig.alg, sig.bytes.len()) {
                (SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384, _) => TLV_ECDSA_SIG,
                (SigAlg::RsaPssSha256, 256) => TLV_RSA2048_PSS,
                (SigAlg::RsaPssSha256, 384) => TLV_RSA3072_PSS,
                (a, n) => {
                    return Err(FormatError::Unsupported(format!(
                        "MCUboot has no signature TLV for {a} with {n}-byte signatures \
                         (supported: ECDSA P-256/P-384, RSA-PSS 2048/3072)"
                    )))
                }
            };
            unprot.extend(tlv_bytes(kind, &sig.bytes)?);
        }
        let tot = u16::try_from(unprot.len() + 4)
            .map_err(|_| FormatError::Unsupported("unprotected TLV area over 64 KiB".into()))?;
        let mut trailer = self.prot_prefix.clone();
        trailer.extend_from_slice(&pq_tlv);
        trailer.extend_from_slice(&TLV_INFO_MAGIC.to_le_bytes());
        trailer.extend_from_slice(&tot.to_le_bytes());
        trailer.extend_from_slice(&unprot);
        Ok(vec![
            Part::Bytes(self.header.clone()),
            Part::Input {
                start: self.body.0,
                len: self.body.1,
            },
            Part::Bytes(trailer),
        ])
    }
}

/// A fully parsed image held in memory.
struct Parsed<'a> {
    hdr: Header,
    /// Offset of the trailer (= body end).
    base: usize,
    tail: &'a [u8],
    trailer: Trailer,
}

fn parse(data: &[u8]) -> Result<Parsed<'_>, FormatError> {
    let hdr = Header::parse(data)?;
    if data.len() < usize::from(hdr.hdr_size) {
        return Err(bad(
            data.len() as u64,
            format!(
                "truncated: ih_hdr_size is {} but the file ends at {}",
                hdr.hdr_size,
                data.len()
            ),
        ));
    }
    let end = hdr.body_end();
    let base = usize::try_from(end)
        .ok()
        .filter(|e| *e <= data.len())
        .ok_or_else(|| {
            bad(
                data.len() as u64,
                format!(
                    "truncated body: ih_img_size {} puts the body end at {end}, file ends at {}",
                    hdr.img_size,
                    data.len()
                ),
            )
        })?;
    let tail = data.get(base..).unwrap_or_default();
    if tail.len() > MAX_TAIL {
        return Err(bad(
            end + MAX_TAIL as u64,
            "more than 128 KiB after the image body: not MCUboot TLV areas",
        ));
    }
    let trailer = parse_trailer(tail, end, &hdr)?;
    Ok(Parsed {
        hdr,
        base,
        tail,
        trailer,
    })
}

fn trim_ecdsa(sig: &[u8]) -> Vec<u8> {
    // Old imgtool (--pad-sig) zero-pads ECDSA DER to a fixed length; keep the DER only.
    match sig {
        [0x30, l, ..] if *l < 0x80 && usize::from(*l) + 2 <= sig.len() => {
            sig[..usize::from(*l) + 2].to_vec()
        }
        _ => sig.to_vec(),
    }
}

/// Extract the signatures of a signed image, after checking its image hash TLV.
pub fn extract(data: &[u8]) -> Result<Extracted, FormatError> {
    let p = parse(data)?;
    if p.hdr.encrypted() {
        return Err(FormatError::Unsupported(
            "encrypted MCUboot image: the hash is over the plaintext".into(),
        ));
    }
    let unprot = p
        .trailer
        .unprotected
        .as_ref()
        .ok_or(FormatError::NotSigned(Format::Mcuboot))?;
    let abs = |o: usize| (p.base + o) as u64;
    let hashed = data
        .get(..p.base + p.trailer.protected_len())
        .unwrap_or_default();
    let mut image_hash: Option<(DigestAlg, Vec<u8>)> = None;
    let mut keyhash = None;
    for t in &unprot.tlvs {
        if let Some(a) = hash_of_tlv(t.kind) {
            let v = t.value(p.tail);
            let d = a.hash(hashed);
            if v != d.as_slice() {
                return Err(bad(
                    abs(t.at),
                    format!(
                        "{} TLV {} does not match the image ({})",
                        a,
                        hex::encode(v),
                        hex::encode(&d)
                    ),
                ));
            }
            image_hash.get_or_insert((a, d));
        } else if t.kind == TLV_KEYHASH || t.kind == TLV_PUBKEY {
            keyhash = Some((t.kind, t.value(p.tail).to_vec()));
        }
    }
    let (hash_alg, hash) = image_hash
        .ok_or_else(|| bad(abs(unprot.at), "no image hash TLV (SHA256/SHA384/SHA512)"))?;
    // MCUboot hashes the key with the image hash algorithm.
    let key_hint = keyhash.map(|(kind, value)| match kind {
        TLV_PUBKEY => KeyHint::McubootPubKey(value),
        _ => KeyHint::McubootKeyHash {
            alg: hash_alg,
            value,
        },
    });
    let mut signatures = Vec::new();
    for t in &unprot.tlvs {
        let alg = match (t.kind, hash_alg) {
            (TLV_ECDSA_SIG, DigestAlg::Sha256) => SigAlg::EcdsaP256Sha256,
            (TLV_ECDSA_SIG, DigestAlg::Sha384) => SigAlg::EcdsaP384Sha384,
            (TLV_RSA2048_PSS | TLV_RSA3072_PSS, DigestAlg::Sha256) => SigAlg::RsaPssSha256,
            _ => continue,
        };
        let v = t.value(p.tail);
        signatures.push(FoundSignature {
            alg,
            key_id: None,
            key_hint: key_hint.clone(),
            bytes: if t.kind == TLV_ECDSA_SIG {
                trim_ecdsa(v)
            } else {
                v.to_vec()
            },
            message: SignedMessage::Prehashed {
                alg: hash_alg,
                digest: hash.clone(),
            },
            timestamp: None,
        });
    }
    let mut security_counter = None;
    if let Some(a) = &p.trailer.protected {
        let n = a.tlvs.len();
        for (i, t) in a.tlvs.iter().enumerate() {
            let v = t.value(p.tail);
            if t.kind == TLV_SEC_CNT {
                security_counter = peek_u32_le(v, 0).filter(|_| v.len() == 4);
            }
            if t.kind != TLV_FWSEAL_PQ_SIG {
                continue;
            }
            if i + 1 != n {
                return Err(bad(
                    abs(t.at),
                    "fwseal PQ signature TLV is not the last protected TLV",
                ));
            }
            let id = peek_u16_le(v, 0).unwrap_or(0);
            let alg = SigAlg::from_id(id)
                .filter(|a| a.family() == Family::PostQuantum)
                .ok_or_else(|| {
                    bad(
                        abs(t.at + 4),
                        format!("fwseal PQ TLV names unknown post-quantum algorithm 0x{id:04x}"),
                    )
                })?;
            let key: [u8; 32] = v
                .get(2..34)
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| bad(abs(t.at + 2), "fwseal PQ TLV shorter than 34 bytes"))?;
            let sig = v.get(34..).unwrap_or_default();
            if Some(sig.len()) != alg.fixed_signature_len() {
                return Err(bad(
                    abs(t.at + 2),
                    format!("{alg} signature of {} bytes", sig.len()),
                ));
            }
            let da = alg.digest_alg();
            let covered = data.get(..p.base + t.at).unwrap_or_default();
            signatures.push(FoundSignature {
                alg,
                key_id: Some(KeyId(key)),
                key_hint: None,
                bytes: sig.to_vec(),
                message: pq_message_for(da, &da.hash(covered)),
                timestamp: None,
            });
        }
    }
    if signatures.is_empty() {
        return Err(FormatError::NotSigned(Format::Mcuboot));
    }
    Ok(Extracted {
        format: Format::Mcuboot,
        digest: (hash_alg, hash),
        signatures,
        certificates: vec![],
        product: None,
        image_version: Some(p.hdr.version),
        security_counter,
    })
}

fn tlv_name(kind: u16) -> &'static str {
    match kind {
        TLV_KEYHASH => "KEYHASH",
        TLV_PUBKEY => "PUBKEY",
        TLV_SHA256 => "SHA256",
        TLV_SHA384 => "SHA384",
        TLV_SHA512 => "SHA512",
        TLV_RSA2048_PSS => "RSA2048_PSS",
        0x21 => "ECDSA224",
        TLV_ECDSA_SIG => "ECDSA_SIG",
        TLV_RSA3072_PSS => "RSA3072_PSS",
        TLV_ED25519 => "ED25519",
        0x25 => "SIG_PURE",
        0x30 => "ENC_RSA2048",
        0x31 => "ENC_KW",
        0x32 => "ENC_EC256",
        0x33 => "ENC_X25519",
        0x34 => "ENC_X25519_SHA512",
        0x40 => "DEPENDENCY",
        TLV_SEC_CNT => "SEC_CNT",
        0x60 => "BOOT_RECORD",
        0x70 => "DECOMP_SIZE",
        0x71 => "DECOMP_SHA",
        0x72 => "DECOMP_SIGNATURE",
        0x73 => "COMP_DEC_SIZE",
        0x74 => "UUID_VID",
        0x75 => "UUID_CID",
        TLV_FWSEAL_PQ_SIG => "FWSEAL_PQ_SIG (vendor)",
        _ => "unknown",
    }
}

/// A human summary: header fields and every TLV.
pub fn describe(data: &[u8]) -> Result<String, FormatError> {
    use std::fmt::Write as _;
    let p = parse(data)?;
    let h = &p.hdr;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "MCUboot image, {} bytes: version {}, load address 0x{:08x}, flags 0x{:08x}",
        data.len(),
        h.version,
        h.load_addr,
        h.flags
    );
    let _ = writeln!(
        s,
        "  header 0x{:x} bytes, body 0x{:x} bytes at 0x{:x}, protected TLV area 0x{:x} bytes",
        h.hdr_size, h.img_size, h.hdr_size, h.protect_tlv_size
    );
    for (name, area) in [
        ("protected", &p.trailer.protected),
        ("unprotected", &p.trailer.unprotected),
    ] {
        let Some(a) = area else {
            let _ = writeln!(s, "  no {name} TLV area");
            continue;
        };
        let _ = writeln!(
            s,
            "  {name} TLV area at 0x{:x}, 0x{:x} bytes:",
            p.base + a.at,
            a.tot
        );
        for t in &a.tlvs {
            let v = t.value(p.tail);
            let shown = if v.len() <= 48 {
                hex::encode(v)
            } else {
                format!("{}…", hex::encode(&v[..16]))
            };
            let _ = writeln!(
                s,
                "    0x{:04x} {:<22} len {:>5}  {shown}",
                t.kind,
                tlv_name(t.kind),
                t.len
            );
        }
    }
    Ok(s)
}
