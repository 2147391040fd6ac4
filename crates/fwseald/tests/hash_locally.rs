//! End to end, client-side hashing: `fwseal sign --hash-locally` against the real daemon. The
//! daemon sees only digests and messages; the CLI embeds the signatures with the same format
//! engine, and the stock judges check the result exactly as they check uploaded signings.
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test hash_locally`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;

/// `fwseal verify` (signatures, and the provenance bound through the signatures it lists).
fn verify_with_provenance(a: &Appliance, args: &[&str], keys: [&str; 2]) {
    let mut v = vec!["verify"];
    v.extend(args);
    v.extend(["-k", keys[0], "-k", keys[1]]);
    v.extend(provenance_args());
    let r = a.cli_ok(&v);
    assert!(r.stdout.contains("OK provenance"), "{}", r.text());
}

/// Audit records of hash-locally signings (one per item and request).
fn hash_locally_records(a: &Appliance) -> usize {
    a.sql(
        "select count(*) from audit_log where action = 'sign' and decision = 'allow' \
         and json_extract(extra, '$.hash_locally') = 1 and input_sha256 is null",
    )
    .parse()
    .unwrap()
}

#[test]
fn hash_locally_batch_signs_every_format_and_the_judges_accept() {
    let a = start_with_keys("", "");
    let inputs = [
        a.put_fixture("raw/sample.bin"),
        a.put_fixture("mcuboot/unsigned-h200.img"),
        a.put_fixture("hex/multi.hex"),
        a.put_fixture("dfu/dfuse.dfu"),
        a.put_fixture("dfu/dfu11.dfu"),
    ];
    let before = a.artifact_count();

    // One CLI call, embedded: one request, plus one for the MCUboot classical half.
    let mut args = vec![
        "sign",
        "-p",
        "widget",
        "--hash-locally",
        "--source-uri",
        "git+https://git.test/w",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let r = a.cli_ok(&args);
    assert_eq!(
        r.stdout.matches("hashed locally").count(),
        inputs.len(),
        "{}",
        r.text()
    );
    // Detached, same batch.
    let mut args = vec!["sign", "-p", "widget", "--hash-locally", "--detached"];
    args.extend(inputs.iter().map(String::as_str));
    a.cli_ok(&args);

    // The appliance stored nothing: it never had the images.
    assert_eq!(
        a.artifact_count(),
        before,
        "hash-locally signing stored artifacts"
    );
    // Audited per item; the MCUboot embedded image took two requests (PQ, then classical).
    assert_eq!(hash_locally_records(&a), 2 * inputs.len() + 1);
    let complete: usize = a
        .sql(
            "select count(*) from audit_log where json_extract(extra, '$.hash_locally') = 1 \
             and json_extract(extra, '$.complete') = 1 \
             and json_extract(extra, '$.provenance_sha256') is not null",
        )
        .parse()
        .unwrap();
    assert_eq!(complete, 2 * inputs.len());

    for input in &inputs {
        let signed = embedded_name(input);
        let doc = format!("{input}.sig.json");
        verify_with_provenance(&a, &[&signed], [EC, PQ]);
        // Detached: `IN.sig.json` and `IN.intoto.jsonl`, found by the naming rule.
        assert!(a.path(&format!("{input}.intoto.jsonl")).is_file());
        verify_with_provenance(&a, &[input, "--detached", &doc], [EC, PQ]);
        // The provenance's subject is the input the client declared, signed by the appliance.
        judge_provenance(&a, &format!("{signed}.intoto.jsonl"), input);
        let env = std::fs::read_to_string(a.path(&format!("{signed}.intoto.jsonl"))).unwrap();
        let env: serde_json::Value = serde_json::from_str(env.trim()).unwrap();
        let stmt: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                env["payload"].as_str().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let ip = &stmt["predicate"]["buildDefinition"]["internalParameters"];
        assert_eq!(ip["hashLocally"], true, "{stmt}");
        assert_eq!(ip["signatureSha256"].as_array().unwrap().len(), 2, "{stmt}");
        assert_eq!(
            stmt["predicate"]["buildDefinition"]["externalParameters"]["clientClaims"]
                ["sourceRepository"],
            "git+https://git.test/w"
        );
    }

    // Stock judges, as for uploaded signings.
    let [bin, img, hex, dfuse, dfu11] = &inputs;
    judge(&a, "imgtool", &["verify", "-k", EC, &embedded_name(img)]);
    if let Some(py) = tool("python3") {
        run_ok(
            Command::new(&py)
                .arg(py_verifier("sigblock.py"))
                .args([
                    "--format",
                    "raw",
                    "--require-both",
                    "--image",
                    &embedded_name(bin),
                ])
                .args(["--key", EC, "--key", PQ])
                .current_dir(a.dir.path()),
        );
        run_ok(
            Command::new(&py)
                .arg(py_verifier("hex_verify.py"))
                .args([
                    embedded_name(hex).as_str(),
                    "--ecdsa-p256",
                    EC,
                    "--mldsa65",
                    PQ,
                ])
                .current_dir(a.dir.path()),
        );
    }
    let signed_hex = embedded_name(hex);
    judge(
        &a,
        "srec_cmp",
        &[
            hex,
            "-Intel",
            &signed_hex,
            "-Intel",
            "-crop",
            "-over",
            hex,
            "-Intel",
        ],
    );
    for d in [dfuse, dfu11] {
        judge(&a, "dfu-suffix", &["-c", &embedded_name(d)]);
    }
    if let Some(r) = judge(&a, "dfuse-pack", &["-d", &embedded_name(dfuse)]) {
        assert!(!r.text().contains("ERROR"), "{}", r.text());
    }

    // A hash-locally signed image verifies the same as an uploaded one, and its provenance does
    // not vouch for a different image: re-sign the .bin by upload and swap the provenances.
    a.cli_ok(&["sign", "-p", "widget", "-o", "up.bin", bin]);
    std::fs::copy(
        a.path(&format!("{}.intoto.jsonl", embedded_name(bin))),
        a.path("swapped.intoto.jsonl"),
    )
    .unwrap();
    let mut v = vec![
        "verify",
        "up.bin",
        "-k",
        EC,
        "-k",
        PQ,
        "--provenance",
        "swapped.intoto.jsonl",
    ];
    v.extend(provenance_args());
    let r = a.cli(&v);
    assert!(
        !r.ok(),
        "a provenance for other signatures was accepted: {}",
        r.text()
    );
    assert!(r.text().contains("subject"), "{}", r.text());
    a.assert_alive();
}

#[test]
fn hash_locally_efi_passes_sbverify_and_osslsigncode() {
    let a = start_with_keys("", "");
    let efi = a.put_fixture("efi/hello.efi");
    a.cli_ok(&["sign", "-p", "uefi", "--hash-locally", &efi]);
    let signed = embedded_name(&efi);
    judge(&a, "sbverify", &["--cert", UEFI_CERT, &signed]);
    judge(
        &a,
        "osslsigncode",
        &["verify", "-CAfile", UEFI_CERT, "-in", &signed],
    );
    // The PQ half travels in the detached document next to it.
    verify_with_provenance(&a, &[&signed], [UEFI_CERT, UEFI_PQ]);
}

#[test]
fn hash_locally_refusals_are_clear_and_audited() {
    let clients = format!(
        "[[client]]\nname = \"reader\"\ntoken_sha256 = \"{}\"\nroles = {{ \"widget\" = [\"factory\"] }}\n\
         [[client]]\nname = \"approver\"\ntoken_sha256 = \"{}\"\nroles = {{ \"secure\" = [\"release-approver\"] }}\n\
         [[product]]\nname = \"secure\"\nformats = [\"raw\"]\n\
         approvals = {{ required = 1, of_role = \"release-approver\" }}\n",
        sha256_hex(b"reader-token"),
        sha256_hex(b"approver-token")
    );
    let a = Appliance::start_with_products("", &clients, &["secure"]);
    a.export_keys("widget");
    let bin = a.put_fixture("raw/sample.bin");
    let denies = |a: &Appliance| -> usize {
        a.sql("select count(*) from audit_log where decision = 'deny'")
            .parse()
            .unwrap()
    };
    // A client without the submitter role: same answer as an unknown product.
    let d0 = denies(&a);
    let r = a.cli_as(
        "reader-token",
        &["sign", "-p", "widget", "--hash-locally", &bin],
    );
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("404"), "{}", r.text());
    assert_eq!(denies(&a), d0 + 1);
    // A format the product does not accept.
    let r = a.cli(&["sign", "-p", "uefi", "--hash-locally", &bin]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("does not accept raw"), "{}", r.text());
    // A product under an M-of-N policy: approvals bind to an image, so digests are refused.
    let d1 = denies(&a);
    let r = a.cli(&["sign", "-p", "secure", "--hash-locally", &bin]);
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains("approval"), "{}", r.text());
    assert_eq!(denies(&a), d1 + 1);
    a.assert_alive();
}
