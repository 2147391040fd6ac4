//! The worked examples of `formats/*.md`, rebuilt with the spec test keys (byte-identical: the
//! SHA-256 of each signed file is the one the spec prints), verify with fwseal-verify; the P-256
//! key is trusted as the SPKI printed in `formats/signature-block.md`.

mod common;

use common::*;
use fwseal_crypto::{soft::SoftKey, DigestAlg, SigAlg, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Mode, Request};
use fwseal_verify::{verify, Format, Policy, TrustedKey};

/// formats/signature-block.md, "Test keys": the P-256 SPKI as printed.
const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004\
60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

fn test_keys() -> (SoftKey, SoftKey) {
    let mut der =
        hex::decode("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420")
            .expect("hex");
    der.extend(
        hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
            .expect("hex"),
    );
    let ec = SoftKey::from_pkcs8_der(SigAlg::EcdsaP256Sha256, &der).expect("P-256");
    let seed: Vec<u8> = (0u8..32).collect();
    let pq = SoftKey::from_pq_seed(SigAlg::MlDsa65, &seed).expect("ML-DSA-65");
    (ec, pq)
}

fn sign(f: fwseal_formats::Format, input: &[u8], product: &str) -> Vec<u8> {
    let (ec, pq) = test_keys();
    let req = Request::hybrid(
        SigAlg::EcdsaP256Sha256,
        SigAlg::MlDsa65,
        Mode::Embedded,
        product,
    );
    let plan = prepare(f, input, &req).expect("prepare");
    let set = sign_prepared(
        plan.as_ref(),
        Some(&ec as &dyn Signer),
        Some(&pq as &dyn Signer),
        vec![],
    )
    .expect("sign");
    assemble(input, &plan.embed(&set).expect("embed")).expect("assemble")
}

fn check(f: Format, file: &[u8], file_sha256: &str) {
    assert_eq!(
        hex::encode(DigestAlg::Sha256.hash(file)),
        file_sha256,
        "{f:?}: not the spec's worked example"
    );
    let (ec, pq) = test_keys();
    let p256 = hex::decode(P256_SPKI).expect("hex");
    assert_eq!(p256, ec.public_key().spki_der(), "spec SPKI");
    let pq_spki = pq.public_key().spki_der().to_vec();
    let keys = [TrustedKey::Spki(&p256), TrustedKey::Spki(&pq_spki)];
    let img = device_image(f, file);
    write_fuzz_seed(f, &img, &p256, &pq_spki);
    let v = verify(f, &img, &keys, Policy::default())
        .unwrap_or_else(|e| panic!("{f:?} worked example: {e}"));
    assert_eq!(v.signatures, 2);
    assert_eq!(
        hex::encode(v.pq.expect("pq").key_id),
        "b8b62131bfbe84433efb2273d7f5b87f7a22854a2cfd366fc2aead86d837c52d"
    );
    assert_eq!(
        hex::encode(v.classical.expect("classical").key_id),
        "5a7a78cca4a0f420d9bc62bb669c3c2759e39f723d3ae10dcbe0f0815a07ecd4"
    );
}

fn writing_fuzz_seeds() -> bool {
    std::env::var("FWSEAL_WRITE_FUZZ_SEEDS").as_deref() == Ok("1")
}

/// Write `img` as the seed `name.bin` of the `verify` fuzz target: three control bytes (format
/// index; control 0 = both halves, no minimum counter, every test key as SPKI; chunk 0 = whole
/// reads, see fuzz/fuzz_targets/verify.rs), then the device image.
fn write_seed(name: &str, f: Format, img: &[u8]) {
    let dir = repo_root().join("fuzz/seeds/verify");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let index = Format::ALL.iter().position(|x| *x == f).expect("format") as u8;
    let mut seed = vec![index, 0, 0];
    seed.extend_from_slice(img);
    std::fs::write(dir.join(format!("{name}.bin")), seed).expect("write seed");
}

fn write_fuzz_key(name: &str, spki: &[u8]) {
    let keys = repo_root().join("fuzz/keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    std::fs::write(keys.join(format!("test-{name}.spki.der")), spki).expect("write");
}

/// With `FWSEAL_WRITE_FUZZ_SEEDS=1`: write the device image as a seed of the `verify` fuzz target
/// and the trusted keys it uses.
fn write_fuzz_seed(f: Format, img: &[u8], p256: &[u8], pq: &[u8]) {
    if !writing_fuzz_seeds() {
        return;
    }
    write_seed(f.name(), f, img);
    write_fuzz_key("p256", p256);
    write_fuzz_key("ml-dsa-65", pq);
}

/// The other algorithms' seeds for the `verify` fuzz target: a raw image signed P-384 +
/// ML-DSA-44 and one signed ML-DSA-87 only (post-quantum only), with fresh keys written to
/// fuzz/keys. Without `FWSEAL_WRITE_FUZZ_SEEDS=1` it checks that the committed seeds still
/// verify with the committed keys (so the fuzzer starts from accepted images).
#[test]
fn fuzz_seeds_of_the_other_algorithms() {
    let seeds = repo_root().join("fuzz/seeds/verify");
    let body: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let cases = [
        (
            "raw-p384-ml-dsa-44",
            Some(SigAlg::EcdsaP384Sha384),
            SigAlg::MlDsa44,
        ),
        ("raw-ml-dsa-87", None, SigAlg::MlDsa87),
    ];
    if writing_fuzz_seeds() {
        for (name, c, pq) in cases {
            let img = sign_with(Format::Raw, &body, c, Some(pq), options());
            write_seed(name, Format::Raw, &img);
            for a in c.into_iter().chain([pq]) {
                write_fuzz_key(
                    a.name()
                        .trim_start_matches("ecdsa-")
                        .trim_end_matches("-sha384"),
                    &spki(key(a)),
                );
            }
        }
    }
    let key_file =
        |n: &str| std::fs::read(repo_root().join(format!("fuzz/keys/test-{n}.spki.der")));
    let keys: Vec<Vec<u8>> = ["p384", "ml-dsa-44", "ml-dsa-87"]
        .iter()
        .map(|n| key_file(n).expect("fuzz key"))
        .collect();
    let tk = trusted(&keys);
    for (name, c, _) in cases {
        let seed = std::fs::read(seeds.join(format!("{name}.bin"))).expect("seed");
        assert_eq!(seed[..3], [0, 0, 0], "{name}: control bytes");
        let require = if c.is_some() {
            fwseal_verify::Require::Both
        } else {
            fwseal_verify::Require::PqOnly
        };
        let policy = Policy {
            require,
            ..Policy::default()
        };
        let v =
            verify(Format::Raw, &seed[3..], &tk, policy).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.signatures, if c.is_some() { 2 } else { 1 }, "{name}");
    }
}

#[test]
fn signature_block_worked_example() {
    let file = sign(
        fwseal_formats::Format::Raw,
        &[0xde, 0xad, 0xbe, 0xef],
        "demo",
    );
    check(
        Format::Raw,
        &file,
        "12afccc214c4196a15a67d7971c99fc73d1b8fe2e9ffba0ee13eaca8fa347b3c",
    );
}

#[test]
fn hex_worked_example() {
    let input = b":020000040800F2\n:04000000DEADBEEFC4\n:02000800AA55F7\n:0400000508000000EF\n:00000001FF\n";
    let file = sign(fwseal_formats::Format::Ihex, input, "demo");
    check(
        Format::Hex,
        &file,
        "2824a05e3e277ce3a74e38904fdbd4ec96463b86f5323a846cd22977d6b0264a",
    );
    // The memory image: 10 bytes, 6 bytes of alignment padding, the 3,667-byte block.
    let (lo, img) = hex_memory(&file, 0xff);
    assert_eq!((lo, img.len()), (0x0800_0000, 16 + 3667));
}

#[test]
fn dfu_worked_examples() {
    let file = sign(
        fwseal_formats::Format::Dfu,
        &fixture("dfu/dfu11.dfu"),
        "test-product",
    );
    check(
        Format::Dfu,
        &file,
        "136f7c84dc5e8914b85c4bb9feb28bff857223b714a0378151d18b9696197b52",
    );
    let file = sign(
        fwseal_formats::Format::Dfu,
        &fixture("dfu/dfuse.dfu"),
        "test-product",
    );
    check(
        Format::DfuSe,
        &file,
        "1e30a2b39b6dc435aeb9adb3f02d4e50d519969225d3a8e8e751f84ff7a72f98",
    );
    // The DfuSe device image: the 423-byte canonical encoding, then the 3,668-byte block.
    assert_eq!(device_image(Format::DfuSe, &file).len(), 423 + 3668);
}

#[test]
fn mcuboot_worked_example() {
    let file = sign(
        fwseal_formats::Format::Mcuboot,
        &fixture("mcuboot/unsigned-seccnt.img"),
        "test-product",
    );
    check(
        Format::Mcuboot,
        &file,
        "fbd72dfa40354cd9a6e3788b3b7dbd51d143ff5bd11ab2b388b99ee852a08f81",
    );
}
