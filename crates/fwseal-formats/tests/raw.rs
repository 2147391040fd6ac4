//! Raw images (.bin/.fw) against outside judges: `openssl dgst -verify` for the detached classical
//! half, and the independent Python verifiers in `tests/verifiers/` (pyca `cryptography`) for the
//! signature block and the detached document.

mod common;

use common::{fixture, repo_root, run, tool, Keys};
use fwseal_crypto::Signer;
use fwseal_formats::{detect, Format, Mode};
use std::process::Command;

fn write_keys(keys: &Keys, dir: &std::path::Path) -> (String, String) {
    let ec = dir.join("ec.pem");
    let pq = dir.join("pq.pem");
    std::fs::write(&ec, keys.classical.public_key().spki_pem()).expect("write");
    std::fs::write(&pq, keys.pq.public_key().spki_pem()).expect("write");
    (ec.display().to_string(), pq.display().to_string())
}

#[test]
fn embedded_block_verifies_with_independent_python_verifier() {
    let Some(py) = tool("python3") else { return };
    let keys = Keys::default_hybrid();
    let dir = common::tempdir();
    let (ec, pq) = write_keys(&keys, dir.path());
    let verifier = repo_root().join("tests/verifiers/sigblock.py");
    for name in ["raw/sample.bin", "raw/sample.fw"] {
        let input = fixture(name);
        assert_eq!(detect(&input, Some("bin")).expect("detect"), Format::Raw);
        let signed = keys.embed(Format::Raw, &input, &keys.request(Mode::Embedded), vec![]);
        assert_eq!(&signed[..input.len()], &input[..], "image bytes unchanged");
        assert_eq!(keys.verify_extracted(Format::Raw, &signed), 2);
        let out = dir.path().join("signed.bin");
        std::fs::write(&out, &signed).expect("write");
        let r = run(Command::new(&py)
            .arg(&verifier)
            .args(["--format", "raw", "--require-both", "--image"])
            .arg(&out)
            .args(["--key", &ec, "--key", &pq]));
        assert!(r.ok && r.stdout.starts_with("OK"), "{name}: {}", r.text());

        // Tampering with one image byte must be caught by the outside judge too.
        let mut bad = signed.clone();
        bad[input.len() / 2] ^= 0x01;
        std::fs::write(&out, &bad).expect("write");
        let r = run(Command::new(&py)
            .arg(&verifier)
            .args(["--format", "raw", "--image"])
            .arg(&out)
            .args(["--key", &ec, "--key", &pq]));
        assert!(
            !r.ok && r.stdout.contains("digest-mismatch"),
            "{name}: {}",
            r.text()
        );
    }
}

#[test]
fn detached_classical_half_verifies_with_openssl_dgst() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let keys = Keys::default_hybrid();
    let dir = common::tempdir();
    let (ec, _pq) = write_keys(&keys, dir.path());
    for name in ["raw/sample.bin", "raw/sample.fw"] {
        let input = fixture(name);
        let (_plan, set) = keys.sign(Format::Raw, &input, &keys.request(Mode::Detached), vec![]);
        let img = dir.path().join("image");
        let sig = dir.path().join("sig.der");
        std::fs::write(&img, &input).expect("write");
        std::fs::write(&sig, &set.classical().expect("classical half").bytes).expect("write");
        let r = run(Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify", &ec, "-signature"])
            .arg(&sig)
            .arg(&img));
        assert!(
            r.ok && r.stdout.contains("Verified OK"),
            "{name}: {}",
            r.text()
        );
        let mut bad = input.clone();
        bad[0] ^= 0x80;
        std::fs::write(&img, &bad).expect("write");
        let r = run(Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify", &ec, "-signature"])
            .arg(&sig)
            .arg(&img));
        assert!(!r.ok, "{name}: openssl accepted a modified image");
    }
}

#[test]
fn detached_document_verifies_with_independent_python_verifier() {
    let Some(py) = tool("python3") else { return };
    let keys = Keys::default_hybrid();
    let dir = common::tempdir();
    let (ec, pq) = write_keys(&keys, dir.path());
    let input = fixture("raw/sample.fw");
    let (plan, set) = keys.sign(Format::Raw, &input, &keys.request(Mode::Detached), vec![]);
    let doc = plan.detached(&set).expect("doc");
    let img = dir.path().join("sample.fw");
    let docp = dir.path().join("sample.fw.sig.json");
    std::fs::write(&img, &input).expect("write");
    std::fs::write(&docp, doc.to_json()).expect("write");
    let verifier = repo_root().join("tests/verifiers/detached.py");
    let r = run(Command::new(&py)
        .arg(&verifier)
        .arg("--image")
        .arg(&img)
        .arg("--doc")
        .arg(&docp)
        .args(["--key", &ec, "--key", &pq]));
    assert!(r.ok && r.stdout.starts_with("OK"), "{}", r.text());
    // A document for another image is refused.
    let mut other = input.clone();
    other.push(0);
    std::fs::write(&img, &other).expect("write");
    let r = run(Command::new(&py)
        .arg(&verifier)
        .arg("--image")
        .arg(&img)
        .arg("--doc")
        .arg(&docp)
        .args(["--key", &ec, "--key", &pq]));
    assert!(!r.ok, "{}", r.text());
}

#[test]
fn selectable_primary_digest() {
    let keys = Keys::default_hybrid();
    let input = fixture("raw/sample.bin");
    let mut req = keys.request(Mode::Embedded);
    req.options.raw_digest = fwseal_crypto::DigestAlg::Sha384;
    let (plan, _set) = keys.sign(Format::Raw, &input, &req, vec![]);
    assert_eq!(
        plan.digest(),
        (
            fwseal_crypto::DigestAlg::Sha384,
            fwseal_crypto::DigestAlg::Sha384.hash(&input)
        )
    );
    let signed = keys.embed(Format::Raw, &input, &req, vec![]);
    let ex = fwseal_formats::extract(Format::Raw, &signed).expect("extract");
    assert_eq!(ex.digest.0, fwseal_crypto::DigestAlg::Sha384);
}

/// An empty raw image (0 bytes, or nothing but an old signature block) is refused with a
/// located `Malformed` error in every mode and through every entry point (in-memory, stream,
/// file); one byte is the minimum and signs.
#[test]
fn empty_raw_image_is_refused_and_one_byte_is_the_minimum() {
    use fwseal_formats::{files, prepare, prepare_stream, FormatError, Location};
    let keys = Keys::default_hybrid();
    let one_signed = keys.embed(Format::Raw, b"x", &keys.request(Mode::Embedded), vec![]);
    let block_only = one_signed[1..].to_vec();
    let dir = common::tempdir();
    for mode in [Mode::Embedded, Mode::Detached] {
        let req = keys.request(mode);
        for (what, input) in [("0 bytes", Vec::new()), ("block only", block_only.clone())] {
            let path = dir.path().join("empty.bin");
            std::fs::write(&path, &input).expect("write");
            let mut stream = prepare_stream(Format::Raw, &req, 1 << 20).expect("stream");
            stream.update(&input).expect("update");
            let results = [
                prepare(Format::Raw, &input, &req).map(|_| ()),
                stream.finish().map(|_| ()),
                files::prepare_file(Format::Raw, &path, &req, 1 << 20)
                    .map(|_| ())
                    .map_err(|e| match e {
                        files::DetectError::Format(f) => f,
                        other => panic!("{what}: I/O error {other}"),
                    }),
            ];
            for r in results {
                match r {
                    Err(FormatError::Malformed {
                        format: Format::Raw,
                        at: Location::Offset(0),
                        what: w,
                    }) => assert!(w.contains("empty image"), "{what} {mode:?}: {w}"),
                    other => {
                        panic!("{what} {mode:?}: expected the empty-image error, got {other:?}")
                    }
                }
            }
        }
        // The minimum, 1 byte, signs (and re-signing its signed form strips the old block).
        for input in [b"x".to_vec(), one_signed.clone()] {
            let plan = prepare(Format::Raw, &input, &req).expect("1-byte image");
            assert_eq!(
                plan.digest().1,
                fwseal_crypto::DigestAlg::Sha256.hash(b"x"),
                "the image is the one byte"
            );
        }
    }
    let signed = keys.embed(
        Format::Raw,
        &one_signed,
        &keys.request(Mode::Embedded),
        vec![],
    );
    assert_eq!(signed.len(), one_signed.len());
    assert_eq!(keys.verify_extracted(Format::Raw, &signed), 2);
}
