//! The HTTP layer: the router, its outermost middleware (`guard`: request ids, head-size
//! limit, per-IP rate limit, body idle and request timeouts, problem documents for every error,
//! 5xx logging, request metrics), and thin adapters — authenticate (then the per-client rate
//! limit) → read the query and body (bounded per endpoint, only after authentication) → call
//! the [`SigningService`] on a blocking thread → map the result. Service errors become problem
//! documents only through `Problem::from(&ServiceError)`.
//!
//! One file per endpoint family: `sign` (sign, sign-batch, sign-params, sign-digest), `jobs`,
//! `artifacts` (with the bundle), `keys`, `audit`, `log`, `tsa` (the built-in TSA), `health`.

mod artifacts;
mod audit;
mod guard;
mod health;
mod jobs;
mod keys;
mod log;
mod sign;
mod tsa;

use crate::auth::{bearer, Identity};
use crate::problem::Problem;
use crate::service::{ServiceError, SigningService};
use axum::body::Bytes;
use axum::extract::Query;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use fwseal_store::Action;
use std::sync::Arc;

type Shared = Arc<SigningService>;

/// The router.
pub fn app(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(health::openapi))
        .route("/v1/products/{product}/sign", post(sign::sign))
        .route("/v1/products/{product}/sign-batch", post(sign::sign_batch))
        .route(
            "/v1/products/{product}/sign-digest",
            post(sign::sign_digest),
        )
        .route("/v1/products/{product}/sign-params", get(sign::sign_params))
        .route("/v1/products/{product}/artifacts", get(artifacts::list))
        .route("/v1/products/{product}/keys", get(keys::product_keys))
        .route("/v1/appliance/keys", get(keys::appliance_keys))
        .route("/v1/artifacts/{id}", get(artifacts::meta))
        .route("/v1/artifacts/{id}/{part}", get(artifacts::part))
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/inclusion", get(log::inclusion))
        .route("/v1/log/consistency", get(log::consistency))
        .route("/v1/tsa", post(tsa::timestamp))
        .route("/v1/tsa/certificate", get(tsa::certificate))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::show))
        .route("/v1/jobs/{id}/input", get(jobs::input))
        .route("/v1/jobs/{id}/approve", post(jobs::approve))
        .route("/v1/jobs/{id}/reject", post(jobs::reject))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read by the handlers themselves, bounded per endpoint.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            guard::Guard::new(state.clone()),
            guard::guard,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    Problem::not_found(uri.path()).into_response()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    Problem::method_not_allowed(method.as_str(), uri.path()).into_response()
}

/// The credentials of a request: its bearer token and, on a mutual-TLS connection, the
/// verified client certificate's subject CN.
pub(crate) struct Credentials {
    token: Option<String>,
    peer: Option<String>,
    guard: Option<Arc<guard::Guard>>,
    /// The peer's address (recorded by the server loop as [`crate::serve::ConnInfo`]).
    source: Option<String>,
    /// A POST: the request changes state (an OIDC issuer's replay refusal applies).
    consumes: bool,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Credentials {
            token: bearer(&parts.headers).map(str::to_string),
            peer: parts
                .extensions
                .get::<crate::tls::PeerIdentity>()
                .and_then(|p| p.0.clone()),
            guard: parts.extensions.get::<Arc<guard::Guard>>().cloned(),
            source: parts
                .extensions
                .get::<crate::serve::ConnInfo>()
                .map(|c| c.peer.ip().to_string()),
            consumes: parts.method == axum::http::Method::POST,
        })
    }
}

/// Run a blocking service call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ServiceError::internal(e)))
}

/// Authenticate a request (failures audited under `action`), then take one token from the
/// client's rate-limit bucket (a `429` is counted and logged, not audited).
pub(crate) async fn identify(
    st: &Shared,
    creds: Credentials,
    action: Action,
    product: Option<&str>,
) -> Result<Identity, Response> {
    let (st, product) = (st.clone(), product.map(str::to_string));
    let Credentials {
        token,
        peer,
        guard,
        source,
        consumes,
    } = creds;
    let who = blocking(move || {
        st.identify(
            token.as_deref(),
            peer.as_deref(),
            source.as_deref(),
            action,
            product.as_deref(),
            consumes,
        )
    })
    .await
    .map_err(|e| problem(&e))?;
    if let Some(refused) = guard.and_then(|g| g.check_client(&who.name)) {
        return Err(refused);
    }
    Ok(who)
}

/// The query of an authenticated request, or why it is a `400` (audited as `who`'s refusal).
pub(crate) fn query<T>(
    st: &Shared,
    who: &Identity,
    action: Action,
    product: Option<&str>,
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ServiceError> {
    q.map(|Query(q)| q).map_err(|rej| {
        let e = ServiceError::BadRequest(format!("query string: {}", rej.body_text()));
        st.refused(who, action, product, &e);
        e
    })
}

/// Read a whole request body of at most `limit` bytes (after authentication); refusals are
/// audited as `who`'s.
pub(crate) async fn read_body(
    st: &Shared,
    who: &Identity,
    action: Action,
    product: Option<&str>,
    body: axum::body::Body,
    limit: u64,
) -> Result<Bytes, Response> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            let e = body_error(e.as_ref(), || ServiceError::BodyTooLarge { limit });
            st.refused(who, action, product, &e);
            Err(problem(&e))
        }
    }
}

/// The service error for a failed body read: over the limit (`too_large`), the body idle
/// timeout, or an unreadable body — told apart by type, through the error's sources.
pub(crate) fn body_error(
    e: &(dyn std::error::Error + 'static),
    too_large: impl FnOnce() -> ServiceError,
) -> ServiceError {
    if find_in_chain::<http_body_util::LengthLimitError>(e).is_some() {
        too_large()
    } else if let Some(idle) = find_in_chain::<guard::BodyIdle>(e) {
        ServiceError::RequestTimeout(idle.to_string())
    } else {
        ServiceError::BadRequest(format!("reading the request body: {e}"))
    }
}

/// A JSON reply, or the problem document for the error.
pub(crate) fn reply<T: serde::Serialize>(r: Result<T, ServiceError>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => problem(&e),
    }
}

/// The problem document for an error.
pub(crate) fn problem(e: &ServiceError) -> Response {
    Problem::from(e).into_response()
}

/// A JSON body, or a 400 naming what is wrong with it.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    what: &str,
) -> Result<T, ServiceError> {
    serde_json::from_slice(body)
        .map_err(|e| ServiceError::BadRequest(format!("{what} body must be JSON: {e}")))
}

/// The first error of type `T` in `e`'s source chain (`e` itself included).
pub(crate) fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// Spool an upload (a request body or one multipart part) to a file in the service's spool,
/// hashing it; enforce the size limit. `on_err` classifies a stream error.
pub(crate) async fn spool<E>(
    st: &Shared,
    mut stream: impl futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    on_err: impl Fn(E) -> ServiceError,
) -> Result<crate::service::intake::Upload, ServiceError> {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncWriteExt;
    let limit = st.config().max_upload_bytes;
    let (file, path) = st.spool_file()?;
    let mut file = tokio::fs::File::from_std(file);
    let mut h = Sha256::new();
    let mut len = 0u64;
    let spool_err = |e: std::io::Error| ServiceError::Internal(format!("spool: {e}"));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(&on_err)?;
        len += chunk.len() as u64;
        if len > limit {
            return Err(ServiceError::TooLarge { limit });
        }
        h.update(&chunk);
        file.write_all(&chunk).await.map_err(spool_err)?;
    }
    file.flush().await.map_err(spool_err)?;
    Ok(crate::service::intake::Upload {
        path,
        len,
        sha256: h.finalize().into(),
    })
}

/// A streamed file download from a blob.
pub(crate) fn download(blob: fwseal_store::Blob, content_type: &str, file_name: &str) -> Response {
    use axum::http::header;
    let len = blob.len;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let mut reader = blob.reader;
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream_from(rx));
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn tokio_stream_from<T>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
