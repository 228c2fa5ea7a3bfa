//! What a light client reads: `GET /v1/headers` (best-chain headers, binary or hex) and
//! `GET /v1/data/{hash}` (transfers found by the first 32 bytes of their data: a file's
//! SHA-256 recorded by `oxchain notarize`). Each answer is read from one store snapshot.

// utoipa's `path` macro names the extractors' types with full paths, which this lint
// then reports against our own code.
#![allow(unused_qualifications)]

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use oxchain_primitives::Height;
use oxchain_primitives::limits::HEADER_BYTES;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::TxView;

/// The most headers one answer holds.
pub(crate) const MAX_HEADERS: u64 = 2_000;

/// The media type of the binary answer: headers' encodings back to back.
const OCTET_STREAM: &str = "application/octet-stream";

/// Which headers.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct HeadersQuery {
    /// The first height (default 0, genesis).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    from: Option<u64>,
    /// At most this many headers (default and most 2,000); fewer at the tip.
    #[param(minimum = 1, maximum = 2000)]
    count: Option<u64>,
}

/// Best-chain headers, as hex.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeadersView {
    /// The height of the first.
    pub from: u64,
    /// The best chain's height when they were read.
    pub tip_height: u64,
    /// Each header's 88-byte encoding (`docs/protocol.md`), 176 hex digits, by height.
    pub headers: Vec<String>,
}

/// `GET /v1/headers?from=&count=`: best-chain headers from `from`, at most 2,000. With
/// `Accept: application/octet-stream`, their 88-byte encodings back to back (the tip
/// height in `X-Tip-Height`); otherwise JSON with each as hex. Past the tip: none.
#[utoipa::path(get, path = "/v1/headers", tag = "v1", params(HeadersQuery),
    responses((status = 200, description = "The headers, as JSON with hex, or as bytes when `Accept` asks for application/octet-stream",
                content((HeadersView = "application/json"), (Vec<u8> = "application/octet-stream")),
                headers(("X-Tip-Height" = u64, description = "The best chain's height when they were read"))),
              (status = 400, description = "Bad `from` or `count`", body = ErrorBody)))]
pub(crate) async fn headers(
    State(state): State<AppState>,
    request_headers: HeaderMap,
    Query(query): Query<HeadersQuery>,
) -> Result<Response, ApiError> {
    let from = query.from.unwrap_or(0);
    // The document's range (a JSON client's integers stop at 2^63 - 1).
    if i64::try_from(from).is_err() {
        return Err(ApiError::bad_request(
            "bad_from",
            format!("from {from} is out of range: 0 to 2^63 - 1"),
        ));
    }
    let count = match query.count {
        None => MAX_HEADERS,
        Some(n @ 1..=MAX_HEADERS) => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "bad_count",
                format!("count {n} is out of range: 1 to {MAX_HEADERS}"),
            ));
        }
    };
    let binary = request_headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.split(';').next().map(str::trim) == Some(OCTET_STREAM));
    let store = state.inner.store.clone();
    let (tip_height, encoded) = tokio::task::spawn_blocking(move || {
        let snapshot = store.snapshot()?;
        let tip = snapshot.tip()?.height.0;
        let last = tip.min(from.saturating_add(count - 1));
        let mut out = Vec::new();
        for height in from..=last {
            let hash = snapshot
                .hash_at(Height(height))?
                .ok_or_else(|| ApiError::internal(format!("no best block at {height}")))?;
            let record = snapshot
                .header(&hash)?
                .ok_or_else(|| ApiError::internal(format!("no header for {hash}")))?;
            out.push(record.header.to_bytes());
        }
        Ok::<_, ApiError>((tip, out))
    })
    .await
    .map_err(|e| ApiError::internal(format!("header read: {e}")))??;
    let tip_header = ("x-tip-height", HeaderValue::from(tip_height));
    if binary {
        let mut bytes = Vec::with_capacity(encoded.len() * HEADER_BYTES);
        for header in &encoded {
            bytes.extend_from_slice(header);
        }
        return Ok((
            [(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))],
            [tip_header],
            Body::from(bytes),
        )
            .into_response());
    }
    Ok((
        [tip_header],
        Json(HeadersView {
            from,
            tip_height,
            headers: encoded.iter().map(hex::encode).collect(),
        }),
    )
        .into_response())
}

/// A page of records.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct DataQuery {
    /// Only records after this cursor, `height:position` (the previous page's
    /// `next_after`).
    #[param(pattern = "^[0-9]{1,20}:[0-9]{1,10}$")]
    after: Option<String>,
    /// At most this many (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// A best-chain transfer whose data starts with the hash.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordView {
    /// Its block's height.
    pub height: u64,
    /// Its position in the block (the merkle leaf index).
    pub position: u32,
    /// Its block's hash.
    pub block: String,
    /// Its block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Blocks on top of it, its own included.
    pub confirmations: u64,
    /// The transfer; `data` is the hash and what follows it (a label).
    pub transaction: TxView,
}

/// The records of one hash.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DataView {
    /// The hash asked for, lowercase hex.
    pub hash: String,
    /// Oldest first: the first is when it was first recorded.
    pub records: Vec<RecordView>,
    /// Pass as `after` for the next page (null on the last).
    pub next_after: Option<String>,
}

/// `GET /v1/data/{hash}`: best-chain transfers whose data is, or starts with, the 32
/// bytes `hash` (a file's SHA-256, as `oxchain notarize` records it), oldest first.
#[utoipa::path(get, path = "/v1/data/{hash}", tag = "v1",
    params(("hash" = String, Path, description = "32 bytes, 64 hex digits", pattern = "^[0-9a-fA-F]{64}$"),
        DataQuery),
    responses((status = 200, description = "The records (none: never recorded on the best chain)", body = DataView),
              (status = 400, description = "Bad hash, cursor or limit", body = ErrorBody)))]
pub(crate) async fn data(
    State(state): State<AppState>,
    Path(hash): Path<String>,
    Query(query): Query<DataQuery>,
) -> Result<Json<DataView>, ApiError> {
    let prefix: [u8; 32] = hex::decode(&hash)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_hash",
                format!("{hash:?} is not 32 bytes in hex (64 hex digits)"),
            )
        })?;
    let limit = crate::v1::parse_limit(query.limit)?;
    let after = match &query.after {
        None => None,
        Some(text) => Some(crate::v1::parse_cursor("after", text)?),
    };
    let store = state.inner.store.clone();
    let network = state.network();
    // Up to 100 blocks read and decoded: off the async threads.
    let (entries, records, more) = tokio::task::spawn_blocking(move || {
        let snapshot = store.snapshot()?;
        // One more than asked: whether a later page exists.
        let mut entries = snapshot.data(&prefix, after, limit + 1)?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let tip = snapshot.tip()?.height.0;
        let mut records = Vec::with_capacity(entries.len());
        for entry in &entries {
            let hash = snapshot
                .hash_at(entry.height)?
                .ok_or_else(|| ApiError::internal(format!("no best block at {}", entry.height)))?;
            let block = snapshot
                .block(&hash)?
                .ok_or_else(|| ApiError::internal(format!("no body for {hash}")))?;
            let tx = block
                .transactions
                .get(entry.position as usize)
                .filter(|tx| tx.compute_txid() == entry.txid)
                .ok_or_else(|| ApiError::internal(format!("data index off at {hash}")))?;
            records.push(RecordView {
                height: entry.height.0,
                position: entry.position,
                block: hash.to_string(),
                time_ms: block.header.time_ms,
                confirmations: tip.saturating_sub(entry.height.0) + 1,
                transaction: TxView::new(network, tx, entry.txid),
            });
        }
        Ok::<_, ApiError>((entries, records, more))
    })
    .await
    .map_err(|e| ApiError::internal(format!("data read: {e}")))??;
    let next_after = more
        .then(|| {
            entries
                .last()
                .map(|e| format!("{}:{}", e.height.0, e.position))
        })
        .flatten();
    Ok(Json(DataView {
        hash: hex::encode(prefix),
        records,
        next_after,
    }))
}
