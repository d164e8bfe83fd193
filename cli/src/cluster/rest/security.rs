//! The REST API's security (Flink's `security.ssl.rest.*`): TLS with the
//! certificate and key configured, and a bearer token every request must
//! carry (`security.rest.token`, weir's own), else 401.
//!
//! TLS handshakes run in tasks of their own, so that a client that
//! connects and says nothing holds up nobody; one that does not finish
//! its handshake within [`HANDSHAKE_TIMEOUT`] is dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::Failure;
use crate::Error;
use crate::cluster::settings::RestTls;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections that finished their handshake, waiting for the server.
const READY_BACKLOG: usize = 64;

/// The server's TLS configuration from `security.ssl.rest.certificate`
/// and `.key`.
pub(super) fn acceptor(tls: &RestTls) -> Result<TlsAcceptor, Error> {
    let missing = |key: &str| format!("`security.ssl.rest.enabled` is true but `{key}` is not set: name a PEM file");
    let certificate = tls.certificate.as_deref().ok_or_else(|| missing("security.ssl.rest.certificate"))?;
    let key = tls.key.as_deref().ok_or_else(|| missing("security.ssl.rest.key"))?;
    let unreadable = |key: &str, path: &Path, error: &dyn std::fmt::Display| {
        format!("`{key}` {}: cannot read it as PEM: {error}", path.display())
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|all| all.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unreadable("security.ssl.rest.certificate", certificate, &e))?;
    if chain.is_empty() {
        return Err(format!("`security.ssl.rest.certificate` {} holds no certificate", certificate.display()).into());
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("security.ssl.rest.key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            format!(
                "`security.ssl.rest.certificate` {} and `security.ssl.rest.key` {} do not go together: {e}",
                certificate.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener whose connections speak TLS: axum serves what it accepts.
pub(super) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp`, handshaking each connection in a task of its own.
    pub(super) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (handshaken, ready) = mpsc::channel(READY_BACKLOG);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, most likely: let some close.
                        tracing::warn!("the REST API cannot accept a connection: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, handshaken) = (acceptor.clone(), handshaken.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => _ = handshaken.send((tls, peer)).await,
                        Ok(Err(error)) => tracing::debug!("TLS handshake with REST client {peer} failed: {error}"),
                        Err(_) => tracing::debug!("REST client {peer} did not finish its TLS handshake in time"),
                    }
                });
            }
        });
        Ok(Self { local, ready, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended: it never does while this lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`.
pub(super) async fn bearer_token(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let refused = match given.and_then(|value| value.strip_prefix(b"Bearer ")) {
        Some(given) if same(given, token.as_bytes()) => return next.run(request).await,
        Some(_) => "the bearer token is not this cluster's `security.rest.token`",
        None => "this REST API wants a bearer token: send `Authorization: Bearer TOKEN` (`security.rest.token`)",
    };
    let mut response = Failure(StatusCode::UNAUTHORIZED, refused.to_owned()).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Whether `a` and `b` are equal, in time that does not tell how much of
/// them is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |differ, (x, y)| differ | (x ^ y)) == 0
}
