//! `[tsa]`: RFC 3161 timestamps over the appliance's signatures (`formats/timestamp.md`).
//!
//! Every signature a signing makes (the image's classical and post-quantum halves and the
//! provenance's DSSE signatures) gets a `TimeStampToken` whose message imprint is the hash of
//! the signature's bytes, from the first configured Time-Stamping Authority that answers with
//! a token that verifies against the configured TSA certificates. `mode = "required"`
//! (the default) refuses the signing when none does; `"best-effort"` signs and records why the
//! timestamps are missing.

use fwseal_crypto::{DigestAlg, SigTimestamp, Signature};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The `[tsa]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    /// TSA URLs (`http://` or `https://`), tried in this order for every token.
    pub urls: Vec<String>,
    /// Hash of the message imprint (default `sha256`).
    #[serde(default = "default_hash")]
    pub hash: DigestAlg,
    /// PEM files holding the certificates a token's signer must be, or be issued by. Required:
    /// a token that verifies against nothing is not evidence.
    pub trusted_certs: Vec<PathBuf>,
    /// Per-request timeout, milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `required` (default) or `best-effort`.
    #[serde(default)]
    pub mode: TsaMode,
    /// The client built from the above by [`TsaConfig::load`] (at config load).
    #[serde(skip)]
    pub(crate) ready: Option<std::sync::Arc<Timestamper>>,
}

impl TsaConfig {
    /// Check the section, read the trusted certificates and build the client.
    pub fn load(&mut self) -> Result<(), String> {
        self.ready = Some(std::sync::Arc::new(Timestamper::new(self)?));
        Ok(())
    }

    /// The client ([`TsaConfig::load`] must have run).
    pub fn timestamper(&self) -> Option<&Timestamper> {
        self.ready.as_deref()
    }
}

/// What happens when no TSA answers.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TsaMode {
    /// Refuse the signing (`503 tsa-unavailable`, audited); nothing is released.
    #[default]
    Required,
    /// Sign without timestamps and record why in the audit record.
    BestEffort,
}

fn default_hash() -> DigestAlg {
    DigestAlg::Sha256
}
fn default_timeout_ms() -> u64 {
    5000
}

/// A ready TSA client.
pub struct Timestamper {
    urls: Vec<String>,
    client: fwseal_tsa::client::TsaClient,
    /// The configured mode.
    pub mode: TsaMode,
}

/// One token obtained, with what the audit record says of it.
pub struct Stamp {
    /// The token (DER `ContentInfo`).
    pub token: Vec<u8>,
    /// What it says.
    pub info: fwseal_tsa::TokenInfo,
}

impl Stamp {
    /// The audit record's summary of a token over `covers` (`image:<alg>:<key id>` or
    /// `provenance:<alg>:<key id>`): time, TSA, serial, policy and the token's SHA-256.
    pub fn audit(&self, covers: &str) -> serde_json::Value {
        use sha2::Digest as _;
        serde_json::json!({
            "covers": covers,
            "gen_time": self.info.gen_time,
            "tsa": self.info.tsa,
            "serial": self.info.serial_hex,
            "policy": self.info.policy,
            "token_sha256": hex::encode(sha2::Sha256::digest(&self.token)),
        })
    }
}

impl std::fmt::Debug for Timestamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timestamper")
            .field("urls", &self.urls)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Timestamper {
    /// Build the client: reads and parses the trusted certificates.
    pub fn new(cfg: &TsaConfig) -> Result<Self, String> {
        if cfg.urls.is_empty() {
            return Err("[tsa] urls is empty".into());
        }
        for u in &cfg.urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("[tsa] url {u:?} is not http:// or https://"));
            }
        }
        if cfg.trusted_certs.is_empty() {
            return Err(
                "[tsa] trusted_certs is empty: a token that verifies against no \
                        certificate is not evidence"
                    .into(),
            );
        }
        if cfg.timeout_ms == 0 || cfg.timeout_ms > 120_000 {
            return Err("[tsa] timeout_ms must be 1..=120000".into());
        }
        let mut certs = Vec::new();
        for p in &cfg.trusted_certs {
            let pem = std::fs::read(p)
                .map_err(|e| format!("[tsa] trusted_certs {}: {e}", p.display()))?;
            let found = pem_certificates(&pem)
                .map_err(|e| format!("[tsa] trusted_certs {}: {e}", p.display()))?;
            if found.is_empty() {
                return Err(format!(
                    "[tsa] trusted_certs {}: no CERTIFICATE in the file",
                    p.display()
                ));
            }
            certs.extend(found);
        }
        let client = fwseal_tsa::client::TsaClient::new(
            cfg.urls.clone(),
            cfg.hash,
            Duration::from_millis(cfg.timeout_ms),
            certs,
        )
        .map_err(|e| format!("[tsa]: {e}"))?;
        Ok(Timestamper {
            urls: cfg.urls.clone(),
            client,
            mode: cfg.mode,
        })
    }

    /// A token over `bytes` (a signature value).
    pub fn stamp(&self, bytes: &[u8]) -> Result<Stamp, fwseal_tsa::TsaError> {
        let (token, info) = self.client.timestamp(bytes)?;
        Ok(Stamp { token, info })
    }

    /// Tokens over each of `sigs`, as [`SigTimestamp`]s with their audit summaries under
    /// `prefix` (`image` / `provenance`). Stops at the first failure.
    pub fn stamp_all(
        &self,
        prefix: &str,
        sigs: &[&Signature],
    ) -> Result<(Vec<SigTimestamp>, Vec<serde_json::Value>), fwseal_tsa::TsaError> {
        let mut out = Vec::with_capacity(sigs.len());
        let mut audit = Vec::with_capacity(sigs.len());
        for s in sigs {
            let st = self.stamp(&s.bytes)?;
            audit.push(st.audit(&format!("{prefix}:{}:{}", s.alg, s.key_id.to_hex())));
            out.push(SigTimestamp {
                alg: s.alg,
                key_id: s.key_id,
                token: st.token,
            });
        }
        Ok((out, audit))
    }
}

/// Every `CERTIFICATE` block of a PEM file, as DER.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use x509_cert::der::Encode as _;
    x509_cert::Certificate::load_pem_chain(pem)
        .map_err(|e| format!("not a PEM certificate file: {e}"))?
        .iter()
        .map(|c| c.to_der().map_err(|e| format!("bad certificate: {e}")))
        .collect()
}
