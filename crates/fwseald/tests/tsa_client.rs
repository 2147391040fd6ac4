//! fwseald's RFC 3161 client end to end (issue 13): a real `fwseald` whose `[tsa]` points at a
//! TSA fwseal did not write (`tests/tsa/openssl_tsa_server.py`, which answers every query with
//! `openssl ts -reply`), the `fwseal` CLI, and `openssl ts -verify` / `osslsigncode` as the
//! outside judges of every token. Also the bundle's `timestamps[]` (`formats/log.md` §7).
//!
//! Run with `FWSEAL_REQUIRE_JUDGES=1 cargo test -p fwseald --test tsa_client`.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const KEYS_JSON: &str = "appliance-keys.json";
/// The TSA policy (not one openssl.cnf names, so `openssl ts -text` prints it numerically).
const POLICY: &str = "1.3.6.1.4.1.99999.7";

/// A loopback TSA run by `openssl ts -reply` (ECDSA P-256 key, self-signed certificate with
/// the critical timeStamping EKU, made by `openssl req`). Killed on drop.
struct Tsa {
    /// Holds the key, certificate, config and serial file.
    _dir: tempfile::TempDir,
    /// The TSA certificate (PEM): the trust anchor.
    cert: PathBuf,
    url: String,
    child: Child,
}

impl Drop for Tsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Run {
    run(Command::new("openssl").args(args).current_dir(dir))
}

/// A TSA named `name`; `None` when openssl or python3 is missing (judges not required).
fn start_tsa(name: &str) -> Option<Tsa> {
    tool("openssl")?;
    let py = tool("python3")?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.pem",
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
            "-addext",
            "extendedKeyUsage=critical,timeStamping",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    assert!(r.ok(), "openssl req (TSA certificate): {}", r.text());
    std::fs::write(d.join("serial"), "01\n").unwrap();
    let cnf = format!(
        "[tsa]\ndefault_tsa = tsa1\n[tsa1]\ndir = {dir}\nserial = $dir/serial\n\
         signer_cert = $dir/tsa.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
         default_policy = {POLICY}\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n\
         ordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
        dir = d.display()
    );
    std::fs::write(d.join("tsa.cnf"), cnf).unwrap();
    let mut child = Command::new(py)
        .arg(repo_root().join("tests/tsa/openssl_tsa_server.py"))
        .arg(d.join("tsa.cnf"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn openssl_tsa_server.py");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("TSA server printed {line:?}, not a port"));
    Some(Tsa {
        cert: d.join("tsa.pem"),
        url: format!("http://127.0.0.1:{port}/"),
        _dir: dir,
        child,
    })
}

/// A URL nothing listens on (a port bound and released).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/")
}

/// The `[tsa]` section.
fn tsa_section(urls: &[&str], cert: &Path, mode: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "[tsa]\nurls = [{}]\ntrusted_certs = [{:?}]\nmode = {mode:?}\ntimeout_ms = 10000\n",
        urls.join(", "),
        cert.display().to_string()
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// `GET path` as the `ci` client: (status, body).
fn get(a: &Appliance, path: &str) -> (u16, Vec<u8>) {
    let mut r = agent()
        .get(&format!("{}{path}", a.url))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap_or_default())
}

/// `POST /v1/products/{product}/sign` with `body` as the `ci` client: (status, JSON answer).
fn post_sign(a: &Appliance, product: &str, body: &[u8]) -> (u16, Value) {
    let mut r = agent()
        .post(&format!("{}/v1/products/{product}/sign", a.url))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn read_json(a: &Appliance, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(a.path(name)).unwrap()).unwrap()
}

fn write_json(a: &Appliance, name: &str, v: &Value) {
    std::fs::write(a.path(name), serde_json::to_vec(v).unwrap()).unwrap();
}

/// The extra of the allowed `sign` record of artifact `id`.
fn sign_extra(a: &Appliance, id: &str) -> Value {
    let rows = a.sql("select extra from audit_log where action = 'sign' and decision = 'allow'");
    rows.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|x| x["artifact"] == id)
        .unwrap_or_else(|| panic!("no sign record for {id} in:\n{rows}"))
}

/// The outside judge: `openssl ts -verify -data <data> -in <token> -token_in -CAfile <ca>`.
fn openssl_verifies(dir: &Path, tag: &str, data: &[u8], token: &[u8], ca: &Path) -> bool {
    let df = format!("{tag}.data");
    let tf = format!("{tag}.tok");
    std::fs::write(dir.join(&df), data).unwrap();
    std::fs::write(dir.join(&tf), token).unwrap();
    let r = openssl(
        dir,
        &[
            "ts",
            "-verify",
            "-data",
            &df,
            "-in",
            &tf,
            "-token_in",
            "-CAfile",
            ca.to_str().unwrap(),
        ],
    );
    r.ok() && r.stdout.contains("Verification: OK")
}

/// `openssl ts -reply -in <token> -token_in -text`.
fn token_text(dir: &Path, tag: &str, token: &[u8]) -> String {
    let tf = format!("{tag}.tok");
    std::fs::write(dir.join(&tf), token).unwrap();
    let r = openssl(dir, &["ts", "-reply", "-in", &tf, "-token_in", "-text"]);
    assert!(r.ok(), "openssl ts -reply -text: {}", r.text());
    r.stdout
}

/// "2026-12-03T08:42:24Z" as `openssl ts -text` prints it: "Dec  3 08:42:24 2026 GMT".
fn openssl_time(rfc3339: &str) -> String {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (date, time) = rfc3339.trim_end_matches('Z').split_once('T').unwrap();
    let p: Vec<&str> = date.split('-').collect();
    let month = M[p[1].parse::<usize>().unwrap() - 1];
    let day: u32 = p[2].parse().unwrap();
    format!("{month} {day:>2} {time} {} GMT", p[0])
}

/// The line of `openssl ts -text` output starting with `key`.
fn text_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
        .trim()
}

/// A detached document's signatures and tokens: (covers, signature bytes, token), one per
/// token, each token naming a signature of the document.
fn doc_tokens(doc: &Value) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let sigs = doc["signatures"].as_array().unwrap();
    doc["timestamps"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|t| {
            let s = sigs
                .iter()
                .find(|s| s["alg"] == t["alg"] && s["key_id"] == t["key_id"])
                .unwrap_or_else(|| panic!("token {t} names no signature of the document"));
            (
                format!(
                    "image:{}:{}",
                    t["alg"].as_str().unwrap(),
                    t["key_id"].as_str().unwrap()
                ),
                B64.decode(s["bytes"].as_str().unwrap()).unwrap(),
                B64.decode(t["token"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The provenance's DSSE signatures and their tokens from the signing record: (covers, decoded
/// DSSE sig, token).
fn provenance_tokens(envelope: &Value, extra: &Value) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let sigs = envelope["signatures"].as_array().unwrap();
    extra["provenance_timestamps"]
        .as_array()
        .unwrap_or_else(|| panic!("no provenance_timestamps in {extra}"))
        .iter()
        .map(|t| {
            let s = sigs
                .iter()
                .find(|s| s["keyid"] == t["key_id"])
                .unwrap_or_else(|| panic!("token {t} names no DSSE signature"));
            (
                format!(
                    "provenance:{}:{}",
                    t["alg"].as_str().unwrap(),
                    t["key_id"].as_str().unwrap()
                ),
                B64.decode(s["sig"].as_str().unwrap()).unwrap(),
                B64.decode(t["token"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// Every token of one signing, judged: each passes `openssl ts -verify` over the bytes it
/// covers and fails with one flipped byte of them; the record's `extra.timestamps` has exactly
/// one entry per token whose gen_time, serial, policy, TSA and token SHA-256 are the token's
/// (as `openssl ts -text` reads it). Returns the number of tokens.
fn judge_signing(
    a: &Appliance,
    tsa: &Tsa,
    id: &str,
    extra: &Value,
    doc: &Value,
    envelope_file: &str,
    n_sigs: usize,
) -> usize {
    let d = a.dir.path();
    let env: Value = serde_json::from_str(
        std::fs::read_to_string(a.path(envelope_file))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut all = doc_tokens(doc);
    assert_eq!(all.len(), n_sigs, "{id}: one token per image signature");
    let prov = provenance_tokens(&env, extra);
    assert_eq!(prov.len(), 2, "{id}: one token per DSSE signature");
    all.extend(prov);
    let summary = extra["timestamps"]
        .as_array()
        .unwrap_or_else(|| panic!("{id}: no extra.timestamps in {extra}"));
    assert_eq!(summary.len(), all.len(), "{id}: {extra}");
    for (i, (covers, data, token)) in all.iter().enumerate() {
        let tag = format!("{id}-{i}");
        assert!(
            openssl_verifies(d, &tag, data, token, &tsa.cert),
            "{id}: openssl ts -verify refused the token over {covers}"
        );
        let mut bad = data.clone();
        bad[data.len() / 2] ^= 1;
        assert!(
            !openssl_verifies(d, &format!("{tag}-bad"), &bad, token, &tsa.cert),
            "{id}: openssl ts -verify accepted the {covers} token over a flipped signature"
        );
        let e = summary
            .iter()
            .find(|e| e["covers"] == covers.as_str())
            .unwrap_or_else(|| panic!("{id}: no audit entry covers {covers}: {extra}"));
        assert_eq!(e["token_sha256"], sha256_hex(token), "{covers}");
        let text = token_text(d, &tag, token);
        assert_eq!(
            text_field(&text, "Time stamp:"),
            openssl_time(e["gen_time"].as_str().unwrap()),
            "{covers}: gen_time"
        );
        let serial = text_field(&text, "Serial number:").trim_start_matches("0x");
        assert_eq!(
            serial.trim_start_matches('0').to_lowercase(),
            e["serial"].as_str().unwrap().trim_start_matches('0'),
            "{covers}: serial"
        );
        assert_eq!(text_field(&text, "Policy OID:"), POLICY);
        assert_eq!(e["policy"], POLICY);
        assert!(
            e["tsa"].as_str().unwrap().contains("openssl e2e TSA"),
            "{covers}: tsa {}",
            e["tsa"]
        );
    }
    all.len()
}

/// Lines of `fwseal verify` output that report a verified timestamp.
fn verified_stamps(r: &Run) -> usize {
    r.stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("timestamp ") && l.ends_with("(verified)"))
        .count()
}

/// Flip one byte near the end of the base64 DER token (inside its signature value).
fn tamper_token(b64: &str) -> String {
    let mut t = B64.decode(b64).unwrap();
    let n = t.len();
    t[n - 3] ^= 0x01;
    B64.encode(t)
}

/// 1a–c, 3: a `.efi`, raw (detached and embedded) and MCUboot image signed through the daemon
/// with `[tsa]` at an openssl TSA: every token passes the outside judges, the audit record
/// describes each, `fwseal verify --tsa-cert` passes (and fails with a tampered token or
/// another TSA's certificate), and the bundles carry the tokens and verify with them.
#[test]
fn daemon_timestamps_every_signature_and_outside_judges_accept_them() {
    let Some(tsa) = start_tsa("openssl e2e TSA") else {
        return;
    };
    let Some(other) = start_tsa("another TSA") else {
        return;
    };
    let a = start_with_keys(&tsa_section(&[&tsa.url], &tsa.cert, "required"), "");
    let tsa_pem = tsa.cert.to_str().unwrap();
    let other_pem = other.cert.to_str().unwrap();

    // (a) .efi: the classical token is the Authenticode RFC 3161 countersignature.
    let efi = a.put_fixture("efi/hello.efi");
    let efi_id = a.sign_id(&["-p", "uefi", &efi]);
    let signed_efi = embedded_name(&efi);
    if let Some(t) = tool("osslsigncode") {
        let r = run(Command::new(t)
            .args(["verify", "-CAfile", UEFI_CERT, "-TSA-CAfile", tsa_pem])
            .args(["-in", &signed_efi])
            .current_dir(a.dir.path()));
        assert!(r.ok(), "osslsigncode: {}", r.text());
        assert!(
            r.text()
                .contains("Timestamp Server Signature verification: ok"),
            "osslsigncode did not verify the timestamp:\n{}",
            r.text()
        );
        // Another TSA's certificate as the anchor: the countersignature is not trusted.
        let r = run(Command::new(tool("osslsigncode").unwrap())
            .args(["verify", "-CAfile", UEFI_CERT, "-TSA-CAfile", other_pem])
            .args(["-in", &signed_efi])
            .current_dir(a.dir.path()));
        assert!(
            !r.ok()
                || !r
                    .text()
                    .contains("Timestamp Server Signature verification: ok"),
            "osslsigncode trusted the token under another TSA:\n{}",
            r.text()
        );
    }
    let mut k = vec!["-k", UEFI_CERT, "-k", UEFI_PQ];
    k.extend(provenance_args());
    let mut args = vec!["verify", signed_efi.as_str(), "--tsa-cert", tsa_pem];
    args.extend(&k);
    let r = a.cli_ok(&args);
    // The embedded RSA signature (countersignature) and the document's RSA and ML-DSA halves.
    assert_eq!(verified_stamps(&r), 3, "{}", r.text());
    assert!(r.stdout.contains("OK provenance"), "{}", r.text());
    let efi_doc_name = format!("{signed_efi}.sig.json");
    let efi_doc = read_json(&a, &efi_doc_name);
    // The token in the PKCS#7 is the document's token of the RSA signature.
    let n = judge_signing(
        &a,
        &tsa,
        &efi_id,
        &sign_extra(&a, &efi_id),
        &efi_doc,
        &format!("{signed_efi}.intoto.jsonl"),
        2,
    );
    assert_eq!(n, 4);
    // Without --tsa-cert the tokens are shown, not trusted; with another TSA's, refused.
    let mut args = vec!["verify", signed_efi.as_str()];
    args.extend(&k);
    let r = a.cli_ok(&args);
    assert!(r.stdout.contains("NOT verified"), "{}", r.text());
    let mut args = vec!["verify", signed_efi.as_str(), "--tsa-cert", other_pem];
    args.extend(&k);
    let r = a.cli(&args);
    assert_eq!(r.code, Some(1), "another TSA's certificate: {}", r.text());

    // (b) raw, detached: both halves' tokens in the document.
    let bin = a.put_fixture("raw/sample.bin");
    let bin_id = a.sign_id(&["-p", "widget", "--detached", &bin]);
    let bin_doc_name = format!("{bin}.sig.json");
    let bin_doc = read_json(&a, &bin_doc_name);
    assert_eq!(
        judge_signing(
            &a,
            &tsa,
            &bin_id,
            &sign_extra(&a, &bin_id),
            &bin_doc,
            &format!("{bin}.intoto.jsonl"),
            2
        ),
        4
    );
    let mut k = vec!["-k", EC, "-k", PQ];
    k.extend(provenance_args());
    let verify_doc = |doc: &str, tsa_cert: &str| {
        let mut args = vec![
            "verify",
            bin.as_str(),
            "--detached",
            doc,
            "--tsa-cert",
            tsa_cert,
        ];
        args.extend(&k);
        args.extend(["--provenance", "sample.bin.intoto.jsonl"]);
        a.cli(&args)
    };
    let r = verify_doc(&bin_doc_name, tsa_pem);
    assert!(r.ok(), "{}", r.text());
    assert_eq!(verified_stamps(&r), 2, "{}", r.text());
    // A tampered token, and the two tokens swapped between the signatures: refused.
    let mut bad = bin_doc.clone();
    bad["timestamps"][0]["token"] =
        tamper_token(bad["timestamps"][0]["token"].as_str().unwrap()).into();
    write_json(&a, "tampered.sig.json", &bad);
    let r = verify_doc("tampered.sig.json", tsa_pem);
    assert_eq!(r.code, Some(1), "tampered token accepted: {}", r.text());
    assert!(r.stderr.contains("timestamp"), "{}", r.text());
    let mut swapped = bin_doc.clone();
    let t0 = swapped["timestamps"][0]["token"].clone();
    swapped["timestamps"][0]["token"] = swapped["timestamps"][1]["token"].clone();
    swapped["timestamps"][1]["token"] = t0;
    write_json(&a, "swapped.sig.json", &swapped);
    let r = verify_doc("swapped.sig.json", tsa_pem);
    assert_eq!(r.code, Some(1), "swapped tokens accepted: {}", r.text());
    let r = verify_doc(&bin_doc_name, other_pem);
    assert_eq!(r.code, Some(1), "another TSA accepted: {}", r.text());

    // (b) raw embedded and MCUboot embedded: the image is unchanged by the TSA (no place for
    // a token); the artifact's detached document carries both tokens.
    let mut embedded = Vec::new();
    for (fixture, product) in [
        ("raw/sample.fw", "widget"),
        ("mcuboot/unsigned-h200.img", "widget"),
    ] {
        let input = a.put_fixture(fixture);
        let id = a.sign_id(&["-p", product, &input]);
        let signed = embedded_name(&input);
        let (st, body) = get(&a, &format!("/v1/artifacts/{id}/detached"));
        assert_eq!(st, 200);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            judge_signing(
                &a,
                &tsa,
                &id,
                &sign_extra(&a, &id),
                &doc,
                &format!("{signed}.intoto.jsonl"),
                2
            ),
            4,
            "{fixture}"
        );
        // The signed image verifies as before (its block has no place for a token, so
        // there is none to check: the tokens travel in the document and the bundle, below).
        let r = a.cli_ok(&[
            "verify",
            signed.as_str(),
            "--tsa-cert",
            tsa_pem,
            "-k",
            EC,
            "-k",
            PQ,
        ]);
        assert_eq!(verified_stamps(&r), 0, "{fixture}: {}", r.text());
        embedded.push((id, input));
    }

    // (3) Bundles: the image tokens (from the detached document) and the provenance tokens
    // (from the record) travel in the bundle and verify with --tsa-cert.
    let (st, keys) = get(&a, "/v1/appliance/keys");
    assert_eq!(st, 200);
    std::fs::write(a.path(KEYS_JSON), keys).unwrap();
    let fetch = |id: &str, dir: &str| -> (String, String) {
        let bundle = format!("{dir}/bundle.json");
        let r = a.cli_ok(&["--json", "fetch", id, "-o", dir, "--bundle", &bundle]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        (v["image"].as_str().unwrap().to_string(), bundle)
    };
    let verify_bundle = |image: &str, bundle: &str, tsa_cert: Option<&str>| {
        let mut args = vec!["verify", image, "--bundle", bundle, "--log-key", KEYS_JSON];
        if let Some(c) = tsa_cert {
            args.extend(["--tsa-cert", c]);
        }
        a.cli(&args)
    };
    let mut bundles = Vec::new();
    for (id, dir) in [
        (efi_id.as_str(), "b-efi"),
        (bin_id.as_str(), "b-bin"),
        (embedded[0].0.as_str(), "b-fw"),
    ] {
        let (image, bundle) = fetch(id, dir);
        let b = read_json(&a, &bundle);
        let ts = b["timestamps"].as_array().unwrap();
        // Two image, two provenance tokens, and the token of the tree head (signed and
        // timestamped on demand for this bundle).
        assert_eq!(ts.len(), 5, "{id}: {}", b["timestamps"]);
        assert_eq!(ts[4]["covers"], "checkpoint", "{id}: {}", b["timestamps"]);
        let covers: Vec<&str> = ts.iter().map(|t| t["covers"].as_str().unwrap()).collect();
        assert_eq!(
            covers.iter().filter(|c| c.starts_with("image:")).count(),
            2,
            "{covers:?}"
        );
        assert_eq!(
            covers
                .iter()
                .filter(|c| c.starts_with("provenance:"))
                .count(),
            2,
            "{covers:?}"
        );
        // Each signature's bundle token is the record's, under the same covers.
        let extra = sign_extra(&a, id);
        for t in &ts[..4] {
            let sha = sha256_hex(&B64.decode(t["token"].as_str().unwrap()).unwrap());
            assert!(
                extra["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["covers"] == t["covers"] && e["token_sha256"] == sha.as_str()),
                "{id}: {t} is not the record's"
            );
        }
        let r = verify_bundle(&image, &bundle, Some(tsa_pem));
        assert!(r.ok(), "{id}: {}", r.text());
        let ok = r
            .stdout
            .lines()
            .filter(|l| l.starts_with("OK bundle timestamp over "))
            .count();
        assert_eq!(ok, 5, "{}", r.text());
        assert!(r.stdout.contains("genTime 20"), "{}", r.text());
        // Without --tsa-cert: listed as unverified, not accepted silently.
        let r = verify_bundle(&image, &bundle, None);
        assert!(r.ok(), "{id}: {}", r.text());
        assert_eq!(
            r.stdout
                .lines()
                .filter(|l| l.starts_with("UNVERIFIED bundle timestamp over ")
                    && l.contains("NOT verified"))
                .count(),
            5,
            "{}",
            r.text()
        );
        // Another TSA's certificate: refused.
        let r = verify_bundle(&image, &bundle, Some(other_pem));
        assert_eq!(r.code, Some(1), "{id}: {}", r.text());
        bundles.push((image, bundle, b));
    }
    let (image, _, b) = &bundles[1];
    let forge = |name: &str, f: &dyn Fn(&mut Value), why: &str| {
        let mut d = b.clone();
        f(&mut d);
        write_json(&a, name, &d);
        for cert in [Some(tsa_pem), None] {
            let r = verify_bundle(image, name, cert);
            assert_eq!(r.code, Some(1), "{name} accepted: {}", r.text());
            assert!(r.stderr.contains(why), "{name}: {}", r.text());
        }
    };
    // A token swapped between two covers (image/image and image/provenance).
    forge(
        "swap-image.json",
        &|d| {
            let t = d["timestamps"][0]["token"].clone();
            d["timestamps"][0]["token"] = d["timestamps"][1]["token"].clone();
            d["timestamps"][1]["token"] = t;
        },
        "timestamps[0]",
    );
    forge(
        "swap-prov.json",
        &|d| {
            let t = d["timestamps"][1]["token"].clone();
            d["timestamps"][1]["token"] = d["timestamps"][3]["token"].clone();
            d["timestamps"][3]["token"] = t;
        },
        "timestamps[1]",
    );
    // A mutated token.
    forge(
        "mutated.json",
        &|d| {
            d["timestamps"][2]["token"] =
                tamper_token(d["timestamps"][2]["token"].as_str().unwrap()).into();
        },
        "timestamps[2]",
    );
    // An unknown covers value, and an image token relabelled as the checkpoint's: its imprint
    // is not the note's.
    forge(
        "unknown.json",
        &|d| d["timestamps"][0]["covers"] = "firmware:everything".into(),
        "unknown covers",
    );
    forge(
        "relabelled.json",
        &|d| d["timestamps"][0]["covers"] = "checkpoint".into(),
        "imprint",
    );
    // A token for a signature the detached document does not have.
    forge(
        "no-such-sig.json",
        &|d| {
            let c = d["timestamps"][0]["covers"].as_str().unwrap().to_string();
            let (head, _) = c.rsplit_once(':').unwrap();
            d["timestamps"][0]["covers"] = format!("{head}:{}", "00".repeat(32)).into();
        },
        "timestamps[0]",
    );
    a.assert_alive();
}

fn denies(a: &Appliance) -> usize {
    a.sql("select count(*) from audit_log where decision = 'deny'")
        .parse()
        .unwrap()
}

fn allowed_signs(a: &Appliance) -> usize {
    a.sql("select count(*) from audit_log where action = 'sign' and decision = 'allow'")
        .parse()
        .unwrap()
}

/// 1d: `mode = "required"` and the TSA down: the signing is refused (503 `tsa-unavailable`),
/// audited once per attempt with a reason naming the TSA, and nothing is stored or fetchable.
#[test]
fn required_mode_with_the_tsa_down_refuses_and_releases_nothing() {
    let Some(tsa) = start_tsa("openssl e2e TSA") else {
        return;
    };
    let dead = dead_url();
    let a = start_with_keys(&tsa_section(&[&dead], &tsa.cert, "required"), "");
    for (product, fixture) in [("widget", "raw/sample.bin"), ("uefi", "efi/hello.efi")] {
        let input = a.put_fixture(fixture);
        let files = a.artifact_count();
        let deny = denies(&a);
        let r = a.cli(&["sign", "-p", product, &input]);
        assert_eq!(r.code, Some(1), "{fixture}: {}", r.text());
        assert!(
            r.stderr.contains("503") && r.stderr.contains("tsa-unavailable"),
            "{fixture}: {}",
            r.text()
        );
        assert!(!a.path(&embedded_name(&input)).exists(), "{fixture}");
        assert_eq!(denies(&a), deny + 1, "{fixture}: one deny record");
        let reason = a.sql(
            "select reason from audit_log where decision = 'deny' and action = 'sign' \
             order by seq desc limit 1",
        );
        assert!(
            reason.contains("TSA") && reason.contains(&dead),
            "{fixture}: the reason does not name the TSA: {reason}"
        );
        assert_eq!(a.artifact_count(), files, "{fixture}: artifact stored");

        // The same over HTTP: 503 and the problem document.
        let (st, p) = post_sign(&a, product, &std::fs::read(a.path(&input)).unwrap());
        assert_eq!(st, 503, "{p}");
        assert_eq!(p["code"], "tsa-unavailable", "{p}");
        assert_eq!(p["status"], 503, "{p}");
        assert!(
            p["type"].as_str().unwrap().ends_with("/tsa-unavailable"),
            "{p}"
        );
        assert_eq!(denies(&a), deny + 2, "{fixture}");
        assert_eq!(a.artifact_count(), files, "{fixture}");

        // Client-side hashing is refused the same way: no signature leaves untimestamped.
        let r = a.cli(&[
            "sign",
            "-p",
            product,
            "--hash-locally",
            "--detached",
            &input,
        ]);
        assert_eq!(r.code, Some(1), "{fixture}: {}", r.text());
        assert!(
            r.stderr.contains("503") && r.stderr.contains("tsa-unavailable"),
            "{fixture}: {}",
            r.text()
        );
        assert!(!a.path(&format!("{input}.sig.json")).exists(), "{fixture}");
        assert_eq!(denies(&a), deny + 3, "{fixture}");
    }
    assert_eq!(allowed_signs(&a), 0);
    for product in ["widget", "uefi"] {
        let (st, body) = get(&a, &format!("/v1/products/{product}/artifacts"));
        assert_eq!(st, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["artifacts"], serde_json::json!([]), "{product}: {v}");
    }
    a.assert_alive();
}

/// 1d: `mode = "best-effort"` and the TSA down: signed (201) without tokens, the image
/// verifies, and the audit record says why each group of signatures has none.
#[test]
fn best_effort_mode_with_the_tsa_down_signs_and_records_the_absence() {
    let Some(tsa) = start_tsa("openssl e2e TSA") else {
        return;
    };
    let dead = dead_url();
    let a = start_with_keys(&tsa_section(&[&dead], &tsa.cert, "best-effort"), "");
    let bin = a.put_fixture("raw/sample.bin");
    let (st, resp) = post_sign(&a, "widget", &std::fs::read(a.path(&bin)).unwrap());
    assert_eq!(st, 201, "{resp}");
    let http_id = resp["artifact_id"].as_str().unwrap().to_string();
    let id = a.sign_id(&["-p", "widget", "--detached", &bin]);
    let mut args = vec![
        "verify",
        bin.as_str(),
        "--tsa-cert",
        tsa.cert.to_str().unwrap(),
        "-k",
        EC,
        "-k",
        PQ,
    ];
    args.extend(provenance_args());
    let r = a.cli_ok(&args);
    assert!(!r.stdout.contains("timestamp"), "{}", r.text());
    let doc = read_json(&a, &format!("{bin}.sig.json"));
    assert!(doc.get("timestamps").is_none(), "{doc}");
    for id in [http_id, id] {
        let extra = sign_extra(&a, &id);
        let ts = extra["timestamps"].as_array().unwrap();
        assert_eq!(ts.len(), 2, "{extra}");
        for (e, covers) in ts.iter().zip(["image", "provenance"]) {
            assert_eq!(e["covers"], covers, "{extra}");
            let why = e["missing"].as_str().unwrap();
            assert!(
                why.contains("TSA unavailable") && why.contains(&dead),
                "{why}"
            );
        }
        assert!(extra.get("provenance_timestamps").is_none(), "{extra}");
    }
    a.assert_alive();
}

/// 1d: failover — the first URL dead, the second alive: every token is the second's.
#[test]
fn failover_to_the_second_tsa() {
    let Some(tsa) = start_tsa("openssl e2e TSA") else {
        return;
    };
    let dead = dead_url();
    let a = start_with_keys(&tsa_section(&[&dead, &tsa.url], &tsa.cert, "required"), "");
    let bin = a.put_fixture("raw/sample.bin");
    let id = a.sign_id(&["-p", "widget", "--detached", &bin]);
    let doc = read_json(&a, &format!("{bin}.sig.json"));
    assert_eq!(
        judge_signing(
            &a,
            &tsa,
            &id,
            &sign_extra(&a, &id),
            &doc,
            &format!("{bin}.intoto.jsonl"),
            2
        ),
        4
    );
    a.assert_alive();
}

/// A TSA that answers, but whose certificate is not among `trusted_certs`: its tokens are not
/// evidence, so `mode = "required"` refuses exactly as if it were down.
#[test]
fn a_tsa_outside_trusted_certs_is_refused() {
    let (Some(trusted), Some(rogue)) = (start_tsa("openssl e2e TSA"), start_tsa("rogue TSA"))
    else {
        return;
    };
    let a = start_with_keys(&tsa_section(&[&rogue.url], &trusted.cert, "required"), "");
    let bin = a.put_fixture("raw/sample.bin");
    let files = a.artifact_count();
    let (st, p) = post_sign(&a, "widget", &std::fs::read(a.path(&bin)).unwrap());
    assert_eq!(st, 503, "{p}");
    assert_eq!(p["code"], "tsa-unavailable", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("not trusted"), "{p}");
    assert_eq!(a.artifact_count(), files);
    assert_eq!(allowed_signs(&a), 0);
    assert_eq!(denies(&a), 1);
}

/// The `checkpoint-timestamp` records: (decision, extra), in log order.
fn checkpoint_stamps(a: &Appliance) -> Vec<(String, Value)> {
    a.sql(
        "select decision, extra from audit_log where action = 'checkpoint-timestamp' order by seq",
    )
    .lines()
    .map(|l| {
        let (d, x) = l.split_once('|').unwrap();
        (d.to_string(), serde_json::from_str(x).unwrap())
    })
    .collect()
}

/// The note texts of the signed tree heads of size `seq`.
fn notes_of_size(a: &Appliance, seq: u64) -> Vec<String> {
    a.sql(&format!(
        "select hex(note) from audit_checkpoints where seq = {seq} and note is not null"
    ))
    .lines()
    .map(|h| String::from_utf8(hex::decode(h).unwrap()).unwrap())
    .collect()
}

fn checkpoint_count(a: &Appliance) -> usize {
    a.sql("select count(*) from audit_checkpoints")
        .parse()
        .unwrap()
}

/// Checkpoint timestamps (`formats/timestamp.md`, "Checkpoint timestamps"): every tree head
/// that adds records gets a token over its note text, judged by `openssl ts -verify`; an idle
/// appliance does not stamp its own stamps; the bundle carries the token and verifies with it;
/// with the TSA gone, one deny record per outage and the checkpoints go on; a TSA given by a
/// config reload stamps again.
#[test]
fn checkpoints_are_timestamped_and_bundles_carry_the_token() {
    let Some(tsa) = start_tsa("checkpoint TSA") else {
        assert!(!judges_required(), "openssl and python3 are required");
        return;
    };
    let top = format!(
        "checkpoint_interval_secs = 1\n{}",
        tsa_section(&[&tsa.url], &tsa.cert, "best-effort")
    );
    let mut a = Appliance::start(&top, "");
    let input = a.put_fixture("raw/sample.bin");
    // `fwseal sign --bundle` writes IN.bundle.json (its tree head signed and stamped on demand).
    let id = a.sign_id(&["-p", "widget", "--detached", "--bundle", &input]);
    let signed_bundle = format!("{input}.bundle.json");
    let sb = read_json(&a, &signed_bundle);
    assert_eq!(sb["artifact"], id.as_str());
    let sign_seq: u64 = a
        .sql(&format!(
            "select seq from audit_log where action = 'sign' and extra like '%{id}%'"
        ))
        .parse()
        .unwrap();

    // A periodic tree head covering the signing is stamped; openssl accepts the token over
    // the exact note text the record names.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stamp = loop {
        let s = checkpoint_stamps(&a)
            .into_iter()
            .find(|(d, x)| d == "allow" && x["checkpoint_seq"].as_u64().unwrap() >= sign_seq);
        if let Some(s) = s {
            break s.1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint timestamp"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let size = stamp["checkpoint_seq"].as_u64().unwrap();
    let token = B64.decode(stamp["token"].as_str().unwrap()).unwrap();
    assert_eq!(stamp["covers"], "checkpoint");
    assert_eq!(stamp["token_sha256"], sha256_hex(&token));
    let note = notes_of_size(&a, size)
        .into_iter()
        .find(|n| sha256_hex(n.as_bytes()) == stamp["note_sha256"].as_str().unwrap())
        .expect("the stamped note is stored");
    let dir = a.dir.path().to_path_buf();
    assert!(openssl_verifies(
        &dir,
        "cp",
        note.as_bytes(),
        &token,
        &tsa.cert
    ));
    let mut other = note.clone().into_bytes();
    other[0] ^= 1;
    assert!(!openssl_verifies(&dir, "cp-bad", &other, &token, &tsa.cert));
    let text = token_text(&dir, "cp", &token);
    assert_eq!(
        openssl_time(stamp["gen_time"].as_str().unwrap()),
        text_field(&text, "Time stamp:"),
        "{text}"
    );

    // Idle: tree heads keep being signed, but a head that adds only stamps is not stamped.
    let wait_idle = || {
        let mut last = (checkpoint_stamps(&a).len(), checkpoint_count(&a));
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(500));
            let now = (checkpoint_stamps(&a).len(), checkpoint_count(&a));
            if now.0 == last.0 && now.1 >= last.1 + 3 {
                return now.0;
            }
            last = (now.0, last.1.min(now.1));
        }
        panic!("the stamps did not settle: {:?}", checkpoint_stamps(&a));
    };
    let settled = wait_idle();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        checkpoint_stamps(&a).len(),
        settled,
        "an idle appliance stamps its stamps"
    );

    // The bundle carries the checkpoint token for the note it proves against.
    let (st, keys) = get(&a, "/v1/appliance/keys");
    assert_eq!(st, 200);
    std::fs::write(a.path(KEYS_JSON), keys).unwrap();
    let out = a.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let out = out.display().to_string();
    let bundle = format!("{out}/bundle.json");
    let r = a.cli_ok(&["--json", "fetch", &id, "-o", &out, "--bundle", &bundle]);
    let image = serde_json::from_str::<Value>(&r.stdout).unwrap()["image"]
        .as_str()
        .unwrap()
        .to_string();
    let b = read_json(&a, &bundle);
    let cp_tokens: Vec<&Value> = b["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["covers"] == "checkpoint")
        .collect();
    assert_eq!(cp_tokens.len(), 1, "{}", b["timestamps"]);
    let cp_token = B64.decode(cp_tokens[0]["token"].as_str().unwrap()).unwrap();
    let cp_note = b["checkpoint"].as_str().unwrap();
    assert!(openssl_verifies(
        &dir,
        "bundle-cp",
        cp_note.as_bytes(),
        &cp_token,
        &tsa.cert
    ));
    let tsa_pem = tsa.cert.display().to_string();
    let r = a.cli_ok(&[
        "verify",
        &image,
        "--bundle",
        &bundle,
        "--log-key",
        KEYS_JSON,
        "--tsa-cert",
        &tsa_pem,
    ]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("OK bundle timestamp over checkpoint")),
        "{}",
        r.text()
    );
    // The bundle `sign --bundle` wrote verifies too, tree head token included.
    let r = a.cli_ok(&[
        "verify",
        &input,
        "--bundle",
        &signed_bundle,
        "--log-key",
        KEYS_JSON,
        "--tsa-cert",
        &tsa_pem,
    ]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("OK bundle timestamp over checkpoint")),
        "{}",
        r.text()
    );

    // The TSA goes away: checkpoints go on, one deny record for the outage however many
    // tree heads could not be stamped.
    let cert_copy = a.path("tsa-old.pem");
    std::fs::copy(&tsa.cert, &cert_copy).unwrap();
    drop(tsa);
    let before = checkpoint_stamps(&a).len();
    let cps = checkpoint_count(&a);
    for _ in 0..3 {
        a.cli_ok(&["list", "-p", "widget"]);
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(checkpoint_count(&a) >= cps + 3, "checkpoints stopped");
    let stamps = checkpoint_stamps(&a);
    let denies: Vec<&(String, Value)> = stamps[before..]
        .iter()
        .filter(|(d, _)| d == "deny")
        .collect();
    assert_eq!(stamps.len() - before, 1, "{:?}", &stamps[before..]);
    assert_eq!(denies.len(), 1);
    let reason = a.sql(
        "select reason from audit_log where action = 'checkpoint-timestamp' and decision = 'deny'",
    );
    assert!(reason.contains("no RFC 3161 timestamp"), "{reason}");

    // A new TSA by config reload: the next tree head is stamped again.
    let tsa2 = start_tsa("checkpoint TSA 2").unwrap();
    let cfg = std::fs::read_to_string(&a.config).unwrap();
    let old_section = cfg
        .lines()
        .skip_while(|l| *l != "[tsa]")
        .take(5)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(old_section.starts_with("[tsa]"), "{cfg}");
    let cfg = cfg.replace(
        &old_section,
        tsa_section(&[&tsa2.url], &tsa2.cert, "best-effort").trim_end(),
    );
    std::fs::write(&a.config, cfg).unwrap();
    a.sighup();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = checkpoint_stamps(&a);
        if let Some((_, x)) = s.last().filter(|(d, _)| d == "allow") {
            let t = B64.decode(x["token"].as_str().unwrap()).unwrap();
            let n = notes_of_size(&a, x["checkpoint_seq"].as_u64().unwrap())
                .into_iter()
                .find(|n| sha256_hex(n.as_bytes()) == x["note_sha256"].as_str().unwrap())
                .unwrap();
            assert!(openssl_verifies(&dir, "cp2", n.as_bytes(), &t, &tsa2.cert));
            assert!(!openssl_verifies(
                &dir,
                "cp2-old",
                n.as_bytes(),
                &t,
                &cert_copy
            ));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not stamped after the reload: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(a.stop());
}

/// The last hash-locally signing record's extra.
fn last_hash_locally_extra(a: &Appliance) -> Value {
    let row = a.sql(
        "select extra from audit_log where action = 'sign' and decision = 'allow' \
         and json_extract(extra, '$.hash_locally') = 1 order by seq desc limit 1",
    );
    serde_json::from_str(&row).unwrap_or_else(|e| panic!("{e}: {row:?}"))
}

/// `fwseal sign --hash-locally`: the daemon timestamps the signatures it makes for the client
/// exactly as for an uploaded image, and the client puts the tokens where the daemon would
/// (the detached document; `.efi`: the Authenticode countersignature). MCUboot's classical
/// half is signed in a second request: the tokens of both requests are kept.
#[test]
fn hash_locally_signatures_are_timestamped_too() {
    let Some(tsa) = start_tsa("openssl e2e TSA") else {
        return;
    };
    let a = start_with_keys(&tsa_section(&[&tsa.url], &tsa.cert, "required"), "");
    let tsa_pem = tsa.cert.to_str().unwrap();
    let d = a.dir.path();

    let bin = a.put_fixture("raw/sample.bin");
    a.cli_ok(&["sign", "-p", "widget", "--hash-locally", "--detached", &bin]);
    let doc = read_json(&a, &format!("{bin}.sig.json"));
    let extra = last_hash_locally_extra(&a);
    assert_eq!(
        judge_signing(
            &a,
            &tsa,
            "hl-bin",
            &extra,
            &doc,
            &format!("{bin}.intoto.jsonl"),
            2
        ),
        4
    );
    let r = a.cli_ok(&["verify", &bin, "--tsa-cert", tsa_pem, "-k", EC, "-k", PQ]);
    assert_eq!(verified_stamps(&r), 2, "{}", r.text());

    let img = a.put_fixture("mcuboot/unsigned-h200.img");
    a.cli_ok(&["sign", "-p", "widget", "--hash-locally", "--detached", &img]);
    let doc = read_json(&a, &format!("{img}.sig.json"));
    let toks = doc_tokens(&doc);
    assert_eq!(toks.len(), 2, "{doc}");
    for (i, (covers, data, token)) in toks.iter().enumerate() {
        assert!(
            openssl_verifies(d, &format!("hl-img-{i}"), data, token, &tsa.cert),
            "{covers}"
        );
    }
    let r = a.cli_ok(&["verify", &img, "--tsa-cert", tsa_pem, "-k", EC, "-k", PQ]);
    assert_eq!(verified_stamps(&r), 2, "{}", r.text());

    let efi = a.put_fixture("efi/hello.efi");
    a.cli_ok(&["sign", "-p", "uefi", "--hash-locally", &efi]);
    let signed = embedded_name(&efi);
    if let Some(t) = tool("osslsigncode") {
        let r = run(Command::new(t)
            .args(["verify", "-CAfile", UEFI_CERT, "-TSA-CAfile", tsa_pem])
            .args(["-in", &signed])
            .current_dir(d));
        assert!(
            r.ok()
                && r.text()
                    .contains("Timestamp Server Signature verification: ok"),
            "osslsigncode: {}",
            r.text()
        );
    }
    let r = a.cli_ok(&[
        "verify",
        &signed,
        "--tsa-cert",
        tsa_pem,
        "-k",
        UEFI_CERT,
        "-k",
        UEFI_PQ,
    ]);
    assert_eq!(verified_stamps(&r), 3, "{}", r.text());
    a.assert_alive();
}

/// A TSA front that forwards the first `n` queries to `upstream` and answers every later one
/// with HTTP 503: the TSA fails in the middle of a signing. Killed on drop.
struct FlakyTsa {
    url: String,
    child: Child,
}

impl Drop for FlakyTsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FLAKY_PY: &str = r#"
import http.server, sys, urllib.request
UP, N = sys.argv[1], int(sys.argv[2])
seen = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen += 1
        if seen > N:
            self.send_error(503)
            return
        req = urllib.request.Request(UP, data=body, headers={"Content-Type": "application/timestamp-query"})
        reply = urllib.request.urlopen(req, timeout=30).read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn flaky_tsa(upstream: &str, n: usize) -> FlakyTsa {
    let mut child = Command::new(tool("python3").unwrap())
        .args(["-c", FLAKY_PY, upstream, &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the flaky TSA");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    FlakyTsa {
        url: format!("http://127.0.0.1:{port}/"),
        child,
    }
}

/// Required mode, the TSA failing after the image's two tokens, at the provenance's: the
/// image, its document and provenance were already staged — the refusal leaves none of them
/// (published or staged), no allowed record, one deny.
#[test]
fn a_tsa_failing_mid_signing_leaves_nothing_behind() {
    let Some(tsa) = start_tsa("openssl e2e TSA") else {
        return;
    };
    let flaky = flaky_tsa(&tsa.url, 2);
    let a = start_with_keys(&tsa_section(&[&flaky.url], &tsa.cert, "required"), "");
    let bin = a.put_fixture("raw/sample.bin");
    let files = a.files_under("artifacts");
    let (st, p) = post_sign(&a, "widget", &std::fs::read(a.path(&bin)).unwrap());
    assert_eq!(st, 503, "{p}");
    assert_eq!(p["code"], "tsa-unavailable", "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("provenance"),
        "not refused at the provenance tokens: {p}"
    );
    assert_eq!(
        a.files_under("artifacts"),
        files,
        "a staged or published blob was left"
    );
    assert_eq!(allowed_signs(&a), 0);
    assert_eq!(denies(&a), 1);
    a.assert_alive();
}
