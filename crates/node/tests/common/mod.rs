//! A real node (store in a temp dir, miner, HTTP API on 127.0.0.1:0) and a small HTTP
//! client, for the API tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod api_only;
pub(crate) mod browser;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oxchain_miner::MiningMode;
use oxchain_node::{NodeConfig, Started};
use oxchain_primitives::Network;
use serde_json::Value;

pub(crate) struct TestNode {
    pub(crate) addr: SocketAddr,
    pub(crate) started: Started,
    client: Client<HttpConnector, Body>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<oxchain_node::Stopped>>>,
    pub(crate) dir: tempfile::TempDir,
}

impl TestNode {
    pub(crate) async fn start(mine: MiningMode) -> TestNode {
        TestNode::start_in(tempfile::tempdir().unwrap(), mine).await
    }

    /// A node started with `--name NAME`.
    pub(crate) async fn start_named(mine: MiningMode, name: &str) -> TestNode {
        TestNode::start_with(tempfile::tempdir().unwrap(), mine, Some(name.into())).await
    }

    /// A node on an existing data directory (a restart).
    pub(crate) async fn start_in(dir: tempfile::TempDir, mine: MiningMode) -> TestNode {
        TestNode::start_with(dir, mine, None).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        mine: MiningMode,
        name: Option<String>,
    ) -> TestNode {
        let config = NodeConfig {
            network: Network::Regtest,
            data_dir: dir.path().to_path_buf(),
            api: "127.0.0.1:0".parse().unwrap(),
            mine,
            miner_address: None,
            threads: 1,
            cors: oxchain_api::Cors::None,
            api_hosts: Vec::new(),
            p2p: "127.0.0.1:0".into(),
            peers: Vec::new(),
            external_addresses: Vec::new(),
            link_latency: std::time::Duration::ZERO,
            name,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(oxchain_node::run(
            config,
            async move {
                let _ = stopped.await;
            },
            move |s| {
                let _ = started_tx.send(s.clone());
            },
        ));
        let Ok(started) = started_rx.await else {
            let result = task.await;
            panic!("the node did not start: {result:?}");
        };
        TestNode {
            addr: started.api,
            started,
            client: Client::builder(TokioExecutor::new()).build_http(),
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    pub(crate) async fn stop(self) {
        self.stop_keeping_dir().await;
    }

    /// Stops the node; returns its data directory (for a restart) and what it said.
    pub(crate) async fn stop_keeping_dir(
        mut self,
    ) -> (tempfile::TempDir, Option<oxchain_node::Stopped>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = match self.task.take() {
            Some(task) => Some(task.await.unwrap().unwrap()),
            None => None,
        };
        (self.dir, stopped)
    }

    /// Sends a request; returns the status and the body as JSON (or as a JSON string
    /// when it is not JSON).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let headers: Vec<_> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        self.request(method, path, &headers, body).await
    }

    /// Sends a request with these headers (a `host` among them replaces the address);
    /// returns the status and the body as [`TestNode::send`] does.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.addr, path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = self
            .client
            .request(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(Body::new(res.into_body()), 64 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None, Body::empty()).await
    }

    /// GETs with this `Accept`; returns the status, the headers and the body's bytes.
    pub(crate) async fn get_bytes(
        &self,
        path: &str,
        accept: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let req = Request::builder()
            .uri(format!("http://{}{}", self.addr, path))
            .header("accept", accept)
            .body(Body::empty())
            .unwrap();
        let res = self.client.request(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), 64 << 20)
            .await
            .unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    /// GETs as a browser does (`Accept: text/html`); returns the status, the headers
    /// and the body.
    pub(crate) async fn get_as_browser(
        &self,
        path: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let req = Request::builder()
            .uri(format!("http://{}{}", self.addr, path))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .body(Body::empty())
            .unwrap();
        let res = self.client.request(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), 16 << 20)
            .await
            .unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// POSTs like `curl -d`, which labels every body as a form.
    pub(crate) async fn curl_d(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            path,
            Some("application/x-www-form-urlencoded"),
            body.to_string(),
        )
        .await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// Height and mempool count: what bad input must leave alone.
    pub(crate) async fn state(&self) -> (u64, u64) {
        let (_, s) = self.get("/v1/status").await;
        (
            s["height"].as_u64().unwrap(),
            s["mempool"].as_u64().unwrap(),
        )
    }
}

/// Waits up to 20 s for `done`, checking every 100 ms; fails the test naming `what`.
pub(crate) async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
