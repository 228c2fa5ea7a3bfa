//! `GET /v1/search?q=`: what a query names (a height, a block hash, a txid, an address or
//! on dev and regtest a dev account name), so that a search box needs one request.

// utoipa's `path` macro names the extractors' types with full paths, which this lint
// then reports against our own code.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Query, State};
use oxchain_primitives::{BlockHash, Txid};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The query.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct SearchQuery {
    /// A height, a block hash, a txid, an address, or a dev account name (surrounding
    /// spaces are ignored).
    #[param(required = true, min_length = 1, max_length = 200)]
    q: Option<String>,
}

/// What the query names.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Found {
    /// block, transaction or account.
    pub kind: &'static str,
    /// The block's height or hash, the txid, or the account's address: the id for
    /// `/v1/blocks/{id}`, `/v1/transactions/{txid}` or `/v1/accounts/{address}`.
    pub id: String,
}

/// `GET /v1/search?q=`.
#[utoipa::path(get, path = "/v1/search", tag = "v1", params(SearchQuery),
    responses((status = 200, description = "What the query names", body = Found),
              (status = 400, description = "No query, or one over 200 bytes", body = ErrorBody),
              (status = 404, description = "Nothing matches", body = ErrorBody)))]
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Found>, ApiError> {
    let Some(q) = query.q.as_deref().filter(|q| (1..=200).contains(&q.len())) else {
        return Err(ApiError::bad_request(
            "bad_query",
            "q must be 1 to 200 bytes: a height, hash, txid, address or name",
        ));
    };
    let q = q.trim();
    let found = |kind, id: String| Ok(Json(Found { kind, id }));
    let nothing = || Err(ApiError::not_found(format!("nothing matches {q:?}")));
    if q.len() < 20 && q.bytes().all(|b| b.is_ascii_digit()) {
        let tip = state.chain().tip().height.0;
        return match q.parse::<u64>() {
            Ok(height) if height <= tip => found("block", height.to_string()),
            _ => nothing(),
        };
    }
    if q.len() == 64 && q.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hex = q.to_ascii_lowercase();
        let store = &state.inner.store;
        if let Ok(txid) = hex.parse::<Txid>()
            && (store.tx_location(&txid)?.is_some() || state.chain().mempool().contains(&txid))
        {
            return found("transaction", hex);
        }
        if let Ok(hash) = hex.parse::<BlockHash>()
            && store.header(&hash)?.is_some()
        {
            return found("block", hex);
        }
        return nothing();
    }
    match state.parse_address("q", q) {
        Ok(address) => found("account", address.to_bech32(state.network())),
        Err(_) => nothing(),
    }
}
