//! `POST /v1/mine` and the mining the tutorial's `/mine` shares.

// utoipa's `path` macro names types with full paths (see v1.rs).
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oxchain_miner::{MineError, Mined};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::body::MaybeBody;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

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
