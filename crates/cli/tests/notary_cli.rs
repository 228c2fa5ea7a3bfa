//! `oxchain notarize` and `oxchain verify` as a user runs them, against real regtest node
//! processes: a file recorded and verified, each tampering refused with its exit code, a
//! node serving forged headers, and a reorg that drops the recording block.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Node;
use oxchain_consensus::ChainParams;
use oxchain_consensus::validate::validate_pow;
use oxchain_primitives::Header;

fn oxchain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(args)
        .output()
        .unwrap()
}

/// What a run printed, for assertion messages.
fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> serde_json::Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn regtest_node(dir: &Path) -> Node {
    common::start_node(dir, &["--mine", "on-demand"])
}

/// `oxchain notarize FILE` against `node`, mining a block once the transfer is pending.
fn notarize(node: &str, file: &Path, wallet: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args([
            "notarize",
            file.to_str().unwrap(),
            "--label",
            "the contract, v2",
        ])
        .args(["--node", node, "--data-dir", wallet.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the transfer in the mempool", || {
        http(node, "GET", "/v1/status", "")["mempool"] == 1
    });
    http(node, "POST", "/v1/mine", r#"{"count":1}"#);
    child.wait_with_output().unwrap()
}

/// `oxchain verify` on regtest (unless `extra` names another network).
fn verify(node: &[&str], file: &Path, wallet: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        file.to_str().unwrap(),
        "--data-dir",
        wallet.to_str().unwrap(),
    ];
    if !extra.contains(&"--network") {
        args.extend(["--network", "regtest"]);
    }
    for n in node {
        args.extend(["--node", n]);
    }
    args.extend(extra);
    oxchain(&args)
}

/// A node that serves this network's genesis and then headers that link but whose hashes
/// miss their target: a forged chain with no work behind it.
fn forger() -> String {
    let params = ChainParams::regtest();
    let mut headers = vec![params.genesis().header];
    for i in 0..5u64 {
        let parent = headers.last().unwrap();
        let mut h = Header {
            prev_hash: parent.compute_hash(),
            time_ms: parent.time_ms + 1_000 * (i + 1),
            ..*parent
        };
        while validate_pow(&params, &h).is_ok() {
            h.nonce += 1;
        }
        headers.push(h);
    }
    let bytes: Vec<u8> = headers.iter().flat_map(|h| h.to_bytes()).collect();
    let status = serde_json::json!({
        "network": "regtest", "genesis": params.genesis_hash().to_string(),
    })
    .to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // The whole request (its head), before answering.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request).into_owned();
            let (kind, body) = if request.starts_with("GET /v1/headers?from=0&") {
                ("application/octet-stream", bytes.clone())
            } else if request.starts_with("GET /v1/headers") {
                ("application/octet-stream", Vec::new())
            } else {
                ("application/json", status.clone().into_bytes())
            };
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    addr
}

#[test]
fn a_notarised_file_verifies_and_every_tampering_fails_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let node = regtest_node(&dir.path().join("node"));
    let addr = node.addr.clone();
    let wallet = dir.path().join("client");
    let file = dir.path().join("contract.txt");
    std::fs::write(&file, b"We agree to the terms.\n").unwrap();

    let out = notarize(&addr, &file, &wallet);
    assert!(out.status.success(), "{}", said(&out));
    let receipt_path = dir.path().join("contract.txt.oxproof");
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&receipt_path).unwrap()).unwrap();
    assert_eq!(receipt["height"], 1);
    assert_eq!(receipt["label"], "the contract, v2");

    let out = verify(&[&addr], &file, &wallet, &[]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "verified on regtest:",
        "recorded at    height 1",
        "confirmations  1",
        "label          the contract, v2",
        "expected hashes",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // The headers are cached: the next run fetches only what is new.
    http(&addr, "POST", "/v1/mine", r#"{"count":2}"#);
    let out = verify(&[&addr], &file, &wallet, &[]);
    let text = said(&out);
    assert!(text.contains("headers: 4 checked (2 new from"), "{text}");
    assert!(text.contains("confirmations  3"), "{text}");

    // Without a receipt: the node's data index names the transfer; checked the same.
    let copy = dir.path().join("copy.txt");
    std::fs::copy(&file, &copy).unwrap();
    let out = verify(&[&addr], &copy, &wallet, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    // Each tampering, and what it is called.
    let changed = dir.path().join("changed.txt");
    std::fs::write(&changed, b"We agree to the terms!\n").unwrap();
    let receipt_arg = receipt_path.to_str().unwrap();
    let tampered = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut r = receipt.clone();
        edit(&mut r);
        let path = dir.path().join(name);
        std::fs::write(&path, r.to_string()).unwrap();
        path
    };
    let proof_step = tampered("step.oxproof", &|r| {
        let step = r["proof"]["path"][0].as_str().unwrap().to_string();
        let flipped = if step.starts_with('0') { "1" } else { "0" };
        r["proof"]["path"][0] = format!("{flipped}{}", &step[1..]).into();
    });
    let dev = ChainParams::dev().genesis_hash().to_string();
    let other_network = tampered("network.oxproof", &|r| {
        r["network"] = "dev".into();
        r["genesis"] = dev.clone().into();
    });
    let never = dir.path().join("never.txt");
    std::fs::write(&never, b"never recorded").unwrap();
    let forged = forger();
    for (what, nodes, file, extra, code, says) in [
        (
            "a changed byte",
            vec![addr.as_str()],
            &changed,
            vec!["--receipt", receipt_arg],
            4,
            "the file's SHA-256 is",
        ),
        (
            "a changed proof step",
            vec![addr.as_str()],
            &file,
            vec!["--receipt", proof_step.to_str().unwrap()],
            4,
            "merkle proof does not lead",
        ),
        (
            "another network's receipt",
            vec![addr.as_str()],
            &file,
            vec!["--receipt", other_network.to_str().unwrap()],
            4,
            "the receipt is for dev",
        ),
        (
            "a node of another network than the one asked for",
            vec![addr.as_str()],
            &copy,
            vec!["--network", "dev"],
            4,
            "not dev: set aside",
        ),
        (
            "a file never recorded",
            vec![addr.as_str()],
            &never,
            vec![],
            3,
            "not recorded",
        ),
        (
            "no node",
            vec!["127.0.0.1:1"],
            &file,
            vec![],
            5,
            "cannot reach a node at http://127.0.0.1:1",
        ),
        (
            "a forged header chain",
            vec![forged.as_str()],
            &file,
            vec![],
            4,
            "served an invalid chain: header at height 1",
        ),
    ] {
        let out = verify(&nodes, file, &wallet, &extra);
        let text = said(&out);
        assert_eq!(out.status.code(), Some(code), "{what}: {text}");
        assert!(text.contains(says), "{what}: {says:?} in {text}");
    }
    // Beside an honest node, the forger's chain is set aside.
    let out = verify(&[&forged, &addr], &file, &wallet, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("served an invalid chain"),
        "{}",
        said(&out)
    );
    // A node on a lighter branch does not take back what this client checked before:
    // the cached chain stands, and on it the record is found (its block is there).
    let lighter = regtest_node(&dir.path().join("lighter"));
    http(&lighter.addr, "POST", "/v1/mine", r#"{"count":1}"#);
    let out = verify(&[&lighter.addr], &file, &wallet, &[]);
    let text = said(&out);
    assert!(
        text.contains("the nodes serve less work (tip 1) than this client checked before (tip 3)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    lighter.interrupt();
    node.interrupt();
}

/// The recording block is dropped by a reorg: verify says so (not recorded) while the
/// transfer waits in the mempool, and finds it again once it is mined anew.
#[test]
fn after_a_reorg_drops_the_block_verify_says_so_and_finds_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let b = regtest_node(&dir.path().join("b"));
    http(&b.addr, "POST", "/v1/mine", r#"{"count":3}"#);
    let a = regtest_node(&dir.path().join("a"));
    let wallet = dir.path().join("client");
    let file = dir.path().join("deed.txt");
    std::fs::write(&file, b"a deed").unwrap();
    let out = notarize(&a.addr, &file, &wallet);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(
        verify(&[&a.addr], &file, &wallet, &[]).status.code(),
        Some(0)
    );

    // A meets B, whose chain has more work: A's block 1 is dropped.
    let b_p2p = b
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("p2p"))
        .map(|rest| rest.trim().to_string())
        .expect("a p2p line");
    http(
        &a.addr,
        "POST",
        "/v1/peers",
        &serde_json::json!({ "address": b_p2p }).to_string(),
    );
    let b_tip = http(&b.addr, "GET", "/v1/status", "")["tip"].clone();
    wait_for("A on B's chain", || {
        http(&a.addr, "GET", "/v1/status", "")["tip"] == b_tip
    });
    wait_for("the transfer back in A's mempool", || {
        http(&a.addr, "GET", "/v1/status", "")["mempool"] == 1
    });
    let out = verify(&[&a.addr], &file, &wallet, &[]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("a reorg dropped it"), "{text}");
    assert!(text.contains("not recorded"), "{text}");

    http(&a.addr, "POST", "/v1/mine", r#"{"count":1}"#);
    let out = verify(&[&a.addr], &file, &wallet, &[]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("was recorded again, at height 4"), "{text}");
    assert!(text.contains("recorded at    height 4"), "{text}");
    a.interrupt();
    b.interrupt();
}
