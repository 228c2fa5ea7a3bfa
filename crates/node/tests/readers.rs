//! Readers never wait on the writer: while a thread holds the chain's writer through a
//! long import, the API's reads (status, blocks, accounts, the mempool, the tutorial
//! chain) and a transfer submission all answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::api_only::{regtest_chain, serve_api};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oxchain_api::Cors;
use oxchain_consensus::ChainParams;
use oxchain_miner::MiningMode;
use oxchain_primitives::Address;
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, signed_transfer};

/// How long the writer holds on at most, waiting for the reads: a bound for a broken
/// build, not a measure (the reads take milliseconds when they do not wait).
const HOLD_AT_MOST: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_an_import_holds_the_writer() {
    let params = ChainParams::regtest();
    // Blocks of transfers to import: enough work to keep the writer busy.
    let mut builder = ChainBuilder::new(params.clone());
    let genesis = params.genesis_hash();
    for nonce in 0..40 {
        let transfers = (0..50)
            .map(|i| {
                signed_transfer(
                    &genesis,
                    &dev_account_key("alice"),
                    Address([i as u8; 20]),
                    1_000,
                    1_000,
                    nonce * 50 + i,
                )
            })
            .collect();
        builder.extend(transfers).unwrap();
    }
    let blocks = builder.blocks[1..].to_vec();

    let (_dir, chain) = regtest_chain();
    let addr = serve_api(&chain, MiningMode::Off, None, Cors::None).await;

    // The writer: imports every block, then keeps the chain until the reads are done.
    let holding = Arc::new(AtomicBool::new(false));
    let (reads_done, wait_for_reads) = mpsc::channel::<()>();
    let (import_started, started) = tokio::sync::oneshot::channel();
    let writer = {
        let (chain, holding) = (chain.clone(), holding.clone());
        std::thread::spawn(move || {
            chain.write(|c| {
                holding.store(true, Ordering::SeqCst);
                let _ = import_started.send(());
                let outcomes = c.process_blocks(blocks, now_ms()).unwrap();
                let held_through = wait_for_reads.recv_timeout(HOLD_AT_MOST).is_ok();
                holding.store(false, Ordering::SeqCst);
                (outcomes.len(), held_through)
            })
        })
    };
    started.await.unwrap();

    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut answered = Vec::new();
    for (method, path, body, expected) in [
        ("GET", "/v1/status", "", StatusCode::OK),
        ("GET", "/v1/blocks/0", "", StatusCode::OK),
        ("GET", "/v1/blocks", "", StatusCode::OK),
        ("GET", "/v1/accounts/bob", "", StatusCode::OK),
        ("GET", "/v1/mempool", "", StatusCode::OK),
        ("GET", "/chain", "", StatusCode::OK),
        ("GET", "/metrics", "", StatusCode::OK),
        (
            "POST",
            "/transactions/new",
            r#"{"sender":"bob","recipient":"charlie","amount":1}"#,
            StatusCode::CREATED,
        ),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .body(Body::from(body))
            .unwrap();
        let res = client.request(req).await.unwrap();
        assert_eq!(res.status(), expected, "{method} {path}");
        assert!(
            holding.load(Ordering::SeqCst),
            "{method} {path} answered only after the writer let go"
        );
        answered.push(path);
    }
    reads_done.send(()).unwrap();
    let (imported, held_through) = writer.join().unwrap();
    assert_eq!(imported, 40);
    assert!(held_through, "the writer held the chain through every read");
    assert_eq!(answered.len(), 8);
    // The import landed: the snapshot moved once the writer committed.
    assert_eq!(chain.view().tip().height.0, 40);
    let bob = chain
        .view()
        .store()
        .account(&dev_account_address("bob"))
        .unwrap()
        .unwrap();
    assert_eq!(bob.nonce, 0, "bob's transfer is pending, not mined");
    assert_eq!(chain.view().mempool().len(), 1);
}
