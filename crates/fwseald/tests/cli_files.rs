//! The files the `fwseal` CLI writes and reads, against the real daemon: `fetch` writes what
//! `sign` writes under the one naming rule (`IMAGE`, `IMAGE.sig.json`, `IMAGE.intoto.jsonl`), so
//! `fwseal verify DIR/IMAGE` checks a fetched artifact — signatures and provenance — out of the
//! box; `fwseal list` shows the image's version and name; the appliance's provenance keys are
//! fetched by any authenticated client with `fwseal keys export -p fwseal-appliance`.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test cli_files`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeSet;

fn files_in(a: &Appliance, dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(a.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn same_bytes(a: &Appliance, x: &str, y: &str) {
    assert!(
        std::fs::read(a.path(x)).unwrap() == std::fs::read(a.path(y)).unwrap(),
        "{x} and {y} differ"
    );
}

/// `fwseal fetch ID -o DIR` then `fwseal verify DIR/IMAGE` (both halves, provenance with the
/// builder id), for embedded MCUboot, raw, Intel HEX and .efi (three files) and detached raw,
/// MCUboot and .efi; the fetched files are byte for byte what `fwseal sign` wrote, and the stock
/// judges accept the fetched images.
#[test]
fn fetched_artifacts_verify_out_of_the_box() {
    let a = start_with_keys("", "");
    // (fixture, product, detached, keys)
    let cases = [
        ("mcuboot/unsigned-h20.img", "widget", false, [EC, PQ]),
        ("raw/sample.bin", "widget", false, [EC, PQ]),
        ("hex/multi.hex", "widget", false, [EC, PQ]),
        ("efi/hello.efi", "uefi", false, [UEFI_CERT, UEFI_PQ]),
        ("raw/sample.fw", "widget", true, [EC, PQ]),
        ("mcuboot/unsigned-h200.img", "widget", true, [EC, PQ]),
        ("efi/hello32.efi", "uefi", true, [UEFI_CERT, UEFI_PQ]),
    ];
    for (i, (fixture, product, detached, keys)) in cases.into_iter().enumerate() {
        let input = a.put_fixture(fixture);
        let mut args = vec!["-p", product, input.as_str()];
        if detached {
            args.push("--detached");
        }
        let id = a.sign_id(&args);
        let out = format!("out{i}");
        a.cli_ok(&["fetch", &id, "-o", &out]);

        // What `sign` wrote in the working directory, and what `fetch` must have written.
        let image = if detached {
            input.clone()
        } else {
            embedded_name(&input)
        };
        let mut want = BTreeSet::from([image.clone(), format!("{image}.intoto.jsonl")]);
        if detached || fixture.ends_with(".efi") {
            want.insert(format!("{image}.sig.json"));
        }
        assert_eq!(files_in(&a, &out), want, "{fixture}: fetched files");
        for f in &want {
            same_bytes(&a, f, &format!("{out}/{f}"));
        }

        let fetched = format!("{out}/{image}");
        let mut v = vec!["verify", fetched.as_str(), "-k", keys[0], "-k", keys[1]];
        v.extend(provenance_args());
        let r = a.cli(&v);
        assert!(r.ok(), "{fixture} (detached {detached}): {}", r.text());
        assert!(
            r.stdout.contains("OK provenance"),
            "{fixture}: {}",
            r.text()
        );
        let halves = if detached { "detached" } else { "embedded" };
        assert!(r.stdout.contains(&format!("OK {halves}")), "{}", r.text());

        if !detached {
            match fixture.rsplit_once('.').map(|x| x.1) {
                Some("img") => {
                    judge(&a, "imgtool", &["verify", "-k", EC, &fetched]);
                }
                Some("efi") => {
                    judge(&a, "sbverify", &["--cert", UEFI_CERT, &fetched]);
                }
                _ => {}
            }
        }
    }
    a.assert_alive();
}

/// `fwseal sign --detached X` writes `X.sig.json` and `X.intoto.jsonl`, and `fwseal verify X`
/// finds both by the naming rule (no `--provenance`); with the envelope gone, the same command
/// fails and says provenance was not checked.
#[test]
fn detached_provenance_is_found_by_the_naming_rule() {
    let a = start_with_keys("", "");
    let bin = a.put_fixture("raw/sample.bin");
    a.cli_ok(&["sign", "-p", "widget", "--detached", &bin]);
    let prov = format!("{bin}.intoto.jsonl");
    assert!(a.path(&prov).is_file(), "{prov} missing");
    assert!(!a.path(&format!("{bin}.sig.json.intoto.jsonl")).exists());
    let mut v = vec!["verify", bin.as_str(), "-k", EC, "-k", PQ];
    v.extend(provenance_args());
    let r = a.cli_ok(&v);
    assert!(r.stdout.contains("OK provenance"), "{}", r.text());
    judge_provenance(&a, &prov, &format!("{bin}.sig.json"));

    // One envelope per file: a second line (here a copy of the valid one) is refused, never
    // skipped, so nothing can hide behind the first envelope.
    let one = std::fs::read_to_string(a.path(&prov)).unwrap();
    std::fs::write(a.path(&prov), format!("{one}{one}")).unwrap();
    let r = a.cli(&v);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("more than one non-blank line"),
        "{}",
        r.text()
    );
    std::fs::write(a.path(&prov), &one).unwrap();
    a.cli_ok(&v);

    std::fs::remove_file(a.path(&prov)).unwrap();
    let r = a.cli(&v);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("provenance not checked") && r.stderr.contains(&prov),
        "{}",
        r.text()
    );
}

/// `fwseal list` shows the version an MCUboot header carries (1.2.3+4 in `unsigned-h20.img`)
/// and the input name; `--image-version 2.1.0` finds an image signed with that version (stored
/// as `2.1.0+0`); a requested version that contradicts the MCUboot header is refused (400).
#[test]
fn list_shows_the_image_version_and_name() {
    let a = start_with_keys("", "");
    let img = a.put_fixture("mcuboot/unsigned-h20.img");
    let bin = a.put_fixture("raw/sample.bin");
    let img_id = a.sign_id(&["-p", "widget", &img]);
    let bin_id = a.sign_id(&["-p", "widget", "--image-version", "2.1.0", &bin]);

    let r = a.cli_ok(&["list", "-p", "widget"]);
    let line = |id: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", r.text()))
            .to_string()
    };
    let l = line(&img_id);
    assert!(
        l.contains(" 1.2.3+4 ") && l.ends_with(" unsigned-h20.img"),
        "{l}"
    );
    let l = line(&bin_id);
    assert!(l.contains(" 2.1.0+0 ") && l.ends_with(" sample.bin"), "{l}");

    let r = a.cli_ok(&[
        "--json",
        "list",
        "-p",
        "widget",
        "--image-version",
        "1.2.3+4",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let arts = v["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 1, "{v}");
    assert_eq!(arts[0]["id"], img_id.as_str());
    assert_eq!(arts[0]["version"], "1.2.3+4");
    assert_eq!(arts[0]["name"], "unsigned-h20.img");

    let r = a.cli_ok(&["--json", "list", "-p", "widget", "--image-version", "2.1.0"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let ids: Vec<&str> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["id"].as_str())
        .collect();
    assert_eq!(ids, [bin_id.as_str()], "{v}");

    let before = a.artifact_count();
    let r = a.cli(&["sign", "-p", "widget", "--image-version", "9.9.9", &img]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("400") && r.stderr.contains("1.2.3+4") && r.stderr.contains("9.9.9"),
        "{}",
        r.text()
    );
    assert_eq!(a.artifact_count(), before, "nothing stored");
    // The same version as the header is accepted.
    a.cli_ok(&["sign", "-p", "widget", "--image-version", "1.2.3+4", &img]);
}

/// `fwseal keys export -p fwseal-appliance` (any authenticated client, here one with only the
/// factory role on another product) writes the appliance's provenance keys — the same the host
/// exports with `fwseald keys export -p fwseal-appliance` — and `verify --provenance-key` checks
/// a provenance with them. Without a valid token: 401.
#[test]
fn appliance_keys_are_served_to_any_authenticated_client() {
    let tok = "secret-factory-only";
    let clients = format!(
        "[[client]]\nname = \"factory-only\"\ntoken_sha256 = \"{}\"\nroles = {{ \"uefi\" = [\"factory\"] }}\n",
        sha256_hex(tok.as_bytes())
    );
    let a = start_with_keys("", &clients);
    let r = a.cli_as(
        tok,
        &["keys", "export", "-p", "fwseal-appliance", "-o", "ak"],
    );
    assert!(r.ok(), "{}", r.text());
    for (mine, host) in [
        ("ak/fwseal-appliance-ecdsa-p256-sha256.pem", APP_EC),
        ("ak/fwseal-appliance-ml-dsa-65.pem", APP_PQ),
    ] {
        assert!(r.stdout.contains(mine), "{}", r.text());
        same_bytes(&a, mine, host);
    }

    let bin = a.put_fixture("raw/sample.bin");
    a.cli_ok(&["sign", "-p", "widget", &bin]);
    let signed = embedded_name(&bin);
    let r = a.cli_ok(&[
        "verify",
        &signed,
        "-k",
        EC,
        "-k",
        PQ,
        "--provenance-key",
        "ak/fwseal-appliance-ecdsa-p256-sha256.pem",
        "--provenance-key",
        "ak/fwseal-appliance-ml-dsa-65.pem",
        "--builder-id",
        IDENTITY,
    ]);
    assert!(r.stdout.contains("OK provenance"), "{}", r.text());

    let r = a.cli_as(
        "wrong-token",
        &["keys", "export", "-p", "fwseal-appliance", "-o", "x"],
    );
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("401"), "{}", r.text());
}
