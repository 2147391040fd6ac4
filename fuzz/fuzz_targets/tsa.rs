#![no_main]
//! RFC 3161 (crates/fwseal-tsa) on arbitrary bytes: the built-in TSA's responder answers
//! anything with a reply (never an error: bad input gets a rejection), and the client-side
//! parsers and verifiers (`token_from_response`, `inspect`, `verify`) never panic — on the input
//! itself and on the responder's reply to it.
use fwseal_crypto::soft::SoftKey;
use fwseal_crypto::{DigestAlg, SigAlg};
use fwseal_tsa::{inspect, respond, token_from_response, tsa_certificate, verify, TsaConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

struct Tsa {
    key: SoftKey,
    cert: Vec<u8>,
    cfg: TsaConfig,
}

fn tsa() -> &'static Tsa {
    static TSA: OnceLock<Tsa> = OnceLock::new();
    TSA.get_or_init(|| {
        let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("P-256 key");
        let start = SystemTime::now() - Duration::from_secs(3600);
        let cert = tsa_certificate("fuzz TSA", &key, None, start, 30).expect("TSA certificate");
        let cfg = TsaConfig {
            policy_oid: "1.3.6.1.4.1.55555.1.1".into(),
            accuracy_micros: 1000,
            hash_algs: vec![DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512],
            include_chain: false,
        };
        Tsa { key, cert, cfg }
    })
}

fuzz_target!(|data: &[u8]| {
    let t = tsa();
    let trusted = [t.cert.clone()];
    // The responder: any request bytes get a DER reply.
    let reply = respond(data, &t.cfg, &t.key, &t.cert, &[], 7, SystemTime::now())
        .expect("respond fails only when signing does");
    let _ = token_from_response(&reply, DigestAlg::Sha256, &[0u8; 32], 0);
    // The client side on the raw input: as a reply, as a token.
    let _ = token_from_response(data, DigestAlg::Sha256, &[0u8; 32], 0);
    let _ = inspect(data);
    let _ = verify(data, b"fuzz", &trusted);
});
