//! End to end on a PKCS#11 3.2 token: fwseald configured with kryoptic (built by
//! `cargo xtask kryoptic`) creates every key inside the token — ECDSA, RSA and, natively,
//! ML-DSA-65 — and what it signs passes the stock judges. Skipped with a message when the module
//! is absent, unless `FWSEAL_REQUIRE_JUDGES=1`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fwseal_hsm::cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use fwseal_hsm::cryptoki::session::UserType;
use fwseal_hsm::cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::process::Command;

fn module() -> Option<PathBuf> {
    let p = std::env::var_os("FWSEAL_KRYOPTIC_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/kryoptic/libkryoptic_pkcs11.so"));
    if p.is_file() {
        return Some(p);
    }
    assert!(
        !judges_required(),
        "{} missing (FWSEAL_REQUIRE_JUDGES=1): run `cargo xtask kryoptic`",
        p.display()
    );
    eprintln!("SKIP: no kryoptic PKCS#11 3.2 module at {}", p.display());
    None
}

#[test]
fn native_pq_keys_on_a_pkcs11_3_2_token_sign_what_the_judges_accept() {
    let Some(module) = module() else { return };
    // A fresh kryoptic token, initialised over PKCS#11 as an operator would.
    let tok = tempfile::tempdir().unwrap();
    let conf = tok.path().join("kryoptic.conf");
    std::fs::write(
        &conf,
        format!(
            "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
            tok.path().join("token.sql").display()
        ),
    )
    .unwrap();
    std::env::set_var("KRYOPTIC_CONF", &conf);
    std::env::set_var("FWSEAL_NATIVE_PIN", "native-user-pin");
    {
        let p = Pkcs11::new(&module).unwrap();
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = *p.get_slots_with_token().unwrap().first().unwrap();
        let so = AuthPin::new("native-so-pin".into());
        p.init_token(slot, &so, "fwseal-native").unwrap();
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::So, Some(&so)).unwrap();
        s.init_pin(&AuthPin::new("native-user-pin".into())).unwrap();
        s.logout().unwrap();
        drop(s);
        p.finalize().unwrap();
    }
    let hsm = format!(
        "[hsm]\nmodule = \"{}\"\ntoken_label = \"fwseal-native\"\npin_env = \"FWSEAL_NATIVE_PIN\"\n",
        module.display()
    );
    let a = Appliance::start_on(&hsm, "", "", &[]);
    for p in ["widget", "uefi", "fwseal-appliance"] {
        a.export_keys(p);
    }
    // The PQ keys are native: the registry and `keys list` say so.
    let list = run_ok(
        Command::new(daemon_bin())
            .arg("-c")
            .arg(a.path("fwseal.toml"))
            .args(["keys", "list"]),
    );
    let pq_lines: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.contains("ml-dsa-65"))
        .collect();
    assert_eq!(pq_lines.len(), 3, "{}", list.stdout);
    assert!(
        pq_lines.iter().all(|l| l.trim_end().ends_with("native")),
        "{}",
        list.stdout
    );

    let mut k = vec!["-k", EC, "-k", PQ];
    k.extend(provenance_args());
    // MCUboot: imgtool checks the classical half, fwseal verify both and the provenance.
    let img = a.put_fixture("mcuboot/unsigned-h200.img");
    a.cli_ok(&["sign", "-p", "widget", &img]);
    let signed = embedded_name(&img);
    let mut args = vec!["verify", signed.as_str()];
    args.extend(&k);
    let r = a.cli_ok(&args);
    assert!(r.stdout.contains("OK provenance"), "{}", r.text());
    judge(&a, "imgtool", &["verify", "-k", EC, &signed]);
    judge_provenance(&a, &format!("{signed}.intoto.jsonl"), &signed);
    // A raw image checked by the independent pyca verifier (ML-DSA-65 made in the token).
    let bin = a.put_fixture("raw/sample.bin");
    a.cli_ok(&["sign", "-p", "widget", &bin]);
    if let Some(py) = tool("python3") {
        run_ok(
            Command::new(py)
                .arg(py_verifier("sigblock.py"))
                .args([
                    "--format",
                    "raw",
                    "--require-both",
                    "--image",
                    &embedded_name(&bin),
                ])
                .args(["--key", EC, "--key", PQ])
                .current_dir(a.dir.path()),
        );
    }
    // Authenticode with the RSA-3072 key in the token.
    let efi = a.put_fixture("efi/hello.efi");
    a.cli_ok(&["sign", "-p", "uefi", &efi]);
    judge(&a, "sbverify", &["--cert", UEFI_CERT, &embedded_name(&efi)]);
    a.assert_alive();
}
