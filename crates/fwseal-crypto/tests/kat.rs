//! FIPS 204 known-answer tests for ML-DSA-44/65/87: key generation from ξ, deterministic signing
//! (with the vector's context string) and verification, against the NIST-format KAT files shipped
//! in pyca's `cryptography_vectors` 48.0.0 (`asymmetric/MLDSA/kat_MLDSA_*_det_pure.rsp`; the
//! first five vectors of each, copied unmodified — see `tests/vectors/README.md`).

use fwseal_crypto::{pq, SigAlg};
use std::collections::HashMap;
use std::path::Path;

fn vectors(file: &str) -> Vec<HashMap<String, Vec<u8>>> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(file),
    )
    .expect("vector file");
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .filter_map(|l| l.split_once(" = "))
                .filter(|(k, _)| *k != "count")
                .map(|(k, v)| (k.to_string(), hex::decode(v.trim()).expect("hex")))
                .collect()
        })
        .collect()
}

fn check(alg: SigAlg, file: &str) {
    let vs = vectors(file);
    assert_eq!(vs.len(), 5, "{file}");
    let sig_len = alg.fixed_signature_len().expect("fixed length");
    for (i, v) in vs.iter().enumerate() {
        let pk = pq::public_from_seed(alg, &v["xi"]).expect("keygen");
        assert_eq!(pk, v["pk"], "{alg} vector {i}: public key from xi");
        let (sig, msg) = v["sm"].split_at(sig_len);
        assert_eq!(
            msg,
            v["msg"].as_slice(),
            "{alg} vector {i}: sm = sig || msg"
        );
        pq::ml_dsa_verify_with_context(alg, &pk, msg, &v["ctx"], sig)
            .expect("KAT signature verifies");
        let mine = pq::ml_dsa_sign_with_context(alg, &v["xi"], msg, &v["ctx"]).expect("sign");
        assert_eq!(mine, sig, "{alg} vector {i}: deterministic signature");
        // And the negative: a different context or message must not verify.
        assert!(pq::ml_dsa_verify_with_context(alg, &pk, msg, b"other", sig).is_err());
        let mut m2 = msg.to_vec();
        m2.push(0);
        assert!(pq::ml_dsa_verify_with_context(alg, &pk, &m2, &v["ctx"], sig).is_err());
    }
}

#[test]
fn ml_dsa_44_kat() {
    check(SigAlg::MlDsa44, "kat_MLDSA_44_det_pure.rsp");
}

#[test]
fn ml_dsa_65_kat() {
    check(SigAlg::MlDsa65, "kat_MLDSA_65_det_pure.rsp");
}

#[test]
fn ml_dsa_87_kat() {
    check(SigAlg::MlDsa87, "kat_MLDSA_87_det_pure.rsp");
}
