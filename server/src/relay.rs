//! Agents reached through the server they called home to. With several servers on one
//! database, an agent behind NAT keeps one connection, to the server it called; another server
//! that needs it (an API request, a command, a launch there) asks that server for an otto
//! channel on the agent and speaks the protocol through it, as over its own connection.
//!
//! The server holding the call publishes where it relays (its HTTPS address) and its
//! certificate in the database ([`crate::store::LeaseStore::advertise_relay`]); the other
//! server connects there trusting only that certificate, and proves it is one of the fleet's
//! servers with a token sealed by the key-encryption key that every server is given
//! (`secrets.key`), naming the host and good for [`TOKEN_TTL_MS`]. The relaying server opens a
//! channel on the agent's connection and answers `101 Switching Protocols`; from then on the
//! HTTP connection carries the channel's bytes both ways, which the asking server frames and
//! checks as it does its own (the relaying server reads none of it).

use std::sync::Arc;

use axum::http::{StatusCode, header};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::client::{ClientError, Relay, RelayIo};
use crate::model::{RelayServer, now_ms};
use crate::store::secrets::{Keyring, SecretError};

/// Where a server relays channels to the agents that called it: `/relay/v1/hosts/{host}`.
pub const ROUTE: &str = "/relay/v1/hosts/{host}";

/// The header that carries the asking server's token.
pub const TOKEN_HEADER: &str = "otto-relay-token";

/// The protocol named in the `Upgrade` header.
pub const PROTOCOL: &str = "otto-relay";

/// How long a token is good for (ms).
pub const TOKEN_TTL_MS: i64 = 30_000;

/// Why a relay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// This server has no key-encryption key, so it cannot prove it is one of the fleet's.
    #[error("{0}")]
    Key(#[from] SecretError),
    /// The certificate the other server published does not parse.
    #[error("the certificate server {0} published is not PEM: {1}")]
    Certificate(String, String),
    /// The HTTPS client could not be made.
    #[error("HTTPS to server {0}: {1}")]
    Client(String, String),
}

/// The label a token for `host` is sealed with.
fn label(host: &str) -> String {
    format!("relay:{host}")
}

/// A token that lets its bearer have a channel on `host`'s agent relayed, for
/// [`TOKEN_TTL_MS`] from now; `Missing` when this server has no key-encryption key (it is not
/// one of the fleet's servers, or lost its key): none is made then.
pub fn token(keyring: &Keyring, host: &str) -> Result<String, SecretError> {
    if !keyring.path().exists() {
        return Err(SecretError::Missing(keyring.path().to_path_buf()));
    }
    keyring.seal(&label(host), &(now_ms() + TOKEN_TTL_MS).to_string())
}

/// Whether `token` was made by a server with the fleet's key, for `host`, and is still good.
pub fn token_holds(keyring: &Keyring, host: &str, token: &str) -> bool {
    keyring
        .open(&label(host), token)
        .ok()
        .and_then(|until| until.parse::<i64>().ok())
        .is_some_and(|until| now_ms() <= until)
}

/// The way to one host's agent through `server`, the one it called home to.
pub struct Via {
    server: RelayServer,
    host: String,
    keyring: Keyring,
    client: reqwest::Client,
}

impl Via {
    /// The way to `host` through `server`, trusting only the certificate it published and
    /// proving this server with the key in `keyring`.
    pub fn new(server: RelayServer, host: &str, keyring: Keyring) -> Result<Via, RelayError> {
        let certificate = pem_certificate(&server.certificate)
            .ok_or_else(|| RelayError::Certificate(server.name.clone(), "no certificate".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| RelayError::Client(server.name.clone(), e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                certificate,
                provider,
            }))
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(std::time::Duration::from_secs(10))
            .http1_only()
            .build()
            .map_err(|e| RelayError::Client(server.name.clone(), e.to_string()))?;
        Ok(Via {
            server,
            host: host.to_owned(),
            keyring,
            client,
        })
    }
}

/// The first certificate in `pem`, as DER.
fn pem_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok()
}

#[async_trait::async_trait]
impl Relay for Via {
    async fn open(&self) -> Result<Box<dyn RelayIo>, ClientError> {
        let fail = |reason: String| ClientError::Relay {
            server: self.server.name.clone(),
            reason,
        };
        let token = token(&self.keyring, &self.host).map_err(|e| fail(e.to_string()))?;
        let url = format!(
            "https://{}{}",
            self.server.address,
            ROUTE.replace("{host}", &self.host)
        );
        let response = self
            .client
            .get(&url)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, PROTOCOL)
            .header(TOKEN_HEADER, token)
            .send()
            .await
            .map_err(|e| fail(format!("{url}: {}", crate::cli::remote::chain(&e))))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let text = crate::sanitize::field(text.trim(), crate::sanitize::MESSAGE_MAX);
            return Err(fail(format!("{status}: {text}")));
        }
        let stream = response
            .upgrade()
            .await
            .map_err(|e| fail(format!("{url}: {e}")))?;
        Ok(Box::new(stream))
    }
}

/// Trusts exactly one certificate: the one the other server published in the database
/// (its signatures checked as usual).
#[derive(Debug)]
struct Pinned {
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate this server published in the database".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_for_its_host_with_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        // Without the key there is no token (and no key is made).
        assert!(token(&Keyring::new(path.clone()), "r1").is_err());
        assert!(!path.exists());
        crate::store::secrets::new_key_file(&path).unwrap();
        let keyring = Keyring::new(path);
        let made = token(&keyring, "r1").unwrap();
        assert!(token_holds(&keyring, "r1", &made));
        assert!(!token_holds(&keyring, "r2", &made));
        assert!(!token_holds(&keyring, "r1", "00"));
        let other = dir.path().join("other.key");
        crate::store::secrets::new_key_file(&other).unwrap();
        assert!(!token_holds(&Keyring::new(other), "r1", &made));
        // One that has run out does not hold.
        let old = keyring
            .seal(&label("r1"), &(now_ms() - 1).to_string())
            .unwrap();
        assert!(!token_holds(&keyring, "r1", &old));
    }
}
