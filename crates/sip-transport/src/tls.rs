//! SIP over TLS (RFC 3261 §26, RFC 5630): the listener's handshake, the
//! certificate that can be replaced while running, and the client side for
//! calls the focus places, verified against the system's roots (and any
//! extra CA the operator names). Everything after the handshake is the
//! stream transport's (`tcp.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::Shared;
use sip::transaction::TransportKind;

/// A client that stops mid-handshake is dropped after this, so it holds
/// neither a task nor a connection slot for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Listen address (None: TLS only for the calls we place).
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain and private key (needed to listen).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// PEM CA certificates trusted besides the system's roots.
    pub extra_roots: Option<Vec<u8>>,
}

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain has no certificate, or is not PEM.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The private key is missing or not PEM.
    #[error("private key: {0}")]
    Key(String),
    /// rustls refused the pair (a key that does not match, an unsupported key).
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// Listening is asked for without a certificate.
    #[error("a TLS listener needs a certificate and a key")]
    NoIdentity,
}

/// The TLS state shared by the listener and the connections we open.
pub(crate) struct TlsState {
    /// The server side; replaced whole on reload (accepts in flight keep
    /// the one they started with).
    server: RwLock<Option<Arc<rustls::ServerConfig>>>,
    client: Arc<rustls::ClientConfig>,
    /// Host names to verify, for addresses the focus resolved from a name.
    names: Mutex<HashMap<SocketAddr, String>>,
}

impl TlsState {
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let server = match &config.identity {
            Some((cert, key)) => Some(server_config(cert, key)?),
            None => None,
        };
        Ok(Self {
            server: RwLock::new(server),
            client: client_config(config.extra_roots.as_deref())?,
            names: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the certificate and key (SIGHUP): new handshakes use them.
    pub(crate) fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        let fresh = server_config(cert_pem, key_pem)?;
        if let Ok(mut s) = self.server.write() {
            *s = Some(fresh);
        }
        Ok(())
    }

    pub(crate) fn set_name(&self, addr: SocketAddr, name: String) {
        if let Ok(mut n) = self.names.lock() {
            // Bounded: names come from dial-outs, which are rate-limited.
            if n.len() >= 4096 {
                n.clear();
            }
            n.insert(addr, name);
        }
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        let s = self.server.read().ok()?.clone()?;
        Some(TlsAcceptor::from(s))
    }
}

fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Certificate("no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

fn client_config(extra: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "a system root certificate could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system roots for TLS");
    if let Some(pem) = extra {
        for c in CertificateDer::pem_slice_iter(pem) {
            let c = c.map_err(|e| TlsError::Certificate(e.to_string()))?;
            roots.add(c)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts TLS connections until the core is gone. Each handshake runs on
/// its own task under a deadline, so a client that stalls holds nothing up.
pub(crate) async fn listen(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    crate::tcp::accept_loop(
        addr,
        shared,
        TransportKind::Tls,
        |stream, remote, shared| {
            let Some(acceptor) = shared.tls.as_ref().and_then(|t| t.acceptor()) else {
                return;
            };
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        crate::tcp::spawn_connection(tls, remote, TransportKind::Tls, shared)
                    }
                    failed => {
                        shared
                            .stats
                            .tls_handshake_failed
                            .fetch_add(1, Ordering::Relaxed);
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".into(),
                        };
                        tracing::info!(%remote, %error, "TLS handshake failed");
                    }
                }
            });
        },
    )
    .await
}

/// The client handshake for a connection we opened: the server must
/// present a certificate for the name the focus resolved (or the address).
pub(crate) async fn connect(
    shared: &Shared,
    stream: TcpStream,
    remote: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = shared
        .tls
        .as_ref()
        .ok_or_else(|| std::io::Error::other("TLS is not configured"))?;
    let name = tls.names.lock().ok().and_then(|n| n.get(&remote).cloned());
    let server_name = match name {
        Some(n) => ServerName::try_from(n).map_err(std::io::Error::other)?,
        None => ServerName::IpAddress(remote.ip().into()),
    };
    let connector = TlsConnector::from(tls.client.clone());
    tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, stream))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}
