//! The API's request bodies through the real router (`oxchain_api::router`, built as the
//! node builds it over a regtest chain, mining off, no network): the input's first byte
//! picks a route that takes a body and a content type, the rest is the body, sent as a
//! client on loopback sends it (`Host: 127.0.0.1:5000`, no `Origin`).
//!
//! Checked: never a 500 (the only 5xx allowed is the documented 503 of a full mempool
//! or a busy node), and every error is the API's JSON error (`{"message", "code"}`).
#![no_main]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use oxchain_api::{ApiParts, AppState, Cors};
use oxchain_chain::SharedChain;
use oxchain_miner::{Miner, MiningHandle, MiningMode};
use oxchain_primitives::Address;
use tower::ServiceExt;

/// Routes that read a body (the peer routes answer 409 after reading it: no network).
const ROUTES: &[&str] = &[
    "/transactions/new",
    "/transaction",
    "/v1/transactions",
    "/v1/mine",
    "/v1/peers",
    "/nodes",
    "/nodes?callback=true",
    "/nodes/register",
];

/// Content types a client sends (`None`: no header, as `curl -d` without `-H` is not).
const TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    None,
    Some("application/json; charset=utf-8"),
    Some("multipart/form-data; boundary=x"),
];

/// A mempool this full is started again, so that a long run does not fill it.
const RESET_AT: usize = 5_000;

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    chain: SharedChain,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Harness {
    fn new() -> Harness {
        let dir = oxchain_fuzz::tempdir();
        let chain = oxchain_fuzz::regtest_chain(dir.path());
        // The harness lives in a static, never dropped: libFuzzer's exit would leave the
        // directory behind (one in /dev/shm a run). The store keeps its files open, so
        // they work on after their names are gone, and go with the process.
        drop(dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let miner = MiningHandle::start(
            chain.clone(),
            Arc::new(Miner::new(1)),
            MiningMode::Off,
            Address([1; 20]),
        )
        .expect("the miner starts");
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let (state, forward) = AppState::new(ApiParts {
            chain: chain.view().clone(),
            miner: Arc::new(miner),
            token: None,
            shutdown,
            net: None,
            api_addr: None,
            registry: Default::default(),
            name: None,
            miner_address: Address([1; 20]),
        })
        .expect("the API state is built");
        runtime.spawn(forward);
        let (router, _) = oxchain_api::router(state, Cors::None);
        Harness {
            runtime,
            router,
            chain,
            _stop: stop,
        }
    }
}

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let route = ROUTES[pick as usize % ROUTES.len()];
    let content_type = TYPES[pick as usize / ROUTES.len() % TYPES.len()];
    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    if guard
        .as_ref()
        .is_none_or(|h| h.chain.view().mempool().len() >= RESET_AT)
    {
        *guard = None;
        *guard = Some(Harness::new());
    }
    let harness = guard.as_ref().expect("set above");
    let mut request = Request::post(route).header(header::HOST, "127.0.0.1:5000");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request.body(Body::from(body.to_vec())).expect("a request");
    let (status, answer) = harness.runtime.block_on(async {
        let response = harness
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let answer = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("the answer is read");
        (status, answer)
    });
    let text = String::from_utf8_lossy(&answer);
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{route} ({content_type:?}) answered 500: {text}"
    );
    if status.is_client_error() || status.is_server_error() {
        let error: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_else(|e| {
            panic!("{route} answered {status} with no JSON error ({e}): {text}")
        });
        let code = error["code"].as_str();
        assert!(
            code.is_some() && error["message"].is_string(),
            "{route} answered {status} without a code and message: {text}"
        );
        if status.is_server_error() {
            assert!(
                status == StatusCode::SERVICE_UNAVAILABLE
                    && matches!(code, Some("mempool_full" | "busy")),
                "{route} ({content_type:?}) answered {status}: {text}"
            );
        }
    }
});
