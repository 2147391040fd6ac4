#![no_main]
//! The mcuboot parser never panics.
use fwseal_formats::{describe, extract, mcuboot, prepare, Format, Mode, Request, SigAlg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = Format::from_name("mcuboot").expect("format");
    let _ = describe(f, data);
    let _ = extract(f, data);
    for mode in [Mode::Embedded, Mode::Detached] {
        let mut req = Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, mode, "fuzz");
        let _ = prepare(f, data, &req);
        // The full-public-key layout and the slot-size check.
        req.options.mcuboot_public_key = mcuboot::PublicKeyFormat::Full;
        req.options.mcuboot_slot = Some(mcuboot::Slot::new(
            u32::from(data.first().copied().unwrap_or(0)) << 8,
        ));
        let _ = prepare(f, data, &req);
    }
});
