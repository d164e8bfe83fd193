//! Mutual TLS between hosts (Flink's `security.ssl.internal.*`).
//!
//! With TLS on, a host accepts a connection only from a peer presenting a
//! certificate issued by the configured CA, and dials only peers whose
//! certificate that CA issued for the host name or IP address being
//! dialled. Every host uses its own certificate and key, signed by the
//! cluster's CA.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::io::{Reader, Writer};
use crate::config::TlsConfig;

/// TLS material that cannot be used: which file (by its `[host] tls` key),
/// and why.
#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsError(String);

/// Names a TLS file by its key and path, for errors.
fn file(key: &str, path: &Path) -> String {
    format!("`[host] tls.{key}` = {}", path.display())
}

/// A host's ready TLS configuration, for both directions.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Reads the files and builds the client and server configurations.
    ///
    /// # Errors
    ///
    /// Unreadable files, or certificates and keys rustls refuses.
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in certificates("ca", &config.ca)? {
            roots
                .add(ca)
                .map_err(|e| TlsError(format!("{}: not a usable CA certificate: {e}", file("ca", &config.ca))))?;
        }
        let roots = Arc::new(roots);
        let chain = certificates("certificate", &config.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|e| {
            TlsError(format!("{}: cannot read a private key: {}", file("key", &config.key), pem_error(&e)))
        })?;
        let mismatch = |e: rustls::Error| {
            TlsError(format!(
                "{} and {} do not go together: {e}",
                file("certificate", &config.certificate),
                file("key", &config.key)
            ))
        };
        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError(format!("{}: {e}", file("ca", &config.ca))))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(mismatch)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(mismatch)?;
        Ok(Self { acceptor: TlsAcceptor::from(Arc::new(server)), connector: TlsConnector::from(Arc::new(client)) })
    }

    /// The server side of the TLS handshake on an accepted connection.
    pub(crate) async fn accept(&self, stream: TcpStream) -> std::io::Result<(Reader, Writer)> {
        let stream = self.acceptor.accept(stream).await?;
        let (reader, writer) = tokio::io::split(stream);
        Ok((Box::new(reader), Box::new(writer)))
    }

    /// The client side of the TLS handshake with `host`, the name or IP
    /// address the peer's certificate must carry.
    pub(crate) async fn connect(&self, host: &str, stream: TcpStream) -> std::io::Result<(Reader, Writer)> {
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{host}`: {e}")))?;
        let stream = self.connector.connect(name, stream).await?;
        let (reader, writer) = tokio::io::split(stream);
        Ok((Box::new(reader), Box::new(writer)))
    }
}

/// The PEM certificates in the file `key` names.
fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |e: rustls_pki_types::pem::Error| {
        TlsError(format!("{}: cannot read certificates: {}", file(key, path), pem_error(&e)))
    };
    let certificates =
        CertificateDer::pem_file_iter(path).map_err(unreadable)?.collect::<Result<Vec<_>, _>>().map_err(unreadable)?;
    if certificates.is_empty() {
        return Err(TlsError(format!("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", file(key, path))));
    }
    Ok(certificates)
}

/// A PEM error as a person reads it: an unreadable file says why.
fn pem_error(error: &rustls_pki_types::pem::Error) -> String {
    match error {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "the file holds no PEM item of that kind".into(),
        other => other.to_string(),
    }
}

/// Splits a plain TCP connection.
pub(crate) fn plain(stream: TcpStream) -> (Reader, Writer) {
    let (reader, writer) = stream.into_split();
    (Box::new(reader), Box::new(writer))
}
