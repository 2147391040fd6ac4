#![no_main]
//! fwseal-verify on arbitrary device images: never panics or hangs, never asks for a read
//! outside the image or more than a few reads, and the streamed verdict (any chunk size) is the
//! one-shot verdict.
//!
//! Input: `format ‖ control ‖ chunk ‖ image`.
//! * `format`: index into `Format::ALL` (mod 5);
//! * `control`: bits 0–1 the required halves (0 both, 1 PQ only, 2 classical only, 3 both),
//!   bits 2–3 the minimum security counter (0, 1, 0x1_0000, u32::MAX), bits 4–5 the trusted
//!   keys (0 every test key as SPKI, 1 none, 2 every test key as a raw key, 3 the
//!   post-quantum keys only);
//! * `chunk`: the streaming chunk size: 0 the whole read, 1–127 that many bytes, 128–255
//!   `(c − 127) × 64` bytes (64 B … 8 KiB: flash pages).
//!
//! Seeds (fuzz/seeds/verify) are real signed device images: the worked examples of
//! formats/*.md (P-256 + ML-DSA-65, spec test keys) and two raw images with the other
//! algorithms, written by crates/fwseal-verify/tests/spec_examples.rs with
//! `FWSEAL_WRITE_FUZZ_SEEDS=1`. Their keys are trusted here, so mutations reach the signature
//! checks. Those checks are the slow part (an ECDSA or ML-DSA verification per signature, twice
//! per input) and the fuzzer cannot forge a signature anyway; with no trusted keys (control
//! bits 4–5 = 1) every signature is `untrusted-key` before any arithmetic, so the fuzzer can
//! spend most executions in the parsers.
use fwseal_verify::{verify, Alg, Format, Policy, Require, TrustedKey, Verifier};
use libfuzzer_sys::fuzz_target;

const P256: &[u8] = include_bytes!("../keys/test-p256.spki.der");
const MLDSA65: &[u8] = include_bytes!("../keys/test-ml-dsa-65.spki.der");
const P384: &[u8] = include_bytes!("../keys/test-p384.spki.der");
const MLDSA44: &[u8] = include_bytes!("../keys/test-ml-dsa-44.spki.der");
const MLDSA87: &[u8] = include_bytes!("../keys/test-ml-dsa-87.spki.der");

/// The raw key is the tail of the SPKI (the BIT STRING's content, no unused-bits octet after it).
fn raw(alg: Alg, spki: &'static [u8]) -> TrustedKey<'static> {
    TrustedKey::Raw {
        alg,
        key: &spki[spki.len() - alg.public_key_len()..],
    }
}

fuzz_target!(|data: &[u8]| {
    let [fmt, ctl, chunk, image @ ..] = data else {
        return;
    };
    let format = Format::ALL[usize::from(*fmt) % Format::ALL.len()];
    let policy = Policy {
        require: [
            Require::Both,
            Require::PqOnly,
            Require::ClassicalOnly,
            Require::Both,
        ][usize::from(ctl & 3)],
        min_security_counter: [0, 1, 0x1_0000, u32::MAX][usize::from((ctl >> 2) & 3)],
    };
    let spki = [
        TrustedKey::Spki(P256),
        TrustedKey::Spki(MLDSA65),
        TrustedKey::Spki(P384),
        TrustedKey::Spki(MLDSA44),
        TrustedKey::Spki(MLDSA87),
    ];
    let raws = [
        raw(Alg::EcdsaP256, P256),
        raw(Alg::MlDsa65, MLDSA65),
        raw(Alg::EcdsaP384, P384),
        raw(Alg::MlDsa44, MLDSA44),
        raw(Alg::MlDsa87, MLDSA87),
    ];
    let keys: &[TrustedKey<'_>] = match (ctl >> 4) & 3 {
        0 => &spki,
        1 => &[],
        2 => &raws,
        _ => &[spki[1], spki[3], spki[4]],
    };
    let chunk = match *chunk {
        0 => usize::MAX,
        c @ 1..=127 => usize::from(c),
        c => (usize::from(c) - 127) * 64,
    };
    let one = verify(format, image, keys, policy);
    let mut v = Verifier::new(format, image.len() as u64, keys, policy).expect("valid keys");
    let mut reads = 0;
    while let Some(r) = v.next_read() {
        reads += 1;
        assert!(reads <= 5, "more than 5 reads");
        assert!(
            r.len > 0 && r.offset + r.len <= image.len() as u64,
            "read outside the image"
        );
        let bytes = &image[r.offset as usize..(r.offset + r.len) as usize];
        if bytes
            .chunks(chunk.min(bytes.len()))
            .any(|c| v.update(c).is_err())
        {
            assert!(v.next_read().is_none(), "a read after an error");
            break;
        }
    }
    let streamed = v.finish();
    match (&one, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "accepted, with different results"),
        _ => assert_eq!(
            one.map_err(|e| e.code()).err(),
            streamed.map_err(|e| e.code()).err(),
            "one-shot and streamed verdicts differ"
        ),
    }
});
