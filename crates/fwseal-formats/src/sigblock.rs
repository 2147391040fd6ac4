//! The fwseal signature block: a self-describing trailer carrying digests, metadata and 1..n
//! signatures. Used by raw images (appended), Intel HEX (as data records), DFU (before the suffix)
//! and DfuSe (as an extra element). The byte-level contract is `formats/signature-block.md`.

use crate::reader::{peek_u16_le, peek_u32_le, Reader};
use crate::{
    Extracted, Format, FormatError, FoundSignature, ImageVersion, Part, Prepared, Request,
};
use fwseal_crypto::{DigestAlg, Digests, KeyId, SigAlg, Signature, SignatureSet, SignedMessage};

/// Header magic.
pub const MAGIC: [u8; 4] = *b"FWSB";
/// Footer magic (the last 8 bytes of a block).
pub const FOOTER_MAGIC: [u8; 8] = *b"fwsealSB";
/// Block format version.
pub const VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 16;
/// Footer length.
pub const FOOTER_LEN: usize = 16;
/// Upper bound on a block (the largest SLH-DSA signature is ~50 KB; several fit).
pub const MAX_BLOCK_LEN: usize = 1 << 20;

/// Protected TLV: format id (1 byte).
pub const TLV_FORMAT: u16 = 0x0001;
/// Protected TLV: digest (1-byte digest alg id ‖ digest).
pub const TLV_DIGEST: u16 = 0x0002;
/// Protected TLV: product id (UTF-8, 1..=255 bytes).
pub const TLV_PRODUCT: u16 = 0x0003;
/// Protected TLV: image version (u8 major, u8 minor, u16 revision, u32 build).
pub const TLV_IMAGE_VERSION: u16 = 0x0004;
/// Protected TLV: security counter (u32).
pub const TLV_SECURITY_COUNTER: u16 = 0x0005;
/// Protected TLV: image range covered by the digests (u64 start address, u64 length).
pub const TLV_IMAGE_RANGE: u16 = 0x0006;
/// Protected TLV: gap fill byte of a sparse image (1 byte; Intel HEX).
pub const TLV_FILL: u16 = 0x0007;
/// Unprotected TLV: signature (u16 alg id, u16 reserved, 32-byte key id, signature).
pub const TLV_SIGNATURE: u16 = 0x0101;

/// The signed metadata of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    /// Format of the image the block belongs to.
    pub format: Format,
    /// Digests of the image, one per algorithm, in the order written.
    pub digests: Vec<(DigestAlg, Vec<u8>)>,
    /// Product id.
    pub product: String,
    /// Image version.
    pub image_version: Option<ImageVersion>,
    /// Security counter.
    pub security_counter: Option<u32>,
    /// The byte that filled gaps when the digests were computed (sparse images: Intel HEX).
    pub fill: Option<u8>,
    /// What the digests cover: start address and length.
    pub range: (u64, u64),
}

fn tlv(out: &mut Vec<u8>, t: u16, v: &[u8]) -> Result<(), FormatError> {
    let len = u32::try_from(v.len()).map_err(|_| FormatError::Misuse("TLV too long".into()))?;
    out.extend_from_slice(&t.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(v);
    Ok(())
}

impl BlockMeta {
    /// The protected TLV area exactly as written.
    pub fn protected_area(&self) -> Result<Vec<u8>, FormatError> {
        let mut p = Vec::new();
        tlv(&mut p, TLV_FORMAT, &[self.format.id()])?;
        for (alg, d) in &self.digests {
            let mut v = vec![alg.id()];
            v.extend_from_slice(d);
            tlv(&mut p, TLV_DIGEST, &v)?;
        }
        if self.product.is_empty() || self.product.len() > 255 {
            return Err(FormatError::Misuse(
                "product id must be 1..=255 bytes".into(),
            ));
        }
        tlv(&mut p, TLV_PRODUCT, self.product.as_bytes())?;
        if let Some(v) = self.image_version {
            let mut b = vec![v.major, v.minor];
            b.extend_from_slice(&v.revision.to_le_bytes());
            b.extend_from_slice(&v.build.to_le_bytes());
            tlv(&mut p, TLV_IMAGE_VERSION, &b)?;
        }
        if let Some(c) = self.security_counter {
            tlv(&mut p, TLV_SECURITY_COUNTER, &c.to_le_bytes())?;
        }
        let mut r = self.range.0.to_le_bytes().to_vec();
        r.extend_from_slice(&self.range.1.to_le_bytes());
        tlv(&mut p, TLV_IMAGE_RANGE, &r)?;
        if let Some(f) = self.fill {
            tlv(&mut p, TLV_FILL, &[f])?;
        }
        Ok(p)
    }

    /// The digest for `alg`, if recorded.
    pub fn digest(&self, alg: DigestAlg) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, d)| d.as_slice())
    }
}

/// The domain-separation prefix: `"fwseal/sigblock/v1/" ‖ format name ‖ 0x00`.
pub fn domain(format: Format) -> Vec<u8> {
    let mut m = b"fwseal/sigblock/v1/".to_vec();
    m.extend_from_slice(format.name().as_bytes());
    m.push(0);
    m
}

/// The message every signature in a block signs: `domain(format) ‖ protected area`.
pub fn message_from_protected(format: Format, protected: &[u8]) -> Vec<u8> {
    let mut m = domain(format);
    m.extend_from_slice(protected);
    m
}

/// The [`SignedMessage`] for one algorithm: classical algorithms hash it with their own hash,
/// post-quantum ones sign it directly (empty context).
pub fn signed_message(meta: &BlockMeta) -> Result<SignedMessage, FormatError> {
    Ok(SignedMessage::Bytes(message_from_protected(
        meta.format,
        &meta.protected_area()?,
    )))
}

/// The message a signature-block format signs with `alg`: the block message in embedded mode,
/// the standard detached message (over the same digests) in detached mode. Shared by every
/// format that carries the fwseal signature block (raw, Intel HEX, DFU).
pub fn plan_message(
    mode: crate::Mode,
    meta: &BlockMeta,
    alg: SigAlg,
    digests: &fwseal_crypto::Digests,
) -> Result<SignedMessage, FormatError> {
    match mode {
        crate::Mode::Embedded => signed_message(meta),
        crate::Mode::Detached => crate::detached::message(meta.format, alg, digests),
    }
}

/// The block metadata fwseal writes for `req` over `digests` (all computed digests, primary first).
pub fn block_meta(
    format: Format,
    req: &Request,
    digests: &Digests,
    range: (u64, u64),
) -> BlockMeta {
    BlockMeta {
        format,
        digests: digests.0.clone(),
        product: req.options.product.clone(),
        image_version: req.options.image_version,
        security_counter: req.options.security_counter,
        range,
        fill: None,
    }
}

/// Where a signature-block format puts the encoded block in its output.
pub(crate) trait Layout: Send + Sync {
    /// The signed image as parts over the input, with `block` (the encoded signature block)
    /// where the format carries it.
    fn embed(&self, block: Vec<u8>) -> Result<Vec<Part>, FormatError>;
}

/// The signing plan every signature-block format (raw, Intel HEX, DFU) shares: both halves
/// sign the block message (embedded) or the detached message (detached) over the same digests;
/// only where the block goes ([`Layout`]) differs.
pub(crate) struct BlockPlan<L> {
    /// Format of the image.
    pub format: Format,
    /// The request.
    pub req: Request,
    /// Every computed digest (primary first).
    pub digests: Digests,
    /// The format's primary digest (what [`Prepared::digest`] reports).
    pub primary: DigestAlg,
    /// What the digests cover: start address and length.
    pub range: (u64, u64),
    /// Gap fill byte recorded in the block (sparse images).
    pub fill: Option<u8>,
    /// Where the block goes.
    pub layout: L,
}

impl<L> BlockPlan<L> {
    fn meta(&self) -> BlockMeta {
        let mut m = block_meta(self.format, &self.req, &self.digests, self.range);
        m.fill = self.fill;
        m
    }

    fn message(&self, alg: SigAlg) -> Result<SignedMessage, FormatError> {
        plan_message(self.req.mode, &self.meta(), alg, &self.digests)
    }
}

impl<L: Layout> Prepared for BlockPlan<L> {
    fn format(&self) -> Format {
        self.format
    }
    fn request(&self) -> &Request {
        &self.req
    }
    fn digest(&self) -> (DigestAlg, Vec<u8>) {
        (
            self.primary,
            self.digests.get(self.primary).unwrap_or_default().to_vec(),
        )
    }
    fn pq_message(&self, alg: SigAlg) -> Result<SignedMessage, FormatError> {
        self.message(alg)
    }
    fn classical_message(
        &self,
        alg: SigAlg,
        _pq: Option<&Signature>,
    ) -> Result<SignedMessage, FormatError> {
        self.message(alg)
    }
    fn embed(&self, set: &SignatureSet) -> Result<Vec<Part>, FormatError> {
        self.layout.embed(encode(&self.meta(), set)?)
    }
    /// The default document, plus `extra.fill` where the block would record FILL (a sparse
    /// image): its digests depend on the gap byte, so a verifier needs no product setting.
    fn detached(&self, set: &SignatureSet) -> Result<crate::detached::DetachedDoc, FormatError> {
        let mut doc = crate::detached::DetachedDoc::new(self, set);
        if let Some(f) = self.fill {
            doc.extra.insert("fill".into(), f.into());
        }
        Ok(doc)
    }
}

/// Encode a complete block (header, protected area, signatures, footer).
pub fn encode(meta: &BlockMeta, set: &SignatureSet) -> Result<Vec<u8>, FormatError> {
    if set.signatures.is_empty() {
        return Err(FormatError::Misuse("signature set is empty".into()));
    }
    let prot = meta.protected_area()?;
    let mut unprot = Vec::new();
    for s in &set.signatures {
        let mut v = s.alg.id().to_le_bytes().to_vec();
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&s.key_id.0);
        v.extend_from_slice(&s.bytes);
        tlv(&mut unprot, TLV_SIGNATURE, &v)?;
    }
    let total = HEADER_LEN + prot.len() + unprot.len() + FOOTER_LEN;
    if total > MAX_BLOCK_LEN {
        return Err(FormatError::Misuse(format!(
            "signature block of {total} bytes exceeds {MAX_BLOCK_LEN}"
        )));
    }
    let as_u32 =
        |n: usize| u32::try_from(n).map_err(|_| FormatError::Misuse("block too long".into()));
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(&as_u32(prot.len())?.to_le_bytes());
    out.extend_from_slice(&as_u32(unprot.len())?.to_le_bytes());
    out.extend_from_slice(&prot);
    out.extend_from_slice(&unprot);
    out.extend_from_slice(&as_u32(total)?.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&FOOTER_MAGIC);
    Ok(out)
}

/// A decoded block.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Signed metadata.
    pub meta: BlockMeta,
    /// The protected area bytes as found (what the signatures cover).
    pub protected: Vec<u8>,
    /// Signatures.
    pub signatures: Vec<Signature>,
}

impl Decoded {
    /// What [`crate::extract`] reports for an image carrying this block (digests checked by the
    /// caller): the first recorded digest is the primary one.
    pub fn extracted(&self) -> Result<Extracted, FormatError> {
        let digest = self.meta.digests.first().cloned().ok_or_else(|| {
            FormatError::Misuse("decoded signature block without a digest".into())
        })?;
        Ok(Extracted {
            format: self.meta.format,
            digest,
            signatures: self.found(),
            certificates: vec![],
            product: Some(self.meta.product.clone()),
            image_version: self.meta.image_version,
            security_counter: self.meta.security_counter,
        })
    }

    /// Signatures with the message each must verify against.
    pub fn found(&self) -> Vec<FoundSignature> {
        let m = message_from_protected(self.meta.format, &self.protected);
        self.signatures
            .iter()
            .map(|s| FoundSignature {
                alg: s.alg,
                key_id: Some(s.key_id),
                key_hint: None,
                bytes: s.bytes.clone(),
                message: SignedMessage::Bytes(m.clone()),
                timestamp: None,
            })
            .collect()
    }
}

/// Iterate the TLVs of an area; `base` is the area's offset in the file (for errors).
/// One TLV: (type, file offset of its header, value).
type Tlv<'a> = (u16, u64, &'a [u8]);

fn tlvs(format: Format, area: &[u8], base: u64) -> Result<Vec<Tlv<'_>>, FormatError> {
    let mut out = Vec::new();
    let mut r = Reader::new(format, area, base);
    while r.pos() < area.len() {
        let at = base + r.pos() as u64;
        let head = r.bytes(8, "truncated signature-block TLV header")?;
        let mut h = Reader::new(format, head, at);
        let (t, reserved, l) = (h.u16_le("")?, h.u16_le("")?, h.u32_le("")? as usize);
        if reserved != 0 {
            return Err(FormatError::at(
                format,
                at + 2,
                "signature-block TLV reserved field is not zero",
            ));
        }
        let v = r.bytes(l, "").map_err(|_| {
            FormatError::at(
                format,
                at + 4,
                format!("signature-block TLV length {l} runs past its area"),
            )
        })?;
        out.push((t, at, v));
    }
    Ok(out)
}

/// Decode a block that occupies exactly `block`; `base` is its offset in the file.
pub fn decode(format: Format, block: &[u8], base: u64) -> Result<Decoded, FormatError> {
    let e = |off: usize, what: &str| FormatError::at(format, base + off as u64, what.to_string());
    if block.len() < HEADER_LEN + FOOTER_LEN {
        return Err(e(0, "signature block shorter than header and footer"));
    }
    if block[..4] != MAGIC {
        return Err(e(0, "signature block header magic is not \"FWSB\""));
    }
    let version = peek_u16_le(block, 4).unwrap_or(0);
    if version != VERSION {
        return Err(e(
            4,
            &format!("unsupported signature block version {version}"),
        ));
    }
    if peek_u16_le(block, 6) != Some(HEADER_LEN as u16) {
        return Err(e(6, "signature block header length is not 16"));
    }
    let p = peek_u32_le(block, 8).unwrap_or(0) as usize;
    let u = peek_u32_le(block, 12).unwrap_or(0) as usize;
    let want = HEADER_LEN
        .checked_add(p)
        .and_then(|x| x.checked_add(u))
        .and_then(|x| x.checked_add(FOOTER_LEN));
    if want != Some(block.len()) {
        return Err(e(
            8,
            "signature block area lengths disagree with the block length",
        ));
    }
    let foot = block.len() - FOOTER_LEN;
    if peek_u32_le(block, foot) != Some(block.len() as u32) || block[foot + 8..] != FOOTER_MAGIC {
        return Err(e(foot, "signature block footer is inconsistent"));
    }
    if peek_u32_le(block, foot + 4) != Some(0) {
        return Err(e(
            foot + 4,
            "signature block footer reserved field is not zero",
        ));
    }
    let protected = &block[HEADER_LEN..HEADER_LEN + p];
    let unprotected = &block[HEADER_LEN + p..HEADER_LEN + p + u];

    let mut fmt = None;
    let mut digests: Vec<(DigestAlg, Vec<u8>)> = Vec::new();
    let mut product = None;
    let mut image_version = None;
    let mut security_counter = None;
    let mut range = None;
    let mut fill = None;
    for (t, at, v) in tlvs(format, protected, base + HEADER_LEN as u64)? {
        let bad = |what: &str| FormatError::at(format, at, what.to_string());
        let dup = |seen: bool| {
            if seen {
                Err(bad("duplicate signature-block TLV"))
            } else {
                Ok(())
            }
        };
        match t {
            TLV_FORMAT => {
                dup(fmt.is_some())?;
                if v.len() != 1 {
                    return Err(bad("FORMAT TLV must be 1 byte"));
                }
                fmt = Some(Format::from_id(v[0]).ok_or_else(|| bad("unknown format id"))?);
            }
            TLV_DIGEST => {
                let (&id, d) = v.split_first().ok_or_else(|| bad("empty DIGEST TLV"))?;
                let alg =
                    DigestAlg::from_id(id).ok_or_else(|| bad("unknown digest algorithm id"))?;
                if d.len() != alg.len() {
                    return Err(bad("DIGEST TLV length does not match its algorithm"));
                }
                if digests.iter().any(|(a, _)| *a == alg) {
                    return Err(bad("duplicate DIGEST TLV for one algorithm"));
                }
                digests.push((alg, d.to_vec()));
            }
            TLV_PRODUCT => {
                dup(product.is_some())?;
                let s = std::str::from_utf8(v).map_err(|_| bad("PRODUCT is not UTF-8"))?;
                if s.is_empty() || s.len() > 255 {
                    return Err(bad("PRODUCT must be 1..=255 bytes"));
                }
                product = Some(s.to_string());
            }
            TLV_IMAGE_VERSION => {
                dup(image_version.is_some())?;
                if v.len() != 8 {
                    return Err(bad("IMAGE_VERSION TLV must be 8 bytes"));
                }
                image_version = Some(ImageVersion {
                    major: v[0],
                    minor: v[1],
                    revision: peek_u16_le(v, 2).unwrap_or(0),
                    build: peek_u32_le(v, 4).unwrap_or(0),
                });
            }
            TLV_SECURITY_COUNTER => {
                dup(security_counter.is_some())?;
                security_counter = Some(
                    peek_u32_le(v, 0)
                        .filter(|_| v.len() == 4)
                        .ok_or_else(|| bad("SECURITY_COUNTER TLV must be 4 bytes"))?,
                );
            }
            TLV_IMAGE_RANGE => {
                dup(range.is_some())?;
                if v.len() != 16 {
                    return Err(bad("IMAGE_RANGE TLV must be 16 bytes"));
                }
                let mut r = Reader::new(format, v, at);
                range = Some((r.u64_le("")?, r.u64_le("")?));
            }
            TLV_FILL => {
                dup(fill.is_some())?;
                if format != Format::Ihex {
                    return Err(bad(&format!(
                        "FILL TLV in a {format} block (only Intel HEX images have gaps)"
                    )));
                }
                match v {
                    [f] => fill = Some(*f),
                    _ => return Err(bad("FILL TLV must be 1 byte")),
                }
            }
            _ => {
                return Err(bad(&format!(
                    "unknown protected signature-block TLV type 0x{t:04x}"
                )))
            }
        }
    }
    let fmt = fmt.ok_or_else(|| e(HEADER_LEN, "signature block has no FORMAT TLV"))?;
    if fmt != format {
        return Err(e(
            HEADER_LEN,
            &format!("signature block is for {fmt}, image is {format}"),
        ));
    }
    if digests.is_empty() {
        return Err(e(HEADER_LEN, "signature block has no DIGEST TLV"));
    }
    let product = product.ok_or_else(|| e(HEADER_LEN, "signature block has no PRODUCT TLV"))?;
    let range = range.ok_or_else(|| e(HEADER_LEN, "signature block has no IMAGE_RANGE TLV"))?;

    let mut signatures = Vec::new();
    for (t, at, v) in tlvs(format, unprotected, base + (HEADER_LEN + p) as u64)? {
        let bad = |what: &str| FormatError::at(format, at, what.to_string());
        if t != TLV_SIGNATURE {
            return Err(bad(&format!(
                "unknown unprotected signature-block TLV type 0x{t:04x}"
            )));
        }
        if v.len() < 37 {
            return Err(bad("SIGNATURE TLV too short"));
        }
        // alg id (u16) ‖ reserved (u16) ‖ key id (32) ‖ signature: at least 37 bytes, so the
        // fixed fields cannot run short.
        let mut r = Reader::new(format, v, at);
        let alg =
            SigAlg::from_id(r.u16_le("")?).ok_or_else(|| bad("unknown signature algorithm id"))?;
        if r.u16_le("")? != 0 {
            return Err(bad("SIGNATURE TLV reserved field is not zero"));
        }
        let mut kid = [0u8; 32];
        kid.copy_from_slice(r.bytes(32, "")?);
        let bytes = r.rest().to_vec();
        if let Some(n) = alg.fixed_signature_len() {
            if bytes.len() != n {
                return Err(bad(&format!(
                    "{alg} signature must be {n} bytes, found {}",
                    bytes.len()
                )));
            }
        }
        let matched = alg.digest_alg();
        if !digests.iter().any(|(a, _)| *a == matched) {
            return Err(bad(&format!(
                "{alg} signature but the block has no {matched} DIGEST TLV (its matched digest)"
            )));
        }
        signatures.push(Signature {
            alg,
            key_id: KeyId(kid),
            bytes,
        });
    }
    if signatures.is_empty() {
        return Err(e(HEADER_LEN + p, "signature block carries no signature"));
    }
    Ok(Decoded {
        meta: BlockMeta {
            format: fmt,
            digests,
            product,
            image_version,
            security_counter,
            range,
            fill,
        },
        protected: protected.to_vec(),
        signatures,
    })
}

/// If `data` ends with a signature block, return the block's start offset. A file whose last 8
/// bytes are not the footer magic has no block (`Ok(None)`); a footer that lies is an error.
pub fn find_trailer(format: Format, data: &[u8]) -> Result<Option<usize>, FormatError> {
    if data.len() < FOOTER_LEN || data[data.len() - 8..] != FOOTER_MAGIC {
        return Ok(None);
    }
    let foot = data.len() - FOOTER_LEN;
    let len = peek_u32_le(data, foot).unwrap_or(0) as usize;
    if len < HEADER_LEN + FOOTER_LEN || len > data.len() || len > MAX_BLOCK_LEN {
        return Err(FormatError::at(
            format,
            foot as u64,
            format!("signature block footer claims a length of {len} bytes"),
        ));
    }
    let start = data.len() - len;
    if data[start..start + 4] != MAGIC {
        return Err(FormatError::at(
            format,
            start as u64,
            "signature block footer points at no \"FWSB\" header",
        ));
    }
    Ok(Some(start))
}

/// Check that every digest recorded in `meta` equals the one recomputed over the image
/// (`recompute(alg)`), and that the range matches.
pub fn check_digests(
    format: Format,
    d: &Decoded,
    block_offset: u64,
    range: (u64, u64),
    mut recompute: impl FnMut(DigestAlg) -> Vec<u8>,
) -> Result<(), FormatError> {
    if d.meta.range != range {
        return Err(FormatError::at(
            format,
            block_offset,
            format!(
                "signature block covers range {:#x}+{} but the image is {:#x}+{}",
                d.meta.range.0, d.meta.range.1, range.0, range.1
            ),
        ));
    }
    for (alg, want) in &d.meta.digests {
        if recompute(*alg) != *want {
            return Err(FormatError::at(
                format,
                block_offset,
                format!("recorded {alg} digest does not match the image"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        BlockMeta {
            format: Format::Raw,
            digests: vec![
                (DigestAlg::Sha256, vec![1; 32]),
                (DigestAlg::Sha512, vec![2; 64]),
            ],
            product: "widget".into(),
            image_version: Some(ImageVersion {
                major: 1,
                minor: 2,
                revision: 3,
                build: 4,
            }),
            security_counter: Some(7),
            range: (0, 100),
            fill: None,
        }
    }

    fn set() -> SignatureSet {
        SignatureSet {
            signatures: vec![
                Signature {
                    alg: SigAlg::EcdsaP256Sha256,
                    key_id: KeyId([9; 32]),
                    bytes: vec![0x30, 1, 2],
                },
                Signature {
                    alg: SigAlg::MlDsa65,
                    key_id: KeyId([8; 32]),
                    bytes: vec![5; 3309],
                },
            ],
            certificates: vec![],
            public_keys: vec![],
            timestamps: vec![],
        }
    }

    #[test]
    fn round_trip() {
        let b = encode(&meta(), &set()).expect("encode");
        let mut file = vec![0u8; 100];
        file.extend_from_slice(&b);
        let start = find_trailer(Format::Raw, &file)
            .expect("find")
            .expect("some");
        assert_eq!(start, 100);
        let d = decode(Format::Raw, &file[start..], start as u64).expect("decode");
        assert_eq!(d.meta, meta());
        assert_eq!(d.signatures, set().signatures);
        assert_eq!(d.protected, meta().protected_area().expect("p"));
    }

    #[test]
    fn every_single_byte_truncation_or_flip_of_the_frame_is_rejected_or_consistent() {
        let b = encode(&meta(), &set()).expect("encode");
        for cut in 0..b.len() {
            let _ = find_trailer(Format::Raw, &b[..cut]);
            assert!(
                decode(Format::Raw, &b[..cut], 0).is_err(),
                "truncated to {cut} accepted"
            );
        }
        // A flipped bit in the header or a TLV header is rejected.
        for i in [0usize, 4, 6, 8, 12, 16, 18, 20] {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(decode(Format::Raw, &c, 0).is_err(), "flip at {i} accepted");
        }
    }

    /// Re-encode `meta` with `set` and decode it as `format`.
    fn decode_as(
        format: Format,
        meta: &BlockMeta,
        set: &SignatureSet,
    ) -> Result<Decoded, FormatError> {
        decode(format, &encode(meta, set).expect("encode"), 0)
    }

    #[test]
    fn a_signature_without_its_matched_digest_is_rejected() {
        // ML-DSA-65 is matched to SHA-512: a block with only a SHA-256 DIGEST is refused.
        let mut m = meta();
        m.digests.retain(|(a, _)| *a == DigestAlg::Sha256);
        let err = decode_as(Format::Raw, &m, &set()).expect_err("no SHA-512 DIGEST");
        assert!(err.to_string().contains("no sha512 DIGEST"), "{err}");
        // ECDSA P-256 alone is matched to SHA-256, which is there.
        let mut ec_only = set();
        ec_only.signatures.truncate(1);
        decode_as(Format::Raw, &m, &ec_only).expect("ECDSA P-256 with SHA-256 only");
    }

    #[test]
    fn fill_is_only_allowed_in_intel_hex_blocks() {
        let mut m = meta();
        m.fill = Some(0xff);
        let err = decode_as(Format::Raw, &m, &set()).expect_err("FILL in a raw block");
        assert!(err.to_string().contains("FILL TLV in a raw block"), "{err}");
        m.format = Format::Dfu;
        assert!(
            decode_as(Format::Dfu, &m, &set()).is_err(),
            "FILL in a dfu block"
        );
        m.format = Format::Ihex;
        let d = decode_as(Format::Ihex, &m, &set()).expect("FILL in an ihex block");
        assert_eq!(d.meta.fill, Some(0xff));
    }

    #[test]
    fn two_signature_tlvs_are_not_a_duplicate() {
        // A hybrid block has two SIGNATURE TLVs; both come back.
        let d = decode_as(Format::Raw, &meta(), &set()).expect("hybrid block");
        assert_eq!(d.signatures.len(), 2);
    }

    #[test]
    fn wrong_format_is_rejected() {
        let b = encode(&meta(), &set()).expect("encode");
        let err = decode(Format::Ihex, &b, 0).expect_err("format mismatch");
        assert!(err.to_string().contains("is for raw"), "{err}");
    }
}

#[cfg(test)]
mod spec_example {
    use super::*;

    /// The worked example in `formats/signature-block.md`.
    #[test]
    fn worked_example_matches_the_spec() {
        let img = [0xde, 0xad, 0xbe, 0xef];
        let meta = BlockMeta {
            format: Format::Raw,
            digests: vec![
                (DigestAlg::Sha256, DigestAlg::Sha256.hash(&img)),
                (DigestAlg::Sha512, DigestAlg::Sha512.hash(&img)),
            ],
            product: "demo".into(),
            image_version: None,
            security_counter: None,
            range: (0, 4),
            fill: None,
        };
        let p = meta.protected_area().expect("protected");
        assert_eq!(p.len(), 159);
        let spec = "01000000010000000102000000210000\
                    00015f78c33274e43fa9de5659265c1d\
                    917e25c03722dcb0b8d27db8d5feaa81\
                    3953020000004100000003";
        assert_eq!(hex::encode(&p[..spec.len() / 2]), spec);
        assert_eq!(
            hex::encode(&p[p.len() - 36..]),
            "0300000004000000\
            64656d6f06000000100000000000000000000000\
            0400000000000000"
        );
        let m = message_from_protected(Format::Raw, &p);
        assert!(m.starts_with(b"fwseal/sigblock/v1/raw\0"));
    }
}
