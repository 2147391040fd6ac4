//! The signing service: everything the appliance does, beneath HTTP.
//!
//! [`SigningService`] owns the configuration, the keys, the store and the blob store, and offers
//! every operation as a plain blocking method that takes an authenticated [`Identity`] and
//! returns a typed [`ServiceError`]. It knows nothing of axum or HTTP: `routes/` adapts requests
//! to these calls (on `spawn_blocking`) and errors to problem documents.
//!
//! - [`intake`]: an upload on disk → detected format → signing plan (the format-aware digest).
//! - [`signing`]: **the one signing path** — product signers, signatures, blobs, provenance and
//!   the audit record, for an uploaded image, a released job and a hash-locally request alike
//!   (one provenance builder, one audit-entry builder).
//! - [`digest`]: hash-locally (`sign-params`, `sign-digest`).
//! - [`jobs`]: M-of-N approvals (submit, list, show, input, approve, reject, release).
//! - [`artifacts`]: fetch and list artifacts, product keys, audit export.
//!
//! Every refusal is audited where it happens: [`SigningService::audited`] wraps an operation and
//! records a `deny` entry with the error's text as its reason.

pub mod artifacts;
pub mod digest;
mod error;
pub mod intake;
pub mod jobs;
mod release;
pub mod signing;

pub use error::ServiceError;

use crate::auth::{allowed, authenticate, Identity};
use crate::config::{Config, ProductConfig, Role};
use crate::keys::KeyService;
use crate::metrics::Metrics;
use fwseal_store::{Action, AuditEntry, Decision};
use fwseal_store::{BlobStore, FsBlobStore, Store};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// The appliance: configuration, keys, store, blobs and metrics, and every operation on them.
pub struct SigningService {
    config: RwLock<Arc<Config>>,
    /// Signing keys (HSM).
    pub keys: Arc<dyn KeyService>,
    /// Audit log, artifact index and job queue.
    pub store: Arc<dyn Store>,
    /// Content-addressed blobs: signed images, detached documents, provenance, job inputs.
    pub blobs: Arc<dyn BlobStore>,
    /// Metrics.
    pub metrics: Metrics,
    /// Where uploads are spooled before signing (inside the state dir, not the blob store).
    spool: PathBuf,
}

impl SigningService {
    /// Assemble the service with the filesystem blob store at `state_dir/artifacts` (removing
    /// its stale temporary files). Creates the spool directory and empties it; a job left
    /// half-signed by a crash is marked failed.
    pub fn new(
        config: Config,
        keys: Arc<dyn KeyService>,
        store: Arc<dyn Store>,
    ) -> Result<Self, fwseal_store::StoreError> {
        let blobs = Arc::new(FsBlobStore::new(config.state_dir.join("artifacts"))?);
        Self::with_blobs(config, keys, store, blobs)
    }

    /// Assemble the service over any blob store.
    pub fn with_blobs(
        config: Config,
        keys: Arc<dyn KeyService>,
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
    ) -> Result<Self, fwseal_store::StoreError> {
        let spool = config.state_dir.join("spool");
        std::fs::create_dir_all(&spool)?;
        for e in std::fs::read_dir(&spool)? {
            let _ = std::fs::remove_file(e?.path());
        }
        // A job left half-signed by a crash is not silently retried: it fails, visibly.
        for id in store.fail_interrupted()? {
            tracing::warn!(job = %id, "job was being signed when the daemon stopped; marked failed");
        }
        Ok(SigningService {
            config: RwLock::new(Arc::new(config)),
            keys,
            store,
            blobs,
            metrics: Metrics::default(),
            spool,
        })
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replace the configuration (already validated). Used by the SIGHUP reload.
    pub fn replace_config(&self, c: Config) {
        match self.config.write() {
            Ok(mut g) => *g = Arc::new(c),
            Err(p) => *p.into_inner() = Arc::new(c),
        }
    }

    /// Record a configuration reload (accepted or rejected) in the audit log.
    pub fn record_config_reload(
        &self,
        decision: Decision,
        reason: String,
        config_sha256: &str,
    ) -> Result<(), fwseal_store::StoreError> {
        let mut e = entry("fwseald", Action::ConfigReload, None, decision);
        e.reason = Some(reason);
        let e = e.with_extra(&serde_json::json!({ "config_sha256": config_sha256 }));
        self.store.append(&e).map(|_| ())
    }

    /// Cheap health check of the signing backend.
    pub fn health(&self) -> Result<(), ServiceError> {
        self.keys.health().map_err(ServiceError::Keys)
    }

    /// Authenticate an API token, and (with mutual TLS) the certificate subject the client must
    /// present. Failures are audited under `action`.
    pub fn identify(
        &self,
        token: Option<&str>,
        peer_subject: Option<&str>,
        action: Action,
        product: Option<&str>,
    ) -> Result<Identity, ServiceError> {
        let cfg = self.config();
        let Some(who) = token.and_then(|t| authenticate(&cfg, t)) else {
            self.audit_denied("anonymous", action, product, &ServiceError::Unauthenticated);
            return Err(ServiceError::Unauthenticated);
        };
        let mtls = cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        let want = cfg
            .clients
            .iter()
            .find(|c| c.name == who.name)
            .and_then(|c| c.tls_subject.as_deref());
        if let (true, Some(want)) = (mtls, want) {
            if peer_subject != Some(want) {
                let e = ServiceError::WrongCertificate {
                    got: peer_subject.unwrap_or_default().to_string(),
                };
                self.audit_denied(&who.name, Action::Authenticate, product, &e);
                return Err(ServiceError::Unauthenticated);
            }
        }
        Ok(who)
    }

    /// Whether `who` may read `/metrics` (the `metrics` or `admin` role on `"*"`: the metrics
    /// name every product). A refusal is audited.
    pub fn may_read_metrics(&self, who: &Identity) -> Result<(), ServiceError> {
        self.audited(&who.name, Action::Denied, None, || {
            let cfg = self.config();
            let ok = cfg.clients.iter().any(|c| {
                c.name == who.name
                    && c.roles
                        .get("*")
                        .is_some_and(|r| r.contains(&Role::Metrics) || r.contains(&Role::Admin))
            });
            if ok {
                Ok(())
            } else {
                Err(ServiceError::Forbidden(
                    "/metrics needs the metrics role on \"*\"".into(),
                ))
            }
        })
    }

    /// The product's configuration if `who` holds `role` on it (unknown and forbidden look the
    /// same).
    fn product_for(
        &self,
        who: &Identity,
        product: &str,
        role: Role,
    ) -> Result<(Arc<Config>, ProductConfig), ServiceError> {
        let cfg = self.config();
        match cfg.product(product) {
            Some(p) if allowed(&cfg, who, product, role) => {
                let p = p.clone();
                Ok((cfg, p))
            }
            _ => Err(ServiceError::NoSuchProduct(format!(
                "no {role:?} role on product (or no such product)"
            ))),
        }
    }

    /// Run `op`; if it fails, audit the refusal (`deny`, the error's text as reason) under
    /// `who`, `action` and `product`, and return the error.
    pub(crate) fn audited<T>(
        &self,
        who: &str,
        action: Action,
        product: Option<&str>,
        op: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        op().inspect_err(|e| self.deny(who, action, product, e.to_string()))
    }

    /// [`Self::audited`] with a context prefixed to the audit reason (`"hash-locally: …"`).
    pub(crate) fn audited_in<T>(
        &self,
        context: &str,
        who: &str,
        action: Action,
        product: Option<&str>,
        op: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        op().inspect_err(|e| self.deny(who, action, product, format!("{context}: {e}")))
    }

    /// Record a refusal the HTTP layer made before calling an operation (an unreadable body).
    pub fn refused(&self, who: &Identity, action: Action, product: Option<&str>, e: &ServiceError) {
        self.audit_denied(&who.name, action, product, e);
    }

    /// Append a `deny` record for `why`.
    pub(crate) fn audit_denied(
        &self,
        who: &str,
        action: Action,
        product: Option<&str>,
        why: &ServiceError,
    ) {
        self.deny(who, action, product, why.to_string());
    }

    /// Append a `deny` record. A failure to audit a refusal is logged; the refusal stands.
    pub(crate) fn deny(&self, who: &str, action: Action, product: Option<&str>, reason: String) {
        let mut ev = entry(who, action, product, Decision::Deny);
        ev.reason = Some(reason);
        if let Err(e) = self.store.append(&ev) {
            tracing::error!(error = %e, "audit append for a denial failed");
        }
    }

    /// Append an `allow` record (reads: fetch, list, audit export).
    pub(crate) fn audit(&self, ev: &AuditEntry) -> Result<(), ServiceError> {
        self.store
            .append(ev)
            .map(|_| ())
            .map_err(ServiceError::AuditFailed)
    }
}

/// RFC 3339 UTC, seconds.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// An audit entry stamped now: the one audit-entry constructor of the service.
pub(crate) fn entry(
    client: &str,
    action: Action,
    product: Option<&str>,
    decision: Decision,
) -> AuditEntry {
    let mut e = AuditEntry::new(now_rfc3339(), client, action, decision);
    e.product = product.filter(|p| !p.is_empty()).map(str::to_string);
    e
}
