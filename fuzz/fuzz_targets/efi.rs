#![no_main]
//! The efi parser never panics.
use fwseal_formats::{describe, extract, prepare, Format, Mode, Request, SigAlg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = Format::from_name("efi").expect("format");
    let _ = describe(f, data);
    let _ = extract(f, data);
    for mode in [Mode::Embedded, Mode::Detached] {
        // ECDSA is refused for .efi after parsing; RSA runs the whole plan (hashes, PKCS#7 attrs).
        for classical in [SigAlg::EcdsaP256Sha256, SigAlg::RsaPkcs1Sha256] {
            let req = Request::hybrid(classical, SigAlg::MlDsa65, mode, "fuzz");
            let _ = prepare(f, data, &req);
        }
    }
});
