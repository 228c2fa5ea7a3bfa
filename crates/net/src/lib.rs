//! oxchain's peer-to-peer network on libp2p (TCP, noise, yamux). No libp2p type leaves
//! this crate: the node talks to it through [`NetHandle`] and [`NetInfo`].
//!
//! - Gossip (gossipsub): blocks and transfers, on topics named by network and genesis.
//!   Messages are validated before they are forwarded (`validate_messages`): a block goes
//!   through the chain's pipeline, a transfer through the mempool; invalid data is
//!   rejected and its sender banned, a block from the future or with an unknown parent is
//!   nobody's fault (ignored; the parent is fetched by sync).
//! - Sync (request-response, [`message`]): Status, GetHeaders (a locator, at most 2,000
//!   headers), GetBlocks (at most 64 blocks); headers first, from the peer with the most
//!   work; blocks imported in batches through `Chain::process_blocks`.
//! - Bans: a peer that sends invalid data is disconnected and refused for a while.
//!
//! # Layout
//! - [`message`]: the sync messages and their encoding.
//! - [`codec`]: the request-response codec with size caps (public for test peers).
//! - [`serve`]: answers to peers' sync requests, read from the store.
//! - `sync`: the sync as a state machine with no I/O (headers first, blocks from
//!   several peers, penalties as outputs).
//! - `peers`: the peer manager with no I/O: strikes, when a ban reaches an IP, the
//!   bounded address book and dial backoff.
//! - `gate`: the behaviour that refuses banned peer ids and IPs, and inbound
//!   connections past a per-IP cap, before the handshake.
//! - `gossip`: the gossipsub set-up and the checks a message passes before it is
//!   forwarded.
//! - `keys`: the node's identity in the data directory.
//! - [`service`]: the event loop, which only moves messages between the swarm and these
//!   parts; [`NetHandle`], [`NetInfo`].

pub mod agent;
pub mod codec;
pub mod compact;
mod discovery;
mod gate;
mod gossip;
mod keys;
mod latency;
pub mod message;
mod metrics;
mod peers;
pub mod serve;
pub mod service;
mod sync;

use std::path::PathBuf;

#[doc(hidden)]
pub use gossip::{GossipInbox, Verdict as GossipVerdict};
pub use service::{NetConfig, NetHandle, NetInfo, PeerView, SyncProgress};

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The node key could not be read or written.
    #[error("node key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The swarm could not be built.
    #[error("cannot start the network: {0}")]
    Setup(String),
    /// The listen address could not be used.
    #[error("cannot listen for peers on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A peer address is not usable.
    #[error("bad peer address {addr:?}: {reason}")]
    BadAddress {
        /// The address given.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// Parses a peer address: a multiaddr (with `/p2p/ID` or not) or `HOST:PORT`.
/// A listen address `HOST:0` asks for any free port.
pub fn parse_peer_addr(text: &str) -> Result<libp2p::Multiaddr, NetError> {
    let bad = |reason: String| NetError::BadAddress {
        addr: text.to_string(),
        reason,
    };
    if text.starts_with('/') {
        return text.parse().map_err(|e| bad(format!("{e}")));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| bad("expected a multiaddr or HOST:PORT".into()))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("{port:?} is not a port")))?;
    let proto = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("/ip4/{ip}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("/ip6/{ip}"),
        Err(_) if host == "localhost" => "/ip4/127.0.0.1".to_string(),
        Err(_) => format!("/dns/{host}"),
    };
    format!("{proto}/tcp/{port}")
        .parse()
        .map_err(|e| bad(format!("{e}")))
}
