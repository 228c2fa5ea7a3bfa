//! The block explorer in a real browser: Debian's Chromium, driven by Playwright
//! (`ui/tests/explorer.mjs`), against a real regtest node. The script prints a line per
//! check; this test passes only if the script exits 0. Screenshots of every page at
//! desktop and phone width go to `$OXCHAIN_SCREENSHOTS` (default: the temp dir's
//! `oxchain-explorer-screenshots`).
//!
//! It needs Node.js, `/usr/bin/chromium` and `ui/tests/node_modules`: `scripts/test`
//! (the README's test command) installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use common::{TestNode, browser, wait_for};
use oxchain_miner::MiningMode;
use serde_json::json;

/// The script bounds each step; this bounds the whole.
const DEADLINE: Duration = Duration::from_secs(110);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_works_in_chromium_against_a_regtest_node() {
    browser::assert_installed();
    let screenshots = std::env::var_os("OXCHAIN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("oxchain-explorer-screenshots"));
    let node = TestNode::start(MiningMode::OnDemand).await;
    let url = format!("http://{}", node.addr);
    let (code, output) = browser::run_script(
        "explorer.mjs",
        &[
            ("OXCHAIN_URL", url),
            ("SCREENSHOTS", screenshots.display().to_string()),
        ],
        DEADLINE,
    )
    .await;
    let output = format!("{output}\nscreenshots: {}", screenshots.display());
    println!("{output}");
    node.stop().await;
    assert_eq!(
        code,
        Some(0),
        "the browser checks failed (None: killed after {DEADLINE:?}):\n{output}"
    );
}

/// The fork tree and the Reorgs card of the network page show the same forks: node A's
/// three blocks lose to B's five when they meet (a reorg of depth 3 above genesis), then
/// A mines 40 blocks on top, so the reorg lies below the tree's usual 30 blocks
/// (`ui/tests/forks.mjs`; the script then mines past the tree's reach). The nodes have
/// names: A's explorer shows B as "beta" with its API address, and B's blocks as mined by
/// beta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fork_tree_and_the_reorg_card_agree_in_chromium() {
    browser::assert_installed();
    let screenshots = std::env::var_os("OXCHAIN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("oxchain-explorer-screenshots"));
    let a = TestNode::start_named(MiningMode::OnDemand, "alpha").await;
    let b = TestNode::start_named(MiningMode::OnDemand, "beta").await;
    for (node, count) in [(&a, 3), (&b, 5)] {
        let (status, body) = node.post_json("/v1/mine", &json!({ "count": count })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = a
        .post_json(
            "/nodes",
            &json!({"host": "127.0.0.1", "port": b.addr.port()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_for("A to take B's chain", async || {
        a.get("/v1/forks").await.1["reorgs"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    })
    .await;
    let (_, forks) = a.get("/v1/forks").await;
    assert_eq!(
        (
            &forks["reorgs"][0]["fork_height"],
            &forks["reorgs"][0]["depth"]
        ),
        (&json!(0), &json!(3)),
        "{forks}"
    );
    let (status, body) = a.post_json("/v1/mine", &json!({ "count": 40 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, output) = browser::run_script(
        "forks.mjs",
        &[
            ("OXCHAIN_URL", format!("http://{}", a.addr)),
            ("SCREENSHOTS", screenshots.display().to_string()),
            ("FORK_HEIGHT", "0".into()),
            ("DEPTH", "3".into()),
            ("PEER_API", b.addr.to_string()),
        ],
        Duration::from_secs(60),
    )
    .await;
    println!("{output}\nscreenshots: {}", screenshots.display());
    a.stop().await;
    b.stop().await;
    assert_eq!(
        code,
        Some(0),
        "the browser checks failed (None: killed):\n{output}"
    );
}

/// The "Verify a file" page (`ui/tests/verify.mjs`): a file whose SHA-256 a transfer
/// recorded, chosen in the page, is found and checked there; a file never recorded is
/// not found; transfer pages show text data as text and a record as its hash and label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_page_finds_a_recorded_file_in_chromium() {
    use oxchain_consensus::ChainParams;
    use oxchain_primitives::sha256;
    use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};

    browser::assert_installed();
    let screenshots = std::env::var_os("OXCHAIN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("oxchain-explorer-screenshots"));
    let files = tempfile::tempdir().unwrap();
    let found = files.path().join("lease.txt");
    let missing = files.path().join("other.txt");
    std::fs::write(&found, b"The lease runs for two years.\n").unwrap();
    std::fs::write(&missing, b"Never recorded anywhere.\n").unwrap();
    let node = TestNode::start(MiningMode::OnDemand).await;
    let genesis = ChainParams::regtest().genesis_hash();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut txids = Vec::new();
    for (name, data) in [
        (
            "dave",
            [
                sha256(&std::fs::read(&found).unwrap()).as_slice(),
                b"lease, v1",
            ]
            .concat(),
        ),
        ("eve", b"hello, chain".to_vec()),
    ] {
        let key = dev_account_key(name);
        let mut t = signed_transfer(&genesis, &key, dev_account_address(name), 1, 2_000, 0);
        t.data = data;
        t.sign(&key, &genesis);
        let (status, body) = node
            .post_json(
                "/v1/transactions",
                &json!({
                    "from": hex(t.from.as_bytes()), "to": name, "amount": 1, "fee": 2_000,
                    "nonce": 0, "data": hex(&t.data), "signature": hex(t.signature.as_bytes()),
                }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        txids.push(body["txid"].as_str().unwrap().to_string());
    }
    let (status, body) = node.post_json("/v1/mine", &json!({ "count": 2 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, output) = browser::run_script(
        "verify.mjs",
        &[
            ("OXCHAIN_URL", format!("http://{}", node.addr)),
            ("SCREENSHOTS", screenshots.display().to_string()),
            ("FOUND_FILE", found.display().to_string()),
            ("MISSING_FILE", missing.display().to_string()),
            ("RECORD_TXID", txids[0].clone()),
            ("TEXT_TXID", txids[1].clone()),
        ],
        Duration::from_secs(60),
    )
    .await;
    println!("{output}\nscreenshots: {}", screenshots.display());
    node.stop().await;
    assert_eq!(
        code,
        Some(0),
        "the browser checks failed (None: killed):\n{output}"
    );
}
