//! Both tutorials' curl commands against a real node, as written, and the documented
//! shapes of the answers (DESIGN §6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::TestNode;
use oxchain_miner::MiningMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flask_tutorial_walkthrough() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    // curl http://localhost:5000/
    let (status, body) = node.get("/").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Server is OK"))
    );

    // curl -X POST -H "Content-Type: application/json" -d '{...}' .../transactions/new
    let (status, body) = node
        .post_json(
            "/transactions/new",
            &serde_json::json!({"sender": "alice", "recipient": "bob", "amount": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"], "Transaction will be added to Block 1");
    // Beside the tutorial's message, the txid of the transfer the node signed.
    let txid = body["txid"].as_str().unwrap();
    let (status, pending) = node.get(&format!("/v1/transactions/{txid}")).await;
    assert_eq!(
        (status, &pending["status"]),
        (StatusCode::OK, &serde_json::json!("pending"))
    );
    // The same with curl -d's form content type, JSON inside.
    let (status, body) = node
        .curl_d(
            "/transactions/new",
            r#"{"sender": "alice", "recipient": "bob", "amount": 2.5}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A real form.
    let (status, body) = node
        .curl_d(
            "/transactions/new",
            "sender=alice&recipient=charlie&amount=1",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = node
        .curl_d("/transactions/new", r#"{"sender": "alice"}"#)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Missing values"))
    );

    // curl http://localhost:5000/mine
    let (status, block) = node.get("/mine").await;
    assert_eq!(status, StatusCode::OK, "{block}");
    assert_eq!(block["message"], "New Block Forged");
    assert_eq!(block["index"], 1);
    for key in [
        "transactions",
        "proof",
        "previous_hash",
        "hash",
        "timestamp",
    ] {
        assert!(!block[key].is_null(), "/mine has no {key}: {block}");
    }
    let txs = block["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 4, "coinbase and three transfers");
    assert_eq!(txs[0]["sender"], "0", "the coinbase shows sender 0");
    assert!(
        txs[1..]
            .iter()
            .any(|t| t["amount"] == serde_json::json!(2.5))
    );

    // curl http://localhost:5000/chain
    let (status, chain) = node.get("/chain").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chain["length"], 2);
    let blocks = chain["chain"].as_array().unwrap();
    assert_eq!(blocks[0]["index"], 0);
    assert_eq!(blocks[1]["hash"], block["hash"]);
    assert_eq!(blocks[1]["previous_hash"], blocks[0]["hash"]);

    let (_, bob) = node.get("/v1/accounts/bob").await;
    let start = 10_000 * 100_000_000u64;
    assert_eq!(bob["balance"].as_u64().unwrap(), start + 750_000_000);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_io_tutorial_walkthrough() {
    let node = TestNode::start(MiningMode::Pool(2)).await;
    // POST /transaction {sender, receiver, amount}
    for amount in ["1", "2"] {
        let (status, body) = node
            .curl_d(
                "/transaction",
                &format!(r#"{{"sender": "dave", "receiver": "eve", "amount": {amount}}}"#),
            )
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::OK, Some("transaction success"))
        );
    }
    // pool:2 mines once two transactions wait, as the tutorial's nodes did.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, chain) = node.get("/chain?format=array").await;
        let chain = chain.as_array().unwrap().clone();
        if chain.len() == 2 {
            assert_eq!(chain[1]["transactions"].as_array().unwrap().len(), 3);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no block mined for two transactions"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    node.stop().await;
}

/// Names (ADR 0024): the node signs only for the five dev accounts; a recipient that is
/// neither an address nor a dev account is taken by the tutorial routes (their own
/// example sends to "someone-other-address") with a note naming the address it became,
/// and refused everywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_said_so() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let (status, body) = node
        .post_json(
            "/transactions/new",
            &serde_json::json!({"sender": "mallory", "recipient": "bob", "amount": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "unknown_account");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"unknown account "mallory" (dev accounts: alice bob charlie dave eve)"#),
        "{body}"
    );
    // The tutorial's own example recipient: taken, with a note.
    let (status, body) = node
        .post_json(
            "/transactions/new",
            &serde_json::json!({"sender": "alice", "recipient": "someone-other-address", "amount": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"], "Transaction will be added to Block 1");
    let note = body["note"].as_str().unwrap();
    assert!(
        note.contains(r#""someone-other-address" is neither an address nor a dev account"#)
            && note.contains("oxr1"),
        "{note}"
    );
    // A dev account or an address: no note.
    let (_, body) = node
        .post_json(
            "/transactions/new",
            &serde_json::json!({"sender": "alice", "recipient": "bob", "amount": 1}),
        )
        .await;
    assert!(body.get("note").is_none(), "{body}");
    // Elsewhere a typo is an error naming the dev accounts.
    let (status, body) = node.get("/v1/accounts/bbo").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("neither a regtest address nor a dev account (alice bob charlie dave eve)"),
        "{body}"
    );
    node.stop().await;
}
