//! TLS to the database: rustls with ring, as everywhere else in the server. Whether it is used
//! is the URL's `sslmode`: `disable`, `prefer` (the default: TLS when the server offers it) or
//! `require`. The server's certificate is always verified, name included: against the system's
//! roots and the PEM file that `sslrootcert` in the URL (or libpq's `PGSSLROOTCERT`) names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// Why TLS to the database could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The root certificate file cannot be used.
    #[error("sslrootcert {0}: {1}")]
    RootCert(PathBuf, String),
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Config(String),
}

/// `url` without its `sslrootcert` (which the driver does not take), and that file if given.
pub fn split_root_cert(url: &str) -> (String, Option<PathBuf>) {
    if let Some((base, query)) = url.split_once('?').filter(|_| url.contains("://")) {
        let mut cert = None;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| match pair.strip_prefix("sslrootcert=") {
                Some(path) => {
                    cert = Some(PathBuf::from(percent_decoded(path)));
                    false
                }
                None => true,
            })
            .collect();
        let url = match kept.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", kept.join("&")),
        };
        return (url, cert);
    }
    match super::setting(url, "sslrootcert") {
        Some((span, path)) => (
            format!("{}{}", &url[..span.start], &url[span.end..])
                .trim()
                .to_string(),
            Some(PathBuf::from(path)),
        ),
        None => (url.to_string(), None),
    }
}

/// `%XX` escapes of a URL's query value decoded (others left as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector: the system's roots, and those of `root_cert` (else `$PGSSLROOTCERT`).
pub fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let from_env = std::env::var_os("PGSSLROOTCERT").map(PathBuf::from);
    if let Some(path) = root_cert.map(Path::to_path_buf).or(from_env) {
        let bad = |e: String| TlsError::RootCert(path.clone(), e);
        let certs = CertificateDer::pem_file_iter(&path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for cert in certs {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no certificate in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_taken_out_of_both_forms() {
        assert_eq!(
            split_root_cert("postgres://u@db/otto?sslmode=require&sslrootcert=%2Fetc%2Fca.pem"),
            (
                "postgres://u@db/otto?sslmode=require".to_string(),
                Some(PathBuf::from("/etc/ca.pem"))
            )
        );
        assert_eq!(
            split_root_cert("postgres://u@db/otto?sslrootcert=/ca.pem"),
            (
                "postgres://u@db/otto".to_string(),
                Some(PathBuf::from("/ca.pem"))
            )
        );
        assert_eq!(
            split_root_cert("host=db sslrootcert='/a b.pem' sslmode=require"),
            (
                "host=db  sslmode=require".to_string(),
                Some(PathBuf::from("/a b.pem"))
            )
        );
        assert_eq!(
            split_root_cert("postgres://u@db/otto"),
            ("postgres://u@db/otto".to_string(), None)
        );
    }
}
