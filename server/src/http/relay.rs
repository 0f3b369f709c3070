//! The relay of a channel to an agent that called home here, for another server of the fleet
//! ([`crate::relay`]): not a route of the API (no user calls it, and it is not in the OpenAPI
//! document), but served beside it.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::fleet::FleetError;
use crate::relay::{PROTOCOL, TOKEN_HEADER, token_holds};
use crate::store::secrets::{KEY_FILE, Keyring};

/// `GET /relay/v1/hosts/{host}` with `Upgrade: otto-relay`: relays a new otto channel on
/// `host`'s agent, which called home here, to the asking server. 403 without a good token,
/// 404 when the agent has no connection here, 503 when its agent refuses the channel.
pub async fn serve(
    State(api): State<ApiState>,
    Path(host): Path<String>,
    headers: HeaderMap,
    mut request: Request,
) -> Response {
    let keyring = Keyring::new(api.fleet.data_dir().join(KEY_FILE));
    let asked = headers
        .get(header::UPGRADE)
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
    if !asked {
        return (StatusCode::BAD_REQUEST, "Upgrade: otto-relay expected\n").into_response();
    }
    let good = headers
        .get(TOKEN_HEADER)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| token_holds(&keyring, &host, t));
    if !good {
        tracing::warn!(host, "a relay was asked for without a good token");
        return (StatusCode::FORBIDDEN, "no good relay token\n").into_response();
    }
    let channel = match api.fleet.channel_for_relay(&host).await {
        Ok(channel) => channel,
        Err(e) => {
            let status = match e {
                FleetError::NotCalledHome(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return (status, format!("{e}\n")).into_response();
        }
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                channel.relay(hyper_util::rt::TokioIo::new(upgraded)).await;
            }
            Err(e) => tracing::debug!(host, "relay not upgraded: {e}"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "upgrade"), (header::UPGRADE, PROTOCOL)],
    )
        .into_response()
}
