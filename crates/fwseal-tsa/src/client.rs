//! A blocking RFC 3161 client over HTTP with failover (feature `client`).

use crate::{request_der, token_from_response, verify_digest, TokenInfo, TsaError, MAX_DER};
use fwseal_crypto::DigestAlg;
use std::time::Duration;

/// TSA URLs in failover order, a timeout, the imprint hash, and trust anchors (empty: the
/// token's signature chain is not verified, only the response is checked against the request).
#[derive(Clone, Debug)]
pub struct TsaClient {
    urls: Vec<String>,
    alg: DigestAlg,
    timeout: Duration,
    trusted: Vec<Vec<u8>>,
}

impl TsaClient {
    /// A client; refuses an empty URL list and a zero timeout.
    pub fn new(
        urls: Vec<String>,
        alg: DigestAlg,
        timeout: Duration,
        trusted_certs_der: Vec<Vec<u8>>,
    ) -> Result<Self, TsaError> {
        if urls.is_empty() {
            return Err(TsaError::Misuse("no TSA URL".into()));
        }
        if timeout.is_zero() {
            return Err(TsaError::Misuse("zero TSA timeout".into()));
        }
        Ok(TsaClient {
            urls,
            alg,
            timeout,
            trusted: trusted_certs_der,
        })
    }

    /// Timestamp `data` (hashed with the client's algorithm).
    pub fn timestamp(&self, data: &[u8]) -> Result<(Vec<u8>, TokenInfo), TsaError> {
        self.timestamp_digest(&self.alg.hash(data))
    }

    /// POST application/timestamp-query to each URL in order until one answers with a valid
    /// token (token_from_response + verify_digest when trusted certs are set). Random nonce,
    /// certReq = true.
    pub fn timestamp_digest(&self, digest: &[u8]) -> Result<(Vec<u8>, TokenInfo), TsaError> {
        use rand_core::RngCore;
        let nonce = rand_core::OsRng.next_u64();
        let req = request_der(self.alg, digest, nonce, true)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut last = TsaError::Misuse("no TSA URL".into());
        for url in &self.urls {
            match self.one(&agent, url, &req, digest, nonce) {
                Ok(t) => return Ok(t),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn one(
        &self,
        agent: &ureq::Agent,
        url: &str,
        req: &[u8],
        digest: &[u8],
        nonce: u64,
    ) -> Result<(Vec<u8>, TokenInfo), TsaError> {
        let unavailable = |why: String| TsaError::Unavailable {
            url: url.to_string(),
            why,
        };
        let mut resp = agent
            .post(url)
            .header("Content-Type", "application/timestamp-query")
            .send(req)
            .map_err(|e| unavailable(e.to_string()))?;
        if resp.status() != 200 {
            return Err(unavailable(format!("HTTP status {}", resp.status())));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_DER as u64)
            .read_to_vec()
            .map_err(|e| unavailable(format!("reading the reply: {e}")))?;
        let token = token_from_response(&body, self.alg, digest, nonce)?;
        let info = if self.trusted.is_empty() {
            crate::inspect(&token)?
        } else {
            verify_digest(&token, self.alg, digest, &self.trusted)?
        };
        Ok((token, info))
    }
}
