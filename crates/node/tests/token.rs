//! Off loopback, routes that change the node need the bearer token of api.cookie; reads
//! and signed transfers stay open. (Tests bind loopback only, so the API is built here
//! with a token as `oxchain node` builds it for a non-loopback bind.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::api_only::{regtest_chain, serve_api};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oxchain_api::Cors;
use oxchain_miner::MiningMode;

#[test]
fn the_cookie_is_private_and_fresh_each_start() {
    let dir = tempfile::tempdir().unwrap();
    let (first, path) = oxchain_node::keys::write_api_cookie(dir.path()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert_eq!(first.len(), 64);
    let (second, _) = oxchain_node::keys::write_api_cookie(dir.path()).unwrap();
    assert_ne!(first, second);
    oxchain_node::keys::remove_api_cookie(dir.path()).unwrap();
    assert!(!path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_routes_need_the_token_reads_do_not() {
    let (_dir, chain) = regtest_chain();
    let token = "s3cret-token".to_string();
    let addr = serve_api(
        &chain,
        MiningMode::OnDemand,
        Some(token.clone()),
        Cors::None,
    )
    .await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let call = |method: &str, path: &str, auth: Option<&str>| {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let body = if method == "POST" {
            r#"{"sender":"alice","recipient":"bob","amount":1}"#
        } else {
            ""
        };
        client.request(req.body(Body::from(body)).unwrap())
    };
    let bearer = format!("Bearer {token}");
    for (method, path) in [
        ("GET", "/mine"),
        ("POST", "/v1/mine"),
        ("POST", "/transactions/new"),
        ("POST", "/transaction"),
    ] {
        let res = call(method, path, None).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        let res = call(method, path, Some("Bearer wrong")).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a wrong token"
        );
    }
    assert_eq!(
        call("GET", "/mine", Some(&bearer)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        call("POST", "/transactions/new", Some(&bearer))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    for path in ["/v1/status", "/chain", "/v1/blocks/1", "/metrics"] {
        assert_eq!(
            call("GET", path, None).await.unwrap().status(),
            StatusCode::OK,
            "{path} is a read"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let (_dir, chain) = regtest_chain();
    let allowed = "http://localhost:3000";
    let cors = Cors::Origins(vec![allowed.parse().unwrap()]);
    let addr = serve_api(&chain, MiningMode::Off, None, cors).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    for (origin, expect) in [(allowed, Some(allowed)), ("http://evil.example", None)] {
        let req = Request::builder()
            .uri(format!("http://{addr}/v1/status"))
            .header("origin", origin)
            .body(Body::empty())
            .unwrap();
        let res = client.request(req).await.unwrap();
        let got = res
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(got.as_deref(), expect, "origin {origin}");
    }
}
