//! fwseal-server: the HTTP appliance. The only crate that knows HTTP.
//!
//! `app(state)` builds the axum router (testable with `oneshot`); `run(listener, state,
//! shutdown)` serves it until `shutdown` resolves and drains in-flight requests. Blocking work
//! (format parsing of large uploads, HSM calls, SQLite) runs on `spawn_blocking` threads.
//!
//! ```no_run
//! # async fn demo(state: std::sync::Arc<fwseal_server::AppState>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! fwseal_server::run(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod approvals;
pub mod auth;
pub mod config;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub use fwseal_formats::files as pipeline;
pub mod problem;
mod routes;
pub mod tls;

pub use routes::app;

use config::Config;
use keys::KeyService;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Everything a request handler needs.
pub struct AppState {
    config: RwLock<Arc<Config>>,
    /// Signing keys (HSM).
    pub keys: Arc<dyn KeyService>,
    /// Audit log and artifact metadata (SQLite).
    pub store: Arc<fwseal_store::SqliteStore>,
    /// Content-addressed blobs (signed images, detached documents, provenance) under
    /// `state_dir/artifacts`.
    pub blobs: fwseal_store::ArtifactStore,
    /// Metrics.
    pub metrics: metrics::Metrics,
    /// Where uploads are spooled before signing (inside the state dir, not the artifact store).
    pub spool: PathBuf,
}

impl AppState {
    /// Assemble the state. Creates the spool directory and removes stale spool files; opens
    /// the blob store at `state_dir/artifacts` (removing its stale temporary files).
    pub fn new(
        config: Config,
        keys: Arc<dyn KeyService>,
        store: Arc<fwseal_store::SqliteStore>,
    ) -> Result<Self, fwseal_store::StoreError> {
        let spool = config.state_dir.join("spool");
        std::fs::create_dir_all(&spool)?;
        for e in std::fs::read_dir(&spool)? {
            let _ = std::fs::remove_file(e?.path());
        }
        let blobs = fwseal_store::ArtifactStore::new(config.state_dir.join("artifacts"))?;
        // A job left half-signed by a crash is not silently retried: it fails, visibly.
        for id in fwseal_store::JobQueue::fail_interrupted(store.as_ref())? {
            tracing::warn!(job = %id, "job was being signed when the daemon stopped; marked failed");
        }
        Ok(AppState {
            config: RwLock::new(Arc::new(config)),
            keys,
            store,
            blobs,
            metrics: metrics::Metrics::default(),
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
}

/// Serve `app(state)` on `listener` until `shutdown` completes, then finish in-flight requests.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
