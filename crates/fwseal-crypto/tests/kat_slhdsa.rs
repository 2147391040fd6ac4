//! FIPS 205 known answers for SLH-DSA from NIST's ACVP (tests/vectors/slhdsa_acvp.json, see its
//! README): key generation from (SK.seed, SK.prf, PK.seed) through fwseal's seed API, signature
//! verification through the primitive fwseal verifies with, and the link between the two
//! interfaces — fwseal signs and verifies FIPS 205's external "pure" SLH-DSA with an empty
//! context, i.e. the internal functions over `0x00 ‖ 0x00 ‖ M`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fwseal_crypto::{pq, SigAlg};
use std::path::Path;

fn vectors() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/slhdsa_acvp.json");
    serde_json::from_slice(&std::fs::read(p).expect("vectors")).expect("json")
}

fn hex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn alg(name: &str) -> SigAlg {
    match name {
        "SLH-DSA-SHA2-128s" => SigAlg::SlhDsaSha2_128s,
        "SLH-DSA-SHA2-128f" => SigAlg::SlhDsaSha2_128f,
        "SLH-DSA-SHA2-192s" => SigAlg::SlhDsaSha2_192s,
        "SLH-DSA-SHA2-256s" => SigAlg::SlhDsaSha2_256s,
        other => panic!("unexpected parameter set {other}"),
    }
}

#[test]
fn key_generation_matches_acvp() {
    let v = vectors();
    let cases = v["keyGen"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for t in cases {
        let a = alg(t["parameterSet"].as_str().unwrap());
        let mut seed = hex(&t["skSeed"]);
        seed.extend(hex(&t["skPrf"]));
        seed.extend(hex(&t["pkSeed"]));
        let pk = pq::public_from_seed(a, &seed).expect("keygen");
        assert_eq!(pk, hex(&t["pk"]), "{a} tcId {}", t["tcId"]);
    }
}

fn verify_internal_192s(pk: &[u8], msg: &[&[u8]], sig: &[u8]) -> bool {
    use slh_dsa::{Sha2_192s, Signature, VerifyingKey};
    let Ok(vk) = VerifyingKey::<Sha2_192s>::try_from(pk) else {
        return false;
    };
    let Ok(s) = Signature::<Sha2_192s>::try_from(sig) else {
        return false;
    };
    vk.slh_verify_internal(msg, &s).is_ok()
}

#[test]
fn signature_verification_matches_acvp() {
    let v = vectors();
    let cases = v["sigVer"].as_array().unwrap();
    let (mut pass, mut fail) = (0, 0);
    for t in cases {
        assert_eq!(t["parameterSet"], "SLH-DSA-SHA2-192s");
        let (pk, msg, sig) = (hex(&t["pk"]), hex(&t["message"]), hex(&t["signature"]));
        let want = t["testPassed"].as_bool().unwrap();
        assert_eq!(
            verify_internal_192s(&pk, &[&msg], &sig),
            want,
            "tcId {} ({})",
            t["tcId"],
            t["reason"]
        );
        if want {
            pass += 1;
        } else {
            fail += 1;
        }
        // Through fwseal's own (external, empty-context) verifier the internal-interface
        // signature must never verify over the same bytes: the interfaces are domain-separated.
        assert!(pq::verify(SigAlg::SlhDsaSha2_192s, &pk, &msg, &sig).is_err());
    }
    assert!(pass >= 2 && fail >= 3, "both outcomes covered");
}

#[test]
fn fwseal_signs_the_external_pure_interface_with_an_empty_context() {
    let v = vectors();
    // A 192s key from fixed seeds; sign through fwseal, check with the internal function.
    let seed: Vec<u8> = (0u8..72).collect();
    let pk = pq::public_from_seed(SigAlg::SlhDsaSha2_192s, &seed).unwrap();
    let m = hex(&v["sigVer"][0]["message"]);
    let sig = pq::sign(SigAlg::SlhDsaSha2_192s, &seed, &m).unwrap();
    pq::verify(SigAlg::SlhDsaSha2_192s, &pk, &m, &sig).unwrap();
    assert!(
        verify_internal_192s(&pk, &[&[0, 0], &m], &sig),
        "M' = 0x00 ‖ 0x00 ‖ M"
    );
    assert!(!verify_internal_192s(&pk, &[&m], &sig));
    assert!(
        !verify_internal_192s(&pk, &[&[0, 1, 0x61], &m], &sig),
        "a context changes M'"
    );
}
