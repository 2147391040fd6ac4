//! `fwseal verify` finds the trusted key of an MCUboot image the way MCUboot does: by KEYHASH
//! under the image hash algorithm (SHA-384 for ECDSA P-384) or by the full PUBKEY TLV
//! (`mcuboot_public_key = "full"`), for every classical algorithm MCUboot carries.

use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::mcuboot::PublicKeyFormat;
use fwseal_formats::{assemble, prepare, sign_prepared, Format, Mode, Request, SignOptions};
use std::path::Path;
use std::process::Command;

fn fwseal(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fwseal"))
        .args(args)
        .output()
        .expect("run fwseal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_finds_the_key_by_keyhash_or_pubkey_for_every_mcuboot_classical_algorithm() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |n: &str| dir.path().join(n).display().to_string();
    let input = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mcuboot/unsigned-h200.img"),
    )
    .expect("fixture");
    let pq = SoftKey::generate(SigAlg::MlDsa65).expect("pq");
    std::fs::write(p("pq.pem"), pq.public_key().spki_pem()).expect("w");
    for alg in [
        SigAlg::EcdsaP256Sha256,
        SigAlg::EcdsaP384Sha384,
        SigAlg::RsaPssSha256,
    ] {
        let key = SoftKey::generate(alg).expect("key");
        let other = SoftKey::generate(alg).expect("key");
        std::fs::write(p("c.pem"), key.public_key().spki_pem()).expect("w");
        std::fs::write(p("other.pem"), other.public_key().spki_pem()).expect("w");
        for (key_format, tlv) in [
            (PublicKeyFormat::Hash, "KEYHASH"),
            (PublicKeyFormat::Full, "PUBKEY"),
        ] {
            let req = Request {
                options: SignOptions {
                    mcuboot_public_key: key_format,
                    ..SignOptions::default()
                },
                ..Request::hybrid(alg, SigAlg::MlDsa65, Mode::Embedded, "cli-test")
            };
            let plan = prepare(Format::Mcuboot, &input, &req).expect("prepare");
            let set = sign_prepared(
                plan.as_ref(),
                Some(&key as &dyn Signer),
                Some(&pq as &dyn Signer),
                vec![],
            )
            .expect("sign");
            let signed = assemble(&input, &plan.embed(&set).expect("embed")).expect("asm");
            std::fs::write(p("app.signed.img"), &signed).expect("w");
            let what = format!("{alg} {tlv}");

            // The other key first: it is not the one the image names.
            let (code, out, err) = fwseal(&[
                "verify",
                &p("app.signed.img"),
                "-k",
                &p("other.pem"),
                "-k",
                &p("pq.pem"),
            ]);
            assert_eq!(code, 1, "{what}: {out}{err}");
            assert!(
                err.contains("no trusted key matches") && err.contains(tlv),
                "{what}: {err}"
            );
            // Both keys given: the named one is found and verifies.
            let (code, out, err) = fwseal(&[
                "verify",
                &p("app.signed.img"),
                "-k",
                &p("other.pem"),
                "-k",
                &p("c.pem"),
                "-k",
                &p("pq.pem"),
            ]);
            assert_eq!(code, 0, "{what}: {out}{err}");
            assert!(
                out.contains(&format!(
                    "OK embedded {alg} signature by {}",
                    key.public_key().key_id().to_hex()
                )),
                "{what}: {out}"
            );
            assert!(out.contains("OK embedded ml-dsa-65"), "{what}: {out}");
            let (code, out, err) = fwseal(&["inspect", &p("app.signed.img")]);
            assert_eq!(code, 0, "{what}: {out}{err}");
            assert!(
                out.contains(tlv),
                "{what}: inspect names the key by {tlv}: {out}"
            );
        }
    }
}
