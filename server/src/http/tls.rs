//! HTTPS: the certificate, given or self-signed (made on first start and kept in the data
//! directory), and the TLS configuration made of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::private_file::{self, Existing};

/// The self-signed certificate's file in the data directory (public).
pub const CERT_FILE: &str = "http.crt";
/// Its private key's file in the data directory (0600).
pub const KEY_FILE: &str = "http.key";

/// Why HTTPS cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file cannot be read or written.
    #[error("{0}: {1}")]
    File(PathBuf, String),
    /// The file holds no certificate, or no usable key.
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    /// The self-signed certificate cannot be made.
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate and key do not go together, or are of a kind rustls refuses.
    #[error("TLS: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

/// The server's TLS configuration from `cert` and `key` (PEM files), or from the self-signed
/// pair in `data_dir`, made if missing; also the SHA-256 fingerprint of the certificate.
pub fn server_config(
    given: Option<(&Path, &Path)>,
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<(Arc<ServerConfig>, String), TlsError> {
    let (cert_path, certs, key) = match given {
        Some((cert, key)) => {
            let key_pem =
                std::fs::read(key).map_err(|e| TlsError::File(key.into(), e.to_string()))?;
            (
                cert.to_path_buf(),
                read_certs(cert)?,
                parse_key(key, &key_pem)?,
            )
        }
        None => self_signed(data_dir, listen)?,
    };
    let first = certs
        .first()
        .ok_or_else(|| TlsError::Pem(cert_path.clone(), "no certificate".into()))?;
    let fingerprint = fingerprint(first);
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // HTTP/2 first: a browser opens at most 6 HTTP/1.1 connections to one server, which the
    // live pages' event streams of a few tabs would take up; over HTTP/2 they share one.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), fingerprint))
}

/// The self-signed pair of `data_dir`, made (key 0600) when either file is missing.
fn self_signed(
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<
    (
        PathBuf,
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
    ),
    TlsError,
> {
    let (cert_path, key_path) = (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE));
    if !cert_path.exists() || !key_path.exists() {
        let made = rcgen::generate_simple_self_signed(names(listen))?;
        let write = |path: &Path, pem: String| {
            private_file::write(path, pem.as_bytes(), Existing::Replace)
                .map_err(|e| TlsError::File(path.into(), e.to_string()))
        };
        write(&key_path, made.signing_key.serialize_pem())?;
        write(&cert_path, made.cert.pem())?;
        tracing::info!(certificate = %cert_path.display(), "made a self-signed HTTPS certificate");
    }
    let key_pem = private_file::read(&key_path)
        .map_err(|e| TlsError::File(key_path.clone(), e.to_string()))?;
    let key = parse_key(&key_path, key_pem.as_bytes())?;
    Ok((cert_path.clone(), read_certs(&cert_path)?, key))
}

/// The names a self-signed certificate is for: this machine's name, `localhost`, the loopback
/// addresses, and the address listened on when it is a particular one.
fn names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.into());
        }
    }
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    names
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::File(path.into(), e.to_string()))?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(path.into(), e.to_string()))
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem(path.into(), e.to_string()))
}

/// A certificate's SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` shows it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}
