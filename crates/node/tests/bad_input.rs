//! Bad input, one test each: a 4xx JSON answer with a clear message and a code word,
//! never a 500, and the node's state (height, mempool) unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::TestNode;
use oxchain_miner::MiningMode;

/// Sends `body` to `path` and checks the answer and that nothing changed.
async fn refused(method: Method, path: &str, body: String, status: u16, code: &str, says: &str) {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let before = node.state().await;
    let (got, answer) = node
        .send(
            method,
            path,
            Some("application/x-www-form-urlencoded"),
            body,
        )
        .await;
    assert_eq!(
        got,
        StatusCode::from_u16(status).unwrap(),
        "{path}: {answer}"
    );
    assert_eq!(answer["code"], code, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains(says),
        "message {message:?} does not say {says:?}"
    );
    assert_eq!(node.state().await, before, "state changed");
    node.stop().await;
}

fn tx(sender: &str, amount: &str) -> String {
    format!(r#"{{"sender": {sender}, "recipient": "bob", "amount": {amount}}}"#)
}

macro_rules! bad_input {
    ($($name:ident: $method:ident $path:expr, $body:expr => $status:expr, $code:expr, $says:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            refused(Method::$method, $path, $body.to_string(), $status, $code, $says).await;
        }
    )*};
}

fn signed(overrides: &[(&str, serde_json::Value)]) -> String {
    use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};
    let params = oxchain_consensus::ChainParams::regtest();
    let t = signed_transfer(
        &params.genesis_hash(),
        &dev_account_key("eve"),
        dev_account_address("bob"),
        5_000,
        2_000,
        0,
    );
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut v = serde_json::json!({
        "from": hex(t.from.as_bytes()), "to": "bob", "amount": 5_000, "fee": 2_000, "nonce": 0,
        "signature": hex(t.signature.as_bytes()),
    });
    for (k, val) in overrides {
        v[*k] = val.clone();
    }
    v.to_string()
}

bad_input! {
    malformed_json: POST "/transactions/new", r#"{"sender": "alice", "#
        => 400, "bad_json", "bad JSON body";
    // Forms only where the document declares them (the tutorials' flat routes).
    form_to_a_json_route: POST "/v1/transactions", "from=00&to=bob&amount=1&fee=1&nonce=0"
        => 400, "bad_json", "takes a JSON body, not a form";
    form_text_amount_too_fine: POST "/transactions/new", "sender=alice&recipient=bob&amount=1e-9"
        => 422, "bad_amount", "not a valid number of coins";
    missing_values: POST "/transactions/new", r#"{"sender": "alice", "amount": 1}"#
        => 400, "missing_values", "Missing values";
    wrong_type_sender: POST "/transactions/new", tx("5", "1")
        => 400, "bad_request", "sender must be a string";
    wrong_type_amount: POST "/transactions/new", tx(r#""alice""#, "[1]")
        => 400, "bad_amount", "amount must be a number";
    negative_amount: POST "/transactions/new", tx(r#""alice""#, "-1")
        => 400, "bad_amount", "not a number of coins from 0";
    zero_amount: POST "/transactions/new", tx(r#""alice""#, "0")
        => 422, "bad_amount", "more than 0";
    huge_amount: POST "/transactions/new", tx(r#""alice""#, "1e30")
        => 400, "bad_amount", "not a number of coins from 0";
    too_many_coins: POST "/transactions/new", tx(r#""alice""#, "184467440737.09551616")
        => 422, "bad_amount", "too large";
    nan_amount: POST "/transactions/new", tx(r#""alice""#, r#""NaN""#)
        => 400, "bad_amount", "must be a number of coins";
    nine_decimals: POST "/transactions/new", tx(r#""alice""#, "0.123456789")
        => 422, "bad_amount", "more than 8 decimals";
    empty_sender: POST "/transactions/new", tx(r#""""#, "1")
        => 400, "bad_sender", "sender is empty";
    unknown_sender_address: POST "/transactions/new", tx(r#""oxr1gdjvr6u8stzxg3sz9zqxulzllvcl9tk2jhdt77""#, "1")
        => 422, "unknown_account", "(dev accounts: alice bob charlie dave eve)";
    unknown_sender_name: POST "/transaction", r#"{"sender": "zed", "receiver": "bob", "amount": 1}"#
        => 422, "unknown_account", r#"unknown account "zed" (dev accounts: alice"#;
    overdraft_says_the_balance: POST "/transactions/new", tx(r#""alice""#, "10001")
        => 422, "insufficient_funds", "the sender has 10000";
    bad_recipient: POST "/transactions/new", r#"{"sender": "alice", "recipient": "oxd1qqqq", "amount": 1}"#
        => 422, "bad_address", "not an address of the regtest network";
    huge_body: POST "/transactions/new", "a".repeat(200_000)
        => 413, "body_too_large", "the limit is 65536";
    empty_host: POST "/nodes", r#"{"host": "", "port": 5000}"#
        => 400, "bad_node", "is not a host name";
    unknown_route: GET "/no/such/route", ""
        => 404, "not_found", "no such route";
    wrong_method: POST "/v1/status", ""
        => 405, "method_not_allowed", "does not take that method (POST): use GET";
    unknown_block_height: GET "/v1/blocks/999", ""
        => 404, "not_found", "no block at height 999";
    unknown_block_hash: GET &format!("/v1/blocks/{}", "00".repeat(32)), ""
        => 404, "not_found", "no block";
    malformed_block_id: GET "/v1/blocks/xyz", ""
        => 400, "bad_block_id", "neither a height nor a block hash";
    unknown_txid: GET &format!("/v1/transactions/{}", "ab".repeat(32)), ""
        => 404, "not_found", "no transaction";
    malformed_txid: GET "/v1/transactions/not-a-txid", ""
        => 400, "bad_txid", "is not a txid";
    checksum_address: GET "/v1/accounts/oxr1notanaddress", ""
        => 422, "bad_address", "not an address";
    malformed_address: GET "/v1/accounts/not%20an%20address", ""
        => 400, "bad_address", "not an address";
    bad_limit: GET "/v1/blocks?limit=0", ""
        => 400, "bad_limit", "out of range";
    bad_cursor: GET "/v1/accounts/alice/transactions?before=abc", ""
        => 400, "bad_cursor", "height:position";
    bad_format: GET "/chain?format=xml", ""
        => 400, "bad_format", "unknown format";
    mine_count_zero: POST "/v1/mine", r#"{"count": 0}"#
        => 400, "bad_count", "out of range";
    mine_count_huge: POST "/v1/mine", r#"{"count": 100000}"#
        => 400, "bad_count", "out of range";
    v1_wrong_types: POST "/v1/transactions", r#"{"from": 1, "to": "bob"}"#
        => 400, "bad_json", "bad JSON body";
    v1_negative_amount: POST "/v1/transactions", signed(&[("amount", serde_json::json!(-5))])
        => 400, "bad_json", "bad JSON body";
    v1_bad_signature: POST "/v1/transactions", signed(&[("amount", serde_json::json!(5_001))])
        => 422, "invalid_transfer", "invalid signature";
    v1_over_long_data: POST "/v1/transactions", signed(&[("data", serde_json::json!("00".repeat(1025)))])
        => 400, "data_too_long", "the limit is 1024";
    v1_bad_key: POST "/v1/transactions", signed(&[("from", serde_json::json!("zz"))])
        => 400, "bad_key", "not a public key";
}

/// The tutorials' "Missing values" stays word for word, and says which fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_values_name_the_missing_fields() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    for (path, body, missing) in [
        (
            "/transactions/new",
            r#"{"sender": "alice", "amount": 1}"#,
            vec!["recipient"],
        ),
        (
            "/transactions/new",
            "{}",
            vec!["sender", "recipient", "amount"],
        ),
        (
            "/transaction",
            r#"{"sender": "alice", "receiver": "bob"}"#,
            vec!["amount"],
        ),
    ] {
        let (status, answer) = node
            .send(
                Method::POST,
                path,
                Some("application/json"),
                body.to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["message"], "Missing values");
        assert_eq!(answer["code"], "missing_values");
        assert_eq!(
            answer["missing"],
            serde_json::json!(missing),
            "{path} {body}"
        );
    }
    // Other errors carry no `missing` field.
    let (_, answer) = node
        .send(Method::GET, "/v1/blocks/999", None, String::new())
        .await;
    assert!(answer.get("missing").is_none(), "{answer}");
    node.stop().await;
}
