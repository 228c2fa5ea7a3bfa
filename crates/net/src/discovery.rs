//! Discovery on Kademlia: the DHT is used only to find peers. Its protocol name carries
//! the network and genesis, so nodes of other networks never enter the routing table.
//! Peers found here go to the address book ([`crate::peers::Peers`]), which decides
//! whom to dial (its caps, per-subnet limit and backoff); Kademlia never decides alone.
//! No records are stored for anyone: a DHT that held other peers' values would be
//! memory anyone could fill.

use std::time::Duration;

use libp2p::kad::{self, store::MemoryStore, store::MemoryStoreConfig};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

pub(crate) type Kad = kad::Behaviour<MemoryStore>;

/// A lookup that has not finished by then ends with what it found.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// The Kademlia protocol of the network whose protocols start with `prefix`.
pub(crate) fn protocol(prefix: &str) -> Result<StreamProtocol, String> {
    StreamProtocol::try_from_owned(format!("{prefix}/kad/1")).map_err(|e| e.to_string())
}

/// The Kademlia behaviour of `local`, serving lookups (server mode is set, not
/// detected: detection needs a confirmed external address, which a node on a private
/// network never gets).
pub(crate) fn behaviour(protocol: StreamProtocol, local: PeerId) -> Kad {
    let mut config = kad::Config::new(protocol);
    config
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        // The service refreshes the table itself, every 60 s and at the first peer
        // (libp2p's timer also fires when no peer is known, and warns each time).
        .set_periodic_bootstrap_interval(None)
        .set_query_timeout(QUERY_TIMEOUT);
    // Nothing is ever stored: records others send are filtered (and dropped), and we
    // publish none.
    let store = MemoryStore::with_config(
        local,
        MemoryStoreConfig {
            max_records: 0,
            max_value_bytes: 0,
            max_providers_per_key: 0,
            max_provided_keys: 0,
        },
    );
    let mut kad = Kad::with_config(local, store, config);
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

/// The peers and addresses a Kademlia event tells of: peers added to the routing table
/// and peers a lookup found.
pub(crate) fn found(event: &kad::Event) -> Vec<(PeerId, Vec<Multiaddr>)> {
    match event {
        kad::Event::RoutingUpdated {
            peer, addresses, ..
        } => vec![(*peer, addresses.iter().cloned().collect())],
        kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::GetClosestPeers(Ok(ok)),
            ..
        } => ok
            .peers
            .iter()
            .map(|p| (p.peer_id, p.addrs.clone()))
            .collect(),
        _ => Vec::new(),
    }
}
