//! fwseal-verify against images signed by the signing side (fwseal-formats): every format ×
//! every algorithm pair, every policy, every chunk size, and one negative test per reason code.

mod common;

use common::*;
use fwseal_crypto::{SigAlg, Signer as _};
use fwseal_verify::{
    verify, Alg, Format, Policy, Reason, Require, TrustedKey, Verifier, CONTEXT_SIZE,
};

const P256: SigAlg = SigAlg::EcdsaP256Sha256;
const P384: SigAlg = SigAlg::EcdsaP384Sha384;
const ML65: SigAlg = SigAlg::MlDsa65;

fn both() -> Policy {
    Policy::default()
}

fn policy(require: Require, min: u32) -> Policy {
    Policy {
        require,
        min_security_counter: min,
    }
}

fn alg_of(a: SigAlg) -> Alg {
    Alg::from_name(a.name()).expect("same names")
}

/// Signed with `c` + `pq` and verified (one-shot and streamed in 4 KiB chunks) under every
/// policy, with the keys as SPKI and as raw keys.
fn accept(f: Format, c: SigAlg, pq: SigAlg) {
    let file = signed(f, Some(c), Some(pq));
    let img = device_image(f, &file);
    let keys = [spki(key(c)), spki(key(pq))];
    let tk = trusted(&keys);
    for p in [Require::Both, Require::PqOnly, Require::ClassicalOnly] {
        let v = verify(f, &img, &tk, policy(p, 0))
            .unwrap_or_else(|e| panic!("{f:?} {c} + {pq} ({p:?}): {e}"));
        assert_eq!(v.pq.map(|s| s.alg), Some(alg_of(pq)));
        assert_eq!(v.classical.map(|s| s.alg), Some(alg_of(c)));
        assert_eq!(v.signatures, 2);
        assert_eq!(
            v.pq.map(|s| s.key_id.to_vec()),
            Some(key(pq).key_id().0.to_vec())
        );
    }
    let streamed = verify_chunked(f, &img, &tk, both(), 4096).expect("streamed");
    assert_eq!(streamed, verify(f, &img, &tk, both()).expect("one-shot"));
    // The same keys given raw.
    let raws: Vec<Vec<u8>> = [c, pq]
        .iter()
        .map(|a| key(*a).public_key().raw().expect("raw key"))
        .collect();
    let rk = [
        TrustedKey::Raw {
            alg: alg_of(c),
            key: &raws[0],
        },
        TrustedKey::Raw {
            alg: alg_of(pq),
            key: &raws[1],
        },
    ];
    verify(f, &img, &rk, both()).unwrap_or_else(|e| panic!("{f:?} raw keys: {e}"));
    // Trusting only one half's key: the other signature names an untrusted key.
    let only_pq = trusted(&keys[1..]);
    assert_eq!(
        code(&verify(f, &img, &only_pq, policy(Require::PqOnly, 0))),
        "untrusted-key",
        "{f:?}: every signature present must verify with a trusted key"
    );
}

#[test]
fn every_format_with_every_ecdsa_and_ml_dsa_pair() {
    for f in Format::ALL {
        for c in [P256, P384] {
            for pq in [SigAlg::MlDsa44, ML65, SigAlg::MlDsa87] {
                accept(f, c, pq);
            }
        }
    }
}

fn slow_tests() -> bool {
    std::env::var("FWSEAL_SLOW_TESTS").is_ok_and(|v| v == "1")
}

#[test]
fn every_format_with_slh_dsa() {
    // SLH-DSA-SHA2-128f signs fast: every format.
    for f in Format::ALL {
        accept(f, P256, SigAlg::SlhDsaSha2_128f);
    }
    // The "s" sets take seconds to sign each: with FWSEAL_SLOW_TESTS=1 (cargo xtask test, CI).
    if !slow_tests() {
        eprintln!("SKIP: SLH-DSA-SHA2-128s/192s/256s need FWSEAL_SLOW_TESTS=1");
        return;
    }
    for pq in [
        SigAlg::SlhDsaSha2_128s,
        SigAlg::SlhDsaSha2_192s,
        SigAlg::SlhDsaSha2_256s,
    ] {
        accept(Format::Raw, P256, pq);
        accept(Format::Mcuboot, P384, pq);
    }
}

#[test]
fn single_half_images_and_policies() {
    for f in Format::ALL {
        let keys = [spki(key(P256)), spki(key(ML65))];
        let tk = trusted(&keys);
        let pq_only = device_image(f, &signed(f, None, Some(ML65)));
        let c_only = device_image(f, &signed(f, Some(P256), None));
        assert_eq!(
            code(&verify(f, &pq_only, &tk, both())),
            "classical-signature-missing",
            "{f:?}"
        );
        assert_eq!(
            code(&verify(f, &c_only, &tk, both())),
            "pq-signature-missing",
            "{f:?}"
        );
        assert_eq!(
            code(&verify(f, &pq_only, &tk, policy(Require::PqOnly, 0))),
            "ok",
            "{f:?}"
        );
        assert_eq!(
            code(&verify(f, &c_only, &tk, policy(Require::ClassicalOnly, 0))),
            "ok",
            "{f:?}"
        );
        assert_eq!(
            code(&verify(f, &pq_only, &tk, policy(Require::ClassicalOnly, 0))),
            "classical-signature-missing"
        );
        assert_eq!(
            code(&verify(f, &c_only, &tk, policy(Require::PqOnly, 0))),
            "pq-signature-missing"
        );
    }
}

#[test]
fn security_counter_and_metadata() {
    for f in Format::ALL {
        let keys = [spki(key(P256)), spki(key(ML65))];
        let tk = trusted(&keys);
        let file = if f == Format::Mcuboot {
            // SEC_CNT = 7 in the fixture (imgtool --security-counter 7).
            signed(f, Some(P256), Some(ML65))
        } else {
            let mut o = options();
            o.security_counter = Some(7);
            o.image_version = Some("1.2.3+4".parse().expect("version"));
            sign_with(f, &input(f), Some(P256), Some(ML65), o)
        };
        let img = device_image(f, &file);
        let v = verify(f, &img, &tk, policy(Require::Both, 7)).expect("counter 7 ≥ 7");
        assert_eq!(v.security_counter, Some(7));
        assert_eq!(
            code(&verify(f, &img, &tk, policy(Require::Both, 8))),
            "security-counter-too-low",
            "{f:?}"
        );
        if f != Format::Mcuboot {
            assert_eq!(v.product.expect("product").as_str(), "test-product");
            let ver = v.image_version.expect("version");
            assert_eq!(
                (ver.major, ver.minor, ver.revision, ver.build),
                (1, 2, 3, 4)
            );
            // No counter at all counts as 0.
            let plain = device_image(f, &signed(f, Some(P256), Some(ML65)));
            assert_eq!(
                code(&verify(f, &plain, &tk, policy(Require::Both, 1))),
                "security-counter-too-low"
            );
        } else {
            let ver = v.image_version.expect("ih_ver");
            assert_eq!((ver.major, ver.build), (1, 7));
        }
    }
}

#[test]
fn hex_device_image_with_a_gap_and_a_fill_byte() {
    // multi.hex has gaps; sign with a non-default fill and check FILL comes back.
    let keys = [spki(key(P256)), spki(key(ML65))];
    let tk = trusted(&keys);
    let mut o = options();
    o.hex_fill = 0x00;
    let file = sign_with(Format::Hex, &input(Format::Hex), Some(P256), Some(ML65), o);
    let (lo, img) = hex_memory(&file, 0x00);
    let v = verify(Format::Hex, &img, &tk, both()).expect("fill 0x00");
    assert_eq!(v.fill, Some(0x00));
    assert_eq!(v.image_range.expect("range").0, lo);
    // The same memory with erased-flash gaps does not match the signed digests.
    let (_, ff) = hex_memory(&file, 0xff);
    if ff != img {
        assert_eq!(
            code(&verify(Format::Hex, &ff, &tk, both())),
            "digest-mismatch"
        );
    }
}

/// Every chunk size from 1 to 64, plus a few large ones, gives the same verdict for a valid
/// image and for images broken in the block, in the body and in a signature.
#[test]
fn every_chunk_size_gives_the_same_verdict() {
    let keys = [spki(key(P256)), spki(key(ML65))];
    let tk = trusted(&keys);
    for f in [Format::Raw, Format::Mcuboot, Format::DfuSe] {
        let img = device_image(f, &signed(f, Some(P256), Some(ML65)));
        let n = img.len();
        let mut cases = vec![("valid", img.clone())];
        let mut body = img.clone();
        body[40] ^= 1;
        cases.push(("body byte", body));
        let mut sig = img.clone();
        sig[n - 100] ^= 1;
        cases.push(("signature byte", sig));
        let mut last = img.clone();
        last[n - 1] ^= 0x20;
        cases.push(("last byte", last));
        for (what, case) in &cases {
            let want = code(&verify(f, case, &tk, both()));
            for chunk in (1..=64).chain([97, 1000, 4096, n]) {
                let got = code(&verify_chunked(f, case, &tk, both(), chunk));
                assert_eq!(got, want, "{f:?} {what}: chunk {chunk}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One negative test per reason code (signature block: raw unless said otherwise).

fn raw_keys() -> (Vec<u8>, Vec<u8>) {
    (spki(key(P256)), spki(key(ML65)))
}

fn check(f: Format, img: &[u8], want: &str) {
    let (a, b) = raw_keys();
    let tk = [TrustedKey::Spki(&a), TrustedKey::Spki(&b)];
    let got = verify(f, img, &tk, both());
    assert_eq!(code(&got), want, "{f:?}: {got:?}");
    // The streamed verdict (byte by byte) is the same.
    assert_eq!(code(&verify_chunked(f, img, &tk, both(), 1)), want);
}

fn body() -> Vec<u8> {
    (0..300u32).map(|i| (i * 7 + 3) as u8).collect()
}

fn good_prot() -> Vec<u8> {
    raw_protected(&body(), &[1, 3])
}

fn hybrid() -> [&'static fwseal_crypto::soft::SoftKey; 2] {
    [key(P256), key(ML65)]
}

#[test]
fn hand_built_block_is_accepted() {
    // The test helpers build blocks the way the spec says (a control for the mutations below).
    check(
        Format::Raw,
        &raw_image(&body(), &good_prot(), &hybrid()),
        "ok",
    );
}

#[test]
fn truncated() {
    let img = raw_image(&body(), &good_prot(), &hybrid());
    // Cut the image so that the footer's block_len is larger than the image.
    check(Format::Raw, &img[300 + 10..], "truncated");
    let m = device_image(
        Format::Mcuboot,
        &signed(Format::Mcuboot, Some(P256), Some(ML65)),
    );
    check(Format::Mcuboot, &m[..20], "truncated");
    check(Format::Mcuboot, &m[..500], "truncated");
    // Cut inside the protected area (ih_protect_tlv_size says more).
    check(Format::Mcuboot, &m[..0x408 + 100], "truncated");
}

#[test]
fn bad_length() {
    let mut img = raw_image(&body(), &good_prot(), &hybrid());
    // protected_len + 1: the areas no longer add up to block_len.
    img[300 + 8] += 1;
    check(Format::Raw, &img, "bad-length");
    // A TLV whose length runs past its area.
    let mut p = good_prot();
    p[4] = 0xff;
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "bad-length",
    );
    // IMAGE_RANGE that is not (0, block offset).
    let mut p = raw_protected(&body(), &[1, 3]);
    let n = p.len();
    p[n - 8] += 1;
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "bad-length",
    );
    // footer block_len below 32.
    let mut img = raw_image(&body(), &good_prot(), &hybrid());
    let n = img.len();
    img[n - 16..n - 12].copy_from_slice(&8u32.to_le_bytes());
    check(Format::Raw, &img, "bad-length");
    // MCUboot: protected it_tlv_tot disagrees with ih_protect_tlv_size.
    let mut m = device_image(
        Format::Mcuboot,
        &signed(Format::Mcuboot, Some(P256), Some(ML65)),
    );
    m[0x408 + 2] ^= 1;
    check(Format::Mcuboot, &m, "bad-length");
}

#[test]
fn bad_magic() {
    let mut img = raw_image(&body(), &good_prot(), &hybrid());
    img[300] = b'X';
    check(Format::Raw, &img, "bad-magic");
    let m = device_image(
        Format::Mcuboot,
        &signed(Format::Mcuboot, Some(P256), Some(ML65)),
    );
    let mut a = m.clone();
    a[0] ^= 1;
    check(Format::Mcuboot, &a, "bad-magic");
    let mut b = m.clone();
    b[0x408] ^= 1;
    check(Format::Mcuboot, &b, "bad-magic");
    let mut c = m.clone();
    let u0 = 0x408 + u16::from_le_bytes([m[10], m[11]]) as usize;
    assert_eq!(&m[u0..u0 + 2], &[0x07, 0x69]);
    c[u0] ^= 1;
    check(Format::Mcuboot, &c, "bad-magic");
}

#[test]
fn malformed() {
    let mut img = raw_image(&body(), &good_prot(), &hybrid());
    img[300 + 4] = 2; // version 2
    check(Format::Raw, &img, "malformed");
    let mut img = raw_image(&body(), &good_prot(), &hybrid());
    let n = img.len();
    img[n - 12] = 1; // footer reserved
    check(Format::Raw, &img, "malformed");
    // A protected TLV reserved field.
    let mut p = good_prot();
    p[2] = 1;
    check(Format::Raw, &raw_image(&body(), &p, &hybrid()), "malformed");
    // PRODUCT not UTF-8.
    let mut p = tlv(1, &[1]);
    p.extend(digest_tlv(1, &body()));
    p.extend(digest_tlv(3, &body()));
    p.extend(tlv(3, &[0xff, 0xfe]));
    let mut r = 0u64.to_le_bytes().to_vec();
    r.extend_from_slice(&300u64.to_le_bytes());
    p.extend(tlv(6, &r));
    check(Format::Raw, &raw_image(&body(), &p, &hybrid()), "malformed");
    // FILL in a raw block.
    let mut p = good_prot();
    p.extend(tlv(7, &[0xff]));
    check(Format::Raw, &raw_image(&body(), &p, &hybrid()), "malformed");
    // A post-quantum signature of the wrong length.
    let p = good_prot();
    let mut u = signatures("raw", &p, &hybrid());
    let n = u.len();
    u.truncate(n - 1);
    let sig_tlv_len_at = u.len() - (8 + 36 + 3308) + 4;
    u[sig_tlv_len_at..sig_tlv_len_at + 4].copy_from_slice(&(36u32 + 3308).to_le_bytes());
    let mut img = body();
    img.extend(block(&p, &u));
    check(Format::Raw, &img, "malformed");
    // No SIGNATURE at all.
    let mut img = body();
    img.extend(block(&good_prot(), &[]));
    check(Format::Raw, &img, "malformed");
    // An empty raw image (nothing before the block).
    check(
        Format::Raw,
        &raw_image(&[], &raw_protected(&[], &[1, 3]), &hybrid()),
        "malformed",
    );
    // MCUboot: SEC_CNT of 3 bytes, ih_hdr_size < 32.
    let mut m = device_image(
        Format::Mcuboot,
        &signed(Format::Mcuboot, Some(P256), Some(ML65)),
    );
    m[8] = 16;
    check(Format::Mcuboot, &m, "malformed");
}

#[test]
fn no_signature_block() {
    check(Format::Raw, &body(), "no-signature-block");
    check(Format::Raw, &body()[..10], "no-signature-block");
    check(
        Format::Dfu,
        &input(Format::Dfu)[..300],
        "no-signature-block",
    );
    // MCUboot without TLV areas, and with only the protected area.
    let m = input(Format::Mcuboot);
    check(Format::Mcuboot, &m[..0x408], "no-signature-block");
    check(Format::Mcuboot, &m[..0x414], "no-signature-block");
}

#[test]
fn unknown_tlv() {
    let mut p = good_prot();
    p.extend(tlv(0x0008, &[1, 2, 3]));
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "unknown-tlv",
    );
    // A SIGNATURE type in the protected area is unknown there.
    let mut p = good_prot();
    p.extend(tlv(0x0101, &[0; 40]));
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "unknown-tlv",
    );
    // And a protected type in the unprotected area.
    let p = good_prot();
    let mut u = signatures("raw", &p, &hybrid());
    u.extend(tlv(0x0003, b"x"));
    let mut img = body();
    img.extend(block(&p, &u));
    check(Format::Raw, &img, "unknown-tlv");
}

#[test]
fn duplicate_tlv() {
    let mut p = good_prot();
    p.extend(tlv(3, b"again"));
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "duplicate-tlv",
    );
    let mut p = good_prot();
    p.extend(digest_tlv(1, &body()));
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "duplicate-tlv",
    );
    // Every type once at its longest, then one more DIGEST: still an exact verdict although the
    // area is longer than the 504 bytes a valid one can be.
    let mut p = tlv(1, &[1]);
    for a in [1, 2, 3] {
        p.extend(digest_tlv(a, &body()));
    }
    p.extend(tlv(3, &[b'p'; 255]));
    p.extend(tlv(4, &[0; 8]));
    p.extend(tlv(5, &[0; 4]));
    let mut r = 0u64.to_le_bytes().to_vec();
    r.extend_from_slice(&300u64.to_le_bytes());
    p.extend(tlv(6, &r));
    assert_eq!(p.len(), 504 - 9);
    check(Format::Raw, &raw_image(&body(), &p, &hybrid()), "ok");
    p.extend(digest_tlv(3, &body()));
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "duplicate-tlv",
    );
    // MCUboot: SEC_CNT twice.
    let m = input(Format::Mcuboot);
    let mut dup = m[..0x408].to_vec();
    dup[10..12].copy_from_slice(&20u16.to_le_bytes());
    dup.extend_from_slice(&[0x08, 0x69, 20, 0]);
    dup.extend_from_slice(&[0x50, 0, 4, 0, 7, 0, 0, 0, 0x50, 0, 4, 0, 7, 0, 0, 0]);
    dup.extend_from_slice(&[0x07, 0x69, 4, 0]);
    check(Format::Mcuboot, &dup, "duplicate-tlv");
}

#[test]
fn format_mismatch() {
    let img = raw_image(&body(), &good_prot(), &hybrid());
    check(Format::Dfu, &img, "format-mismatch");
    check(Format::Hex, &img, "format-mismatch");
}

#[test]
fn digest_mismatch() {
    for f in Format::ALL {
        let mut img = device_image(f, &signed(f, Some(P256), Some(ML65)));
        let i = if f == Format::Mcuboot { 0x100 } else { 2 };
        img[i] ^= 0x01;
        check(f, &img, "digest-mismatch");
    }
}

#[test]
fn digest_missing() {
    // Valid signatures over a block without the SHA-512 DIGEST ML-DSA-65 is matched to.
    let p = raw_protected(&body(), &[1]);
    check(
        Format::Raw,
        &raw_image(&body(), &p, &hybrid()),
        "digest-missing",
    );
    // MCUboot without an image hash TLV.
    let m = device_image(Format::Mcuboot, &signed(Format::Mcuboot, None, Some(ML65)));
    let n = m.len();
    let mut no_hash = m[..n - 40].to_vec();
    no_hash.extend_from_slice(&[0x07, 0x69, 4, 0]);
    check(Format::Mcuboot, &no_hash, "digest-missing");
}

#[test]
fn unsupported_algorithm() {
    // An RSA-PSS SIGNATURE (0x0010): known to the spec, not implemented here.
    let p = good_prot();
    let mut u = signatures("raw", &p, &hybrid());
    let mut v = 0x0010u16.to_le_bytes().to_vec();
    v.extend_from_slice(&[0; 2 + 32]);
    v.extend_from_slice(&[1; 384]);
    u.extend(tlv(0x0101, &v));
    let mut img = body();
    img.extend(block(&p, &u));
    check(Format::Raw, &img, "unsupported-algorithm");
}

#[test]
fn untrusted_key() {
    let img = raw_image(&body(), &good_prot(), &[key(P256), other_key(ML65)]);
    check(Format::Raw, &img, "untrusted-key");
    for f in Format::ALL {
        let img = device_image(f, &signed(f, Some(P256), Some(ML65)));
        let keys = [spki(other_key(P256)), spki(key(ML65))];
        assert_eq!(
            code(&verify(f, &img, &trusted(&keys), both())),
            "untrusted-key",
            "{f:?}"
        );
        let keys = [spki(key(P256)), spki(other_key(ML65))];
        assert_eq!(
            code(&verify(f, &img, &trusted(&keys), both())),
            "untrusted-key",
            "{f:?}"
        );
    }
}

/// MCUboot: put back the SHA256 TLV (the first TLV of the unprotected area) after a change in
/// the hashed bytes.
fn mcuboot_rehash(m: &mut [u8]) {
    let u0 = 0x408 + u16::from_le_bytes([m[10], m[11]]) as usize;
    assert_eq!(&m[u0 + 4..u0 + 8], &[0x10, 0, 0x20, 0]);
    let h = fwseal_crypto::DigestAlg::Sha256.hash(&m[..u0]);
    m[u0 + 8..u0 + 40].copy_from_slice(&h);
}

#[test]
fn signature_invalid() {
    for f in Format::ALL {
        let img = device_image(f, &signed(f, Some(P256), Some(ML65)));
        let n = img.len();
        let (c_at, pq_at) = if f == Format::Mcuboot {
            // ECDSA_SIG is the last TLV; the PQ signature ends where the unprotected area
            // (≤ 152 bytes) starts.
            (n - 20, n - 152 - 100)
        } else {
            // SIGNATURE TLVs: ECDSA first, then ML-DSA-65 (3309 bytes before the footer).
            let s = n - 16 - 3345 - 8;
            (s - 20, n - 16 - 100)
        };
        let mut c = img.clone();
        c[c_at] ^= 0x01;
        check(f, &c, "classical-signature-invalid");
        let mut pq = img.clone();
        pq[pq_at] ^= 0x01;
        if f == Format::Mcuboot {
            // The image hash covers the protected area, PQ signature included: a changed PQ
            // byte is first a digest mismatch...
            check(f, &pq, "digest-mismatch");
            // ... and with the hash TLV recomputed, the PQ signature (checked before the
            // classical one, which now fails too) is the verdict.
            mcuboot_rehash(&mut pq);
        }
        check(f, &pq, "pq-signature-invalid");
    }
    // PQ-only MCUboot image, hash recomputed: only the PQ half is wrong.
    let mut m = device_image(Format::Mcuboot, &signed(Format::Mcuboot, None, Some(ML65)));
    let n = m.len();
    m[n - 40 - 50] ^= 0x80;
    mcuboot_rehash(&mut m);
    check(Format::Mcuboot, &m, "pq-signature-invalid");
}

#[test]
fn pq_tlv_not_last() {
    // Move SEC_CNT after FWSEAL_PQ_SIG in the protected area.
    let m = device_image(
        Format::Mcuboot,
        &signed(Format::Mcuboot, Some(P256), Some(ML65)),
    );
    let prot = u16::from_le_bytes([m[10], m[11]]) as usize;
    let (b, u0) = (0x408, 0x408 + prot);
    let mut out = m[..b + 4].to_vec();
    out.extend_from_slice(&m[b + 12..u0]); // PQ TLV
    out.extend_from_slice(&m[b + 4..b + 12]); // SEC_CNT
    out.extend_from_slice(&m[u0..]);
    check(Format::Mcuboot, &out, "pq-tlv-not-last");
}

#[test]
fn invalid_key_and_api_misuse() {
    let img = raw_image(&body(), &good_prot(), &hybrid());
    let garbage = [0x30u8, 0x03, 0x02, 0x01, 0x00];
    let e = Verifier::new(
        Format::Raw,
        img.len() as u64,
        &[TrustedKey::Spki(&garbage)],
        both(),
    )
    .err()
    .expect("invalid key");
    assert_eq!(e.code(), "invalid-key");
    assert!(!e.reason().is_verdict());
    // A P-256 key given as raw with a compressed point.
    let raw = key(P256).public_key().raw().expect("raw");
    let mut compressed = vec![0x02 | (raw[64] & 1)];
    compressed.extend_from_slice(&raw[1..33]);
    let k = [TrustedKey::Raw {
        alg: Alg::EcdsaP256,
        key: &compressed,
    }];
    assert_eq!(
        Verifier::new(Format::Raw, 100, &k, both())
            .err()
            .map(|e| e.code()),
        Some("invalid-key")
    );
    let (a, b) = raw_keys();
    let tk = [TrustedKey::Spki(&a), TrustedKey::Spki(&b)];
    // More bytes than asked for.
    let mut v = Verifier::new(Format::Raw, img.len() as u64, &tk, both()).expect("new");
    assert_eq!(v.next_read().map(|r| r.len), Some(16));
    assert_eq!(v.update(&[0; 17]).map_err(|e| e.code()), Err("api-misuse"));
    assert_eq!(v.finish().map_err(|e| e.code()).err(), Some("api-misuse"));
    // finish() too early.
    let v = Verifier::new(Format::Raw, img.len() as u64, &tk, both()).expect("new");
    assert_eq!(v.finish().map_err(|e| e.code()).err(), Some("api-misuse"));
    // Every code is distinct and round-trips.
    for r in Reason::ALL {
        assert_eq!(Reason::from_code(r.code()), Some(r));
    }
}

#[test]
fn context_size_is_fixed_and_small() {
    assert_eq!(CONTEXT_SIZE, std::mem::size_of::<Verifier<'static>>());
    // One signature buffer plus a few KiB of state.
    const { assert!(CONTEXT_SIZE < fwseal_verify::MAX_SIGNATURE_LEN + 4096) };
    eprintln!("CONTEXT_SIZE = {CONTEXT_SIZE}");
}

/// formats/signature-block.md, "ECDSA DER": strict DER only; low-S and high-S both verify.
#[test]
fn ecdsa_der_is_strict_and_high_s_is_accepted() {
    use p256::elliptic_curve::ops::Neg as _;
    let p = good_prot();
    let mut m = b"fwseal/sigblock/v1/raw\0".to_vec();
    m.extend_from_slice(&p);
    let k = key(P256);
    let der = k
        .sign(&fwseal_crypto::SignedMessage::Bytes(m))
        .expect("sign")
        .bytes;
    let sig = p256::ecdsa::Signature::from_der(&der).expect("der");
    let (r, s) = sig.split_scalars();
    let flipped = p256::ecdsa::Signature::from_scalars(r.to_bytes(), s.neg().to_bytes())
        .expect("n - s")
        .to_der()
        .as_bytes()
        .to_vec();
    let image = |sig: &[u8]| {
        let mut v = P256.id().to_le_bytes().to_vec();
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&k.key_id().0);
        v.extend_from_slice(sig);
        let mut img = body();
        img.extend(block(&p, &tlv(0x0101, &v)));
        img
    };
    let (a, _) = raw_keys();
    let tk = [TrustedKey::Spki(&a)];
    let classical = policy(Require::ClassicalOnly, 0);
    assert_eq!(
        code(&verify(Format::Raw, &image(&der), &tk, classical)),
        "ok"
    );
    assert_eq!(
        code(&verify(Format::Raw, &image(&flipped), &tk, classical)),
        "ok",
        "n - s"
    );
    // Trailing byte, long-form SEQUENCE length, a zero-padded INTEGER.
    let mut trailing = der.clone();
    trailing.push(0);
    let mut long = vec![0x30, 0x81, der[1]];
    long.extend_from_slice(&der[2..]);
    let rl = usize::from(der[3]);
    let mut padded = vec![0x30, der[1] + 1, 0x02, der[3] + 1, 0x00];
    padded.extend_from_slice(&der[4..]);
    for (what, bad) in [
        ("trailing", trailing),
        ("long form", long),
        ("padded r", padded),
    ] {
        assert_eq!(
            code(&verify(Format::Raw, &image(&bad), &tk, classical)),
            "classical-signature-invalid",
            "{what} (r is {rl} bytes)"
        );
    }
}

/// `Verifier::new_in` builds the same verifier in caller storage, and `finish` (by reference)
/// gives the same verdict every time it is called.
#[test]
fn new_in_and_repeated_finish_agree_with_new() {
    let f = Format::Raw;
    let img = device_image(f, &signed(f, Some(P256), Some(ML65)));
    let keys = [spki(key(P256)), spki(key(ML65))];
    let tk = trusted(&keys);
    let mut bad = img.clone();
    bad[0] ^= 1;
    for (image, want) in [(&img, "ok"), (&bad, "digest-mismatch")] {
        let mut slot = core::mem::MaybeUninit::uninit();
        let v = Verifier::new_in(&mut slot, f, image.len() as u64, &tk, both()).expect("keys");
        while let Some(r) = v.next_read() {
            let b = &image[r.offset as usize..(r.offset + r.len) as usize];
            if v.update(b).is_err() {
                break;
            }
        }
        let first = v.finish();
        assert_eq!(code(&first), want);
        assert_eq!(first, v.finish(), "finish twice");
        assert_eq!(first, verify(f, image, &tk, both()), "one-shot");
        assert_eq!(
            first,
            verify_chunked(f, image, &tk, both(), 4096),
            "new + chunks"
        );
    }
    // An invalid trusted key: new_in fails like new does.
    let junk = [TrustedKey::Spki(&[0x30, 0x00])];
    let mut slot = core::mem::MaybeUninit::uninit();
    assert_eq!(
        Verifier::new_in(&mut slot, f, img.len() as u64, &junk, both())
            .map(|_| ())
            .map_err(|e| e.code()),
        Err("invalid-key")
    );
}
