//! `GET /v1/events`: chain events as JSON over a WebSocket. One task turns each chain
//! event into JSON once; each client reads from a bounded broadcast, and a client that
//! falls behind is closed ("lagged") rather than slowing anything down.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use oxchain_chain::ChainEvent;
use tokio::sync::broadcast::{self, error::RecvError};

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
                // JSON only for someone to read it.
                if state.inner.events.receiver_count() > 0 {
                    let text = crate::state::event_json(&state.inner.params, &event).to_string();
                    let _ = state.inner.events.send(text);
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
                        let _ = state.inner.events.send(text);
                    }
                }
                known = now;
            }
        }
    }
}

/// Upgrade to a WebSocket that streams block, tx, reorg and peer events as JSON.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "v1",
    responses(
        (status = 101, description = "A WebSocket: one JSON object per event, with a `type` of block, block_disconnected, side_block, reorg, tx, peer_connected, peer_disconnected"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn events(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let events = state.inner.events.subscribe();
    let shutdown = state.inner.shutdown.clone();
    ws.on_upgrade(move |socket| stream(socket, events, shutdown))
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
