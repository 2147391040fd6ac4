//! Cross-verification of the post-quantum providers: the aws-lc-rs ML-DSA provider (feature
//! `aws-lc`) against the pure-Rust RustCrypto one. Same public key from the same seed, each one's
//! signatures verify under the other and under `fwseal_crypto::pq::verify`, the pinned-key check
//! refuses to sign, and tampering is rejected by both. Also the FIPS 204 KAT public keys.
#![cfg(feature = "aws-lc")]

use fwseal_crypto::provider::{default_provider, provider_for, AwsLc, PqProvider, RustCrypto};
use fwseal_crypto::{pq, CryptoError, SigAlg};
use std::path::Path;

const ML_DSA: [SigAlg; 3] = [SigAlg::MlDsa44, SigAlg::MlDsa65, SigAlg::MlDsa87];

fn seeds() -> Vec<[u8; 32]> {
    let mut v = vec![[0u8; 32], [0xffu8; 32]];
    // A few pseudo-random seeds (xorshift; no RNG dependency, reproducible failures).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3 {
        let mut s = [0u8; 32];
        for b in s.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
        v.push(s);
    }
    v
}

fn messages() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"firmware".to_vec(),
        (0..=255u8).cycle().take(5000).collect(),
    ]
}

#[test]
fn routing_and_support() {
    for alg in ML_DSA {
        assert!(AwsLc.supports(alg), "{alg}");
        assert_eq!(provider_for(alg).name(), "aws-lc-rs");
        assert!(default_provider().supports(alg));
    }
    for alg in [
        SigAlg::SlhDsaSha2_128s,
        SigAlg::SlhDsaSha2_128f,
        SigAlg::SlhDsaSha2_192s,
        SigAlg::SlhDsaSha2_256s,
    ] {
        assert!(!AwsLc.supports(alg), "{alg}");
        assert!(RustCrypto.supports(alg), "{alg}");
        assert_eq!(provider_for(alg).name(), "rustcrypto");
        assert!(default_provider().supports(alg));
        assert!(matches!(
            AwsLc.public_from_seed(alg, &vec![1u8; pq::seed_len(alg).expect("pq")]),
            Err(CryptoError::Misuse(_))
        ));
    }
    assert!(!AwsLc.supports(SigAlg::EcdsaP256Sha256));
    assert!(!default_provider().supports(SigAlg::EcdsaP256Sha256));
}

#[test]
fn same_public_key_and_cross_verification() {
    let providers: [&dyn PqProvider; 2] = [&AwsLc, &RustCrypto];
    for alg in ML_DSA {
        for seed in seeds() {
            let pk_aws = AwsLc.public_from_seed(alg, &seed).expect("aws pk");
            let pk_rc = RustCrypto.public_from_seed(alg, &seed).expect("rc pk");
            assert_eq!(pk_aws, pk_rc, "{alg}: public key from seed");
            assert_eq!(pk_aws, pq::public_from_seed(alg, &seed).expect("pq pk"));
            for msg in messages() {
                for signer in providers {
                    let sig = signer
                        .sign_from_seed(alg, &seed, &msg, &pk_aws)
                        .expect("sign");
                    assert_eq!(
                        Some(sig.len()),
                        alg.fixed_signature_len(),
                        "{alg} {}",
                        signer.name()
                    );
                    for verifier in providers {
                        verifier
                            .verify(alg, &pk_aws, &msg, &sig)
                            .unwrap_or_else(|e| {
                                panic!(
                                    "{alg}: {} sig, {} verify: {e}",
                                    signer.name(),
                                    verifier.name()
                                )
                            });
                        // Tampered message and tampered signature are rejected by both.
                        let mut m2 = msg.clone();
                        m2.push(0);
                        assert!(verifier.verify(alg, &pk_aws, &m2, &sig).is_err());
                        for pos in [0, sig.len() / 2, sig.len() - 1] {
                            let mut s2 = sig.clone();
                            s2[pos] ^= 0x01;
                            assert!(
                                verifier.verify(alg, &pk_aws, &msg, &s2).is_err(),
                                "{alg}: {} accepted a tampered {} signature (byte {pos})",
                                verifier.name(),
                                signer.name()
                            );
                        }
                        assert!(verifier
                            .verify(alg, &pk_aws, &msg, &sig[..sig.len() - 1])
                            .is_err());
                    }
                    pq::verify(alg, &pk_aws, &msg, &sig).expect("pq::verify");
                    default_provider()
                        .verify(alg, &pk_aws, &msg, &sig)
                        .expect("default verify");
                }
            }
        }
    }
}

#[test]
fn wrong_pinned_key_signs_nothing() {
    for alg in ML_DSA {
        let seed = [0x11u8; 32];
        let other = AwsLc.public_from_seed(alg, &[0x22u8; 32]).expect("other");
        for p in [&AwsLc as &dyn PqProvider, &RustCrypto, default_provider()] {
            assert!(
                matches!(
                    p.sign_from_seed(alg, &seed, b"m", &other),
                    Err(CryptoError::BadKey(_))
                ),
                "{alg} {}",
                p.name()
            );
            // A truncated pin is a mismatch too, and a wrong-length seed is misuse.
            let pk = p.public_from_seed(alg, &seed).expect("pk");
            assert!(matches!(
                p.sign_from_seed(alg, &seed, b"m", &pk[..pk.len() - 1]),
                Err(CryptoError::BadKey(_))
            ));
            assert!(matches!(
                p.sign_from_seed(alg, &seed[1..], b"m", &pk),
                Err(CryptoError::Misuse(_))
            ));
        }
    }
}

#[test]
fn aws_lc_signing_is_hedged_and_rustcrypto_deterministic() {
    let alg = SigAlg::MlDsa65;
    let seed = [5u8; 32];
    let pk = AwsLc.public_from_seed(alg, &seed).expect("pk");
    let a = AwsLc.sign_from_seed(alg, &seed, b"m", &pk).expect("a");
    let b = AwsLc.sign_from_seed(alg, &seed, b"m", &pk).expect("b");
    assert_ne!(a, b, "AWS-LC signs with fresh randomness");
    let c = RustCrypto.sign_from_seed(alg, &seed, b"m", &pk).expect("c");
    let d = RustCrypto.sign_from_seed(alg, &seed, b"m", &pk).expect("d");
    assert_eq!(c, d);
    assert_eq!(c, pq::sign(alg, &seed, b"m").expect("pq"));
}

#[test]
fn kat_public_keys_match_under_aws_lc() {
    for (alg, file) in [
        (SigAlg::MlDsa44, "kat_MLDSA_44_det_pure.rsp"),
        (SigAlg::MlDsa65, "kat_MLDSA_65_det_pure.rsp"),
        (SigAlg::MlDsa87, "kat_MLDSA_87_det_pure.rsp"),
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/vectors")
                .join(file),
        )
        .expect("vector file");
        let mut n = 0;
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let field = |k: &str| {
                block
                    .lines()
                    .filter_map(|l| l.split_once(" = "))
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| hex::decode(v.trim()).expect("hex"))
                    .expect(k)
            };
            let (xi, pk) = (field("xi"), field("pk"));
            assert_eq!(
                AwsLc.public_from_seed(alg, &xi).expect("aws pk"),
                pk,
                "{alg} {file} vector {n}"
            );
            n += 1;
        }
        assert_eq!(n, 5, "{file}");
    }
}
