//! Accounts: `/v1/accounts/{address}` and its confirmed history.

// utoipa's `path` macro names types with full paths (see v1.rs).
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, Query, State};
use oxchain_primitives::Txid;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{parse_cursor, parse_limit};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::TxView;

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
