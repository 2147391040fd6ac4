//! Test helpers: images signed by the **signing side** (fwseal-formats + fwseal-crypto software
//! keys), the device image of each format, hand-built signature blocks for precise mutations,
//! and a streaming driver with a fixed chunk size.
#![allow(dead_code)]

use fwseal_crypto::{soft::SoftKey, SigAlg, SignedMessage, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Mode, Request, SignOptions};
use fwseal_verify::{Error, Format, Policy, TrustedKey, Verified, Verifier};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = repo_root().join("fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// One software key per algorithm, generated once per test binary (SLH-DSA keygen is slow-ish).
pub fn key(alg: SigAlg) -> &'static SoftKey {
    static KEYS: OnceLock<Mutex<Vec<(SigAlg, &'static SoftKey)>>> = OnceLock::new();
    let m = KEYS.get_or_init(|| Mutex::new(Vec::new()));
    let mut v = m.lock().expect("key cache");
    if let Some((_, k)) = v.iter().find(|(a, _)| *a == alg) {
        return k;
    }
    let k: &'static SoftKey = Box::leak(Box::new(SoftKey::generate(alg).expect("keygen")));
    v.push((alg, k));
    k
}

/// A second, different key for `alg` (for untrusted-key tests).
pub fn other_key(alg: SigAlg) -> &'static SoftKey {
    static KEYS: OnceLock<Mutex<Vec<(SigAlg, &'static SoftKey)>>> = OnceLock::new();
    let m = KEYS.get_or_init(|| Mutex::new(Vec::new()));
    let mut v = m.lock().expect("key cache");
    if let Some((_, k)) = v.iter().find(|(a, _)| *a == alg) {
        return k;
    }
    let k: &'static SoftKey = Box::leak(Box::new(SoftKey::generate(alg).expect("keygen")));
    v.push((alg, k));
    k
}

pub fn spki(k: &SoftKey) -> Vec<u8> {
    k.public_key().spki_der().to_vec()
}

/// The signing side's format for a verifier format (DfuSe is the `dfu` format).
pub fn signing_format(f: Format) -> fwseal_formats::Format {
    match f {
        Format::Raw => fwseal_formats::Format::Raw,
        Format::Hex => fwseal_formats::Format::Ihex,
        Format::Dfu | Format::DfuSe => fwseal_formats::Format::Dfu,
        Format::Mcuboot => fwseal_formats::Format::Mcuboot,
    }
}

/// An unsigned input of each format (fixtures; the HEX one has a gap).
pub fn input(f: Format) -> Vec<u8> {
    match f {
        Format::Raw => fixture("raw/sample.bin"),
        Format::Hex => fixture("hex/multi.hex"),
        Format::Dfu => fixture("dfu/dfu11.dfu"),
        Format::DfuSe => fixture("dfu/dfuse.dfu"),
        Format::Mcuboot => fixture("mcuboot/unsigned-seccnt.img"),
    }
}

/// Sign `data` (embedded) with the given halves and options.
pub fn sign_with(
    f: Format,
    data: &[u8],
    classical: Option<SigAlg>,
    pq: Option<SigAlg>,
    options: SignOptions,
) -> Vec<u8> {
    let req = Request {
        classical,
        pq,
        mode: Mode::Embedded,
        options,
    };
    let plan = prepare(signing_format(f), data, &req).expect("prepare");
    let set = sign_prepared(
        plan.as_ref(),
        classical.map(|a| key(a) as &dyn Signer),
        pq.map(|a| key(a) as &dyn Signer),
        vec![],
    )
    .expect("sign");
    assemble(data, &plan.embed(&set).expect("embed")).expect("assemble")
}

pub fn options() -> SignOptions {
    SignOptions {
        product: "test-product".into(),
        ..SignOptions::default()
    }
}

/// Sign the format's fixture input with a hybrid pair.
pub fn signed(f: Format, classical: Option<SigAlg>, pq: Option<SigAlg>) -> Vec<u8> {
    sign_with(f, &input(f), classical, pq, options())
}

/// What the device holds for a signed file (the conformance kit's `device_image`).
pub fn device_image(f: Format, file: &[u8]) -> Vec<u8> {
    match f {
        Format::Raw | Format::Mcuboot => file.to_vec(),
        Format::Dfu => file[..file.len() - 16].to_vec(),
        Format::Hex => hex_memory(file, 0xff).1,
        Format::DfuSe => {
            let d = fwseal_formats::dfu::DfuSeFile::parse(file).expect("dfuse parse");
            let mut out = Vec::new();
            d.canonical(file, &mut |b| out.extend_from_slice(b));
            let e = d.signature_element().expect("signature element");
            let s = e.offset + 8;
            out.extend_from_slice(&file[s..s + e.size as usize]);
            out
        }
    }
}

/// Intel HEX → (lowest address, memory image from it to the top, gaps = `fill`). A minimal
/// reader for test files (types 00–05), independent of both implementations under test.
pub fn hex_memory(text: &[u8], fill: u8) -> (u64, Vec<u8>) {
    let mut bytes: Vec<(u64, u8)> = Vec::new();
    let (mut base, mut seg) = (0u64, None::<u64>);
    for line in std::str::from_utf8(text).expect("utf8").lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let r = hex::decode(&line[1..]).expect("record hex");
        let (n, off, t) = (
            r[0] as usize,
            u64::from(u16::from_be_bytes([r[1], r[2]])),
            r[3],
        );
        let d = &r[4..4 + n];
        match t {
            0 => {
                for (i, b) in d.iter().enumerate() {
                    let a = match seg {
                        Some(s) => s + ((off + i as u64) & 0xffff),
                        None => base + off + i as u64,
                    };
                    bytes.push((a, *b));
                }
            }
            1 => break,
            2 => seg = Some(u64::from(u16::from_be_bytes([d[0], d[1]])) * 16),
            4 => {
                seg = None;
                base = u64::from(u16::from_be_bytes([d[0], d[1]])) << 16;
            }
            _ => {}
        }
    }
    let lo = bytes.iter().map(|b| b.0).min().expect("data");
    let hi = bytes.iter().map(|b| b.0).max().expect("data") + 1;
    let mut img = vec![fill; (hi - lo) as usize];
    for (a, b) in bytes {
        img[(a - lo) as usize] = b;
    }
    (lo, img)
}

pub fn trusted(keys: &[Vec<u8>]) -> Vec<TrustedKey<'_>> {
    keys.iter().map(|k| TrustedKey::Spki(k)).collect()
}

/// Verify with the streaming API, feeding every read in chunks of `chunk` bytes.
pub fn verify_chunked(
    f: Format,
    image: &[u8],
    keys: &[TrustedKey<'_>],
    policy: Policy,
    chunk: usize,
) -> Result<Verified, Error> {
    let mut v = Verifier::new(f, image.len() as u64, keys, policy)?;
    let mut reads = 0;
    while let Some(r) = v.next_read() {
        reads += 1;
        assert!(reads < 16, "the verifier keeps asking for reads");
        assert!(
            r.len > 0 && r.offset + r.len <= image.len() as u64,
            "read {r:?} outside the image"
        );
        let bytes = &image[r.offset as usize..(r.offset + r.len) as usize];
        let mut failed = false;
        for c in bytes.chunks(chunk) {
            if v.update(c).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            assert!(v.next_read().is_none(), "no read after an error");
            break;
        }
    }
    v.finish()
}

/// The verdict as a reason code.
pub fn code(r: &Result<Verified, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built signature blocks (formats/signature-block.md), for mutations the signing side
// refuses to make.

pub fn tlv(t: u16, v: &[u8]) -> Vec<u8> {
    let mut o = t.to_le_bytes().to_vec();
    o.extend_from_slice(&0u16.to_le_bytes());
    o.extend_from_slice(&(v.len() as u32).to_le_bytes());
    o.extend_from_slice(v);
    o
}

pub fn block(prot: &[u8], unprot: &[u8]) -> Vec<u8> {
    let l = 32 + prot.len() + unprot.len();
    let mut b = b"FWSB".to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(&(prot.len() as u32).to_le_bytes());
    b.extend_from_slice(&(unprot.len() as u32).to_le_bytes());
    b.extend_from_slice(prot);
    b.extend_from_slice(unprot);
    b.extend_from_slice(&(l as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(b"fwsealSB");
    b
}

pub fn digest_tlv(alg: u8, data: &[u8]) -> Vec<u8> {
    let d = match alg {
        1 => fwseal_crypto::DigestAlg::Sha256.hash(data),
        2 => fwseal_crypto::DigestAlg::Sha384.hash(data),
        _ => fwseal_crypto::DigestAlg::Sha512.hash(data),
    };
    let mut v = vec![alg];
    v.extend(d);
    tlv(2, &v)
}

/// A standard raw protected area over `body`: FORMAT, the given DIGESTs, PRODUCT, IMAGE_RANGE.
pub fn raw_protected(body: &[u8], digests: &[u8]) -> Vec<u8> {
    let mut p = tlv(1, &[1]);
    for d in digests {
        p.extend(digest_tlv(*d, body));
    }
    p.extend(tlv(3, b"test-product"));
    let mut r = 0u64.to_le_bytes().to_vec();
    r.extend_from_slice(&(body.len() as u64).to_le_bytes());
    p.extend(tlv(6, &r));
    p
}

/// SIGNATURE TLVs by `signers` over the block message of `name` (`raw`, `ihex`, `dfu`).
pub fn signatures(name: &str, prot: &[u8], signers: &[&SoftKey]) -> Vec<u8> {
    let mut m = format!("fwseal/sigblock/v1/{name}\0").into_bytes();
    m.extend_from_slice(prot);
    let mut u = Vec::new();
    for k in signers {
        let s = k.sign(&SignedMessage::Bytes(m.clone())).expect("sign");
        let mut v = k.alg().id().to_le_bytes().to_vec();
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&s.key_id.0);
        v.extend_from_slice(&s.bytes);
        u.extend(tlv(0x0101, &v));
    }
    u
}

/// A raw image: `body` ‖ a block over `prot` signed by `signers`.
pub fn raw_image(body: &[u8], prot: &[u8], signers: &[&SoftKey]) -> Vec<u8> {
    let mut img = body.to_vec();
    img.extend(block(prot, &signatures("raw", prot, signers)));
    img
}
