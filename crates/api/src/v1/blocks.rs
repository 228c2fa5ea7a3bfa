//! Blocks and confirmed transactions: `/v1/blocks`, `/v1/blocks/{id}`,
//! `/v1/transactions/{txid}` and its merkle proof.

// utoipa's `path` macro names types with full paths (see v1.rs).
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, Query, State};
use oxchain_primitives::{BlockHash, Height, MerkleProof, Transaction, Txid};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_limit;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::{BlockSummary, BlockView, TxView};

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

impl Page {
    fn limit(&self) -> Result<usize, ApiError> {
        parse_limit(self.limit)
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
