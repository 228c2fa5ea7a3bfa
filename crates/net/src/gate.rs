//! The door: a behaviour that refuses connections from banned peer ids and banned IPs,
//! inbound connections past a per-IP cap, and dials while the outbound connections are
//! at their cap. An IP is checked when the connection is
//! accepted, before any handshake, so a banned host that comes back under a fresh peer
//! id costs an accept and a close, not a noise handshake.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Bans remembered of each kind, at most: past it the one that ends first goes.
const MAX_BANS: usize = 16_384;

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("peer {0} is banned")]
    Peer(PeerId),
    #[error("address {0} is banned")]
    Ip(IpAddr),
    #[error("address {0} has {1} inbound connections already")]
    Crowded(IpAddr, usize),
    #[error("{0} outbound connections already")]
    Outbound(usize),
}

/// The first IP address in a multiaddr.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    use libp2p::multiaddr::Protocol;
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        // An IPv4 address mapped into IPv6 is that IPv4 address (a dual-stack listener).
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip).to_canonical()),
        _ => None,
    })
}

pub(crate) struct Gate {
    peers: HashMap<PeerId, Instant>,
    ips: HashMap<IpAddr, Instant>,
    inbound: HashMap<IpAddr, usize>,
    max_inbound_per_ip: usize,
    /// Established outbound connections, and the cap. `connection_limits` enforces the
    /// cap only once a connection is up: a dial past it costs both sides a handshake
    /// for a connection thrown away at once (Kademlia's lookups dialled thousands a
    /// minute in the 30-node lab). This refuses the dial before it starts.
    outbound: usize,
    max_outbound: usize,
}

fn insert_bounded<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, Instant>,
    key: K,
    until: Instant,
) {
    if map.len() >= MAX_BANS
        && !map.contains_key(&key)
        && let Some(first) = map.iter().min_by_key(|(_, u)| **u).map(|(k, _)| *k)
    {
        map.remove(&first);
    }
    map.insert(key, until);
}

impl Gate {
    pub(crate) fn new(max_inbound_per_ip: usize, max_outbound: usize) -> Gate {
        Gate {
            peers: HashMap::new(),
            ips: HashMap::new(),
            inbound: HashMap::new(),
            max_inbound_per_ip,
            outbound: 0,
            max_outbound,
        }
    }

    pub(crate) fn ban_peer(&mut self, peer: PeerId, until: Instant) {
        insert_bounded(&mut self.peers, peer, until);
    }

    pub(crate) fn ban_ip(&mut self, ip: IpAddr, until: Instant) {
        insert_bounded(&mut self.ips, ip, until);
    }

    /// Drops the bans that have ended.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.peers.retain(|_, until| *until > now);
        self.ips.retain(|_, until| *until > now);
    }

    /// Peer ids banned now.
    pub(crate) fn banned(&self) -> usize {
        let now = Instant::now();
        self.peers.values().filter(|u| **u > now).count()
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|u| *u > Instant::now())
    }

    fn check_peer(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.is_banned(peer) {
            return Err(ConnectionDenied::new(Refused::Peer(*peer)));
        }
        Ok(())
    }

    fn check_inbound(&self, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        if self.ips.get(&ip).is_some_and(|u| *u > Instant::now()) {
            return Err(ConnectionDenied::new(Refused::Ip(ip)));
        }
        let count = self.inbound.get(&ip).copied().unwrap_or(0);
        // Loopback is exempt from the cap: a devnet's nodes all share 127.0.0.1.
        if count >= self.max_inbound_per_ip && !ip.is_loopback() {
            return Err(ConnectionDenied::new(Refused::Crowded(ip, count)));
        }
        Ok(())
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check_inbound(remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_peer(&peer)?;
        self.check_inbound(remote)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.check_peer(&peer)?;
        }
        if self.outbound >= self.max_outbound {
            return Err(ConnectionDenied::new(Refused::Outbound(self.outbound)));
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_peer(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let (endpoint, delta) = match event {
            FromSwarm::ConnectionEstablished(e) => (e.endpoint, 1isize),
            FromSwarm::ConnectionClosed(e) => (e.endpoint, -1),
            _ => return,
        };
        if endpoint.is_dialer() {
            self.outbound = self.outbound.saturating_add_signed(delta);
        }
        if let ConnectedPoint::Listener { send_back_addr, .. } = endpoint
            && let Some(ip) = ip_of(send_back_addr)
        {
            let count = self.inbound.entry(ip).or_default();
            *count = count.saturating_add_signed(delta);
            if *count == 0 {
                self.inbound.remove(&ip);
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
