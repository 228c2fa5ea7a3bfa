//! The versioned API under `/v1`. Amounts are integers in base units, with the coin
//! string beside them; lists are paginated (`before`, `limit`).

// utoipa's `path` macro names the extractors' types with full paths, which this lint
// then reports against our own code.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use oxchain_miner::{MineError, Mined};
use oxchain_primitives::{
    Amount, BlockHash, Height, MerkleProof, PublicKey, Signature, Transaction, Transfer, Txid,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::body::{JsonBody, MaybeBody};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::{BlockSummary, BlockView, TxView, difficulty};

/// The most items a page holds.
const MAX_LIMIT: usize = 100;
/// Items per page when `limit` is not given.
const DEFAULT_LIMIT: usize = 20;

/// The miner's state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MiningStatus {
    /// off, on-demand, continuous or pool:N.
    pub mode: String,
    /// Hashes per second over all mining threads.
    pub hashes_per_s: f64,
}

/// Headers-first sync progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncView {
    /// Our height.
    pub height: u64,
    /// The height of the peer we sync from.
    pub target: u64,
}

/// The node at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// main, test, dev or regtest.
    pub network: String,
    /// The genesis hash.
    pub genesis: String,
    /// Height of the tip.
    pub height: u64,
    /// Hash of the tip.
    pub tip: String,
    /// Cumulative work of the best chain (decimal).
    pub total_work: String,
    /// Difficulty of the tip's target.
    pub difficulty: f64,
    /// Connected peers.
    pub peers: usize,
    /// Transfers in the mempool.
    pub mempool: usize,
    /// The miner.
    pub mining: MiningStatus,
    /// Whether the node is catching up with its peers.
    pub syncing: bool,
    /// While syncing: our height and the height we are syncing to.
    pub sync: Option<SyncView>,
    /// The network's hash rate as the best chain shows it: the work of the last (up to)
    /// 60 blocks over the time they span (genesis excluded); 0 below height 2, or when
    /// those blocks' times do not move forward.
    pub network_hashes_per_s: f64,
    /// The oxchain version.
    pub version: String,
}

/// `GET /v1/status`.
#[utoipa::path(get, path = "/v1/status", tag = "v1",
    responses((status = 200, description = "The node's state", body = StatusView)))]
pub(crate) async fn status(State(state): State<AppState>) -> Json<StatusView> {
    let (tip, mempool) = {
        let chain = state.chain();
        (chain.tip(), chain.mempool().len())
    };
    let params = &state.inner.params;
    let net = state
        .inner
        .net
        .as_ref()
        .map(|n| n.info())
        .unwrap_or_default();
    Json(StatusView {
        network: params.network.to_string(),
        genesis: params.genesis_hash().to_string(),
        height: tip.height.0,
        tip: tip.hash.to_string(),
        total_work: tip.chain_work.to_string(),
        difficulty: tip
            .header
            .bits
            .to_target()
            .map_or(0.0, |t| difficulty(&params.pow_limit, &t)),
        peers: net.peers.len(),
        mempool,
        mining: MiningStatus {
            mode: state.inner.miner.mode().to_string(),
            hashes_per_s: state.inner.miner.hash_rates().iter().sum(),
        },
        syncing: net.sync.is_some(),
        sync: net.sync.map(|s| SyncView {
            height: s.height,
            target: s.target,
        }),
        network_hashes_per_s: network_hash_rate(&state.inner.store, &tip).unwrap_or(0.0),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Blocks the network hash rate is averaged over.
const HASH_RATE_WINDOW: u64 = 60;

/// The work of the last blocks of the best chain over the time they span.
fn network_hash_rate(store: &oxchain_storage::Store, tip: &oxchain_storage::Tip) -> Option<f64> {
    // Not from genesis: its time is fixed when the network is defined, not when mined.
    let from = tip.height.0.saturating_sub(HASH_RATE_WINDOW).max(1);
    if from >= tip.height.0 {
        return None;
    }
    let start = store.header(&store.hash_at(Height(from)).ok()??).ok()??;
    let span_ms = tip.header.time_ms.checked_sub(start.header.time_ms)?;
    if span_ms == 0 {
        return None;
    }
    let work = tip.chain_work.0.checked_sub(start.chain_work.0)?;
    Some(f64::from(work) * 1000.0 / span_ms as f64)
}

/// Who this node is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NodeView {
    /// main, test, dev or regtest.
    pub network: String,
    /// The genesis hash.
    pub genesis: String,
    /// The oxchain version.
    pub version: String,
    /// The libp2p peer id (once the node has a network).
    pub peer_id: Option<String>,
    /// Multiaddrs the node listens on for peers.
    pub listen_addrs: Vec<String>,
    /// The node's name (`--name`), if it has one.
    pub name: Option<String>,
    /// Where the node's coinbases pay.
    pub miner_address: String,
}

/// `GET /v1/node`.
#[utoipa::path(get, path = "/v1/node", tag = "v1",
    responses((status = 200, description = "The node's identity", body = NodeView)))]
pub(crate) async fn node(State(state): State<AppState>) -> Json<NodeView> {
    let params = &state.inner.params;
    let net = state.inner.net.as_ref().map(|n| n.info());
    Json(NodeView {
        network: params.network.to_string(),
        genesis: params.genesis_hash().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        peer_id: net.as_ref().map(|n| n.peer_id.clone()),
        listen_addrs: net.map(|n| n.listen_addrs).unwrap_or_default(),
        name: state.inner.name.clone(),
        miner_address: state.inner.miner_address.to_bech32(params.network),
    })
}

/// A page of blocks, newest first.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct Page {
    /// Only blocks below this height (the previous page's `next_before`).
    #[param(pattern = "^[0-9]{1,20}$")]
    before: Option<String>,
    /// At most this many blocks (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// A page of an account's history, newest first.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct HistoryQuery {
    /// Only items before this cursor, `height:position` (the previous page's
    /// `next_before`).
    #[param(pattern = "^[0-9]{1,20}:[0-9]{1,10}$")]
    before: Option<String>,
    /// At most this many items (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

impl Page {
    fn limit(&self) -> Result<usize, ApiError> {
        parse_limit(self.limit)
    }
}

/// A page's `limit`: 20 when not given, 1 to 100.
pub(crate) fn parse_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "bad_limit",
            format!("limit {n} is out of range: 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A page of blocks.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockPage {
    /// Newest first.
    pub blocks: Vec<BlockSummary>,
    /// Pass as `before` for the next page (null on the last).
    pub next_before: Option<u64>,
}

/// `GET /v1/blocks?before=&limit=`: best-chain blocks, newest first.
#[utoipa::path(get, path = "/v1/blocks", tag = "v1", params(Page),
    responses((status = 200, description = "A page of blocks", body = BlockPage),
              (status = 400, description = "Bad cursor or limit", body = ErrorBody)))]
pub(crate) async fn blocks(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<BlockPage>, ApiError> {
    let limit = page.limit()?;
    let tip = state.chain().tip().height.0;
    let start = match &page.before {
        None => tip + 1,
        // Beyond u64 (20 digits) is beyond the tip too.
        Some(text)
            if !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse::<u64>().unwrap_or(u64::MAX)
        }
        Some(text) => {
            return Err(ApiError::bad_request(
                "bad_cursor",
                format!("before={text:?} is not a height"),
            ));
        }
    }
    .min(tip + 1);
    let store = &state.inner.store;
    let mut blocks = Vec::new();
    for height in (start.saturating_sub(limit as u64)..start).rev() {
        let block = crate::state::best_block(store, Height(height))?;
        blocks.push(BlockSummary::new(
            state.network(),
            &state.inner.params.pow_limit,
            height,
            &block,
        ));
    }
    let next_before = blocks.last().map(|b| b.height).filter(|h| *h > 0);
    Ok(Json(BlockPage {
        blocks,
        next_before,
    }))
}

/// `GET /v1/blocks/{id}`: a block by height (best chain) or by hash (any stored block).
#[utoipa::path(get, path = "/v1/blocks/{id}", tag = "v1",
    params(("id" = String, Path, description = "A height, or a block hash (64 hex digits)",
        pattern = "^([0-9]{1,20}|[0-9a-fA-F]{64})$")),
    responses((status = 200, description = "The block", body = BlockView),
              (status = 400, description = "Neither a height nor a hash", body = ErrorBody),
              (status = 404, description = "No such block", body = ErrorBody)))]
pub(crate) async fn block(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BlockView>, ApiError> {
    // One snapshot: best-chain membership and confirmations agree across a reorg.
    let store = state.inner.store.snapshot()?;
    // 64 hex digits are a hash even when they are all decimal digits.
    let is_height = (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
    let hash = if is_height {
        // Twenty digits past u64 are past the tip too.
        let height = id.parse::<u64>().unwrap_or(u64::MAX);
        store
            .hash_at(Height(height))?
            .ok_or_else(|| ApiError::not_found(format!("no block at height {id}")))?
    } else {
        id.parse::<BlockHash>().map_err(|_| {
            ApiError::bad_request(
                "bad_block_id",
                format!("{id:?} is neither a height nor a block hash (64 hex digits)"),
            )
        })?
    };
    let record = store
        .header(&hash)?
        .ok_or_else(|| ApiError::not_found(format!("no block {hash}")))?;
    let block = store
        .block(&hash)?
        .ok_or_else(|| ApiError::not_found(format!("no body for block {hash}")))?;
    let tip = store.tip()?;
    let best_chain = store.hash_at(record.height)? == Some(hash);
    let network = state.network();
    Ok(Json(BlockView {
        summary: BlockSummary::new(
            network,
            &state.inner.params.pow_limit,
            record.height.0,
            &block,
        ),
        best_chain,
        confirmations: if best_chain {
            confirmations(tip.height.0, record.height.0)
        } else {
            0
        },
        transactions: block
            .transactions
            .iter()
            .map(|tx| TxView::new(network, tx, tx.compute_txid()))
            .collect(),
    }))
}

fn parse_txid(text: &str) -> Result<Txid, ApiError> {
    text.parse::<Txid>().map_err(|_| {
        ApiError::bad_request(
            "bad_txid",
            format!("{text:?} is not a txid (64 hex digits)"),
        )
    })
}

/// A transaction and where it is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TxLookup {
    /// `confirmed` (in a best-chain block) or `pending` (in the mempool).
    pub status: &'static str,
    /// The block that holds it (confirmed only).
    pub block: Option<String>,
    /// That block's height.
    pub height: Option<u64>,
    /// Its position in the block.
    pub position: Option<u32>,
    /// Blocks on top of its block, that block included.
    pub confirmations: u64,
    /// The transaction.
    pub transaction: TxView,
}

/// `GET /v1/transactions/{txid}`.
#[utoipa::path(get, path = "/v1/transactions/{txid}", tag = "v1",
    params(("txid" = String, Path, description = "64 hex digits", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, description = "The transaction", body = TxLookup),
              (status = 400, description = "Not a txid", body = ErrorBody),
              (status = 404, description = "Unknown", body = ErrorBody)))]
pub(crate) async fn transaction(
    State(state): State<AppState>,
    Path(txid): Path<String>,
) -> Result<Json<TxLookup>, ApiError> {
    let txid = parse_txid(&txid)?;
    let network = state.network();
    if let Some(Located {
        location, tx, tip, ..
    }) = locate(&state, &txid)?
    {
        return Ok(Json(TxLookup {
            status: "confirmed",
            block: Some(location.block.to_string()),
            height: Some(location.height.0),
            position: Some(location.position),
            confirmations: confirmations(tip, location.height.0),
            transaction: TxView::new(network, &tx, txid),
        }));
    }
    let pending = state.chain().mempool().get(&txid).cloned();
    match pending {
        Some(t) => Ok(Json(TxLookup {
            status: "pending",
            block: None,
            height: None,
            position: None,
            confirmations: 0,
            transaction: TxView::new(network, &Transaction::Transfer(t), txid),
        })),
        None => Err(ApiError::not_found(format!("no transaction {txid}"))),
    }
}

/// A confirmed transaction, read from one store snapshot.
struct Located {
    location: oxchain_storage::TxLocation,
    block: oxchain_primitives::Block,
    tx: Transaction,
    /// The snapshot's tip height.
    tip: u64,
}

/// Blocks on top of a best-chain block at `height`, its own included, with `tip` read
/// from the same snapshot (so `height <= tip`).
fn confirmations(tip: u64, height: u64) -> u64 {
    tip.saturating_sub(height) + 1
}

fn locate(state: &AppState, txid: &Txid) -> Result<Option<Located>, ApiError> {
    // One snapshot: the location, the block and the tip agree even across a reorg.
    let snapshot = state.inner.store.snapshot()?;
    let Some(location) = snapshot.tx_location(txid)? else {
        return Ok(None);
    };
    let block = snapshot
        .block(&location.block)?
        .ok_or_else(|| ApiError::internal(format!("no body for {}", location.block)))?;
    let tx = block
        .transactions
        .get(location.position as usize)
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("txid {txid} indexed past its block")))?;
    let tip = snapshot.tip()?.height.0;
    Ok(Some(Located {
        location,
        block,
        tx,
        tip,
    }))
}

/// A merkle inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProofView {
    /// The transaction.
    pub txid: String,
    /// The block.
    pub block: String,
    /// Its height.
    pub height: u64,
    /// The block header's merkle root.
    pub merkle_root: String,
    /// The transaction's position (leaf index).
    pub index: u32,
    /// Transactions in the block.
    pub leaf_count: u32,
    /// Sibling hashes from the leaf up, hex (RFC 6962: leaf prefix 0x00, node 0x01).
    pub path: Vec<String>,
    /// Blocks on top of it, its own included.
    pub confirmations: u64,
}

/// `GET /v1/transactions/{txid}/proof`: a merkle proof that the block holds it.
#[utoipa::path(get, path = "/v1/transactions/{txid}/proof", tag = "v1",
    params(("txid" = String, Path, description = "64 hex digits", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, description = "The proof", body = ProofView),
              (status = 400, description = "Not a txid", body = ErrorBody),
              (status = 404, description = "Not in a best-chain block", body = ErrorBody)))]
pub(crate) async fn proof(
    State(state): State<AppState>,
    Path(txid): Path<String>,
) -> Result<Json<ProofView>, ApiError> {
    let txid = parse_txid(&txid)?;
    let Some(Located {
        location,
        block,
        tip,
        ..
    }) = locate(&state, &txid)?
    else {
        return Err(ApiError::not_found(format!(
            "no confirmed transaction {txid}"
        )));
    };
    let proof = MerkleProof::compute(&block.compute_txids(), location.position as usize)
        .ok_or_else(|| ApiError::internal("position outside the block"))?;
    Ok(Json(ProofView {
        txid: txid.to_string(),
        block: location.block.to_string(),
        height: location.height.0,
        merkle_root: block.header.merkle_root.to_string(),
        index: proof.index,
        leaf_count: proof.leaf_count,
        path: proof.path.iter().map(hex::encode).collect(),
        confirmations: confirmations(tip, location.height.0),
    }))
}

/// A transfer signed by its sender, as `oxchain send` builds it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignedTransfer {
    /// The sender's Ed25519 public key, 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    from: String,
    /// The recipient's address (bech32m of this network; on dev and regtest also a dev
    /// account's name); one whose checksum or prefix is wrong is refused with 422.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,90}$")]
    to: String,
    /// Base units (this API takes up to 2^63 - 1; all coins ever are under 2^51).
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_i64)]
    amount: u64,
    /// Fee in base units (at least 1 per encoded byte, or 422 `fee_too_low`).
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
    fee: u64,
    /// The sender's next nonce (up to 2^63 - 1 in this API).
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
    nonce: u64,
    /// Attached data, hex (at most 1024 bytes).
    #[serde(default)]
    #[schema(pattern = "^([0-9a-fA-F]{2}){0,1024}$")]
    data: String,
    /// The Ed25519 signature, 128 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    signature: String,
}

/// A transfer accepted into the mempool.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// Its txid.
    pub txid: String,
}

/// `POST /v1/transactions`: submit a signed transfer.
#[utoipa::path(post, path = "/v1/transactions", tag = "v1", request_body = SignedTransfer,
    responses((status = 202, description = "Accepted into the mempool", body = Accepted),
              (status = 400, description = "Not what this document allows", body = ErrorBody),
              (status = 409, description = "Already pending", body = ErrorBody),
              (status = 422, description = "Well-formed, but refused by the rules: a bad checksum, signature, nonce, fee or balance", body = ErrorBody),
              (status = 503, description = "The mempool is full (`mempool_full`) or the node busy (`busy`): try again", body = ErrorBody)))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SignedTransfer>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let bad = |code: &'static str, message: String| ApiError::bad_request(code, message);
    let from: PublicKey = body.from.parse().map_err(|_| {
        bad(
            "bad_key",
            format!("from {:?} is not a public key (64 hex digits)", body.from),
        )
    })?;
    let signature: [u8; 64] = hex::decode(&body.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("bad_signature", "signature must be 128 hex digits".into()))?;
    let data = hex::decode(&body.data).map_err(|_| bad("bad_data", "data must be hex".into()))?;
    if data.len() > oxchain_primitives::limits::MAX_TX_DATA_BYTES {
        return Err(bad(
            "data_too_long",
            format!(
                "data is {} bytes, the limit is {}",
                data.len(),
                oxchain_primitives::limits::MAX_TX_DATA_BYTES
            ),
        ));
    }
    if body.amount == 0 {
        return Err(bad("bad_amount", "amount must be more than 0".into()));
    }
    for (name, value) in [
        ("amount", body.amount),
        ("fee", body.fee),
        ("nonce", body.nonce),
    ] {
        if value > i64::MAX as u64 {
            return Err(ApiError::bad_request(
                "too_large",
                format!("{name} {value} is over 2^63 - 1, the most this API takes"),
            ));
        }
    }
    // Last: every shape check (400) comes before the checksum's (422).
    let to = state.parse_address("to", &body.to)?;
    let transfer = Transfer {
        from,
        to,
        amount: Amount::from_units(body.amount),
        fee: Amount::from_units(body.fee),
        nonce: body.nonce,
        data,
        signature: Signature(signature),
    };
    let txid = state.submit(transfer).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            txid: txid.to_string(),
        }),
    ))
}

/// An account at the tip.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountView {
    /// The address.
    pub address: String,
    /// Base units.
    pub balance: u64,
    /// The balance in coins, exact.
    pub balance_coins: String,
    /// Transfers sent (confirmed); the next confirmed transfer carries this nonce.
    pub nonce: u64,
    /// The next nonce counting pending transfers.
    pub next_nonce: u64,
    /// Transfers to and from it waiting in this node's mempool.
    pub pending: PendingView,
}

/// An account's pending transfers, and its balance once they are all in blocks.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PendingView {
    /// Pending transfers it sent, in nonce order (at most 50).
    pub sent: Vec<PendingItem>,
    /// How many it sent (all of them).
    pub sent_count: usize,
    /// Pending transfers to it (at most 50).
    pub received: Vec<PendingItem>,
    /// How many it receives (all of them).
    pub received_count: usize,
    /// The balance once every one of them is in a block, base units.
    pub balance_after: u64,
    /// The same in coins.
    pub balance_after_coins: String,
}

/// One pending transfer, as an account sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PendingItem {
    /// Its txid.
    pub txid: String,
    /// The other side: the recipient of a sent transfer, the sender of a received one.
    pub counterparty: String,
    /// Base units.
    pub amount: u64,
    /// Base units.
    pub fee: u64,
    /// Its nonce.
    pub nonce: u64,
}

/// Pending transfers listed per side.
const PENDING_LISTED: usize = 50;

/// `GET /v1/accounts/{address}` (on dev and regtest also a dev account name).
#[utoipa::path(get, path = "/v1/accounts/{address}", tag = "v1",
    params(("address" = String, Path, description = "An address, or a dev account name on dev and regtest",
        pattern = "^[A-Za-z0-9_-]{1,90}$")),
    responses((status = 200, description = "The account (zero if it never received anything)", body = AccountView),
              (status = 400, description = "Not an address", body = ErrorBody),
              (status = 422, description = "Neither an address of this network (its checksum or prefix) nor a dev account", body = ErrorBody)))]
pub(crate) async fn account(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let address = state.parse_address("address", &address)?;
    let account = state.inner.store.account(&address)?.unwrap_or_default();
    let network = state.network();
    let item = |txid: &Txid,
                t: &oxchain_primitives::Transfer,
                other: oxchain_primitives::Address| PendingItem {
        txid: txid.to_string(),
        counterparty: other.to_bech32(network),
        amount: t.amount.units(),
        fee: t.fee.units(),
        nonce: t.nonce,
    };
    let (next_nonce, sent, sent_count, received, received_count, out, incoming) = {
        let pool = state.chain().mempool();
        let next_nonce = pool.next_nonce(&address).unwrap_or(account.nonce);
        let (mut sent, mut sent_count, mut out) = (Vec::new(), 0, 0u128);
        for (txid, t) in pool.sent_by(&address) {
            sent_count += 1;
            out += u128::from(t.amount.units()) + u128::from(t.fee.units());
            if sent.len() < PENDING_LISTED {
                sent.push(item(txid, t, t.to));
            }
        }
        let (mut received, mut received_count, mut incoming) = (Vec::new(), 0, 0u128);
        for (txid, t) in pool.iter().filter(|(_, t)| t.to == address) {
            received_count += 1;
            incoming += u128::from(t.amount.units());
            if received.len() < PENDING_LISTED {
                received.push(item(txid, t, t.sender()));
            }
        }
        (
            next_nonce,
            sent,
            sent_count,
            received,
            received_count,
            out,
            incoming,
        )
    };
    // The mempool admits only what the balance covers, so `out` fits; clamp all the same.
    let after = (u128::from(account.balance.units()) + incoming).saturating_sub(out);
    let after = u64::try_from(after).unwrap_or(u64::MAX);
    Ok(Json(AccountView {
        address: address.to_bech32(network),
        balance: account.balance.units(),
        balance_coins: account.balance.to_string(),
        nonce: account.nonce,
        next_nonce,
        pending: PendingView {
            sent,
            sent_count,
            received,
            received_count,
            balance_after: after,
            balance_after_coins: oxchain_primitives::Amount::from_units(after).to_string(),
        },
    }))
}

/// One transaction of an account's history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryItem {
    /// The block's height.
    pub height: u64,
    /// Position in the block.
    pub position: u32,
    /// The transaction.
    pub transaction: TxView,
}

/// A page of an account's history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryPage {
    /// The address.
    pub address: String,
    /// Newest first.
    pub transactions: Vec<HistoryItem>,
    /// Pass as `before` for the next page (null on the last).
    pub next_before: Option<String>,
}

/// A `height:position` cursor given as `name`. Past u64 or u32 is past every item.
pub(crate) fn parse_cursor(name: &str, text: &str) -> Result<(Height, u32), ApiError> {
    let digits = |t: &str, most: usize| {
        !t.is_empty() && t.len() <= most && t.bytes().all(|b| b.is_ascii_digit())
    };
    text.split_once(':')
        .and_then(|(h, p)| {
            (digits(h, 20) && digits(p, 10)).then(|| {
                (
                    Height(h.parse().unwrap_or(u64::MAX)),
                    p.parse::<u32>().unwrap_or(u32::MAX),
                )
            })
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_cursor",
                format!("{name}={text:?} is not height:position"),
            )
        })
}

/// `GET /v1/accounts/{address}/transactions?before=&limit=`: confirmed transactions that
/// touch the account, newest first.
#[utoipa::path(get, path = "/v1/accounts/{address}/transactions", tag = "v1",
    params(("address" = String, Path, description = "An address, or a dev account name on dev and regtest",
        pattern = "^[A-Za-z0-9_-]{1,90}$"), HistoryQuery),
    responses((status = 200, description = "A page of history", body = HistoryPage),
              (status = 400, description = "Bad address, cursor or limit", body = ErrorBody),
              (status = 422, description = "Neither an address of this network (its checksum or prefix) nor a dev account", body = ErrorBody)))]
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(address): Path<String>,
    Query(page): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = parse_limit(page.limit)?;
    let before = match &page.before {
        None => None,
        Some(text) => Some(parse_cursor("before", text)?),
    };
    // After the query's shape: a checksum refusal (422) only for a request of good shape.
    let address = state.parse_address("address", &address)?;
    let store = &state.inner.store;
    // One more than asked: whether an older page exists.
    let mut entries = store.history(&address, before, limit + 1)?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let network = state.network();
    let mut transactions = Vec::with_capacity(entries.len());
    for entry in &entries {
        let block = crate::state::best_block(store, entry.height)?;
        // The index and the block are read apart: a reorg between them shows as a
        // different transaction there (a 503 to retry, as in `best_block`).
        let tx = block
            .transactions
            .get(entry.position as usize)
            .filter(|tx| tx.compute_txid() == entry.txid)
            .ok_or_else(|| {
                ApiError::chain_moved("the best chain changed during the read: try again")
            })?;
        transactions.push(HistoryItem {
            height: entry.height.0,
            position: entry.position,
            transaction: TxView::new(network, tx, entry.txid),
        });
    }
    let next_before = more
        .then(|| {
            entries
                .last()
                .map(|e| format!("{}:{}", e.height.0, e.position))
        })
        .flatten();
    Ok(Json(HistoryPage {
        address: address.to_bech32(network),
        transactions,
        next_before,
    }))
}

/// The mempool.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MempoolView {
    /// Pending transfers.
    pub count: usize,
    /// Their encoded bytes.
    pub bytes: usize,
    /// The best fee rate first, up to `limit`.
    pub transactions: Vec<PendingTx>,
}

/// A pending transfer and its fee rate.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PendingTx {
    /// The transfer.
    #[serde(flatten)]
    pub tx: TxView,
    /// Its encoded size in bytes.
    pub size: usize,
    /// Its fee per encoded byte, base units.
    pub fee_rate: f64,
}

/// `limit` for the mempool.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct Limit {
    /// At most this many transfers (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// `GET /v1/mempool?limit=`.
#[utoipa::path(get, path = "/v1/mempool", tag = "v1", params(Limit),
    responses((status = 200, description = "Pending transfers", body = MempoolView),
              (status = 400, description = "Bad limit", body = ErrorBody)))]
pub(crate) async fn mempool(
    State(state): State<AppState>,
    Query(query): Query<Limit>,
) -> Result<Json<MempoolView>, ApiError> {
    let limit = parse_limit(query.limit)?;
    let network = state.network();
    // Copied out under the mempool's lock, turned into views after it.
    let (count, bytes, best) = {
        let pool = state.chain().mempool();
        let best: Vec<(Txid, oxchain_primitives::Transfer)> = pool
            .best(limit)
            .into_iter()
            .map(|(txid, t)| (txid, t.clone()))
            .collect();
        (pool.len(), pool.bytes(), best)
    };
    Ok(Json(MempoolView {
        count,
        bytes,
        transactions: best
            .into_iter()
            .map(|(txid, t)| {
                let fee = t.fee.units();
                let tx = Transaction::Transfer(t);
                let size = tx.encoded_len();
                PendingTx {
                    tx: TxView::new(network, &tx, txid),
                    size,
                    fee_rate: fee as f64 / size.max(1) as f64,
                }
            })
            .collect(),
    }))
}

/// How many blocks to mine.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MineRequest {
    /// Blocks to mine (default 1).
    #[schema(minimum = 1, maximum = 100)]
    count: Option<u64>,
}

/// A mined block.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MinedView {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: String,
}

/// The blocks mined.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MineAnswer {
    /// Oldest first.
    pub blocks: Vec<MinedView>,
}

/// `POST /v1/mine`: mine `count` blocks now.
#[utoipa::path(post, path = "/v1/mine", tag = "v1", request_body = Option<MineRequest>,
    responses((status = 200, description = "The blocks mined", body = MineAnswer),
              (status = 400, description = "Bad count", body = ErrorBody),
              (status = 409, description = "Mining is off on this node", body = ErrorBody)))]
pub(crate) async fn mine(
    State(state): State<AppState>,
    MaybeBody(body): MaybeBody<MineRequest>,
) -> Result<Json<MineAnswer>, ApiError> {
    let count = body.and_then(|b| b.count).unwrap_or(1);
    if !(1..=100).contains(&count) {
        return Err(ApiError::bad_request(
            "bad_count",
            format!("count {count} is out of range: 1 to 100"),
        ));
    }
    let mined = mine_blocks(&state, count as usize).await?;
    Ok(Json(MineAnswer {
        blocks: mined
            .into_iter()
            .map(|m| MinedView {
                height: m.height.0,
                hash: m.hash.to_string(),
            })
            .collect(),
    }))
}

/// Mines `count` blocks on the miner's thread, without holding up the runtime.
pub(crate) async fn mine_blocks(state: &AppState, count: usize) -> Result<Vec<Mined>, ApiError> {
    let miner = state.inner.miner.clone();
    tokio::task::spawn_blocking(move || miner.mine(count))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            MineError::Off => ApiError::new(StatusCode::CONFLICT, "mining_off", e.to_string()),
            MineError::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", e.to_string())
            }
            MineError::Chain(_) => ApiError::internal(e),
        })
}

#[cfg(test)]
mod tests {
    use oxchain_chain::{Chain, MempoolLimits};
    use oxchain_storage::Store;
    use oxchain_testkit::ChainBuilder;

    use super::*;

    #[test]
    fn the_network_hash_rate_is_the_work_of_recent_blocks_over_their_time() {
        let mut builder = ChainBuilder::regtest();
        builder.spacing_ms = 2_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &builder.params).unwrap();
        let mut chain = Chain::new(
            builder.params.clone(),
            store.clone(),
            MempoolLimits::default(),
            1,
        )
        .unwrap();
        // Genesis alone, then one block: nothing to measure.
        assert_eq!(network_hash_rate(&store, &store.tip().unwrap()), None);
        for _ in 0..11 {
            builder.extend(vec![]).unwrap();
        }
        let far_future = u64::MAX / 2;
        chain
            .process_blocks(builder.blocks[1..].to_vec(), far_future)
            .unwrap();
        let tip = store.tip().unwrap();
        assert_eq!(tip.height, Height(11));
        // Blocks 2..=11 over blocks 1..11's 20 s: regtest's work per block (2 hashes,
        // as its target is about half the hash space) every 2 s.
        let rate = network_hash_rate(&store, &tip).unwrap();
        assert!((rate - 1.0).abs() < 1e-6, "{rate}");
    }
}
