#![no_main]
//! The ihex parser never panics.
use fwseal_formats::{describe, extract, prepare, Format, Mode, Request, SigAlg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = Format::from_name("ihex").expect("format");
    let _ = describe(f, data);
    let _ = extract(f, data);
    for mode in [Mode::Embedded, Mode::Detached] {
        let req = Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, mode, "fuzz");
        let _ = prepare(f, data, &req);
    }
});
