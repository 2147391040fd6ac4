//! fwseal-tsa against real `openssl ts`: openssl verifies our replies, and we verify openssl's.
#![allow(clippy::unwrap_used, clippy::cloned_ref_to_slice_refs)]

use fwseal_crypto::soft::SoftKey;
use fwseal_crypto::{DigestAlg, SigAlg, Signer};
use fwseal_tsa::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn cfg() -> TsaConfig {
    TsaConfig {
        policy_oid: "1.3.6.1.4.1.55555.1.1".into(),
        accuracy_micros: 1_500,
        hash_algs: vec![DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512],
        include_chain: false,
    }
}

fn ago(secs: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(secs)
}

/// `respond` replies pass `openssl ts -verify` (-data and -digest), a tampered one does not,
/// and our own `verify` agrees.
#[test]
fn openssl_verifies_our_replies() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap(),
        SoftKey::generate_rsa(SigAlg::RsaPkcs1Sha256, 3072).unwrap(),
    ];
    for (i, key) in keys.iter().enumerate() {
        let cert = tsa_certificate("fwseal test TSA", key, None, ago(3600), 30).unwrap();
        let pem = write(
            dir.path(),
            &format!("tsa{i}.pem"),
            fwseal_crypto::cert::to_pem(&cert).as_bytes(),
        );
        let data = format!("firmware image {i}").into_bytes();
        let datap = write(dir.path(), &format!("data{i}"), &data);
        let digest = DigestAlg::Sha256.hash(&data);
        let req = request_der(DigestAlg::Sha256, &digest, 0x1234_5678_9abc_def0, true).unwrap();
        let resp = respond(
            &req,
            &cfg(),
            key,
            &cert,
            &[],
            42 + i as u128,
            SystemTime::now(),
        )
        .unwrap();
        let tsr = write(dir.path(), &format!("r{i}.tsr"), &resp);
        let out = openssl(&[
            "ts",
            "-verify",
            "-data",
            datap.to_str().unwrap(),
            "-in",
            tsr.to_str().unwrap(),
            "-CAfile",
            pem.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "openssl ts -verify ({i}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = openssl(&[
            "ts",
            "-verify",
            "-digest",
            &hex::encode(&digest),
            "-in",
            tsr.to_str().unwrap(),
            "-CAfile",
            pem.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "openssl ts -verify -digest ({i}): {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let token =
            token_from_response(&resp, DigestAlg::Sha256, &digest, 0x1234_5678_9abc_def0).unwrap();
        let info = verify(&token, &data, &[cert.clone()]).unwrap();
        assert_eq!(info.serial_hex, format!("{:02x}", 42 + i));
        assert_eq!(info.policy, "1.3.6.1.4.1.55555.1.1");
        assert_eq!(info.accuracy_micros, Some(1_500));
        assert_eq!(info.imprint, digest);
        assert!(info.tsa.contains("fwseal test TSA"), "{}", info.tsa);

        // Tamper: flip the last byte of the signature (the end of the reply).
        let mut bad = resp.clone();
        let n = bad.len();
        bad[n - 1] ^= 0x01;
        let tsr = write(dir.path(), &format!("bad{i}.tsr"), &bad);
        let out = openssl(&[
            "ts",
            "-verify",
            "-data",
            datap.to_str().unwrap(),
            "-in",
            tsr.to_str().unwrap(),
            "-CAfile",
            pem.to_str().unwrap(),
        ]);
        assert!(
            !out.status.success(),
            "openssl accepted a tampered reply ({i})"
        );
        let bad_token =
            token_from_response(&bad, DigestAlg::Sha256, &digest, 0x1234_5678_9abc_def0).unwrap();
        assert!(matches!(
            verify(&bad_token, &data, &[cert.clone()]),
            Err(TsaError::BadSignature(_))
        ));
        assert!(matches!(
            verify(&token, b"other data", &[cert.clone()]),
            Err(TsaError::ImprintMismatch(_))
        ));
    }
}

/// Malformed / unsupported requests get rejection replies that openssl parses.
#[test]
fn respond_rejects_bad_requests() {
    let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
    let cert = tsa_certificate("t", &key, None, ago(60), 1).unwrap();
    let mut c = cfg();
    c.hash_algs = vec![DigestAlg::Sha256];
    for (req, bit, says) in [
        (
            b"garbage".to_vec(),
            "badDataFormat",
            "the data submitted has the wrong format",
        ),
        (
            request_der(DigestAlg::Sha512, &[0u8; 64], 1, true).unwrap(),
            "badAlg",
            "unrecognized or unsupported algorithm identifier",
        ),
    ] {
        let resp = respond(&req, &c, &key, &cert, &[], 1, SystemTime::now()).unwrap();
        match token_from_response(&resp, DigestAlg::Sha256, &[0u8; 32], 1) {
            Err(TsaError::Status {
                status: 2,
                failure_info,
                ..
            }) => assert_eq!(failure_info, bit),
            other => panic!("expected a rejection, got {other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "r.tsr", &resp);
        let out = openssl(&["ts", "-reply", "-in", p.to_str().unwrap(), "-text"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Rejected"), "{text}");
        // Exactly the one failure bit, by openssl's name for it.
        let info = text
            .lines()
            .find_map(|l| l.strip_prefix("Failure info: "))
            .unwrap_or_default();
        assert_eq!(info, says, "{text}");
    }
}

/// The profile checks: a code-signing (non-TSA) certificate, genTime outside validity,
/// an untrusted certificate.
#[test]
fn verify_refuses_bad_certificates() {
    let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
    let data = b"payload";
    let digest = DigestAlg::Sha256.hash(data);
    let req = request_der(DigestAlg::Sha256, &digest, 7, true).unwrap();
    // Not a TSA certificate.
    let cs = fwseal_crypto::cert::self_signed(
        &key,
        &fwseal_crypto::cert::CertParams::code_signing("cs"),
    )
    .unwrap();
    let resp = respond(&req, &cfg(), &key, &cs, &[], 1, SystemTime::now()).unwrap();
    let tok = token_from_response(&resp, DigestAlg::Sha256, &digest, 7).unwrap();
    assert!(matches!(
        verify(&tok, data, &[cs.clone()]),
        Err(TsaError::BadCertificate { .. })
    ));
    // genTime after the certificate expired.
    let cert = tsa_certificate("t", &key, None, ago(10 * 86_400), 1).unwrap();
    let resp = respond(&req, &cfg(), &key, &cert, &[], 2, SystemTime::now()).unwrap();
    let tok = token_from_response(&resp, DigestAlg::Sha256, &digest, 7).unwrap();
    assert!(matches!(
        verify(&tok, data, &[cert.clone()]),
        Err(TsaError::BadCertificate { .. })
    ));
    // Untrusted: a valid TSA cert, but the anchor is someone else.
    let cert = tsa_certificate("t", &key, None, ago(60), 1).unwrap();
    let other = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
    let other_cert = tsa_certificate("other", &other, None, ago(60), 1).unwrap();
    let resp = respond(&req, &cfg(), &key, &cert, &[], 3, SystemTime::now()).unwrap();
    let tok = token_from_response(&resp, DigestAlg::Sha256, &digest, 7).unwrap();
    assert!(matches!(
        verify(&tok, data, &[other_cert]),
        Err(TsaError::UntrustedSigner(_))
    ));
    // Issued by a trusted CA key: accepted with only the issuer as anchor.
    let ca = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
    let ca_cert = tsa_certificate("ca", &ca, None, ago(60), 10).unwrap();
    let leaf = tsa_certificate("leaf", &key, Some((&ca_cert, &ca)), ago(60), 1).unwrap();
    let resp = respond(&req, &cfg(), &key, &leaf, &[], 4, SystemTime::now()).unwrap();
    let tok = token_from_response(&resp, DigestAlg::Sha256, &digest, 7).unwrap();
    verify(&tok, data, &[ca_cert]).unwrap();
    assert!(inspect(&tok).unwrap().tsa.contains("leaf"));
}

/// An openssl TSA in a temp dir; returns (dir, config path, cert DER).
fn openssl_tsa(ess_alg: &str) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        d.join("tsa.key").to_str().unwrap(),
        "-out",
        d.join("tsa.pem").to_str().unwrap(),
        "-subj",
        "/CN=openssl test TSA",
        "-days",
        "30",
        "-addext",
        "extendedKeyUsage=critical,timeStamping",
        "-addext",
        "keyUsage=critical,digitalSignature",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(d.join("serial"), "01\n").unwrap();
    let cfg = format!(
        "[tsa]\ndefault_tsa = tsa1\n[tsa1]\ndir = {dir}\nserial = $dir/serial\nsigner_cert = $dir/tsa.pem\n\
         signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
         digests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:500\nordering = no\n\
         tsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = {ess_alg}\n",
        dir = d.display()
    );
    let cfgp = write(d, "tsa.cnf", cfg.as_bytes());
    let out = openssl(&[
        "x509",
        "-in",
        d.join("tsa.pem").to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    assert!(out.status.success());
    (dir, cfgp, out.stdout)
}

fn openssl_reply(dir: &Path, cfgp: &Path, req: &[u8]) -> Vec<u8> {
    let q = write(dir, "q.tsq", req);
    let r = dir.join("r.tsr");
    let out = openssl(&[
        "ts",
        "-reply",
        "-config",
        cfgp.to_str().unwrap(),
        "-queryfile",
        q.to_str().unwrap(),
        "-out",
        r.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(r).unwrap()
}

/// `openssl ts -reply` tokens (ESSCertID with SHA-1 and ESSCertIDv2 with SHA-256) verify; the
/// negative cases are refused with the right error.
#[test]
fn we_verify_openssl_tokens() {
    for ess in ["sha1", "sha256"] {
        let (dir, cfgp, cert) = openssl_tsa(ess);
        let data = b"some firmware";
        for alg in [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512] {
            let digest = alg.hash(data);
            let nonce = 0xfeed_f00d_u64;
            let resp = openssl_reply(
                dir.path(),
                &cfgp,
                &request_der(alg, &digest, nonce, true).unwrap(),
            );
            let token = token_from_response(&resp, alg, &digest, nonce).unwrap();
            let info = verify(&token, data, &[cert.clone()]).unwrap();
            assert_eq!(info.policy, "1.2.3.4.1");
            assert_eq!(info.hash_alg, alg);
            assert_eq!(info.accuracy_micros, Some(1_500_000));
            assert_eq!(info.signer_cert_der, cert);
            verify_digest(&token, alg, &digest, &[cert.clone()]).unwrap();
            assert!(matches!(
                token_from_response(&resp, alg, &digest, nonce + 1),
                Err(TsaError::NonceMismatch)
            ));
            assert!(matches!(
                token_from_response(&resp, alg, &alg.hash(b"x"), nonce),
                Err(TsaError::ImprintMismatch(_))
            ));
            assert!(matches!(
                verify(&token, b"wrong data", &[cert.clone()]),
                Err(TsaError::ImprintMismatch(_))
            ));
            // Altered signed attributes: the message-digest attribute is SHA-256 of the TSTInfo;
            // find and change it.
            let key = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
            let other = tsa_certificate("x", &key, None, ago(60), 1).unwrap();
            assert!(matches!(
                verify(&token, data, &[other]),
                Err(TsaError::UntrustedSigner(_))
            ));
            let mut bad = token.clone();
            let pos = bad
                .windows(11)
                .position(|w| {
                    w == [
                        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04,
                    ]
                })
                .unwrap();
            // OID, SET tag, len, OCTET STRING tag, len, then the digest.
            bad[pos + 11 + 4] ^= 0xff;
            assert!(matches!(
                verify(&bad, data, &[cert.clone()]),
                Err(TsaError::BadSignature(_))
            ));
        }
        // A rejection: SHA-1 imprints are not in `digests`.
        let sha1 = [0u8; 20];
        let mut req = request_der(DigestAlg::Sha256, &[0u8; 32], 5, true).unwrap();
        // Build a SHA-1 request with openssl instead (our request_der only makes SHA-2).
        let q = dir.path().join("sha1.tsq");
        let dp = write(dir.path(), "d", data);
        let out = openssl(&[
            "ts",
            "-query",
            "-data",
            dp.to_str().unwrap(),
            "-sha1",
            "-cert",
            "-out",
            q.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        req.clear();
        req.extend(std::fs::read(&q).unwrap());
        let resp = openssl_reply(dir.path(), &cfgp, &req);
        assert!(matches!(
            token_from_response(&resp, DigestAlg::Sha256, &sha1, 5),
            Err(TsaError::Status { status: 2, .. })
        ));
    }
}

#[cfg(feature = "client")]
fn python_tsa(cfgp: &Path) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tsa/openssl_tsa_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(cfgp)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

#[cfg(feature = "client")]
#[test]
fn client_against_openssl_tsa_with_failover() {
    use fwseal_tsa::client::TsaClient;
    let (_dir, cfgp, cert) = openssl_tsa("sha256");
    let (child, port) = python_tsa(&cfgp);
    let mut child = Kill(child);
    // A dead port: bind and drop.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_url = format!("http://127.0.0.1:{dead}/");
    let live_url = format!("http://127.0.0.1:{port}/");
    let c = TsaClient::new(
        vec![live_url.clone()],
        DigestAlg::Sha256,
        Duration::from_secs(10),
        vec![cert.clone()],
    )
    .unwrap();
    let (token, info) = c.timestamp(b"client data").unwrap();
    assert_eq!(info.signer_cert_der, cert);
    verify(&token, b"client data", &[cert.clone()]).unwrap();
    let c = TsaClient::new(
        vec![dead_url.clone(), live_url],
        DigestAlg::Sha384,
        Duration::from_secs(10),
        vec![cert.clone()],
    )
    .unwrap();
    let (_, info) = c.timestamp(b"failover").unwrap();
    assert_eq!(info.hash_alg, DigestAlg::Sha384);
    let _ = child.0.kill();
    let _ = child.0.wait();
    let c = TsaClient::new(
        vec![dead_url.clone(), dead_url],
        DigestAlg::Sha256,
        Duration::from_secs(2),
        vec![],
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    assert!(matches!(
        c.timestamp(b"x"),
        Err(TsaError::Unavailable { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn inspect_never_panics_on_garbage() {
    for n in 0..64usize {
        let v: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
        assert!(inspect(&v).is_err());
        assert!(token_from_response(&v, DigestAlg::Sha256, &[0; 32], 1).is_err());
    }
    assert!(matches!(
        inspect(&vec![0x30; 70_000]),
        Err(TsaError::Malformed { .. })
    ));
    let _ = Signer::alg(&SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap());
}

/// Kills the TSA child process even when the test panics.
#[cfg(feature = "client")]
struct Kill(std::process::Child);
#[cfg(feature = "client")]
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
