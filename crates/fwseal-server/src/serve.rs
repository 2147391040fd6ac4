//! The listener, for plain HTTP and TLS alike: one accept loop that bounds what a client can
//! hold.
//!
//! - **Connections**: at most `[http] max_connections` are served at once. At the limit the
//!   loop stops accepting, so further connections wait in the kernel's accept backlog (no file
//!   descriptor, no task) until one closes.
//! - **Request heads**: HTTP/1.1 with hyper's header-read timeout (`header_read_timeout_secs`),
//!   which also closes a kept-alive connection that sends no next request; the TLS handshake
//!   has the same bound. HTTP/2 (TLS with ALPN `h2` only) answers keep-alive pings within the
//!   same bound or is closed.
//! - Request bodies, whole requests, header sizes and rate limits are enforced per request by
//!   the router's outermost middleware (`routes::guard`).
//!
//! Every request carries a [`ConnInfo`] extension: the source address (per-IP rate limits)
//! and, on mutual TLS, the verified client certificate's subject ([`crate::tls::PeerIdentity`]).

use crate::tls::PeerIdentity;
use crate::AppState;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Most header fields hyper parses (the router refuses more than `routes::MAX_HEADERS` with a
/// problem document; hyper's own bare 431 only beyond this).
const HYPER_MAX_HEADERS: usize = 512;
/// hyper's read buffer for a request head (the router's own limit is smaller, see above).
const HYPER_MAX_BUF: usize = 1 << 20;

/// The connection a request arrived on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: SocketAddr,
}

/// Serve [`crate::app`] on `listener` (over TLS when `tls` is given) until `shutdown`
/// completes, then let in-flight connections finish (bounded by 30 s).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = state.config().http.clone();
    let head_timeout = Duration::from_secs(http.header_read_timeout_secs);
    let slots = Arc::new(tokio::sync::Semaphore::new(http.max_connections));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let router = crate::app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, wait for a slot before accepting (backpressure).
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let info = ConnInfo { peer };
            match acceptor {
                None => {
                    let svc = service(router, info, PeerIdentity(None));
                    serve_h1(tcp, svc, head_timeout, watcher).await;
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(head_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::info!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::info!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = stream.get_ref().1;
                    let cn = conn
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| crate::tls::subject_cn(c.as_ref()));
                    let h2 = conn.alpn_protocol() == Some(b"h2");
                    let svc = service(router, info, PeerIdentity(cn));
                    if h2 {
                        serve_h2(stream, svc, head_timeout, watcher).await;
                    } else {
                        serve_h1(stream, svc, head_timeout, watcher).await;
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("shutdown: gave up waiting for connections"),
    }
    Ok(())
}

/// The router as a hyper service, with the connection's facts on every request.
fn service(
    router: axum::Router,
    info: ConnInfo,
    peer: PeerIdentity,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    use tower::ServiceExt;
    let svc = tower::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(info);
        req.extensions_mut().insert(peer.clone());
        router.clone().oneshot(req)
    });
    hyper_util::service::TowerToHyperService::new(svc)
}

async fn serve_h1<I, S>(
    io: I,
    svc: S,
    head_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF);
    let conn = b.serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

async fn serve_h2<I, S>(
    io: I,
    svc: S,
    head_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .keep_alive_interval(Some(head_timeout))
        .keep_alive_timeout(head_timeout)
        .max_concurrent_streams(64)
        .max_header_list_size(64 << 10);
    let conn = b.serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
