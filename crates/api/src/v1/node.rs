//! `/v1/status` and `/v1/node`: the node at a glance and who it is.

// utoipa's `path` macro names types with full paths (see v1.rs).
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use oxchain_primitives::Height;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;
use crate::views::difficulty;

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
