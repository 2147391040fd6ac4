//! MCUboot `.img`: fwseal output judged by imgtool (`verify`, `dumpinfo`), our own verifier,
//! imgtool-made inputs (unsigned and signed), malformed fixtures, re-signing and streaming.
mod common;

use common::{fixture, run, tempdir, tool, Keys};
use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::mcuboot::{self, PublicKeyFormat, Slot, TLV_FWSEAL_PQ_SIG};
use fwseal_formats::{
    assemble, detect, extract, prepare, prepare_stream, sign_prepared, Format, FormatError,
    KeyHint, Location, Mode, Request, SignOptions,
};
use std::path::Path;
use std::process::Command;

const INPUTS: [&str; 5] = [
    "mcuboot/unsigned-h20.img",
    "mcuboot/unsigned-h200.img",
    "mcuboot/unsigned-seccnt.img",
    "mcuboot/signed-ec256-seccnt.img",
    "mcuboot/signed-rsa2048.img",
];

fn write(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    p
}

/// All TLVs of an area as (type, value).
fn tlvs(img: &[u8], protected: bool) -> Vec<(u16, Vec<u8>)> {
    let h = mcuboot::Header::parse(img).expect("header");
    let base = h.body_end() as usize;
    let tail = &img[base..];
    let t = mcuboot::parse_trailer(tail, base as u64, &h).expect("trailer");
    let area = if protected {
        t.protected
    } else {
        t.unprotected
    };
    area.map(|a| {
        a.tlvs
            .iter()
            .map(|x| (x.kind, tail[x.at + 4..x.at + 4 + x.len as usize].to_vec()))
            .collect()
    })
    .unwrap_or_default()
}

fn imgtool_verify(dir: &Path, keys: &Keys, img: &[u8]) {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let pubp = write(
        dir,
        "pub.pem",
        keys.classical.public_key().spki_pem().as_bytes(),
    );
    let ip = write(dir, "out.img", img);
    let r = run(Command::new(&imgtool)
        .arg("verify")
        .arg("-k")
        .arg(&pubp)
        .arg(&ip));
    assert!(r.ok, "imgtool verify failed: {}", r.text());
    assert!(
        r.text().contains("Image was correctly validated"),
        "{}",
        r.text()
    );
    let r = run(Command::new(&imgtool).arg("dumpinfo").arg(&ip));
    assert!(r.ok, "imgtool dumpinfo failed: {}", r.text());
    assert!(
        r.text().contains("0x46a0"),
        "dumpinfo shows the PQ TLV: {}",
        r.text()
    );
}

fn hybrid_embedded(keys: &Keys) {
    let dir = tempdir();
    for name in INPUTS {
        let input = fixture(name);
        let req = keys.request(Mode::Embedded);
        let out = keys.embed(Format::Mcuboot, &input, &req, vec![]);
        assert_eq!(detect(&out, None).expect("detect"), Format::Mcuboot);
        // Body unchanged, header only changes ih_protect_tlv_size.
        let h_in = mcuboot::Header::parse(&input).expect("in");
        let h_out = mcuboot::Header::parse(&out).expect("out");
        assert_eq!(
            (h_in.hdr_size, h_in.img_size),
            (h_out.hdr_size, h_out.img_size)
        );
        let b = h_in.hdr_size as usize..h_in.body_end() as usize;
        assert_eq!(input[b.clone()], out[b]);
        // Pre-existing protected TLVs kept, the PQ TLV last.
        let prot_in = tlvs(&input, true);
        let prot_out = tlvs(&out, true);
        assert_eq!(prot_out.len(), prot_in.len() + 1, "{name}");
        assert_eq!(prot_out[..prot_in.len()], prot_in[..]);
        assert_eq!(prot_out.last().map(|t| t.0), Some(TLV_FWSEAL_PQ_SIG));
        let unprot: Vec<u16> = tlvs(&out, false).iter().map(|t| t.0).collect();
        assert_eq!(unprot[..2], [0x10, 0x01], "{name}");
        assert_eq!(unprot.len(), 3);
        assert_eq!(keys.verify_extracted(Format::Mcuboot, &out), 2, "{name}");
        let ex = extract(Format::Mcuboot, &out).expect("extract");
        match ex.signatures[0].key_hint.clone().expect("keyhash") {
            KeyHint::McubootKeyHash { alg, value } => {
                assert_eq!((alg, value.len()), (fwseal_crypto::DigestAlg::Sha256, 32))
            }
            other => panic!("{other:?}"),
        }
        assert!(ex.signatures[0].names_key(keys.classical.public_key().spki_der()));
        if name.contains("seccnt") {
            assert!(ex.security_counter.is_some(), "{name}");
        }
        imgtool_verify(dir.path(), keys, &out);

        // Re-signing replaces: same length, one PQ TLV, verifies.
        let again = keys.embed(Format::Mcuboot, &out, &req, vec![]);
        assert_eq!(again.len(), out.len(), "{name}: re-sign must not stack");
        assert_eq!(tlvs(&again, true).len(), prot_out.len());
        assert_eq!(keys.verify_extracted(Format::Mcuboot, &again), 2);
        imgtool_verify(dir.path(), keys, &again);

        // Tampering with one body byte is caught (hash TLV mismatch at its offset).
        let mut bad = out.clone();
        bad[h_in.hdr_size as usize + 5] ^= 0x40;
        match extract(Format::Mcuboot, &bad) {
            Err(FormatError::Malformed {
                at: Location::Offset(o),
                ..
            }) => {
                assert!(o >= h_out.body_end())
            }
            other => panic!("tampered image: {other:?}"),
        }
        if let Some(imgtool) = tool("imgtool") {
            let pubp = write(
                dir.path(),
                "pub.pem",
                keys.classical.public_key().spki_pem().as_bytes(),
            );
            let ip = write(dir.path(), "bad.img", &bad);
            let r = run(Command::new(&imgtool)
                .arg("verify")
                .arg("-k")
                .arg(&pubp)
                .arg(&ip));
            assert!(
                !r.ok || !r.text().contains("correctly validated"),
                "imgtool accepted tampering"
            );
        }
    }
}

#[test]
fn embedded_ecdsa_p256_ml_dsa_65_judged_by_imgtool() {
    hybrid_embedded(&Keys::default_hybrid());
}

#[test]
fn embedded_rsa3072_pss_ml_dsa_65_judged_by_imgtool() {
    hybrid_embedded(&Keys::new(SigAlg::RsaPssSha256, SigAlg::MlDsa65));
}

#[test]
fn embedded_ecdsa_p384_judged_by_imgtool() {
    let keys = Keys::new(SigAlg::EcdsaP384Sha384, SigAlg::MlDsa87);
    let out = keys.embed(
        Format::Mcuboot,
        &fixture(INPUTS[0]),
        &keys.request(Mode::Embedded),
        vec![],
    );
    assert_eq!(tlvs(&out, false)[0].0, 0x11, "SHA384 TLV");
    assert_eq!(keys.verify_extracted(Format::Mcuboot, &out), 2);
    imgtool_verify(tempdir().path(), &keys, &out);
}

/// The image hash TLV fwseal writes equals the one imgtool writes when signing the same input
/// with the same key (classical-only request, so the protected area is untouched), and so does
/// the key TLV: KEYHASH under the image hash (SHA-384 for P-384) with imgtool's default
/// `--public-key-format hash`, the PUBKEY TLV (`0x02`) with `--public-key-format full`
/// (`mcuboot_public_key = full`). `fwseal`'s extractor names the signing key by either.
#[test]
fn hash_and_key_tlvs_equal_imgtool_sign() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let dir = tempdir();
    for alg in [
        SigAlg::EcdsaP256Sha256,
        SigAlg::EcdsaP384Sha384,
        SigAlg::RsaPssSha256,
    ] {
        let key = SoftKey::generate(alg).expect("key");
        let other = SoftKey::generate(alg).expect("key");
        let keyp = write(
            dir.path(),
            "key.pem",
            key.to_pkcs8_pem().expect("pem").as_bytes(),
        );
        let spki = key.public_key().spki_der().to_vec();
        let hash_tlv = if alg == SigAlg::EcdsaP384Sha384 {
            0x11
        } else {
            0x10
        };
        for (key_format, (name, extra)) in [
            PublicKeyFormat::Hash,
            PublicKeyFormat::Hash,
            PublicKeyFormat::Full,
            PublicKeyFormat::Full,
        ]
        .into_iter()
        .zip([
            (
                "unsigned-h20.img",
                vec![
                    "--header-size",
                    "0x20",
                    "--pad-header",
                    "--version",
                    "1.2.3+4",
                ],
            ),
            (
                "unsigned-seccnt.img",
                vec![
                    "--header-size",
                    "0x20",
                    "--pad-header",
                    "--version",
                    "1.0.0+7",
                    "--security-counter",
                    "7",
                ],
            ),
            (
                "unsigned-h20.img",
                vec![
                    "--header-size",
                    "0x20",
                    "--pad-header",
                    "--version",
                    "1.2.3+4",
                ],
            ),
            (
                "unsigned-seccnt.img",
                vec![
                    "--header-size",
                    "0x20",
                    "--pad-header",
                    "--version",
                    "1.0.0+7",
                    "--security-counter",
                    "7",
                ],
            ),
        ]) {
            let pkf = match key_format {
                PublicKeyFormat::Hash => "hash",
                PublicKeyFormat::Full => "full",
            };
            let signed = dir.path().join("imgtool.img");
            let r = run(Command::new(&imgtool)
                .arg("sign")
                .arg("--key")
                .arg(&keyp)
                .args(["--align", "4", "--slot-size", "0x10000"])
                .args(["--public-key-format", pkf])
                .args(&extra)
                .arg(common::repo_root().join("fixtures/mcuboot/body.bin"))
                .arg(&signed));
            assert!(r.ok, "imgtool sign: {}", r.text());
            let theirs = std::fs::read(&signed).expect("read");
            let input = fixture(&format!("mcuboot/{name}"));
            let req = Request {
                classical: Some(alg),
                pq: None,
                mode: Mode::Embedded,
                options: SignOptions {
                    mcuboot_public_key: key_format,
                    ..Default::default()
                },
            };
            let plan = prepare(Format::Mcuboot, &input, &req).expect("prepare");
            let set = sign_prepared(plan.as_ref(), Some(&key as &dyn Signer), None, vec![])
                .expect("sign");
            let ours = assemble(&input, &plan.embed(&set).expect("embed")).expect("assemble");
            let (t, o) = (tlvs(&theirs, false), tlvs(&ours, false));
            let types: Vec<u16> = o.iter().map(|x| x.0).collect();
            let key_tlv = match key_format {
                PublicKeyFormat::Hash => 0x01,
                PublicKeyFormat::Full => 0x02,
            };
            assert_eq!(
                types,
                t.iter().map(|x| x.0).collect::<Vec<_>>(),
                "{alg} {pkf}: TLV layout differs from imgtool's"
            );
            assert_eq!(types[..2], [hash_tlv, key_tlv], "{alg} {pkf}");
            assert_eq!(
                t[0], o[0],
                "{alg} {name}: image hash TLV differs from imgtool's"
            );
            assert_eq!(
                t[1], o[1],
                "{alg} {name} {pkf}: key TLV differs from imgtool's"
            );
            assert_eq!(t[2].0, o[2].0, "signature TLV type");
            assert_eq!(plan.digest().1, t[0].1, "digest() is the image hash");
            // The header/body/protected bytes are identical to imgtool's output.
            let hashed = mcuboot::Header::parse(&ours).expect("h").body_end() as usize
                + tlvs(&ours, true)
                    .iter()
                    .map(|x| 4 + x.1.len())
                    .sum::<usize>()
                + if tlvs(&ours, true).is_empty() { 0 } else { 4 };
            assert_eq!(theirs[..hashed], ours[..hashed]);
            let pubp = write(
                dir.path(),
                "pub.pem",
                key.public_key().spki_pem().as_bytes(),
            );
            let ip = write(dir.path(), "ours.img", &ours);
            let r = run(Command::new(&imgtool)
                .arg("verify")
                .arg("-k")
                .arg(&pubp)
                .arg(&ip));
            assert!(r.ok, "{}", r.text());
            let ex = extract(Format::Mcuboot, &ours).expect("extract");
            assert_eq!(ex.signatures.len(), 1);
            key.public_key()
                .verify_bytes(&ex.signatures[0].message, &ex.signatures[0].bytes)
                .expect("verifies");
            // The key hint names this key, and only this key, in both images.
            for img in [&ours, &theirs] {
                let ex = extract(Format::Mcuboot, img).expect("extract");
                let s = &ex.signatures[0];
                match (&s.key_hint, key_format) {
                    (Some(KeyHint::McubootKeyHash { alg: h, .. }), PublicKeyFormat::Hash) => {
                        assert_eq!(*h, mcuboot::image_hash_alg(Some(alg)), "{alg}")
                    }
                    (Some(KeyHint::McubootPubKey(k)), PublicKeyFormat::Full) => {
                        assert_eq!(*k, mcuboot::public_key_bytes(alg, &spki).expect("enc"))
                    }
                    (h, _) => panic!("{alg} {pkf}: key hint {h:?}"),
                }
                assert!(s.names_key(&spki), "{alg} {pkf}: the signing key");
                assert!(
                    !s.names_key(other.public_key().spki_der()),
                    "{alg} {pkf}: another key"
                );
            }
        }
    }
}

/// imgtool's image trailer (`Image size + trailer exceeds requested size`): for each set of
/// trailer options, `imgtool create -S` accepts exactly `image + Slot::trailer_size()` bytes and
/// refuses one byte less.
#[test]
fn slot_trailer_size_is_imgtools() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let dir = tempdir();
    let body = common::repo_root().join("fixtures/mcuboot/body.bin");
    let cases = [
        Slot::new(0),
        Slot {
            align: 4,
            ..Slot::new(0)
        },
        Slot {
            align: 8,
            max_sectors: 256,
            ..Slot::new(0)
        },
        Slot {
            align: 32,
            ..Slot::new(0)
        },
        Slot {
            align: 2,
            max_align: Some(16),
            ..Slot::new(0)
        },
        Slot {
            align: 4,
            overwrite_only: true,
            ..Slot::new(0)
        },
        Slot {
            align: 8,
            max_align: Some(32),
            overwrite_only: true,
            ..Slot::new(0)
        },
    ];
    assert_eq!(
        Slot::new(0).trailer_size(),
        432,
        "imgtool's default trailer"
    );
    for c in cases {
        let out = dir.path().join("unsigned.img");
        let create = |size: u64| {
            let mut cmd = Command::new(&imgtool);
            cmd.args(["create", "--header-size", "0x20", "--pad-header"])
                .args(["--version", "1.0.0", "--align", &c.align.to_string()])
                .args(["--max-sectors", &c.max_sectors.to_string()])
                .args(["--slot-size", &size.to_string()]);
            if let Some(m) = c.max_align {
                cmd.args(["--max-align", &m.to_string()]);
            }
            if c.overwrite_only {
                cmd.arg("--overwrite-only");
            }
            run(cmd.arg(&body).arg(&out))
        };
        let r = create(1 << 20);
        assert!(r.ok, "{c:?}: {}", r.text());
        let image = std::fs::metadata(&out).expect("out").len();
        let exact = image + c.trailer_size();
        let r = create(exact);
        assert!(r.ok, "{c:?}: imgtool refuses {exact} bytes: {}", r.text());
        let r = create(exact - 1);
        assert!(
            !r.ok && r.text().contains("exceeds requested size"),
            "{c:?}: imgtool accepts {} bytes: {}",
            exact - 1,
            r.text()
        );
        // fwseal agrees on the unsigned image (detached mode leaves it unchanged).
        let input = std::fs::read(&out).expect("read");
        let keys = Keys::default_hybrid();
        for (size, fits) in [(exact, true), (exact - 1, false)] {
            let slot = Slot {
                size: size as u32,
                ..c
            };
            let req = Request {
                options: SignOptions {
                    mcuboot_slot: Some(slot),
                    ..Default::default()
                },
                ..keys.request(Mode::Detached)
            };
            let r = prepare(Format::Mcuboot, &input, &req);
            assert_eq!(r.is_ok(), fits, "{slot:?}: {:?}", r.err());
        }
    }
}

/// The PQ TLV makes an image that fit its slot unsigned too big signed: refused before
/// signing, with the sizes in the error. The check counts the classical signature at its
/// longest, so the reported size bounds every signing of that input (exact for RSA).
#[test]
fn signed_image_must_fit_the_slot() {
    let input = fixture("mcuboot/unsigned-h200.img");
    let len = input.len() as u64;
    let trailer = Slot::new(0).trailer_size();
    for (classical, pq) in [
        (Some(SigAlg::EcdsaP256Sha256), Some(SigAlg::MlDsa65)),
        (Some(SigAlg::EcdsaP384Sha384), Some(SigAlg::MlDsa87)),
        (Some(SigAlg::RsaPssSha256), Some(SigAlg::MlDsa44)),
        (Some(SigAlg::EcdsaP256Sha256), None),
        (None, Some(SigAlg::SlhDsaSha2_128s)),
    ] {
        let c = SoftKey::generate(classical.unwrap_or(SigAlg::EcdsaP256Sha256)).expect("c");
        let q = SoftKey::generate(pq.unwrap_or(SigAlg::MlDsa44)).expect("q");
        for key_format in [PublicKeyFormat::Hash, PublicKeyFormat::Full] {
            let what = format!("{classical:?} {pq:?} {key_format:?}");
            let req = |slot: Option<u32>, mode| Request {
                classical,
                pq,
                mode,
                options: SignOptions {
                    mcuboot_public_key: key_format,
                    mcuboot_slot: slot.map(Slot::new),
                    ..Default::default()
                },
            };
            let sign = |r: &Request| {
                let plan = prepare(Format::Mcuboot, &input, r)?;
                let set = sign_prepared(
                    plan.as_ref(),
                    classical.map(|_| &c as &dyn Signer),
                    pq.map(|_| &q as &dyn Signer),
                    vec![],
                )?;
                assemble(&input, &plan.embed(&set)?)
            };
            // The unsigned image fits exactly; signed it does not.
            let slot = (len + trailer) as u32;
            let worst = match sign(&req(Some(slot), Mode::Embedded)) {
                Err(FormatError::SlotOverflow {
                    format: Format::Mcuboot,
                    input: i,
                    image,
                    trailer: t,
                    slot: s,
                }) => {
                    assert_eq!((i, t, s), (len, trailer, u64::from(slot)), "{what}");
                    let e = sign(&req(Some(slot), Mode::Embedded))
                        .expect_err("refused")
                        .to_string();
                    for n in [image, trailer, image + trailer, u64::from(slot), len] {
                        assert!(e.contains(&n.to_string()), "{what}: {n} not in {e:?}");
                    }
                    image
                }
                other => panic!("{what}: expected SlotOverflow, got {other:?}"),
            };
            // Detached leaves the image as it is: it fits.
            let r = req(Some(slot), Mode::Detached);
            prepare(Format::Mcuboot, &input, &r).expect("detached fits");
            let r = req(Some(slot - 1), Mode::Detached);
            assert!(matches!(
                prepare(Format::Mcuboot, &input, &r),
                Err(FormatError::SlotOverflow { .. })
            ));
            // The bound holds for real signatures, and is tight.
            let actual = sign(&req(None, Mode::Embedded)).expect("no slot").len() as u64;
            assert!(
                actual <= worst && worst - actual < 8,
                "{what}: {actual} vs {worst}"
            );
            if classical != Some(SigAlg::EcdsaP256Sha256)
                && classical != Some(SigAlg::EcdsaP384Sha384)
            {
                assert_eq!(actual, worst, "{what}: no variable-length signature");
            }
            let out =
                sign(&req(Some((worst + trailer) as u32), Mode::Embedded)).expect("fits exactly");
            assert!(out.len() as u64 + trailer <= worst + trailer);
            assert!(matches!(
                sign(&req(Some((worst + trailer - 1) as u32), Mode::Embedded)),
                Err(FormatError::SlotOverflow { .. })
            ));
        }
    }
}

/// Detached: the image is unchanged; classical = prehashed SHA-256 image hash (what imgtool
/// computes), PQ = the detached message over the same region.
#[test]
fn detached_hybrid() {
    let keys = Keys::default_hybrid();
    for name in INPUTS {
        let input = fixture(name);
        let (plan, set) = keys.sign(
            Format::Mcuboot,
            &input,
            &keys.request(Mode::Detached),
            vec![],
        );
        let h = mcuboot::Header::parse(&input).expect("h");
        let prot: usize = h.protect_tlv_size as usize;
        let region = &input[..h.body_end() as usize + prot];
        let sha = fwseal_crypto::DigestAlg::Sha256.hash(region);
        assert_eq!(plan.digest().1, sha);
        // imgtool-made inputs carry the SHA256 TLV: it is the same hash.
        assert_eq!(tlvs(&input, false)[0].1, sha, "{name}");
        let msg = fwseal_crypto::SignedMessage::Prehashed {
            alg: fwseal_crypto::DigestAlg::Sha256,
            digest: sha,
        };
        keys.classical
            .public_key()
            .verify(&msg, &set.signatures[0])
            .expect("classical");
        let sha512 = fwseal_crypto::DigestAlg::Sha512.hash(region);
        let pq_msg = fwseal_formats::detached::message(
            Format::Mcuboot,
            SigAlg::MlDsa65,
            &fwseal_crypto::Digests(vec![(fwseal_crypto::DigestAlg::Sha512, sha512)]),
        )
        .expect("msg");
        keys.pq
            .public_key()
            .verify(&pq_msg, &set.signatures[1])
            .expect("pq");
        let doc = plan.detached(&set).expect("doc");
        assert_eq!(doc.format, Format::Mcuboot);
        assert!(
            plan.embed(&set).is_err(),
            "embed on a detached plan is misuse"
        );
    }
}

#[test]
fn streaming_equals_one_shot_and_resign_streams() {
    let keys = Keys::default_hybrid();
    let req = keys.request(Mode::Embedded);
    let signed = keys.embed(Format::Mcuboot, &fixture(INPUTS[2]), &req, vec![]);
    for input in [fixture(INPUTS[1]), signed] {
        let one = prepare(Format::Mcuboot, &input, &req).expect("one");
        for chunk in [1usize, 7, 64, 4096] {
            let mut s = prepare_stream(Format::Mcuboot, &req, 0).expect("stream");
            for c in input.chunks(chunk) {
                s.update(c).expect("update");
            }
            let two = s.finish().expect("finish");
            assert_eq!(one.digest(), two.digest());
            assert_eq!(
                one.pq_message(SigAlg::MlDsa65).expect("a"),
                two.pq_message(SigAlg::MlDsa65).expect("b")
            );
        }
    }
}

#[test]
fn pq_only_and_classical_only_resign_of_hybrid() {
    let keys = Keys::default_hybrid();
    let hybrid = keys.embed(
        Format::Mcuboot,
        &fixture(INPUTS[0]),
        &keys.request(Mode::Embedded),
        vec![],
    );
    // Classical-only re-sign keeps the protected area (and the still valid PQ TLV) verbatim.
    let req = Request {
        classical: Some(SigAlg::EcdsaP256Sha256),
        pq: None,
        mode: Mode::Embedded,
        options: Default::default(),
    };
    let plan = prepare(Format::Mcuboot, &hybrid, &req).expect("prepare");
    let set = sign_prepared(
        plan.as_ref(),
        Some(&keys.classical as &dyn Signer),
        None,
        vec![],
    )
    .expect("sign");
    let out = assemble(&hybrid, &plan.embed(&set).expect("embed")).expect("assemble");
    assert_eq!(tlvs(&out, true), tlvs(&hybrid, true));
    assert_eq!(keys.verify_extracted(Format::Mcuboot, &out), 2);
    // A PQ signature of another algorithm cannot be replaced while streaming: clear error.
    let other = Keys::new(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa44);
    let r = prepare(Format::Mcuboot, &hybrid, &other.request(Mode::Embedded));
    assert!(
        matches!(r, Err(FormatError::Unsupported(_))),
        "{:?}",
        r.err()
    );
}

#[test]
fn unsigned_inputs_are_not_signed() {
    for name in ["mcuboot/unsigned-h20.img", "mcuboot/unsigned-seccnt.img"] {
        assert!(matches!(
            extract(Format::Mcuboot, &fixture(name)),
            Err(FormatError::NotSigned(Format::Mcuboot))
        ));
        let d = fwseal_formats::describe(Format::Mcuboot, &fixture(name)).expect("describe");
        assert!(d.contains("SHA256"), "{d}");
    }
    let d = fwseal_formats::describe(Format::Mcuboot, &fixture("mcuboot/signed-ec256-seccnt.img"))
        .expect("describe");
    assert!(
        d.contains("SEC_CNT") && d.contains("ECDSA_SIG") && d.contains("KEYHASH"),
        "{d}"
    );
}

#[test]
fn malformed_fixtures_give_located_errors() {
    let keys = Keys::default_hybrid();
    for (name, at) in [
        ("bad-truncated.img", 932u64),
        ("bad-tlv-magic.img", 0x408),
        ("bad-img-size.img", 1084),
        ("bad-tlv-tot.img", 0x414 + 2),
        ("bad-tlv-len.img", 0x408 + 4 + 2),
    ] {
        let data = fixture(&format!("mcuboot/{name}"));
        for r in [
            extract(Format::Mcuboot, &data).map(|_| ()),
            fwseal_formats::describe(Format::Mcuboot, &data).map(|_| ()),
            prepare(Format::Mcuboot, &data, &keys.request(Mode::Embedded)).map(|_| ()),
            prepare(Format::Mcuboot, &data, &keys.request(Mode::Detached)).map(|_| ()),
        ] {
            match r {
                Err(e @ FormatError::Malformed { .. }) => {
                    assert_eq!(e.location(), Some(Location::Offset(at)), "{name}: {e}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    // Wrong magic and a short header.
    let mut d = fixture(INPUTS[0]);
    assert!(matches!(
        extract(Format::Mcuboot, &d[..20]),
        Err(FormatError::Malformed { .. })
    ));
    d[0] ^= 1;
    assert!(matches!(
        extract(Format::Mcuboot, &d),
        Err(FormatError::Malformed {
            at: Location::Offset(0),
            ..
        })
    ));
    // A SHA256 TLV that does not match is reported at its offset.
    let mut d = fixture("mcuboot/signed-ec256-seccnt.img");
    let n = d.len();
    d[0x20 + 3] ^= 1;
    match extract(Format::Mcuboot, &d) {
        Err(FormatError::Malformed {
            at: Location::Offset(o),
            what,
            ..
        }) => {
            assert!(
                what.contains("does not match") && (o as usize) < n,
                "{what}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn detect_mcuboot_and_reject_other_img_flavours() {
    assert_eq!(
        detect(&fixture(INPUTS[0]), Some("img")).expect("mcuboot"),
        Format::Mcuboot
    );
    assert_eq!(
        detect(&fixture(INPUTS[0]), Some("bin")).expect("content wins"),
        Format::Mcuboot
    );
    let mut android = b"ANDROID!".to_vec();
    android.resize(2048, 0);
    assert!(
        matches!(detect(&android, Some("img")), Err(FormatError::UnsupportedFlavour(m)) if m.contains("Android"))
    );
    let mut fit = vec![0xd0, 0x0d, 0xfe, 0xed];
    fit.resize(512, 0);
    assert!(
        matches!(detect(&fit, Some("img")), Err(FormatError::UnsupportedFlavour(m)) if m.contains("FIT"))
    );
    assert!(matches!(
        detect(&[0u8; 64], Some("img")),
        Err(FormatError::UnsupportedFlavour(_))
    ));
}

/// Deterministic mutation fuzzing of every fixture and of a signed image: no panic.
#[test]
fn mutations_never_panic() {
    let keys = Keys::default_hybrid();
    let mut seeds: Vec<Vec<u8>> = INPUTS.iter().map(|n| fixture(n)).collect();
    seeds.push(keys.embed(
        Format::Mcuboot,
        &seeds[2],
        &keys.request(Mode::Embedded),
        vec![],
    ));
    // A PUBKEY (full public key) image, and a request with a slot to check against.
    let full = Request {
        options: SignOptions {
            mcuboot_public_key: PublicKeyFormat::Full,
            mcuboot_slot: Some(Slot::new(8192)),
            ..Default::default()
        },
        ..keys.request(Mode::Embedded)
    };
    seeds.push(keys.embed(Format::Mcuboot, &seeds[0], &full, vec![]));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let req = Request::hybrid(
        SigAlg::EcdsaP256Sha256,
        SigAlg::MlDsa65,
        Mode::Detached,
        "f",
    );
    let mut runs = 0;
    for i in 0..3000 {
        let mut d = seeds[i % seeds.len()].clone();
        match next() % 4 {
            0 => {
                let n = (next() % d.len() as u64) as usize;
                d.truncate(n);
            }
            1 => {
                // Hit header and TLV length fields often.
                let hot = [8usize, 10, 12, 13, 14, 15];
                let p = if next() % 2 == 0 {
                    hot[(next() % 6) as usize]
                } else {
                    (next() % d.len() as u64) as usize
                };
                if let Some(b) = d.get_mut(p) {
                    *b = next() as u8;
                }
            }
            2 => {
                for _ in 0..4 {
                    let p = (next() % d.len() as u64) as usize;
                    d[p] ^= 1 << (next() % 8);
                }
            }
            _ => {
                let p = d.len().saturating_sub(1 + (next() % 200) as usize);
                d[p] = next() as u8;
            }
        }
        let _ = extract(Format::Mcuboot, &d);
        let _ = fwseal_formats::describe(Format::Mcuboot, &d);
        let _ = prepare(Format::Mcuboot, &d, &req);
        let _ = prepare(Format::Mcuboot, &d, &full);
        runs += 1;
    }
    assert_eq!(runs, 3000);
}

/// The worked example in `formats/mcuboot.md`: ML-DSA-65 over `unsigned-seccnt.img`.
#[test]
fn worked_example_matches_the_spec() {
    let input = fixture("mcuboot/unsigned-seccnt.img");
    let keys = Keys::default_hybrid();
    let plan = prepare(Format::Mcuboot, &input, &keys.request(Mode::Embedded)).expect("prepare");
    let fwseal_crypto::SignedMessage::Bytes(m) = plan.pq_message(SigAlg::MlDsa65).expect("m")
    else {
        panic!("PQ message is bytes")
    };
    let mut want = b"fwseal/mcuboot/v1\0\x03".to_vec();
    want.extend(
        hex::decode(
            "f955bb44f8a5b9679bd52e34321bd26fe6cd9213ec77df3da3b146e01d56feb8\
             77e935ac3f57d8c887f4aa954a7de9da937b9a11b3b6b2f6476e8d16a2ac6f88",
        )
        .expect("hex"),
    );
    assert_eq!(m, want);
    let out = keys.embed(
        Format::Mcuboot,
        &input,
        &keys.request(Mode::Embedded),
        vec![],
    );
    assert_eq!(
        &out[..16],
        &hex::decode("3db8f39600000000200 01f0de8030000".replace(' ', "")).expect("hex")[..]
    );
    assert_eq!(
        &out[0x408..0x41a],
        &hex::decode("08691f0d500004000700000 0a0460f0d0201".replace(' ', "")).expect("hex")[..]
    );
    assert_eq!(
        out.len(),
        0x408 + 0xd1f + 4 + 36 + 36 + 4 + tlvs(&out, false)[2].1.len()
    );
}
