//! Real nodes on 127.0.0.1 for the network tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_net::{NetConfig, NetHandle};
use oxchain_storage::Store;

pub(crate) struct Node {
    pub(crate) chain: SharedChain,
    pub(crate) net: NetHandle,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) async fn node(peers: &[&Node]) -> Node {
    node_on(ChainParams::regtest(), peers).await
}

/// A node of the network `params` describes.
pub(crate) async fn node_on(params: ChainParams, peers: &[&Node]) -> Node {
    start(params, peers, true).await
}

/// A regtest node that dials only `peers` and looks for no others: a fixed topology.
pub(crate) async fn node_without_discovery(peers: &[&Node]) -> Node {
    start(ChainParams::regtest(), peers, false).await
}

async fn start(params: ChainParams, peers: &[&Node], discovery: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    let chain = SharedChain::new(Chain::new(params, store, MempoolLimits::default(), 1).unwrap());
    let mut config = NetConfig::new(dir.path().to_path_buf(), "127.0.0.1:0");
    config.discovery = discovery;
    config.peers = peers
        .iter()
        .map(|p| p.net.info().listen_addrs[0].clone())
        .collect();
    let net = oxchain_net::service::start(config, chain.clone())
        .await
        .unwrap();
    Node {
        chain,
        net,
        _dir: dir,
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub(crate) async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node holding a regtest chain of `blocks` empty blocks.
pub(crate) async fn served_node(blocks: usize) -> Node {
    let mut builder = oxchain_testkit::ChainBuilder::regtest();
    for _ in 0..blocks {
        builder.extend(vec![]).unwrap();
    }
    let served = node(&[]).await;
    served
        .chain
        .write(|c| c.process_blocks(builder.blocks[1..].to_vec(), now_ms()))
        .unwrap();
    served
}

/// The resident memory of this process, in bytes. nextest (which `scripts/test` runs)
/// runs each test in a process of its own, so this is the test's nodes and peers.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// What an attack may add to the process's memory: the bound for a 20 s flood
/// (`oxchain bench flood`), well above what a node with bounded tables grows by in
/// these tests (a few MiB) and well below what an unbounded queue of blocks reaches.
pub(crate) const ATTACK_MEMORY_BOUND: u64 = 64 << 20;

/// The process's memory when an attack starts.
pub(crate) struct Memory(u64);

impl Memory {
    pub(crate) fn watch() -> Memory {
        Memory(rss_bytes())
    }

    /// Prints the growth since [`Memory::watch`] and checks it against
    /// [`ATTACK_MEMORY_BOUND`].
    pub(crate) fn assert_bounded(&self, attack: &str) {
        let growth = rss_bytes().saturating_sub(self.0);
        println!(
            "RSS growth during {attack}: {:.1} MiB",
            growth as f64 / (1 << 20) as f64
        );
        assert!(
            growth < ATTACK_MEMORY_BOUND,
            "memory grew {growth} bytes during {attack}"
        );
    }
}
