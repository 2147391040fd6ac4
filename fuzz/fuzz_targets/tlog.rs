#![no_main]
//! The transparency log's parsers and verifiers (crates/fwseal-tlog) on arbitrary bytes: a
//! signed note, a checkpoint body, and inclusion / consistency proofs built from the input
//! never panic, and a parse that succeeds re-encodes to the same text.
use fwseal_tlog::{checkpoint::Checkpoint, note, verify_consistency, verify_inclusion, Hash};
use libfuzzer_sys::fuzz_target;

fn hashes(data: &[u8]) -> Vec<Hash> {
    data.chunks_exact(32)
        .take(70)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = note::parse(data) {
        let _ = Checkpoint::parse(n.text.as_bytes());
    }
    if let Ok(cp) = Checkpoint::parse(data) {
        // What parses re-encodes to the same body.
        let text = cp.to_text().expect("a parsed checkpoint re-encodes");
        assert_eq!(text.as_bytes(), data, "checkpoint round trip");
    }
    let trusted = note::TrustedKeys::new("fuzz.example/log", Vec::new());
    let _ = fwseal_tlog::verify_checkpoint(data, &trusted);
    // Proofs: 16 bytes of sizes/indices, then 32-byte hashes.
    if data.len() >= 16 + 64 {
        let a = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        let hs = hashes(&data[16..]);
        let (x, y, rest) = (hs[0], hs[1], &hs[2..]);
        let _ = verify_inclusion(&x, a, b, rest, &y);
        let _ = verify_consistency(a, b, &x, &y, rest);
    }
});
