//! `fwseal inspect` and `fwseal verify` as a user runs them: real binary, real files.

use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Format, Mode, Request};
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

struct Setup {
    dir: tempfile::TempDir,
    ec: SoftKey,
    pq: SoftKey,
}

impl Setup {
    fn new() -> Self {
        let s = Setup {
            dir: tempfile::tempdir().expect("tmp"),
            ec: SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("ec"),
            pq: SoftKey::generate(SigAlg::MlDsa65).expect("pq"),
        };
        std::fs::write(s.p("ec.pem"), s.ec.public_key().spki_pem()).expect("w");
        std::fs::write(s.p("pq.pem"), s.pq.public_key().spki_pem()).expect("w");
        s
    }
    fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }
    /// The hybrid request every test signs with (P-256 + ML-DSA-65).
    fn request(mode: Mode) -> Request {
        Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, mode, "cli-test")
    }
    /// Sign `data` as `format` with this setup's keys: the signed file and the detached document.
    fn sign_as(
        &self,
        format: Format,
        data: &[u8],
        req: &Request,
    ) -> (Vec<u8>, fwseal_formats::detached::DetachedDoc) {
        let plan = prepare(format, data, req).expect("prepare");
        let set = sign_prepared(
            plan.as_ref(),
            Some(&self.ec as &dyn Signer),
            Some(&self.pq as &dyn Signer),
            vec![],
        )
        .expect("sign");
        (
            assemble(data, &plan.embed(&set).expect("embed")).expect("asm"),
            plan.detached(&set).expect("doc"),
        )
    }
    fn sign(&self, data: &[u8], mode: Mode) -> (Vec<u8>, String) {
        let (signed, doc) = self.sign_as(Format::Raw, data, &Self::request(mode));
        (signed, doc.to_json())
    }
}

fn fixture() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/raw/sample.bin"))
        .expect("fixture")
}

#[test]
fn verify_embedded_ok_tampered_and_wrong_key() {
    let s = Setup::new();
    let (signed, _) = s.sign(&fixture(), Mode::Embedded);
    std::fs::write(s.p("fw.bin"), &signed).expect("w");
    let (code, out, err) = fwseal(&[
        "verify",
        &s.p("fw.bin"),
        "-k",
        &s.p("ec.pem"),
        "-k",
        &s.p("pq.pem"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ecdsa-p256-sha256") && out.contains("ml-dsa-65"),
        "{out}"
    );

    // Only the classical key trusted: the PQ signature has no trusted key → fail.
    let (code, _, err) = fwseal(&["verify", &s.p("fw.bin"), "-k", &s.p("ec.pem")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no trusted key"), "{err}");

    let mut bad = signed.clone();
    bad[100] ^= 4;
    std::fs::write(s.p("bad.bin"), &bad).expect("w");
    let (code, _, err) = fwseal(&[
        "verify",
        &s.p("bad.bin"),
        "-k",
        &s.p("ec.pem"),
        "-k",
        &s.p("pq.pem"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not match"), "{err}");

    let (code, out, _) = fwseal(&["--json", "inspect", &s.p("fw.bin")]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["signed"], true);
    assert_eq!(v["signatures"].as_array().map(|a| a.len()), Some(2));
}

#[test]
fn verify_detached_document_found_next_to_the_image() {
    let s = Setup::new();
    let data = fixture();
    let (_, doc) = s.sign(&data, Mode::Detached);
    std::fs::write(s.p("fw.bin"), &data).expect("w");
    std::fs::write(s.p("fw.bin.sig.json"), &doc).expect("w");
    let (code, out, err) = fwseal(&[
        "verify",
        &s.p("fw.bin"),
        "-k",
        &s.p("ec.pem"),
        "-k",
        &s.p("pq.pem"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("detached"), "{out}");
    let mut other = data.clone();
    other.push(1);
    std::fs::write(s.p("fw.bin"), &other).expect("w");
    let (code, _, err) = fwseal(&[
        "verify",
        &s.p("fw.bin"),
        "-k",
        &s.p("ec.pem"),
        "-k",
        &s.p("pq.pem"),
    ]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn unsigned_image_fails_verification_and_inspect_shows_digest() {
    let s = Setup::new();
    std::fs::write(s.p("fw.bin"), fixture()).expect("w");
    let (code, _, err) = fwseal(&["verify", &s.p("fw.bin"), "-k", &s.p("ec.pem")]);
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = fwseal(&["inspect", &s.p("fw.bin")]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&hex::encode(
            fwseal_crypto::DigestAlg::Sha256.hash(&fixture())
        )),
        "{out}"
    );
}

#[test]
fn android_img_is_refused_with_a_clear_message() {
    let s = Setup::new();
    let mut img = b"ANDROID!".to_vec();
    img.resize(4096, 0);
    std::fs::write(s.p("boot.img"), &img).expect("w");
    let (code, _, err) = fwseal(&["inspect", &s.p("boot.img")]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("unsupported .img flavour"), "{err}");
}

/// A provenance gate never passes silently: with `--provenance-key` (or a policy flag) and no
/// envelope next to the image, `verify` fails (exit 1) and says provenance was not checked;
/// without any provenance option it verifies the signatures as before.
#[test]
fn provenance_options_without_an_envelope_fail() {
    let s = Setup::new();
    let (signed, _) = s.sign(&fixture(), Mode::Embedded);
    std::fs::write(s.p("fw.bin"), &signed).expect("w");
    let (img, ec, pq) = (s.p("fw.bin"), s.p("ec.pem"), s.p("pq.pem"));
    let base = ["verify", img.as_str(), "-k", ec.as_str(), "-k", pq.as_str()];
    let (code, out, err) = fwseal(&base);
    assert_eq!(code, 0, "signatures alone: {out}{err}");

    let expected = s.p("fw.bin.intoto.jsonl");
    let cases: [&[&str]; 4] = [
        &["--provenance-key", &ec],
        &["--provenance-key", &ec, "--provenance-key", &pq],
        &["--source-uri", "git+https://git.example/widget"],
        &["--builder-id", "https://fwseal.test/appliance"],
    ];
    for extra in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let (code, out, err) = fwseal(&args);
        assert_eq!(code, 1, "{extra:?}: must fail:\n{out}{err}");
        assert!(
            err.contains("provenance not checked") && err.contains(&expected),
            "{extra:?}: stderr must say provenance was not checked and where it looked:\n{err}"
        );
        assert!(!out.contains("verified"), "{extra:?}: {out}");
    }

    // An explicit --provenance FILE that does not exist is an error too.
    let mut args = base.to_vec();
    let missing = s.p("nowhere.intoto.jsonl");
    args.extend_from_slice(&["--provenance", &missing, "--provenance-key", &ec]);
    let (code, out, err) = fwseal(&args);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("nowhere.intoto.jsonl"), "{err}");
}

/// formats/detached.md, "Verifying" step 1: every `digests[]` entry must match the image — a
/// stale SHA-512 entry, or an entry for an algorithm no signature uses, rejects the document
/// even though both signatures still verify.
#[test]
fn every_digests_entry_of_a_detached_document_is_checked() {
    let s = Setup::new();
    let data = fixture();
    let (_, doc) = s.sign(&data, Mode::Detached);
    std::fs::write(s.p("fw.bin"), &data).expect("w");
    let args = [
        "verify",
        &s.p("fw.bin"),
        "-k",
        &s.p("ec.pem"),
        "-k",
        &s.p("pq.pem"),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = |v: &serde_json::Value| {
        std::fs::write(s.p("fw.bin.sig.json"), v.to_string()).expect("w");
        fwseal(&args)
    };
    let good: serde_json::Value = serde_json::from_str(&doc).expect("json");
    let (code, out, err) = run(&good);
    assert_eq!(code, 0, "{out}{err}");

    let mut stale = good.clone();
    let entries = stale["digests"].as_array_mut().expect("digests");
    let sha512 = entries
        .iter_mut()
        .find(|e| e["alg"] == "sha512")
        .expect("a hybrid ML-DSA-65 document lists sha512");
    sha512["value"] = serde_json::Value::String("00".repeat(64));
    let (code, _, err) = run(&stale);
    assert_eq!(code, 1, "stale sha512 entry accepted: {err}");
    assert!(err.contains("digests[] sha512"), "{err}");

    let mut extra = good.clone();
    extra["digests"]
        .as_array_mut()
        .expect("digests")
        .push(serde_json::json!({"alg": "sha384", "value": "11".repeat(48)}));
    let (code, _, err) = run(&extra);
    assert_eq!(code, 1, "extra sha384 entry accepted: {err}");
    assert!(err.contains("no signature depends on"), "{err}");
}

/// formats/hex.md §4: a detached `.hex` document records the gap fill (`extra.fill`), so
/// `fwseal verify` checks a sparse image signed with a non-default `hex_fill` without being
/// told the product's setting — and a document whose fill was altered is refused.
#[test]
fn detached_hex_documents_carry_their_fill_byte() {
    let s = Setup::new();
    let hex =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hex/gcc.hex"))
            .expect("gcc.hex (three segments with gaps)");
    let mut req = Setup::request(Mode::Detached);
    req.options.hex_fill = 0x00;
    let (_, doc) = s.sign_as(Format::Ihex, &hex, &req);
    assert_eq!(doc.extra.get("fill"), Some(&serde_json::json!(0)));
    std::fs::write(s.p("fw.hex"), &hex).expect("w");
    std::fs::write(s.p("fw.hex.sig.json"), doc.to_json()).expect("w");
    let (ec, pq, img) = (s.p("ec.pem"), s.p("pq.pem"), s.p("fw.hex"));
    let args = ["verify", img.as_str(), "-k", ec.as_str(), "-k", pq.as_str()];
    let (code, out, err) = fwseal(&args);
    assert_eq!(code, 0, "fill 0x00 document: {out}{err}");

    let mut other = doc.clone();
    other.extra.insert("fill".into(), serde_json::json!(0xff));
    std::fs::write(s.p("fw.hex.sig.json"), other.to_json()).expect("w");
    let (code, _, err) = fwseal(&args);
    assert_eq!(code, 1, "a different fill must change the digests: {err}");
}
