//! The expired-certificate case of `formats/timestamp.md` ("What a timestamp changes in
//! verification"), with `fwseal verify` as a user runs it: a `.efi` signed by a certificate
//! whose validity has ENDED verifies when its signature carries an RFC 3161 token whose
//! genTime lies inside that validity — made by `openssl ts -reply` run under libfaketime three
//! days in the past — and fails without the token, without `--tsa-cert`, or with a token made
//! now (after notAfter). osslsigncode judges the same images.
//!
//! Needs openssl and faketime (and osslsigncode as a second judge); a missing tool fails the
//! test under `FWSEAL_REQUIRE_JUDGES=1` and skips it otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fwseal_crypto::cert::{self, CertParams};
use fwseal_crypto::{soft::SoftKey, SigAlg, SigTimestamp, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Format, Mode, Request, SignOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: u64 = 86_400;

fn judges_required() -> bool {
    std::env::var("FWSEAL_REQUIRE_JUDGES").is_ok_and(|v| v == "1")
}

/// `Some(path)` if `name` is on PATH; otherwise panics (judges required) or returns None.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(p) = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return Some(p);
    }
    assert!(
        !judges_required(),
        "judge `{name}` is not installed (FWSEAL_REQUIRE_JUDGES=1)"
    );
    eprintln!("SKIP: judge `{name}` not installed");
    None
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn text(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Out {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `[faketime SPEC] openssl ARGS` in `dir`; must succeed.
fn openssl(dir: &Path, faketime: Option<&str>, args: &[&str]) -> Out {
    let mut cmd = match faketime {
        Some(spec) => {
            let mut c = Command::new("faketime");
            c.arg(spec).arg("openssl");
            c
        }
        None => Command::new("openssl"),
    };
    let r = run(cmd.args(args).current_dir(dir));
    assert!(
        r.ok(),
        "openssl {args:?} (faketime {faketime:?}): {}",
        r.text()
    );
    r
}

fn fwseal(dir: &Path, args: &[&str]) -> Out {
    run(Command::new(env!("CARGO_BIN_EXE_fwseal"))
        .args(args)
        .current_dir(dir))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// libfaketime must really move the clock of a dynamically linked program here.
fn check_faketime(dir: &Path) {
    let r = run(Command::new("faketime")
        .args(["3 days ago", "date", "+%s"])
        .current_dir(dir));
    assert!(r.ok(), "faketime date: {}", r.text());
    let faked: u64 = r.stdout.trim().parse().expect("date +%s");
    let delta = now_unix().abs_diff(faked + 3 * DAY);
    assert!(
        delta < 120,
        "faketime '3 days ago' date printed {faked}, {delta} s away from 3 days ago"
    );
}

/// An RFC 3161 token over `data` from the openssl TSA in `dir` (config `tsa.cnf`), with the
/// clock of `openssl ts -reply` set by `faketime` when given.
fn token(dir: &Path, data: &[u8], faketime: Option<&str>, name: &str) -> Vec<u8> {
    std::fs::write(dir.join("sig.bin"), data).unwrap();
    openssl(
        dir,
        None,
        &[
            "ts", "-query", "-data", "sig.bin", "-sha256", "-cert", "-out", "q.tsq",
        ],
    );
    openssl(
        dir,
        faketime,
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "q.tsq",
            "-token_out",
            "-out",
            name,
        ],
    );
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn expired_certificate_verifies_only_with_a_timestamp_inside_its_validity() {
    let (Some(_), Some(_)) = (tool("openssl"), tool("faketime")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    check_faketime(d);

    // The TSA: certificate made five days ago, valid 30 days (so at genTime three days ago).
    openssl(
        d,
        Some("5 days ago"),
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
            "/CN=faketime TSA",
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
    std::fs::write(d.join("serial"), "01\n").unwrap();
    std::fs::write(
        d.join("tsa.cnf"),
        format!(
            "[tsa]\ndefault_tsa = t\n[t]\ndir = {}\nserial = $dir/serial\n\
             signer_cert = $dir/tsa.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
             default_policy = 1.3.6.1.4.1.99999.9\ndigests = sha256\naccuracy = secs:1\n\
             ordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            d.display()
        ),
    )
    .unwrap();

    // The signing certificate: valid from four days ago until two days ago — expired now.
    let key = SoftKey::generate_rsa(SigAlg::RsaPkcs1Sha256, 2048).expect("RSA key");
    let now = SystemTime::now();
    let params = CertParams {
        common_name: "fwseal expired db".into(),
        serial: vec![0x42, 0x17],
        not_before: now - Duration::from_secs(4 * DAY),
        not_after: now - Duration::from_secs(2 * DAY),
    };
    let cert_der = cert::self_signed(&key, &params).expect("certificate");
    std::fs::write(d.join("cert.pem"), cert::to_pem(&cert_der)).unwrap();

    // One Authenticode signature, three images: timestamped three days ago (inside the
    // validity), timestamped now (after notAfter), not timestamped.
    let input =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/efi/hello.efi"))
            .unwrap();
    let req = Request {
        classical: Some(SigAlg::RsaPkcs1Sha256),
        pq: None,
        mode: Mode::Embedded,
        options: SignOptions {
            product: "expired".into(),
            ..SignOptions::default()
        },
    };
    let plan = prepare(Format::Efi, &input, &req).expect("prepare");
    let set = sign_prepared(
        plan.as_ref(),
        Some(&key as &dyn Signer),
        None,
        vec![cert_der],
    )
    .expect("sign");
    let sig = set.signatures[0].clone();
    let image = |tok: Option<Vec<u8>>, name: &str| {
        let mut s = set.clone();
        if let Some(token) = tok {
            s.timestamps.push(SigTimestamp {
                alg: sig.alg,
                key_id: sig.key_id,
                token,
            });
        }
        let out = assemble(&input, &plan.embed(&s).expect("embed")).expect("assemble");
        std::fs::write(d.join(name), out).unwrap();
        name.to_string()
    };
    let past = image(
        Some(token(d, &sig.bytes, Some("3 days ago"), "past.tok")),
        "past.efi",
    );
    let late = image(Some(token(d, &sig.bytes, None, "now.tok")), "late.efi");
    let bare = image(None, "bare.efi");
    // The past token really is from three days ago.
    let text = openssl(
        d,
        None,
        &["ts", "-reply", "-in", "past.tok", "-token_in", "-text"],
    )
    .stdout;
    assert!(text.contains("Time stamp:"), "{text}");

    let verify = |img: &str, tsa: bool| {
        let mut args = vec!["verify", img, "--key", "cert.pem", "--classical-only"];
        if tsa {
            args.extend(["--tsa-cert", "tsa.pem"]);
        }
        fwseal(d, &args)
    };
    // The timestamp inside the validity, trusted: the expired certificate is accepted.
    let r = verify(&past, true);
    assert!(r.ok(), "timestamped inside the validity: {}", r.text());
    assert!(r.stdout.contains("(verified)"), "{}", r.text());
    let three_days_ago =
        run(Command::new("faketime").args(["3 days ago", "date", "-u", "+%Y-%m-%dT"]));
    assert!(
        r.stdout
            .contains(&format!("timestamp {}", three_days_ago.stdout.trim())),
        "the token's genTime is not three days ago: {}",
        r.text()
    );
    // Not trusted (no --tsa-cert): the current time applies, and the certificate has expired.
    let r = verify(&past, false);
    assert_eq!(r.code, Some(1), "no --tsa-cert: {}", r.text());
    assert!(r.stderr.contains("not at now"), "{}", r.text());
    // No timestamp at all: expired.
    let r = verify(&bare, true);
    assert_eq!(r.code, Some(1), "untimestamped: {}", r.text());
    assert!(r.stderr.contains("no timestamp"), "{}", r.text());
    // A token made now: genTime after notAfter.
    let r = verify(&late, true);
    assert_eq!(r.code, Some(1), "genTime after notAfter: {}", r.text());
    assert!(r.stderr.contains("genTime"), "{}", r.text());

    // osslsigncode checks the signer certificate at the countersignature's time too.
    if let Some(o) = tool("osslsigncode") {
        let judge = |img: &str| {
            run(Command::new(&o)
                .args([
                    "verify",
                    "-CAfile",
                    "cert.pem",
                    "-TSA-CAfile",
                    "tsa.pem",
                    "-in",
                    img,
                ])
                .current_dir(d))
        };
        let r = judge(&past);
        assert!(
            r.ok()
                && r.text()
                    .contains("Timestamp Server Signature verification: ok"),
            "osslsigncode refused the image timestamped inside the validity:\n{}",
            r.text()
        );
        for img in [&late, &bare] {
            let r = judge(img);
            assert!(!r.ok(), "osslsigncode accepted {img}:\n{}", r.text());
        }
    }
}
