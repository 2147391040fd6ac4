//! DFU 1.1 and DfuSe: judges (`dfu-suffix -c`, `dfuse-pack -d`), our own verification,
//! re-signing, streaming, malformed fixtures and a mutation sweep.

mod common;

use common::{fixture, run, tool, Keys};
use fwseal_crypto::{DigestAlg, Signer};
use fwseal_formats::dfu::{self, DfuSeFile, Suffix};
use fwseal_formats::{
    assemble, detect, extract, prepare, prepare_stream, Format, FormatError, Location, Mode,
    SigAlg, SignedMessage,
};
use std::path::Path;
use std::process::Command;

const SUFFIX: usize = 16;

/// `dfu-suffix -c`: exit 0 and the output confirms a suffix. Returns false if skipped.
fn judge_suffix(data: &[u8], dir: &Path, name: &str) -> bool {
    let Some(t) = tool("dfu-suffix") else {
        return false;
    };
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    let r = run(Command::new(t).arg("-c").arg(&p));
    assert!(r.ok, "dfu-suffix -c failed:\n{}", r.text());
    assert!(
        r.text().contains("contains a DFU suffix"),
        "dfu-suffix output:\n{}",
        r.text()
    );
    true
}

/// `dfuse-pack -d`: no "ERROR" in the output (it exits 0 on errors). Returns the output.
fn judge_dfuse(data: &[u8], dir: &Path, name: &str) -> Option<String> {
    let t = tool("dfuse-pack")?;
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    let r = run(Command::new(t).arg("-d").arg(&p).current_dir(dir));
    let text = r.text();
    assert!(r.ok, "dfuse-pack -d failed:\n{text}");
    assert!(
        !text.contains("ERROR"),
        "dfuse-pack reports an error:\n{text}"
    );
    assert!(!text.contains("Traceback"), "dfuse-pack crashed:\n{text}");
    Some(text)
}

fn suffix_of(data: &[u8]) -> Suffix {
    Suffix::parse(&data[data.len() - SUFFIX..], 0).expect("suffix")
}

#[test]
fn fixtures_are_detected_as_dfu_and_raw_is_not() {
    for f in ["dfu/dfu11.dfu", "dfu/dfuse.dfu"] {
        assert_eq!(
            detect(&fixture(f), None).expect("detect"),
            Format::Dfu,
            "{f}"
        );
    }
    let raw: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 256) as u8).collect();
    assert_eq!(detect(&raw, None).expect("detect"), Format::Raw);
    // The payload of the DFU 1.1 fixture alone is raw.
    let d = fixture("dfu/dfu11.dfu");
    assert_eq!(
        detect(&d[..d.len() - SUFFIX], None).expect("detect"),
        Format::Raw
    );
}

#[test]
fn dfu11_embedded_judged_verified_and_resigned() {
    let keys = Keys::default_hybrid();
    let input = fixture("dfu/dfu11.dfu");
    let payload = &input[..input.len() - SUFFIX];
    let req = keys.request(Mode::Embedded);
    let (plan, set) = keys.sign(Format::Dfu, &input, &req, vec![]);
    assert_eq!(
        plan.digest(),
        (DigestAlg::Sha256, DigestAlg::Sha256.hash(payload))
    );
    let parts = plan.embed(&set).expect("embed");
    // The payload is copied from the input, not re-read into the plan.
    assert_eq!(
        parts[0],
        fwseal_formats::Part::Input {
            start: 0,
            len: payload.len() as u64
        }
    );
    let signed = assemble(&input, &parts).expect("assemble");
    assert_eq!(&signed[..payload.len()], payload);
    let (s_in, s_out) = (suffix_of(&input), suffix_of(&signed));
    assert_eq!(
        (
            s_in.id_vendor,
            s_in.id_product,
            s_in.bcd_device,
            s_in.bcd_dfu
        ),
        (
            s_out.id_vendor,
            s_out.id_product,
            s_out.bcd_device,
            s_out.bcd_dfu
        )
    );
    assert_eq!(s_out.crc, dfu::suffix_crc(&signed[..signed.len() - 4]));

    let dir = common::tempdir();
    judge_suffix(&signed, dir.path(), "signed.dfu");
    assert_eq!(keys.verify_extracted(Format::Dfu, &signed), 2);
    let ex = extract(Format::Dfu, &signed).expect("extract");
    assert_eq!(ex.product.as_deref(), Some("test-product"));
    assert!(dfu::describe(&signed)
        .expect("describe")
        .contains("fwseal signature block"));

    // Re-signing replaces the block: same digest, same length, payload intact.
    let (plan2, set2) = keys.sign(Format::Dfu, &signed, &req, vec![]);
    assert_eq!(plan2.digest(), plan.digest());
    let resigned = assemble(&signed, &plan2.embed(&set2).expect("embed")).expect("assemble");
    assert_eq!(resigned.len(), signed.len());
    assert_eq!(&resigned[..payload.len()], payload);
    judge_suffix(&resigned, dir.path(), "resigned.dfu");
    assert_eq!(keys.verify_extracted(Format::Dfu, &resigned), 2);

    // Tampering: a payload byte changed (CRC now wrong) is refused; with the CRC fixed up
    // the digest check refuses it.
    let mut bad = signed.clone();
    bad[3] ^= 0x20;
    let e = extract(Format::Dfu, &bad).expect_err("bad crc");
    assert!(e.to_string().contains("CRC"), "{e}");
    let n = bad.len();
    let crc = dfu::suffix_crc(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let e = extract(Format::Dfu, &bad).expect_err("digest mismatch");
    assert!(e.to_string().contains("digest does not match"), "{e}");
    // A flipped signature byte fails verification.
    let mut ex = extract(Format::Dfu, &signed).expect("extract");
    for s in &mut ex.signatures {
        let i = s.bytes.len() / 2;
        s.bytes[i] ^= 1;
        let k: &dyn Signer = if s.alg == SigAlg::MlDsa65 {
            &keys.pq
        } else {
            &keys.classical
        };
        assert!(k.public_key().verify_bytes(&s.message, &s.bytes).is_err());
    }
}

#[test]
fn dfu11_detached_classical_is_plain_sha256_over_payload() {
    let keys = Keys::default_hybrid();
    let input = fixture("dfu/dfu11.dfu");
    let payload = &input[..input.len() - SUFFIX];
    let req = keys.request(Mode::Detached);
    let (plan, set) = keys.sign(Format::Dfu, &input, &req, vec![]);
    // Classical half: plain ECDSA-SHA256 over the payload bytes (openssl dgst can check it).
    keys.classical
        .public_key()
        .verify(&SignedMessage::Bytes(payload.to_vec()), &set.signatures[0])
        .expect("ECDSA over the payload");
    let pq_msg = plan.pq_message(SigAlg::MlDsa65).expect("pq message");
    keys.pq
        .public_key()
        .verify(&pq_msg, &set.signatures[1])
        .expect("ML-DSA");
    let doc = plan.detached(&set).expect("doc");
    assert_eq!(doc.format, Format::Dfu);
    assert_eq!(doc.digest.value, hex(&DigestAlg::Sha256.hash(payload)));
    let dir = common::tempdir();
    // Stock check of the classical half, as formats/dfu.md describes it.
    if let Some(openssl) = tool("openssl") {
        let p = dir.path();
        std::fs::write(p.join("payload.bin"), payload).expect("write");
        std::fs::write(p.join("sig.der"), &doc.signatures[0].bytes).expect("write");
        std::fs::write(p.join("pub.pem"), keys.classical.public_key().spki_pem()).expect("write");
        let r = run(Command::new(&openssl)
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "payload.bin",
            ])
            .current_dir(p));
        assert!(r.ok && r.stdout.contains("Verified OK"), "{}", r.text());
        std::fs::write(p.join("payload.bin"), &input).expect("write");
        let r = run(Command::new(&openssl)
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "payload.bin",
            ])
            .current_dir(p));
        assert!(!r.ok, "whole file (with suffix) must not verify");
    }
    // The input is untouched and still passes the judge; it carries no embedded signature.
    judge_suffix(&input, dir.path(), "in.dfu");
    assert!(matches!(
        extract(Format::Dfu, &input),
        Err(FormatError::NotSigned(Format::Dfu))
    ));
    // Tampered payload → different digest → signature fails.
    let mut bad = input.clone();
    bad[0] ^= 1;
    let n = bad.len();
    let crc = dfu::suffix_crc(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let plan_bad = prepare(Format::Dfu, &bad, &req).expect("prepare");
    let m = plan_bad
        .classical_message(SigAlg::EcdsaP256Sha256, None)
        .expect("m");
    assert!(keys
        .classical
        .public_key()
        .verify(&m, &set.signatures[0])
        .is_err());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn dfuse_embedded_judged_verified_and_resigned() {
    let keys = Keys::default_hybrid();
    let input = fixture("dfu/dfuse.dfu");
    let orig = DfuSeFile::parse(&input).expect("parse fixture");
    assert_eq!(orig.targets.len(), 2);
    let req = keys.request(Mode::Embedded);
    let signed = keys.embed(Format::Dfu, &input, &req, vec![]);
    let dir = common::tempdir();
    judge_suffix(&signed, dir.path(), "signed.dfu");
    if let Some(out) = judge_dfuse(&signed, dir.path(), "signed.dfu") {
        // Target 1 (the last) now has its original element plus the signature element at the
        // next 16-byte-aligned address after 0x20000000+24.
        assert!(out.contains("targets: 2"), "{out}");
        assert!(out.contains("address: 0x20000020"), "{out}");
        // The element images dfuse-pack dumps are byte-identical to the originals'.
        let orig_dir = common::tempdir();
        judge_dfuse(&input, orig_dir.path(), "in.dfu");
        for (t, e) in [(0, 0), (0, 1), (1, 0)] {
            let a = std::fs::read(
                orig_dir
                    .path()
                    .join(format!("in.dfu.target{t}.image{e}.bin")),
            );
            let b = std::fs::read(
                dir.path()
                    .join(format!("signed.dfu.target{t}.image{e}.bin")),
            );
            assert_eq!(
                a.expect("orig image"),
                b.expect("signed image"),
                "t{t} e{e}"
            );
        }
    }
    let f = DfuSeFile::parse(&signed).expect("parse signed");
    assert_eq!(f.image_size as usize, signed.len());
    assert_eq!(f.targets[1].elements.len(), 2);
    let sig = f.signature_element().expect("signature element");
    assert_eq!(sig.address, 0x2000_0020);
    assert_eq!(f.suffix.id_vendor, 0x0483);
    assert_eq!(f.suffix.id_product, 0xdf11);
    assert_eq!(keys.verify_extracted(Format::Dfu, &signed), 2);
    assert!(dfu::describe(&signed)
        .expect("describe")
        .contains("fwseal signature block"));

    // Re-sign: the signature element is replaced, not stacked.
    let resigned = keys.embed(Format::Dfu, &signed, &req, vec![]);
    assert_eq!(resigned.len(), signed.len());
    let f2 = DfuSeFile::parse(&resigned).expect("parse");
    assert_eq!(f2.targets[1].elements.len(), 2);
    judge_dfuse(&resigned, dir.path(), "resigned.dfu");
    assert_eq!(keys.verify_extracted(Format::Dfu, &resigned), 2);

    // Tamper with element data (CRC fixed up): digest mismatch.
    let mut bad = signed.clone();
    let at = f.targets[0].elements[1].offset + 8 + 3;
    bad[at] ^= 0x01;
    let n = bad.len();
    let crc = dfu::suffix_crc(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let e = extract(Format::Dfu, &bad).expect_err("tampered");
    assert!(e.to_string().contains("digest does not match"), "{e}");
    // Tamper with an element address: covered by the canonical encoding too.
    let mut bad = signed.clone();
    let at = f.targets[0].elements[0].offset + 1;
    bad[at] ^= 0x01;
    let crc = dfu::suffix_crc(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(extract(Format::Dfu, &bad).is_err());
}

#[test]
fn dfuse_explicit_signature_address_and_overlap() {
    let keys = Keys::default_hybrid();
    let input = fixture("dfu/dfuse.dfu");
    let mut req = keys.request(Mode::Embedded);
    req.options.dfuse_signature_address = Some(0x2000_8000);
    let signed = keys.embed(Format::Dfu, &input, &req, vec![]);
    let f = DfuSeFile::parse(&signed).expect("parse");
    assert_eq!(f.signature_element().expect("sig").address, 0x2000_8000);
    let dir = common::tempdir();
    judge_dfuse(&signed, dir.path(), "a.dfu");
    judge_suffix(&signed, dir.path(), "a.dfu");
    assert_eq!(keys.verify_extracted(Format::Dfu, &signed), 2);
    // Digest does not depend on where the signature element goes.
    let plan_a = prepare(Format::Dfu, &input, &req).expect("a");
    let plan_b = prepare(Format::Dfu, &input, &keys.request(Mode::Embedded)).expect("b");
    assert_eq!(plan_a.digest(), plan_b.digest());
    // An address inside an existing element is refused.
    req.options.dfuse_signature_address = Some(0x2000_0004);
    assert!(matches!(
        prepare(Format::Dfu, &input, &req),
        Err(FormatError::Misuse(_))
    ));
}

#[test]
fn dfuse_detached() {
    let keys = Keys::default_hybrid();
    let input = fixture("dfu/dfuse.dfu");
    let req = keys.request(Mode::Detached);
    let (plan, set) = keys.sign(Format::Dfu, &input, &req, vec![]);
    // The digest is SHA-256 over the documented canonical encoding, rebuilt here by hand.
    let f = DfuSeFile::parse(&input).expect("parse");
    let mut canon = vec![f.targets.len() as u8];
    for t in &f.targets {
        canon.push(t.alt);
        canon.extend_from_slice(&(t.elements.len() as u32).to_le_bytes());
        for e in &t.elements {
            canon.extend_from_slice(&e.address.to_le_bytes());
            canon.extend_from_slice(&e.size.to_le_bytes());
            canon.extend_from_slice(&input[e.offset + 8..e.offset + 8 + e.size as usize]);
        }
    }
    assert_eq!(plan.digest().1, DigestAlg::Sha256.hash(&canon));
    keys.classical
        .public_key()
        .verify(&SignedMessage::Bytes(canon.clone()), &set.signatures[0])
        .expect("ECDSA over the canonical encoding");
    keys.pq
        .public_key()
        .verify(
            &plan.pq_message(SigAlg::MlDsa65).expect("m"),
            &set.signatures[1],
        )
        .expect("ML-DSA");
    let doc = plan.detached(&set).expect("doc");
    assert_eq!(doc.format, Format::Dfu);
    let dir = common::tempdir();
    judge_dfuse(&input, dir.path(), "in.dfu");
    judge_suffix(&input, dir.path(), "in.dfu");
}

/// A DFU 1.1 file with a payload larger than the streaming hold-back, made in memory.
fn big_dfu11(len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let s = Suffix {
        bcd_device: 0x0200,
        id_product: 0xdf11,
        id_vendor: 0x0483,
        bcd_dfu: 0x0100,
        crc: 0,
    };
    d.extend_from_slice(&s.head());
    let crc = dfu::suffix_crc(&d);
    d.extend_from_slice(&crc.to_le_bytes());
    d
}

#[test]
fn streaming_equals_one_shot_and_resign_of_big_file() {
    let keys = Keys::default_hybrid();
    let data = big_dfu11(2 * fwseal_formats::sigblock::MAX_BLOCK_LEN + 12_345);
    let req = keys.request(Mode::Embedded);
    let one = prepare(Format::Dfu, &data, &req).expect("one");
    let mut s = prepare_stream(Format::Dfu, &req, 0).expect("stream");
    for c in data.chunks(100_003) {
        s.update(c).expect("update");
    }
    let two = s.finish().expect("finish");
    assert_eq!(one.digest(), two.digest());
    assert_eq!(
        one.digest().1,
        DigestAlg::Sha256.hash(&data[..data.len() - SUFFIX])
    );
    assert_eq!(
        one.pq_message(SigAlg::MlDsa65).expect("m"),
        two.pq_message(SigAlg::MlDsa65).expect("m")
    );
    let set = fwseal_formats::sign_prepared(
        two.as_ref(),
        Some(&keys.classical as &dyn Signer),
        Some(&keys.pq as &dyn Signer),
        vec![],
    )
    .expect("sign");
    let signed = assemble(&data, &two.embed(&set).expect("embed")).expect("assemble");
    assert_eq!(keys.verify_extracted(Format::Dfu, &signed), 2);
    let dir = common::tempdir();
    judge_suffix(&signed, dir.path(), "big.dfu");
    // Streaming a signed file in tiny chunks recognises and excludes the block.
    let mut s = prepare_stream(Format::Dfu, &req, 0).expect("stream");
    for c in signed.chunks(77_777) {
        s.update(c).expect("update");
    }
    assert_eq!(s.finish().expect("finish").digest(), one.digest());
}

#[test]
fn byte_at_a_time_streaming_of_both_layouts() {
    let req = Keys::default_hybrid().request(Mode::Detached);
    for f in ["dfu/dfu11.dfu", "dfu/dfuse.dfu"] {
        let data = fixture(f);
        let mut s = prepare_stream(Format::Dfu, &req, 0).expect("stream");
        for b in data.chunks(1) {
            s.update(b).expect("update");
        }
        let a = s.finish().expect("finish");
        let b = prepare(Format::Dfu, &data, &req).expect("prepare");
        assert_eq!(a.digest(), b.digest(), "{f}");
    }
}

fn offset_of(e: &FormatError) -> u64 {
    match e.location() {
        Some(Location::Offset(o)) => o,
        other => panic!("{e}: no byte offset ({other:?})"),
    }
}

#[test]
fn malformed_fixtures_give_typed_errors_with_offsets() {
    let req = Keys::default_hybrid().request(Mode::Embedded);
    // (fixture, expected offset, text the message must contain)
    let cases = [
        ("malformed-dfu11-bad-crc.dfu", 312, "CRC"),
        ("malformed-dfuse-truncated.dfu", 192, "UFD"),
        ("malformed-dfuse-lying-image-size.dfu", 6, "DFUImageSize"),
        (
            "malformed-dfuse-lying-element-size.dfu",
            289,
            "element 0 size",
        ),
        (
            "malformed-dfuse-lying-target-size.dfu",
            277,
            "target 0 size",
        ),
        ("malformed-dfuse-bad-prefix.dfu", 0, "DfuSe"),
    ];
    for (name, off, text) in cases {
        let data = fixture(&format!("dfu/{name}"));
        for (what, r) in [
            ("prepare", prepare(Format::Dfu, &data, &req).map(|_| ())),
            ("extract", extract(Format::Dfu, &data).map(|_| ())),
            ("describe", dfu::describe(&data).map(|_| ())),
        ] {
            let e = r.expect_err(name);
            assert!(
                matches!(
                    e,
                    FormatError::Malformed {
                        format: Format::Dfu,
                        ..
                    }
                ),
                "{name} {what}: {e}"
            );
            assert_eq!(offset_of(&e), off, "{name} {what}: {e}");
            assert!(e.to_string().contains(text), "{name} {what}: {e}");
        }
    }
}

#[test]
fn mutation_sweep_never_panics() {
    let keys = Keys::default_hybrid();
    let mut seeds = vec![fixture("dfu/dfu11.dfu"), fixture("dfu/dfuse.dfu")];
    let req = keys.request(Mode::Embedded);
    seeds.push(keys.embed(Format::Dfu, &seeds[0].clone(), &req, vec![]));
    seeds.push(keys.embed(Format::Dfu, &seeds[1].clone(), &req, vec![]));
    let det = keys.request(Mode::Detached);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut runs = 0;
    for i in 0..3000 {
        let mut d = seeds[i % seeds.len()].clone();
        let n = 1 + (next() % 4) as usize;
        for _ in 0..n {
            let len = d.len().max(1);
            match next() % 5 {
                0 => {
                    let p = (next() as usize) % len;
                    if let Some(b) = d.get_mut(p) {
                        *b ^= 1 << (next() % 8);
                    }
                }
                1 => d.truncate((next() as usize) % len),
                2 => {
                    // Lie in a length field of the DfuSe structure.
                    let p = [6usize, 277, 281, 289, 285 + 8 + 300 + 4][(next() % 5) as usize];
                    if d.len() >= p + 4 {
                        d[p..p + 4].copy_from_slice(&(next() as u32).to_le_bytes());
                    }
                }
                3 => d.extend_from_slice(&next().to_le_bytes()),
                _ => {
                    let p = (next() as usize) % len;
                    if let Some(b) = d.get_mut(p) {
                        *b = next() as u8;
                    }
                }
            }
        }
        // Fix the CRC half the time so the structural parser is reached.
        if next() % 2 == 0 && d.len() >= 4 {
            let n = d.len();
            let crc = dfu::suffix_crc(&d[..n - 4]);
            d[n - 4..].copy_from_slice(&crc.to_le_bytes());
        }
        let _ = dfu::describe(&d);
        let _ = extract(Format::Dfu, &d);
        let _ = prepare(Format::Dfu, &d, &det);
        let _ = dfu::looks_like(&d);
        runs += 1;
    }
    assert_eq!(runs, 3000);
}

/// The digests quoted as worked examples in `formats/dfu.md` (computed independently with
/// Python's hashlib/zlib over the fixtures).
#[test]
fn spec_worked_example_values() {
    let req = Keys::default_hybrid().request(Mode::Detached);
    let d = fixture("dfu/dfu11.dfu");
    assert_eq!(
        hex(&prepare(Format::Dfu, &d, &req).expect("dfu11").digest().1),
        "a0b051f34cb8792c728d57bb5fd9aa152e47bbdb214906b44f88aa9629cc353b"
    );
    assert_eq!(suffix_of(&d).crc, 0xe8e7_b3e5);
    assert_eq!(dfu::suffix_crc(&d[..d.len() - 4]), 0xe8e7_b3e5);
    let s = fixture("dfu/dfuse.dfu");
    assert_eq!(
        hex(&prepare(Format::Dfu, &s, &req).expect("dfuse").digest().1),
        "3b2d131076198212c0cea75c7607f187346b1faa53fe154bad464d867af9dbeb"
    );
    let f = DfuSeFile::parse(&s).expect("parse");
    let mut canon = Vec::new();
    assert_eq!(f.canonical(&s, &mut |b| canon.extend_from_slice(b)), 423);
    assert_eq!(canon.len(), 423);
    assert_eq!(hex(&canon[..14]), "020002000000000000082c010000");
}

/// The embedded-mode message quoted in `formats/dfu.md` (computed independently in Python).
#[test]
fn spec_worked_example_embedded_message() {
    let req = Keys::default_hybrid().request(Mode::Embedded);
    let plan = prepare(Format::Dfu, &fixture("dfu/dfu11.dfu"), &req).expect("plan");
    let want = concat!(
        "66777365616c2f736967626c6f636b2f76312f64667500010000000100000004",
        "020000002100000001a0b051f34cb8792c728d57bb5fd9aa152e47bbdb214906",
        "b44f88aa9629cc353b02000000410000000391f5e1985966ede2ec97add6f2f7",
        "eec56891a3c7497b8ba2870e2060c10a014e1fc533c53196d7dc0b8fceb021c9",
        "676006f15554c009c87ea2e415930f9ed1ed030000000c000000746573742d70",
        "726f64756374060000001000000000000000000000002c01000000000000",
    );
    for alg in [SigAlg::MlDsa65, SigAlg::EcdsaP256Sha256] {
        let m = if alg == SigAlg::MlDsa65 {
            plan.pq_message(alg)
        } else {
            plan.classical_message(alg, None)
        };
        match m.expect("message") {
            SignedMessage::Bytes(b) => assert_eq!(hex(&b), want, "{alg}"),
            other => panic!("{alg}: unexpected {other:?}"),
        }
    }
}
