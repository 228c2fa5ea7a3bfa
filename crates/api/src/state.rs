//! What every handler shares: the chain's read side, the store, the miner, metrics, and
//! the events.
//!
//! Handlers never take the chain's lock: they read the [`ChainView`] (the published tip,
//! redb read transactions, the mempool under its own short lock). Transfers go to the
//! [`Submitter`]'s threads, which check them in batches; handlers await the answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::StatusCode;
use oxchain_chain::{ChainEvent, ChainView, Submitter};
use oxchain_consensus::ChainParams;
use oxchain_consensus::genesis::{self, dev_account_address, dev_account_key};
use oxchain_miner::MiningHandle;
use oxchain_primitives::{Address, SecretKey, Transfer, Txid};
use oxchain_storage::Store;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The most peers whose API address is remembered.
pub(crate) const MAX_PEER_APIS: usize = 256;

/// How many events a WebSocket client may fall behind before it is dropped.
const EVENT_BUFFER: usize = 1024;

/// The API's view of the node.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) chain: ChainView,
    pub(crate) store: Store,
    pub(crate) params: ChainParams,
    pub(crate) miner: Arc<MiningHandle>,
    pub(crate) metrics: Metrics,
    /// Every metric family of the node (the network's, libp2p's and the API's).
    pub(crate) registry: Registry,
    pub(crate) token: Option<String>,
    pub(crate) events: broadcast::Sender<String>,
    /// The same events without transactions (`/v1/events?transactions=false`): block
    /// events carry their summary alone, and transfers' events are left out.
    pub(crate) events_light: broadcast::Sender<String>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) started: Instant,
    pub(crate) net: Option<Arc<oxchain_net::NetHandle>>,
    pub(crate) api_addr: Option<std::net::SocketAddr>,
    /// Node API addresses given to `/nodes/register` and `/nodes`.
    pub(crate) registered: Mutex<std::collections::BTreeSet<String>>,
    /// The API address of each peer reached through one (peer id to `http://HOST:PORT`),
    /// at most [`MAX_PEER_APIS`].
    pub(crate) peer_apis: Mutex<HashMap<String, String>>,
    pub(crate) name: Option<String>,
    pub(crate) miner_address: Address,
    /// Side blocks and reorgs seen lately, for `/v1/forks`.
    pub(crate) forks: Mutex<crate::forks::Forks>,
    /// The funded dev accounts' keys, decoded once (dev and regtest only).
    dev_keys: HashMap<&'static str, SecretKey>,
    /// Checks and adds transfers submitted through the API.
    submitter: Submitter,
    /// Blocks' tutorial JSON, for `/chain`.
    pub(crate) chain_json: Arc<crate::chain_json::BlockJsonCache>,
}

/// What the API needs from the node.
pub struct ApiParts {
    /// The chain's read side (the miner and the network write).
    pub chain: ChainView,
    /// The mining loop.
    pub miner: Arc<MiningHandle>,
    /// The bearer token routes that change the node require (`None` on a loopback bind).
    pub token: Option<String>,
    /// Turns `true` when the node stops: WebSocket streams end.
    pub shutdown: watch::Receiver<bool>,
    /// The peer-to-peer network (`None`: a node without peers).
    pub net: Option<Arc<oxchain_net::NetHandle>>,
    /// This API's own address, for the `/nodes` callback.
    pub api_addr: Option<std::net::SocketAddr>,
    /// The node's metrics registry, with the network's families in it: the API adds its
    /// own and serves them all at `/metrics`.
    pub registry: Registry,
    /// The node's name (`--name`), if it has one.
    pub name: Option<String>,
    /// Where its coinbases pay.
    pub miner_address: Address,
}

impl AppState {
    /// The shared state, and the task that turns chain events into JSON for
    /// `/v1/events` and the metrics (run it on the node's runtime). Fails only when the
    /// transfer checkers' threads cannot start.
    pub fn new(parts: ApiParts) -> std::io::Result<(AppState, impl Future<Output = ()> + Send)> {
        let (store, params, chain_events) = (
            parts.chain.store().clone(),
            parts.chain.params().clone(),
            parts.chain.subscribe(),
        );
        let dev_keys = if params.network.has_dev_accounts() {
            genesis::DEV_ACCOUNTS
                .iter()
                .map(|name| (*name, dev_account_key(name)))
                .collect()
        } else {
            HashMap::new()
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (events_light, _) = broadcast::channel(EVENT_BUFFER);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let submitter = Submitter::start(parts.chain.clone(), threads)?;
        let mut registry = parts.registry;
        let metrics = Metrics::new(&mut registry);
        let state = AppState {
            inner: Arc::new(Inner {
                chain: parts.chain,
                store,
                params,
                miner: parts.miner,
                metrics,
                registry,
                token: parts.token,
                events,
                events_light,
                shutdown: parts.shutdown,
                started: Instant::now(),
                net: parts.net,
                api_addr: parts.api_addr,
                registered: Mutex::new(Default::default()),
                peer_apis: Mutex::new(Default::default()),
                name: parts.name,
                miner_address: parts.miner_address,
                forks: Mutex::new(Default::default()),
                dev_keys,
                submitter,
                chain_json: Arc::new(crate::chain_json::BlockJsonCache::new()),
            }),
        };
        let forwarder = crate::events::forward(state.clone(), chain_events);
        Ok((state, forwarder))
    }

    /// The chain's read side: never its lock.
    pub(crate) fn chain(&self) -> &ChainView {
        &self.inner.chain
    }

    /// Checks a signed transfer and adds it to the mempool.
    pub(crate) async fn submit(&self, transfer: Transfer) -> Result<Txid, ApiError> {
        self.inner
            .submitter
            .submit(transfer)
            .await
            .map_err(|e| crate::tutorial::mempool_error(self, e))
    }

    /// Signs a transfer from `key` with the sender's next nonce and adds it to the
    /// mempool (a sender's requests are signed in the order they arrive).
    pub(crate) async fn sign_and_submit(
        &self,
        key: SecretKey,
        to: Address,
        amount: oxchain_primitives::Amount,
        fee: oxchain_primitives::Amount,
    ) -> Result<Txid, ApiError> {
        self.inner
            .submitter
            .sign_and_submit(key, to, amount, fee)
            .await
            .map_err(|e| crate::tutorial::mempool_error(self, e))
    }

    pub(crate) fn network(&self) -> oxchain_primitives::Network {
        self.inner.params.network
    }

    /// An address given in a request: bech32 of this network, or on dev and regtest a dev
    /// account's name. Text of another shape than `^[A-Za-z0-9_-]{1,90}$` is a 400; text of
    /// that shape that is neither (a checksum, a prefix, a name) is a 422 (ADR 0026).
    pub(crate) fn parse_address(&self, what: &str, text: &str) -> Result<Address, ApiError> {
        let shaped = (1..=90).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !shaped {
            return Err(ApiError::bad_request(
                "bad_address",
                format!("{what} {text:?} is not an address: 1 to 90 letters, digits, - or _"),
            ));
        }
        let refused = |message: String| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_address", message)
        };
        let network = self.network();
        match Address::parse(text, network) {
            Ok(address) => Ok(address),
            Err(_) if network.has_dev_accounts() && genesis::is_dev_account(text) => {
                Ok(dev_account_address(text))
            }
            Err(_) if network.has_dev_accounts() && genesis::is_dev_account_name(text) => {
                Err(refused(format!(
                    "{what} {text:?} is neither a {network} address nor a dev account ({})",
                    genesis::DEV_ACCOUNTS.join(" ")
                )))
            }
            Err(e) => Err(refused(format!(
                "{what} {text:?} is not an address of the {network} network: {e}"
            ))),
        }
    }

    /// A tutorial route's recipient (ADR 0024): as [`AppState::parse_address`], and on dev
    /// and regtest any other short word, as the tutorials' own example sends coins to
    /// `"someone-other-address"`. That word becomes the address of the key made from it
    /// (as dev accounts' are), which the answer's note names.
    pub(crate) fn tutorial_recipient(
        &self,
        text: &str,
    ) -> Result<(Address, Option<String>), ApiError> {
        let text = text.trim();
        match self.parse_address("recipient", text) {
            Ok(address) => Ok((address, None)),
            Err(_)
                if self.network().has_dev_accounts()
                    && genesis::is_dev_account_name(text.trim()) =>
            {
                let text = text.trim();
                let address = dev_account_address(text);
                let note = format!(
                    "recipient {text:?} is neither an address nor a dev account: the coins go \
                     to {}, the address this node makes from that name",
                    address.to_bech32(self.network())
                );
                Ok((address, Some(note)))
            }
            Err(e) => Err(e),
        }
    }

    /// The key the node signs for when a tutorial route names `sender`.
    pub(crate) fn signing_key(&self, sender: &str) -> Result<SecretKey, ApiError> {
        let sender = sender.trim();
        if sender.is_empty() {
            return Err(ApiError::bad_request("bad_sender", "sender is empty"));
        }
        if let Some(key) = self.inner.dev_keys.get(sender) {
            return Ok(key.clone());
        }
        if self.network().has_dev_accounts() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_account",
                format!(
                    "unknown account {sender:?} (dev accounts: {}): the node signs only for \
                     these; send a signed transfer to POST /v1/transactions for any other key",
                    genesis::DEV_ACCOUNTS.join(" ")
                ),
            ));
        }
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_sender",
            format!(
                "this node holds no key for sender {sender:?}: on {} only dev account names are \
                 signed by the node; send a signed transfer to POST /v1/transactions instead",
                self.network()
            ),
        ))
    }
}

/// The best chain's block at `height`. Each store read is its own snapshot: a reorg
/// between reading the tip (or an index) and reading the block can take the block off
/// the best chain. That is a 503 to retry, not a 500 (nothing is broken).
pub(crate) fn best_block(
    store: &Store,
    height: oxchain_primitives::Height,
) -> Result<oxchain_primitives::Block, ApiError> {
    let moved = || {
        ApiError::chain_moved(format!(
            "the best chain changed at height {height} during the read: try again"
        ))
    };
    let hash = store.hash_at(height)?.ok_or_else(moved)?;
    store.block(&hash)?.ok_or_else(moved)
}

/// A chain event as the JSON object `/v1/events` sends. Without `transactions`, a
/// block's summary comes alone and a transfer's event is `None` (not sent).
pub(crate) fn event_json(
    params: &ChainParams,
    event: &ChainEvent,
    transactions: bool,
) -> Option<serde_json::Value> {
    use serde_json::json;
    let network = params.network;
    Some(match event {
        ChainEvent::BlockConnected { height, block, .. } => {
            // The summary `/v1/blocks` gives, and the transactions.
            let summary =
                crate::views::BlockSummary::new(network, &params.pow_limit, height.0, block);
            let mut value = json!(summary);
            value["type"] = json!("block");
            if transactions {
                value["transactions"] = json!(
                    block
                        .transactions
                        .iter()
                        .map(|tx| crate::views::TxView::new(network, tx, tx.compute_txid()))
                        .collect::<Vec<_>>()
                );
            }
            value
        }
        ChainEvent::BlockDisconnected { hash, height } => json!({
            "type": "block_disconnected", "hash": hash.to_string(), "height": height.0,
        }),
        ChainEvent::SideBlock {
            hash,
            height,
            parent,
        } => json!({
            "type": "side_block", "hash": hash.to_string(), "height": height.0, "parent": parent.to_string(),
        }),
        ChainEvent::Reorg {
            old_tip,
            new_tip,
            fork_height,
            depth,
        } => json!({
            "type": "reorg", "old_tip": old_tip.to_string(), "new_tip": new_tip.to_string(),
            "fork_height": fork_height.0, "depth": depth,
        }),
        ChainEvent::TransferAccepted { .. } if !transactions => return None,
        ChainEvent::TransferAccepted { txid, transfer } => json!({
            "type": "tx",
            "transaction": crate::views::TxView::new(network, &oxchain_primitives::Transaction::Transfer((**transfer).clone()), *txid),
        }),
    })
}
