//! Web pages cannot drive a node on loopback (ADR 0022): a Host the node does not answer
//! to is refused (DNS rebinding), and requests a browser marks as coming from another
//! site cannot change the node (CSRF). The same requests from curl and from the node's
//! own pages go through. The attacks are sent with the headers a browser sends; the
//! browser test below makes a real Chromium send them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::TestNode;
use oxchain_miner::MiningMode;

const TRANSFER: &str = r#"{"sender": "alice", "recipient": "bob", "amount": 1}"#;

/// What a page of `http://evil.example` sends with a `fetch(..., {mode: "no-cors"})`
/// or a form (a "simple" request: no preflight).
const EVIL_FETCH: &[(&str, &str)] = &[
    ("origin", "http://evil.example"),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "no-cors"),
    ("content-type", "text/plain;charset=UTF-8"),
];

/// What `<img src="http://127.0.0.1:5000/mine">` on another site sends: no Origin.
const EVIL_IMG: &[(&str, &str)] = &[
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "no-cors"),
    ("sec-fetch-dest", "image"),
];

/// A request: method, path, headers, body.
type Attack<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_sites_cannot_change_the_node() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let before = node.state().await;
    // Where the page would have the node dial: the node never connects, since the
    // routes that dial answer only after dialling.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let add_peer = format!(r#"{{"address": "http://127.0.0.1:{trap_port}"}}"#);
    let register = format!(r#"{{"nodes": ["http://127.0.0.1:{trap_port}"]}}"#);
    let callback = format!(r#"{{"host": "127.0.0.1", "port": {trap_port}}}"#);
    let cases: [Attack; 8] = [
        (Method::POST, "/transactions/new", EVIL_FETCH, TRANSFER),
        (Method::POST, "/transaction", EVIL_FETCH, TRANSFER),
        (Method::GET, "/mine", EVIL_IMG, ""),
        (Method::POST, "/v1/mine", EVIL_FETCH, ""),
        (Method::POST, "/v1/peers", EVIL_FETCH, &add_peer),
        (Method::POST, "/nodes/register", EVIL_FETCH, &register),
        (Method::POST, "/nodes", EVIL_FETCH, &callback),
        (Method::GET, "/nodes/resolve", EVIL_IMG, ""),
    ];
    for (method, path, headers, body) in cases {
        let (status, answer) = node
            .request(method.clone(), path, headers, body.to_string())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "cross_site", "{method} {path}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("--cors-origin"), "{message}");
    }
    // A page whose origin is "null" (a sandboxed frame, a data: URL) is another site too.
    let (status, _) = node
        .request(
            Method::POST,
            "/transactions/new",
            &[("origin", "null"), ("content-type", "text/plain")],
            TRANSFER,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing was signed, mined or dialled.
    assert_eq!(node.state().await, before);
    assert_eq!(
        trap.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "a refused page made the node dial"
    );
    // The events WebSocket: CORS does not cover it, this does.
    let (status, answer) = node
        .request(
            Method::GET,
            "/v1/events",
            &[
                ("origin", "http://evil.example"),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    // The same requests without a browser's headers (curl, the CLI, scripts) go through,
    // text/plain included, as do the node's own pages and a typed-in address.
    let own = format!("http://{}", node.addr);
    let (status, answer) = node
        .request(
            Method::POST,
            "/transactions/new",
            &[("content-type", "text/plain")],
            TRANSFER,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = node
        .request(
            Method::POST,
            "/transactions/new",
            &[
                ("origin", own.as_str()),
                ("sec-fetch-site", "same-origin"),
                ("content-type", "application/json"),
            ],
            TRANSFER,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "own page: {answer}");
    let (status, answer) = node
        .request(
            Method::GET,
            "/mine",
            &[("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "typed-in /mine: {answer}");
    assert_eq!(node.state().await, (before.0 + 1, 0));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_names_the_node_is_reached_by_are_answered() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let port = node.addr.port();
    // A DNS-rebinding page reads under its own name: refused on every route.
    for path in ["/chain", "/v1/status", "/explorer/", "/no-such-route"] {
        let host = format!("evil.example:{port}");
        let (status, answer) = node
            .request(Method::GET, path, &[("host", host.as_str())], "")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["code"], "host_not_allowed", "{path}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("--api-host evil.example"),
            "{answer}"
        );
    }
    // IP literals and localhost have no name to rebind.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "10.1.0.1:5000".to_string(),
    ] {
        let (status, answer) = node
            .request(Method::GET, "/v1/status", &[("host", host.as_str())], "")
            .await;
        assert_eq!(status, StatusCode::OK, "{host}: {answer}");
    }
    node.stop().await;
}

/// The real curl, as the tutorials and the README use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_drives_the_node_as_before() {
    let node = TestNode::start(MiningMode::OnDemand).await;
    let url = format!("http://{}", node.addr);
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ])
            .args(args)
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let new = format!("{url}/transactions/new");
    let mine = format!("{url}/mine");
    let (new, mine) = tokio::task::spawn_blocking(move || {
        (curl(&["-X", "POST", "-d", TRANSFER, &new]), curl(&[&mine]))
    })
    .await
    .unwrap();
    assert_eq!((new.as_str(), mine.as_str()), ("201", "200"));
    assert_eq!(node.state().await, (1, 0));
    node.stop().await;
}

/// A real Chromium on another site's page (`ui/tests/cross_site.mjs`): its simple
/// requests, form, image and WebSocket are refused, a rebound name is refused, and the
/// node's own page and a typed-in `/mine` still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_on_another_site_cannot_drive_the_node() {
    common::browser::assert_installed();
    let node = TestNode::start(MiningMode::OnDemand).await;
    let url = format!("http://{}", node.addr);
    let deadline = std::time::Duration::from_secs(60);
    let (code, output) =
        common::browser::run_script("cross_site.mjs", &[("OXCHAIN_URL", url)], deadline).await;
    println!("{output}");
    node.stop().await;
    assert_eq!(
        code,
        Some(0),
        "the browser checks failed (None: killed after {deadline:?}):\n{output}"
    );
}
