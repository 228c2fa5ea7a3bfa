//! Real nodes on 127.0.0.1 talking libp2p (regtest): relay along a line of three nodes,
//! a new node catching up with a long chain, a restarted node finding its peers, and a
//! transfer taken before any peer reaching the first one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Node, node, node_without_discovery, now_ms, wait_for};

use std::time::{Duration, Instant};

use libp2p::gossipsub::IdentTopic;
use oxchain_chain::BlockOutcome;
use oxchain_consensus::ChainParams;
use oxchain_net::message::SyncRequest;
use oxchain_primitives::{Address, Transaction, Transfer};
use oxchain_testkit::adversary::{Adversary, Envelope, Script, gossip};
use oxchain_testkit::{
    ChainBuilder, dev_account_address, dev_account_key, dev_transfers, mine, signed_transfer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_and_a_block_cross_a_line_of_three_nodes() {
    // Discovery off: with it, C would find A through B, and the line would close.
    let a = node_without_discovery(&[]).await;
    let b = node_without_discovery(&[&a]).await;
    let c = node_without_discovery(&[&b]).await;
    wait_for("the line to connect", 20, || {
        a.net.info().peers.len() == 1
            && b.net.info().peers.len() == 2
            && c.net.info().peers.len() == 1
    })
    .await;
    // Let gossipsub build its mesh (a heartbeat or two).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let genesis = ChainParams::regtest().genesis_hash();
    let transfer = signed_transfer(
        &genesis,
        &dev_account_key("alice"),
        dev_account_address("bob"),
        1_000,
        1_000,
        0,
    );
    let txid = a.chain.view().submit_transfer(transfer).unwrap();
    wait_for("the transfer to reach C's mempool", 20, || {
        c.chain.view().mempool().contains(&txid)
    })
    .await;

    let block = {
        let mut block = c
            .chain
            .write(|chain| chain.block_template(Address([0xcc; 20]), now_ms()))
            .unwrap();
        mine(c.chain.view().params(), &mut block.header);
        block
    };
    assert!(
        block
            .transactions
            .iter()
            .any(|t| matches!(t, Transaction::Transfer(_)))
    );
    let hash = block.compute_hash();
    let outcome = c.chain.write(|c| c.process_block(block, now_ms())).unwrap();
    assert!(matches!(outcome, BlockOutcome::Extended { .. }));
    // The tip is published before the mempool drops the block's transfers: wait for both.
    wait_for(
        "the block to reach A and its transfer to leave A's mempool",
        20,
        || a.chain.view().tip().hash == hash && a.chain.view().mempool().is_empty(),
    )
    .await;
    assert!(
        a.chain.view().mempool().is_empty(),
        "A dropped the mined transfer"
    );
    // A shows B at the new height from the gossiped block, before the next status
    // round (every 10 s); 8 s leaves room for a busy machine and stays under it.
    wait_for("B's height at A", 8, || {
        a.net.info().peers.iter().any(|p| p.height == Some(1))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_catches_up_with_2000_blocks() {
    let a = node(&[]).await;
    let mut builder = ChainBuilder::regtest();
    for i in 0..2_000u64 {
        let transfers = if i % 10 == 0 {
            let nonce = builder.account(&dev_account_address("bob")).nonce;
            vec![signed_transfer(
                &builder.genesis_hash(),
                &dev_account_key("bob"),
                Address([7; 20]),
                500,
                1_000,
                nonce,
            )]
        } else {
            vec![]
        };
        builder.extend(transfers).unwrap();
    }
    for chunk in builder.blocks[1..].chunks(256) {
        a.chain
            .write(|c| c.process_blocks(chunk.to_vec(), now_ms()))
            .unwrap();
    }
    assert_eq!(a.chain.view().tip().height.0, 2_000);

    let started = Instant::now();
    let b = node(&[&a]).await;
    wait_for("B to reach A's tip", 60, || {
        b.chain.view().tip() == a.chain.view().tip()
    })
    .await;
    eprintln!("2,000 blocks synced in {:?}", started.elapsed());
    let digest = |n: &Node| n.chain.view().store().compute_state_digest().unwrap();
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(digest(&b), builder.state.compute_digest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_dials_the_peers_it_knew() {
    let a = node(&[]).await;
    let b = node(&[&a]).await;
    wait_for("b to connect", 20, || a.net.info().peers.len() == 1).await;
    // identify runs right after the connection; give it a moment to be remembered.
    wait_for("b to remember a", 20, || {
        b._dir.path().join("peers.txt").exists()
    })
    .await;
    let b_id = b.net.info().peer_id.clone();
    let dir = {
        let Node { chain, net, _dir } = b;
        drop(net);
        drop(chain);
        _dir
    };
    wait_for("a to see b go", 20, || a.net.info().peers.is_empty()).await;
    // Same data dir, no peers given.
    let params = ChainParams::regtest();
    let store = oxchain_storage::Store::open(dir.path(), &params).unwrap();
    let chain = oxchain_chain::SharedChain::new(
        oxchain_chain::Chain::new(params, store, oxchain_chain::MempoolLimits::default(), 1)
            .unwrap(),
    );
    let net = oxchain_net::service::start(
        oxchain_net::NetConfig::new(dir.path().to_path_buf(), "127.0.0.1:0"),
        chain,
    )
    .await
    .unwrap();
    assert_eq!(net.info().peer_id, b_id, "the node key persists");
    wait_for("b to dial a again", 20, || {
        a.net.info().peers.len() == 1 && net.info().peers.len() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_taken_before_any_peer_reaches_the_first_peer() {
    let params = ChainParams::regtest();
    let a = node(&[]).await;
    // Nobody to gossip to yet: the transfer is held until a peer subscribes.
    let t = signed_transfer(
        &params.genesis_hash(),
        &dev_account_key("charlie"),
        dev_account_address("dave"),
        1_000,
        1_000,
        0,
    );
    let txid = a.chain.view().submit_transfer(t).unwrap();
    let b = node(&[&a]).await;
    wait_for("the held transfer at B", 20, || {
        b.chain.view().mempool().contains(&txid)
    })
    .await;
}

/// A block's worth of transfers gossiped in one burst all reach the mempool. A node used
/// to check at most 64 gossiped transfers at once and ignore the rest; gossipsub
/// remembers an ignored message as seen and never takes it again, so the sender's later
/// nonces waited for the ignored ones for ever (at 100 nodes a fill of 852 transfers
/// stalled at 65 nodes of 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_gossiped_transfers_all_reach_the_mempool() {
    const BURST: u64 = 600;
    let params = ChainParams::regtest();
    let a = node(&[]).await;
    let target = a.net.info().listen_addrs[0].clone();
    let genesis = params.genesis_hash();
    let transfers = dev_transfers(&genesis, "alice", "bob", BURST);
    let txids: Vec<_> = transfers
        .iter()
        .map(|t| Transaction::Transfer(t.clone()).compute_txid())
        .collect();
    let messages = transfers
        .into_iter()
        .map(|t| oxchain_primitives::encode(&Transaction::Transfer(t)))
        .collect();
    let topic = transfers_topic();
    let sender = tokio::spawn(async move {
        gossip(
            &target,
            topic,
            messages,
            Duration::from_secs(60),
            Envelope::Anonymous,
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = 0;
    while Instant::now() < deadline {
        held = {
            let pool = a.chain.view().mempool();
            txids.iter().filter(|t| pool.contains(t)).count()
        };
        if held == txids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A sender that failed (the node never subscribed it) is that failure, not a short
    // mempool.
    if sender.is_finished() {
        sender.await.expect("the gossip peer");
    } else {
        sender.abort();
    }
    assert_eq!(held, txids.len(), "transfers of the burst in the mempool");
    assert_eq!(a.net.info().banned, 0);
}

/// A and C connected, alice's transfers of nonces 0 to 2 pending at both, and then B
/// connected to A: gossip does not replay what spread before it, so B holds none of them.
/// Returns the nodes and alice's next transfer (nonce 3), not yet submitted.
async fn late_joiner() -> (Node, Node, Node, Transfer) {
    let a = node_without_discovery(&[]).await;
    let c = node_without_discovery(&[&a]).await;
    wait_for("A and C to connect", 20, || a.net.info().peers.len() == 1).await;
    // Let gossipsub build its mesh (a heartbeat or two).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let genesis = ChainParams::regtest().genesis_hash();
    let mut transfers = dev_transfers(&genesis, "alice", "bob", 4);
    let fourth = transfers.pop().unwrap();
    for transfer in transfers {
        a.chain.view().submit_transfer(transfer).unwrap();
    }
    wait_for("C to hold the first three", 20, || {
        c.chain.view().mempool().len() == 3
    })
    .await;
    let b = node_without_discovery(&[&a]).await;
    wait_for("B to connect to A", 20, || b.net.info().peers.len() == 1).await;
    (a, b, c, fourth)
}

/// A node that joins after a sender's transfers have spread holds none of them, and the
/// sender's next transfer reaches it by gossip with a nonce gap. The node asks the peer
/// that sent it for the transfers before it (`GetPending`) and ends up holding all of
/// them; before, the gapped transfer waited for them until a block carried them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_after_a_nonce_gap_brings_the_ones_before_it() {
    let (a, b, _c, fourth) = late_joiner().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        b.chain.view().mempool().len(),
        0,
        "B was given the first three"
    );

    a.chain.view().submit_transfer(fourth).unwrap();
    wait_for("B to hold all four transfers", 20, || {
        b.chain.view().mempool().len() == 4
    })
    .await;
    let relay = b.net.info().relay;
    assert_eq!(relay.get("pending_asked"), Some(&1), "{relay:?}");
    assert_eq!(relay.get("pending_fetched"), Some(&3), "{relay:?}");
    assert_eq!(b.net.info().banned, 0);
}

/// The transfers topic of regtest.
fn transfers_topic() -> IdentTopic {
    let genesis = ChainParams::regtest().genesis_hash().to_string();
    IdentTopic::new(format!("/oxchain/regtest/{}/transfers", &genesis[..16]))
}

/// A peer gossips alice's transfer of nonce 2 to a fresh node, which asks it for nonces
/// 0 and 1 (`GetPending`), and answers with `answer`. Returns the node once it has
/// judged the answer (the peer struck or banned for `reason`).
async fn answer_a_gap_with(answer: Vec<Transaction>, reason: &str) -> Node {
    let b = node(&[]).await;
    let genesis = ChainParams::regtest().genesis_hash();
    let gapped = dev_transfers(&genesis, "alice", "bob", 3).remove(2);
    let peer = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Pending(b.chain.view().store().clone(), answer),
        transfers_topic(),
        vec![oxchain_primitives::encode(&Transaction::Transfer(gapped))],
    );
    wait_for(&format!("the node to count {reason}"), 20, || {
        b.net.info().rejected.contains_key(reason)
    })
    .await;
    assert_eq!(
        peer.count(|r| matches!(
            r,
            SyncRequest::GetPending {
                from: 0,
                count: 2,
                ..
            }
        )),
        1
    );
    assert!(b.chain.view().mempool().is_empty());
    b
}

/// Transfers that are not the ones asked for (another sender's, or the right sender's
/// with the wrong nonces) earn the peer a strike: it could have seen that itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_a_gap_with_other_transfers_earns_a_strike() {
    let genesis = ChainParams::regtest().genesis_hash();
    let bobs = dev_transfers(&genesis, "bob", "carol", 2)
        .into_iter()
        .map(Transaction::Transfer)
        .collect();
    let b = answer_a_gap_with(bobs, "pending_not_asked").await;
    assert_eq!(b.net.info().banned, 0, "a strike, not a ban");
}

/// A transfer with a bad signature in the answer gets the peer banned: it came from the
/// peer's mempool, where the peer checked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_a_gap_with_a_forged_transfer_gets_its_sender_banned() {
    let genesis = ChainParams::regtest().genesis_hash();
    let mut first = dev_transfers(&genesis, "alice", "bob", 1).remove(0);
    first.amount = oxchain_primitives::Amount::from_units(first.amount.units() + 1);
    let b = answer_a_gap_with(vec![Transaction::Transfer(first)], "invalid_pending").await;
    wait_for("the peer to be banned", 20, || b.net.info().banned == 1).await;
}

/// Gossip over two paths often brings a sender's transfers out of order: a gap that
/// closes within the grace (2 s) asks nobody for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_that_gossip_closes_at_once_asks_nobody() {
    let b = node(&[]).await;
    let genesis = ChainParams::regtest().genesis_hash();
    let mut transfers = dev_transfers(&genesis, "alice", "bob", 2);
    transfers.reverse();
    let peer = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Serve(b.chain.view().store().clone()),
        transfers_topic(),
        transfers
            .into_iter()
            .map(|t| oxchain_primitives::encode(&Transaction::Transfer(t)))
            .collect(),
    );
    wait_for("both transfers pending", 20, || {
        b.chain.view().mempool().len() == 2
    })
    .await;
    // Past the grace and the next check after it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        peer.count(|r| matches!(r, SyncRequest::GetPending { .. })),
        0
    );
    assert_eq!(b.net.info().relay.get("pending_asked"), None);
}

/// A forged transfer ahead of its sender's nonce is not held and asks nothing: its
/// signature is checked first, and its sender banned. Held unchecked, it could take an
/// honest transfer's place and send the node asking its sender's peers at will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_transfer_with_a_nonce_gap_gets_its_sender_banned_and_asks_nothing() {
    let b = node(&[]).await;
    let genesis = ChainParams::regtest().genesis_hash();
    let mut forged = dev_transfers(&genesis, "alice", "bob", 3).remove(2);
    forged.fee = oxchain_primitives::Amount::from_units(forged.fee.units() + 1);
    let peer = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Serve(b.chain.view().store().clone()),
        transfers_topic(),
        vec![oxchain_primitives::encode(&Transaction::Transfer(forged))],
    );
    wait_for("the forger to be banned", 20, || b.net.info().banned == 1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        peer.count(|r| matches!(r, SyncRequest::GetPending { .. })),
        0
    );
    assert_eq!(b.net.info().rejected.get("invalid_gossip"), Some(&1));
}

/// Transfers a node asked a peer for are not published again: the peers that lack them
/// ask in turn (protocol.md, "Gossip"). A peer of the late joiner's hears nothing of the
/// sender's transfers from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_asked_for_are_not_published_again() {
    let (a, b, _c, fourth) = late_joiner().await;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let target = b.net.info().listen_addrs[0].clone();
    let listener = tokio::spawn(async move {
        oxchain_testkit::adversary::listen_for(
            &target,
            transfers_topic(),
            1,
            Duration::from_secs(12),
            || {
                let _ = ready_tx.send(());
            },
        )
        .await
    });
    ready_rx.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.chain.view().submit_transfer(fourth).unwrap();
    wait_for("B to hold all four transfers", 20, || {
        b.chain.view().mempool().len() == 4
    })
    .await;
    let heard = listener.await.unwrap();
    assert!(heard.is_empty(), "B published {} transfers", heard.len());
}

/// A peer that never answers holds at most 4 of the node's 64 asks: six senders' gaps
/// from one silent peer ask it four times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_gets_at_most_four_asks() {
    let b = node(&[]).await;
    let genesis = ChainParams::regtest().genesis_hash();
    let gapped = (0..6).map(|i| {
        let key = dev_account_key(&format!("silent {i}"));
        let transfer = signed_transfer(&genesis, &key, dev_account_address("bob"), 1_000, 1_000, 2);
        oxchain_primitives::encode(&Transaction::Transfer(transfer))
    });
    let peer = Adversary::relay(
        &b.net.info().listen_addrs[0],
        Script::Stall(b.chain.view().store().clone()),
        transfers_topic(),
        gapped.collect(),
    );
    wait_for("four asks", 20, || {
        peer.count(|r| matches!(r, SyncRequest::GetPending { .. })) == 4
    })
    .await;
    // Past another check or two: still four.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        peer.count(|r| matches!(r, SyncRequest::GetPending { .. })),
        4
    );
    assert_eq!(b.net.info().relay.get("pending_asked"), Some(&4));
    assert_eq!(b.net.info().banned, 0);
}
