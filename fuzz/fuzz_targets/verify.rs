#![no_main]
//! fwseal-verify on arbitrary device images: never panics or hangs, never asks for a read
//! outside the image or more than a few reads, and the streamed verdict (any chunk size) is the
//! one-shot verdict. Input: `format index ‖ chunk control ‖ image`. Seeds (fuzz/seeds/verify)
//! are the worked examples of formats/*.md, signed with the spec test keys trusted here, so
//! mutations reach the signature checks.
use fwseal_verify::{verify, Format, Policy, Require, TrustedKey, Verifier};
use libfuzzer_sys::fuzz_target;

const P256: &[u8] = include_bytes!("../keys/test-p256.spki.der");
const MLDSA65: &[u8] = include_bytes!("../keys/test-ml-dsa-65.spki.der");

fuzz_target!(|data: &[u8]| {
    let [fmt, ctl, image @ ..] = data else {
        return;
    };
    let format = Format::ALL[usize::from(*fmt) % Format::ALL.len()];
    let keys = [TrustedKey::Spki(P256), TrustedKey::Spki(MLDSA65)];
    let policy = Policy {
        require: [Require::Both, Require::PqOnly, Require::ClassicalOnly][usize::from(ctl >> 6) % 3],
        min_security_counter: u32::from(ctl >> 6 == 3),
    };
    // Chunk sizes 1..=63, or the whole read.
    let chunk = match ctl & 0x3f {
        0 => usize::MAX,
        c => usize::from(c),
    };
    let one = verify(format, image, &keys, policy);
    let mut v = Verifier::new(format, image.len() as u64, &keys, policy).expect("valid keys");
    let mut reads = 0;
    while let Some(r) = v.next_read() {
        reads += 1;
        assert!(reads <= 5, "more than 5 reads");
        assert!(r.len > 0 && r.offset + r.len <= image.len() as u64, "read outside the image");
        let bytes = &image[r.offset as usize..(r.offset + r.len) as usize];
        if bytes.chunks(chunk.min(bytes.len())).any(|c| v.update(c).is_err()) {
            assert!(v.next_read().is_none());
            break;
        }
    }
    let streamed = v.finish();
    assert_eq!(one.map_err(|e| e.code()), streamed.map_err(|e| e.code()));
});
