#![no_main]
//! The hash-locally wire types: a `sign-digest` body (as the daemon parses it) and an answer (as
//! the client parses it) never panic, and every message decodes or is refused.
use fwseal_api::digest::{DigestSignRequest, DigestSignResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<DigestSignRequest>(data) {
        for it in &req.items {
            for m in &it.sign {
                let _ = m.decode();
            }
            for c in &it.carried {
                let _ = c.message.decode();
            }
        }
    }
    let _ = serde_json::from_slice::<DigestSignResponse>(data);
});
