//! `oxchain bench chain`: the tutorials' `GET /chain`, from a node process (this binary,
//! or `--binary` to measure another build on the same figures).
//!
//! - Rate: a chain of 101 blocks holding 10,000 transfers (made through
//!   `/transactions/new` and `/mine`, as the tutorials do), `GET /chain` from 8
//!   connections, beside `GET /` (the cheapest route) in the same run.
//! - Memory: stores of 1,000 and N coinbase-only blocks (N = 100,000 by default); a
//!   fresh node on each answers `GET /chain` (read to the end by 4 clients at once); the
//!   node's peak RSS growth (`VmHWM` after, less `VmRSS` before), and its ratio between
//!   the two lengths.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Method, Request};
use clap::Args;
use futures_util::StreamExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oxchain_consensus::ChainParams;
use serde_json::json;

use super::api::{HttpClient, get_rate, send};

/// Options of `bench chain`.
#[derive(Debug, Args)]
pub(crate) struct ChainArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Seconds per rate figure.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    seconds: u64,
    /// Blocks of the long store the memory figure is taken on.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..=1_000_000))]
    blocks: u64,
    /// The oxchain binary whose node is measured (default: this one).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
}

/// Blocks mined on top of genesis for the rate figure, and transfers in each.
const RATE_BLOCKS: usize = 100;
const TRANSFERS_PER_BLOCK: usize = 100;
/// Concurrent `GET /chain` clients for the rate, and for the memory figure.
const RATE_CONNECTIONS: usize = 8;
const MEMORY_CLIENTS: usize = 4;

pub(crate) fn bench_chain(args: &ChainArgs) -> anyhow::Result<()> {
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("finding the oxchain binary")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args, &binary))
}

async fn run(args: &ChainArgs, binary: &Path) -> anyhow::Result<()> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let seconds = Duration::from_secs(args.seconds);

    // Rate.
    let dir = super::import::tempdir()?;
    let node = NodeProcess::start(binary, dir.path(), "on-demand")?;
    eprintln!(
        "mining {RATE_BLOCKS} blocks of {TRANSFERS_PER_BLOCK} transfers through /transactions/new and /mine ..."
    );
    let senders = oxchain_consensus::genesis::DEV_ACCOUNTS;
    for _ in 0..RATE_BLOCKS {
        for i in 0..TRANSFERS_PER_BLOCK {
            let body = json!({
                "sender": senders[i % senders.len()],
                "recipient": senders[(i + 1) % senders.len()],
                "amount": 0.001,
            });
            let status = send(
                &client,
                node.api,
                Method::POST,
                "/transactions/new",
                body.to_string(),
            )
            .await?;
            if status != 201 {
                bail!("POST /transactions/new answered {status}");
            }
        }
        let status = send(&client, node.api, Method::GET, "/mine", String::new()).await?;
        if status != 200 {
            bail!("GET /mine answered {status}");
        }
    }
    let (bytes, _) = get_counting(&client, node.api).await?;
    eprintln!(
        "GET / and GET /chain ({} bytes), {} s each ...",
        bytes, args.seconds
    );
    let root = get_rate(&client, node.api, "/", seconds, RATE_CONNECTIONS).await?;
    let chain = get_rate(&client, node.api, "/chain", seconds, RATE_CONNECTIONS).await?;
    node.stop();
    drop(dir);

    // Memory.
    let params = ChainParams::regtest();
    let root_dir = super::import::tempdir()?;
    let mut memory = Vec::new();
    for (i, blocks) in [1_000, args.blocks].into_iter().enumerate() {
        let dir = root_dir.path().join(format!("chain-{i}"));
        eprintln!("building a store of {blocks} blocks ...");
        super::store::build_store(&dir, &params, blocks)?;
        let node = NodeProcess::start(binary, &dir, "off")?;
        let before = node.memory_kib("VmRSS")?;
        // One client, then several at once.
        let single = get_counting(&client, node.api).await?;
        let single_growth = node.memory_kib("VmHWM")?.saturating_sub(before) as f64 / 1024.0;
        let started = Instant::now();
        let mut clients = Vec::new();
        for _ in 0..MEMORY_CLIENTS {
            let (client, api) = (client.clone(), node.api);
            clients.push(tokio::spawn(
                async move { get_counting(&client, api).await },
            ));
        }
        let mut answer = single;
        for c in clients {
            answer = answer.max(c.await??);
        }
        let took = started.elapsed().as_secs_f64();
        let peak = node.memory_kib("VmHWM")?;
        node.stop();
        let growth = peak.saturating_sub(before) as f64 / 1024.0;
        eprintln!(
            "  {blocks} blocks: {} bytes in chunks of at most {} bytes; RSS {:.1} MiB before; peak growth {single_growth:.1} MiB after one client, {growth:.1} MiB after {MEMORY_CLIENTS} more at once ({took:.2} s)",
            answer.0,
            answer.1,
            before as f64 / 1024.0,
        );
        memory.push((blocks, answer.0, growth));
    }

    println!(
        "GET /chain, {} blocks holding {} transfers ({bytes} bytes): {chain:.0} req/s; GET /: {root:.0} req/s ({:.4}x)",
        RATE_BLOCKS + 1,
        RATE_BLOCKS * TRANSFERS_PER_BLOCK,
        chain / root
    );
    for (blocks, bytes, growth) in &memory {
        println!(
            "GET /chain of {blocks} blocks ({bytes} bytes, {MEMORY_CLIENTS} clients at once): peak RSS growth {growth:.1} MiB"
        );
    }
    let ratio = memory[1].2 / memory[0].2.max(0.1);
    println!(
        "peak RSS growth, {} vs 1,000 blocks: {ratio:.2}x",
        args.blocks
    );
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "chain",
                "binary": binary.display().to_string(),
                "chain_bytes": bytes,
                "chain_req_per_s": chain.round(),
                "root_req_per_s": root.round(),
                "chain_vs_root": chain / root,
                "memory_blocks": [memory[0].0, memory[1].0],
                "memory_answer_bytes": [memory[0].1, memory[1].1],
                "rss_growth_mib": [memory[0].2, memory[1].2],
                "rss_growth_ratio": ratio,
            })
        );
    }
    Ok(())
}

/// `GET /chain` read to the end: its bytes and its largest chunk.
async fn get_counting(client: &HttpClient, api: SocketAddr) -> anyhow::Result<(u64, u64)> {
    let req = Request::builder()
        .uri(format!("http://{api}/chain"))
        .body(Body::empty())?;
    let res = client.request(req).await?;
    if res.status() != 200 {
        bail!("GET /chain answered {}", res.status());
    }
    let mut body = Body::new(res.into_body()).into_data_stream();
    let (mut bytes, mut largest) = (0u64, 0u64);
    while let Some(data) = body.next().await {
        let data = data?;
        bytes += data.len() as u64;
        largest = largest.max(data.len() as u64);
    }
    Ok((bytes, largest))
}

/// `oxchain node` on regtest in a child process, its API on a free loopback port.
pub(super) struct NodeProcess {
    child: Child,
    pub(super) api: SocketAddr,
}

impl NodeProcess {
    pub(super) fn start(binary: &Path, dir: &Path, mine: &str) -> anyhow::Result<NodeProcess> {
        let mut child = Command::new(binary)
            .args(["node", "--network", "regtest", "--threads", "1"])
            .args([
                "--api",
                "127.0.0.1:0",
                "--p2p",
                "127.0.0.1:0",
                "--mine",
                mine,
            ])
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("the node's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut api = None;
        for line in lines.by_ref() {
            let line = line?;
            if let Some(rest) = line.trim().strip_prefix("API") {
                api = Some(rest.trim().trim_start_matches("http://").parse()?);
                break;
            }
        }
        // The rest of its output is read and dropped: a closed pipe would fail its prints.
        std::thread::spawn(move || lines.for_each(drop));
        match api {
            Some(api) => Ok(NodeProcess { child, api }),
            None => {
                let _ = child.kill();
                bail!("the node printed no API address")
            }
        }
    }

    /// A line of the node's `/proc/PID/status`, in KiB.
    fn memory_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in the node's /proc status"))
    }

    /// SIGINT, then up to 15 s to stop.
    pub(super) fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
