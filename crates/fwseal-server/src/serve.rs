//! The listener, for plain HTTP and TLS alike: one accept loop that bounds what a client can
//! hold.
//!
//! - **Connections**: at most `[http] max_connections` are served at once. At the limit the
//!   loop stops accepting, so further connections wait in the kernel's accept backlog (no file
//!   descriptor, no task) until one closes. At most `max_connections_per_ip` of them come from
//!   one source ([`source_key`]: an IPv4 address or an IPv6 /64); a further connection from it
//!   is closed at once (counted in `fwseal_connections_refused_total`) and the loop goes on
//!   accepting, so one host cannot take every slot.
//! - **Request heads**: HTTP/1.1 with hyper's header-read timeout (`header_read_timeout_secs`),
//!   which also closes a kept-alive connection that sends no next request; the TLS handshake
//!   has the same bound. HTTP/2 (TLS with ALPN `h2` only) answers keep-alive pings within the
//!   same bound or is closed, and a connection with no request in flight for that long is
//!   shut down gracefully (GOAWAY).
//! - Request bodies, whole requests, header sizes and rate limits are enforced per request by
//!   the router's outermost middleware (`routes::guard`).
//!
//! Every request carries a [`ConnInfo`] extension: the source address (per-IP rate limits)
//! and, on mutual TLS, the verified client certificate's subject ([`crate::tls::PeerIdentity`]).

use crate::tls::PeerIdentity;
use crate::AppState;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
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

/// The source a client is counted under, for the per-source connection cap and rate limit: an
/// IPv4 address as is (an IPv4-mapped IPv6 address as its IPv4 address), an IPv6 address by
/// its /64 (a host is usually given a whole /64 and can pick any address in it).
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let net = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(net))
            }
        },
    }
}

/// Open connections per source ([`source_key`]).
struct PerSource {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's place in [`PerSource`] (given back on drop).
struct SourceSlot {
    table: Arc<PerSource>,
    key: IpAddr,
}

impl PerSource {
    /// A place for one more connection from `key`, or `None` if it already has `max`.
    fn claim(self: &Arc<Self>, key: IpAddr) -> Option<SourceSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
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
    let per_source = Arc::new(PerSource {
        max: http.max_connections_per_ip,
        open: Mutex::new(HashMap::new()),
    });
    let refused = state.metrics.connections_refused.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let router = crate::app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/2 connections are shut down by hand (they also close when idle), on this signal.
    let stop = tokio_util::sync::CancellationToken::new();
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
        let Some(source_slot) = per_source.claim(source_key(peer.ip())) else {
            // Closed at once; the global slot goes back with `permit`.
            refused.inc();
            tracing::debug!(%peer, "connection refused: its source is at max_connections_per_ip");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let stop = stop.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _source_slot = source_slot;
            let info = ConnInfo { peer };
            match acceptor {
                None => {
                    let svc = service(router, info, PeerIdentity(None), None);
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
                    if h2 {
                        let (active, idle) = tokio::sync::watch::channel(0usize);
                        let svc = service(router, info, PeerIdentity(cn), Some(Arc::new(active)));
                        serve_h2(stream, svc, head_timeout, idle, stop).await;
                        drop(watcher);
                    } else {
                        let svc = service(router, info, PeerIdentity(cn), None);
                        serve_h1(stream, svc, head_timeout, watcher).await;
                    }
                }
            }
        });
    }
    drop(listener);
    stop.cancel();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("shutdown: gave up waiting for connections"),
    }
    Ok(())
}

/// One request in flight on a connection (counted in its `active` count until dropped: when
/// the answer's body has been sent or dropped).
struct InFlight(Arc<tokio::sync::watch::Sender<usize>>);

impl InFlight {
    fn new(active: Arc<tokio::sync::watch::Sender<usize>>) -> Self {
        active.send_modify(|n| *n += 1);
        InFlight(active)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The router as a hyper service, with the connection's facts on every request; with
/// `active`, the requests in flight are counted there.
fn service(
    router: axum::Router,
    info: ConnInfo,
    peer: PeerIdentity,
    active: Option<Arc<tokio::sync::watch::Sender<usize>>>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let svc = tower::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(info);
        req.extensions_mut().insert(peer.clone());
        let in_flight = active.clone().map(InFlight::new);
        let answer = router.clone().oneshot(req);
        async move {
            let resp = answer.await?;
            Ok(match in_flight {
                None => resp,
                Some(g) => resp.map(|b| {
                    axum::body::Body::new(b.map_frame(move |f| {
                        let _ = &g;
                        f
                    }))
                }),
            })
        }
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

/// Resolves once `active` has been 0 for `idle` without a change.
async fn idle_for(active: &mut tokio::sync::watch::Receiver<usize>, idle: Duration) {
    loop {
        let busy = *active.borrow_and_update() > 0;
        let changed = if busy {
            active.changed().await
        } else {
            match tokio::time::timeout(idle, active.changed()).await {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        if changed.is_err() {
            // No more requests can start: the connection ends on its own.
            return std::future::pending().await;
        }
    }
}

/// An HTTP/2 connection: shut down gracefully (GOAWAY, in-flight streams finish) once no
/// request has been in flight for `head_timeout`, or on `stop`.
async fn serve_h2<I, S>(
    io: I,
    svc: S,
    head_timeout: Duration,
    mut active: tokio::sync::watch::Receiver<usize>,
    stop: tokio_util::sync::CancellationToken,
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
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle_for(&mut active, head_timeout), if !closing => {
                tracing::debug!("closing an idle HTTP/2 connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::source_key;
    use std::net::IpAddr;

    fn key(s: &str) -> IpAddr {
        source_key(s.parse().unwrap())
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        // IPv4 as is.
        assert_eq!(key("192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(
            key("::ffff:192.0.2.7"),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        // Every address of an IPv6 /64 is one source; the next /64 is another.
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(
            key("2001:db8:1:2:abcd::9"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // Loopback ::1 is its /64 (::), not 127.0.0.1.
        assert_ne!(key("::1"), key("127.0.0.1"));
    }
}
