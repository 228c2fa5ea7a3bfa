//! The tutorials' peering routes between real nodes on 127.0.0.1: `/nodes/register`,
//! `/nodes` with its callback, `/nodes/resolve`, and `/v1/peers`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{TestNode, wait_for};
use oxchain_miner::MiningMode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_resolve_takes_the_longer_chain() {
    let a = TestNode::start(MiningMode::OnDemand).await;
    let b = TestNode::start(MiningMode::OnDemand).await;
    // A mines one block and B three before they meet: A's block loses.
    let (status, mined) = a.post_json("/v1/mine", &json!({"count": 1})).await;
    assert_eq!(status, StatusCode::OK);
    let a_block = mined["blocks"][0]["hash"].as_str().unwrap().to_string();
    let (status, _) = b.post_json("/v1/mine", &json!({"count": 3})).await;
    assert_eq!(status, StatusCode::OK);

    let dead = "http://127.0.0.1:9"; // discard port: nobody listens
    let (status, body) = a
        .post_json(
            "/nodes/register",
            &json!({"nodes": [format!("http://{}", b.addr), dead]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"], "New nodes have been added");
    assert_eq!(body["total_nodes"], json!([format!("http://{}", b.addr)]));
    assert_eq!(body["unreachable"], json!([dead]));
    let (status, body) = a.post_json("/nodes/register", &json!({"nodes": []})).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Error: Please supply a valid list of nodes")
        )
    );

    let (_, resolved) = a.get("/nodes/resolve").await;
    // The sync may already have run on connect: either message is honest, and the chain
    // is B's either way, once A's tip shows it (a sync may still be connecting it).
    wait_for("A's tip to be B's", async || {
        a.get("/v1/status").await.1["tip"] == b.get("/v1/status").await.1["tip"]
    })
    .await;
    let (_, a_status) = a.get("/v1/status").await;
    let (_, b_status) = b.get("/v1/status").await;
    assert_eq!(a_status["tip"], b_status["tip"], "{resolved}");
    assert_eq!(a_status["height"], 3);
    assert!(
        resolved["message"] == "Our chain was replaced"
            || resolved["message"] == "Our chain is authoritative"
    );
    // The fork tree shows A's own block reorged out, and the reorg.
    let (_, forks) = a.get("/v1/forks").await;
    assert_eq!(forks["tip_height"], 3);
    let side = &forks["side_blocks"];
    assert_eq!(side.as_array().unwrap().len(), 1, "{forks}");
    assert_eq!(side[0]["hash"], a_block.as_str());
    assert_eq!(
        (&side[0]["height"], &side[0]["reorged_out"]),
        (&json!(1), &json!(true))
    );
    let reorg = &forks["reorgs"][0];
    assert_eq!(
        (&reorg["fork_height"], &reorg["depth"]),
        (&json!(0), &json!(1)),
        "{forks}"
    );
    assert_eq!(reorg["old_tip"], a_block.as_str());
    // The switch came with the first of B's blocks to outweigh A's (height 2 or 3).
    let new_tip = reorg["new_tip"].as_str().unwrap();
    let (_, switched_to) = a.get(&format!("/v1/blocks/{new_tip}")).await;
    assert_eq!(switched_to["best_chain"], true, "{switched_to}");
    let (_, again) = a.get("/nodes/resolve").await;
    assert_eq!(again["message"], "Our chain is authoritative");
    assert_eq!(again["chain"].as_array().unwrap().len(), 4);
    let (_, peers) = a.get("/v1/peers").await;
    assert_eq!(peers["count"], 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_nodes_peers_both_ways_and_blocks_flow() {
    let a = TestNode::start(MiningMode::OnDemand).await;
    let b = TestNode::start(MiningMode::OnDemand).await;
    let (status, body) = a
        .post_json(
            "/nodes",
            &json!({"host": "127.0.0.1", "port": b.addr.port()}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("Added node")),
        "{body}"
    );
    wait_for("both to see a peer", async || {
        a.get("/v1/peers").await.1["count"] == 1 && b.get("/v1/peers").await.1["count"] == 1
    })
    .await;
    // A transfer sent to B is mined by A.
    let (status, _) = b
        .curl_d(
            "/transaction",
            r#"{"sender": "eve", "receiver": "alice", "amount": 2}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_for("the transfer to reach A", async || {
        a.get("/v1/mempool").await.1["count"] == 1
    })
    .await;
    let (_, mined) = a.get("/mine").await;
    assert_eq!(mined["transactions"].as_array().unwrap().len(), 2);
    // B publishes the tip before its mempool drops the block's transfer: wait for both.
    wait_for(
        "A's block to reach B and its transfer to leave B's mempool",
        async || {
            let status = b.get("/v1/status").await.1;
            status["height"] == 1 && status["mempool"] == 0
        },
    )
    .await;
    let (_, b_status) = b.get("/v1/status").await;
    assert_eq!(b_status["mempool"], 0);
    assert_eq!(b_status["peers"], 1);
    let (status, body) = a
        .post_json("/nodes", &json!({"host": "127.0.0.1", "port": 0}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_port"))
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_peers_adds_a_peer_and_events_say_so() {
    use futures_util::StreamExt;
    let a = TestNode::start(MiningMode::OnDemand).await;
    let b = TestNode::start(MiningMode::OnDemand).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/events", a.addr))
        .await
        .unwrap();
    let (status, body) = a
        .post_json(
            "/v1/peers",
            &json!({"address": format!("http://{}", b.addr)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let event = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let message = ws.next().await.unwrap().unwrap();
            let event: serde_json::Value =
                serde_json::from_str(message.to_text().unwrap()).unwrap();
            if event["type"] == "peer_connected" {
                return event;
            }
        }
    })
    .await
    .expect("a peer_connected event within 20 s");
    let (_, b_node) = b.get("/v1/node").await;
    assert_eq!(event["peer_id"], b_node["peer_id"]);
    let (status, body) = a
        .post_json("/v1/peers", &json!({"address": "not an address"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is not a peer address"),
        "{body}"
    );
    // Of the shape, but no port 99999: refused by the dial, which says how it was read.
    let (status, body) = a
        .post_json("/v1/peers", &json!({"address": "127.0.0.1:99999"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("tried as a p2p address"),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
}

/// `HOST:PORT` means a p2p address in `POST /v1/peers`, as in `--peer`: the node dials
/// it (it used to be taken for an HTTP API address, and failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_peers_takes_host_port_as_a_p2p_address() {
    let a = TestNode::start(MiningMode::OnDemand).await;
    let b = TestNode::start(MiningMode::OnDemand).await;
    let p2p = b.started.p2p[0].clone();
    // "/ip4/127.0.0.1/tcp/PORT/..." as "127.0.0.1:PORT".
    let port = p2p
        .split("/tcp/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let (status, body) = a
        .post_json(
            "/v1/peers",
            &json!({"address": format!("127.0.0.1:{port}")}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("(a p2p address)"),
        "{body}"
    );
    wait_for("b among a's peers", async || {
        a.get("/v1/peers").await.1["count"].as_u64().unwrap() >= 1
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// Blocks a node mines itself while `/nodes/resolve` waits do not "replace" its chain:
/// in the tutorials, only a neighbour's longer chain does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_is_authoritative_over_blocks_the_node_mined_itself() {
    let node = TestNode::start(MiningMode::Continuous).await;
    wait_for("a first block", async || {
        node.get("/v1/status").await.1["height"].as_u64().unwrap() >= 1
    })
    .await;
    let (_, before) = node.get("/v1/status").await;
    let (_, resolved) = node.get("/nodes/resolve").await;
    let (_, after) = node.get("/v1/status").await;
    assert!(
        after["height"].as_u64() > before["height"].as_u64(),
        "the node mined during the wait"
    );
    assert_eq!(resolved["message"], "Our chain is authoritative");
    node.stop().await;
}
