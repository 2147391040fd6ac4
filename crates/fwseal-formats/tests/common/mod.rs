//! Shared helpers for the judge tests: software keys, temp dirs, and running stock verifiers.
//!
//! A judge that is not installed fails the test when `FWSEAL_REQUIRE_JUDGES=1` (set by
//! `cargo xtask test` and CI) and is reported as skipped otherwise.
#![allow(dead_code)]

use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::{
    assemble, prepare, sign_prepared, Format, Mode, Prepared, Request, SignatureSet,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A fixture file's bytes.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = repo_root().join("fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Whether missing judges are failures.
pub fn judges_required() -> bool {
    std::env::var("FWSEAL_REQUIRE_JUDGES")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// `Some(path)` if `tool` is on PATH; otherwise panics (judges required) or returns None.
pub fn tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(tool);
        if p.is_file() {
            return Some(p);
        }
    }
    if judges_required() {
        panic!("judge `{tool}` is not installed (FWSEAL_REQUIRE_JUDGES=1); run `cargo xtask test` as root or install it");
    }
    eprintln!("SKIP: judge `{tool}` not installed");
    None
}

/// Output of a judge run.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Run a command and capture everything.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Hybrid software keys: classical + PQ.
pub struct Keys {
    pub classical: SoftKey,
    pub pq: SoftKey,
}

impl Keys {
    pub fn new(classical: SigAlg, pq: SigAlg) -> Self {
        Keys {
            classical: SoftKey::generate(classical).expect("classical key"),
            pq: SoftKey::generate(pq).expect("pq key"),
        }
    }

    /// ECDSA P-256 + ML-DSA-65, the default product policy.
    pub fn default_hybrid() -> Self {
        Self::new(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65)
    }

    pub fn request(&self, mode: Mode) -> Request {
        Request::hybrid(self.classical.alg(), self.pq.alg(), mode, "test-product")
    }

    /// Prepare + sign; returns the plan and the set.
    pub fn sign(
        &self,
        format: Format,
        data: &[u8],
        req: &Request,
        certs: Vec<Vec<u8>>,
    ) -> (Box<dyn Prepared>, SignatureSet) {
        let plan = prepare(format, data, req).expect("prepare");
        let set = sign_prepared(
            plan.as_ref(),
            Some(&self.classical as &dyn Signer),
            Some(&self.pq as &dyn Signer),
            certs,
        )
        .expect("sign");
        (plan, set)
    }

    /// Sign in embedded mode and return the output bytes.
    pub fn embed(
        &self,
        format: Format,
        data: &[u8],
        req: &Request,
        certs: Vec<Vec<u8>>,
    ) -> Vec<u8> {
        let (plan, set) = self.sign(format, data, req, certs);
        assemble(data, &plan.embed(&set).expect("embed")).expect("assemble")
    }

    /// Verify every signature `extract` finds against these keys; returns how many verified.
    pub fn verify_extracted(&self, format: Format, data: &[u8]) -> usize {
        let ex = fwseal_formats::extract(format, data).expect("extract");
        for s in &ex.signatures {
            let k: &dyn Signer = if s.alg == self.pq.alg() {
                &self.pq
            } else {
                &self.classical
            };
            k.public_key()
                .verify_bytes(&s.message, &s.bytes)
                .unwrap_or_else(|e| panic!("{} does not verify: {e}", s.alg));
        }
        ex.signatures.len()
    }
}

/// A fresh temp dir.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A Time-Stamping Authority run by `openssl ts -reply` (a TSA fwseal did not write): an
/// ECDSA P-256 key and a self-signed certificate with the critical `timeStamping` EKU, made by
/// `openssl req` in a temp dir. `None` when openssl is not installed (and judges not required).
pub struct OpensslTsa {
    dir: tempfile::TempDir,
    /// The TSA certificate (PEM): the trust anchor for `openssl ts -verify -CAfile` and
    /// `osslsigncode verify -TSA-CAfile`.
    pub cert_pem: PathBuf,
}

impl OpensslTsa {
    /// A TSA whose certificate is valid from now for `days`.
    pub fn new(days: u32) -> Option<Self> {
        let openssl = tool("openssl")?;
        let dir = tempdir();
        let d = dir.path();
        let cert_pem = d.join("tsa.pem");
        let r = run(Command::new(&openssl)
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-subj",
                "/CN=openssl test TSA",
                "-days",
                &days.to_string(),
            ])
            .args(["-addext", "extendedKeyUsage=critical,timeStamping"])
            .args(["-addext", "keyUsage=critical,digitalSignature"])
            .arg("-keyout")
            .arg(d.join("tsa.key"))
            .arg("-out")
            .arg(&cert_pem));
        assert!(r.ok, "openssl req (TSA certificate): {}", r.text());
        std::fs::write(d.join("serial"), "01\n").expect("serial");
        let cnf = format!(
            "[ tsa ]\ndefault_tsa = t\n[ t ]\nserial = {s}\ncrypto_device = builtin\n\
             signer_cert = {c}\ncerts = {c}\nsigner_key = {k}\nsigner_digest = sha256\n\
             default_policy = 1.3.6.1.4.1.99999.1\nother_policies = 1.3.6.1.4.1.99999.2\n\
             digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = yes\n\
             tsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            s = d.join("serial").display(),
            c = cert_pem.display(),
            k = d.join("tsa.key").display(),
        );
        std::fs::write(d.join("tsa.cnf"), cnf).expect("tsa.cnf");
        Some(OpensslTsa { dir, cert_pem })
    }

    /// An RFC 3161 `TimeStampToken` (DER `ContentInfo`) whose message imprint is the SHA-256
    /// of `data`.
    pub fn token_over(&self, data: &[u8]) -> Vec<u8> {
        let openssl = tool("openssl").expect("openssl");
        let d = self.dir.path();
        std::fs::write(d.join("data"), data).expect("data");
        let r = run(Command::new(&openssl)
            .args(["ts", "-query", "-sha256", "-cert", "-data"])
            .arg(d.join("data"))
            .arg("-out")
            .arg(d.join("q.tsq")));
        assert!(r.ok, "openssl ts -query: {}", r.text());
        let r = run(Command::new(&openssl)
            .args(["ts", "-reply", "-token_out", "-config"])
            .arg(d.join("tsa.cnf"))
            .arg("-queryfile")
            .arg(d.join("q.tsq"))
            .arg("-out")
            .arg(d.join("token.der")));
        assert!(r.ok, "openssl ts -reply: {}", r.text());
        std::fs::read(d.join("token.der")).expect("token")
    }
}
