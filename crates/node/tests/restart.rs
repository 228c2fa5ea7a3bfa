//! A node stopped and started again on the same data directory keeps its pending
//! transfers (`mempool.dat`); a damaged `mempool.dat` is set aside and the node starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::TestNode;
use oxchain_miner::MiningMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_transfers_survive_a_restart() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let mut txids = Vec::new();
    // Two from alice (nonces 0 and 1) and one from bob.
    for (from, to, amount) in [
        ("alice", "bob", 1.5),
        ("alice", "eve", 2.0),
        ("bob", "dave", 3.0),
    ] {
        let body = serde_json::json!({"sender": from, "recipient": to, "amount": amount});
        let (status, answer) = node.post_json("/transactions/new", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let (_, mempool) = node.get("/v1/mempool").await;
    for tx in mempool["transactions"].as_array().unwrap() {
        txids.push(tx["txid"].as_str().unwrap().to_string());
    }
    assert_eq!(txids.len(), 3);
    let (dir, stopped) = node.stop_keeping_dir().await;
    assert_eq!(stopped.unwrap().mempool_saved, 3);
    assert!(dir.path().join("mempool.dat").exists());

    let node = TestNode::start_in(dir, MiningMode::OnDemand).await;
    assert_eq!(node.started.mempool.accepted, 3);
    assert_eq!(node.started.mempool_error, None);
    for txid in &txids {
        let (status, tx) = node.get(&format!("/v1/transactions/{txid}")).await;
        assert_eq!(status, StatusCode::OK, "{txid}: {tx}");
    }
    // They are gossiped as if just arrived: a peer that joins later receives them.
    let peer = TestNode::start(MiningMode::OnDemand).await;
    let (status, body) = peer
        .post_json(
            "/v1/peers",
            &serde_json::json!({"address": format!("http://{}", node.addr)}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while peer.state().await.1 < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restored transfers did not reach the peer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    peer.stop().await;
    // They are minable: one block takes all three.
    let (status, mined) = node
        .post_json("/v1/mine", &serde_json::json!({"count": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{mined}");
    let (_, s) = node.get("/v1/status").await;
    assert_eq!(s["mempool"], 0);
    let (_, block) = node.get("/v1/blocks/1").await;
    assert_eq!(block["transactions"].as_array().unwrap().len(), 4);
    // Read back once: the file is gone until the next stop.
    assert!(!node.dir.path().join("mempool.dat").exists());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_mempool_file_is_set_aside_and_the_node_starts() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let (mut dir, _) = node.stop_keeping_dir().await;
    // Not a mempool file; a count of 5 and a truncated length.
    for garbage in [&b"not a mempool"[..], b"oxmpool1\x05\x00\x00\x00\x10"] {
        std::fs::write(dir.path().join("mempool.dat"), garbage).unwrap();
        let node = TestNode::start_in(dir, MiningMode::OnDemand).await;
        let error = node.started.mempool_error.clone().expect("an error");
        assert!(error.contains("damaged"), "{error}");
        let bad = node.dir.path().join("mempool.dat.bad");
        assert_eq!(std::fs::read(&bad).unwrap(), garbage);
        std::fs::remove_file(bad).unwrap();
        assert_eq!(node.state().await, (0, 0));
        (dir, _) = node.stop_keeping_dir().await;
    }
}
