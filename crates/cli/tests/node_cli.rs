//! `oxchain node` run as a user runs it: the built binary, its start-up lines, mining to
//! `--miner-address`, a clean stop on SIGINT, usage errors, settings from flags, env and
//! `oxchain.toml`, help and shell completions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Node, get, start_node};

const MINER: &str = "oxr1z266ywdyn7gz7nyezrlnaetfrqaa9533q54yl6";

#[test]
fn a_node_mines_to_the_miner_address_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let node = Node::start(
        &[
            "--network",
            "regtest",
            "--api",
            "127.0.0.1:0",
            // Not the default 6000, which another node on the machine may hold.
            "--p2p",
            "127.0.0.1:0",
            "--mine",
            "continuous",
            "--threads",
            "1",
            "--miner-address",
            MINER,
            "--data-dir",
            data_dir,
        ],
        &[],
    );
    let (banner, addr) = (&node.banner, &node.addr);
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
            serde_json::from_str(&get(addr, &format!("/v1/accounts/{MINER}"))).unwrap();
        if account["balance"].as_u64().unwrap() >= 3 * 50 * 100_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no coins reached the miner address"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // `mine --count` beside continuous mining says what it waits for.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["mine", "--count", "2", "--node", addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("the node mines continuously: waiting for the next 2 block(s) it mines")
            && err.contains("a block on this network"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("mined block")
            .count(),
        2
    );
    let (clean, stderr) = node.interrupt();
    assert!(clean, "the node did not stop cleanly: {stderr}");
    // The chain is intact: a new node opens it at the height the old one reached.
    let store =
        oxchain_storage::Store::open(dir.path(), &oxchain_consensus::ChainParams::regtest())
            .unwrap();
    assert!(store.tip().unwrap().height.0 >= 3);
}

/// With `--json`, a failure is JSON on stdout (`{"error": ...}`), exit code 1.
#[test]
fn json_errors_are_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["status", "--json", "--node", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach a node at http://127.0.0.1:1"),
        "{error}"
    );
    // Without --json, the same failure is text on stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["status", "--node", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot reach"));
}

#[test]
fn bad_node_flags_are_usage_errors_naming_the_flag() {
    for (args, names) in [
        (&["node", "--mine", "sometimes"][..], "--mine"),
        (&["node", "--network", "moon"], "--network"),
        (&["node", "--api", "nowhere"], "--api"),
        (
            &["status", "--node", "https://127.0.0.1:5000"],
            "plain HTTP",
        ),
        (&["status", "--node", "nowhere"], "HOST:PORT"),
        (
            &["send", "--from", "alice", "--to", "bob", "--amount", "-5"],
            "\"-5\" is negative",
        ),
        (
            &[
                "send", "--from", "alice", "--to", "bob", "--amount", "1", "--fee=-1",
            ],
            "\"-1\" is negative",
        ),
        (
            &["node", "--external-address", "no-port"],
            "--external-address",
        ),
        (&["node", "--name", "<b>me</b>"], "is not a node name"),
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

/// `oxchain node` on regtest with on-demand mining, in `dir`.
#[test]
fn queries_against_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]);
    let url = format!("http://{}", node.addr);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args(args)
            .args(["--node", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let mined = run(&["mine", "--count", "2"]);
    assert!(mined.contains("at height 2"), "{mined}");
    let status = run(&["status"]);
    assert!(
        status.contains("network   regtest") && status.contains("height    2"),
        "{status}"
    );
    let status: serde_json::Value = serde_json::from_str(&run(&["status", "--json"])).unwrap();
    assert_eq!(status["height"], 2);
    // HOST:PORT without http:// names the same node.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["status", "--json", "--node", &node.addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let same: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(same["height"], 2);
    let account = run(&["account", "alice"]);
    assert!(account.contains("balance  10000 coins"), "{account}");
    let block: serde_json::Value = serde_json::from_str(&run(&["block", "1", "--json"])).unwrap();
    let coinbase = block["transactions"][0]["txid"]
        .as_str()
        .unwrap()
        .to_string();
    let tx = run(&["tx", &coinbase]);
    assert!(tx.contains("confirmed") && tx.contains("coinbase"), "{tx}");
    let human = run(&["block", "2"]);
    assert!(human.contains("at height 2"), "{human}");
    // Its time in UTC and relative (mined a moment ago), not raw milliseconds.
    assert!(
        human.contains(" GMT (just now)") || human.contains(" s ago)"),
        "{human}"
    );
    // An unknown block is an error with the node's message.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["block", "99", "--node", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no block at height 99"));
    assert!(node.interrupt().0);
    // No node: a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["status", "--node", &url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach a node"));
}

/// Starts `oxchain node` with `args` and `env`, stops it with SIGINT, and returns its
/// start-up lines.
fn banner_of(args: &[&str], env: &[(&str, &str)]) -> String {
    let node = Node::start(args, env);
    let banner = node.banner.clone();
    let (clean, stderr) = node.interrupt();
    assert!(clean, "{banner}{stderr}");
    banner
}

fn mining_line(banner: &str) -> &str {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("mining"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no mining line in:\n{banner}"))
}

#[test]
fn settings_come_from_flags_then_env_then_oxchain_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("oxchain.toml"),
        "# a node's settings\napi = \"127.0.0.1:0\"\np2p = \"127.0.0.1:0\"\nmine = \"off\"\nthreads = 1\n",
    )
    .unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let base = ["--network", "regtest", "--data-dir", data_dir];
    // The file, found in the data dir.
    let banner = banner_of(&base, &[]);
    assert_eq!(mining_line(&banner), "off", "{banner}");
    assert!(banner.contains("oxchain.toml"), "{banner}");
    // OXCHAIN_* over the file.
    let banner = banner_of(&base, &[("OXCHAIN_MINE", "pool:2")]);
    assert_eq!(mining_line(&banner), "pool:2", "{banner}");
    // A flag over both.
    let mut args = base.to_vec();
    args.extend(["--mine", "continuous"]);
    let banner = banner_of(&args, &[("OXCHAIN_MINE", "pool:2")]);
    assert_eq!(mining_line(&banner), "continuous", "{banner}");
    // --config names a file anywhere; it may set the network and the data dir.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "network = \"regtest\"\ndata_dir = \"{data_dir}\"\napi = \"127.0.0.1:0\"\np2p = \"127.0.0.1:0\"\nmine = \"pool:3\"\n"
        ),
    )
    .unwrap();
    let banner = banner_of(&["--config", config.to_str().unwrap()], &[]);
    assert!(banner.contains("on regtest"), "{banner}");
    assert_eq!(mining_line(&banner), "pool:3", "{banner}");
}

#[test]
fn bad_config_files_and_env_values_are_usage_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let file = dir.path().join("oxchain.toml");
    for (contents, names) in [
        ("mine = \"sometimes\"\n", "`mine`"),
        ("threads = 0\n", "`threads`"),
        ("threads = -1\n", "`threads`"),
        // Past i64::MAX is not a TOML integer (fuzz/findings/config-crash-cc29df88).
        ("threads = 9555555555555555554\n", "invalid config file"),
        ("api = \"nowhere\"\n", "`api`"),
        ("mien = \"off\"\n", "unknown field `mien`"),
        ("mine = [\n", "invalid config file"),
        ("network = \"main\"\n", "--config"),
        ("name = \"two words\"\n", "`name`"),
    ] {
        std::fs::write(&file, contents).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args(["node", "--network", "regtest", "--data-dir", &data_dir])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{contents}: {stderr}");
        assert!(stderr.contains(names), "{contents}: {stderr}");
        assert!(stderr.contains("oxchain.toml"), "{contents}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["node", "--config", "/nonexistent/oxchain.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/oxchain.toml"));
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["node", "--data-dir", &data_dir])
        .env("OXCHAIN_THREADS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
}

/// Every command and subcommand answers `--help` with its usage, and the completion
/// scripts know every command.
#[test]
fn every_command_has_help_and_completions() {
    let oxchain = env!("CARGO_BIN_EXE_oxchain");
    let help = |path: &[&str]| {
        let out = Command::new(oxchain)
            .args(path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{path:?} --help");
        String::from_utf8(out.stdout).unwrap()
    };
    // The commands listed under "Commands:" in a help text.
    let commands = |text: &str| -> Vec<String> {
        text.split("Commands:")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| l.starts_with("  "))
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|c| *c != "help")
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let top = help(&[]);
    let names = commands(&top);
    for expected in [
        "node",
        "devnet",
        "wallet",
        "send",
        "status",
        "block",
        "tx",
        "account",
        "mine",
        "bench",
        "completions",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}:\n{top}");
    }
    let mut seen = 0;
    for name in &names {
        let text = help(&[name]);
        assert!(text.contains("Usage: oxchain"), "{name}:\n{text}");
        seen += 1;
        for sub in commands(&text) {
            let text = help(&[name, &sub]);
            assert!(text.contains("Usage: oxchain"), "{name} {sub}:\n{text}");
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} commands");
    let node = help(&["node"]);
    for flag in [
        "--network",
        "--data-dir",
        "--api",
        "--p2p",
        "--peer",
        "--mine",
        "--miner-address",
        "--threads",
        "--config",
        "OXCHAIN_NETWORK",
    ] {
        assert!(node.contains(flag), "node --help lacks {flag}");
    }
    // A flag that takes one of a few words lists them.
    for command in ["node", "devnet"] {
        let text = help(&[command]);
        for mode in ["off", "on-demand", "continuous", "pool:N"] {
            assert!(
                text.contains(mode),
                "{command} --help does not list --mine {mode}"
            );
        }
    }
    for command in [&["node"][..], &["wallet", "new"], &["wallet", "list"]] {
        assert!(
            help(command).contains("main, test, dev or regtest"),
            "{command:?} --help does not list the networks"
        );
    }
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(oxchain)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for name in &names {
            assert!(script.contains(name.as_str()), "{shell} lacks {name}");
        }
    }
}

/// List settings from the file and the environment reach the node: CORS origins from
/// `oxchain.toml`, and a comma-separated `OXCHAIN_CORS_ORIGIN` over them.
#[test]
fn list_settings_come_from_the_file_and_comma_separated_env() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("oxchain.toml"),
        "api = \"127.0.0.1:0\"\np2p = \"127.0.0.1:0\"\nthreads = 1\n\
         cors_origins = [\"http://localhost:3000\"]\n",
    )
    .unwrap();
    let data_dir = dir.path().to_str().unwrap();
    // The Access-Control-Allow-Origin a node gives a page from `origin`.
    let allowed = |env: &[(&str, &str)], origin: &str| -> Option<String> {
        let node = Node::start(&["--network", "regtest", "--data-dir", data_dir], env);
        let addr = &node.addr;
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET /v1/status HTTP/1.0\r\nHost: {addr}\r\nOrigin: {origin}\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        assert!(node.interrupt().0);
        text.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("access-control-allow-origin:")
                .map(|v| v.trim().to_string())
        })
    };
    assert_eq!(
        allowed(&[], "http://localhost:3000").as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(allowed(&[], "http://evil.example"), None);
    let env = [("OXCHAIN_CORS_ORIGIN", "http://a.example,http://b.example")];
    assert_eq!(
        allowed(&env, "http://b.example").as_deref(),
        Some("http://b.example")
    );
    assert_eq!(allowed(&env, "http://localhost:3000"), None);
}

/// The names the API answers to (ADR 0022): `api_hosts` from `oxchain.toml`, then
/// `--api-host` over it; other names are refused with 403, IP addresses always answered.
#[test]
fn the_api_answers_the_names_it_is_given() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("oxchain.toml"),
        "api = \"127.0.0.1:0\"\np2p = \"127.0.0.1:0\"\nthreads = 1\napi_hosts = [\"node.test\"]\n",
    )
    .unwrap();
    let data_dir = dir.path().to_str().unwrap();
    // The status line a node started with `args` gives each Host.
    let statuses = |args: &[&str], hosts: &[&str]| -> Vec<String> {
        let mut all = vec!["--network", "regtest", "--data-dir", data_dir];
        all.extend_from_slice(args);
        let node = Node::start(&all, &[]);
        let answers = hosts
            .iter()
            .map(|host| {
                let mut stream = std::net::TcpStream::connect(&node.addr).unwrap();
                write!(stream, "GET /v1/status HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
                let mut text = String::new();
                stream.read_to_string(&mut text).unwrap();
                text.lines().next().unwrap_or_default().to_string()
            })
            .collect();
        assert!(node.interrupt().0);
        answers
    };
    let hosts = ["node.test:5000", "other.test", "127.0.0.1:5000"];
    assert_eq!(
        statuses(&[], &hosts),
        [
            "HTTP/1.0 200 OK",
            "HTTP/1.0 403 Forbidden",
            "HTTP/1.0 200 OK"
        ]
    );
    assert_eq!(
        statuses(&["--api-host", "other.test"], &hosts),
        [
            "HTTP/1.0 403 Forbidden",
            "HTTP/1.0 200 OK",
            "HTTP/1.0 200 OK"
        ]
    );
    // Not a host name: a usage error naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["node", "--api-host", "http://node.test:5000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--api-host") && err.contains("not a host name"),
        "{err}"
    );
}

/// A wallet key records its network: `oxchain send` spends a regtest key on a regtest
/// node, and refuses a key of another network before asking for its passphrase.
#[test]
fn send_refuses_a_key_of_another_network() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let oxchain = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args(args)
            .env("OXCHAIN_PASSPHRASE", "test passphrase")
            .output()
            .unwrap()
    };
    for network in ["regtest", "dev"] {
        let out = oxchain(&[
            "wallet",
            "new",
            network,
            "--network",
            network,
            "--data-dir",
            data_dir,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shown = oxchain(&[
        "wallet",
        "show",
        "dev",
        "--network",
        "dev",
        "--data-dir",
        data_dir,
    ]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("network     dev"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let node_dir = tempfile::tempdir().unwrap();
    let node = start_node(node_dir.path(), &[]);
    let url = format!("http://{}", node.addr);
    // alice funds the regtest key; it spends on regtest.
    let send = |from: &str, to: &str, amount: &str| {
        oxchain(&[
            "send",
            "--from",
            from,
            "--to",
            to,
            "--amount",
            amount,
            "--node",
            &url,
            "--data-dir",
            data_dir,
        ])
    };
    let shown = oxchain(&[
        "wallet",
        "show",
        "regtest",
        "--json",
        "--network",
        "regtest",
        "--data-dir",
        data_dir,
    ]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["network"], "regtest");
    let address = shown["address"].as_str().unwrap().to_string();
    let out = send("alice", &address, "5");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = oxchain(&["mine", "--node", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = send("regtest", "bob", "1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The dev key on the regtest node: refused, naming both networks.
    let out = send("dev", "bob", "1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key \"dev\" signs for dev") && err.contains("not for regtest"),
        "{err}"
    );
    assert!(node.interrupt().0);
}

/// `oxchain send` on regtest: an unknown sender is said to be unknown, and a recipient
/// that is neither an address nor a dev account is refused unless `--to-new-name`.
#[test]
fn send_says_which_names_are_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]);
    let url = format!("http://{}", node.addr);
    let data_dir = dir.path().to_str().unwrap();
    let send = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args([
                "send",
                "--amount",
                "1",
                "--node",
                &url,
                "--data-dir",
                data_dir,
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = send(&["--from", "mallory", "--to", "bob"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"unknown account "mallory""#) && err.contains("alice bob charlie dave eve"),
        "{err}"
    );
    let out = send(&["--from", "alice", "--to", "bbo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"--to "bbo" is neither a regtest address nor a dev account"#)
            && err.contains("--to-new-name"),
        "{err}"
    );
    let out = send(&["--from", "alice", "--to", "bbo", "--to-new-name"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(r#"note: "bbo" is a new name: the coins go to oxr1"#),
        "{text}"
    );
    assert!(node.interrupt().0);
}

/// `oxchain send` says what it paid and where the transfer waits; `account` shows it
/// pending on both sides; `send --wait` returns once a block holds it.
#[test]
fn send_shows_the_pending_transfer_and_waits_for_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]);
    let url = format!("http://{}", node.addr);
    let oxchain = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .args(args)
            .args(["--node", &url])
            .output()
            .unwrap()
    };
    let out = oxchain(&["send", "--from", "alice", "--to", "bob", "--amount", "2"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("fee      0.00001 coins")
            && text.contains(&format!("pending: in the mempool of {url}")),
        "{text}"
    );
    let alice = String::from_utf8_lossy(&oxchain(&["account", "alice"]).stdout).into_owned();
    assert!(
        alice.contains("balance  10000 coins")
            && alice
                .contains("pending  1 sent, 0 received: 9997.99999 coins once they are in blocks")
            && alice.contains("  out 2 coins to oxr1"),
        "{alice}"
    );
    let bob = String::from_utf8_lossy(&oxchain(&["account", "bob"]).stdout).into_owned();
    assert!(
        bob.contains("pending  0 sent, 1 received: 10002 coins once they are in blocks")
            && bob.contains("  in  2 coins from oxr1"),
        "{bob}"
    );
    // --wait: the send returns once a block holds its transfer.
    let mut waiting = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args([
            "send", "--from", "alice", "--to", "bob", "--amount", "1", "--wait",
        ])
        .args(["--node", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mine once the transfer is pending; the waiting send is killed if it outlives 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut mined = false;
    while waiting.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let alice = oxchain(&["account", "alice"]);
        if !mined && String::from_utf8_lossy(&alice.stdout).contains("2 sent") {
            mined = oxchain(&["mine"]).status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = waiting.kill();
    let out = waiting.wait_with_output().unwrap();
    assert!(
        mined,
        "the --wait transfer never became pending, or mining failed"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("confirmed: block ") && text.contains("at height 1"),
        "{text}"
    );
    assert!(node.interrupt().0);
}

/// `--miner-address` also takes the name of a key in the node's wallet.
#[test]
fn the_miner_address_can_be_a_wallet_key_name() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let wallet = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .arg("wallet")
            .args(args)
            .args(["--network", "regtest", "--data-dir", data_dir])
            .env("OXCHAIN_PASSPHRASE", "test passphrase")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    wallet(&["new", "payout"]);
    let shown: serde_json::Value =
        serde_json::from_str(&wallet(&["show", "payout", "--json"])).unwrap();
    let address = shown["address"].as_str().unwrap();
    let banner = banner_of(
        &[
            "--network",
            "regtest",
            "--data-dir",
            data_dir,
            "--api",
            "127.0.0.1:0",
            "--p2p",
            "127.0.0.1:0",
            "--miner-address",
            "payout",
        ],
        &[],
    );
    assert!(
        banner.contains(&format!("miner address  {address}")),
        "{banner}"
    );
    // A name that is neither an address nor a key: a usage error naming both.
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["node", "--network", "regtest", "--data-dir", data_dir])
        .args(["--miner-address", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--miner-address") && stderr.contains("wallet"),
        "{stderr}"
    );
}

/// The node logs to stderr, filtered by RUST_LOG; stdout keeps the banner.
#[test]
fn the_node_logs_to_stderr_as_rust_log_says() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let node = Node::start(
        &[
            "--network",
            "regtest",
            "--api",
            "127.0.0.1:0",
            "--p2p",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--data-dir",
            data_dir,
        ],
        &[("RUST_LOG", "oxchain_chain=debug")],
    );
    let url = format!("http://{}", node.addr);
    let out = Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(["mine", "--node", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (clean, stderr) = node.interrupt();
    assert!(clean, "{stderr}");
    let tip = stderr
        .lines()
        .find(|l| l.contains("new tip"))
        .unwrap_or_else(|| panic!("no new-tip line in:\n{stderr}"));
    assert!(tip.contains("DEBUG") && tip.contains("height=1"), "{tip}");
    // Not a terminal: no colour codes.
    assert!(!stderr.contains('\x1b'), "{stderr}");
}
