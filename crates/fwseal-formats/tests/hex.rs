//! Intel HEX: parsing, memory-image digest, embedded and detached signing, and the judges
//! (`srec_cat` / `srec_cmp` from srecord, and the independent Python verifier
//! `tests/verifiers/hex_verify.py` written from `formats/hex.md`).

mod common;

use common::{run, tool, Keys};
use fwseal_crypto::{DigestAlg, SigAlg, Signer as _};
use fwseal_formats::{
    describe, detached, extract, hex, prepare, FormatError, Location, Mode, Request,
};
use fwseal_formats::{Format, SignedMessage};
use std::path::Path;
use std::process::Command;

const FIXTURES: [&str; 3] = ["hex/multi.hex", "hex/gcc.hex", "hex/segment.hex"];

fn keys() -> Keys {
    Keys::default_hybrid()
}

fn digest(data: &[u8]) -> Vec<u8> {
    let req = Request::hybrid(
        SigAlg::EcdsaP256Sha256,
        SigAlg::MlDsa65,
        Mode::Detached,
        "p",
    );
    prepare(Format::Ihex, data, &req)
        .expect("prepare")
        .digest()
        .1
}

/// `(address, length)` of the signature block, read from `describe`.
fn block_of(signed: &[u8]) -> (u64, u64) {
    let d = describe(Format::Ihex, signed).expect("describe");
    let rest = d
        .split("fwseal signature block at 0x")
        .nth(1)
        .unwrap_or_else(|| panic!("no block in {d}"));
    let addr = u64::from_str_radix(&rest[..8], 16).expect("addr");
    let len: u64 = rest[10..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("len");
    (addr, len)
}

/// Lines of the file up to (not including) the EOF record, and the EOF record line.
fn split_eof(text: &str) -> (Vec<&str>, &str) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let (eof, body) = lines.split_last().expect("lines");
    (body.to_vec(), eof)
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    p.to_string_lossy().into_owned()
}

fn srec_cat_reformat(input: &[u8], opts: &[&str]) -> Option<Vec<u8>> {
    let cat = tool("srec_cat")?;
    let dir = common::tempdir();
    let i = write(dir.path(), "in.hex", input);
    let out = dir.path().join("out.hex");
    let r = run(Command::new(cat)
        .args([i.as_str(), "-intel", "-o"])
        .arg(&out)
        .arg("-intel")
        .args(opts));
    assert!(r.ok, "srec_cat {opts:?}: {}", r.text());
    Some(std::fs::read(&out).expect("read"))
}

/// Reverse the order of the address groups (an 02/04 record and the data records after it).
fn reverse_groups(data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(data.to_vec()).expect("ascii");
    let (body, eof) = split_eof(&text);
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut trailer = Vec::new();
    for l in body {
        let t = &l[7..9];
        if t == "02" || t == "04" {
            groups.push(vec![l]);
        } else if t == "00" {
            groups.last_mut().expect("address record first").push(l);
        } else {
            trailer.push(l);
        }
    }
    assert!(groups.len() > 1, "need several groups to reorder");
    groups.reverse();
    let mut out: Vec<&str> = groups.concat();
    out.extend(trailer);
    out.push(eof);
    (out.join("\n") + "\n").into_bytes()
}

#[test]
fn fixtures_parse_and_describe() {
    let d = describe(Format::Ihex, &common::fixture("hex/multi.hex")).expect("multi");
    assert!(d.contains("18 records (13 data), 3 segment(s)"), "{d}");
    assert!(
        d.contains("segment 0x08000000..0x08000047 (71 bytes)"),
        "{d}"
    );
    assert!(
        d.contains("segment 0x0801ffd0..0x08020030 (96 bytes)"),
        "{d}"
    );
    assert!(
        d.contains("start address: 0x08000000 (linear, type 05)"),
        "{d}"
    );
    let d = describe(Format::Ihex, &common::fixture("hex/gcc.hex")).expect("gcc");
    assert!(d.contains("3 segment(s)"), "{d}");
    assert!(
        d.contains("segment 0x08002020..0x08002024 (4 bytes)"),
        "{d}"
    );
    let d = describe(Format::Ihex, &common::fixture("hex/segment.hex")).expect("segment");
    // 02 records: 0x0FFF0 + 71 bytes of code crosses 64 KiB; the tail sits at 0x20000.
    assert!(
        d.contains("segment 0x0000fff0..0x00010037 (71 bytes)"),
        "{d}"
    );
    assert!(
        d.contains("segment 0x00020000..0x00020060 (96 bytes)"),
        "{d}"
    );
    for f in FIXTURES {
        assert_eq!(
            fwseal_formats::detect(&common::fixture(f), None).expect("detect"),
            Format::Ihex
        );
        assert!(matches!(
            extract(Format::Ihex, &common::fixture(f)),
            Err(FormatError::NotSigned(Format::Ihex))
        ));
    }
}

#[test]
fn malformed_fixtures_give_typed_errors_with_line_numbers() {
    let cases: [(&str, u64, &str); 9] = [
        ("bad_checksum.hex", 3, "bad checksum"),
        ("bad_hex_digit.hex", 4, "bad hex digit 'G' at column 12"),
        ("missing_eof.hex", 17, "missing end-of-file record"),
        ("truncated.hex", 5, "truncated"),
        (
            "lying_byte_count.hex",
            3,
            "byte count 0x20 says 32 data bytes but the record holds 16",
        ),
        ("overlap.hex", 5, "written by line 2 and line 5"),
        ("unknown_type.hex", 2, "unknown record type 0x06"),
        (
            "data_after_eof.hex",
            19,
            "data after the end-of-file record (line 18)",
        ),
        ("wrap_4gib.hex", 2, "wraps past 4 GiB"),
    ];
    let req = keys().request(Mode::Embedded);
    for (name, line, what) in cases {
        let data = common::fixture(&format!("hex/malformed/{name}"));
        for e in [
            prepare(Format::Ihex, &data, &req).err(),
            extract(Format::Ihex, &data).err(),
            describe(Format::Ihex, &data).err(),
        ] {
            match e {
                Some(FormatError::Malformed {
                    format: Format::Ihex,
                    at: Location::Line(l),
                    what: w,
                }) => {
                    assert_eq!(l, line, "{name}: {w}");
                    assert!(w.contains(what), "{name}: {w:?} lacks {what:?}");
                }
                other => panic!("{name}: expected a line error, got {other:?}"),
            }
        }
    }
}

#[test]
fn embedded_signing_preserves_every_record_and_verifies() {
    let k = keys();
    for f in FIXTURES {
        let orig = common::fixture(f);
        let req = k.request(Mode::Embedded);
        let signed = k.embed(Format::Ihex, &orig, &req, vec![]);
        assert_eq!(k.verify_extracted(Format::Ihex, &signed), 2, "{f}");
        let (o, s) = (
            String::from_utf8(orig.clone()).expect("ascii"),
            String::from_utf8(signed.clone()).expect("ascii"),
        );
        let ((ob, oe), (sb, se)) = (split_eof(&o), split_eof(&s));
        // Every original record, byte for byte and in order, then only block records, then EOF.
        assert_eq!(&sb[..ob.len()], &ob[..], "{f}");
        assert_eq!(oe, se);
        assert!(sb[ob.len()..]
            .iter()
            .all(|l| l.starts_with(":02000004") || &l[7..9] == "00"));
        assert!(s.trim_end().ends_with(":00000001FF"));
        // New records use the file's line terminator.
        let crlf = o.contains("\r\n");
        assert_eq!(
            s.matches("\r\n").count(),
            if crlf { s.matches('\n').count() } else { 0 },
            "{f}"
        );
        // The digest is unchanged by signing (the block is excluded), and matches extract.
        assert_eq!(digest(&orig), digest(&signed), "{f}");
        let ex = extract(Format::Ihex, &signed).expect("extract");
        assert_eq!(ex.digest, (DigestAlg::Sha256, digest(&orig)));
        assert_eq!(ex.product.as_deref(), Some("test-product"));
        // Block at the next 16-byte boundary above the data.
        let (addr, _) = block_of(&signed);
        assert_eq!(addr % 16, 0);
        // Tampering with one data byte (checksum fixed) breaks the digest check, on a line.
        let tampered = tamper_first_data_byte(&signed);
        match extract(Format::Ihex, &tampered) {
            Err(FormatError::Malformed {
                at: Location::Line(_),
                what,
                ..
            }) => assert!(what.contains("digest does not match"), "{what}"),
            other => panic!("tampered {f}: {other:?}"),
        }
    }
}

/// Flip a bit in the first data record's first byte and fix its checksum.
fn tamper_first_data_byte(data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(data.to_vec()).expect("ascii");
    let mut out = Vec::new();
    let mut done = false;
    for l in text.split_inclusive('\n') {
        let t = l.trim_end();
        if !done && t.len() > 11 && &t[7..9] == "00" {
            let mut b = ::hex::decode(&t[1..]).expect("hex");
            b[4] ^= 0x01;
            let n = b.len();
            b[n - 1] = b[..n - 1]
                .iter()
                .fold(0u8, |a, &x| a.wrapping_add(x))
                .wrapping_neg();
            out.push(format!(":{}\n", ::hex::encode_upper(&b)));
            done = true;
        } else {
            out.push(l.to_string());
        }
    }
    out.concat().into_bytes()
}

#[test]
fn judge_srec_cmp_original_ranges_unchanged() {
    let (Some(cat), Some(cmp)) = (tool("srec_cat"), tool("srec_cmp")) else {
        return;
    };
    let k = keys();
    for f in FIXTURES {
        let orig = common::fixture(f);
        let signed = k.embed(Format::Ihex, &orig, &k.request(Mode::Embedded), vec![]);
        let (addr, len) = block_of(&signed);
        let dir = common::tempdir();
        let o = write(dir.path(), "orig.hex", &orig);
        let s = write(dir.path(), "signed.hex", &signed);
        let x = dir.path().join("x.hex");
        let (start, end) = (format!("{addr:#x}"), format!("{:#x}", addr + len));
        let r = run(Command::new(&cat)
            .args([s.as_str(), "-intel", "-exclude", &start, &end, "-o"])
            .arg(&x)
            .arg("-intel"));
        assert!(r.ok, "{}", r.text());
        let r = run(Command::new(&cmp)
            .args([o.as_str(), "-intel"])
            .arg(&x)
            .arg("-intel"));
        assert!(
            r.ok,
            "{f}: srec_cmp says the original ranges changed: {}",
            r.text()
        );
        // Control: without excluding the block the memories differ.
        let r = run(Command::new(&cmp).args([o.as_str(), "-intel", s.as_str(), "-intel"]));
        assert!(!r.ok, "{f}: srec_cmp sees no signature block at all");
    }
}

#[test]
fn judge_srec_cat_reformatting_keeps_the_digest() {
    let multi = common::fixture("hex/multi.hex");
    let want = digest(&multi);
    let variants: [&[&str]; 4] = [
        &["-line-length=24"],
        &["-output-block-size=32"],
        &["-output-block-size=7", "-address-length=4"],
        &["-line-length=76", "-output-block-size=1"],
    ];
    for opts in variants {
        let Some(v) = srec_cat_reformat(&multi, opts) else {
            return;
        };
        assert_ne!(v, multi, "{opts:?} did not change the text");
        assert_eq!(digest(&v), want, "{opts:?}");
    }
    // Record order: reverse the address groups of a srec_cat rewrite.
    let v = srec_cat_reformat(&multi, &["-output-block-size=8"]).expect("srec_cat");
    assert_eq!(digest(&reverse_groups(&v)), want);
    // CRLF line ends and trailing blank lines.
    let crlf = String::from_utf8(multi.clone())
        .expect("ascii")
        .replace('\n', "\r\n")
        + "\r\n\r\n";
    assert_eq!(digest(crlf.as_bytes()), want);

    // Address-record style: the 02 (i16hex) fixture vs srec_cat's 04 (i32hex) rewrite of it.
    let seg = common::fixture("hex/segment.hex");
    let lin = srec_cat_reformat(&seg, &[]).expect("srec_cat");
    assert!(String::from_utf8_lossy(&lin).contains(":02000004"));
    assert!(!String::from_utf8_lossy(&lin).contains(":02000002"));
    assert_eq!(digest(&lin), digest(&seg));
    let seg2 =
        srec_cat_reformat(&lin, &["-address-length=3", "-output-block-size=5"]).expect("srec_cat");
    assert!(String::from_utf8_lossy(&seg2).contains(":02000002"));
    assert_eq!(digest(&seg2), digest(&seg));

    // The digest is exactly SHA-256 of srec_cat's own 0xFF-filled flat image.
    for f in FIXTURES {
        let data = common::fixture(f);
        let d = describe(Format::Ihex, &data).expect("describe");
        let lo = d
            .split("segment 0x")
            .nth(1)
            .map(|s| u64::from_str_radix(&s[..8], 16).expect("lo"))
            .expect("segment");
        let neg = format!("-{lo:#x}");
        let dir = common::tempdir();
        let i = write(dir.path(), "in.hex", &data);
        let Some(cat) = tool("srec_cat") else { return };
        let flat = dir.path().join("flat.bin");
        let r = run(Command::new(cat)
            .args(["(", i.as_str(), "-intel", "-fill", "0xFF", "-over", "("])
            .args([i.as_str(), "-intel", ")", ")", "-offset", &neg, "-o"])
            .arg(&flat)
            .arg("-binary"));
        assert!(r.ok, "{}", r.text());
        let bin = std::fs::read(&flat).expect("flat");
        assert_eq!(digest(&data), DigestAlg::Sha256.hash(&bin), "{f}");
    }
}

#[test]
fn judge_reformatted_signed_file_still_verifies_and_resigns() {
    let k = keys();
    let orig = common::fixture("hex/multi.hex");
    let signed = k.embed(Format::Ihex, &orig, &k.request(Mode::Embedded), vec![]);
    // The block starts right at the end of the data (0x08020030 is 16-aligned), so srec_cat
    // merges image and block bytes into shared records.
    let Some(v) = srec_cat_reformat(&signed, &["-output-block-size=40"]) else {
        return;
    };
    assert_eq!(k.verify_extracted(Format::Ihex, &v), 2);
    let k2 = keys();
    let resigned = k2.embed(Format::Ihex, &v, &k2.request(Mode::Embedded), vec![]);
    assert_eq!(k2.verify_extracted(Format::Ihex, &resigned), 2);
    assert_eq!(digest(&resigned), digest(&orig));
    let text = String::from_utf8(resigned).expect("ascii");
    assert_eq!(count_block_headers(&text), 1);
}

/// How many "FWSB" headers the memory holds (via srec_cat's flat image of the file is overkill:
/// the block records fwseal writes are 16-byte aligned, so search the decoded data records).
fn count_block_headers(text: &str) -> usize {
    let mut mem = Vec::new();
    for l in text.lines().filter(|l| l.len() > 11 && &l[7..9] == "00") {
        let b = ::hex::decode(&l[1..]).expect("hex");
        mem.extend_from_slice(&b[4..b.len() - 1]);
    }
    mem.windows(8).filter(|w| w == b"fwsealSB").count()
}

#[test]
fn resigning_replaces_the_block_never_stacks() {
    let k = keys();
    for f in FIXTURES {
        let orig = common::fixture(f);
        let req = k.request(Mode::Embedded);
        let once = k.embed(Format::Ihex, &orig, &req, vec![]);
        let k2 = keys();
        let twice = k2.embed(Format::Ihex, &once, &k2.request(Mode::Embedded), vec![]);
        let thrice = k2.embed(Format::Ihex, &twice, &k2.request(Mode::Embedded), vec![]);
        assert_eq!(k2.verify_extracted(Format::Ihex, &thrice), 2);
        for s in [&once, &twice, &thrice] {
            let t = String::from_utf8(s.to_vec()).expect("ascii");
            assert_eq!(count_block_headers(&t), 1, "{f}");
            // Original records kept; exactly one 04 record before the block records.
            let (o, _) = split_eof(std::str::from_utf8(&orig).expect("ascii"));
            let (b, _) = split_eof(&t);
            assert_eq!(&b[..o.len()], &o[..]);
        }
        // Same record count each time (ECDSA DER length may vary by a byte or two).
        let lines = |d: &[u8]| d.iter().filter(|&&c| c == b'\n').count();
        assert_eq!(lines(&twice), lines(&thrice), "{f}");
        assert!(lines(&once).abs_diff(lines(&thrice)) <= 1, "{f}");
        assert_eq!(block_of(&once).0, block_of(&thrice).0);
        // The old keys no longer verify the re-signed file.
        let ex = extract(Format::Ihex, &thrice).expect("extract");
        for s in &ex.signatures {
            let old: &dyn fwseal_crypto::Signer = if s.alg == SigAlg::MlDsa65 {
                &k.pq
            } else {
                &k.classical
            };
            assert!(old.public_key().verify_bytes(&s.message, &s.bytes).is_err());
        }
    }
}

#[test]
fn detached_mode_signs_the_memory_image_digests() {
    let k = keys();
    let orig = common::fixture("hex/multi.hex");
    let req = k.request(Mode::Detached);
    let (plan, set) = k.sign(Format::Ihex, &orig, &req, vec![]);
    let doc = plan.detached(&set).expect("doc");
    assert_eq!(doc.format, Format::Ihex);
    assert_eq!(
        ::hex::decode(&doc.digest.value).expect("hex"),
        digest(&orig)
    );
    // ECDSA signs the SHA-256 of the memory image; ML-DSA the detached message over SHA-512.
    let ec = SignedMessage::Prehashed {
        alg: DigestAlg::Sha256,
        digest: digest(&orig),
    };
    k.classical
        .public_key()
        .verify(&ec, &set.signatures[0])
        .expect("ecdsa");
    let sha512 = doc
        .digests
        .iter()
        .find(|d| d.alg == DigestAlg::Sha512)
        .expect("sha512");
    let mut m = detached::domain(Format::Ihex);
    m.push(DigestAlg::Sha512.id());
    m.extend_from_slice(&::hex::decode(&sha512.value).expect("hex"));
    k.pq.public_key()
        .verify(&SignedMessage::Bytes(m), &set.signatures[1])
        .expect("ml-dsa");
    // The detached digest of a reformatted file is the same.
    if let Some(v) = srec_cat_reformat(&orig, &["-output-block-size=3"]) {
        let (plan2, _) = k.sign(Format::Ihex, &v, &req, vec![]);
        assert_eq!(plan2.digest(), plan.digest());
    }
}

#[test]
fn judge_independent_python_verifier() {
    let Some(py) = tool("python3") else {
        return;
    };
    let verifier = common::repo_root().join("tests/verifiers/hex_verify.py");
    let k = keys();
    let dir = common::tempdir();
    let ec = write(
        dir.path(),
        "ec.pem",
        k.classical.public_key().spki_pem().as_bytes(),
    );
    let pq = write(
        dir.path(),
        "pq.pem",
        k.pq.public_key().spki_pem().as_bytes(),
    );
    let verify = |name: &str, data: &[u8], extra: &[&str]| {
        let f = write(dir.path(), name, data);
        run(Command::new(&py)
            .arg(&verifier)
            .arg(&f)
            .args(["--ecdsa-p256", &ec, "--mldsa65", &pq])
            .args(extra))
    };
    for f in FIXTURES {
        let orig = common::fixture(f);
        let signed = k.embed(Format::Ihex, &orig, &k.request(Mode::Embedded), vec![]);
        let r = verify("signed.hex", &signed, &["--product", "test-product"]);
        assert!(r.ok && r.stdout.starts_with("OK"), "{f}: {}", r.text());
        // Tampered memory (checksum fixed): digest mismatch.
        let r = verify("tampered.hex", &tamper_first_data_byte(&signed), &[]);
        assert!(
            !r.ok && r.stderr.contains("digest does not match"),
            "{}",
            r.text()
        );
        // Unsigned original: no block.
        let r = verify("orig.hex", &orig, &[]);
        assert!(
            !r.ok && r.stderr.contains("no fwseal signature block"),
            "{}",
            r.text()
        );
        // Wrong product.
        let r = verify("signed.hex", &signed, &["--product", "other"]);
        assert!(!r.ok, "{}", r.text());
    }
    // A flipped bit inside the ML-DSA signature: the digests still match, the signature fails.
    let orig = common::fixture("hex/multi.hex");
    let signed = k.embed(Format::Ihex, &orig, &k.request(Mode::Embedded), vec![]);
    let text = String::from_utf8(signed).expect("ascii");
    let lines: Vec<&str> = text.lines().collect();
    let target = lines.len() - 40; // deep inside the ML-DSA-65 signature bytes
    let mut b = ::hex::decode(&lines[target][1..]).expect("hex");
    b[6] ^= 0x80;
    let n = b.len();
    b[n - 1] = b[..n - 1]
        .iter()
        .fold(0u8, |a, &x| a.wrapping_add(x))
        .wrapping_neg();
    let mut bad: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    bad[target] = format!(":{}", ::hex::encode_upper(&b));
    let bad = bad.join("\n") + "\n";
    let r = verify("badsig.hex", bad.as_bytes(), &[]);
    assert!(
        !r.ok && r.stderr.contains("does not verify"),
        "{}",
        r.text()
    );
    assert!(extract(Format::Ihex, bad.as_bytes()).is_ok()); // digests fine ...
    let found = extract(Format::Ihex, bad.as_bytes()).expect("extract");
    let pq_sig = found
        .signatures
        .iter()
        .find(|s| s.alg == SigAlg::MlDsa65)
        .expect("pq");
    assert!(k
        .pq
        .public_key()
        .verify_bytes(&pq_sig.message, &pq_sig.bytes)
        .is_err()); // ... but the signature is not.
}

#[test]
fn signature_address_option() {
    let k = keys();
    let orig = common::fixture("hex/multi.hex");
    let mut req = k.request(Mode::Embedded);
    req.options.hex_signature_address = Some(0x0810_0000);
    let signed = k.embed(Format::Ihex, &orig, &req, vec![]);
    assert_eq!(block_of(&signed).0, 0x0810_0000);
    assert_eq!(k.verify_extracted(Format::Ihex, &signed), 2);
    // Inside the image (even in a gap) is refused with a clear message.
    for bad in [0x0800_0010u32, 0x0800_8000, 0x0802_002f] {
        req.options.hex_signature_address = Some(bad);
        match prepare(Format::Ihex, &orig, &req) {
            Err(FormatError::Misuse(m)) => assert!(m.contains("overlaps the image"), "{m}"),
            Err(e) => panic!("{bad:#x}: {e}"),
            Ok(_) => panic!("{bad:#x} accepted"),
        }
    }
    // Too close to 4 GiB for the block.
    req.options.hex_signature_address = Some(0xffff_ff00);
    let (plan, set) = k.sign(Format::Ihex, &orig, &req, vec![]);
    assert!(matches!(plan.embed(&set), Err(FormatError::Misuse(_))));
}

#[test]
fn fill_byte_is_configurable() {
    let k = keys();
    let orig = common::fixture("hex/gcc.hex"); // has gaps
    let mut req = k.request(Mode::Embedded);
    req.options.hex_fill = 0x00;
    let signed = k.embed(Format::Ihex, &orig, &req, vec![]);
    // The fill byte is recorded (signed) in the block, so extraction needs no configuration,
    // and a caller's fallback cannot override it.
    let ex = extract(Format::Ihex, &signed).expect("extract uses the recorded fill");
    assert_eq!(ex.signatures.len(), 2);
    assert_ne!(ex.digest.1, digest(&orig));
    let ex2 = hex::extract_with_fill(&signed, 0xFF).expect("recorded fill wins");
    assert_eq!(ex2.digest, ex.digest);
}

#[test]
fn huge_gaps_are_hashed_without_materialising_and_span_is_limited() {
    // Two bytes 16 MiB apart.
    let f = ":0100000011EE\n:020000040100F9\n:0100000022DD\n:00000001FF\n";
    let mut flat = vec![0x11u8];
    flat.resize(0x0100_0000, 0xff);
    flat.push(0x22);
    assert_eq!(digest(f.as_bytes()), DigestAlg::Sha256.hash(&flat));
    // 512 MiB apart: over the limit, reported on the line of the highest data.
    let f = ":0100000011EE\n:020000042000DA\n:0100000022DD\n:00000001FF\n";
    match prepare(Format::Ihex, f.as_bytes(), &keys().request(Mode::Detached)) {
        Err(FormatError::Malformed {
            at: Location::Line(3),
            what,
            ..
        }) => assert!(what.contains("limit"), "{what}"),
        other => panic!("{:?}", other.err()),
    }
    // Empty image.
    assert!(matches!(
        prepare(
            Format::Ihex,
            b":00000001FF\n",
            &keys().request(Mode::Detached)
        ),
        Err(FormatError::Malformed { .. })
    ));
}

#[test]
fn mutations_never_panic() {
    let k = keys();
    let mut seeds: Vec<Vec<u8>> = FIXTURES.iter().map(|f| common::fixture(f)).collect();
    seeds.push(k.embed(
        Format::Ihex,
        &common::fixture("hex/gcc.hex"),
        &k.request(Mode::Embedded),
        vec![],
    ));
    let req = k.request(Mode::Embedded);
    let alphabet = b"0123456789ABCDEF:\r\nG0F";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut execs = 0;
    for round in 0..4000 {
        let seed = &seeds[round % seeds.len()];
        let mut m = seed.clone();
        for _ in 0..=(next() % 4) {
            let pos = (next() as usize) % m.len().max(1);
            match next() % 4 {
                0 => m[pos] = alphabet[(next() as usize) % alphabet.len()],
                1 => m.truncate(pos),
                2 => m.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                _ => {
                    let end = (pos + (next() as usize % 64)).min(m.len());
                    m.drain(pos..end);
                }
            }
            if m.is_empty() {
                break;
            }
        }
        let _ = describe(Format::Ihex, &m);
        let _ = extract(Format::Ihex, &m);
        let _ = prepare(Format::Ihex, &m, &req);
        execs += 1;
    }
    assert_eq!(execs, 4000);
}

/// The worked example of `formats/hex.md`: digests, protected area and block placement.
#[test]
fn worked_example_matches_the_spec() {
    let file =
        ":020000040800F2\n:04000000DEADBEEFC4\n:02000800AA55F7\n:0400000508000000EF\n:00000001FF\n";
    let k = keys();
    let mut req = k.request(Mode::Embedded);
    req.options.product = "demo".into();
    let signed = k.embed(Format::Ihex, file.as_bytes(), &req, vec![]);
    let text = String::from_utf8(signed.clone()).expect("ascii");
    if std::env::var_os("FWSEAL_PRINT_EXAMPLE").is_some() {
        println!("{text}");
    }
    assert_eq!(
        ::hex::encode(digest(file.as_bytes())),
        "24fc81b8b2218e9d8f3da32502bfd23ea79626a6dc90556d4fc476b47bbf5494"
    );
    let ex = extract(Format::Ihex, &signed).expect("extract");
    let SignedMessage::Bytes(m) = &ex.signatures[0].message else {
        panic!("block messages are bytes")
    };
    let want = concat!(
        "66777365616c2f736967626c6f636b2f76312f69686578", // "fwseal/sigblock/v1/ihex"
        "00",
        "0100000001000000",
        "03", // FORMAT = 3 (ihex)
        "0200000021000000",
        "01", // DIGEST, SHA-256
        "24fc81b8b2218e9d8f3da32502bfd23ea79626a6dc90556d4fc476b47bbf5494",
        "0200000041000000",
        "03", // DIGEST, SHA-512
        "5c996290b0c7dbe57c34c7ac2ce5aa7a436524204d019dce2385b6290c990f39",
        "573b73fa459b51ed542aeaf3721beaf7622ff0a05736fd3e317d515f2bde0eb4",
        "030000000400000064656d6f", // PRODUCT "demo"
        "0600000010000000",         // IMAGE_RANGE
        "0000000800000000",
        "0a00000000000000", // 0x08000000, 10 bytes
        "0700000001000000",
        "ff", // FILL = 0xFF
    );
    assert_eq!(::hex::encode(m), want);
    assert_eq!(block_of(&signed).0, 0x0800_0010);
    // The original records come first, then ":020000040800F2" and the block records from
    // offset 0x0010, then the EOF record.
    assert!(text.starts_with(&file[..file.len() - 12]));
    assert!(
        text[file.len() - 12..].starts_with(":020000040800F2\n:100010004657534201001000A8000000")
    );
    assert!(text.ends_with(":00000001FF\n"));
}
