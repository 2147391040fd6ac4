//! Helpers for the hash-locally driver tests (a subset of fwseal-formats' test helpers):
//! software keys and fixtures.
#![allow(dead_code)]

use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::{
    assemble, prepare, sign_prepared, Format, Mode, Prepared, Request, SignatureSet,
};
use std::path::{Path, PathBuf};

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
