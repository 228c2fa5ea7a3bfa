//! Peering: `/v1/peers`, and the tutorials' `/nodes`, `/nodes/register` and
//! `/nodes/resolve`. The tutorials' nodes are HTTP addresses; an oxchain node asks that
//! address's `GET /v1/node` for its peer id and listen addresses, then dials it over
//! libp2p.

// utoipa's `path` macro names the extractors' types with full paths.
#![allow(unused_qualifications)]

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::body::{JsonBody, JsonOrForm};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::TutorialBlock;

/// How long a peer's API has to answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/nodes/resolve` waits for syncs to finish.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

fn net(state: &AppState) -> Result<&oxchain_net::NetHandle, ApiError> {
    state.inner.net.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_network",
            "this node runs without a peer-to-peer network",
        )
    })
}

/// `http://host:port` from `http://host:port/...`, `host:port` or `{host, port}`.
fn api_url(text: &str) -> Result<String, ApiError> {
    // `^(http://)?[^/\s\[\]]+:[0-9]{1,5}/?$`, as the documents of the routes that take one say.
    let text = text.strip_suffix('/').unwrap_or(text);
    let rest = text.strip_prefix("http://").unwrap_or(text);
    let (host, port) = rest.rsplit_once(':').unwrap_or(("", ""));
    let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    if !host_shaped(host) || !port_ok {
        return Err(ApiError::bad_request(
            "bad_node",
            format!(
                "{text:?} is not a node API address like http://127.0.0.1:5001 or 127.0.0.1:5001"
            ),
        ));
    }
    Ok(format!("http://{rest}"))
}

/// A host as the tutorial routes take one (`^[^/\s\[\]]+$`): text without `/`, spaces or
/// brackets (an IPv6 address goes to `POST /v1/peers` as a multiaddr).
fn host_shaped(host: &str) -> bool {
    !host.is_empty()
        && !host
            .chars()
            .any(|c| c == '/' || c == '[' || c == ']' || pattern_space(c))
}

/// What `\s` matches in the document's patterns (ECMAScript's regular expressions): Rust's
/// whitespace but U+0085, and U+FEFF.
fn pattern_space(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}

async fn http(method: &str, url: &str, body: Option<String>) -> Result<Value, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .map_err(|e| e.to_string())?;
    let res = tokio::time::timeout(HTTP_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("{url} did not answer within {} s", HTTP_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = res.status();
    let bytes = tokio::time::timeout(
        HTTP_TIMEOUT,
        axum::body::to_bytes(Body::new(res.into_body()), 1 << 20),
    )
    .await
    .map_err(|_| format!("{url} answered too slowly"))?
    .map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{url} did not answer JSON: {e}"))
}

/// Asks a node's API (`http://host:port`) for its peer-to-peer address and dials it.
/// Returns the peer id.
pub async fn dial_node_api(
    net: &oxchain_net::NetHandle,
    genesis: &oxchain_primitives::BlockHash,
    url: &str,
) -> Result<String, String> {
    let url = api_url(url).map_err(|e| format!("{e:?}"))?;
    let node = http("GET", &format!("{url}/v1/node"), None).await?;
    if node["genesis"].as_str() != Some(&genesis.to_string()) {
        return Err(format!(
            "{url} is on another network (genesis {})",
            node["genesis"]
        ));
    }
    let addrs: Vec<String> = node["listen_addrs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let addr = addrs
        .first()
        .ok_or_else(|| format!("{url} has no peer-to-peer address"))?;
    net.dial(addr).map_err(|e| e.to_string())?;
    Ok(node["peer_id"].as_str().unwrap_or_default().to_string())
}

async fn peer_by_api(state: &AppState, url: &str) -> Result<String, String> {
    let net = state
        .inner
        .net
        .as_deref()
        .ok_or("this node runs without a network")?;
    let peer = dial_node_api(net, &state.inner.params.genesis_hash(), url).await?;
    let mut apis = state
        .inner
        .peer_apis
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if apis.len() < crate::state::MAX_PEER_APIS || apis.contains_key(&peer) {
        apis.insert(peer.clone(), url.to_string());
    }
    Ok(peer)
}

/// Dials an address given to the API: a node's API URL, a multiaddr, or `HOST:PORT` of
/// a p2p listener.
/// Adds a peer by `address`, with one meaning everywhere (as `--peer`): `http://HOST:PORT`
/// is a node's HTTP API; a multiaddr or `HOST:PORT` is its p2p address. Says which it
/// took the address for.
async fn add_peer(state: &AppState, address: &str) -> Result<&'static str, ApiError> {
    let address = address.trim();
    if address.starts_with("http://") || address.starts_with("https://") {
        let url = api_url(address)?;
        return peer_by_api(state, &url)
            .await
            .map(|_| "the node whose HTTP API is there")
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "peer_unreachable",
                    format!("{e} (tried as a node's HTTP API address)"),
                )
            });
    }
    net(state)?.dial(address).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_peer",
            format!(
                "{e} (tried as a p2p address, a multiaddr or HOST:PORT; a node's HTTP API is \
                 given as http://HOST:PORT)"
            ),
        )
    })?;
    Ok("a p2p address")
}

/// A connected peer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PeerItem {
    peer_id: String,
    /// Where the connection goes, as this node sees it (for a peer that dialled in, its
    /// outgoing port).
    address: String,
    height: Option<u64>,
    /// The name the peer goes by (its `--name`), as it says.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,32}$")]
    name: Option<String>,
    /// The address the peer says its coinbases pay (told along with a name).
    miner_address: Option<String>,
    /// Where the peer says it listens for peers.
    listen_address: Option<String>,
    /// The peer's HTTP API (`http://HOST:PORT`), when this node reached it through that
    /// API (`/nodes`, `/nodes/register`, `POST /v1/peers`).
    api: Option<String>,
}

/// The node's peers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PeersView {
    /// Connected peers.
    count: usize,
    /// Each connected peer.
    peers: Vec<PeerItem>,
    /// Peers refused for misbehaving.
    banned: usize,
    /// Our height and the height we are syncing to, while syncing.
    sync: Option<crate::v1::node::SyncView>,
}

/// `GET /v1/peers`.
#[utoipa::path(get, path = "/v1/peers", tag = "v1",
    responses((status = 200, description = "Connected peers", body = PeersView)))]
pub(crate) async fn peers(State(state): State<AppState>) -> Json<PeersView> {
    let apis = state
        .inner
        .peer_apis
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let info = state
        .inner
        .net
        .as_ref()
        .map(|n| n.info())
        .unwrap_or_default();
    Json(PeersView {
        count: info.peers.len(),
        peers: info
            .peers
            .into_iter()
            .map(|p| PeerItem {
                api: apis.get(&p.peer_id).cloned(),
                peer_id: p.peer_id,
                address: p.address,
                height: p.height,
                name: p.said.name,
                miner_address: p.said.miner,
                listen_address: p.said.listen,
            })
            .collect(),
        banned: info.banned,
        sync: info.sync.map(|s| crate::v1::node::SyncView {
            height: s.height,
            target: s.target,
        }),
    })
}

/// A peer to add.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewPeer {
    /// A node's HTTP API as `http://HOST:PORT`, or its p2p address: a multiaddr or
    /// `HOST:PORT` (as `--peer` takes them).
    #[schema(
        max_length = 300,
        pattern = r"^(http://[^/\s]+:[0-9]{1,5}|/\S+|[^/\s]+:[0-9]{1,5})$"
    )]
    address: String,
}

/// Whether `address` has the shape [`NewPeer`]'s pattern states (what it then names is
/// for the dial to find out).
fn peer_address_shaped(address: &str) -> bool {
    let host_port = |text: &str| {
        text.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains('/')
                && (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
        })
    };
    if address.is_empty() || address.chars().count() > 300 || address.chars().any(pattern_space) {
        return false;
    }
    match address.strip_prefix("http://") {
        Some(rest) => host_port(rest),
        None if address.starts_with('/') => address.len() >= 2,
        None => host_port(address),
    }
}

/// `POST /v1/peers`: connect to a peer.
#[utoipa::path(post, path = "/v1/peers", tag = "v1", request_body = NewPeer,
    responses((status = 202, description = "Dialing", body = crate::tutorial::Message),
              (status = 400, description = "Not of a peer address's shape", body = ErrorBody),
              (status = 409, description = "This node runs without a peer-to-peer network", body = ErrorBody),
              (status = 422, description = "Of the shape, but not an address that can be dialled", body = ErrorBody),
              (status = 502, description = "The node at that API address did not answer", body = ErrorBody)))]
pub(crate) async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewPeer>,
) -> Result<(StatusCode, Json<crate::tutorial::Message>), ApiError> {
    if !peer_address_shaped(&body.address) {
        return Err(ApiError::bad_request(
            "bad_peer",
            format!(
                "{:?} is not a peer address: http://HOST:PORT (a node's API), a multiaddr or \
                 HOST:PORT (its p2p address)",
                body.address
            ),
        ));
    }
    net(&state)?;
    let taken_as = add_peer(&state, &body.address).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(crate::tutorial::Message {
            message: format!("dialing {} ({taken_as})", body.address.trim()),
        }),
    ))
}

/// The Socket.io tutorial's node: the other node's API host and port.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct TutorialNode {
    /// A host name or an IPv4 address (no scheme, no port).
    #[schema(max_length = 253, pattern = r"^[^/\s\[\]]+$")]
    host: String,
    /// A port: a number, or the same as text.
    #[schema(schema_with = port_schema)]
    port: Value,
}

/// A port from 1 to 65535, as a number or as text.
fn port_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1))
                .maximum(Some(65535)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some(
                    "^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$",
                )),
        )
        .build()
        .into()
}

/// `?callback=true` when a node calls back.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct Callback {
    /// Set by the node that was just added, calling back.
    callback: Option<String>,
}

/// `{"status": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Added {
    status: String,
}

/// `POST /nodes`: peer with the node whose API is at `host:port`; it is asked to call
/// back, so that both know each other.
#[utoipa::path(post, path = "/nodes", tag = "tutorial", params(Callback),
    request_body(content((TutorialNode = "application/json"), (TutorialNode = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "Peered", body = Added),
              (status = 400, description = "Bad host or port", body = ErrorBody),
              (status = 409, description = "This node runs without a peer-to-peer network", body = ErrorBody),
              (status = 422, description = "That node's address cannot be dialled", body = ErrorBody),
              (status = 502, description = "That node did not answer", body = ErrorBody)))]
pub(crate) async fn nodes(
    State(state): State<AppState>,
    Query(query): Query<Callback>,
    JsonOrForm(body): JsonOrForm<TutorialNode>,
) -> Result<Json<Added>, ApiError> {
    net(&state)?;
    if body.host.chars().count() > 253 || !host_shaped(&body.host) {
        return Err(ApiError::bad_request(
            "bad_node",
            format!(
                "host {:?} is not a host name or an IPv4 address (at most 253 characters)",
                body.host
            ),
        ));
    }
    let port = match &body.port {
        Value::Number(n) => n.as_u64(),
        Value::String(s)
            if !s.starts_with('0') && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
    .filter(|p| (1..=65535).contains(p))
    .ok_or_else(|| ApiError::bad_request("bad_port", "port must be a number from 1 to 65535"))?;
    let url = api_url(&format!("{}:{port}", body.host))?;
    add_peer(&state, &url).await?;
    state
        .inner
        .registered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(url.clone());
    let back = query.callback.as_deref() == Some("true");
    if !back && let Some(me) = state.inner.api_addr {
        // Best effort: the other node peers back (its libp2p side is connected already).
        let body = serde_json::json!({"host": me.ip().to_string(), "port": me.port()}).to_string();
        let _ = http("POST", &format!("{url}/nodes?callback=true"), Some(body)).await;
    }
    Ok(Json(Added {
        status: if back {
            "Added node Back"
        } else {
            "Added node"
        }
        .into(),
    }))
}

/// The Flask tutorial's node list.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Register {
    /// Node API addresses: `http://host:port` or `host:port` (a `/` after is ignored).
    #[schema(value_type = Vec<NodeUrl>, required = true, min_items = 1)]
    nodes: Option<Vec<NodeUrl>>,
}

/// A node's API address, `http://host:port` or `host:port`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(pattern = r"^(http://)?[^/\s\[\]]+:[0-9]{1,5}/?$")]
struct NodeUrl(String);

/// What `/nodes/register` answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Registered {
    message: String,
    total_nodes: Vec<String>,
    /// Nodes that could not be reached now (they are not dialed).
    unreachable: Vec<String>,
}

/// `POST /nodes/register`: peer with each node's API address.
#[utoipa::path(post, path = "/nodes/register", tag = "tutorial", request_body = Register,
    responses((status = 201, description = "Registered", body = Registered),
              (status = 400, description = "No valid list of nodes", body = ErrorBody),
              (status = 409, description = "This node runs without a peer-to-peer network", body = ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    net(&state)?;
    let invalid =
        || ApiError::bad_request("bad_nodes", "Error: Please supply a valid list of nodes");
    let nodes = body.nodes.filter(|n| !n.is_empty()).ok_or_else(invalid)?;
    let urls = nodes
        .iter()
        .map(|n| api_url(&n.0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid())?;
    let mut unreachable = Vec::new();
    for url in urls {
        match peer_by_api(&state, &url).await {
            Ok(_) => {
                state
                    .inner
                    .registered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(url);
            }
            Err(_) => unreachable.push(url),
        }
    }
    let total_nodes = state
        .inner
        .registered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            message: "New nodes have been added".into(),
            total_nodes,
            unreachable,
        }),
    ))
}

/// What `/nodes/resolve` answers: the tutorial's two messages.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // The shape of the streamed answer, for the OpenAPI document.
pub(crate) struct Resolved {
    message: String,
    /// Set when our chain was replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_chain: Option<Vec<TutorialBlock>>,
    /// Set when our chain is authoritative.
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<Vec<TutorialBlock>>,
}

/// Blocks looked at by `/nodes/resolve` before it just says "replaced".
const RESOLVE_WALK: u64 = 10_000;

/// Whether the best chain went from `before` to `after` by taking peers' blocks, as the
/// tutorials' `resolve_conflicts` replaced a chain with a neighbour's longer one: a
/// reorg (`before` left the best chain), or a new block that another node mined. Blocks
/// this node mined itself meanwhile do not count.
fn taken_from_peers(
    state: &AppState,
    before: oxchain_primitives::BlockHash,
    after: oxchain_primitives::BlockHash,
) -> Result<bool, ApiError> {
    let store = &state.inner.store;
    let ours = state.inner.miner.reward_to();
    let mut hash = after;
    for _ in 0..RESOLVE_WALK {
        if hash == before {
            return Ok(false);
        }
        // Past genesis (whose parent is all zeros) there is no block: "replaced".
        let Some(block) = store.block(&hash)? else {
            return Ok(true);
        };
        let mined_here = matches!(
            block.transactions.first(),
            Some(oxchain_primitives::Transaction::Coinbase(c)) if c.to == ours
        );
        if !mined_here {
            return Ok(true);
        }
        hash = block.header.prev_hash;
    }
    Ok(true)
}

/// `GET /nodes/resolve`: syncs with every peer (most work wins) and says whether our
/// chain was replaced by peers' blocks. An unreachable peer is skipped.
#[utoipa::path(get, path = "/nodes/resolve", tag = "tutorial",
    responses((status = 200, description = "Our chain after syncing with every peer", body = Resolved)))]
pub(crate) async fn resolve(State(state): State<AppState>) -> Result<Response, ApiError> {
    let before = state.chain().tip().hash;
    if let Some(net) = state.inner.net.as_deref() {
        net.refresh();
        let started = Instant::now();
        // Give the peers a moment to answer, then wait for any sync to end.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let settled =
                started.elapsed() >= Duration::from_millis(1_000) && net.info().sync.is_none();
            if settled || started.elapsed() >= RESOLVE_TIMEOUT {
                break;
            }
        }
    }
    let after = state.chain().tip().hash;
    let replaced = {
        let (state, after) = (state.clone(), after);
        tokio::task::spawn_blocking(move || taken_from_peers(&state, before, after))
            .await
            .map_err(ApiError::internal)??
    };
    // The tutorials' answer, `{"message": ..., "new_chain" | "chain": [...]}`, streamed.
    let (message, field) = if replaced {
        ("Our chain was replaced", "new_chain")
    } else {
        ("Our chain is authoritative", "chain")
    };
    crate::chain_json::stream(
        &state,
        format!(r#"{{"message":"{message}","{field}":"#),
        |_| "}".into(),
    )
    .await
}
