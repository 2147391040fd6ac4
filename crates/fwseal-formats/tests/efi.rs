//! `.efi` (Authenticode) judges: sbverify, osslsigncode, sbsign cross-checks, malformed inputs.
mod common;

use common::{fixture, run, tempdir, tool, Keys};
use fwseal_crypto::cert::{self, CertParams};
use fwseal_crypto::{SigAlg, SignedMessage, Signer};
use fwseal_formats::{
    assemble, describe, detached::DetachedDoc, extract, prepare, sign_prepared, Format,
    FormatError, Location, Mode, Request,
};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// RSA-3072 + ML-DSA-65 keys and a self-signed certificate for the RSA key (made once: RSA
/// key generation is slow).
fn keys() -> &'static (Keys, Vec<u8>) {
    static K: OnceLock<(Keys, Vec<u8>)> = OnceLock::new();
    K.get_or_init(|| {
        let k = Keys::new(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65);
        let c = cert::self_signed(&k.classical, &CertParams::code_signing("fwseal test db"))
            .expect("certificate");
        (k, c)
    })
}

fn hello() -> Vec<u8> {
    fixture("efi/hello.efi")
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    p.to_str().expect("utf-8 path").to_string()
}

fn sign_embedded(data: &[u8]) -> Vec<u8> {
    let (k, c) = keys();
    k.embed(
        Format::Efi,
        data,
        &k.request(Mode::Embedded),
        vec![c.clone()],
    )
}

fn sbverify(cert: &str, file: &str, detached: Option<&str>) -> Option<common::Run> {
    let t = tool("sbverify")?;
    let mut cmd = Command::new(t);
    cmd.args(["--cert", cert]);
    if let Some(d) = detached {
        cmd.args(["--detached", d]);
    }
    Some(run(cmd.arg(file)))
}

fn osslsigncode(cert: &str, file: &str) -> Option<common::Run> {
    let t = tool("osslsigncode")?;
    Some(run(
        Command::new(t).args(["verify", "-CAfile", cert, "-in", file])
    ))
}

/// Number of WIN_CERTIFICATE entries in the certificate table.
fn win_cert_count(d: &[u8]) -> usize {
    let rd = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().expect("4"));
    let pe = rd(0x3c) as usize;
    let opt = pe + 24;
    let dd = opt
        + if d[opt] == 0x0b && d[opt + 1] == 0x01 {
            96
        } else {
            112
        };
    let (mut off, size) = (rd(dd + 32) as usize, rd(dd + 36) as usize);
    let end = off + size;
    let mut n = 0;
    while off < end {
        let l = rd(off) as usize;
        n += 1;
        off += (l + 7) & !7;
    }
    n
}

#[test]
fn embedded_passes_sbverify_osslsigncode_and_own_extract() {
    for name in FIXTURES {
        embedded_judged(&fixture(name));
    }
}

/// The unsigned gnu-efi builds: PE32+ (x86-64) and PE32 (IA-32).
const FIXTURES: [&str; 2] = ["efi/hello.efi", "efi/hello32.efi"];

fn embedded_judged(input: &[u8]) {
    let (k, c) = keys();
    let signed = sign_embedded(input);
    assert_eq!(signed.len() % 8, 0);
    assert_eq!(win_cert_count(&signed), 1);
    // Own extract: the classical signature verifies and the certificate is carried.
    assert_eq!(k.verify_extracted(Format::Efi, &signed), 1);
    let ex = extract(Format::Efi, &signed).expect("extract");
    assert_eq!(ex.certificates.first(), Some(c));
    assert_eq!(ex.signatures[0].key_id, Some(k.classical.key_id()));
    assert!(describe(Format::Efi, &signed)
        .expect("describe")
        .contains("signed"));

    let dir = tempdir();
    let cert = write(dir.path(), "cert.pem", cert::to_pem(c).as_bytes());
    let out = write(dir.path(), "out.efi", &signed);
    if let Some(r) = sbverify(&cert, &out, None) {
        assert!(r.ok, "sbverify failed:\n{}", r.text());
        assert!(
            r.text().contains("Signature verification OK"),
            "{}",
            r.text()
        );
    }
    if let Some(r) = osslsigncode(&cert, &out) {
        assert!(r.ok, "osslsigncode failed:\n{}", r.text());
        // Our checksum equals what osslsigncode computes: it prints "PE checksum" when they
        // agree and "Current/Calculated PE checksum" + a warning when they do not.
        let t = r.text();
        assert!(!t.contains("invalid PE checksum"), "{t}");
        let line = t
            .lines()
            .find(|l| l.starts_with("PE checksum"))
            .expect("checksum line");
        let want = {
            let pe = u32::from_le_bytes(signed[0x3c..0x40].try_into().expect("4")) as usize;
            u32::from_le_bytes(signed[pe + 88..pe + 92].try_into().expect("4"))
        };
        assert!(
            line.contains(&format!("{want:08X}")),
            "{line} vs {want:08X}"
        );
    }
    // A tampered byte in .text fails both judges and our extract.
    let mut bad = signed.clone();
    bad[0x410] ^= 0x01;
    let badp = write(dir.path(), "bad.efi", &bad);
    if let Some(r) = sbverify(&cert, &badp, None) {
        assert!(!r.ok, "sbverify accepted a tampered image:\n{}", r.text());
    }
    if let Some(r) = osslsigncode(&cert, &badp) {
        assert!(
            !r.ok,
            "osslsigncode accepted a tampered image:\n{}",
            r.text()
        );
    }
    assert!(matches!(
        extract(Format::Efi, &bad),
        Err(FormatError::Malformed { .. })
    ));
    // A different certificate is not trusted.
    let other = Keys::new(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65);
    let oc = cert::self_signed(&other.classical, &CertParams::code_signing("other")).expect("c");
    let ocp = write(dir.path(), "other.pem", cert::to_pem(&oc).as_bytes());
    if let Some(r) = sbverify(&ocp, &out, None) {
        assert!(!r.ok, "sbverify trusted the wrong certificate");
    }
}

#[test]
fn pq_half_travels_in_the_detached_document() {
    let (k, c) = keys();
    let input = hello();
    for mode in [Mode::Embedded, Mode::Detached] {
        let (plan, set) = k.sign(Format::Efi, &input, &k.request(mode), vec![c.clone()]);
        let doc = plan.detached(&set).expect("doc");
        let doc = DetachedDoc::from_json(doc.to_json().as_bytes()).expect("round trip");
        let pq = doc
            .signatures
            .iter()
            .find(|s| s.alg == SigAlg::MlDsa65)
            .expect("pq signature in the document");
        // The PQ message per formats/efi.md: domain ‖ 0x03 (sha512) ‖ SHA-512 Authenticode hash.
        let sha512 = doc
            .digests
            .iter()
            .find(|d| d.alg == fwseal_crypto::DigestAlg::Sha512)
            .expect("sha512 digest");
        let mut m = b"fwseal/detached/v1/efi\0".to_vec();
        m.push(3);
        m.extend_from_slice(&hex::decode(&sha512.value).expect("hex"));
        k.pq.public_key()
            .verify(&SignedMessage::Bytes(m), pq)
            .expect("ML-DSA-65 verifies");
        assert!(doc.extra.contains_key("authenticode_pkcs7"));
        assert_eq!(doc.certificates.first(), Some(c));
    }
}

#[test]
fn detached_pkcs7_passes_sbverify_detached() {
    use base64::Engine as _;
    let (k, c) = keys();
    let input = hello();
    let (plan, set) = k.sign(
        Format::Efi,
        &input,
        &k.request(Mode::Detached),
        vec![c.clone()],
    );
    let doc = plan.detached(&set).expect("doc");
    let p7 = base64::engine::general_purpose::STANDARD
        .decode(doc.extra["authenticode_pkcs7"].as_str().expect("string"))
        .expect("base64");
    // EDK2's fixed-offset shape: 30 82 .. .. 06 09 <signedData> a0 82 .. .. 30 82.
    assert_eq!(&p7[..2], &[0x30, 0x82]);
    assert_eq!(&p7[15..17], &[0xa0, 0x82]);
    assert_eq!(&p7[19..21], &[0x30, 0x82]);
    assert_eq!(doc.digest.value, hex::encode(plan.digest().1));
    let dir = tempdir();
    let cert = write(dir.path(), "cert.pem", cert::to_pem(c).as_bytes());
    let inp = write(dir.path(), "in.efi", &input);
    let sig = write(dir.path(), "sig.p7", &p7);
    if let Some(r) = sbverify(&cert, &inp, Some(&sig)) {
        assert!(r.ok, "sbverify --detached failed:\n{}", r.text());
    }
    let mut bad = input.clone();
    bad[0x420] ^= 0x80;
    let badp = write(dir.path(), "bad.efi", &bad);
    if let Some(r) = sbverify(&cert, &badp, Some(&sig)) {
        assert!(!r.ok, "sbverify --detached accepted a tampered image");
    }
}

#[test]
fn digest_matches_sbsign_and_resigning_replaces() {
    for name in FIXTURES {
        sbsign_cross_check(&fixture(name));
    }
}

fn sbsign_cross_check(input: &[u8]) {
    let Some(sbsign) = tool("sbsign") else { return };
    let (k, c) = keys();
    let dir = tempdir();
    let keyp = write(
        dir.path(),
        "key.pem",
        k.classical.to_pkcs8_pem().expect("pem").as_bytes(),
    );
    let cert = write(dir.path(), "cert.pem", cert::to_pem(c).as_bytes());
    let inp = write(dir.path(), "in.efi", input);
    let outp = dir.path().join("sbsign.efi");
    let r = run(Command::new(sbsign)
        .args(["--key", &keyp, "--cert", &cert, "--output"])
        .arg(&outp)
        .arg(&inp));
    assert!(r.ok, "sbsign: {}", r.text());
    let theirs = std::fs::read(&outp).expect("read");
    // Our extract reads sbsign's signature, recomputes the same Authenticode digest and the
    // RSA signature verifies over the re-encoded signed attributes.
    let ex = extract(Format::Efi, &theirs).expect("extract sbsign output");
    let plan = prepare(Format::Efi, input, &k.request(Mode::Embedded)).expect("prepare");
    assert_eq!(
        ex.digest.1,
        plan.digest().1,
        "Authenticode digest differs from sbsign's"
    );
    assert_eq!(k.verify_extracted(Format::Efi, &theirs), 1);
    // Re-signing the sbsign output replaces its WIN_CERTIFICATE (exactly one remains) and
    // yields byte-identical output to signing the original (RSA PKCS#1 v1.5 is deterministic).
    let plan2 = prepare(Format::Efi, &theirs, &k.request(Mode::Embedded)).expect("prepare signed");
    assert_eq!(plan2.digest(), plan.digest());
    let set = sign_prepared(
        plan2.as_ref(),
        Some(&k.classical as &dyn Signer),
        Some(&k.pq as &dyn Signer),
        vec![c.clone()],
    )
    .expect("sign");
    let resigned = assemble(&theirs, &plan2.embed(&set).expect("embed")).expect("assemble");
    assert_eq!(win_cert_count(&resigned), 1);
    assert_eq!(resigned, sign_embedded(input));
    let rp = write(dir.path(), "resigned.efi", &resigned);
    if let Some(r) = osslsigncode(&cert, &rp) {
        assert!(r.ok, "osslsigncode on re-signed image:\n{}", r.text());
    }
    // Re-signing our own output is stable too.
    let again = sign_embedded(&resigned);
    assert_eq!(again, resigned);
}

#[test]
fn ecdsa_is_refused_with_a_clear_message() {
    let req = Request::hybrid(
        SigAlg::EcdsaP256Sha256,
        SigAlg::MlDsa65,
        Mode::Embedded,
        "p",
    );
    match prepare(Format::Efi, &hello(), &req) {
        Err(FormatError::Unsupported(m)) => assert!(m.contains("OVMF"), "{m}"),
        other => panic!("expected Unsupported, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn unsigned_and_describe() {
    let d = hello();
    assert!(matches!(
        extract(Format::Efi, &d),
        Err(FormatError::NotSigned(Format::Efi))
    ));
    let s = describe(Format::Efi, &d).expect("describe");
    assert!(s.starts_with("PE32+ x86-64 EFI application"), "{s}");
    assert!(s.contains(".text") && s.contains("unsigned"), "{s}");
    assert_eq!(
        fwseal_formats::detect(&d, None).expect("detect"),
        Format::Efi
    );
}

#[test]
fn malformed_fixtures_yield_located_errors() {
    let req = Request::hybrid(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65, Mode::Embedded, "p");
    for (name, want) in [
        ("truncated.efi", "outside"),
        ("bad-pe-offset.efi", "PE header offset"),
        ("lying-section-size.efi", "raw data"),
        ("cert-past-eof.efi", "past the end"),
    ] {
        let d = fixture(&format!("efi/{name}"));
        // Still detected as .efi, so the user gets the precise error below.
        assert_eq!(
            fwseal_formats::detect(&d, None).expect("detect"),
            Format::Efi
        );
        for r in [
            prepare(Format::Efi, &d, &req).map(|_| ()),
            describe(Format::Efi, &d).map(|_| ()),
            extract(Format::Efi, &d).map(|_| ()),
        ] {
            match r {
                Err(e @ FormatError::Malformed { .. }) => {
                    assert!(matches!(e.location(), Some(Location::Offset(_))));
                    assert!(e.to_string().contains(want), "{name}: {e}");
                }
                other => panic!("{name}: expected Malformed, got {:?}", other.err()),
            }
        }
    }
    // A lone "MZ" and an empty file.
    for d in [&b"MZ"[..], &b""[..]] {
        assert!(matches!(
            describe(Format::Efi, d),
            Err(FormatError::Malformed { .. })
        ));
    }
}

/// Deterministic pseudo-random mutations of the unsigned and signed fixture: no panic.
#[test]
fn mutations_never_panic() {
    let req = Request::hybrid(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65, Mode::Embedded, "p");
    let h32 = fixture("efi/hello32.efi");
    let seeds = [hello(), sign_embedded(&hello()), sign_embedded(&h32)];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut n = 0;
    for seed in &seeds {
        for _ in 0..1500 {
            let mut d = seed.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % d.len();
                match next() % 4 {
                    0 => d[i] ^= 1 << (next() % 8),
                    1 => d[i] = next() as u8,
                    2 => d.truncate(i),
                    _ => {
                        // Hit the header fields hardest.
                        let j = (next() as usize) % d.len().clamp(1, 0x400);
                        d[j] = next() as u8;
                    }
                }
                if d.is_empty() {
                    break;
                }
            }
            let _ = describe(Format::Efi, &d);
            let _ = extract(Format::Efi, &d);
            let _ = prepare(Format::Efi, &d, &req);
            n += 1;
        }
    }
    assert_eq!(n, 4500);
}

/// Images signed by sbsign (RSA and ECDSA P-256) and osslsigncode (PE32): our extract finds the
/// signature, the recomputed digest matches theirs, and the signature verifies under the key in
/// the carried certificate. Re-signing replaces their certificate table.
#[test]
fn reads_images_signed_by_stock_tools() {
    use der::{Decode, Encode};
    for (name, cert_pem, alg, unsigned) in [
        (
            "efi/hello.sbsign-rsa.efi",
            "efi/sbsign-rsa.crt.pem",
            SigAlg::RsaPkcs1Sha256,
            "efi/hello.efi",
        ),
        (
            "efi/hello.sbsign-ecdsa.efi",
            "efi/sbsign-ecdsa.crt.pem",
            SigAlg::EcdsaP256Sha256,
            "efi/hello.efi",
        ),
        (
            "efi/hello32.osslsigncode.efi",
            "efi/sbsign-rsa.crt.pem",
            SigAlg::RsaPkcs1Sha256,
            "efi/hello32.efi",
        ),
    ] {
        let d = fixture(name);
        let ex = extract(Format::Efi, &d).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ex.signatures.len(), 1);
        let s = &ex.signatures[0];
        assert_eq!(s.alg, alg, "{name}");
        let (_, want_der) = fwseal_crypto::verify::spki_pem_decode(
            &String::from_utf8(fixture(cert_pem)).expect("utf-8"),
        )
        .expect("pem");
        assert_eq!(
            ex.certificates[0], want_der,
            "{name}: signer certificate first"
        );
        let c = x509_cert::Certificate::from_der(&ex.certificates[0]).expect("cert");
        let spki = c
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .expect("spki");
        let pk = fwseal_crypto::PublicKey::from_spki_der(alg, &spki).expect("key");
        pk.verify_bytes(&s.message, &s.bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.key_id, Some(pk.key_id()));
        // The digest is the one of the unsigned original (cert table excluded, padding included).
        let (k, cert) = keys();
        let plan =
            prepare(Format::Efi, &fixture(unsigned), &k.request(Mode::Embedded)).expect("prepare");
        assert_eq!(ex.digest.1, plan.digest().1, "{name}");
        // Re-sign: one WIN_CERTIFICATE, ours.
        let resigned = k.embed(
            Format::Efi,
            &d,
            &k.request(Mode::Embedded),
            vec![cert.clone()],
        );
        assert_eq!(win_cert_count(&resigned), 1);
        assert_eq!(
            extract(Format::Efi, &resigned)
                .expect("extract")
                .certificates[0],
            *cert
        );
    }
}

/// The worked example of `formats/efi.md`, byte for byte (fixtures/efi/hello.efi).
#[test]
fn worked_example_matches_the_spec() {
    let d = hello();
    let req = Request::hybrid(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65, Mode::Embedded, "p");
    let plan = prepare(Format::Efi, &d, &req).expect("prepare");
    assert_eq!(
        hex::encode(plan.digest().1),
        "eab6a4474a26a225decdae9ee8849c9abc01fa2439633fd60b128287872e4822"
    );
    let attrs = "314c301906092a864886f70d010903310c060a2b060104018237020104302f06092a864886f70d01090431220420bc73f462f82407d7574582bd84198612e5a3b91387a6d59ca1fe29a1e26bdfe4";
    assert_eq!(
        plan.classical_message(SigAlg::RsaPkcs1Sha256, None)
            .expect("m"),
        SignedMessage::Bytes(hex::decode(attrs).expect("hex"))
    );
    let mut pq = b"fwseal/detached/v1/efi\0\x03".to_vec();
    pq.extend(hex::decode("053053f46fce302d48820d98da9ea1426d105d537f32204b3229d881b332546ab66afa31f97831f00135fafd6f38555941432878744f28124953fdf338652a41").expect("hex"));
    assert_eq!(
        plan.pq_message(SigAlg::MlDsa65).expect("pq"),
        SignedMessage::Bytes(pq)
    );
}

/// RSA-2048 and RSA-4096 work as well as RSA-3072 (the stock judges accept them).
#[test]
fn rsa_2048_and_4096() {
    use fwseal_crypto::soft::SoftKey;
    let input = hello();
    for bits in [2048, 4096] {
        let rsa = SoftKey::generate_rsa(SigAlg::RsaPkcs1Sha256, bits).expect("rsa");
        let c = cert::self_signed(&rsa, &CertParams::code_signing("rsa")).expect("cert");
        let req = Request {
            classical: Some(SigAlg::RsaPkcs1Sha256),
            pq: None,
            mode: Mode::Embedded,
            options: Default::default(),
        };
        let plan = prepare(Format::Efi, &input, &req).expect("prepare");
        let set = sign_prepared(
            plan.as_ref(),
            Some(&rsa as &dyn Signer),
            None,
            vec![c.clone()],
        )
        .expect("sign");
        let signed = assemble(&input, &plan.embed(&set).expect("embed")).expect("assemble");
        let ex = extract(Format::Efi, &signed).expect("extract");
        rsa.public_key()
            .verify_bytes(&ex.signatures[0].message, &ex.signatures[0].bytes)
            .expect("verifies");
        let dir = tempdir();
        let cp = write(dir.path(), "cert.pem", cert::to_pem(&c).as_bytes());
        let op = write(dir.path(), "out.efi", &signed);
        if let Some(r) = sbverify(&cp, &op, None) {
            assert!(r.ok, "sbverify RSA-{bits}: {}", r.text());
        }
        if let Some(r) = osslsigncode(&cp, &op) {
            assert!(r.ok, "osslsigncode RSA-{bits}: {}", r.text());
        }
    }
}

/// `osslsigncode verify` with the TSA's certificate as `-TSA-CAfile`.
fn osslsigncode_ts(cert: &str, tsa: &Path, file: &str) -> Option<common::Run> {
    let t = tool("osslsigncode")?;
    Some(run(Command::new(t)
        .args(["verify", "-CAfile", cert, "-TSA-CAfile"])
        .arg(tsa)
        .args(["-in", file])))
}

/// An RFC 3161 timestamp over the Authenticode signature travels as the RFC 3161
/// countersignature (unsigned attribute 1.3.6.1.4.1.311.3.3.1): `osslsigncode verify` checks
/// it against a TSA that fwseal did not write (`openssl ts -reply`), sbverify still accepts
/// the image, `extract` returns the token, and a token over other bytes is refused by
/// osslsigncode.
#[test]
fn timestamped_authenticode_passes_osslsigncode() {
    let Some(tsa) = common::OpensslTsa::new(30) else {
        return;
    };
    let (k, c) = keys();
    let input = hello();
    let (plan, mut set) = k.sign(
        Format::Efi,
        &input,
        &k.request(Mode::Embedded),
        vec![c.clone()],
    );
    let sig = set.classical().expect("classical").clone();
    let token = tsa.token_over(&sig.bytes);
    set.timestamps.push(fwseal_crypto::SigTimestamp {
        alg: sig.alg,
        key_id: sig.key_id,
        token: token.clone(),
    });
    let signed = assemble(&input, &plan.embed(&set).expect("embed")).expect("assemble");
    let ex = extract(Format::Efi, &signed).expect("extract");
    assert_eq!(
        ex.signatures[0].timestamp.as_deref(),
        Some(token.as_slice())
    );
    assert_eq!(k.verify_extracted(Format::Efi, &signed), 1);
    // The detached document's PKCS#7 carries it too, and the document lists it.
    let doc = plan.detached(&set).expect("detached");
    assert_eq!(doc.timestamps.len(), 1);

    let dir = tempdir();
    let cert = write(dir.path(), "cert.pem", cert::to_pem(c).as_bytes());
    let out = write(dir.path(), "ts.efi", &signed);
    if let Some(r) = osslsigncode_ts(&cert, &tsa.cert_pem, &out) {
        let t = r.text();
        assert!(r.ok, "osslsigncode failed on the timestamped image:\n{t}");
        assert!(
            t.contains("Timestamp Server Signature verification: ok"),
            "osslsigncode did not check the timestamp:\n{t}"
        );
    }
    if let Some(r) = sbverify(&cert, &out, None) {
        assert!(
            r.ok,
            "sbverify failed on the timestamped image:\n{}",
            r.text()
        );
    }

    // A token whose imprint is not the signature: osslsigncode refuses it.
    let (plan2, mut set2) = k.sign(
        Format::Efi,
        &input,
        &k.request(Mode::Embedded),
        vec![c.clone()],
    );
    let s2 = set2.classical().expect("classical").clone();
    set2.timestamps.push(fwseal_crypto::SigTimestamp {
        alg: s2.alg,
        key_id: s2.key_id,
        token: tsa.token_over(b"not the signature"),
    });
    let wrong = assemble(&input, &plan2.embed(&set2).expect("embed")).expect("assemble");
    let wp = write(dir.path(), "wrong-ts.efi", &wrong);
    if let Some(r) = osslsigncode_ts(&cert, &tsa.cert_pem, &wp) {
        assert!(
            !r.ok
                || !r
                    .text()
                    .contains("Timestamp Server Signature verification: ok"),
            "osslsigncode accepted a timestamp over other bytes:\n{}",
            r.text()
        );
    }
    // Garbage as a token is refused when embedding, not written.
    let (plan3, mut set3) = k.sign(
        Format::Efi,
        &input,
        &k.request(Mode::Embedded),
        vec![c.clone()],
    );
    let s3 = set3.classical().expect("classical").clone();
    set3.timestamps.push(fwseal_crypto::SigTimestamp {
        alg: s3.alg,
        key_id: s3.key_id,
        token: vec![0x30, 0x03, 0x02, 0x01, 0x01],
    });
    assert!(matches!(plan3.embed(&set3), Err(FormatError::Misuse(_))));
}
