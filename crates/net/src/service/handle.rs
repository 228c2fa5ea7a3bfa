//! What the rest of the node holds of the network: how it joins ([`NetConfig`]), the
//! handle to the running loop ([`NetHandle`]) and what the loop publishes ([`NetInfo`]).
//! No libp2p type crosses this line.

use std::path::PathBuf;
use std::time::Duration;

use libp2p::Multiaddr;
use tokio::sync::{mpsc, watch};

use crate::NetError;

/// How a node joins the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Where the node key lives.
    pub data_dir: PathBuf,
    /// Where to listen for peers: a multiaddr or `HOST:PORT`.
    pub listen: String,
    /// Peers to dial at start, and again (with backoff) when the connection drops: each a
    /// multiaddr (with or without `/p2p/ID`) or `HOST:PORT`.
    pub peers: Vec<String>,
    /// How long a misbehaving peer is refused.
    pub ban_for: Duration,
    /// Inbound connections at most.
    pub max_inbound: u32,
    /// Outbound connections at most.
    pub max_outbound: u32,
    /// Addresses where others reach this node (a public IP behind a NAT or a port
    /// forward), told to peers through identify and discovery: each a multiaddr or
    /// `HOST:PORT`.
    pub external_addresses: Vec<String>,
    /// A delay on everything this node sends, for the network lab only (ADR 0019);
    /// zero everywhere else.
    pub link_latency: Duration,
    /// Whether to look for peers beyond those given (Kademlia). On for every node;
    /// tests that need a fixed topology (a line of three) turn it off.
    pub discovery: bool,
    /// A name for this node that peers show (`--name`), with the address its coinbases
    /// pay, told to peers through identify (see [`crate::agent`]); `None` tells neither.
    pub name: Option<(String, String)>,
}

impl NetConfig {
    /// Defaults for a node listening on `listen`.
    pub fn new(data_dir: PathBuf, listen: impl Into<String>) -> NetConfig {
        NetConfig {
            data_dir,
            listen: listen.into(),
            peers: Vec::new(),
            ban_for: Duration::from_secs(3600),
            max_inbound: 64,
            max_outbound: 16,
            external_addresses: Vec::new(),
            link_latency: Duration::ZERO,
            discovery: true,
            name: None,
        }
    }
}

/// A connected peer, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Its peer id.
    pub peer_id: String,
    /// Its address as we see it.
    pub address: String,
    /// Its best height, once it said.
    pub height: Option<u64>,
    /// What it said of itself through identify: its name and the address its coinbases
    /// pay (a claim, unchecked), and the address it listens on.
    pub said: crate::agent::Said,
}

/// Catching up with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// Our height.
    pub height: u64,
    /// The peer's.
    pub target: u64,
}

/// What the network looks like now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// Our peer id.
    pub peer_id: String,
    /// Where we listen, each with `/p2p/<peer id>`.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerView>,
    /// Set while syncing.
    pub sync: Option<SyncProgress>,
    /// Peers banned now.
    pub banned: usize,
    /// Blocks and transfers from peers refused as invalid, by rule (for metrics).
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Compact blocks turned into blocks, by how (`mempool`: from the mempool alone,
    /// `fetched`: missing transfers asked for, `full_block`: the whole block asked
    /// for), and `fetched_transfers`: transfers asked for; `pending_asked`: requests
    /// for the transfers a gossiped transfer's nonce gap lacks, `pending_fetched`: the
    /// transfers they brought.
    pub relay: std::collections::BTreeMap<String, u64>,
}

pub(super) enum Command {
    Dial(Multiaddr),
    Refresh,
}

/// The running network. Dropping it stops the loop.
#[derive(Debug)]
pub struct NetHandle {
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) info: watch::Receiver<NetInfo>,
    pub(super) task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl NetHandle {
    /// The network now.
    pub fn info(&self) -> NetInfo {
        self.info.borrow().clone()
    }

    /// A receiver that sees every change of [`NetInfo`].
    pub fn watch(&self) -> watch::Receiver<NetInfo> {
        self.info.clone()
    }

    /// Asks every peer for its best chain now; a sync starts if one is ahead.
    pub fn refresh(&self) {
        let _ = self.commands.send(Command::Refresh);
    }

    /// Dials a peer (a multiaddr, or `HOST:PORT`).
    pub fn dial(&self, addr: &str) -> Result<(), NetError> {
        let addr = crate::parse_peer_addr(addr)?;
        self.commands
            .send(Command::Dial(addr))
            .map_err(|_| NetError::Setup("the network has stopped".into()))
    }
}

impl NetHandle {
    /// Stops the network and waits until its loop has let go of the chain (and so of
    /// the store): a node that restarts on the same data directory finds it free.
    pub async fn stop(&self) {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}
