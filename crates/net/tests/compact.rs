//! Compact block relay against real nodes (regtest, 127.0.0.1): a block whose transfers
//! sit in the receiver's mempool is rebuilt without fetching any; missing transfers are
//! fetched, and only those; a short id that names another transfer falls back to the full
//! block; a compact block with a bad proof of work or a bad merkle root gets its sender
//! banned; a sender that does not answer does not stall the receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Memory, Node, node, now_ms, wait_for};
use libp2p::gossipsub::IdentTopic;
use oxchain_consensus::ChainParams;
use oxchain_consensus::validate::validate_pow;
use oxchain_net::compact::CompactBlock;
use oxchain_net::message::SyncRequest;
use oxchain_primitives::{Block, Transaction, Transfer, Txid};
use oxchain_testkit::adversary::{Adversary, Script};
use oxchain_testkit::{ChainBuilder, dev_transfers};

fn blocks_topic() -> IdentTopic {
    let genesis = ChainParams::regtest().genesis_hash().to_string();
    IdentTopic::new(format!("/oxchain/regtest/{}/blocks", &genesis[..16]))
}

/// `n` transfers from the dev account `from`, nonces from 0.
fn transfers(from: &str, n: u64) -> Vec<Transfer> {
    dev_transfers(&ChainParams::regtest().genesis_hash(), from, "eve", n)
}

fn txid(t: &Transfer) -> Txid {
    Transaction::Transfer(t.clone()).compute_txid()
}

/// Block 1 of regtest, carrying `transfers`.
fn block_1(transfers: Vec<Transfer>) -> Block {
    ChainBuilder::regtest().build_block(transfers)
}

/// Submits `transfers` at `to` and waits until `at` holds them all (gossip between them).
async fn in_mempools(to: &Node, at: &Node, transfers: &[Transfer]) {
    for t in transfers {
        to.chain.view().submit_transfer(t.clone()).unwrap();
    }
    wait_for("the transfers in the receiver's mempool", 20, || {
        let pool = at.chain.view().mempool();
        transfers.iter().all(|t| pool.contains(&txid(t)))
    })
    .await;
}

/// Two connected nodes, A dialled by B, with gossip meshes formed.
async fn pair() -> (Node, Node) {
    let a = node(&[]).await;
    let b = node(&[&a]).await;
    wait_for("the two nodes to connect", 20, || {
        a.net.info().peers.len() == 1 && b.net.info().peers.len() == 1
    })
    .await;
    // Subscriptions and the mesh settle within a few heartbeats.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    (a, b)
}

fn relayed(node: &Node, how: &str) -> u64 {
    node.net.info().relay.get(how).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_transfers_are_all_in_the_mempool_is_rebuilt_without_fetching() {
    let (a, b) = pair().await;
    let sent = transfers("alice", 4);
    in_mempools(&a, &b, &sent).await;
    // Checked on mempool entry, so the block's connection skips their signatures.
    assert!(
        sent.iter()
            .all(|t| b.chain.view().verified_signatures().contains(&txid(t)))
    );
    let block = block_1(sent);
    a.chain
        .write(|c| c.process_block(block.clone(), now_ms()))
        .unwrap();
    // The rebuild is counted just after the tip moves: wait for both.
    wait_for("the block at B, rebuilt from its mempool", 20, || {
        b.chain.view().tip().hash == block.compute_hash() && relayed(&b, "mempool") == 1
    })
    .await;
    let relay = b.net.info().relay;
    assert_eq!(relay.get("mempool"), Some(&1), "{relay:?}");
    assert_eq!(relayed(&b, "fetched") + relayed(&b, "full_block"), 0);
    assert_eq!(relayed(&b, "fetched_transfers"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_transfers_are_fetched_and_only_those() {
    let (a, b) = pair().await;
    let gossiped = transfers("alice", 4);
    in_mempools(&a, &b, &gossiped).await;
    // Two transfers nobody has seen: only A's block carries them.
    let unseen = transfers("bob", 2);
    let block = block_1(gossiped.into_iter().chain(unseen).collect());
    a.chain
        .write(|c| c.process_block(block.clone(), now_ms()))
        .unwrap();
    // The rebuild is counted just after the tip moves: wait for both.
    wait_for(
        "the block at B, its 2 missing transfers fetched",
        20,
        || {
            b.chain.view().tip().hash == block.compute_hash()
                && relayed(&b, "fetched") == 1
                && relayed(&b, "fetched_transfers") == 2
        },
    )
    .await;
    let relay = b.net.info().relay;
    assert_eq!(relay.get("fetched"), Some(&1), "{relay:?}");
    assert_eq!(relay.get("fetched_transfers"), Some(&2), "{relay:?}");
    assert_eq!(relayed(&b, "full_block"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_id_that_names_another_transfer_falls_back_to_the_full_block() {
    let b = node(&[]).await;
    let sent = transfers("alice", 4);
    // In B's mempool beside the block's transfers, not in the block.
    let other = transfers("bob", 1);
    for t in sent.iter().chain(&other) {
        b.chain.view().submit_transfer(t.clone()).unwrap();
    }
    let block = block_1(sent);
    // The sender gives the block when asked, and claims no chain (so that no sync
    // brings the block instead).
    let empty = node(&[]).await;
    // A collision, forced: the last short id is the other transfer's, so the rebuild
    // takes it in the last transfer's place and the merkle root shows it.
    let mut compact = CompactBlock::new(&block, 42);
    let last = compact.short_ids.len() - 1;
    compact.short_ids[last] = compact.short_id(&txid(&other[0]));
    let peer = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Give(empty.chain.view().store().clone(), vec![block.clone()]),
        blocks_topic(),
        vec![compact.to_bytes()],
    );
    // The fallback is counted just after the tip moves: wait for both.
    wait_for("the block at B, as a full block", 20, || {
        b.chain.view().tip().hash == block.compute_hash() && relayed(&b, "full_block") == 1
    })
    .await;
    assert_eq!(peer.block_requests(), vec![vec![block.compute_hash()]]);
    assert_eq!(relayed(&b, "full_block"), 1);
    assert_eq!(relayed(&b, "mempool") + relayed(&b, "fetched"), 0);
    // A collision is nobody's fault.
    let info = b.net.info();
    assert_eq!((info.banned, info.rejected.len()), (0, 0), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_with_a_bad_proof_of_work_or_merkle_root_gets_its_sender_banned() {
    let params = ChainParams::regtest();
    let b = node(&[]).await;
    let memory = Memory::watch();
    let sent = transfers("alice", 4);
    for t in &sent {
        b.chain.view().submit_transfer(t.clone()).unwrap();
    }
    let empty = node(&[]).await;
    let store = empty.chain.view().store().clone();

    // A proof of work that misses its target: refused on the header, before any rebuild.
    let mut bad_pow = block_1(sent.clone());
    while validate_pow(&params, &bad_pow.header).is_ok() {
        bad_pow.header.nonce += 1;
    }
    let first = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Serve(store.clone()),
        blocks_topic(),
        vec![CompactBlock::new(&bad_pow, 1).to_bytes()],
    );
    wait_for("the bad proof of work's sender banned", 20, || {
        b.net.info().banned == 1
    })
    .await;
    assert_eq!(first.block_requests().len(), 0, "nothing was asked of it");

    // A valid proof of work over a merkle root that is not the transfers': every
    // transfer is in B's mempool, the root does not match, the full block is asked for,
    // and the one the sender gives is its fault.
    let mut bad_root = block_1(sent);
    bad_root.header.merkle_root.0[0] ^= 1;
    oxchain_testkit::mine(&params, &mut bad_root.header);
    let second = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Give(store, vec![bad_root.clone()]),
        blocks_topic(),
        vec![CompactBlock::new(&bad_root, 2).to_bytes()],
    );
    wait_for("the bad merkle root's sender banned", 20, || {
        b.net.info().banned == 2
    })
    .await;
    assert_eq!(second.block_requests(), vec![vec![bad_root.compute_hash()]]);
    assert_eq!(b.net.info().rejected.get("invalid_gossip"), Some(&2));
    assert_eq!(b.chain.view().tip().height.0, 0);
    memory.assert_bounded("the bad compact blocks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_does_not_answer_does_not_stall_the_receiver() {
    let b = node(&[]).await;
    let gossiped = transfers("alice", 4);
    for t in &gossiped {
        b.chain.view().submit_transfer(t.clone()).unwrap();
    }
    let block = block_1(gossiped.into_iter().chain(transfers("bob", 1)).collect());
    // An honest node holds the block; B does not know it yet.
    let honest = node(&[]).await;
    honest
        .chain
        .write(|c| c.process_block(block.clone(), now_ms()))
        .unwrap();
    // The sender claims nothing (an empty chain) and never answers.
    let empty = node(&[]).await;
    let staller = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Stall(empty.chain.view().store().clone()),
        blocks_topic(),
        vec![CompactBlock::new(&block, 3).to_bytes()],
    );
    wait_for("B to ask the sender for the missing transfer", 20, || {
        staller.count(|r| matches!(r, SyncRequest::GetBlockTxs { .. })) == 1
    })
    .await;
    b.net.dial(&honest.net.info().listen_addrs[0]).unwrap();
    wait_for("the block at B, from the honest node", 30, || {
        b.chain.view().tip().hash == block.compute_hash()
    })
    .await;
    wait_for("the silent sender struck", 20, || {
        b.net.info().rejected.contains_key("compact_not_served")
    })
    .await;
}
