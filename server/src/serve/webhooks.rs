//! The webhooks' job: every [`PASS`], the events of the log not matched yet are matched
//! against the webhooks and the deliveries due are attempted ([`Ops::queue_webhooks`],
//! [`Ops::deliver_webhooks`]). Several servers on one database share the work: a delivery is
//! queued once and claimed by one of them at a time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;

use crate::ops::Ops;

/// How often the log is read and deliveries are attempted.
pub const PASS: Duration = Duration::from_secs(1);

/// An HTTP client for deliveries: the system's certificate roots, no redirects followed.
fn client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(crate::cli::remote::system_roots())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("otto-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Tells the webhooks, as `ops` (the server's own), until `stopped` completes.
pub async fn run(ops: Ops, stopped: impl Future<Output = ()>) {
    let client = match client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("webhooks: no HTTP client: {e}; none will be told");
            return;
        }
    };
    tokio::pin!(stopped);
    loop {
        let pass = async {
            loop {
                match ops.queue_webhooks().await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!("webhooks: matching the log: {e}");
                        break;
                    }
                }
            }
            if let Err(e) = ops.deliver_webhooks(&client).await {
                tracing::warn!("webhooks: delivering: {e}");
            }
        };
        tokio::select! {
            () = &mut stopped => return,
            () = pass => {}
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(PASS) => {}
        }
    }
}
