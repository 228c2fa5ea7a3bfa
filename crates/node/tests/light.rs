//! What a light client reads, against a real node: best-chain headers (hex JSON and
//! bytes) that chain to the tip, and transfers found by the hash their data starts with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::TestNode;
use oxchain_consensus::ChainParams;
use oxchain_miner::MiningMode;
use oxchain_primitives::{Header, decode, sha256};
use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};
use serde_json::json;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_come_as_hex_or_bytes_and_chain_to_the_tip() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let (status, _) = node.post_json("/v1/mine", &json!({"count": 5})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, tip) = node.get("/v1/status").await;

    let (status, page) = node.get("/v1/headers").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        (page["from"].as_u64(), page["tip_height"].as_u64()),
        (Some(0), Some(5))
    );
    let headers: Vec<Header> = page["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let text = h.as_str().unwrap();
            let bytes: Vec<u8> = (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                .collect();
            decode(&bytes).unwrap()
        })
        .collect();
    assert_eq!(headers.len(), 6);
    assert_eq!(
        headers[0].compute_hash(),
        ChainParams::regtest().genesis_hash()
    );
    for pair in headers.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].compute_hash());
    }
    assert_eq!(headers[5].compute_hash().to_string(), tip["tip"]);

    // The same, as bytes, from height 2.
    let (status, head, bytes) = node
        .get_bytes("/v1/headers?from=2&count=3", "application/octet-stream")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(head["content-type"], "application/octet-stream");
    assert_eq!(head["x-tip-height"], "5");
    assert_eq!(bytes.len(), 3 * 88);
    for (i, chunk) in bytes.chunks(88).enumerate() {
        assert_eq!(decode::<Header>(chunk).unwrap(), headers[2 + i]);
    }
    // Past the tip: none; out of range: 400.
    let (_, past) = node.get("/v1/headers?from=6").await;
    assert_eq!(past["headers"], json!([]));
    for bad in ["count=0", "count=2001", "from=-1", "from=x"] {
        let (status, answer) = node.get(&format!("/v1/headers?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_hash_is_found_with_its_block() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let params = ChainParams::regtest();
    let file_hash = sha256(b"the contents of a file");
    let key = dev_account_key("charlie");
    let mut t = signed_transfer(
        &params.genesis_hash(),
        &key,
        dev_account_address("charlie"),
        1,
        2_000,
        0,
    );
    t.data = [file_hash.as_slice(), b"contract.pdf"].concat();
    t.sign(&key, &params.genesis_hash());
    let (status, answer) = node
        .post_json(
            "/v1/transactions",
            &json!({
                "from": hex(t.from.as_bytes()), "to": "charlie", "amount": 1, "fee": 2_000,
                "nonce": 0, "data": hex(&t.data), "signature": hex(t.signature.as_bytes()),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let txid = answer["txid"].as_str().unwrap().to_string();
    // Pending is not recorded.
    let (_, none) = node.get(&format!("/v1/data/{}", hex(&file_hash))).await;
    assert_eq!(none["records"], json!([]));
    node.post_json("/v1/mine", &json!({"count": 2})).await;

    // Upper-case hex names the same hash.
    let (status, found) = node
        .get(&format!("/v1/data/{}", hex(&file_hash).to_uppercase()))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["hash"], hex(&file_hash));
    let records = found["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{found}");
    let record = &records[0];
    assert_eq!(record["height"], 1);
    assert_eq!(record["position"], 1);
    assert_eq!(record["confirmations"], 2);
    assert_eq!(record["transaction"]["txid"], txid);
    assert_eq!(record["transaction"]["data"], hex(&t.data));
    assert_eq!(
        record["transaction"]["signature"],
        hex(t.signature.as_bytes())
    );
    let (_, block) = node.get("/v1/blocks/1").await;
    assert_eq!(record["block"], block["hash"]);
    assert_eq!(record["time_ms"], block["time_ms"]);
    assert_eq!(block["version"], 1);
    assert_eq!(found["next_after"], json!(null));

    for bad in ["abc", &"g".repeat(64), &"0".repeat(62)] {
        let (status, answer) = node.get(&format!("/v1/data/{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    node.stop().await;
}
