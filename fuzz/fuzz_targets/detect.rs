#![no_main]
//! Detection, preparation and extraction of arbitrary bytes never panic.
use fwseal_formats::{detect, extract, prepare, Format, Mode, Request, SigAlg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect(data, None);
    let req = Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, Mode::Embedded, "fuzz");
    for f in Format::all() {
        let _ = prepare(f, data, &req);
        let _ = extract(f, data);
    }
});
