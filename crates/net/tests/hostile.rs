//! Hostile peers against a real node: each attack from a real libp2p peer on the crate's
//! own codec (`oxchain_testkit::adversary`), beside an honest peer. The node must keep syncing
//! from the honest one, and count the hostile one's faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Memory, node, now_ms, served_node, wait_for};
use oxchain_net::message::SyncRequest;
use oxchain_testkit::ChainBuilder;
use std::time::Duration;

use libp2p::gossipsub::IdentTopic;
use oxchain_consensus::ChainParams;
use oxchain_net::compact::CompactBlock;
use oxchain_testkit::adversary::{Adversary, Envelope, Script, gossip};

/// A peer that claims more work than any chain and answers with no headers used to be
/// picked as the sync peer again and again (about 1,000 requests a second), while an
/// honest peer's chain never arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_claiming_work_it_cannot_show_does_not_stop_the_sync() {
    let a = node(&[]).await;
    let memory = Memory::watch();
    let target = a.net.info().listen_addrs[0].clone();
    let liar = Adversary::start(&target, Script::Liar);
    wait_for("the node to ask the liar for headers", 20, || {
        liar.count(|r| matches!(r, SyncRequest::GetHeaders { .. })) > 0
    })
    .await;

    // An honest peer with 30 blocks joins.
    let mut builder = ChainBuilder::regtest();
    for _ in 0..30 {
        builder.extend(vec![]).unwrap();
    }
    let honest = node(&[]).await;
    honest
        .chain
        .write(|c| c.process_blocks(builder.blocks[1..].to_vec(), now_ms()))
        .unwrap();
    a.net.dial(&honest.net.info().listen_addrs[0]).unwrap();
    wait_for("the node to sync from the honest peer", 30, || {
        a.chain.view().tip() == honest.chain.view().tip()
    })
    .await;
    let asked = liar.count(|r| matches!(r, SyncRequest::GetHeaders { .. }));
    assert!(
        asked <= 5,
        "the liar was asked for headers {asked} times: it should be left alone"
    );
    assert!(
        a.net.info().rejected.contains_key("sync_work_not_shown"),
        "the liar's fault is counted: {:?}",
        a.net.info().rejected
    );
    memory.assert_bounded("the liar's attack");
}

/// A peer that answers a request for blocks with only some of them: the node asks again
/// for the rest, instead of ending the round and waiting for the next status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_left_out_of_an_answer_are_asked_for_again() {
    let served = served_node(40).await;
    let a = node(&[]).await;
    let memory = Memory::watch();
    let partial = Adversary::start(
        &a.net.info().listen_addrs[0],
        Script::FirstBlockOnly(served.chain.view().store().clone()),
    );
    // One block per answer, 40 answers: a round trip each, well within the bound. The
    // node that ended its round after each partial answer waited for a status round
    // (10 s) per block.
    wait_for("the node to have all 40 blocks", 30, || {
        a.chain.view().tip() == served.chain.view().tip()
    })
    .await;
    // The round goes on after a partial answer: no new headers are asked for between.
    let headers = partial.count(|r| matches!(r, SyncRequest::GetHeaders { .. }));
    assert!(
        headers <= 2,
        "{headers} GetHeaders: the round restarted after partial answers"
    );
    let requests = partial.block_requests();
    // Each request starts where the answer before it stopped.
    for pair in requests.windows(2) {
        assert_eq!(
            pair[1].first(),
            pair[0].get(1),
            "the next request starts with the first block left out"
        );
    }
    assert!(a.net.info().banned == 0, "a partial answer is no fault");
    memory.assert_bounded("partial answers");
}

/// A host that comes back under a fresh peer id after each ban: the second id banned
/// from one address bans the address, and its next connection is refused before the
/// handshake. A peer connected before keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_rotates_its_peer_id_is_refused_by_address() {
    let served = served_node(3).await;
    let a = node(&[]).await;
    let memory = Memory::watch();
    // An honest peer, connected first.
    let honest = node(&[&a]).await;
    wait_for("the honest peer to connect", 20, || {
        a.net.info().peers.len() == 1
    })
    .await;
    let target = a.net.info().listen_addrs[0].clone();
    let store = served.chain.view().store().clone();
    for n in 1..=2 {
        let liar = Adversary::start(&target, Script::Unchained(store.clone()));
        wait_for("the ban", 20, || a.net.info().banned == n).await;
        assert!(liar.count(|r| matches!(r, SyncRequest::GetHeaders { .. })) > 0);
    }
    assert_eq!(a.net.info().rejected.get("unchained_headers"), Some(&2));
    // A third peer id from the same address never gets as far as a Status request.
    let third = Adversary::start(&target, Script::Unchained(store.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        third.count(|r| matches!(r, SyncRequest::Status)),
        0,
        "the third peer id was let in"
    );
    assert_eq!(a.net.info().banned, 2);
    let peers = a.net.info().peers;
    assert_eq!(peers.len(), 1, "only the honest peer: {peers:?}");
    assert_eq!(peers[0].peer_id, honest.net.info().peer_id);
    // And the node still syncs from it.
    let mut builder = ChainBuilder::regtest();
    builder.miner = oxchain_primitives::Address([0x55; 20]);
    for _ in 0..5 {
        builder.extend(vec![]).unwrap();
    }
    honest
        .chain
        .write(|c| c.process_blocks(builder.blocks[1..].to_vec(), now_ms()))
        .unwrap();
    a.net.refresh();
    wait_for("the node to sync from the honest peer", 30, || {
        a.chain.view().tip() == honest.chain.view().tip()
    })
    .await;
    memory.assert_bounded("the rotating peer id");
}

/// Two peers on the best chain: the node downloads blocks from both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_download_from_two_peers_at_once() {
    let served = node(&[]).await;
    let a = node(&[]).await;
    let target = a.net.info().listen_addrs[0].clone();
    let store = served.chain.view().store().clone();
    let first = Adversary::start(&target, Script::Serve(store.clone()));
    let second = Adversary::start(&target, Script::Serve(store.clone()));
    wait_for("both peers to be asked their status", 20, || {
        [&first, &second]
            .iter()
            .all(|p| p.count(|r| matches!(r, SyncRequest::Status)) > 0)
    })
    .await;
    // Both now hold 2,000 blocks (32 requests of 64): enough that the second peer, if
    // its status comes a little later, still joins the download.
    const BLOCKS: usize = 2_000;
    let mut builder = ChainBuilder::regtest();
    for _ in 0..BLOCKS {
        builder.extend(vec![]).unwrap();
    }
    served
        .chain
        .write(|c| c.process_blocks(builder.blocks[1..].to_vec(), now_ms()))
        .unwrap();
    a.net.refresh();
    wait_for("the node to have all 2,000 blocks", 60, || {
        a.chain.view().tip() == served.chain.view().tip()
    })
    .await;
    let (x, y) = (first.block_requests(), second.block_requests());
    assert!(
        !x.is_empty() && !y.is_empty(),
        "both peers served blocks: {} and {} requests",
        x.len(),
        y.len()
    );
    // Every block was asked for; one asked twice is a slow request given to the other
    // peer, which a busy machine may well cause.
    let asked: std::collections::BTreeSet<_> = x.iter().chain(&y).flatten().collect();
    assert_eq!(asked.len(), BLOCKS, "every block asked for");
    assert_eq!(a.net.info().banned, 0);
}

/// A peer that answers a request for blocks with a block that was not asked for is
/// banned, and the sync goes on from an honest peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_answering_with_blocks_not_asked_for_is_banned() {
    let served = served_node(70).await;
    let a = node(&[]).await;
    let memory = Memory::watch();
    // Its answer to the first request (blocks 1 to 64) is block 70.
    let liar = Adversary::start(
        &a.net.info().listen_addrs[0],
        Script::Unrequested(served.chain.view().store().clone()),
    );
    wait_for("the ban", 20, || a.net.info().banned == 1).await;
    assert_eq!(liar.block_requests().len(), 1);
    assert_eq!(a.net.info().rejected.get("unrequested_blocks"), Some(&1));
    assert_eq!(a.chain.view().tip().height.0, 0, "nothing was imported");
    a.net.dial(&served.net.info().listen_addrs[0]).unwrap();
    wait_for("the node to sync from the honest peer", 30, || {
        a.chain.view().tip() == served.chain.view().tip()
    })
    .await;
    memory.assert_bounded("the unrequested blocks");
}

/// A peer that takes a request for headers and never answers: after 10 s it is struck
/// and the sync moves to an honest peer, well before the transport's 30 s timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stalls_is_passed_over_before_the_transport_times_out() {
    let served = served_node(30).await;
    let a = node(&[]).await;
    let memory = Memory::watch();
    let staller = Adversary::start(
        &a.net.info().listen_addrs[0],
        Script::Stall(served.chain.view().store().clone()),
    );
    wait_for("the node to ask the staller for headers", 20, || {
        staller.count(|r| matches!(r, SyncRequest::GetHeaders { .. })) > 0
    })
    .await;
    let started = std::time::Instant::now();
    a.net.dial(&served.net.info().listen_addrs[0]).unwrap();
    wait_for("the node to sync from the honest peer", 25, || {
        a.chain.view().tip() == served.chain.view().tip()
    })
    .await;
    assert!(
        a.net.info().rejected.contains_key("sync_stalled"),
        "{:?}",
        a.net.info().rejected
    );
    eprintln!(
        "synced {:?} after the honest peer joined",
        started.elapsed()
    );
    memory.assert_bounded("the stall");
}

/// A peer that gossips orphans that never connect: it holds at most 8 places in the
/// orphan pool, and after 20 s without a sync round its orphans are dropped and it is
/// struck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_that_never_connect_are_capped_per_peer_and_cost_their_sender() {
    let a = node(&[]).await;
    let memory = Memory::watch();
    let mut builder = ChainBuilder::regtest();
    for _ in 0..13 {
        builder.extend(vec![]).unwrap();
    }
    // Blocks 2 to 13 of a chain whose block 1 never comes: twelve orphans.
    let orphans: Vec<Vec<u8>> = builder.blocks[2..]
        .iter()
        .map(|b| CompactBlock::full(b).to_bytes())
        .collect();
    let target = a.net.info().listen_addrs[0].clone();
    let genesis = ChainParams::regtest().genesis_hash().to_string();
    let topic = IdentTopic::new(format!("/oxchain/regtest/{}/blocks", &genesis[..16]));
    let sender = tokio::spawn(async move {
        gossip(
            &target,
            topic,
            orphans,
            Duration::from_secs(40),
            Envelope::Anonymous,
        )
        .await
    });
    wait_for("the orphans to arrive", 20, || {
        a.chain.write(|c| c.orphans().len()) >= 8
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = a.chain.write(|c| c.orphans().len());
    assert_eq!(held, 8, "one peer's share of the pool");
    wait_for("the sender to be struck", 40, || {
        a.net
            .info()
            .rejected
            .contains_key("orphans_never_connected")
    })
    .await;
    wait_for("its orphans to be dropped", 10, || {
        a.chain.write(|c| c.orphans().is_empty())
    })
    .await;
    sender.abort();
    // An honest peer's chain still arrives.
    let served = served_node(5).await;
    a.net.dial(&served.net.info().listen_addrs[0]).unwrap();
    wait_for("the node to sync from an honest peer", 30, || {
        a.chain.view().tip() == served.chain.view().tip()
    })
    .await;
    memory.assert_bounded("the orphan flood");
}
