//! Every worked example in `formats/*.md`, regenerated from the code and compared byte for byte
//! with the text of the document.
//!
//! A checked example is a fenced block preceded by `<!-- check: NAME -->`. Each line of it holds
//! hex bytes (tokens of an even number of hex digits, spaces between) up to the first token that
//! is not one — the rest of the line is a comment. A line starting with `…` or `...` followed by
//! a number skips that many bytes (`… 3277 bytes of signature`). Record dumps (`check-records`)
//! compare Intel HEX lines instead: the first token of each line is a record (`:…`), or `…` N to
//! skip N records. Values quoted in prose are checked with `assert_doc_has`. The documents are
//! read from the repository, so a document that drifts from the code fails here.
//!
//! Every signature in these examples is made with the **spec test keys** of
//! `formats/signature-block.md` (ECDSA P-256 from RFC 6979 A.2.5, ML-DSA-65 from the seed
//! 00 01 … 1f): ECDSA (RFC 6979) and ML-DSA (deterministic variant) then sign deterministically,
//! so whole signed files are reproducible test vectors.
//!
//! To update a document after a deliberate change, run with `FWSEAL_PRINT_EXAMPLE=1`: the
//! regenerated files are written to `/tmp/spec/` (nothing is written otherwise), and each
//! failing assertion names the block and byte offset that differ.

mod common;

use common::{fixture, repo_root};
use fwseal_crypto::{soft::SoftKey, DigestAlg, SigAlg, SignedMessage, Signer};
use fwseal_formats::{assemble, extract, prepare, sign_prepared, Format, Mode, Request};

// ---------------------------------------------------------------------------------------------
// Reading the documents.

fn doc(name: &str) -> String {
    let p = repo_root().join("formats").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The body of the fenced block that follows `<!-- KIND: NAME -->`.
fn block(doc: &str, kind: &str, name: &str) -> String {
    let marker = format!("<!-- {kind}: {name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in the document"));
    let rest = &doc[at + marker.len()..];
    let open = rest.find("```").expect("fence after the marker");
    let body_start = open + rest[open..].find('\n').expect("fence line") + 1;
    let close = rest[body_start..].find("```").expect("closing fence");
    rest[body_start..body_start + close].to_string()
}

/// One piece of a checked byte dump.
#[derive(Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Skip(usize),
}

fn is_hex_token(t: &str) -> bool {
    !t.is_empty() && t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit())
}

fn skip_count(line: &str) -> Option<usize> {
    let rest = line
        .trim_start()
        .strip_prefix('…')
        .or_else(|| line.trim_start().strip_prefix("..."))?;
    let n: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    Some(
        n.parse()
            .unwrap_or_else(|_| panic!("skip line without a count: {line:?}")),
    )
}

fn pieces(body: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    for line in body.lines() {
        if let Some(n) = skip_count(line) {
            out.push(Piece::Skip(n));
            continue;
        }
        let mut bytes = Vec::new();
        for t in line.split_whitespace() {
            if !is_hex_token(t) {
                break;
            }
            bytes.extend(hex::decode(t).expect("hex token"));
        }
        if !bytes.is_empty() {
            out.push(Piece::Bytes(bytes));
        }
    }
    out
}

/// The dump named `name` in `doc` describes exactly `actual` (every shown byte equal, skips of
/// the stated length, nothing left over).
fn assert_dump(doc: &str, name: &str, actual: &[u8]) {
    let mut at = 0usize;
    for p in pieces(&block(doc, "check", name)) {
        match p {
            Piece::Skip(n) => at += n,
            Piece::Bytes(b) => {
                let got = actual.get(at..at + b.len()).unwrap_or_else(|| {
                    panic!(
                        "{name}: the document shows {} bytes at offset {at}, the code produced {} in all",
                        b.len(),
                        actual.len()
                    )
                });
                assert_eq!(
                    hex::encode(got),
                    hex::encode(&b),
                    "{name}: bytes at offset {at} differ (left: code, right: document)"
                );
                at += b.len();
            }
        }
    }
    assert_eq!(
        at,
        actual.len(),
        "{name}: the document covers {at} bytes, the code produced {}",
        actual.len()
    );
}

/// The record dump named `name` describes exactly the lines of `text`.
fn assert_records(doc: &str, name: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0usize;
    for line in block(doc, "check-records", name).lines() {
        if let Some(n) = skip_count(line) {
            at += n;
            continue;
        }
        let Some(rec) = line.split_whitespace().next() else {
            continue;
        };
        assert!(rec.starts_with(':'), "{name}: not a record line: {line:?}");
        assert_eq!(
            lines.get(at).copied(),
            Some(rec),
            "{name}: record {} differs (left: code, right: document)",
            at + 1
        );
        at += 1;
    }
    assert_eq!(at, lines.len(), "{name}: the document covers {at} records");
}

/// `doc` quotes `value` somewhere (a digest, a key id, a length in prose).
fn assert_doc_has(doc: &str, what: &str, value: &str) {
    assert!(
        doc.contains(value),
        "the document does not quote {what} = {value}"
    );
}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn print_enabled() -> bool {
    std::env::var_os("FWSEAL_PRINT_EXAMPLE").is_some()
}

fn save(name: &str, b: &[u8]) {
    if print_enabled() {
        let _ = std::fs::create_dir_all("/tmp/spec");
        let _ = std::fs::write(format!("/tmp/spec/{name}"), b);
    }
}

// ---------------------------------------------------------------------------------------------
// The spec test keys (formats/signature-block.md, "Test keys").

/// RFC 6979 A.2.5: the P-256 private key.
const P256_D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";

fn p256_test_key() -> SoftKey {
    // PKCS#8 PrivateKeyInfo { 0, { id-ecPublicKey, prime256v1 }, ECPrivateKey { 1, d } }.
    let mut der =
        hex::decode("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420")
            .expect("hex");
    der.extend(hex::decode(P256_D).expect("hex"));
    SoftKey::from_pkcs8_der(SigAlg::EcdsaP256Sha256, &der).expect("P-256 test key")
}

fn mldsa65_test_key() -> SoftKey {
    let seed: Vec<u8> = (0u8..32).collect();
    SoftKey::from_pq_seed(SigAlg::MlDsa65, &seed).expect("ML-DSA-65 test key")
}

struct TestKeys {
    ec: SoftKey,
    pq: SoftKey,
}

fn test_keys() -> TestKeys {
    TestKeys {
        ec: p256_test_key(),
        pq: mldsa65_test_key(),
    }
}

impl TestKeys {
    fn request(&self, mode: Mode, product: &str) -> Request {
        Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, mode, product)
    }

    fn sign(&self, format: Format, input: &[u8], req: &Request) -> (Vec<u8>, String) {
        let plan = prepare(format, input, req).expect("prepare");
        let set = sign_prepared(
            plan.as_ref(),
            Some(&self.ec as &dyn Signer),
            Some(&self.pq as &dyn Signer),
            vec![],
        )
        .expect("sign");
        let out = match req.mode {
            Mode::Embedded => assemble(input, &plan.embed(&set).expect("embed")).expect("assemble"),
            Mode::Detached => input.to_vec(),
        };
        let doc = plan.detached(&set).expect("detached").to_json();
        (out, doc)
    }
}

impl TestKeys {
    /// Verify every signature `extract` finds with the test keys; returns how many verified.
    fn verify(&self, format: Format, data: &[u8]) -> usize {
        let ex = extract(format, data).expect("extract");
        for s in &ex.signatures {
            let key: &dyn Signer = if s.alg == SigAlg::MlDsa65 {
                &self.pq
            } else {
                &self.ec
            };
            key.public_key()
                .verify_bytes(&s.message, &s.bytes)
                .unwrap_or_else(|e| panic!("{} does not verify: {e}", s.alg));
        }
        ex.signatures.len()
    }
}

fn bytes_of(m: SignedMessage) -> Vec<u8> {
    match m {
        SignedMessage::Bytes(b) => b,
        other => panic!("expected message bytes, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// formats/signature-block.md

#[test]
fn spec_test_keys() {
    let d = doc("signature-block.md");
    let k = test_keys();
    assert_dump(&d, "test-key-p256-spki", k.ec.public_key().spki_der());
    assert_doc_has(&d, "the P-256 test key's private scalar", P256_D);
    assert_doc_has(
        &d,
        "the P-256 test key id",
        &k.ec.public_key().key_id().to_hex(),
    );
    let pq = k.pq.public_key().spki_der();
    assert_doc_has(
        &d,
        "the ML-DSA-65 test key id",
        &k.pq.public_key().key_id().to_hex(),
    );
    let head: Vec<String> = pq[22..30].iter().map(|b| format!("{b:02x}")).collect();
    assert_doc_has(
        &d,
        "the ML-DSA-65 test public key's first bytes",
        &head.join(" "),
    );
    // Deterministic signing is what makes the examples test vectors.
    let m = SignedMessage::Bytes(b"determinism".to_vec());
    for key in [&k.ec, &k.pq] {
        assert_eq!(
            key.sign_raw(&m).expect("sign"),
            key.sign_raw(&m).expect("sign")
        );
    }
}

#[test]
fn pq_spki_prefixes() {
    let d = doc("signature-block.md");
    let algs = [
        (SigAlg::MlDsa44, 1312),
        (SigAlg::MlDsa65, 1952),
        (SigAlg::MlDsa87, 2592),
        (SigAlg::SlhDsaSha2_128s, 32),
        (SigAlg::SlhDsaSha2_128f, 32),
        (SigAlg::SlhDsaSha2_192s, 48),
        (SigAlg::SlhDsaSha2_256s, 64),
    ];
    let lines = pieces(&block(&d, "check", "pq-spki-prefixes"));
    assert_eq!(lines.len(), algs.len(), "one prefix line per PQ algorithm");
    for ((alg, pk_len), line) in algs.into_iter().zip(lines) {
        let Piece::Bytes(prefix) = line else {
            panic!("{alg}: a skip in the prefix table")
        };
        let raw = vec![0u8; pk_len];
        let spki = fwseal_crypto::verify::pq_spki_der(alg, &raw).expect("spki");
        assert_eq!(spki.len(), prefix.len() + pk_len, "{alg}: prefix length");
        assert_eq!(hx(&spki[..prefix.len()]), hx(&prefix), "{alg}: SPKI prefix");
        let oid = fwseal_crypto::verify::pq_oid(alg).expect("oid").to_string();
        assert_doc_has(&d, &format!("{alg} OID"), &format!("| {oid} |"));
    }
}

#[test]
fn signature_block_worked_example() {
    let d = doc("signature-block.md");
    let k = test_keys();
    let img = [0xde, 0xad, 0xbe, 0xef];
    let (signed, _) = k.sign(Format::Raw, &img, &k.request(Mode::Embedded, "demo"));
    save("raw-signed.bin", &signed);
    let ex = extract(Format::Raw, &signed).expect("extract");
    let msg = bytes_of(ex.signatures[0].message.clone());
    let protected = &msg[b"fwseal/sigblock/v1/raw\0".len()..];
    assert_dump(&d, "sigblock-protected", protected);
    assert_dump(&d, "sigblock-message", &msg);
    assert_doc_has(
        &d,
        "the message length",
        &format!("{}-byte message", msg.len()),
    );
    assert_dump(&d, "sigblock-signed-file", &signed);
    assert_doc_has(
        &d,
        "the signed file's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&signed)),
    );
    for s in &ex.signatures {
        let key: &dyn Signer = if s.alg == SigAlg::MlDsa65 {
            &k.pq
        } else {
            &k.ec
        };
        key.public_key()
            .verify_bytes(&s.message, &s.bytes)
            .expect("the example's signatures verify");
    }
}

// ---------------------------------------------------------------------------------------------
// formats/raw.md

#[test]
fn raw_worked_example() {
    let d = doc("raw.md");
    let k = test_keys();
    let img = [0xde, 0xad, 0xbe, 0xef];
    let req = k.request(Mode::Detached, "demo");
    let plan = prepare(Format::Raw, &img, &req).expect("prepare");
    let m = bytes_of(plan.pq_message(SigAlg::MlDsa65).expect("pq message"));
    assert_dump(&d, "raw-detached-pq-message", &m);
}

// ---------------------------------------------------------------------------------------------
// formats/dfu.md

#[test]
fn dfu_worked_examples() {
    let d = doc("dfu.md");
    let k = test_keys();
    let req = k.request(Mode::Embedded, "test-product");

    // DFU 1.1.
    let dfu11 = fixture("dfu/dfu11.dfu");
    assert_doc_has(
        &d,
        "the DFU 1.1 fixture length",
        &format!("`dfu11.dfu` ({} bytes)", dfu11.len()),
    );
    assert_dump(&d, "dfu11-suffix", &dfu11[dfu11.len() - 16..]);
    let crc = fwseal_formats::dfu::suffix_crc(&dfu11[..dfu11.len() - 4]);
    assert_doc_has(
        &d,
        "the DFU 1.1 CRC",
        &format!("dwCRC = {crc:#010x} = ~crc32(file[0..{}])", dfu11.len() - 4),
    );
    let payload = &dfu11[..dfu11.len() - 16];
    assert_doc_has(
        &d,
        "SHA-256 of the payload",
        &hx(&DigestAlg::Sha256.hash(payload)),
    );
    assert_doc_has(
        &d,
        "SHA-512 of the payload",
        &hx(&DigestAlg::Sha512.hash(payload)),
    );
    let plan = prepare(Format::Dfu, &dfu11, &req).expect("prepare");
    let m = bytes_of(plan.pq_message(SigAlg::MlDsa65).expect("pq message"));
    assert_eq!(
        m,
        bytes_of(
            plan.classical_message(SigAlg::EcdsaP256Sha256, None)
                .expect("m")
        )
    );
    assert_dump(&d, "dfu11-message", &m);
    assert_doc_has(
        &d,
        "the message length",
        &format!("{} bytes (23 of domain prefix", m.len()),
    );
    let (signed, _) = k.sign(Format::Dfu, &dfu11, &req);
    save("dfu11-signed.dfu", &signed);
    assert_dump(&d, "dfu11-signed", &signed);
    assert_doc_has(
        &d,
        "the signed DFU 1.1 file's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&signed)),
    );
    assert_eq!(k.verify(Format::Dfu, &signed), 2);

    // DfuSe.
    let dfuse = fixture("dfu/dfuse.dfu");
    assert_dump(&d, "dfuse-file", &dfuse);
    let f = fwseal_formats::dfu::DfuSeFile::parse(&dfuse).expect("parse");
    let mut canon = Vec::new();
    f.canonical(&dfuse, &mut |b| canon.extend_from_slice(b));
    assert_dump(&d, "dfuse-canonical", &canon);
    assert_doc_has(
        &d,
        "the canonical encoding's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&canon)),
    );
    let (signed, _) = k.sign(Format::Dfu, &dfuse, &req);
    save("dfuse-signed.dfu", &signed);
    assert_dump(&d, "dfuse-signed", &signed);
    assert_doc_has(
        &d,
        "the signed DfuSe file's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&signed)),
    );
    assert_eq!(k.verify(Format::Dfu, &signed), 2);
}

// ---------------------------------------------------------------------------------------------
// formats/hex.md

const HEX_EXAMPLE: &str =
    ":020000040800F2\n:04000000DEADBEEFC4\n:02000800AA55F7\n:0400000508000000EF\n:00000001FF\n";

#[test]
fn hex_worked_example() {
    let d = doc("hex.md");
    let k = test_keys();
    assert_records(&d, "hex-input", HEX_EXAMPLE);
    let req = k.request(Mode::Embedded, "demo");
    let plan = prepare(Format::Ihex, HEX_EXAMPLE.as_bytes(), &req).expect("prepare");
    // The memory image: from the digests the plan computed over it.
    let image = [0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0xaa, 0x55];
    assert_dump(&d, "hex-image", &image);
    assert_eq!(
        plan.digest().1,
        DigestAlg::Sha256.hash(&image),
        "the image is what is hashed"
    );
    assert_doc_has(
        &d,
        "SHA-256 of the image",
        &hx(&DigestAlg::Sha256.hash(&image)),
    );
    assert_doc_has(
        &d,
        "SHA-512 of the image",
        &hx(&DigestAlg::Sha512.hash(&image)),
    );
    let m = bytes_of(plan.pq_message(SigAlg::MlDsa65).expect("pq message"));
    assert_dump(&d, "hex-message", &m);
    let (signed, _) = k.sign(Format::Ihex, HEX_EXAMPLE.as_bytes(), &req);
    save("hex-signed.hex", &signed);
    let text = String::from_utf8(signed.clone()).expect("ascii");
    assert_records(&d, "hex-signed", &text);
    assert_doc_has(
        &d,
        "the record count",
        &format!("({} records;", text.lines().count()),
    );
    assert_doc_has(
        &d,
        "the signed file's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&signed)),
    );
    assert_eq!(k.verify(Format::Ihex, &signed), 2);
}

/// §1's line rules, as stated: what is a line break, blank lines, whitespace.
#[test]
fn hex_line_rules() {
    let req = test_keys().request(Mode::Detached, "demo");
    let ok = |s: &str| prepare(Format::Ihex, s.as_bytes(), &req).map(|p| p.digest().1);
    let want = ok(HEX_EXAMPLE).expect("LF file");
    // CR LF, no final newline, a final lone CR, blank lines anywhere: the same image.
    for variant in [
        HEX_EXAMPLE.replace('\n', "\r\n"),
        HEX_EXAMPLE.trim_end().to_string(),
        format!("{}\r", HEX_EXAMPLE.trim_end()),
        HEX_EXAMPLE.replace(":02000800", "\n\r\n:02000800") + "\n\n",
    ] {
        assert_eq!(ok(&variant).expect("accepted"), want, "{variant:?}");
    }
    // Whitespace in or around a record, a space-only line, CR-only line ends: errors.
    for bad in [
        HEX_EXAMPLE.replace(":02000800", " :02000800"),
        HEX_EXAMPLE.replace("AA55F7", "AA55F7 "),
        HEX_EXAMPLE.replace("AA55F7", "AA 55F7"),
        HEX_EXAMPLE.replace(":02000800", "\t:02000800"),
        HEX_EXAMPLE.replace(":02000800", "   \n:02000800"),
        HEX_EXAMPLE.replace('\n', "\r"),
        format!("\u{feff}{HEX_EXAMPLE}"),
    ] {
        assert!(ok(&bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// formats/detached.md

/// Every key of `want` (the document's example) is in `got` with the same JSON type, and back;
/// arrays are compared element by element up to the shorter one.
fn same_shape(want: &serde_json::Value, got: &serde_json::Value, path: &str) {
    use serde_json::Value as V;
    match (want, got) {
        (V::Object(w), V::Object(g)) => {
            let wk: Vec<&String> = w.keys().collect();
            let gk: Vec<&String> = g.keys().collect();
            let mut ws = wk.clone();
            ws.sort();
            let mut gs = gk.clone();
            gs.sort();
            assert_eq!(ws, gs, "{path}: keys (left: document, right: code)");
            for (k, v) in w {
                same_shape(v, &g[k], &format!("{path}.{k}"));
            }
        }
        (V::Array(w), V::Array(g)) => {
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                same_shape(a, b, &format!("{path}[{i}]"));
            }
        }
        (V::String(_), V::String(_))
        | (V::Bool(_), V::Bool(_))
        | (V::Number(_), V::Number(_))
        | (V::Null, V::Null) => {}
        (w, g) => panic!("{path}: the document has {w}, the code {g}"),
    }
}

fn json_block(doc: &str, name: &str) -> serde_json::Value {
    serde_json::from_str(&block(doc, "check-json", name))
        .unwrap_or_else(|e| panic!("{name}: the document's JSON does not parse: {e}"))
}

#[test]
fn detached_worked_example() {
    let d = doc("detached.md");
    let k = test_keys();
    let img = [0xde, 0xad, 0xbe, 0xef];
    let (_, json) = k.sign(Format::Raw, &img, &k.request(Mode::Detached, "demo"));
    save("raw-detached.json", json.as_bytes());
    let got: serde_json::Value = serde_json::from_str(&json).expect("json");
    let mut want = json_block(&d, "detached-shape");
    // The example shows the optional fields too; a raw document has none of them.
    assert!(
        want["certificates"].is_array()
            && want["extra"].is_object()
            && want["timestamps"].is_array()
    );
    let obj = want.as_object_mut().expect("object");
    obj.remove("certificates");
    obj.remove("timestamps");
    obj.remove("extra");
    same_shape(&want, &got, "$");
    assert_eq!(got["type"], want["type"], "the type string");
    assert_doc_has(
        &d,
        "the raw example's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&img)),
    );
    let ecdsa = got["signatures"][0]["bytes"].as_str().expect("b64");
    assert_eq!(block(&d, "check-b64", "detached-ecdsa").trim(), ecdsa);
    // Every hex value lower-case; base64 standard alphabet with padding.
    for e in got["digests"].as_array().expect("digests") {
        let v = e["value"].as_str().expect("hex");
        assert_eq!(v, v.to_ascii_lowercase());
    }
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(ecdsa)
        .expect("standard base64");
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&raw),
        ecdsa
    );
}

// ---------------------------------------------------------------------------------------------
// formats/mcuboot.md

#[test]
fn mcuboot_worked_example() {
    let d = doc("mcuboot.md");
    let k = test_keys();
    let input = fixture("mcuboot/unsigned-seccnt.img");
    assert_dump(&d, "mcuboot-input", &input);
    assert_eq!(
        &input[0x41c..0x43c],
        &DigestAlg::Sha256.hash(&input[..0x414])[..]
    );
    let req = k.request(Mode::Embedded, "demo");
    let plan = prepare(Format::Mcuboot, &input, &req).expect("prepare");
    let m = bytes_of(plan.pq_message(SigAlg::MlDsa65).expect("pq message"));
    assert_dump(&d, "mcuboot-pq-message", &m);
    let (signed, _) = k.sign(Format::Mcuboot, &input, &req);
    save("mcuboot-signed.img", &signed);
    assert_dump(&d, "mcuboot-signed", &signed);
    assert_doc_has(
        &d,
        "the signed image's SHA-256",
        &hx(&DigestAlg::Sha256.hash(&signed)),
    );
    assert_eq!(
        &signed[0x112f..0x114f],
        &DigestAlg::Sha256.hash(&signed[..0x1127])[..]
    );
    assert_eq!(k.verify(Format::Mcuboot, &signed), 2);

    let mut pq_only = k.request(Mode::Embedded, "demo");
    pq_only.classical = None;
    let plan = prepare(Format::Mcuboot, &input, &pq_only).expect("prepare");
    let set = sign_prepared(plan.as_ref(), None, Some(&k.pq as &dyn Signer), vec![]).expect("sign");
    let out = assemble(&input, &plan.embed(&set).expect("embed")).expect("assemble");
    save("mcuboot-pq-only.img", &out);
    assert_dump(&d, "mcuboot-pq-only", &out);
    assert_eq!(
        out[..0x1127],
        signed[..0x1127],
        "PQ-only keeps the hybrid protected area"
    );
    assert_doc_has(
        &d,
        "the PQ-only length",
        &format!("is {} bytes", fmt_thousands(out.len())),
    );
    assert_eq!(k.verify(Format::Mcuboot, &out), 1);
}

fn fmt_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// mcuboot.md "Unknown and repeated TLVs": unknown unprotected TLVs are ignored, every hash TLV
/// must match, every signature TLV must verify.
#[test]
fn mcuboot_unprotected_tlv_rules() {
    let k = test_keys();
    let input = fixture("mcuboot/unsigned-seccnt.img");
    let (signed, _) = k.sign(Format::Mcuboot, &input, &k.request(Mode::Embedded, "demo"));
    let unprot = 0x1127;
    let with = |extra: &[u8]| {
        let mut v = signed.clone();
        let tot = u16::from_le_bytes([v[unprot + 2], v[unprot + 3]]) + extra.len() as u16;
        v[unprot + 2..unprot + 4].copy_from_slice(&tot.to_le_bytes());
        v.extend_from_slice(extra);
        v
    };
    // An unknown (vendor) TLV: ignored.
    assert_eq!(
        k.verify(
            Format::Mcuboot,
            &with(&[0xa1, 0x00, 0x02, 0x00, 0xaa, 0xbb])
        ),
        2
    );
    // A second SHA256 TLV that does not match: an error.
    let mut bad_hash = vec![0x10, 0x00, 0x20, 0x00];
    bad_hash.extend_from_slice(&[0u8; 32]);
    assert!(extract(Format::Mcuboot, &with(&bad_hash)).is_err());
    // A second ECDSA_SIG: extracted, and (being garbage) it does not verify.
    let mut sig2 = vec![0x22, 0x00, 0x08, 0x00];
    sig2.extend_from_slice(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
    let ex = extract(Format::Mcuboot, &with(&sig2)).expect("extract");
    assert_eq!(ex.signatures.len(), 3);
    let last = ex
        .signatures
        .iter()
        .find(|s| s.bytes.len() == 8)
        .expect("the extra signature");
    assert!(k
        .ec
        .public_key()
        .verify_bytes(&last.message, &last.bytes)
        .is_err());
}

// ---------------------------------------------------------------------------------------------
// formats/efi.md

/// RSA-3072 (random: RSA key generation has no seed here) and a certificate whose fields are
/// all fixed, so every byte of the signed file that does not depend on the key is reproducible.
fn efi_signed(input: &[u8]) -> Vec<u8> {
    use fwseal_crypto::cert::{self, CertParams};
    use std::time::{Duration, UNIX_EPOCH};
    let rsa = SoftKey::generate_rsa(SigAlg::RsaPkcs1Sha256, 3072).expect("rsa");
    let params = CertParams {
        common_name: "fwseal spec example".into(),
        serial: vec![0x01, 0x02, 0x03, 0x04],
        not_before: UNIX_EPOCH + Duration::from_secs(1_767_225_600), // 2026-01-01T00:00:00Z
        not_after: UNIX_EPOCH + Duration::from_secs(2_082_758_400),  // 2036-01-01T00:00:00Z
    };
    let c = cert::self_signed(&rsa, &params).expect("cert");
    let req = Request {
        classical: Some(SigAlg::RsaPkcs1Sha256),
        pq: None,
        mode: Mode::Embedded,
        options: Default::default(),
    };
    let plan = prepare(Format::Efi, input, &req).expect("prepare");
    let set = sign_prepared(plan.as_ref(), Some(&rsa as &dyn Signer), None, vec![c]).expect("sign");
    assemble(input, &plan.embed(&set).expect("embed")).expect("assemble")
}

/// The value after `key` in `text`: the next whitespace-delimited token, trimmed of `,;()`.
fn token_after<'a>(text: &'a str, key: &str) -> &'a str {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in the example"));
    text[at + key.len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches(|c| ",;()".contains(c))
}

fn num(t: &str) -> usize {
    let t = t.trim_matches(|c| ",;:()[)".contains(c));
    match t.strip_prefix("0x") {
        Some(h) => usize::from_str_radix(h, 16),
        None => t.parse(),
    }
    .unwrap_or_else(|e| panic!("not a number {t:?}: {e}"))
}

fn u32_at(d: &[u8], o: usize) -> usize {
    u32::from_le_bytes(d[o..o + 4].try_into().expect("4 bytes")) as usize
}

#[test]
fn efi_worked_example() {
    let d = doc("efi.md");
    let input = fixture("efi/hello.efi");
    assert_doc_has(
        &d,
        "the fixture length",
        &format!("`fixtures/efi/hello.efi`, {} bytes", input.len()),
    );
    let ex = block(&d, "check-ranges", "efi-hello");

    // Header facts.
    let lfanew = num(token_after(&ex, "e_lfanew ="));
    assert_eq!(u32_at(&input, 0x3c), lfanew);
    let pe_at = format!(
        "at {}:",
        token_after(&ex, "PE\\0\\0 at").trim_end_matches(':')
    );
    let line = ex.lines().find(|l| l.contains(&pe_at)).expect("PE line");
    let shown: Vec<u8> = line[line.find(&pe_at).expect("at") + pe_at.len()..]
        .split_whitespace()
        .take_while(|t| is_hex_token(t))
        .map(|t| u8::from_str_radix(t, 16).expect("hex"))
        .collect();
    assert_eq!(
        &input[lfanew..lfanew + shown.len()],
        &shown[..],
        "bytes at e_lfanew"
    );
    let opt = num(token_after(&ex, "opt ="));
    assert_eq!(opt, lfanew + 24);
    assert_eq!(&input[opt..opt + 2], &[0x0b, 0x02], "PE32+ magic");
    let checksum_at = num(token_after(&ex, "CheckSum at"));
    assert_eq!(checksum_at, opt + 64);
    assert_eq!(u32_at(&input, checksum_at), num(token_after(&ex, "(value")));
    assert_eq!(
        u32_at(&input, opt + 108),
        num(token_after(&ex, "NumberOfRvaAndSizes ="))
    );
    let secdir = num(token_after(&ex, "+ 112 + 32 ="));
    assert_eq!(secdir, opt + 112 + 32);
    let entry: String = ex[ex.find(&format!("{secdir:#x}:")).expect("entry") + 6..]
        .split_whitespace()
        .take(2)
        .collect();
    assert_eq!(
        entry,
        hx(&input[secdir..secdir + 8]),
        "the Certificate Table entry"
    );
    let soh = num(token_after(&ex, "SizeOfHeaders ="));
    assert_eq!(u32_at(&input, opt + 60), soh);
    // Sections: `.name 0xPTR 0xSIZE`, in the table's order.
    let nsect = u16::from_le_bytes([input[lfanew + 6], input[lfanew + 7]]) as usize;
    let sect_tab = opt + u16::from_le_bytes([input[lfanew + 20], input[lfanew + 21]]) as usize;
    let line = ex
        .lines()
        .find(|l| l.trim_start().starts_with(".text"))
        .expect("sections");
    let shown: Vec<&str> = line.split(',').map(str::trim).collect();
    assert_eq!(shown.len(), nsect);
    for (i, sct) in shown.iter().enumerate() {
        let h = sect_tab + 40 * i;
        let name = String::from_utf8_lossy(&input[h..h + 8])
            .trim_end_matches('\0')
            .to_string();
        let f: Vec<&str> = sct.split_whitespace().collect();
        assert_eq!(f[0], name);
        assert_eq!(num(f[1]), u32_at(&input, h + 20), "{name} PointerToRawData");
        assert_eq!(num(f[2]), u32_at(&input, h + 16), "{name} SizeOfRawData");
    }

    // The hashed ranges, hashed exactly as listed, give fwseal's digests.
    let ranges = &ex[ex.find("hashed ranges:").expect("ranges")..];
    let mut stream = Vec::new();
    for r in ranges.split('[').skip(1) {
        let (lo, rest) = r.split_once(',').expect("[lo,hi)");
        let hi = rest.split(')').next().expect("hi)");
        stream.extend_from_slice(&input[num(lo)..num(hi)]);
    }
    let zeros = num(token_after(ranges, "+"));
    stream.extend(std::iter::repeat_n(0u8, zeros));
    let req = Request::hybrid(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65, Mode::Embedded, "p");
    let plan = prepare(Format::Efi, &input, &req).expect("prepare");
    assert_eq!(plan.digest().1, DigestAlg::Sha256.hash(&stream));
    let sha512: String = ex[ex.find("SHA-512 =").expect("sha512") + 9..]
        .split_whitespace()
        .take(2)
        .collect();
    assert_eq!(sha512, hx(&DigestAlg::Sha512.hash(&stream)));
    assert_eq!(
        token_after(&ex, "SHA-256 ="),
        hx(&DigestAlg::Sha256.hash(&stream))
    );

    // SpcIndirectDataContent, messageDigest, the signed attributes, the PQ message.
    let attrs = bytes_of(
        plan.classical_message(SigAlg::RsaPkcs1Sha256, None)
            .expect("attrs"),
    );
    assert_dump(&d, "efi-signed-attrs", &attrs);
    let md = &attrs[attrs.len() - 32..];
    assert_doc_has(&d, "messageDigest", &hx(md));
    let mut spc = hex::decode("30683033060a2b0601040182370201 0f".replace(' ', "")).expect("hex");
    spc.extend_from_slice(&[
        0x30, 0x25, 0x03, 0x01, 0x00, 0xa0, 0x20, 0xa2, 0x1e, 0x80, 0x1c,
    ]);
    spc.extend(
        "<<<Obsolete>>>"
            .encode_utf16()
            .flat_map(|c| c.to_be_bytes()),
    );
    spc.extend(hex::decode("3031300d060960864801650304020105000420").expect("hex"));
    spc.extend_from_slice(&plan.digest().1);
    assert_dump(&d, "efi-spc", &spc);
    assert_eq!(
        DigestAlg::Sha256.hash(&spc[2..]),
        md,
        "messageDigest = SHA-256(content octets)"
    );
    let pq = bytes_of(plan.pq_message(SigAlg::MlDsa65).expect("pq"));
    assert_eq!(pq.len(), 88);
    assert_eq!(&pq[..24], b"fwseal/detached/v1/efi\0\x03");
    assert_eq!(
        hx(&pq[24..]),
        sha512,
        "the PQ message ends with the SHA-512 above"
    );

    // The signed file: every byte that does not depend on the RSA key.
    let signed = efi_signed(&input);
    save("efi-signed.efi", &signed);
    assert_dump(&d, "efi-signed", &signed);
    assert_doc_has(&d, "the signed length", &format!("{} bytes.", signed.len()));
    let ex = extract(Format::Efi, &signed).expect("extract");
    assert_eq!(ex.signatures[0].message, SignedMessage::Bytes(attrs));
}

/// efi.md §1: (x,0) and (0,x) certificate-table entries are malformed, never "unsigned".
#[test]
fn efi_certificate_table_entry_rules() {
    let input = fixture("efi/hello.efi");
    let req = Request::hybrid(SigAlg::RsaPkcs1Sha256, SigAlg::MlDsa65, Mode::Detached, "p");
    let entry = 0x128;
    let len = input.len() as u32;
    for (off, size) in [(len, 0), (0x200, 0), (0, 16), (0, len)] {
        let mut d = input.clone();
        d[entry..entry + 4].copy_from_slice(&off.to_le_bytes());
        d[entry + 4..entry + 8].copy_from_slice(&size.to_le_bytes());
        assert!(
            prepare(Format::Efi, &d, &req).is_err(),
            "({off:#x}, {size:#x}) accepted"
        );
        assert!(!matches!(
            extract(Format::Efi, &d),
            Err(fwseal_formats::FormatError::NotSigned(_))
        ));
    }
    prepare(Format::Efi, &input, &req).expect("(0, 0) is unsigned");
}

// ---------------------------------------------------------------------------------------------
// Byte layouts (`<!-- check-layout: NAME -->`): the field tables and layout blocks, checked
// against files the code produced. Each row is `offset size field value…`: the offsets of a
// structure must tile it (each field starts where the previous one ends), and a value the row
// states — a quoted string, hex bytes in parentheses or backticks, a 0x number, a decimal, or a
// variable such as P — must be what the file holds there.

#[derive(Debug)]
struct Row {
    off: String,
    size: String,
    field: String,
    rest: String,
}

/// The rows after `<!-- check-layout: NAME -->`, grouped by structure (a non-row line inside a
/// fenced block starts a new group; a Markdown table is one group).
fn layout(doc: &str, name: &str) -> Vec<(String, Vec<Row>)> {
    let marker = format!("<!-- check-layout: {name} -->");
    let at = doc.find(&marker).unwrap_or_else(|| panic!("no {marker}"));
    let rest = &doc[at + marker.len()..];
    let mut groups: Vec<(String, Vec<Row>)> = vec![(String::new(), Vec::new())];
    let mut lines = rest.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    if first.starts_with('|') {
        for l in lines.skip(1).take_while(|l| l.starts_with('|')) {
            let c: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|x| x.trim().replace('`', ""))
                .collect();
            groups[0].1.push(Row {
                off: c[0].clone(),
                size: c[1].clone(),
                field: c[2].clone(),
                rest: c.get(3).cloned().unwrap_or_default(),
            });
        }
        return groups;
    }
    assert!(
        first.starts_with("```"),
        "{name}: a table or a fenced block"
    );
    for l in lines.take_while(|l| !l.starts_with("```")) {
        let t: Vec<&str> = l.split_whitespace().collect();
        let is_row = t.len() >= 3
            && t[0].starts_with(|c: char| c.is_ascii_digit())
            && t[0].chars().all(|c| c.is_ascii_alphanumeric() || c == '+');
        if is_row {
            let field_at = l.find(t[2]).unwrap_or(0);
            let after = &l[field_at + t[2].len()..];
            groups.last_mut().expect("group").1.push(Row {
                off: t[0].into(),
                size: t[1].into(),
                field: t[2].into(),
                rest: after.trim().into(),
            });
        } else if !l.starts_with(' ') && t.first() != Some(&"offset") {
            groups.push((l.trim().to_string(), Vec::new()));
        }
    }
    groups.retain(|(_, rows)| !rows.is_empty());
    groups
}

fn eval(expr: &str, vars: &[(&str, usize)]) -> usize {
    expr.split('+')
        .map(|t| {
            t.parse::<usize>().unwrap_or_else(|_| {
                vars.iter()
                    .find(|(n, _)| *n == t)
                    .unwrap_or_else(|| panic!("no value for {t:?} in {expr:?}"))
                    .1
            })
        })
        .sum()
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x))
}

/// Check one structure's rows against `data` (the structure starts at `data[0]`).
fn check_rows(name: &str, rows: &[Row], data: &[u8], vars: &[(&str, usize)]) -> usize {
    let mut pos = 0usize;
    for r in rows {
        let off = eval(&r.off, vars);
        let size = eval(&r.size, vars);
        let what = format!("{name}: {} at {}", r.field, r.off);
        assert_eq!(off, pos, "{what}: the fields do not tile the structure");
        let got = &data[off..off + size];
        let rest = r.rest.trim_start_matches('=').trim();
        let first = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches(':');
        if let Some(q) = rest.split('"').nth(1) {
            if q.len() == size {
                assert_eq!(got, q.as_bytes(), "{what}: {rest}");
            }
        }
        for inner in rest.split(['(', '`']).skip(1) {
            let hexs: Vec<&str> = inner
                .split([')', '`'])
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let hexs: Vec<&str> = hexs.into_iter().skip_while(|t| *t == "bytes").collect();
            if hexs.len() == size && hexs.iter().all(|t| t.len() == 2 && is_hex_token(t)) {
                assert_eq!(hx(got), hexs.concat(), "{what}: {rest}");
            }
        }
        if let Some(h) = first.strip_prefix("0x") {
            if let Ok(v) = u64::from_str_radix(h, 16) {
                assert_eq!(le(got), v, "{what}: {rest}");
            }
        } else if let Ok(v) = first.parse::<u64>() {
            assert_eq!(le(got), v, "{what}: {rest}");
        } else if let Some((_, v)) = vars.iter().find(|(n, _)| *n == first) {
            assert_eq!(le(got), *v as u64, "{what}: {rest}");
        } else if r.field == "reserved" && rest.starts_with("(0)") {
            assert!(got.iter().all(|&b| b == 0), "{what}: reserved");
        }
        pos = off + size;
    }
    pos
}

#[test]
fn byte_layouts() {
    let k = test_keys();
    // The fwseal signature block: the worked example's block, and its first TLV (FORMAT).
    let d = doc("signature-block.md");
    let img = [0xde, 0xad, 0xbe, 0xef];
    let (signed, _) = k.sign(Format::Raw, &img, &k.request(Mode::Embedded, "demo"));
    let start = fwseal_formats::sigblock::find_trailer(Format::Raw, &signed)
        .expect("trailer")
        .expect("block");
    let block = &signed[start..];
    let dec = fwseal_formats::sigblock::decode(Format::Raw, block, start as u64).expect("decode");
    let p = dec.protected.len();
    let l = block.len();
    let vars = [("P", p), ("U", l - 32 - p), ("L", l)];
    let g = layout(&d, "sigblock-layout");
    assert_eq!(g.len(), 1);
    assert_eq!(check_rows("block", &g[0].1, block, &vars), l);
    let g = layout(&d, "sigblock-tlv");
    let n = u32_at(&dec.protected, 4);
    assert_eq!(
        check_rows("TLV", &g[0].1, &dec.protected, &[("n", n)]),
        8 + n
    );

    // The DFU suffix (DFU 1.1 fixture).
    let d = doc("dfu.md");
    let dfu11 = fixture("dfu/dfu11.dfu");
    let g = layout(&d, "dfu-suffix");
    assert_eq!(
        check_rows("suffix", &g[0].1, &dfu11[dfu11.len() - 16..], &[]),
        16
    );
    // DfuSe: prefix, target prefix, element (the fixture's first target and element).
    let dfuse = fixture("dfu/dfuse.dfu");
    let g = layout(&d, "dfuse-layout");
    let titles: Vec<&str> = g.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles.len(),
        3,
        "prefix, target prefix, element: {titles:?}"
    );
    assert_eq!(check_rows("prefix", &g[0].1, &dfuse, &[]), 11);
    assert!(g[0].0.contains("(11 bytes)"));
    assert_eq!(check_rows("target", &g[1].1, &dfuse[11..], &[]), 274);
    assert!(g[1].0.contains("(274 bytes)"));
    let size = u32_at(&dfuse, 285 + 4);
    let n = check_rows(
        "element",
        &g[2].1,
        &dfuse[285..],
        &[("dwElementSize", size)],
    );
    assert_eq!(n, 8 + size);

    // The MCUboot image header (fixture).
    let d = doc("mcuboot.md");
    let img = fixture("mcuboot/unsigned-seccnt.img");
    let g = layout(&d, "mcuboot-header");
    assert_eq!(check_rows("image_header", &g[0].1, &img, &[]), 32);

    // WIN_CERTIFICATE (efi.md §4), sequential fields: `u32 name = value`.
    let d = doc("efi.md");
    let signed = efi_signed(&fixture("efi/hello.efi"));
    let marker = "<!-- check-layout: efi-win-certificate -->";
    let text = &d[d.find(marker).expect("marker")..];
    let table = u32_at(&signed, 0x128);
    let mut pos = table;
    for l in text
        .lines()
        .skip_while(|l| !l.contains("WIN_CERTIFICATE"))
        .skip(1)
    {
        let t: Vec<&str> = l.split_whitespace().collect();
        let size = match t.first().copied() {
            Some("u32") => 4,
            Some("u16") => 2,
            Some("u8") => break,
            _ => break,
        };
        let v = &signed[pos..pos + size];
        match t[1] {
            "dwLength" => assert_eq!(le(v) as usize, signed.len() - table, "dwLength"),
            _ => assert_eq!(
                le(v),
                u64::from_str_radix(t[3].trim_start_matches("0x"), 16).expect("hex"),
                "{}",
                t[1]
            ),
        }
        pos += size;
    }
    assert_eq!(pos, table + 8, "dwLength, wRevision, wCertificateType");
    assert_eq!(
        &signed[pos..pos + 2],
        &[0x30, 0x82],
        "then the PKCS#7 ContentInfo"
    );
}

/// formats/raw.md's stock-tool snippets, run as written (jq + openssl, pyca) on the worked
/// example signed detached with the test keys.
#[test]
fn raw_recipes_run() {
    use std::process::Command;
    let d = doc("raw.md");
    let (Some(_), Some(_), Some(_)) = (
        common::tool("jq"),
        common::tool("openssl"),
        common::tool("python3"),
    ) else {
        return;
    };
    let k = test_keys();
    let img = [0xde, 0xad, 0xbe, 0xef];
    let (_, json) = k.sign(Format::Raw, &img, &k.request(Mode::Detached, "demo"));
    let dir = common::tempdir();
    let put = |n: &str, b: &[u8]| std::fs::write(dir.path().join(n), b).expect("write");
    put("fw.bin", &img);
    put("fw.bin.sig.json", json.as_bytes());
    put("product-ec.pem", k.ec.public_key().spki_pem().as_bytes());
    put("product-pq.pem", k.pq.public_key().spki_pem().as_bytes());
    let sh = block(&d, "run", "raw-classical");
    let r = common::run(
        Command::new("sh")
            .arg("-ec")
            .arg(&sh)
            .current_dir(dir.path()),
    );
    assert!(r.ok && r.stdout.contains("Verified OK"), "{}", r.text());
    let py = block(&d, "run", "raw-pq");
    let r = common::run(
        Command::new("python3")
            .arg("-c")
            .arg(&py)
            .current_dir(dir.path()),
    );
    assert!(r.ok, "the pyca snippet fails: {}", r.text());
    // And it fails on a tampered image (the snippet really checks something).
    put("fw.bin", &[0xde, 0xad, 0xbe, 0xee]);
    let r = common::run(
        Command::new("python3")
            .arg("-c")
            .arg(&py)
            .current_dir(dir.path()),
    );
    assert!(!r.ok, "the pyca snippet accepts a tampered image");
}

/// hex.md §2's srec_cat recipe, run as written on the worked example: `sha256sum` of the image
/// it writes is fwseal's primary digest.
#[test]
fn hex_recipe_runs() {
    use std::process::Command;
    let (Some(_), Some(_)) = (common::tool("srec_cat"), common::tool("sha256sum")) else {
        return;
    };
    let d = doc("hex.md");
    let dir = common::tempdir();
    std::fs::write(dir.path().join("fw.hex"), HEX_EXAMPLE).expect("write");
    let sh = block(&d, "run", "hex-srec-image");
    let r = common::run(
        Command::new("sh")
            .arg("-ec")
            .arg(&sh)
            .current_dir(dir.path()),
    );
    assert!(r.ok, "{}", r.text());
    let req = test_keys().request(Mode::Detached, "demo");
    let digest = prepare(Format::Ihex, HEX_EXAMPLE.as_bytes(), &req)
        .expect("prepare")
        .digest()
        .1;
    assert!(
        r.stdout.starts_with(&hx(&digest)),
        "{} vs {}",
        r.stdout,
        hx(&digest)
    );
}
