//! CSRs built through the Signer interface verify with `openssl req -verify`.

use fwseal_crypto::{cert, soft::SoftKey, SigAlg};
use std::process::Command;

#[test]
fn csr_verifies_with_openssl() {
    let have = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("openssl").is_file()));
    if !have {
        assert!(
            std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() != Ok("1"),
            "openssl is not installed"
        );
        eprintln!("SKIP: openssl not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    for (alg, key) in [
        (
            SigAlg::EcdsaP256Sha256,
            SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("ec"),
        ),
        (
            SigAlg::RsaPkcs1Sha256,
            SoftKey::generate_rsa(SigAlg::RsaPkcs1Sha256, 2048).expect("rsa"),
        ),
    ] {
        let der = cert::csr(&key, "widget release key").expect("csr");
        let p = dir.path().join(format!("{alg}.csr"));
        std::fs::write(
            &p,
            fwseal_crypto::verify::pem_encode("CERTIFICATE REQUEST", &der),
        )
        .expect("w");
        let out = Command::new("openssl")
            .args(["req", "-verify", "-noout", "-subject", "-in"])
            .arg(&p)
            .output()
            .expect("openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success()
                && text.contains("verify OK")
                && text.contains("widget release key"),
            "{alg}: {text}"
        );
        // A flipped signature byte must fail.
        let mut bad = der.clone();
        let n = bad.len() - 3;
        bad[n] ^= 1;
        std::fs::write(
            &p,
            fwseal_crypto::verify::pem_encode("CERTIFICATE REQUEST", &bad),
        )
        .expect("w");
        let out = Command::new("openssl")
            .args(["req", "-verify", "-noout", "-in"])
            .arg(&p)
            .output()
            .expect("openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("verify OK"),
            "{alg}: openssl accepted a corrupted CSR: {text}"
        );
    }
}
