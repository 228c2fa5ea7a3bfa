//! Wiring a node: the store, the chain, the miner, the network (libp2p) and the HTTP API,
//! started in that order and stopped in reverse.
//!
//! Shutdown: when the `shutdown` future given to [`run`] completes (SIGINT or SIGTERM in
//! `oxchain node`), the API stops taking requests and closes its WebSockets, the miner
//! finishes the block it is writing and stops, the pending transfers are written to
//! `mempool.dat` (read back at the next start), and the store is closed. Every write is
//! a committed transaction, so nothing written is lost.
//!
//! # Layout
//! - `lib.rs`: [`NodeConfig`] and [`run`].
//! - [`keys`]: the miner's key and the API token in the data directory.
//! - [`mempool_file`]: pending transfers kept across a restart (`mempool.dat`).

pub mod keys;
pub mod mempool_file;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use oxchain_api::{Access, ApiParts, AppState, Cors};
use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_miner::{Miner, MiningHandle, MiningMode};
use oxchain_primitives::{Address, Network};
use oxchain_storage::Store;
use tokio::net::TcpListener;

/// Everything a node is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The network.
    pub network: Network,
    /// Where the store and keys live.
    pub data_dir: PathBuf,
    /// Where the HTTP API listens.
    pub api: SocketAddr,
    /// When to mine.
    pub mine: MiningMode,
    /// Where coinbases pay; `None`: the node's own miner key in the data directory.
    pub miner_address: Option<Address>,
    /// Mining and signature-checking threads.
    pub threads: usize,
    /// Cross-origin access to the API.
    pub cors: Cors,
    /// Host names the API answers to besides IP addresses and `localhost` (ADR 0022).
    pub api_hosts: Vec<String>,
    /// Where to listen for peers (a multiaddr or `HOST:PORT`).
    pub p2p: String,
    /// Peers to join: multiaddrs, p2p `HOST:PORT`, or `http://HOST:PORT` of a node's API.
    pub peers: Vec<String>,
    /// Where others reach this node's p2p port, when that is not where it listens (a
    /// public IP in front of it): multiaddrs or `HOST:PORT`.
    pub external_addresses: Vec<String>,
    /// A delay on everything sent to peers: the network lab's stand-in for a long link
    /// (ADR 0019); zero otherwise.
    pub link_latency: std::time::Duration,
    /// A name peers and the explorer show for this node (`--name`); with it, peers are
    /// told the address its coinbases pay. Checked with [`oxchain_net::agent::valid_name`].
    pub name: Option<String>,
}

/// What a started node tells its caller (for the start-up banner and tests).
#[derive(Debug, Clone)]
pub struct Started {
    /// The API's actual address (the port is chosen when 0 was asked).
    pub api: SocketAddr,
    /// Where coinbases pay.
    pub miner_address: Address,
    /// The chain's height at start.
    pub height: u64,
    /// Where the bearer token is, when routes need one.
    pub cookie: Option<PathBuf>,
    /// The peer id.
    pub peer_id: String,
    /// Where peers reach this node.
    pub p2p: Vec<String>,
    /// Pending transfers read back from `mempool.dat`.
    pub mempool: mempool_file::Restored,
    /// Why `mempool.dat` could not be read back, if it could not.
    pub mempool_error: Option<String>,
}

/// What a stopped node tells its caller.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Pending transfers written to `mempool.dat`.
    pub mempool_saved: usize,
}

/// Runs a node until `shutdown` completes. `on_started` is called once everything is up.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_started: impl FnOnce(&Started),
) -> anyhow::Result<Stopped> {
    let params = ChainParams::for_network(config.network);
    let store = {
        let (dir, params) = (config.data_dir.clone(), params.clone());
        tokio::task::spawn_blocking(move || Store::open(&dir, &params))
            .await
            .context("opening the store")??
    };
    let chain = Chain::new(params, store, MempoolLimits::default(), config.threads)?;
    let height = chain.tip().height.0;
    // The miner and the network write through `chain`; the API only reads its view.
    let chain = SharedChain::new(chain);

    let miner_address = match config.miner_address {
        Some(address) => address,
        None => keys::miner_address(&config.data_dir)?,
    };
    let miner = Arc::new(MiningHandle::start(
        chain.clone(),
        Arc::new(Miner::new(config.threads)),
        config.mine,
        miner_address,
    )?);

    let (api_peers, p2p_peers): (Vec<String>, Vec<String>) = config
        .peers
        .iter()
        .cloned()
        .partition(|p| p.starts_with("http://"));
    let mut net_config = oxchain_net::NetConfig::new(config.data_dir.clone(), config.p2p.clone());
    net_config.peers = p2p_peers;
    net_config.external_addresses = config.external_addresses.clone();
    net_config.link_latency = config.link_latency;
    net_config.name = config
        .name
        .clone()
        .map(|name| (name, miner_address.to_bech32(config.network)));
    let mut registry = prometheus_client::registry::Registry::default();
    let net = Arc::new(
        oxchain_net::service::start_with_metrics(net_config, chain.clone(), &mut registry).await?,
    );
    // After the network is listening to the chain: restored transfers are gossiped as
    // if they had just arrived (held until a peer subscribes).
    let (mempool, mempool_error) = {
        let (dir, chain) = (config.data_dir.clone(), chain.view().clone());
        tokio::task::spawn_blocking(move || mempool_file::load(&dir, &chain)).await?
    };
    let genesis = ChainParams::for_network(config.network).genesis_hash();
    for url in api_peers {
        // The other node may still be starting (devnet): retry for a minute.
        let net = net.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                if oxchain_api::peers::dial_node_api(&net, &genesis, &url)
                    .await
                    .is_ok()
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
    let info = net.info();

    let listener = TcpListener::bind(config.api)
        .await
        .with_context(|| format!("cannot listen on {} for the API", config.api))?;
    let api = listener.local_addr()?;
    let (token, cookie) = if api.ip().is_loopback() {
        keys::remove_api_cookie(&config.data_dir)?;
        (None, None)
    } else {
        let (token, path) = keys::write_api_cookie(&config.data_dir)?;
        (Some(token), Some(path))
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (state, forward_events) = AppState::new(ApiParts {
        chain: chain.view().clone(),
        miner: miner.clone(),
        token,
        shutdown: stop_rx,
        net: Some(net.clone()),
        api_addr: Some(api),
        registry,
        name: config.name.clone(),
        miner_address,
    })?;
    let events = tokio::spawn(forward_events);
    let (router, _) = oxchain_api::router(
        state,
        Access {
            cors: config.cors.clone(),
            hosts: config.api_hosts.clone(),
        },
    );

    on_started(&Started {
        api,
        miner_address,
        height,
        cookie,
        peer_id: info.peer_id.clone(),
        p2p: info.listen_addrs.clone(),
        mempool,
        mempool_error: mempool_error.map(|e| e.to_string()),
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // WebSocket streams are not HTTP connections: tell them to close.
            let _ = stop_tx.send(true);
        })
        .await;

    // The events forwarder holds the API's state (and so the miner): it goes first,
    // and the network, so that the miner's last handle is ours.
    events.abort();
    let _ = events.await;
    net.stop().await;
    drop(net);
    // The miner finishes the block it is on, then the chain and store close. If a
    // request still holds the miner, it stops when that lets go.
    if let Ok(miner) = Arc::try_unwrap(miner) {
        tokio::task::spawn_blocking(move || miner.stop()).await?;
    }
    let mempool_saved = {
        let (dir, chain) = (config.data_dir.clone(), chain.view().clone());
        tokio::task::spawn_blocking(move || mempool_file::save(&dir, &chain))
            .await?
            .context("writing mempool.dat")?
    };
    served.context("the API server failed")?;
    // The store closes when its last handle goes: a connection task or checker thread
    // may still hold one for a moment. Wait for it (a restart on the same directory
    // needs the lock), but not for ever.
    let closed = chain.view().store().closed();
    drop(chain);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !closed.is_closed() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    if !closed.is_closed() {
        tracing::warn!("the store is still in use 10 s after the node stopped");
    }
    Ok(Stopped { mempool_saved })
}
