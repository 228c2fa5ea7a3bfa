//! The whole `/v1` surface against a real node, the OpenAPI document against the
//! router, events over a WebSocket, and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::TestNode;
use futures_util::StreamExt;
use oxchain_consensus::ChainParams;
use oxchain_miner::MiningMode;
use oxchain_primitives::{Address, MerkleProof, MerkleRoot, Txid};
use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};
use serde_json::{Value, json};

fn signed_json(nonce: u64, amount: u64, to: Address) -> Value {
    let params = ChainParams::regtest();
    let t = signed_transfer(
        &params.genesis_hash(),
        &dev_account_key("charlie"),
        to,
        amount,
        2_000,
        nonce,
    );
    json!({
        "from": hex(t.from.as_bytes()),
        "to": to.to_bech32(params.network),
        "amount": amount,
        "fee": 2_000,
        "nonce": nonce,
        "signature": hex(t.signature.as_bytes()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v1_surface() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let dave = dev_account_address("dave");

    let (status, s) = node.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    for key in [
        "network",
        "genesis",
        "height",
        "tip",
        "total_work",
        "difficulty",
        "peers",
        "mempool",
        "mining",
        "syncing",
        "version",
    ] {
        assert!(!s[key].is_null(), "status has no {key}: {s}");
    }
    assert_eq!(s["network"], "regtest");
    assert_eq!(s["mining"]["mode"], "on-demand");
    // Not syncing; no blocks yet to measure the network's hash rate by.
    assert_eq!((&s["syncing"], &s["sync"]), (&json!(false), &Value::Null));
    assert_eq!(s["network_hashes_per_s"], 0.0);
    let (status, n) = node.get("/v1/node").await;
    assert_eq!((status, &n["genesis"]), (StatusCode::OK, &s["genesis"]));

    // A signed transfer, as `oxchain send` posts it.
    let (status, accepted) = node
        .post_json("/v1/transactions", &signed_json(0, 70_000, dave))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let txid = accepted["txid"].as_str().unwrap().to_string();
    let (status, pending) = node.get(&format!("/v1/transactions/{txid}")).await;
    assert_eq!(
        (status, pending["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    let (_, pool) = node.get("/v1/mempool").await;
    assert_eq!(
        (
            pool["count"].as_u64(),
            pool["transactions"][0]["txid"].as_str()
        ),
        (Some(1), Some(txid.as_str()))
    );
    assert!(pool["bytes"].as_u64().unwrap() > 100);
    let (_, charlie) = node.get("/v1/accounts/charlie").await;
    assert_eq!(
        (charlie["nonce"].as_u64(), charlie["next_nonce"].as_u64()),
        (Some(0), Some(1))
    );

    // Mine three blocks.
    let (status, mined) = node.post_json("/v1/mine", &json!({"count": 3})).await;
    assert_eq!(status, StatusCode::OK, "{mined}");
    let heights: Vec<u64> = mined["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights, [1, 2, 3]);
    let (status, _) = node.send(Method::POST, "/v1/mine", None, "").await;
    assert_eq!(status, StatusCode::OK, "count defaults to 1");

    let (status, confirmed) = node.get(&format!("/v1/transactions/{txid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(
        (
            confirmed["height"].as_u64(),
            confirmed["confirmations"].as_u64()
        ),
        (Some(1), Some(4))
    );
    assert_eq!(confirmed["transaction"]["amount"], 70_000);
    assert_eq!(
        confirmed["transaction"]["to"],
        dave.to_bech32(oxchain_primitives::Network::Regtest)
    );

    // The merkle proof checks out against the header's root.
    let (status, proof) = node.get(&format!("/v1/transactions/{txid}/proof")).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let path: Vec<[u8; 32]> = proof["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let bytes: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&h.as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            bytes.try_into().unwrap()
        })
        .collect();
    let merkle = MerkleProof {
        index: proof["index"].as_u64().unwrap() as u32,
        leaf_count: proof["leaf_count"].as_u64().unwrap() as u32,
        path,
    };
    let root: MerkleRoot = proof["merkle_root"].as_str().unwrap().parse().unwrap();
    assert!(merkle.verify(&txid.parse::<Txid>().unwrap(), &root));

    // Blocks: a page, by height, by hash.
    let (_, page) = node.get("/v1/blocks?limit=2").await;
    let listed: Vec<u64> = page["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["height"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [4, 3]);
    assert_eq!(page["next_before"], 3);
    let (_, rest) = node.get("/v1/blocks?before=3&limit=100").await;
    assert_eq!(rest["blocks"].as_array().unwrap().len(), 3);
    assert!(rest["next_before"].is_null());
    let (status, by_height) = node.get("/v1/blocks/1").await;
    assert_eq!(status, StatusCode::OK);
    let hash = by_height["hash"].as_str().unwrap();
    let (_, by_hash) = node.get(&format!("/v1/blocks/{hash}")).await;
    assert_eq!(by_hash["height"], 1);
    assert_eq!(by_hash["best_chain"], true);
    assert_eq!(by_hash["confirmations"], 4);
    assert_eq!(by_hash["transactions"][1]["txid"], txid.as_str());

    // Accounts and history, paginated.
    let (_, account) = node.get("/v1/accounts/dave").await;
    assert_eq!(
        account["balance"].as_u64().unwrap(),
        10_000 * 100_000_000 + 70_000
    );
    let (_, history) = node.get("/v1/accounts/charlie/transactions?limit=1").await;
    assert_eq!(
        history["transactions"][0]["transaction"]["txid"],
        txid.as_str()
    );
    let cursor = history["next_before"].as_str().unwrap().to_string();
    let (_, older) = node
        .get(&format!(
            "/v1/accounts/charlie/transactions?before={cursor}"
        ))
        .await;
    assert_eq!(
        older["transactions"][0]["height"], 0,
        "the genesis allocation"
    );
    assert!(older["next_before"].is_null());
    // A page that holds the last entry has no cursor, even when it is full.
    let (_, both) = node.get("/v1/accounts/charlie/transactions?limit=2").await;
    assert_eq!(both["transactions"].as_array().unwrap().len(), 2);
    assert!(both["next_before"].is_null(), "{both}");

    // One search box: heights, block hashes, txids, addresses and dev names.
    let (_, tip_block) = node.get("/v1/blocks/1").await;
    let block_hash = tip_block["hash"].as_str().unwrap().to_string();
    let dave_address = dave.to_bech32(oxchain_primitives::Network::Regtest);
    for (q, kind, id) in [
        ("1", "block", "1".to_string()),
        (block_hash.as_str(), "block", block_hash.clone()),
        (&block_hash.to_uppercase(), "block", block_hash.clone()),
        (txid.as_str(), "transaction", txid.clone()),
        (dave_address.as_str(), "account", dave_address.clone()),
        ("dave", "account", dave_address.clone()),
    ] {
        let (status, found) = node.get(&format!("/v1/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}: {found}");
        assert_eq!(
            (&found["kind"], &found["id"]),
            (&json!(kind), &json!(id)),
            "{q}"
        );
    }
    for (q, expected) in [
        ("999", StatusCode::NOT_FOUND),
        (&"ab".repeat(32)[..], StatusCode::NOT_FOUND),
        ("oxr1nope", StatusCode::NOT_FOUND),
        ("", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = node.get(&format!("/v1/search?q={q}")).await;
        assert_eq!(status, expected, "{q:?}: {body}");
    }

    // Metrics.
    let (status, text) = node.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for name in [
        "oxchain_height 4",
        "# TYPE oxchain_peers gauge",
        "oxchain_mempool_transactions 0",
        "oxchain_mempool_bytes",
        "oxchain_hash_rate",
        "oxchain_blocks_accepted_total 4",
        "oxchain_transfers_accepted_total 1",
        "oxchain_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/v1/status\"}",
        "# EOF",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
    node.stop().await;
}

/// Every operation the router serves is in /openapi.json, and every documented
/// operation is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_router_hold_the_same_routes() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let (status, spec) = node.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    // oxchain's own info, not the defaults of the crate that builds the document.
    let info = &spec["info"];
    assert_eq!(info["title"], "oxchain node API");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["license"]["name"], "MIT OR Apache-2.0");
    assert!(info.get("contact").is_none(), "{info}");
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let served: BTreeSet<String> = [
        "GET /",
        "GET /chain",
        "GET /mine",
        "POST /transactions/new",
        "POST /transaction",
        "GET /v1/status",
        "GET /v1/node",
        "GET /v1/blocks",
        "GET /v1/blocks/{id}",
        "GET /v1/transactions/{txid}",
        "GET /v1/transactions/{txid}/proof",
        "POST /v1/transactions",
        "GET /v1/accounts/{address}",
        "GET /v1/accounts/{address}/transactions",
        "GET /v1/mempool",
        "GET /v1/headers",
        "GET /v1/data/{hash}",
        "POST /v1/mine",
        "GET /v1/events",
        "GET /metrics",
        "GET /openapi.json",
        "GET /docs",
        "GET /v1/peers",
        "POST /v1/peers",
        "POST /nodes",
        "POST /nodes/register",
        "GET /nodes/resolve",
        "GET /v1/forks",
        "GET /v1/search",
        "GET /explorer",
        "GET /explorer/",
        "GET /explorer/app.js",
        "GET /explorer/style.css",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, served);
    // Each documented operation reaches a handler: never the fallback's not_found or
    // method_not_allowed.
    for op in &documented {
        let (method, path) = op.split_once(' ').unwrap();
        let path = path
            .replace("{id}", "0")
            .replace("{txid}", &"ab".repeat(32))
            .replace("{address}", "alice");
        let method: Method = method.parse().unwrap();
        let (status, body) = node
            .send(method, &path, Some("application/json"), "{}")
            .await;
        let code = body["code"].as_str().unwrap_or("");
        assert!(
            code != "method_not_allowed"
                && !(status == StatusCode::NOT_FOUND
                    && body["message"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("no such route")),
            "{op} is documented but not routed: {status} {body}"
        );
    }
    let (status, page) = node.get("/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("/openapi.json"));
    node.stop().await;
}

/// Browsers get the explorer at `/` and `/explorer/`; curl still gets the tutorial's JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_is_served_to_browsers() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let (status, body) = node.get("/").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"message": "Server is OK"}))
    );
    let header = |headers: &axum::http::HeaderMap, name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (status, headers, root) = node.get_as_browser("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    // One URL, two answers: caches must tell them apart.
    assert_eq!(header(&headers, "vary"), "accept");
    let (status, headers, page) = node.get_as_browser("/explorer/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, root);
    // Only the node's own files and API may load in the page.
    let csp = header(&headers, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    for (path, kind) in [
        ("/explorer/app.js", "text/javascript"),
        ("/explorer/style.css", "text/css"),
    ] {
        assert!(page.contains(path), "the page does not load {path}");
        let (status, headers, body) = node.get_as_browser(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(header(&headers, "content-type").starts_with(kind), "{path}");
        assert!(!body.is_empty(), "{path} is empty");
    }
    // Nothing loaded from elsewhere.
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "url(http",
    ] {
        assert!(!page.contains(external), "the page loads {external}...");
    }
    node.stop().await;
}

/// `GET /v1/events` against its own OpenAPI entry, which Schemathesis cannot drive (it does
/// not speak WebSocket): from a valid opening handshake, each declared header in turn is
/// left out or given values valid and invalid by its pattern. The document decides what
/// is expected: all valid is 101, anything else a 400 in the error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_websocket_keeps_its_openapi_entry() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let node = TestNode::start(MiningMode::OnDemand).await;
    let (_, document) = node.get("/openapi.json").await;
    let entry = &document["paths"]["/v1/events"]["get"];
    let mut declared: Vec<(String, regex::Regex)> = Vec::new();
    let mut queries = Vec::new();
    for param in entry["parameters"].as_array().unwrap() {
        if param["in"] == "query" {
            assert_ne!(param["required"], true, "{param}");
            assert!(
                param["schema"]["type"].to_string().contains("boolean"),
                "{param}"
            );
            queries.push(param["name"].as_str().unwrap().to_string());
            continue;
        }
        assert_eq!(param["in"], "header", "{param}");
        assert_eq!(param["required"], true, "{param}");
        let pattern = param["schema"]["pattern"].as_str().unwrap();
        declared.push((
            param["name"].as_str().unwrap().to_ascii_lowercase(),
            regex::Regex::new(pattern).unwrap(),
        ));
    }
    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "connection",
            "upgrade",
            "sec-websocket-version",
            "sec-websocket-key"
        ]
    );
    let valid = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let tries: &[(&str, &[&str])] = &[
        (
            "connection",
            &[
                "keep-alive, Upgrade",
                "UPGRADE",
                "upgrade,x",
                "keep-alive",
                "upgrades",
                "up grade",
            ],
        ),
        (
            "upgrade",
            &["WebSocket", "WEBSOCKET", "websockets", "h2c", "web socket"],
        ),
        ("sec-websocket-version", &["13", "8", "14", "1 3"]),
        (
            "sec-websocket-key",
            &[
                "AAAAAAAAAAAAAAAAAAAAAA==",
                "dGhlIHNhbXBsZSBub25jZQ=",
                "abc",
                "dGhlIHNhbXBsZSBub25jZR==",
            ],
        ),
    ];
    assert_eq!(queries, ["transactions"]);
    /// A query, headers, whether the document allows them, and a refusal's code.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, &'a str);
    let mut cases: Vec<Case> = vec![("", valid.to_vec(), true, "")];
    // The one query parameter is a boolean: its two values, and others.
    for (query, fits) in [
        ("?transactions=true", true),
        ("?transactions=false", true),
        ("?transactions=1", false),
        ("?transactions=no", false),
        ("?transactions=", false),
    ] {
        cases.push((query, valid.to_vec(), fits, "bad_request"));
    }
    for (name, values) in tries {
        // Left out: a required header is missing.
        cases.push((
            "",
            valid.iter().copied().filter(|(n, _)| n != name).collect(),
            false,
            "not_websocket",
        ));
        for value in *values {
            let headers: Vec<(&str, &str)> = valid
                .iter()
                .map(|&(n, v)| if n == *name { (n, *value) } else { (n, v) })
                .collect();
            let fits = declared
                .iter()
                .find(|(n, _)| n == name)
                .is_some_and(|(_, pattern)| pattern.is_match(value));
            cases.push(("", headers, fits, "not_websocket"));
        }
    }
    let (mut upgraded, mut refused) = (0, 0);
    for (query, headers, fits, code) in cases {
        let mut request = format!("GET /v1/events{query} HTTP/1.1\r\nhost: {}\r\n", node.addr);
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect(node.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        // Read up to the end of the head, and for a refusal its body (the node answers
        // with Content-Length, then keeps the connection open).
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let read = async {
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                answer.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&answer);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if n == 0 || body.len() >= length {
                        return (head.to_string(), body.to_string());
                    }
                }
                assert!(n > 0, "the node closed before answering: {text}");
            }
        };
        let (head, body) = tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("an answer within 10 s");
        if fits {
            assert!(
                head.starts_with("HTTP/1.1 101 "),
                "{query} {headers:?}: {head}"
            );
            upgraded += 1;
        } else {
            assert!(
                head.starts_with("HTTP/1.1 400 "),
                "{query} {headers:?}: {head}\n{body}"
            );
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{head}"
            );
            let error: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["code"], code, "{query} {headers:?}: {body}");
            if code == "not_websocket" {
                assert!(
                    error["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("/v1/events is a WebSocket: "),
                    "{body}"
                );
            }
            refused += 1;
        }
    }
    // Both ways were tried, more than once each.
    assert!(
        upgraded >= 5 && refused >= 10,
        "{upgraded} upgraded, {refused} refused"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_blocks_and_transfers_as_json() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/events", node.addr))
        .await
        .unwrap();
    let (mut light, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/v1/events?transactions=false",
        node.addr
    ))
    .await
    .unwrap();
    let (status, _) = node
        .curl_d(
            "/transaction",
            r#"{"sender":"alice","receiver":"bob","amount":1}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = node.get("/mine").await;
    assert_eq!(status, StatusCode::OK);
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        kinds.push(event["type"].as_str().unwrap().to_string());
        if event["type"] == "block" {
            assert_eq!(event["height"], 1);
            assert_eq!(event["tx_count"], 2);
            assert_eq!(event["transactions"].as_array().map(Vec::len), Some(2));
            // The same summary as /v1/blocks.
            let (_, blocks) = node.get("/v1/blocks?limit=1").await;
            let summary = &blocks["blocks"][0];
            for key in [
                "hash",
                "prev_hash",
                "difficulty",
                "size",
                "miner",
                "bits",
                "nonce",
            ] {
                assert_eq!(event[key], summary[key], "{key}");
            }
        }
    }
    assert_eq!(kinds, ["tx", "block"]);
    // Without transactions: the block's summary alone, and no transfer's event (the
    // transfer came first, so it would have come first here too).
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), light.next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
    assert_eq!(event["type"], "block", "{event}");
    assert_eq!(event["tx_count"], 2);
    assert!(event.get("transactions").is_none(), "{event}");
    node.stop().await;
}
