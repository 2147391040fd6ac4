//! fwseal-server: the HTTP appliance. The only crate that knows HTTP.
//!
//! Two layers: [`service::SigningService`] does everything (blocking, typed errors, no HTTP
//! types); `routes` adapts HTTP requests to it and its errors to RFC 9457 problem documents.
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

pub mod auth;
pub mod config;
pub mod keys;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub use fwseal_formats::files as pipeline;
pub mod problem;
mod routes;
mod serve;
pub mod service;
pub mod tls;
pub mod tsa;
pub mod tsa_server;

pub use routes::app;
pub use serve::ConnInfo;
pub use service::{ServiceError, SigningService};

/// The router's state: the signing service itself (HTTP adds no state of its own).
pub type AppState = SigningService;

use std::sync::Arc;

/// Serve `app(state)` on `listener` (plain HTTP/1.1) until `shutdown` completes, then finish
/// in-flight requests (bounded by 30 s). The `[http]` limits apply: connection limit and
/// header-read timeout here, body, request and rate limits in the router.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve(listener, state, None, shutdown).await
}
