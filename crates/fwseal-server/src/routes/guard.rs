//! The router's outermost middleware: what every request goes through before its handler.
//!
//! In order: a random request id (`x-request-id` on every answer, 128 bits from the OS, so it
//! says nothing of the request rate or boot time); the request-target limit (`414`); the
//! head-size limit (`431`); the
//! per-source-IP token bucket (`429` + `Retry-After`); the body idle timeout (a body that
//! pauses longer than `body_idle_timeout_secs` fails with `408`); the total request timeout
//! (`408` once `request_timeout_secs` pass before the answer starts). On the way out, any error
//! answer that is not yet a problem document (the router's own 404/405, an extractor's
//! rejection) becomes one, every 5xx is logged with its request id, code and cause, and the
//! request metrics are counted. The per-client bucket is checked where the client is known
//! (`routes::identify`).

use super::Shared;
use crate::problem::{Problem, ProblemInfo};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Most header fields in a request.
pub(crate) const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values in a request.
pub(crate) const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most bytes of a request target (path and query); hyper alone would take up to its 1 MiB
/// head buffer.
pub(crate) const MAX_URI_BYTES: usize = 8 << 10;

/// Per-router request state: ids, rate limiters and timeouts (from `[http]`, read once).
pub(crate) struct Guard {
    st: Shared,
    /// Requests seen (only to forget idle rate-limit buckets now and then).
    ids: AtomicU64,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    body_idle: Duration,
    request_timeout: Duration,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    l: crate::config::RateLimit,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(l.per_second)?;
    let burst = NonZeroU32::new(l.burst).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Guard {
    pub(crate) fn new(st: Shared) -> Arc<Self> {
        let h = st.config().http.clone();
        Arc::new(Guard {
            st,
            ids: AtomicU64::new(0),
            per_ip: limiter(h.per_ip),
            per_client: limiter(h.per_client),
            clock: DefaultClock::default(),
            body_idle: Duration::from_secs(h.body_idle_timeout_secs),
            request_timeout: Duration::from_secs(h.request_timeout_secs),
        })
    }

    /// One token from `key`'s bucket, or the seconds until one is there.
    fn take<K: std::hash::Hash + Eq + Clone>(
        &self,
        l: &Option<DefaultKeyedRateLimiter<K>>,
        key: &K,
        n: u64,
    ) -> Result<(), u64> {
        let Some(l) = l else { return Ok(()) };
        // Forget idle buckets now and then, so the maps stay as small as the active clients.
        if n % 4096 == 4095 {
            l.retain_recent();
            l.shrink_to_fit();
        }
        l.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// The per-client bucket, once the client is known: `Some` is the 429 answer.
    pub(crate) fn check_client(&self, client: &str) -> Option<Response> {
        let n = self.ids.load(Ordering::Relaxed);
        let secs = self.take(&self.per_client, &client.to_string(), n).err()?;
        self.limited("client");
        tracing::info!(client, retry_after = secs, "client over its rate limit");
        Some(Problem::rate_limited("per-client", secs).into_response())
    }

    fn limited(&self, scope: &str) {
        self.st
            .metrics
            .rate_limited
            .get_or_create(&crate::metrics::ScopeLabels {
                scope: scope.to_string(),
            })
            .inc();
    }
}

/// The middleware (see the module documentation).
pub(crate) async fn guard(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let n = g.ids.fetch_add(1, Ordering::Relaxed);
    let id = request_id();
    let t = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(g.clone());

    let mut resp = match admit(&g, &req, n) {
        Err(p) => p.into_response(),
        Ok(()) => {
            let (parts, body) = req.into_parts();
            let body = Body::new(IdleBody::new(body, g.body_idle));
            let req = Request::from_parts(parts, body);
            match tokio::time::timeout(g.request_timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => Problem::request_timeout(format!(
                    "the request did not complete within {} s",
                    g.request_timeout.as_secs()
                ))
                .into_response(),
            }
        }
    };
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error())
        && resp.extensions().get::<ProblemInfo>().is_none()
    {
        resp = as_problem(resp, method.as_str(), &path).await;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let route = route.unwrap_or_else(|| "unmatched".into());
    if status.is_server_error() {
        let (code, detail) = resp
            .extensions()
            .get::<ProblemInfo>()
            .map_or(("internal", ""), |p| (p.code, p.detail.as_str()));
        tracing::error!(
            request_id = %id,
            method = %method,
            route = %route,
            status = status.as_u16(),
            code,
            cause = %detail,
            "request failed"
        );
    }
    let m = &g.st.metrics;
    m.requests
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
            status: status.as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&crate::metrics::RouteOnly { route })
        .observe(t.elapsed().as_secs_f64());
    resp
}

/// A fresh request id: 128 random bits from the OS, in hex.
fn request_id() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The checks before the handler: request-target length, head size, then the per-IP bucket.
fn admit(g: &Guard, req: &Request, n: u64) -> Result<(), Problem> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(Problem::uri_too_long(target, MAX_URI_BYTES));
    }
    let h = req.headers();
    let bytes: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if h.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(Problem::headers_too_large(format!(
            "{} header fields, {bytes} bytes; the limits are {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes",
            h.len()
        )));
    }
    if let Some(ip) = req
        .extensions()
        .get::<crate::serve::ConnInfo>()
        .map(|c| crate::serve::source_key(c.peer.ip()))
    {
        if let Err(secs) = g.take(&g.per_ip, &ip, n) {
            g.limited("ip");
            tracing::info!(%ip, retry_after = secs, "source address over its rate limit");
            return Err(Problem::rate_limited("per-address", secs));
        }
    }
    Ok(())
}

/// An error answer not built from a [`Problem`], as one (headers such as `Allow` kept).
async fn as_problem(resp: Response, method: &str, path: &str) -> Response {
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 8 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let p = match parts.status {
        StatusCode::NOT_FOUND if text.is_empty() => Problem::not_found(path),
        StatusCode::METHOD_NOT_ALLOWED => Problem::method_not_allowed(method, path),
        s if text.is_empty() => Problem::for_status(s, s.canonical_reason().unwrap_or("error")),
        s => Problem::for_status(s, text),
    };
    let mut out = p.into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// A body read timed out (the client paused longer than the body idle timeout).
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body data for {0} s")]
pub(crate) struct BodyIdle(pub u64);

/// A request body that fails with [`BodyIdle`] when no data arrives for `idle`.
struct IdleBody {
    inner: Body,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleBody {
    fn new(inner: Body, idle: Duration) -> Self {
        IdleBody {
            inner,
            idle,
            timer: None,
        }
    }
}

impl http_body::Body for IdleBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let me = &mut *self;
        match Pin::new(&mut me.inner).poll_frame(cx) {
            Poll::Ready(x) => {
                me.timer = None;
                Poll::Ready(x.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = me.idle;
                let timer = me
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        me.timer = None;
                        Poll::Ready(Some(Err(Box::new(BodyIdle(idle.as_secs())))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
