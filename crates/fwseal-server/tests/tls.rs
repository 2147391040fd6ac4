//! TLS and mutual TLS: `run_tls` with a test PKI made by rcgen, driven by a rustls client
//! speaking raw HTTP/1.1. The key service is a stub (no signing happens here).
#![allow(clippy::unwrap_used)]

use fwseal_server::config::{Config, TlsConfig};
use fwseal_server::keys::{ApplianceSigners, KeyError, KeyService, ProductSigners};
use fwseal_server::tls::{load_tls, run_tls};
use fwseal_server::AppState;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct NoKeys;
impl KeyService for NoKeys {
    fn product_signers(
        &self,
        _: &str,
        _: Option<fwseal_crypto::SigAlg>,
        _: Option<fwseal_crypto::SigAlg>,
    ) -> Result<ProductSigners, KeyError> {
        Err(KeyError::Unavailable("no keys in this test".into()))
    }
    fn appliance_signers(&self) -> Result<ApplianceSigners, KeyError> {
        Err(KeyError::Unavailable("no keys in this test".into()))
    }
    fn health(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(cn: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        let ca = p.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }
    /// A leaf (DER cert, PKCS#8 DER key).
    fn leaf(&self, cn: &str, sans: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

const FACTORY: &str = "factory-token";
const CI: &str = "ci-token";

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

struct Server {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(pki: &Pki) -> Server {
    start_with(pki, "").await
}

/// [`start`], with `extra` appended to the configuration.
async fn start_with(pki: &Pki, extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.leaf("fwseal.test", &["localhost", "127.0.0.1"]);
    let w = |n: &str, label: &str, der: &[u8]| {
        let p = dir.path().join(n);
        std::fs::write(&p, fwseal_crypto::verify::pem_encode(label, der)).unwrap();
        p
    };
    let cert_p = w("server.pem", "CERTIFICATE", &cert);
    let key_p = w("server.key", "PRIVATE KEY", &key);
    let ca_p = w("ca.pem", "CERTIFICATE", pki.ca.der());
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
identity = "https://fwseal.test/appliance"
[tls]
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
[hsm]
pin_env = "FWSEAL_TEST_PIN"
[[product]]
name = "widget"
[[client]]
name = "factory"
token_sha256 = "{factory}"
roles = {{ "*" = ["factory"] }}
tls_subject = "factory-1"
[[client]]
name = "ci"
token_sha256 = "{ci}"
roles = {{ "*" = ["factory"] }}
{extra}
"#,
        state = state_dir.display(),
        cert = cert_p.display(),
        key = key_p.display(),
        ca = ca_p.display(),
        factory = sha_hex(FACTORY.as_bytes()),
        ci = sha_hex(CI.as_bytes()),
    );
    let cfg = Config::parse(&toml, Path::new("tls.toml")).unwrap();
    let tls = load_tls(cfg.tls.as_ref().unwrap()).unwrap();
    let store = Arc::new(fwseal_store::SqliteStore::open(state_dir.join("audit.db")).unwrap());
    let state = Arc::new(AppState::new(cfg, Arc::new(NoKeys), store).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_tls(listener, state, tls, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

/// GET `path` over TLS; Ok(status) or Err(description) when TLS or HTTP fails.
async fn get(
    addr: std::net::SocketAddr,
    ca: &[u8],
    client: Option<(Vec<u8>, Vec<u8>)>,
    token: &str,
    path: &str,
) -> Result<u16, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.to_vec())).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match client {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from(c)],
                PrivateKeyDer::try_from(k).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut s = conn
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?;
    if let Err(e) = r {
        if buf.is_empty() {
            return Err(format!("read: {e}"));
        }
    }
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let pki = Pki::new("fwseal test CA");
    let other = Pki::new("someone else's CA");
    let mut srv = start(&pki).await;
    let ca = pki.ca.der().to_vec();
    let good = pki.leaf("factory-1", &[]);
    let wrong_cn = pki.leaf("factory-2", &[]);
    let foreign = other.leaf("factory-1", &[]);
    let path = "/v1/products/widget/artifacts";

    // Certificate + token whose tls_subject matches → served.
    assert_eq!(
        get(srv.addr, &ca, Some(good.clone()), FACTORY, path).await,
        Ok(200)
    );
    assert_eq!(
        get(srv.addr, &ca, Some(good.clone()), FACTORY, "/healthz").await,
        Ok(200)
    );
    // A client without tls_subject needs only its token (on a verified connection).
    assert_eq!(
        get(srv.addr, &ca, Some(good.clone()), CI, path).await,
        Ok(200)
    );
    // Valid certificate, but not the one this token is bound to → 401.
    assert_eq!(
        get(srv.addr, &ca, Some(wrong_cn), FACTORY, path).await,
        Ok(401)
    );
    // No client certificate, or one from another CA → no HTTP exchange at all.
    assert!(get(srv.addr, &ca, None, FACTORY, "/healthz").await.is_err());
    assert!(get(srv.addr, &ca, Some(foreign), FACTORY, "/healthz")
        .await
        .is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "plain HTTP was served"
    );
    // The server still serves after all of that, and stops when asked.
    assert_eq!(
        get(srv.addr, &ca, Some(good), FACTORY, "/healthz").await,
        Ok(200)
    );
    let _ = srv.stop.take().unwrap().send(());
    let res = tokio::time::timeout(std::time::Duration::from_secs(35), &mut srv.task).await;
    assert!(
        matches!(res, Ok(Ok(Ok(())))),
        "run_tls did not stop cleanly: {res:?}"
    );
}

#[test]
fn tls_subject_without_client_ca_is_a_config_error() {
    let toml = r#"
listen = "127.0.0.1:0"
state_dir = "/tmp/x"
identity = "i"
[hsm]
pin_env = "P"
[[client]]
name = "c"
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
tls_subject = "c"
"#;
    let e = Config::parse(toml, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls_subject needs mutual TLS"), "{e}");
    let _unused: Option<TlsConfig> = None;
}

/// An HTTP/2 connection that answers keep-alive pings but sends no request is closed
/// (GOAWAY) once it has had no request in flight for `header_read_timeout_secs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let pki = Pki::new("fwseal test CA");
    let srv = start_with(&pki, "[http]\nheader_read_timeout_secs = 1\n").await;
    let (c, k) = pki.leaf("factory-1", &[]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca.der().to_vec()))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(c)],
        PrivateKeyDer::try_from(k).unwrap(),
    )
    .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<axum::body::Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = axum::http::Request::get("https://localhost/healthz")
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    // No further request; the client stays (and answers pings). The server must close.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), conn).await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection was still open after 10 s (header_read_timeout_secs = 1)"
    );
    drop(send);
}
