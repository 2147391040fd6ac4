//! TLS (rustls) and mutual TLS for the API.
//!
//! [`load_tls`] builds the rustls server config from the `[tls]` section; with `client_ca` set,
//! clients must present a certificate chaining to that CA. [`run_tls`] serves the router over TLS:
//! every connection gets a [`PeerIdentity`] request extension holding the verified client
//! certificate's subject CN, which `auth` checks against the client's `tls_subject`.

use crate::config::TlsConfig;
use crate::AppState;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The verified client certificate's subject common name, if the client presented one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity(pub Option<String>);

/// Errors loading TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("TLS {what} {path}: {detail}")]
    File {
        /// Which file.
        what: &'static str,
        /// Path.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Build the server config: certificate chain and key (PEM: PKCS#8, SEC1 or PKCS#1), TLS 1.2 and
/// 1.3, ALPN h2 + http/1.1, and client-certificate verification when `client_ca` is set.
pub fn load_tls(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_err =
        |what: &'static str, p: &std::path::Path, e: &dyn std::fmt::Display| TlsError::File {
            what,
            path: p.display().to_string(),
            detail: e.to_string(),
        };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .map_err(|e| file_err("certificate", &cfg.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err("certificate", &cfg.cert, &e))?;
    if certs.is_empty() {
        return Err(file_err("certificate", &cfg.cert, &"no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| file_err("key", &cfg.key, &e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| file_err("client CA", ca, &e))? {
                roots
                    .add(c.map_err(|e| file_err("client CA", ca, &e))?)
                    .map_err(|e| file_err("client CA", ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Subject CN of a DER certificate.
pub(crate) fn subject_cn(der: &[u8]) -> Option<String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == const_oid::db::rfc4519::CN {
                return der::asn1::Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_string())
                    .or_else(|_| {
                        der::asn1::PrintableStringRef::try_from(&atv.value)
                            .map(|s| s.as_str().to_string())
                    })
                    .ok();
            }
        }
    }
    None
}

/// Serve [`crate::app`] over TLS on `listener` until `shutdown` completes, then let in-flight
/// connections finish (bounded by 30 s). A failed handshake affects only its own connection.
/// Connection limits and timeouts are those of the plain listener (`[http]`); ALPN `h2`
/// selects HTTP/2, anything else HTTP/1.1.
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::serve::serve(listener, state, Some(tls), shutdown).await
}
