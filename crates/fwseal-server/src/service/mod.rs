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
//! - [`log`]: the transparency log: tree heads, proofs, bundles, on-demand checkpoints.
//! - `timestamp`: the built-in RFC 3161 TSA (`[tsa_server]`): serials, tokens, their records.
//!
//! Every refusal is audited where it happens: [`SigningService::audited`] wraps an operation and
//! records a `deny` entry with the error's text as its reason — except
//! [`ServiceError::Unpublished`], which is not a refusal (the operation's `allow` record is
//! committed; only publishing its blobs failed, and start-up recovery finishes that).

pub mod artifacts;
mod denials;
pub mod digest;
mod error;
pub mod intake;
pub mod jobs;
pub mod log;
mod release;
pub mod signing;
mod timestamp;

pub use error::ServiceError;

use crate::auth::{allowed, authenticate, Identity};
use crate::config::{Config, ProductConfig, Role};
use crate::keys::KeyService;
use crate::metrics::Metrics;
use denials::{bounded_reason, requested_product, Anonymous, Denials, Disposition};
use fwseal_store::{Action, AuditEntry, Decision};
use fwseal_store::{BlobStore, FsBlobStore, StagedBlob, Store, Sweep};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

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
    /// Anonymous denials of the current interval (see `denials`).
    denials: Mutex<Denials>,
    /// OIDC key and replay caches (`crate::oidc`), reconfigured with the configuration.
    oidc: crate::oidc::Oidc,
    /// Transparency log: the checkpoint-signing mutex (`log`).
    tlog: log::LogState,
    /// The built-in TSA's serial allocator (`timestamp`).
    tsa: timestamp::TsaState,
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
        recover_blobs(store.as_ref(), blobs.as_ref())?;
        let oidc = crate::oidc::Oidc::new(&config.oidc);
        Ok(SigningService {
            oidc,
            config: RwLock::new(Arc::new(config)),
            keys,
            store,
            blobs,
            metrics: Metrics::default(),
            spool,
            denials: Mutex::new(Denials::default()),
            tlog: log::LogState::default(),
            tsa: timestamp::TsaState::default(),
        })
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replace the configuration (already validated). Used by the SIGHUP reload. OIDC key
    /// caches of unchanged issuers are kept; changed or new issuers fetch their keys now.
    pub fn replace_config(&self, c: Config) {
        self.oidc.reconfigure(&c.oidc);
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

    /// Authenticate a bearer token — a static API token first (constant time), else an OIDC
    /// token — and (with mutual TLS) the certificate subject a static client must present.
    /// Failures are audited under `action`; unauthenticated ones, refused OIDC tokens included
    /// (with the check that failed as their reason), are aggregated per interval (`source`,
    /// the peer address if known, is sampled in the summary). `consumes`: the request changes
    /// state (a POST), so an issuer's `jti` replay refusal applies to it.
    pub fn identify(
        &self,
        token: Option<&str>,
        peer_subject: Option<&str>,
        source: Option<&str>,
        action: Action,
        product: Option<&str>,
        consumes: bool,
    ) -> Result<Identity, ServiceError> {
        let cfg = self.config();
        let Some(token) = token else {
            self.anonymous_denied(&cfg, action, product, source, None);
            return Err(ServiceError::Unauthenticated);
        };
        if let Some(who) = authenticate(&cfg, token) {
            return self.check_tls_subject(&cfg, who, peer_subject, product);
        }
        if cfg.oidc.issuers.is_empty() || !crate::oidc::looks_like_jwt(token) {
            self.anonymous_denied(&cfg, action, product, source, None);
            return Err(ServiceError::Unauthenticated);
        }
        let now = now_unix();
        match self.oidc.authenticate(&cfg.oidc, token, now, consumes) {
            Ok(o) => {
                let Some((_, rule)) = cfg.oidc.rule_for(&o.verified.issuer, &o.claims) else {
                    return Err(ServiceError::Unauthenticated);
                };
                Ok(Identity {
                    name: rule.client.clone(),
                    oidc: Some(Arc::new(o)),
                })
            }
            Err(d) => {
                self.anonymous_denied(&cfg, action, product, source, Some(&d));
                if d.check.unavailable() {
                    return Err(ServiceError::OidcUnavailable(d.to_string()));
                }
                Err(ServiceError::Unauthenticated)
            }
        }
    }

    fn check_tls_subject(
        &self,
        cfg: &Config,
        who: Identity,
        peer_subject: Option<&str>,
        product: Option<&str>,
    ) -> Result<Identity, ServiceError> {
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
                self.audit_denied(&who, Action::Authenticate, product, &e);
                return Err(ServiceError::Unauthenticated);
            }
        }
        Ok(who)
    }

    /// Whether `who` may read `/metrics` (the `metrics` or `admin` role on `"*"`: the metrics
    /// name every product). A refusal is audited.
    pub fn may_read_metrics(&self, who: &Identity) -> Result<(), ServiceError> {
        self.audited(who, Action::Denied, None, || {
            let cfg = self.config();
            let ok = crate::auth::roles(&cfg, who).is_some_and(|roles| {
                roles
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

    /// Audit an unauthenticated request: in full if it is the first of its interval, else
    /// counted into the interval's summary (see `denials`). A refused OIDC token's reason names
    /// the check that failed (and so survives aggregation as its own sample); its full record
    /// also carries the issuer, and the subject and `jti` once the signature verified.
    fn anonymous_denied(
        &self,
        cfg: &Config,
        action: Action,
        product: Option<&str>,
        source: Option<&str>,
        oidc: Option<&crate::oidc::Denial>,
    ) {
        let interval = Duration::from_secs(cfg.anonymous_denial_summary_secs);
        let time = now_rfc3339();
        let reason = match oidc {
            None => ServiceError::Unauthenticated.to_string(),
            Some(d) => format!("{}: {d}", ServiceError::Unauthenticated),
        };
        let d = Anonymous {
            time: &time,
            action: action.as_str(),
            product,
            reason: &reason,
            source,
        };
        let disposition = self.lock_denials().note(&d, Instant::now(), interval);
        if let Disposition::Record { summary } = disposition {
            if let Some(s) = summary {
                self.append_denial_summary(&s);
            }
            self.deny_extra(
                &Identity::named("anonymous"),
                action,
                product,
                reason,
                oidc.map(|d| d.audit_extra()),
            );
        }
    }

    /// Write the summary of anonymous denials if its interval has ended (or `force`, at
    /// shutdown). Called periodically by the daemon.
    pub fn flush_denials(&self, force: bool) {
        let interval = Duration::from_secs(self.config().anonymous_denial_summary_secs);
        let due = self.lock_denials().due(Instant::now(), interval, force);
        if let Some(s) = due {
            self.append_denial_summary(&s);
        }
    }

    fn lock_denials(&self) -> std::sync::MutexGuard<'_, Denials> {
        match self.denials.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn append_denial_summary(&self, summary: &serde_json::Value) {
        let n = summary["anonymous_denials"]["count"].as_u64().unwrap_or(0);
        let mut ev = entry("anonymous", Action::Denied, None, Decision::Deny);
        ev.reason = Some(format!(
            "{n} further unauthenticated request(s) refused in this interval (summary)"
        ));
        if let Err(e) = self.store.append(&ev.with_extra(summary)) {
            tracing::error!(error = %e, "audit append for a denial summary failed");
        }
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
            Some(_) if crate::auth::refused_for_static(&cfg, who, product, role) => {
                Err(ServiceError::OidcRequired(format!(
                    "product {product} requires an OIDC token for the {} role; static API tokens are refused",
                    role.name()
                )))
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
        who: &Identity,
        action: Action,
        product: Option<&str>,
        op: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        op().inspect_err(|e| {
            if !e.is_committed() {
                self.deny(who, action, product, e.to_string())
            }
        })
    }

    /// [`Self::audited`] with a context prefixed to the audit reason (`"hash-locally: …"`).
    pub(crate) fn audited_in<T>(
        &self,
        context: &str,
        who: &Identity,
        action: Action,
        product: Option<&str>,
        op: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        op().inspect_err(|e| {
            if !e.is_committed() {
                self.deny(who, action, product, format!("{context}: {e}"))
            }
        })
    }

    /// Publish staged blobs whose record is already committed. Every blob is tried (an early
    /// return would drop, and so delete, the others); one that fails stays staged, and start-up
    /// recovery publishes it. The first failure is returned as [`ServiceError::Unpublished`]
    /// with `detail` — never deleting anything, and never recorded as a refusal.
    pub(crate) fn publish_committed(
        &self,
        staged: Vec<Box<dyn StagedBlob>>,
        artifact: Option<&str>,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let mut first: Option<String> = None;
        for b in staged {
            let sha = hex::encode(b.sha256());
            if let Err(e) = b.publish() {
                tracing::error!(
                    blob = %sha,
                    artifact = artifact.unwrap_or("-"),
                    error = %e,
                    "publishing a committed blob failed; it stays staged and is published at the next start"
                );
                first.get_or_insert_with(|| e.to_string());
            }
        }
        match first {
            None => Ok(()),
            Some(cause) => Err(ServiceError::Unpublished {
                detail: detail.to_string(),
                artifact: artifact.map(str::to_string),
                cause,
            }),
        }
    }

    /// Record a refusal the HTTP layer made before calling an operation (an unreadable body).
    pub fn refused(&self, who: &Identity, action: Action, product: Option<&str>, e: &ServiceError) {
        self.audit_denied(who, action, product, e);
    }

    /// Append a `deny` record for `why`.
    pub(crate) fn audit_denied(
        &self,
        who: &Identity,
        action: Action,
        product: Option<&str>,
        why: &ServiceError,
    ) {
        self.deny(who, action, product, why.to_string());
    }

    /// Append a `deny` record. A failure to audit a refusal is logged; the refusal stands.
    /// The record is bounded whatever the request held: an invalid product name is described
    /// (`extra.requested_product`: length, SHA-256, sanitised prefix), the reason is cut. An
    /// OIDC identity's issuer, subject and `jti` are in `extra.oidc`.
    pub(crate) fn deny(
        &self,
        who: &Identity,
        action: Action,
        product: Option<&str>,
        reason: String,
    ) {
        self.deny_extra(who, action, product, reason, None)
    }

    /// [`Self::deny`] with more `extra` fields.
    pub(crate) fn deny_extra(
        &self,
        who: &Identity,
        action: Action,
        product: Option<&str>,
        reason: String,
        extra: Option<serde_json::Value>,
    ) {
        let (_, described) = requested_product(product);
        let mut ev = entry_by(who, action, product, Decision::Deny);
        ev.reason = Some(bounded_reason(reason));
        if let Some(d) = described {
            ev = ev.with_extra(&serde_json::json!({ "requested_product": d }));
        }
        if let Some(x) = extra {
            ev = ev.with_extra(&x);
        }
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

/// Before serving: publish the staged blobs whose audit record and artifact row (or job) were
/// committed, delete the staged ones whose request never committed, and move visible blobs no
/// artifact or job references to a quarantine (signed firmware must not be served unaudited,
/// and must not be lost to a lost or restored database either). If the database references
/// nothing at all while the store holds blobs, the database is more likely lost than the blobs
/// orphaned: nothing is swept, an error is logged, and the daemon serves on. What was done is
/// logged and audited (`blob-recovery`).
fn recover_blobs(store: &dyn Store, blobs: &dyn BlobStore) -> Result<(), fwseal_store::StoreError> {
    let mut refs: std::collections::HashSet<fwseal_store::Hash32> =
        store.artifact_blobs()?.into_iter().collect();
    refs.extend(store.job_inputs()?);
    let sweep = if refs.is_empty() {
        Sweep::Keep
    } else {
        Sweep::Quarantine
    };
    let r = blobs.recover(&|h| refs.contains(h), sweep)?;
    if r.is_empty() {
        return Ok(());
    }
    if !r.unswept.is_empty() {
        tracing::error!(
            blobs = r.unswept.len(),
            "the database references no artifact or job, but the blob store holds blobs: \
             sweep refused (was audit.db lost or replaced?); the blobs are kept and not served"
        );
    }
    if !r.swept.is_empty() {
        tracing::warn!(
            swept = r.swept.len(),
            quarantine = r.quarantine.as_deref().unwrap_or("-"),
            "unreferenced blobs moved out of the store into the quarantine"
        );
    }
    tracing::warn!(
        published = r.published.len(),
        discarded = r.discarded.len(),
        swept = r.swept.len(),
        unswept = r.unswept.len(),
        "blob store recovered: committed blobs published, uncommitted staged blobs deleted"
    );
    let list = |v: &[fwseal_store::Hash32]| -> serde_json::Value {
        // Bounded: the counts are exact, the hashes listed up to 100 per kind.
        v.iter().take(100).map(hex::encode).collect()
    };
    let mut e = entry("fwseald", Action::BlobRecovery, None, Decision::Allow);
    let mut reason = format!(
        "{} staged blob(s) of committed records published, {} uncommitted staged blob(s) \
         deleted, {} unreferenced blob(s) quarantined",
        r.published.len(),
        r.discarded.len(),
        r.swept.len()
    );
    if let Some(q) = &r.quarantine {
        reason.push_str(&format!(" in {q}"));
    }
    if !r.unswept.is_empty() {
        reason.push_str(&format!(
            "; sweep refused: the database references nothing, {} blob(s) kept",
            r.unswept.len()
        ));
    }
    e.reason = Some(reason);
    let e = e.with_extra(&serde_json::json!({
        "published": r.published.len(),
        "discarded": r.discarded.len(),
        "swept": r.swept.len(),
        "quarantine": r.quarantine,
        "sweep_refused": !r.unswept.is_empty(),
        "unswept": r.unswept.len(),
        "published_sha256": list(&r.published),
        "discarded_sha256": list(&r.discarded),
        "swept_sha256": list(&r.swept),
    }));
    store.append(&e)?;
    Ok(())
}

/// RFC 3339 UTC, seconds.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// An audit entry stamped now: the one audit-entry constructor of the service. `product` is
/// kept only if it is a valid product name (or `*`): a record never holds an arbitrary string
/// from a URL (a denial describes it instead, see [`SigningService::deny`]).
pub(crate) fn entry(
    client: &str,
    action: Action,
    product: Option<&str>,
    decision: Decision,
) -> AuditEntry {
    let mut e = AuditEntry::new(now_rfc3339(), client, action, decision);
    e.product = requested_product(product).0;
    e
}

/// [`entry`] for an authenticated identity: an OIDC identity's issuer, subject and `jti` go in
/// `extra.oidc` (further `with_extra` calls add their keys beside it).
pub(crate) fn entry_by(
    who: &Identity,
    action: Action,
    product: Option<&str>,
    decision: Decision,
) -> AuditEntry {
    let e = entry(&who.name, action, product, decision);
    match who.audit_extra() {
        Some(x) => e.with_extra(&x),
        None => e,
    }
}

/// Now, Unix seconds.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
