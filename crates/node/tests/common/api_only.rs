//! An API alone over a chain the test holds (no network), built as `oxchain node` builds
//! it: for tests that drive the chain's writer themselves or need a token.

use std::net::SocketAddr;
use std::sync::Arc;

use oxchain_api::{ApiParts, AppState, Cors};
use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_miner::{Miner, MiningHandle, MiningMode};
use oxchain_primitives::Address;
use oxchain_storage::Store;

/// A regtest chain in a new temporary directory.
pub(crate) fn regtest_chain() -> (tempfile::TempDir, SharedChain) {
    let params = ChainParams::regtest();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    let chain = Chain::new(params, store, MempoolLimits::default(), 1).unwrap();
    (dir, SharedChain::new(chain))
}

/// Serves the API over `chain` on 127.0.0.1 until the test ends; returns its address.
pub(crate) async fn serve_api(
    chain: &SharedChain,
    mine: MiningMode,
    token: Option<String>,
    cors: Cors,
) -> SocketAddr {
    let miner = Arc::new(
        MiningHandle::start(
            chain.clone(),
            Arc::new(Miner::new(1)),
            mine,
            Address([1; 20]),
        )
        .unwrap(),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (state, forward) = AppState::new(ApiParts {
        chain: chain.view().clone(),
        miner,
        token,
        shutdown,
        net: None,
        api_addr: None,
        registry: Default::default(),
        name: None,
        miner_address: Address([1; 20]),
    })
    .unwrap();
    tokio::spawn(forward);
    let (router, _) = oxchain_api::router(state, cors);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // The WebSockets' stop signal lives as long as the server.
        let _stop = stop;
        axum::serve(listener, router).await
    });
    addr
}
