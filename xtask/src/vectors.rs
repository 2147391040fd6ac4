//! `cargo xtask vectors [--out DIR]`: the conformance kit (issue 16 item 3).
//!
//! Signs one base image per (format, algorithm pair) with the **signing side**
//! (`fwseal_formats::{prepare, sign_prepared, assemble}` + fixed-seed `SoftKey`s), parses it
//! into a TLV list, and derives every broken vector from it by applying one table of mutations
//! ([`MUTATIONS`]) generically. Mutated images are re-sealed (DFU suffix CRC, HEX record
//! checksums, the DfuSe sizes, and — where the entry says so — MCUboot's image hash TLV) so each
//! vector tests the check it names and not a checksum. Writes `manifest.json`, `manifest.tsv`
//! (the C harness's columns), `keys/` and `README.md`.

use anyhow::{bail, Context, Result};
use fwseal_crypto::{soft::SoftKey, DigestAlg, SigAlg, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Mode, Request, SignOptions};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Every verifier of the kit (the `verifiers` field of a vector).
const RUST: &str = "fwseal-verify";
const C: &str = "fwseal-verify-c";
const PY: &str = "python";
const CLI: &str = "fwseal-cli";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fmt {
    Raw,
    Hex,
    Dfu,
    DfuSe,
    Mcuboot,
}

impl Fmt {
    const ALL: [Fmt; 5] = [Fmt::Raw, Fmt::Hex, Fmt::Dfu, Fmt::DfuSe, Fmt::Mcuboot];
    fn name(self) -> &'static str {
        ["raw", "hex", "dfu", "dfuse", "mcuboot"][self as usize]
    }
    fn ext(self) -> &'static str {
        ["bin", "hex", "dfu", "dfu", "img"][self as usize]
    }
    fn fixture(self) -> &'static str {
        [
            "raw/sample.bin",
            "hex/gcc.hex",
            "dfu/dfu11.dfu",
            "dfu/dfuse.dfu",
            "mcuboot/unsigned-seccnt.img",
        ][self as usize]
    }
    fn signing(self) -> fwseal_formats::Format {
        match self {
            Fmt::Raw => fwseal_formats::Format::Raw,
            Fmt::Hex => fwseal_formats::Format::Ihex,
            Fmt::Dfu | Fmt::DfuSe => fwseal_formats::Format::Dfu,
            Fmt::Mcuboot => fwseal_formats::Format::Mcuboot,
        }
    }
}

// ---- keys -------------------------------------------------------------------------------------

struct Key {
    name: String,
    key: SoftKey,
}

fn kit_name(alg: SigAlg) -> &'static str {
    match alg {
        SigAlg::EcdsaP256Sha256 => "p256",
        SigAlg::EcdsaP384Sha384 => "p384",
        other => other.name(),
    }
}

/// Fixed seed bytes: SHA-256("fwseal conformance kit v1/NAME/i") for i = 0, 1, … concatenated.
fn seed(name: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0.. {
        if out.len() >= len {
            break;
        }
        out.extend(
            DigestAlg::Sha256.hash(format!("fwseal conformance kit v1/{name}/{i}").as_bytes()),
        );
    }
    out.truncate(len);
    out
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut o = vec![tag];
    o.extend(der_len(content.len()));
    o.extend_from_slice(content);
    o
}

/// PKCS#8 `OneAsymmetricKey` v0 for `oid` (DER bytes of the OID value) and `private_key`.
fn pkcs8(alg_id: &[u8], private_key: &[u8]) -> Vec<u8> {
    let mut c = vec![0x02, 0x01, 0x00];
    c.extend(der(0x30, alg_id));
    c.extend(der(0x04, private_key));
    der(0x30, &c)
}

const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn make_key(alg: SigAlg, name: &str) -> Result<(SoftKey, Vec<u8>)> {
    let s = |n| seed(name, n);
    let (key, p8) = match alg {
        SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384 => {
            let (curve, n): (&[u8], usize) = if alg == SigAlg::EcdsaP256Sha256 {
                (
                    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                    32,
                )
            } else {
                (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48)
            };
            // RFC 5915 ECPrivateKey { version 1, privateKey } without the optional fields.
            let mut ec = vec![0x02, 0x01, 0x01];
            ec.extend(der(0x04, &s(n)));
            let alg_id = [OID_EC, curve].concat();
            let k = SoftKey::from_pkcs8_der(alg, &pkcs8(&alg_id, &der(0x30, &ec)))?;
            let full = k.to_pkcs8_der()?.to_vec();
            (k, full)
        }
        _ => {
            let n = fwseal_crypto::pq::seed_len(alg).context("seed length")?;
            let seed = s(n);
            let k = SoftKey::from_pq_seed(alg, &seed)?;
            let spki = k.public_key().spki_der().to_vec();
            // The algorithm identifier is the SPKI's (OID, absent parameters).
            let alg_id = &spki[if spki[1] == 0x82 { 4 } else { 2 }..];
            let alg_id = &alg_id[..alg_id[1] as usize + 2];
            let private = if matches!(alg, SigAlg::MlDsa44 | SigAlg::MlDsa65 | SigAlg::MlDsa87) {
                // RFC 9881: ML-DSA-PrivateKey CHOICE, seed [0] IMPLICIT OCTET STRING (32).
                der(0x80, &seed)
            } else {
                // FIPS 205 SK = SK.seed ‖ SK.prf ‖ PK.seed ‖ PK.root (PK.root: from the key).
                let pk = k.public_key().raw()?;
                [&seed[..], &pk[pk.len() / 2..]].concat()
            };
            (k, pkcs8(&alg_id[2..alg_id.len()], &private))
        }
    };
    Ok((key, p8))
}

// ---- the model: a sigblock image or an MCUboot image as TLV lists ----------------------------

#[derive(Clone, Debug)]
struct Tlv {
    t: u16,
    r: u16,
    v: Vec<u8>,
}

/// A signature-block image: the device bytes before the block, and the parsed block.
#[derive(Clone)]
struct Sb {
    prefix: Vec<u8>,
    version: u16,
    hlen: u16,
    prot: Vec<Tlv>,
    unprot: Vec<Tlv>,
    /// Lying lengths: added to the header's P, to the length field of the last unprotected TLV.
    p_delta: i64,
    tlv_len_delta: u32,
    l_len: Option<u32>,
    footer_reserved: u32,
    magic: [u8; 4],
    footer_magic: [u8; 8],
}

/// An MCUboot image: header + body, and the two TLV areas.
#[derive(Clone)]
struct Mcu {
    hb: Vec<u8>,
    prot: Vec<Tlv>,
    unprot: Vec<Tlv>,
    prot_tot: Option<u16>,
    unprot_tot: Option<u16>,
    hdr_prot_size: Option<u16>,
    unprot_magic: u16,
    trailing: Vec<u8>,
}

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn sb_tlvs(mut a: &[u8]) -> Vec<Tlv> {
    let mut out = Vec::new();
    while !a.is_empty() {
        let n = u32le(a, 4) as usize;
        out.push(Tlv {
            t: u16le(a, 0),
            r: u16le(a, 2),
            v: a[8..8 + n].to_vec(),
        });
        a = &a[8 + n..];
    }
    out
}

impl Sb {
    fn parse(device: &[u8]) -> Sb {
        let l = u32le(device, device.len() - 16) as usize;
        let s = device.len() - l;
        let b = &device[s..];
        let (p, u) = (u32le(b, 8) as usize, u32le(b, 12) as usize);
        Sb {
            prefix: device[..s].to_vec(),
            version: u16le(b, 4),
            hlen: u16le(b, 6),
            prot: sb_tlvs(&b[16..16 + p]),
            unprot: sb_tlvs(&b[16 + p..16 + p + u]),
            p_delta: 0,
            tlv_len_delta: 0,
            l_len: None,
            footer_reserved: 0,
            magic: *b"FWSB",
            footer_magic: *b"fwsealSB",
        }
    }
    fn block(&self) -> Vec<u8> {
        let enc = |ts: &[Tlv], lie: u32| -> Vec<u8> {
            let mut o = Vec::new();
            for (i, t) in ts.iter().enumerate() {
                let d = if i + 1 == ts.len() { lie } else { 0 };
                o.extend(t.t.to_le_bytes());
                o.extend(t.r.to_le_bytes());
                o.extend((t.v.len() as u32 + d).to_le_bytes());
                o.extend(&t.v);
            }
            o
        };
        let (p, u) = (enc(&self.prot, 0), enc(&self.unprot, self.tlv_len_delta));
        let mut b = self.magic.to_vec();
        b.extend(self.version.to_le_bytes());
        b.extend(self.hlen.to_le_bytes());
        b.extend(((p.len() as i64 + self.p_delta) as u32).to_le_bytes());
        b.extend((u.len() as u32).to_le_bytes());
        b.extend(p);
        b.extend(u);
        b.extend(self.l_len.unwrap_or(b.len() as u32 + 16).to_le_bytes());
        b.extend(self.footer_reserved.to_le_bytes());
        b.extend(self.footer_magic);
        b
    }
}

fn mcu_tlvs(a: &[u8]) -> Vec<Tlv> {
    let mut out = Vec::new();
    let mut i = 4;
    while i < a.len() {
        let n = u16le(a, i + 2) as usize;
        out.push(Tlv {
            t: u16le(a, i),
            r: 0,
            v: a[i + 4..i + 4 + n].to_vec(),
        });
        i += 4 + n;
    }
    out
}

fn mcu_area(magic: u16, ts: &[Tlv], tot: Option<u16>) -> Vec<u8> {
    let mut body = Vec::new();
    for t in ts {
        body.extend(t.t.to_le_bytes());
        body.extend((t.v.len() as u16).to_le_bytes());
        body.extend(&t.v);
    }
    let mut o = magic.to_le_bytes().to_vec();
    o.extend(tot.unwrap_or(body.len() as u16 + 4).to_le_bytes());
    o.extend(body);
    o
}

const PQ_TLV: u16 = 0x46a0;
const HASH_TLVS: [u16; 3] = [0x10, 0x11, 0x12];

impl Mcu {
    fn parse(img: &[u8]) -> Mcu {
        let b = u16le(img, 8) as usize + u32le(img, 12) as usize;
        let prot = u16le(img, 10) as usize;
        Mcu {
            hb: img[..b].to_vec(),
            prot: mcu_tlvs(&img[b..b + prot]),
            unprot: mcu_tlvs(&img[b + prot..]),
            prot_tot: None,
            unprot_tot: None,
            hdr_prot_size: None,
            unprot_magic: 0x6907,
            trailing: Vec::new(),
        }
    }
    fn prot_area(&self) -> Vec<u8> {
        mcu_area(0x6908, &self.prot, self.prot_tot)
    }
    /// Header (with ih_protect_tlv_size) ‖ body ‖ protected area: what the image hash covers.
    fn hashed(&self) -> Vec<u8> {
        let p = self.prot_area();
        let mut o = self.hb.clone();
        let size = self.hdr_prot_size.unwrap_or(p.len() as u16);
        o[10..12].copy_from_slice(&size.to_le_bytes());
        o.extend(p);
        o
    }
    /// Recompute every image hash TLV (re-sealing the hash after a change to hashed bytes).
    fn rehash(&mut self) {
        let h = self.hashed();
        for t in self.unprot.iter_mut().filter(|t| HASH_TLVS.contains(&t.t)) {
            let alg =
                [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512][usize::from(t.t - 0x10)];
            t.v = alg.hash(&h);
        }
    }
    fn image(&self) -> Vec<u8> {
        let mut o = self.hashed();
        o.extend(mcu_area(self.unprot_magic, &self.unprot, self.unprot_tot));
        o.extend(&self.trailing);
        o
    }
}

// ---- the mutation table ----------------------------------------------------------------------

/// Which TLV an edit targets.
#[derive(Clone, Copy)]
enum Sel {
    /// A protected TLV of this type (first).
    Prot(u16),
    /// The post-quantum signature (sigblock: the SIGNATURE with a PQ alg; MCUboot: FWSEAL_PQ_SIG).
    Pq,
    /// The classical signature (sigblock SIGNATURE; MCUboot ECDSA_SIG).
    Classical,
    /// An unprotected TLV of this type (MCUboot).
    Unprot(u16),
}

#[derive(Clone, Copy)]
enum Edit {
    Keep,
    FlipBody,
    /// Flip a byte of the selected TLV's value at this offset from its start (negative: from
    /// its end).
    Flip(Sel, isize),
    Remove(Sel),
    Duplicate(Sel),
    /// Insert a TLV (type, value length) into the protected area before the selected one, or at
    /// the end (None).
    InsertProt(u16, usize, Option<Sel>),
    InsertUnprot(u16, usize),
    /// Set a little-endian u16 inside the selected TLV's value.
    SetU16(Sel, usize, u16),
    /// Resize a value (truncate / zero-extend).
    Resize(Sel, usize),
    SetReserved(Sel),
    LieProtLen(i64),
    /// The last unprotected TLV's length field says this many bytes more than its value.
    LieTlvLen(u32),
    /// FORMAT set to another known format id.
    OtherFormat,
    LieBlockLen(u32),
    Version(u16),
    HeaderLen(u16),
    FooterReserved,
    Magic,
    FooterMagic,
    /// Keep only the last `L - n` bytes: the image is shorter than the block it ends with.
    TruncateFront(usize),
    /// MCUboot: cut n bytes from the end.
    CutEnd(usize),
    TrailingByte,
    McuHeaderU32(usize, u32),
    McuUnprotTot(i32),
    McuProtMagic,
    McuUnprotMagic,
    McuHdrProtSize(i32),
}

/// How the expected reason depends on the container.
struct Mutation {
    name: &'static str,
    edit: Edit,
    /// MCUboot: recompute the image hash TLV after the edit (so the vector tests what is after
    /// the hash check).
    rehash: bool,
    /// Policy: require, and min_security_counter relative to the image's counter (None: 0).
    require: &'static str,
    counter: Option<i64>,
    /// Keys: "" = the pair's keys, "other-pq" / "other-classical" swap one for its other key.
    keys: &'static str,
    /// Expected reason: signature-block formats, MCUboot (None: does not apply).
    sb: Option<&'static str>,
    mcu: Option<&'static str>,
    what: &'static str,
}

const fn m(
    name: &'static str,
    edit: Edit,
    sb: Option<&'static str>,
    mcu: Option<&'static str>,
    what: &'static str,
) -> Mutation {
    Mutation {
        name,
        edit,
        rehash: false,
        require: "both",
        counter: None,
        keys: "",
        sb,
        mcu,
        what,
    }
}

const B: Option<&str> = None;
const fn s(r: &'static str) -> Option<&'static str> {
    Some(r)
}

use Edit::*;
use Sel::*;

/// The full set, applied to the primary pair of every format. Other pairs get [`SHORT`].
#[rustfmt::skip]
const MUTATIONS: &[Mutation] = &[
    m("valid", Keep, s("ok"), s("ok"), "the image as signed; both halves required"),
    Mutation { require: "pq", ..m("valid-pq-policy", Keep, s("ok"), s("ok"), "policy requires only the PQ half (the classical one present must still verify)") },
    Mutation { require: "classical", ..m("valid-classical-policy", Keep, s("ok"), s("ok"), "policy requires only the classical half") },
    Mutation { counter: Some(0), ..m("counter-equal", Keep, s("ok"), s("ok"), "policy minimum security counter = the image's") },
    Mutation { counter: Some(1), ..m("counter-too-low", Keep, s("security-counter-too-low"), s("security-counter-too-low"), "policy minimum security counter = the image's + 1") },
    m("body-flip", FlipBody, s("digest-mismatch"), s("digest-mismatch"), "one covered image byte flipped"),
    m("classical-sig-flip", Flip(Classical, 44), s("classical-signature-invalid"), s("classical-signature-invalid"), "a byte inside r of the ECDSA signature flipped (still strict DER)"),
    m("pq-sig-flip", Flip(Pq, -20), s("pq-signature-invalid"), s("digest-mismatch"), "a byte of the PQ signature flipped (MCUboot: the image hash covers it)"),
    Mutation { rehash: true, ..m("pq-sig-flip-rehashed", Flip(Pq, -20), B, s("pq-signature-invalid"), "a byte of the PQ signature flipped, image hash TLV recomputed") },
    Mutation { keys: "other-pq", ..m("wrong-pq-key", Keep, s("untrusted-key"), s("untrusted-key"), "the trusted PQ key is another key of the same algorithm") },
    Mutation { keys: "other-classical", ..m("wrong-classical-key", Keep, s("untrusted-key"), s("untrusted-key"), "the trusted classical key is another key of the same algorithm") },
    m("pq-removed", Remove(Pq), s("pq-signature-missing"), B, "the PQ SIGNATURE TLV removed (lengths fixed)"),
    Mutation { require: "classical", ..m("pq-removed-classical-policy", Remove(Pq), s("ok"), B, "PQ SIGNATURE removed, policy requires only the classical half") },
    Mutation { rehash: true, ..m("pq-removed-rehashed", Remove(Pq), B, s("classical-signature-invalid"), "FWSEAL_PQ_SIG removed and the image hash recomputed: the ECDSA signature covered the old hash") },
    m("classical-removed", Remove(Classical), s("classical-signature-missing"), s("classical-signature-missing"), "the classical signature TLV removed"),
    Mutation { require: "pq", ..m("classical-removed-pq-policy", Remove(Classical), s("ok"), s("ok"), "classical signature removed, policy requires only the PQ half") },
    m("pq-sig-duplicated", Duplicate(Pq), s("ok"), B, "the PQ SIGNATURE TLV twice: SIGNATURE may repeat, both verify"),
    Mutation { rehash: true, ..m("pq-tlv-duplicated", Duplicate(Pq), B, s("pq-tlv-not-last"), "FWSEAL_PQ_SIG twice (hash recomputed): the first is not last") },
    Mutation { rehash: true, ..m("pq-tlv-not-last", InsertProt(0x46a1, 4, None), B, s("pq-tlv-not-last"), "a vendor TLV 0x46a1 after FWSEAL_PQ_SIG (hash recomputed)") },
    m("product-duplicated", Duplicate(Prot(3)), s("duplicate-tlv"), B, "PRODUCT twice in the protected area"),
    m("digest-duplicated", Duplicate(Prot(2)), s("duplicate-tlv"), B, "the first DIGEST twice (same algorithm)"),
    Mutation { rehash: true, ..m("seccnt-duplicated", Duplicate(Prot(0x50)), B, s("duplicate-tlv"), "SEC_CNT twice (hash recomputed)") },
    Mutation { rehash: true, ..m("seccnt-bad-length", Resize(Prot(0x50), 5), B, s("malformed"), "SEC_CNT of 5 bytes (hash recomputed)") },
    m("unknown-protected-tlv", InsertProt(0x0008, 4, None), s("unknown-tlv"), B, "an unknown protected type 0x0008 (every unknown type is critical)"),
    m("unknown-unprotected-tlv", InsertUnprot(0x0102, 40), s("unknown-tlv"), B, "an unknown unprotected type 0x0102"),
    m("protected-type-in-unprotected", InsertUnprot(0x0003, 4), s("unknown-tlv"), B, "a PRODUCT TLV in the unprotected area"),
    m("format-mismatch", OtherFormat, s("format-mismatch"), B, "FORMAT names another (known) format"),
    m("digest-missing", Remove(Prot(2)), s("digest-missing"), B, "the first DIGEST (SHA-256, matched to the classical half) removed"),
    m("tlv-reserved", SetReserved(Prot(3)), s("malformed"), B, "a protected TLV's reserved field is 1"),
    m("sig-reserved", SetU16(Pq, 2, 1), s("malformed"), B, "a SIGNATURE's reserved u16 is 1"),
    Mutation { rehash: true, ..m("pq-sig-short", Resize(Pq, 100), s("malformed"), s("malformed"), "the PQ signature cut to the wrong length") },
    Mutation { rehash: true, ..m("pq-alg-unknown", SetU16(Pq, 0, 0x0104), s("unsupported-algorithm"), s("unsupported-algorithm"), "the PQ signature's algorithm id is the unknown 0x0104 (MCUboot: hash recomputed)") },
    Mutation { rehash: true, ..m("pq-alg-classical", SetU16(Pq, 0, 0x0001), B, s("malformed"), "FWSEAL_PQ_SIG naming ECDSA P-256 (hash recomputed)") },
    m("bad-magic", Magic, s("bad-magic"), B, "the block's FWSB magic changed"),
    m("no-footer", FooterMagic, s("no-signature-block"), B, "the footer magic changed: no block"),
    m("version-2", Version(2), s("malformed"), B, "block version 2"),
    m("header-len-20", HeaderLen(20), s("malformed"), B, "block header_len 20"),
    m("footer-reserved", FooterReserved, s("malformed"), B, "footer reserved u32 is 1"),
    m("lying-protected-len", LieProtLen(1), s("bad-length"), B, "header P one too large: 16+P+U+16 != L"),
    m("lying-block-len-small", LieBlockLen(16), s("bad-length"), B, "footer L = 16 < 32"),
    m("lying-block-len-huge", LieBlockLen(0x0010_0001), s("bad-length"), B, "footer L = 1 MiB + 1"),
    m("image-range-bad-length", Resize(Prot(6), 17), s("malformed"), B, "IMAGE_RANGE value of 17 bytes"),
    m("lying-tlv-len", LieTlvLen(1), s("bad-length"), B, "the last SIGNATURE's length field one past the end of the unprotected area"),
    m("policy-both", Keep, s("missing-half"), s("missing-half"), "a single-half image under the default policy (both halves)"),
    m("truncated", TruncateFront(1), s("truncated"), B, "the image is the block without its first byte: L > N"),
    m("mcu-bad-magic", McuHeaderU32(0, 0x96f3_b83c), B, s("bad-magic"), "ih_magic changed"),
    m("mcu-prot-bad-magic", McuProtMagic, B, s("bad-magic"), "protected TLV area magic 0x6909"),
    m("mcu-unprot-bad-magic", McuUnprotMagic, B, s("bad-magic"), "unprotected TLV area magic 0x6906"),
    m("mcu-lying-protect-tlv-size", McuHdrProtSize(4), B, s("bad-length"), "ih_protect_tlv_size 4 more than the protected it_tlv_tot"),
    m("mcu-unprot-tot-past-end", McuUnprotTot(1), B, s("truncated"), "unprotected it_tlv_tot one past the end of the image"),
    m("mcu-truncated", CutEnd(1), B, s("truncated"), "the last byte cut"),
    m("mcu-trailing-byte", TrailingByte, B, s("malformed"), "one byte after the unprotected area"),
    m("mcu-hash-removed", Remove(Unprot(0x10)), B, s("digest-missing"), "the SHA256 TLV removed"),
    m("mcu-hash-short", Resize(Unprot(0x10), 31), B, s("digest-mismatch"), "the SHA256 TLV 31 bytes long"),
    Mutation { rehash: true, ..m("mcu-encrypted", McuHeaderU32(16, 4), B, s("unsupported-algorithm"), "ih_flags ENCRYPTED_AES128 (hash recomputed)") },
];

/// Names of the mutations every other algorithm pair gets.
const SHORT: &[&str] = &[
    "valid",
    "body-flip",
    "classical-sig-flip",
    "pq-sig-flip",
    "pq-sig-flip-rehashed",
    "wrong-pq-key",
    "wrong-classical-key",
    "counter-too-low",
];
/// Single-half images: which mutations apply (the missing half's entries drop out by selector).
const SINGLE: &[&str] = &[
    "valid",
    "policy-both",
    "body-flip",
    "classical-sig-flip",
    "pq-sig-flip",
    "pq-sig-flip-rehashed",
];

fn find(ts: &[Tlv], sel: Sel, pq_ids: bool) -> Option<usize> {
    ts.iter().position(|t| match sel {
        Prot(x) | Unprot(x) => t.t == x,
        Pq if pq_ids => t.t == 0x0101 && u16le(&t.v, 0) >= 0x0100,
        Classical if pq_ids => t.t == 0x0101 && u16le(&t.v, 0) < 0x0100,
        Pq => t.t == PQ_TLV,
        Classical => t.t == 0x22,
    })
}

/// Apply an edit to one TLV list pair. Returns false when the selected TLV is absent.
fn edit_lists(prot: &mut Vec<Tlv>, unprot: &mut Vec<Tlv>, e: Edit, sb: bool) -> bool {
    let area = |sel: Sel| matches!(sel, Prot(_)) || (!sb && matches!(sel, Pq));
    macro_rules! at {
        ($sel:expr) => {{
            let list = if area($sel) { &mut *prot } else { &mut *unprot };
            match find(list, $sel, sb) {
                Some(i) => (list, i),
                None => return false,
            }
        }};
    }
    match e {
        Flip(sel, off) => {
            let (l, i) = at!(sel);
            let v = &mut l[i].v;
            let o = if off < 0 { v.len() as isize + off } else { off };
            v[o as usize] ^= 0x01;
        }
        Remove(sel) => {
            let (l, i) = at!(sel);
            l.remove(i);
        }
        Duplicate(sel) => {
            let (l, i) = at!(sel);
            let t = l[i].clone();
            l.insert(i + 1, t);
        }
        InsertProt(t, n, before) => {
            let i = match before {
                Some(sel) => at!(sel).1,
                None => prot.len(),
            };
            prot.insert(
                i,
                Tlv {
                    t,
                    r: 0,
                    v: vec![0x5a; n],
                },
            );
        }
        InsertUnprot(t, n) => unprot.push(Tlv {
            t,
            r: 0,
            v: vec![0x5a; n],
        }),
        SetU16(sel, off, x) => {
            let (l, i) = at!(sel);
            l[i].v[off..off + 2].copy_from_slice(&x.to_le_bytes());
        }
        Resize(sel, n) => {
            let (l, i) = at!(sel);
            l[i].v.resize(n, 0);
        }
        SetReserved(sel) => {
            let (l, i) = at!(sel);
            l[i].r = 1;
        }
        _ => {}
    }
    true
}

// ---- formats: base images, device images, re-sealing -----------------------------------------

/// A signed base of a signature-block format.
struct SbBase {
    file: Vec<u8>,
    device: Vec<u8>,
    sb: Sb,
    /// (device offset, file offset) of a covered body byte.
    flip: (usize, usize),
    hex_segments: Vec<(u64, usize)>,
    hex_lo: u64,
}

fn hex_parse(text: &[u8]) -> Vec<(u64, u8)> {
    let mut out = Vec::new();
    let mut base = 0u64;
    for line in text.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let r = hex::decode(&line[1..]).expect("hex record");
        let (n, off, t) = (r[0] as usize, u64::from(u16le(&[r[2], r[1]], 0)), r[3]);
        match t {
            0 => out.extend(
                r[4..4 + n]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (base + off + i as u64, *b)),
            ),
            4 => base = u64::from(u16le(&[r[5], r[4]], 0)) << 16,
            1 => break,
            2 => panic!("segment addressing not used by the kit"),
            _ => {}
        }
    }
    out
}

fn hex_encode(chunks: &[(u64, &[u8])]) -> Vec<u8> {
    let mut o = String::new();
    let rec = |o: &mut String, t: u8, off: u16, d: &[u8]| {
        let mut r = vec![d.len() as u8, (off >> 8) as u8, off as u8, t];
        r.extend_from_slice(d);
        let ck = r.iter().fold(0u8, |a, b| a.wrapping_add(*b)).wrapping_neg();
        r.push(ck);
        let _ = writeln!(o, ":{}", hex::encode_upper(r));
    };
    let mut ulba = u64::MAX;
    for (addr, data) in chunks {
        let mut a = *addr;
        for piece in data.chunks(16) {
            let mut rest = piece;
            while !rest.is_empty() {
                if a >> 16 != ulba {
                    ulba = a >> 16;
                    rec(&mut o, 4, 0, &(ulba as u16).to_be_bytes());
                }
                let room = (0x1_0000 - (a & 0xffff)) as usize;
                let (now, later) = rest.split_at(rest.len().min(room));
                rec(&mut o, 0, a as u16, now);
                a += now.len() as u64;
                rest = later;
            }
        }
    }
    rec(&mut o, 1, 0, &[]);
    o.into_bytes()
}

fn dfu_crc(mut f: Vec<u8>) -> Vec<u8> {
    let n = f.len();
    let crc = !crc32(&f[..n - 4]);
    f[n - 4..].copy_from_slice(&crc.to_le_bytes());
    f
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

impl SbBase {
    fn new(f: Fmt, file: Vec<u8>) -> Result<SbBase> {
        let mut hex_segments = Vec::new();
        let mut hex_lo = 0;
        let (device, flip) = match f {
            Fmt::Raw => (file.clone(), (100, 100)),
            Fmt::Dfu => (file[..file.len() - 16].to_vec(), (100, 100)),
            Fmt::DfuSe => {
                let d = fwseal_formats::dfu::DfuSeFile::parse(&file)?;
                let mut dev = Vec::new();
                d.canonical(&file, &mut |b| dev.extend_from_slice(b));
                let e = d.signature_element().context("no signature element")?;
                dev.extend_from_slice(&file[e.offset + 8..e.offset + 8 + e.size as usize]);
                let first = d.targets[0].elements[0].offset;
                (dev, (1 + 5 + 8 + 10, first + 8 + 10))
            }
            Fmt::Hex => {
                let mem = hex_parse(&file);
                let lo = mem.iter().map(|b| b.0).min().context("empty hex")?;
                let hi = mem.iter().map(|b| b.0).max().context("empty hex")? + 1;
                let mut img = vec![0xffu8; (hi - lo) as usize];
                for (a, b) in &mem {
                    img[(a - lo) as usize] = *b;
                }
                // written addresses as runs (address, length), later clipped below the block
                let mut addrs: Vec<u64> = mem.iter().map(|b| b.0).collect();
                addrs.sort_unstable();
                for a in addrs {
                    match hex_segments.last_mut() {
                        Some((s, n)) if *s + *n as u64 == a => *n += 1,
                        _ => hex_segments.push((a, 1)),
                    }
                }
                hex_lo = lo;
                (img, (10, usize::MAX))
            }
            Fmt::Mcuboot => bail!("not a signature-block format"),
        };
        let sb = Sb::parse(&device);
        if f == Fmt::Hex {
            let top = hex_lo + sb.prefix.len() as u64;
            hex_segments = hex_segments
                .into_iter()
                .filter(|(a, _)| *a < top)
                .map(|(a, n)| (a, n.min((top - a) as usize)))
                .collect();
        }
        Ok(SbBase {
            file,
            device,
            sb,
            flip,
            hex_segments,
            hex_lo,
        })
    }

    /// (file, device image) of an edited copy, re-sealed.
    fn seal(&self, f: Fmt, sb: &Sb, body_flip: bool) -> (Vec<u8>, Vec<u8>) {
        let mut prefix = sb.prefix.clone();
        let mut file = self.file.clone();
        if body_flip {
            prefix[self.flip.0] ^= 0x01;
            if self.flip.1 != usize::MAX {
                file[self.flip.1] ^= 0x01;
            }
        }
        let block = sb.block();
        let device = [&prefix[..], &block].concat();
        let file = match f {
            Fmt::Raw => device.clone(),
            Fmt::Dfu => dfu_crc([&device[..], &self.file[self.file.len() - 16..]].concat()),
            Fmt::DfuSe => {
                let d = fwseal_formats::dfu::DfuSeFile::parse(&self.file).expect("base parses");
                let e = d.signature_element().expect("signature element");
                let t = d.targets.last().expect("target");
                let delta = block.len() as i64 - i64::from(e.size);
                let patch = |f: &mut Vec<u8>, at: usize| {
                    let v = (i64::from(u32le(f, at)) + delta) as u32;
                    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
                };
                let mut out = file[..e.offset + 8].to_vec();
                out[e.offset + 4..e.offset + 8]
                    .copy_from_slice(&(block.len() as u32).to_le_bytes());
                patch(&mut out, t.offset + 266);
                patch(&mut out, 6);
                out.extend(&block);
                out.extend(&self.file[self.file.len() - 16..]);
                dfu_crc(out)
            }
            Fmt::Hex => {
                let mut chunks: Vec<(u64, &[u8])> = self
                    .hex_segments
                    .iter()
                    .map(|&(a, n)| {
                        let o = (a - self.hex_lo) as usize;
                        (a, &prefix[o..o + n])
                    })
                    .collect();
                chunks.push((self.hex_lo + prefix.len() as u64, &block));
                hex_encode(&chunks)
            }
            Fmt::Mcuboot => unreachable!(),
        };
        (file, device)
    }
}

// ---- generation --------------------------------------------------------------------------------

struct Pair {
    classical: Option<SigAlg>,
    pq: Option<SigAlg>,
    set: &'static [&'static str],
}

fn pairs(f: Fmt) -> Vec<Pair> {
    use SigAlg::*;
    let full: &'static [&'static str] = &[];
    let mut v = vec![
        Pair {
            classical: Some(EcdsaP256Sha256),
            pq: Some(MlDsa65),
            set: full,
        },
        Pair {
            classical: Some(EcdsaP256Sha256),
            pq: Some(MlDsa44),
            set: SHORT,
        },
        Pair {
            classical: Some(EcdsaP384Sha384),
            pq: Some(MlDsa87),
            set: SHORT,
        },
        Pair {
            classical: Some(EcdsaP256Sha256),
            pq: Some(SlhDsaSha2_128f),
            set: &[
                "valid",
                "classical-sig-flip",
                "pq-sig-flip",
                "pq-sig-flip-rehashed",
            ],
        },
        Pair {
            classical: None,
            pq: Some(MlDsa65),
            set: SINGLE,
        },
        Pair {
            classical: Some(EcdsaP256Sha256),
            pq: None,
            set: SINGLE,
        },
    ];
    if f == Fmt::Raw {
        v.push(Pair {
            classical: Some(EcdsaP256Sha256),
            pq: Some(SlhDsaSha2_128s),
            set: &["valid", "pq-sig-flip"],
        });
    }
    v
}

struct Out {
    dir: PathBuf,
    json: Vec<serde_json::Value>,
    tsv: String,
}

/// `cargo xtask vectors [--out DIR]`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut out_dir = root.join("vectors");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out_dir = PathBuf::from(it.next().context("--out DIR")?),
            other => bail!("unknown argument {other} (usage: cargo xtask vectors [--out DIR])"),
        }
    }
    let t0 = std::time::Instant::now();
    generate(root, &out_dir)?;
    eprintln!(
        "vectors: wrote {} in {:.1} s",
        out_dir.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The files under `dir`, relative paths, sorted.
fn tree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Fail unless the committed kit `committed` is byte for byte what the generator just wrote to
/// `fresh` (the generator is deterministic: fixed-seed keys, deterministic signing), so the
/// kit rigs download can never drift from the code and the specs.
pub fn check_committed(committed: &Path, fresh: &Path) -> Result<()> {
    let (a, b) = (tree(committed)?, tree(fresh)?);
    let mut diff: Vec<String> = Vec::new();
    for p in a.iter().filter(|p| !b.contains(p)) {
        diff.push(format!("only in the committed kit: {}", p.display()));
    }
    for p in b.iter().filter(|p| !a.contains(p)) {
        diff.push(format!("missing from the committed kit: {}", p.display()));
    }
    for p in a.iter().filter(|p| b.contains(p)) {
        if std::fs::read(committed.join(p))? != std::fs::read(fresh.join(p))? {
            diff.push(format!("differs: {}", p.display()));
        }
    }
    if !diff.is_empty() {
        diff.truncate(20);
        bail!(
            "{} is stale — run `cargo xtask vectors` and commit the result:\n  {}",
            committed.display(),
            diff.join("\n  ")
        );
    }
    Ok(())
}

pub fn generate(root: &Path, dir: &Path) -> Result<()> {
    if dir.join("manifest.json").exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("keys/private"))?;
    let mut keys: Vec<Key> = Vec::new();
    for alg in [
        SigAlg::EcdsaP256Sha256,
        SigAlg::EcdsaP384Sha384,
        SigAlg::MlDsa44,
        SigAlg::MlDsa65,
        SigAlg::MlDsa87,
        SigAlg::SlhDsaSha2_128f,
        SigAlg::SlhDsaSha2_128s,
    ] {
        for prefix in ["", "other-"] {
            let name = format!("{prefix}{}", kit_name(alg));
            let (key, p8) = make_key(alg, &name)?;
            let pk = key.public_key();
            let w = |rel: String, b: &[u8]| std::fs::write(dir.join(rel), b);
            w(format!("keys/{name}.spki.der"), pk.spki_der())?;
            w(format!("keys/{name}.pub.raw"), &pk.raw()?)?;
            w(
                format!("keys/{name}.pem"),
                fwseal_crypto::verify::pem_encode("PUBLIC KEY", pk.spki_der()).as_bytes(),
            )?;
            w(format!("keys/private/{name}.pk8.der"), &p8)?;
            keys.push(Key { name, key });
        }
    }
    std::fs::write(dir.join("keys/private/README"), "TEST KEYS ONLY. These private keys are published with the fwseal conformance kit so anyone\ncan re-create its vectors. Never trust them (or anything they signed) on a device.\nPKCS#8 DER: ECDSA (RFC 5915 inside), ML-DSA (RFC 9881 seed form), SLH-DSA (FIPS 205 SK).\nEach key is derived from the seed SHA-256(\"fwseal conformance kit v1/NAME/i\"), i = 0, 1, ...\n")?;
    let key =
        |name: &str| -> &SoftKey { &keys.iter().find(|k| k.name == name).expect("kit key").key };
    let mut out = Out {
        dir: dir.to_path_buf(),
        json: Vec::new(),
        tsv: String::new(),
    };
    out.tsv.push_str(
        "# name\tformat\tdevice_image\trequire\tmin_security_counter\texpect\treason\tkeys\n",
    );
    for f in Fmt::ALL {
        let input = std::fs::read(root.join("fixtures").join(f.fixture()))?;
        for p in pairs(f) {
            let counter: u32 = if f == Fmt::Mcuboot { 7 } else { 5 };
            let req = Request {
                classical: p.classical,
                pq: p.pq,
                mode: Mode::Embedded,
                options: SignOptions {
                    product: "fwseal-conformance-kit".into(),
                    security_counter: (f != Fmt::Mcuboot).then_some(counter),
                    ..SignOptions::default()
                },
            };
            let plan = prepare(f.signing(), &input, &req)?;
            let set = sign_prepared(
                plan.as_ref(),
                p.classical.map(|a| key(kit_name(a)) as &dyn Signer),
                p.pq.map(|a| key(kit_name(a)) as &dyn Signer),
                vec![],
            )?;
            let file = assemble(&input, &plan.embed(&set)?)?;
            let pair = [p.classical.map(kit_name), p.pq.map(kit_name)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            let ctx = Ctx {
                f,
                pair: &pair,
                counter,
                set: p.set,
            };
            if f == Fmt::Mcuboot {
                mcuboot_vectors(&mut out, &ctx, &file)?;
            } else {
                sb_vectors(&mut out, &ctx, SbBase::new(f, file)?)?;
            }
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&out.json)? + "\n",
    )?;
    std::fs::write(dir.join("manifest.tsv"), &out.tsv)?;
    std::fs::write(dir.join("README.md"), README)?;
    eprintln!("vectors: {} vectors", out.json.len());
    Ok(())
}

struct Ctx<'a> {
    f: Fmt,
    pair: &'a [&'a str],
    counter: u32,
    set: &'a [&'a str],
}

fn selected<'a>(ctx: &Ctx<'a>) -> impl Iterator<Item = &'static Mutation> + 'a {
    let set = ctx.set;
    let hybrid = ctx.pair.len() == 2;
    MUTATIONS.iter().filter(move |m| {
        (set.is_empty() || set.contains(&m.name)) && !(hybrid && m.name == "policy-both")
    })
}

fn sb_vectors(out: &mut Out, ctx: &Ctx, base: SbBase) -> Result<()> {
    for m in selected(ctx) {
        let Some(reason) = m.sb else { continue };
        let mut sb = base.sb.clone();
        let mut body_flip = false;
        let mut device_only = false;
        match m.edit {
            Keep => {}
            FlipBody => body_flip = true,
            LieProtLen(d) => sb.p_delta = d,
            LieTlvLen(d) => sb.tlv_len_delta = d,
            OtherFormat => {
                let t = sb.prot.iter_mut().find(|t| t.t == 1).context("FORMAT")?;
                t.v[0] = if t.v[0] == 1 { 4 } else { 1 };
            }
            LieBlockLen(l) => sb.l_len = Some(l),
            Version(v) => sb.version = v,
            HeaderLen(h) => sb.hlen = h,
            FooterReserved => sb.footer_reserved = 1,
            Magic => sb.magic = *b"FWSC",
            FooterMagic => sb.footer_magic = *b"fwsealSC",
            TruncateFront(_) => device_only = true,
            e => {
                if !edit_lists(&mut sb.prot, &mut sb.unprot, e, true) {
                    continue;
                }
            }
        }
        let (file, mut device) = if matches!(m.edit, Keep) {
            (base.file.clone(), base.device.clone())
        } else {
            base.seal(ctx.f, &sb, body_flip)
        };
        if let TruncateFront(n) = m.edit {
            let l = sb.block().len();
            device = device[device.len() - l + n..].to_vec();
        }
        // Only raw and DFU 1.1 files can hold a truncated device image.
        let file = (!device_only || matches!(ctx.f, Fmt::Raw | Fmt::Dfu)).then(|| match ctx.f {
            Fmt::Raw if device_only => device.clone(),
            Fmt::Dfu if device_only => {
                dfu_crc([&device[..], &base.file[base.file.len() - 16..]].concat())
            }
            _ => file,
        });
        emit(out, ctx, m, reason, file, device)?;
    }
    Ok(())
}

fn mcuboot_vectors(out: &mut Out, ctx: &Ctx, file: &[u8]) -> Result<()> {
    let base = Mcu::parse(file);
    if base.image() != file {
        bail!("MCUboot model does not round-trip the signed image");
    }
    for m in selected(ctx) {
        let Some(reason) = m.mcu else { continue };
        let mut x = base.clone();
        match m.edit {
            Keep => {}
            FlipBody => x.hb[0x40] ^= 0x01,
            McuHeaderU32(o, v) => x.hb[o..o + 4].copy_from_slice(&v.to_le_bytes()),
            McuProtMagic => {
                // written through the protected area's encoding: swap its magic after sealing
            }
            McuUnprotMagic => x.unprot_magic = 0x6906,
            McuHdrProtSize(d) => x.hdr_prot_size = Some((x.prot_area().len() as i32 + d) as u16),
            McuUnprotTot(d) => {
                let n = mcu_area(0x6907, &x.unprot, None).len() as i32;
                x.unprot_tot = Some((n + d) as u16);
            }
            CutEnd(_) | TrailingByte => {}
            e => {
                if !edit_lists(&mut x.prot, &mut x.unprot, e, false) {
                    continue;
                }
            }
        }
        if m.rehash {
            x.rehash();
        }
        let mut img = x.image();
        match m.edit {
            McuProtMagic => {
                let b = u16le(&img, 8) as usize + u32le(&img, 12) as usize;
                img[b] ^= 0x01;
            }
            CutEnd(n) => img.truncate(img.len() - n),
            TrailingByte => img.push(0),
            _ => {}
        }
        emit(out, ctx, m, reason, Some(img.clone()), img)?;
    }
    Ok(())
}

fn emit(
    out: &mut Out,
    ctx: &Ctx,
    m: &Mutation,
    reason: &str,
    file: Option<Vec<u8>>,
    device: Vec<u8>,
) -> Result<()> {
    let f = ctx.f;
    let pair = ctx.pair.join("+");
    let name = format!("{}/{pair}/{}", f.name(), m.name);
    let stem = format!("{}/{pair}/{}", f.name(), m.name);
    std::fs::create_dir_all(out.dir.join(format!("{}/{pair}", f.name())))?;
    let file_rel = file.as_ref().map(|_| format!("{stem}.{}", f.ext()));
    if let (Some(rel), Some(b)) = (&file_rel, &file) {
        std::fs::write(out.dir.join(rel), b)?;
    }
    let device_rel = match &file {
        Some(b) if *b == device => file_rel.clone().expect("file"),
        _ => {
            let rel = format!("{stem}.device.bin");
            std::fs::write(out.dir.join(&rel), &device)?;
            rel
        }
    };
    let keys: Vec<String> = ctx
        .pair
        .iter()
        .map(|k| {
            let pq = !matches!(*k, "p256" | "p384");
            let other = (m.keys == "other-pq" && pq) || (m.keys == "other-classical" && !pq);
            format!("keys/{}{k}.spki.der", if other { "other-" } else { "" })
        })
        .collect();
    let min = m.counter.map_or(0, |d| (i64::from(ctx.counter) + d) as u32);
    // A single-half image is verified under the policy requiring that half, except
    // `policy-both`, whose reason names the missing half.
    let single_pq = ctx.pair.len() == 1 && !matches!(ctx.pair[0], "p256" | "p384");
    let require = match (ctx.pair.len(), m.name) {
        (1, "policy-both") | (2, _) => m.require,
        _ if single_pq => "pq",
        _ => "classical",
    };
    let reason = match reason {
        "missing-half" if single_pq => "classical-signature-missing",
        "missing-half" => "pq-signature-missing",
        r => r,
    };
    let expect = if reason == "ok" { "accept" } else { "reject" };
    let mut verifiers = vec![RUST, C, PY];
    if file.is_some() && min == 0 {
        verifiers.push(CLI);
    }
    out.json.push(json!({
        "name": name, "format": f.name(), "file": file_rel, "device_image": device_rel,
        "policy": {"require": require, "min_security_counter": min},
        "keys": keys, "expect": expect, "reason": reason, "description": m.what,
        "verifiers": verifiers,
    }));
    let _ = writeln!(
        out.tsv,
        "{name}\t{}\t{device_rel}\t{}\t{min}\t{expect}\t{reason}\t{}",
        f.name(),
        require,
        keys.join(",")
    );
    Ok(())
}

const README: &str = include_str!("vectors_readme.md");
