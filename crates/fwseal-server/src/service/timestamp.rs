//! The built-in RFC 3161 Time-Stamping Authority (`[tsa_server]`, `POST /v1/tsa`): a serial
//! from the durable allocator, `fwseal_tsa::respond` with the TSA key, and the audit record
//! **committed before the reply is released** (a granted token whose record cannot be written
//! is withheld: `500`). Rejections (malformed request, hash not accepted, foreign policy, …)
//! are `200` replies with a rejection status, as RFC 3161 has it, audited as `deny`.

use super::{entry_by, ServiceError, SigningService};
use crate::auth::Identity;
use crate::keys::KeyError;
use crate::metrics::OutcomeLabels;
use crate::tsa_server::{SerialBlocks, TsaServerConfig};
use fwseal_api::TSA_PRODUCT;
use fwseal_crypto::{CryptoError, PublicKey, SigAlg, SignedMessage, Signer};
use fwseal_store::{Action, Decision};
use std::sync::Mutex;

/// The built-in TSA's state: the serial allocator, opened on first use (one daemon per state
/// directory holds the state lock, so one allocator per serial file).
#[derive(Default)]
pub(crate) struct TsaState {
    serials: Mutex<Option<SerialBlocks>>,
}

/// A signer that remembers whether a signature failed, to tell an HSM failure (`503`) from
/// any other failure of `respond` (`500`).
struct Watched<'a> {
    inner: &'a dyn Signer,
    failed: Mutex<Option<String>>,
}

impl Signer for Watched<'_> {
    fn alg(&self) -> SigAlg {
        self.inner.alg()
    }
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }
    fn sign_raw(&self, msg: &SignedMessage) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign_raw(msg).inspect_err(|e| {
            if let Ok(mut f) = self.failed.lock() {
                *f = Some(e.to_string());
            }
        })
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(b).into()
}

impl SigningService {
    /// The `[tsa_server]` section, or `NotConfigured` (the endpoints are then `404`).
    pub fn tsa_server(&self) -> Result<TsaServerConfig, ServiceError> {
        self.config().tsa_server.clone().ok_or_else(|| {
            ServiceError::NotConfigured(
                "the built-in time-stamping authority is not configured ([tsa_server])".into(),
            )
        })
    }

    /// Whether the built-in TSA serves requests without an API token (`anonymous = true`).
    pub fn tsa_anonymous(&self) -> bool {
        self.config()
            .tsa_server
            .as_ref()
            .is_some_and(|t| t.anonymous)
    }

    fn tsa_keys(&self) -> Result<(std::sync::Arc<dyn Signer>, Vec<u8>), ServiceError> {
        self.keys.tsa_signer().map_err(|e| {
            self.metrics.hsm_errors.inc();
            match e {
                KeyError::Missing { .. } => ServiceError::Signing(
                    "the built-in TSA has no key: `fwseald keys create -p fwseal-tsa` \
                     (fwseald run creates it when [tsa_server] is configured)"
                        .into(),
                ),
                e => ServiceError::Keys(e),
            }
        })
    }

    fn next_serial(&self) -> Result<u128, ServiceError> {
        let mut g = self.tsa.serials.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g =
                Some(SerialBlocks::open(&self.config().state_dir).map_err(ServiceError::internal)?);
        }
        match g.as_mut() {
            Some(s) => s.allocate().map_err(ServiceError::internal),
            None => Err(ServiceError::internal("TSA serial allocator missing")),
        }
    }

    /// `GET /v1/tsa/certificate`: the TSA certificate, PEM (refusals audited).
    pub fn tsa_certificate(&self, who: &Identity) -> Result<String, ServiceError> {
        self.audited(who, Action::KeysRead, Some(TSA_PRODUCT), || {
            self.tsa_server()?;
            let (_, cert) = self.tsa_keys()?;
            Ok(fwseal_crypto::verify::pem_encode("CERTIFICATE", &cert))
        })
    }

    /// `POST /v1/tsa`: answer a DER `TimeStampReq` with a DER `TimeStampResp`. `source` is the
    /// peer address (recorded). A granted token's `timestamp` record (serial, genTime, policy,
    /// imprint, token SHA-256) is committed before the reply is returned; a rejection is a
    /// reply too, recorded as `deny` with its reason.
    pub fn tsa_timestamp(
        &self,
        who: &Identity,
        source: Option<&str>,
        request: &[u8],
    ) -> Result<Vec<u8>, ServiceError> {
        self.audited(who, Action::Timestamp, Some(TSA_PRODUCT), || {
            let ts = self.tsa_server()?;
            let (signer, cert) = self.tsa_keys()?;
            let serial = self.next_serial()?;
            let watched = Watched {
                inner: signer.as_ref(),
                failed: Mutex::new(None),
            };
            let reply = fwseal_tsa::respond_detailed(
                request,
                &ts.responder(),
                &watched,
                &cert,
                &[],
                serial,
                std::time::SystemTime::now(),
            )
            .map_err(|e| {
                let hsm = watched.failed.lock().map(|f| f.is_some()).unwrap_or(true);
                if hsm {
                    self.metrics.hsm_errors.inc();
                    ServiceError::Signing(format!("TSA signing failed: {e}"))
                } else {
                    ServiceError::internal(format!("TSA: {e}"))
                }
            })?;
            let outcome = |o: &str| {
                self.metrics
                    .timestamps
                    .get_or_create(&OutcomeLabels {
                        outcome: o.to_string(),
                    })
                    .inc();
            };
            match reply.outcome {
                fwseal_tsa::Outcome::Granted { token } => {
                    let info = fwseal_tsa::inspect(&token)
                        .map_err(|e| ServiceError::internal(format!("TSA token: {e}")))?;
                    let token_sha = sha256(&token);
                    let mut e =
                        entry_by(who, Action::Timestamp, Some(TSA_PRODUCT), Decision::Allow);
                    e.key_ids = vec![signer.key_id()];
                    e.cert_sha256 = Some(sha256(&cert));
                    e.output_sha256 = Some(token_sha);
                    let e = e.with_extra(&serde_json::json!({
                        "serial": info.serial_hex,
                        "gen_time": info.gen_time,
                        "policy": info.policy,
                        "hash_alg": info.hash_alg.name(),
                        "imprint": hex::encode(&info.imprint),
                        "token_sha256": hex::encode(token_sha),
                        "source": source,
                    }));
                    // Durable before the token leaves: no record, no token.
                    self.audit(&e)?;
                    outcome("granted");
                    Ok(reply.der)
                }
                fwseal_tsa::Outcome::Rejected { failure, text } => {
                    self.deny_extra(
                        who,
                        Action::Timestamp,
                        Some(TSA_PRODUCT),
                        format!("time-stamp request rejected ({}): {text}", failure.name()),
                        Some(serde_json::json!({
                            "request_sha256": hex::encode(sha256(request)),
                            "request_bytes": request.len(),
                            "source": source,
                        })),
                    );
                    outcome("rejected");
                    Ok(reply.der)
                }
            }
        })
    }
}
