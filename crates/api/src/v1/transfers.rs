//! Transfers not yet in a block: `POST /v1/transactions` and `/v1/mempool`.

// utoipa's `path` macro names types with full paths (see v1.rs).
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use oxchain_primitives::{Amount, PublicKey, Signature, Transaction, Transfer, Txid};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_limit;
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::TxView;

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
