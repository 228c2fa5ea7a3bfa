//! `oxchain status | block ID | tx TXID | account ADDRESS | mine [--count N]` against a
//! node's API (`--node URL`, default http://127.0.0.1:5000): human-readable by default,
//! the API's JSON with `--json`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the node is, and the output form.
#[derive(Debug, Args)]
pub(crate) struct NodeOpts {
    /// The node's API: http://HOST:PORT or HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:5000", value_parser = parse_node)]
    node: String,
    /// Print the API's JSON answer.
    #[arg(long)]
    json: bool,
}

/// A question to a node.
#[derive(Debug, Subcommand)]
pub(crate) enum Query {
    /// The node at a glance: network, height, tip, peers, mempool, mining.
    Status {
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// A block by height or hash.
    Block {
        /// A height, or a block hash.
        id: String,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// A transaction by txid.
    Tx {
        /// The txid (64 hex digits).
        txid: String,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// An account's balance and nonce (a dev account name on dev and regtest).
    Account {
        /// An address, or a dev account name.
        address: String,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Mine blocks now on the node.
    Mine {
        /// How many blocks.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
        count: u64,
        #[command(flatten)]
        opts: NodeOpts,
    },
}

/// A block time for people: UTC and how long ago, as
/// `Thu, 03 Dec 2026 09:19:18 GMT (5 min ago)`.
pub(crate) fn human_time(ms: u64) -> String {
    // HTTP dates stop at the year 9999; a time past it is shown as it is.
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    if ms >= YEAR_10000_MS {
        return format!("{ms} ms after 1970");
    }
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    let (secs, when) = match std::time::SystemTime::now().duration_since(at) {
        Ok(ago) => (ago.as_secs(), "ago"),
        Err(ahead) => (ahead.duration().as_secs(), "ahead"),
    };
    let span = match secs {
        // Within a second either way (a block may be dated a little ahead).
        0 => return format!("{} (just now)", httpdate::fmt_http_date(at)),
        1..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    };
    format!("{} ({span} {when})", httpdate::fmt_http_date(at))
}

/// A node's API address as `http://HOST:PORT`, from that or from `HOST:PORT`.
pub(crate) fn parse_node(text: &str) -> Result<String, String> {
    let host = text.trim_end_matches('/');
    let host = host.strip_prefix("http://").unwrap_or(host);
    if text.starts_with("https://") {
        return Err(format!(
            "{text:?}: the node's API speaks plain HTTP; give http://HOST:PORT or HOST:PORT"
        ));
    }
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty() && !name.contains('/') && port.parse::<u16>().is_ok() =>
        {
            Ok(format!("http://{host}"))
        }
        _ => Err(format!(
            "{text:?} is not a node's API address: give HOST:PORT or http://HOST:PORT, \
             such as 127.0.0.1:5000"
        )),
    }
}

/// No node answered at an address: the connection itself failed.
#[derive(Debug)]
pub(crate) struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot reach a node at {}: is it running? (`oxchain node` or `oxchain devnet`)",
            self.0
        )
    }
}

impl std::error::Error for Unreachable {}

/// The most an answer may hold.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Sends one request with this `Accept`; returns the status code, the head and the body.
fn exchange(
    node: &str,
    method: &str,
    path: &str,
    accept: &str,
    body: &str,
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let host = node
        .trim_end_matches('/')
        .strip_prefix("http://")
        .with_context(|| format!("--node {node:?} must be an http:// URL"))?;
    // A node that does not accept within 10 s, or sends more than 64 MiB, or takes
    // longer than 10 minutes in all (`mine --count` waits for blocks), is given up on.
    let unreachable = || anyhow::Error::new(Unreachable(node.to_string()));
    let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|_| unreachable())?
        .collect();
    let mut stream = addrs
        .iter()
        .find_map(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(10)).ok())
        .ok_or_else(unreachable)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    // One write: the request goes out whole.
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: {accept}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending to {node}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            bail!("{node} took over 10 minutes to answer {path}");
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream
            .read(&mut buf)
            .with_context(|| format!("reading the answer of {node}"))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.len() > MAX_ANSWER_BYTES {
            bail!(
                "{node} sent more than {} MiB for {path}",
                MAX_ANSWER_BYTES >> 20
            );
        }
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the node's answer is not HTTP")?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the node's answer has no status")?;
    Ok((status, head, answer[split + 4..].to_vec()))
}

/// Sends one request; returns the status code and the JSON body.
pub(crate) fn call(
    node: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    let (status, _, body) = exchange(node, method, path, "application/json", body)?;
    let json = serde_json::from_slice(&body)
        .with_context(|| format!("the node answered {status} without JSON"))?;
    Ok((status, json))
}

/// GETs `path` as bytes (`Accept: application/octet-stream`); returns the status and the
/// body.
pub(crate) fn get_bytes(node: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let (status, _, body) = exchange(node, "GET", path, "application/octet-stream", "")?;
    Ok((status, body))
}

fn units(v: &Value) -> String {
    v.as_u64()
        .map(|u| oxchain_primitives::Amount::from_units(u).to_string())
        .unwrap_or_else(|| v.to_string())
}

pub(crate) fn run(query: Query) -> anyhow::Result<()> {
    let path_id = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let (opts, method, path, body) = match &query {
        Query::Status { opts } => (opts, "GET", "/v1/status".to_string(), String::new()),
        Query::Block { id, opts } if path_id(id) => {
            (opts, "GET", format!("/v1/blocks/{id}"), String::new())
        }
        Query::Tx { txid, opts } if path_id(txid) => (
            opts,
            "GET",
            format!("/v1/transactions/{txid}"),
            String::new(),
        ),
        Query::Account { address, opts } if path_id(address) => (
            opts,
            "GET",
            format!("/v1/accounts/{address}"),
            String::new(),
        ),
        Query::Mine { count, opts } => (
            opts,
            "POST",
            "/v1/mine".to_string(),
            format!("{{\"count\":{count}}}"),
        ),
        _ => bail!("the argument may only hold letters, digits, '-' and '_'"),
    };
    let progress = match &query {
        Query::Mine { count, opts } if !opts.json => Some(MineProgress::start(&opts.node, *count)?),
        _ => None,
    };
    let answer = call(&opts.node, method, &path, &body);
    if let Some(progress) = progress {
        progress.stop();
    }
    let (status, v) = answer?;
    if !(200..300).contains(&status) {
        bail!(
            "{}",
            v["message"]
                .as_str()
                .unwrap_or("the node refused the request")
        );
    }
    if opts.json {
        println!("{v}");
        return Ok(());
    }
    match query {
        Query::Status { .. } => {
            println!("network   {}", v["network"].as_str().unwrap_or("?"));
            println!("height    {}", v["height"]);
            println!("tip       {}", v["tip"].as_str().unwrap_or("?"));
            println!("peers     {}{}", v["peers"], sync_note(&v));
            println!("mempool   {} transfers", v["mempool"]);
            println!(
                "mining    {} at {:.2} MH/s",
                v["mining"]["mode"].as_str().unwrap_or("?"),
                v["mining"]["hashes_per_s"].as_f64().unwrap_or(0.0) / 1e6
            );
        }
        Query::Block { .. } => {
            println!(
                "block {} at height {}",
                v["hash"].as_str().unwrap_or("?"),
                v["height"]
            );
            println!("  parent   {}", v["prev_hash"].as_str().unwrap_or("?"));
            println!(
                "  time     {}, {} confirmations{}",
                v["time_ms"].as_u64().map_or("?".into(), human_time),
                v["confirmations"],
                if v["best_chain"] == true {
                    ""
                } else {
                    " (side chain)"
                }
            );
            println!(
                "  size     {} bytes, {} transactions",
                v["size"], v["tx_count"]
            );
            for tx in v["transactions"].as_array().into_iter().flatten() {
                println!(
                    "  {}  {} -> {}  {} (fee {})",
                    tx["txid"].as_str().unwrap_or("?"),
                    tx["from"].as_str().unwrap_or("coinbase"),
                    tx["to"].as_str().unwrap_or("?"),
                    units(&tx["amount"]),
                    units(&tx["fee"])
                );
            }
        }
        Query::Tx { .. } => {
            let tx = &v["transaction"];
            println!(
                "transfer {} ({})",
                tx["txid"].as_str().unwrap_or("?"),
                v["status"].as_str().unwrap_or("?")
            );
            if v["status"] == "confirmed" {
                println!(
                    "  block    {} at height {}, {} confirmations",
                    v["block"].as_str().unwrap_or("?"),
                    v["height"],
                    v["confirmations"]
                );
            }
            println!("  from     {}", tx["from"].as_str().unwrap_or("coinbase"));
            println!("  to       {}", tx["to"].as_str().unwrap_or("?"));
            println!(
                "  amount   {} coins, fee {}",
                units(&tx["amount"]),
                units(&tx["fee"])
            );
        }
        Query::Account { .. } => {
            println!("account  {}", v["address"].as_str().unwrap_or("?"));
            println!(
                "balance  {} coins",
                v["balance_coins"].as_str().unwrap_or("?")
            );
            let pending = &v["pending"];
            let (sent, received) = (
                pending["sent_count"].as_u64().unwrap_or(0),
                pending["received_count"].as_u64().unwrap_or(0),
            );
            if sent + received > 0 {
                println!(
                    "pending  {sent} sent, {received} received: {} coins once they are in blocks",
                    pending["balance_after_coins"].as_str().unwrap_or("?")
                );
                let lines = |side: &str, word: &str, dir: &str| {
                    for t in pending[side].as_array().into_iter().flatten() {
                        println!(
                            "  {word} {} coins {dir} {} (fee {}, nonce {}) txid {}",
                            units(&t["amount"]),
                            t["counterparty"].as_str().unwrap_or("?"),
                            units(&t["fee"]),
                            t["nonce"],
                            t["txid"].as_str().unwrap_or("?")
                        );
                    }
                };
                lines("sent", "out", "to");
                lines("received", "in ", "from");
            }
            println!("nonce    {} (next {})", v["nonce"], v["next_nonce"]);
        }
        Query::Mine { .. } => {
            for b in v["blocks"].as_array().into_iter().flatten() {
                println!(
                    "mined block {} at height {}",
                    b["hash"].as_str().unwrap_or("?"),
                    b["height"]
                );
            }
        }
    }
    Ok(())
}

/// What `mine --count N` waits for, said before it waits, and its progress while it does:
/// a node that mines continuously mines the blocks at the network's difficulty, so N
/// blocks take about N block times.
struct MineProgress {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MineProgress {
    fn start(node: &str, count: u64) -> anyhow::Result<MineProgress> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let (status, v) = call(node, "GET", "/v1/status", "")?;
        let mode = v["mining"]["mode"].as_str().unwrap_or("");
        if status != 200 || mode == "on-demand" || mode == "off" {
            // On demand the blocks come at once (or mining is off, and the node says so).
            return Ok(MineProgress { done, thread: None });
        }
        let start = v["height"].as_u64().unwrap_or(0);
        let seconds = v["network"]
            .as_str()
            .and_then(|n| n.parse::<oxchain_primitives::Network>().ok())
            .map(|n| oxchain_consensus::ChainParams::for_network(n).target_block_time_ms / 1000)
            .unwrap_or(0);
        let how = match mode {
            "continuous" => "continuously".to_string(),
            other => format!("when transfers wait ({other})"),
        };
        eprintln!(
            "the node mines {how}: waiting for the next {count} block(s) it mines, at the \
             network's difficulty (about {seconds} s a block on this network). Ctrl-C stops \
             waiting."
        );
        let (node, flag) = (node.to_string(), done.clone());
        let thread = std::thread::spawn(move || {
            use std::io::{IsTerminal, Write};
            let terminal = std::io::stderr().is_terminal();
            let started = std::time::Instant::now();
            let mut last = std::time::Instant::now();
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(500));
                let height = call(&node, "GET", "/v1/status", "")
                    .ok()
                    .and_then(|(_, v)| v["height"].as_u64())
                    .unwrap_or(start);
                let line = format!(
                    "height {height} ({} new), {:.0} s",
                    height.saturating_sub(start),
                    started.elapsed().as_secs_f64()
                );
                if terminal && !flag.load(Ordering::SeqCst) {
                    eprint!("\r\x1b[2K{line}");
                    let _ = std::io::stderr().flush();
                } else if last.elapsed().as_secs() >= 10 {
                    eprintln!("{line}");
                    last = std::time::Instant::now();
                }
            }
            if terminal {
                eprint!("\r\x1b[2K");
            }
        });
        Ok(MineProgress {
            done,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// " (syncing: 1200 of 2000)" while a node syncs, else nothing.
pub(crate) fn sync_note(status: &Value) -> String {
    match (
        status["sync"]["height"].as_u64(),
        status["sync"]["target"].as_u64(),
    ) {
        (Some(height), Some(target)) => format!(" (syncing: {height} of {target})"),
        _ if status["syncing"] == true => " (syncing)".to_string(),
        _ => String::new(),
    }
}
