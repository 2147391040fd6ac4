#![no_main]
//! The signature block decoder and the raw-image extractor never panic.
use fwseal_formats::{raw, sigblock, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sigblock::decode(Format::Raw, data, 0);
    let _ = sigblock::find_trailer(Format::Raw, data);
    let _ = raw::extract(data);
});
