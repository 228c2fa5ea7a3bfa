//! Discovery on Kademlia with real nodes on 127.0.0.1: nodes given only a seed's address
//! find each other through the DHT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{node, node_on, wait_for};
use oxchain_consensus::ChainParams;

/// Seven nodes, each given only the seed: each finds the others and dials them up to
/// its outbound target (8), so every node ends up linked to every other. Identify alone
/// tells a node only its own peers' addresses, never a third node's: without the DHT,
/// each node but the seed had one peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_given_only_a_seed_find_each_other() {
    let seed = node(&[]).await;
    let mut nodes = Vec::new();
    for _ in 0..6 {
        nodes.push(node(&[&seed]).await);
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.net.info().peer_id).collect();
    wait_for("every node to reach every other", 60, || {
        nodes.iter().all(|n| n.net.info().peers.len() >= ids.len())
    })
    .await;
    for n in &nodes {
        let peers = n.net.info().peers;
        for id in &ids {
            assert!(
                *id == n.net.info().peer_id || peers.iter().any(|p| p.peer_id == *id),
                "a node did not find {id}"
            );
        }
    }
}

/// A node given no peer starts from its network's bootstrap addresses
/// (`ChainParams::bootstrap`), and finds the rest from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_given_no_peer_starts_from_the_bootstrap_addresses() {
    let seed = node(&[]).await;
    let other = node(&[&seed]).await;
    let mut params = ChainParams::regtest();
    params.bootstrap = vec![seed.net.info().listen_addrs[0].clone()];
    let fresh = node_on(params, &[]).await;
    let other_id = other.net.info().peer_id;
    wait_for(
        "the fresh node to reach the seed and, through it, the other",
        60,
        || {
            let peers = fresh.net.info().peers;
            peers.iter().any(|p| p.peer_id == seed.net.info().peer_id)
                && peers.iter().any(|p| p.peer_id == other_id)
        },
    )
    .await;
}
