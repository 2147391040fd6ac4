//! End to end, format rules and per-product format options through the real daemon and CLI:
//! empty raw images are refused; an MCUboot product's `mcuboot_slot_size` refuses signed images
//! that outgrow the slot (upload and hash-locally alike); `mcuboot_public_key = "full"` writes
//! the PUBKEY TLV that `MCUBOOT_HW_KEY` bootloaders need, judged by stock imgtool.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test format_options`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fwseal_formats::mcuboot::{self, Slot};
use std::process::Command;

/// Audit rows of refused sign requests for `product` whose reason contains `needle`.
fn denials(a: &Appliance, product: &str, needle: &str) -> usize {
    a.sql(&format!(
        "select count(*) from audit_log where action = 'sign' and decision = 'deny' \
         and product = '{product}' and reason like '%{needle}%'"
    ))
    .parse()
    .unwrap()
}

/// Unprotected TLVs of an MCUboot image as (type, value).
fn unprotected(img: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let h = mcuboot::Header::parse(img).unwrap();
    let base = h.body_end() as usize;
    let tail = &img[base..];
    let t = mcuboot::parse_trailer(tail, base as u64, &h).unwrap();
    t.unprotected
        .unwrap()
        .tlvs
        .iter()
        .map(|x| (x.kind, tail[x.at + 4..x.at + 4 + x.len as usize].to_vec()))
        .collect()
}

#[test]
fn empty_raw_images_are_refused_with_a_problem_document_and_audited() {
    let a = start_with_keys("", "");
    let before = a.artifact_count();
    for name in ["empty.bin", "empty.fw"] {
        std::fs::write(a.path(name), b"").unwrap();
        for extra in [&[][..], &["--detached"][..], &["--hash-locally"][..]] {
            let mut args = vec!["sign", "-p", "widget"];
            args.extend(extra);
            args.push(name);
            let r = a.cli(&args);
            // A refusal by the daemon exits 1; an input the client refuses itself exits 4.
            let code = if extra == ["--hash-locally"] { 4 } else { 1 };
            assert_eq!(r.code, Some(code), "{name} {extra:?}: {}", r.text());
            assert!(
                r.stderr.contains("empty image"),
                "{name} {extra:?}: {}",
                r.text()
            );
            if extra != ["--hash-locally"] {
                // The daemon's refusal: an RFC 9457 document with a 4xx status and its code.
                assert!(
                    r.stderr.contains("server answered 422 malformed-image"),
                    "{}",
                    r.text()
                );
            }
            assert!(!a.path(&embedded_name(name)).exists());
            assert!(!a.path(&format!("{name}.sig.json")).exists());
        }
    }
    // Four uploads refused, each audited; hash-locally refused on the client (nothing sent).
    assert_eq!(denials(&a, "widget", "empty image"), 4);
    assert_eq!(a.artifact_count(), before, "nothing stored");
    // One byte is the minimum and signs.
    std::fs::write(a.path("one.bin"), b"\x01").unwrap();
    a.cli_ok(&["sign", "-p", "widget", "one.bin"]);
    a.cli_ok(&["verify", "one.signed.bin", "-k", EC, "-k", PQ]);
}

#[test]
fn mcuboot_slot_size_and_full_public_key_through_the_daemon() {
    let input = fixture("mcuboot/unsigned-h200.img");
    let len = std::fs::metadata(&input).unwrap().len();
    let trailer = Slot::new(0).trailer_size();
    // The unsigned image fits its slot exactly, as `imgtool --slot-size` counts it.
    let slot = len + trailer;
    let products = format!(
        r#"
[[product]]
name = "slot"
formats = ["mcuboot"]
[product.options]
mcuboot_slot_size = {slot}
[[product]]
name = "hwkey"
formats = ["mcuboot"]
classical = "ecdsa-p384-sha384"
[product.options]
mcuboot_public_key = "full"
mcuboot_slot_size = 0x20000
mcuboot_align = 8
"#
    );
    let a = Appliance::start_with_products("", &products, &["slot", "hwkey"]);
    for p in ["slot", "hwkey", "widget"] {
        a.export_keys(p);
    }
    let img = a.put_fixture("mcuboot/unsigned-h200.img");
    let before = a.artifact_count();

    // Slot: the signed image does not fit. Refused before signing, numbers in the problem.
    let r = a.cli(&["sign", "-p", "slot", &img]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("server answered 422 slot-overflow"),
        "{}",
        r.text()
    );
    for n in [
        format!("unsigned input {len} bytes"),
        format!("{trailer}-byte image trailer"),
        format!("slot size {slot} bytes"),
    ] {
        assert!(r.stderr.contains(&n), "{n}: {}", r.text());
    }
    assert_eq!(denials(&a, "slot", "does not fit its slot"), 1);
    assert_eq!(a.artifact_count(), before, "nothing stored");
    // Hash-locally: the client prepares with the product's options (sign-params) and refuses
    // the same way, before asking for any signature.
    let r = a.cli(&["sign", "-p", "slot", "--hash-locally", &img]);
    assert_eq!(r.code, Some(4), "{}", r.text());
    assert!(r.stderr.contains("does not fit its slot"), "{}", r.text());
    for n in [
        format!("unsigned input {len} bytes"),
        format!("{trailer}-byte image trailer"),
        format!("slot size {slot} bytes"),
    ] {
        assert!(r.stderr.contains(&n), "{n}: {}", r.text());
    }
    let hl: usize = a
        .sql(
            "select count(*) from audit_log where product = 'slot' and decision = 'allow' \
             and json_extract(extra, '$.hash_locally') = 1",
        )
        .parse()
        .unwrap();
    assert_eq!(
        hl, 0,
        "no signature was made for the refused hash-locally image"
    );
    assert!(!a.path(&embedded_name(&img)).exists());
    // Detached leaves the image unchanged: it fits.
    a.cli_ok(&["sign", "-p", "slot", "--detached", &img]);

    // Full public key: PUBKEY (0x02) instead of KEYHASH, upload and hash-locally.
    let ec = "keys/hwkey-v1-ecdsa-p384-sha384.pem";
    let pq = "keys/hwkey-v1-ml-dsa-65.pem";
    let spki = {
        let pem = std::fs::read_to_string(a.path(ec)).unwrap();
        fwseal_crypto::verify::spki_pem_decode(&pem).unwrap().1
    };
    std::fs::copy(a.path(&img), a.path("hl.img")).unwrap();
    a.cli_ok(&["sign", "-p", "hwkey", &img]);
    a.cli_ok(&["sign", "-p", "hwkey", "--hash-locally", "hl.img"]);
    // A stock imgtool image with a P-384 key of its own, --public-key-format full.
    let theirs = tool("openssl")
        .zip(tool("imgtool"))
        .map(|(openssl, imgtool)| {
            run_ok(
                Command::new(&openssl)
                    .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
                    .args(["ec_paramgen_curve:P-384", "-out", "other-p384.key"])
                    .current_dir(a.dir.path()),
            );
            run_ok(
                Command::new(&openssl)
                    .args([
                        "pkey",
                        "-in",
                        "other-p384.key",
                        "-pubout",
                        "-out",
                        "other-p384.pem",
                    ])
                    .current_dir(a.dir.path()),
            );
            run_ok(
                Command::new(&imgtool)
                    .args([
                        "sign",
                        "--key",
                        "other-p384.key",
                        "--public-key-format",
                        "full",
                    ])
                    .args([
                        "--header-size",
                        "0x200",
                        "--pad-header",
                        "--version",
                        "1.2.3",
                    ])
                    .args(["--align", "8", "--slot-size", "0x20000"])
                    .arg(fixture("mcuboot/body.bin"))
                    .arg("imgtool-full.img")
                    .current_dir(a.dir.path()),
            );
            std::fs::read(a.path("imgtool-full.img")).unwrap()
        });
    for signed in [embedded_name(&img), "hl.signed.img".to_string()] {
        let out = std::fs::read(a.path(&signed)).unwrap();
        let tlvs = unprotected(&out);
        let types: Vec<u16> = tlvs.iter().map(|t| t.0).collect();
        assert_eq!(
            types,
            [mcuboot::TLV_SHA384, mcuboot::TLV_PUBKEY, 0x22],
            "{signed}"
        );
        assert_eq!(
            tlvs[1].1, spki,
            "{signed}: PUBKEY is the product key's SPKI DER"
        );
        if let Some(theirs) = &theirs {
            let t: Vec<u16> = unprotected(theirs).iter().map(|t| t.0).collect();
            assert_eq!(
                t, types,
                "{signed}: same TLV layout as imgtool --public-key-format full"
            );
        }
        assert!(
            out.len() as u64
                + Slot {
                    align: 8,
                    ..Slot::new(0)
                }
                .trailer_size()
                <= 0x20000
        );
        if let Some(r) = judge(&a, "imgtool", &["verify", "-k", ec, &signed]) {
            assert!(
                r.stdout.contains("Image was correctly validated"),
                "{}",
                r.text()
            );
        }
        let r = a.cli_ok(&["verify", &signed, "-k", ec, "-k", pq]);
        assert!(
            r.stdout.contains("OK embedded ecdsa-p384-sha384"),
            "{}",
            r.text()
        );
        // Another P-384 key is not the one the PUBKEY names.
        if theirs.is_some() {
            let r = a.cli(&["verify", &signed, "-k", "other-p384.pem", "-k", pq]);
            assert_eq!(r.code, Some(1), "{}", r.text());
            assert!(r.stderr.contains("no trusted key matches"), "{}", r.text());
        }
    }
    // And fwseal verify accepts imgtool's own full-key image with imgtool's key.
    if theirs.is_some() {
        let r = a.cli_ok(&[
            "verify",
            "imgtool-full.img",
            "-k",
            "other-p384.pem",
            "--classical-only",
        ]);
        assert!(r.stdout.contains("verified"), "{}", r.text());
    }
    a.assert_alive();
}
