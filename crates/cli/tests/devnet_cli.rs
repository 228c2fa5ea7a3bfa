//! `oxchain devnet` run as a user runs it: three node processes that connect and mine; a
//! transfer reaches every node; SIGINT stops them all; the same --dir restarts with the
//! balance intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn http(addr: &str, method: &str, path: &str, body: &str) -> Option<serde_json::Value> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start(dir: &std::path::Path, base: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args([
            "devnet",
            "--nodes",
            "3",
            "--base-port",
            &base.to_string(),
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The pids of the processes whose command line names `dir` (the devnet's nodes).
fn processes_using(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

fn interrupt(mut devnet: Child, apis: &[String], dir: &std::path::Path) {
    // The devnet and its three nodes.
    assert_eq!(processes_using(dir).len(), 4, "{:?}", processes_using(dir));
    let pid = devnet.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = devnet.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "devnet did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "devnet exited with {status}");
    for api in apis {
        assert!(
            std::net::TcpStream::connect(api).is_err(),
            "a node still answers on {api}"
        );
    }
    assert_eq!(
        processes_using(dir),
        Vec::<u32>::new(),
        "processes left behind"
    );
}

#[test]
fn a_three_node_devnet_mines_relays_stops_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // API ports base..base+2, p2p base+1000..: all below Linux's ephemeral range
    // (32768 and up), where an outgoing connection could already hold one.
    let base = 20_000 + (std::process::id() % 300) as u16 * 10;
    let apis: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let devnet = start(dir.path(), base);
    wait_for("three connected, mining nodes", 60, || {
        apis.iter().all(|a| {
            http(a, "GET", "/v1/status", "")
                .is_some_and(|s| s["height"].as_u64().unwrap_or(0) >= 3 && s["peers"] == 2)
        })
    });
    // Each node goes by its name, and its peers show it by that name, with the address
    // its coinbases pay (the explorer names a block's miner from it).
    let nodes: Vec<serde_json::Value> = apis
        .iter()
        .map(|a| http(a, "GET", "/v1/node", "").unwrap())
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node["name"], format!("node-{i}"), "{node}");
    }
    wait_for("every node to know its peers' names", 30, || {
        apis.iter().enumerate().all(|(i, a)| {
            let Some(peers) = http(a, "GET", "/v1/peers", "") else {
                return false;
            };
            let mut seen: Vec<(String, String)> = peers["peers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| (p["name"].to_string(), p["miner_address"].to_string()))
                .collect();
            seen.sort();
            let expected: Vec<(String, String)> = (0..3)
                .filter(|j| *j != i)
                .map(|j| {
                    (
                        nodes[j]["name"].to_string(),
                        nodes[j]["miner_address"].to_string(),
                    )
                })
                .collect();
            seen == expected
        })
    });
    // A new wallet key receives coins sent with `oxchain send`.
    let home = tempfile::tempdir().unwrap();
    let oxchain = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args(args)
            .env("OXCHAIN_PASSPHRASE", "test passphrase")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let wallet_dir = home.path().to_str().unwrap();
    oxchain(&[
        "wallet",
        "new",
        "savings",
        "--network",
        "dev",
        "--data-dir",
        wallet_dir,
    ]);
    let shown = oxchain(&[
        "wallet",
        "show",
        "savings",
        "--json",
        "--network",
        "dev",
        "--data-dir",
        wallet_dir,
    ]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let address = shown["address"].as_str().unwrap().to_string();
    let node0 = format!("http://{}", apis[0]);
    let sent = oxchain(&[
        "send",
        "--from",
        "alice",
        "--to",
        &address,
        "--amount",
        "7",
        "--node",
        &node0,
        "--data-dir",
        wallet_dir,
    ]);
    assert!(sent.contains("txid"), "{sent}");
    let balance = |api: &str, who: &str| {
        http(api, "GET", &format!("/v1/accounts/{who}"), "").and_then(|a| a["balance"].as_u64())
    };
    wait_for("every node to show the balance", 60, || {
        apis.iter()
            .all(|a| balance(a, &address) == Some(700_000_000))
    });
    // The wallet key spends: signed here, sent to another node.
    let node2 = format!("http://{}", apis[2]);
    // To a new name: the note names the address it becomes.
    let sent = oxchain(&[
        "send",
        "--from",
        "savings",
        "--to",
        "devnet-test",
        "--to-new-name",
        "--amount",
        "2.5",
        "--node",
        &node2,
        "--data-dir",
        wallet_dir,
    ]);
    let named = sent
        .split("the coins go to ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no note naming the address: {sent}"))
        .to_string();
    let left = 700_000_000 - 250_000_000 - 1_000;
    wait_for("the wallet's transfer everywhere", 60, || {
        apis.iter()
            .all(|a| balance(a, &named) == Some(250_000_000) && balance(a, &address) == Some(left))
    });
    interrupt(devnet, &apis, dir.path());
    // Gossiped transfers and blocks are published once: libp2p never warns of a second.
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.path().join(format!("node-{i}/node.log"))).unwrap();
        assert!(!log.is_empty(), "node {i} logged nothing");
        assert!(
            !log.contains("already been published"),
            "node {i} published a message twice:\n{log}"
        );
    }

    let devnet = start(dir.path(), base);
    wait_for("the restarted nodes", 60, || {
        apis.iter().all(|a| balance(a, &address) == Some(left))
    });
    interrupt(devnet, &apis, dir.path());
}

/// The banner names the nodes' log file; a devnet without `--dir` deletes it (with the
/// rest of its directory) at a clean end, and says that `--dir` keeps it.
#[test]
fn the_banner_names_the_log_files() {
    use std::io::{BufRead, BufReader};
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args([
            "devnet",
            "--nodes",
            "1",
            "--mine",
            "off",
            "--base-port",
            "25460",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(devnet.stdout.take().unwrap()).lines();
    let mut log = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("logs: ") {
            assert!(rest.contains("--dir DIR keeps them"), "{line}");
            log = rest.split(' ').next().map(std::path::PathBuf::from);
            break;
        }
    }
    let log = log.expect("a logs: line in the banner");
    assert!(log.ends_with("node-0/node.log"), "{}", log.display());
    wait_for("the node's log", 20, || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
    });
    let pid = devnet.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::spawn(move || lines.for_each(drop));
    let deadline = Instant::now() + Duration::from_secs(30);
    while devnet.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "devnet did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!log.exists(), "the temporary devnet's log was kept");
}
