//! `oxchain node` run as a user runs it: the built binary, its start-up lines, mining to
//! `--miner-address`, a clean stop on SIGINT, and usage errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MINER: &str = "oxr1z266ywdyn7gz7nyezrlnaetfrqaa9533q54yl6";

fn get(addr: &str, path: &str) -> String {
    // A minimal HTTP/1.0 GET: the test needs nothing more.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[test]
fn a_node_mines_to_the_miner_address_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args([
            "node",
            "--network",
            "regtest",
            "--api",
            "127.0.0.1:0",
            "--mine",
            "continuous",
            "--threads",
            "1",
        ])
        .args(["--miner-address", MINER, "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.trim().strip_prefix("API") {
            addr = Some(rest.trim().trim_start_matches("http://").to_string());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no API line in:\n{banner}"));
    for expected in [
        "regtest",
        "data dir",
        "miner address  oxr1z266",
        "continuous",
    ] {
        assert!(
            banner.contains(expected),
            "banner lacks {expected:?}:\n{banner}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let account: serde_json::Value =
            serde_json::from_str(&get(&addr, &format!("/v1/accounts/{MINER}"))).unwrap();
        if account["balance"].as_u64().unwrap() >= 3 * 50 * 100_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no coins reached the miner address"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGINT, as Ctrl-C sends.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not stop within 10 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    // The chain is intact: a new node opens it at the height the old one reached.
    let store =
        oxchain_storage::Store::open(dir.path(), &oxchain_consensus::ChainParams::regtest())
            .unwrap();
    assert!(store.tip().unwrap().height.0 >= 3);
}

#[test]
fn bad_node_flags_are_usage_errors_naming_the_flag() {
    for (args, names) in [
        (&["node", "--mine", "sometimes"][..], "--mine"),
        (&["node", "--network", "moon"], "--network"),
        (&["node", "--api", "nowhere"], "--api"),
        (
            &[
                "node",
                "--network",
                "regtest",
                "--miner-address",
                "oxd1qqqq",
            ],
            "--miner-address",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
