//! `GET /v1/events`: chain events as JSON over a WebSocket. One task turns each chain
//! event into JSON once; each client reads from a bounded broadcast, and a client that
//! falls behind is closed ("lagged") rather than slowing anything down.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use oxchain_chain::ChainEvent;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::error::ApiError;
use crate::state::AppState;

/// A send that takes longer than this means the client is not reading: drop it.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Forwards chain events to the API's JSON broadcast and the metrics, until the chain
/// goes away.
pub(crate) async fn forward(state: AppState, mut chain: broadcast::Receiver<ChainEvent>) {
    let mut net = state.inner.net.as_ref().map(|n| n.watch());
    let mut known: std::collections::BTreeSet<String> = Default::default();
    loop {
        tokio::select! {
            event = chain.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                state.inner.metrics.on_event(&event);
                state
                    .inner
                    .forks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .on_event(&event, |hash| {
                        state.inner.store.header(hash).ok().flatten().map(|h| h.header.prev_hash)
                    });
                // JSON only for someone to read it, in each form someone reads.
                for (sender, transactions) in [(&state.inner.events, true), (&state.inner.events_light, false)] {
                    if sender.receiver_count() > 0
                        && let Some(value) = crate::state::event_json(&state.inner.params, &event, transactions)
                    {
                        let _ = sender.send(value.to_string());
                    }
                }
            }
            changed = async { match net.as_mut() { Some(n) => n.changed().await, None => std::future::pending().await } } => {
                if changed.is_err() {
                    net = None;
                    continue;
                }
                let peers = net.as_mut().map(|n| n.borrow_and_update().peers.clone()).unwrap_or_default();
                let now: std::collections::BTreeSet<String> = peers.iter().map(|p| p.peer_id.clone()).collect();
                for (kind, ids) in [("peer_connected", now.difference(&known)), ("peer_disconnected", known.difference(&now))] {
                    for id in ids {
                        let address = peers.iter().find(|p| &p.peer_id == id).map(|p| p.address.clone());
                        let text = serde_json::json!({"type": kind, "peer_id": id, "address": address, "peers": now.len()}).to_string();
                        let _ = state.inner.events.send(text.clone());
                        let _ = state.inner.events_light.send(text);
                    }
                }
                known = now;
            }
        }
    }
}

/// Whether `key` is 16 bytes in base64 (RFC 6455, section 4.1): the document's pattern
/// `^[ \t]*[A-Za-z0-9+/]{21}[AQgw]==[ \t]*$` for `Sec-WebSocket-Key`.
fn key_shaped(key: &[u8]) -> bool {
    let key = key.trim_ascii();
    key.len() == 24
        && key[..21]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        && b"AQgw".contains(&key[21])
        && &key[22..] == b"=="
}

/// Which events.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct EventsQuery {
    /// `false`: block events without their transactions, and no `tx` events (default
    /// `true`).
    transactions: Option<bool>,
}

/// Upgrade to a WebSocket that streams block, tx, reorg and peer events as JSON. A request
/// that is not a WebSocket opening handshake is a 400 in the API's error shape.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "v1",
    params(
        EventsQuery,
        ("Connection" = String, Header, description = "A list with the token `Upgrade` (any case)",
            pattern = "^([^,]*,)*[ \t]*[Uu][Pp][Gg][Rr][Aa][Dd][Ee][ \t]*(,[^,]*)*$"),
        ("Upgrade" = String, Header, description = "`websocket` (any case)",
            pattern = "^[ \t]*[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt][ \t]*$"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`", pattern = "^[ \t]*13[ \t]*$"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes in base64",
            pattern = "^[ \t]*[A-Za-z0-9+/]{21}[AQgw]==[ \t]*$"),
    ),
    responses(
        (status = 101, description = "A WebSocket: one JSON object per event, with a `type` of block, block_disconnected, side_block, reorg, tx, peer_connected, peer_disconnected"),
        (status = 400, description = "A `transactions` value other than `true` or `false` (`bad_request`), or not a WebSocket opening handshake (`not_websocket`)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let not_websocket = |why: String| {
        ApiError::bad_request("not_websocket", format!("/v1/events is a WebSocket: {why}"))
    };
    let ws = ws.map_err(|rejection| not_websocket(rejection.body_text()))?;
    // axum takes `Connection: upgrades` (it looks for the text, not the token) and any
    // key; the handshake's rules are the token and 16 bytes in base64.
    let upgrade_token = headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    if !upgrade_token {
        return Err(not_websocket(
            "`Connection` does not list the token `upgrade`".into(),
        ));
    }
    let key = headers.get("sec-websocket-key").map(|v| v.as_bytes());
    if !key.is_some_and(key_shaped) {
        return Err(not_websocket(
            "`Sec-WebSocket-Key` is not 16 bytes in base64".into(),
        ));
    }
    let events = if query.transactions.unwrap_or(true) {
        state.inner.events.subscribe()
    } else {
        state.inner.events_light.subscribe()
    };
    let shutdown = state.inner.shutdown.clone();
    Ok(ws.on_upgrade(move |socket| stream(socket, events, shutdown)))
}

async fn stream(
    socket: WebSocket,
    mut events: broadcast::Receiver<String>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let close = CloseFrame { code: close_code::POLICY, reason: "lagged: read events faster".into() };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(close)))).await;
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            message = incoming.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => {
                let close = CloseFrame { code: close_code::AWAY, reason: "node stopping".into() };
                let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(close)))).await;
                break;
            }
        }
    }
}
