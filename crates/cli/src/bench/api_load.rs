//! The parts of `oxchain bench api` that load a node while it works: the tutorial's
//! `POST /transactions/new` filling the mempool step by step, and `GET /v1/status`
//! latency while the node imports full blocks from a peer, beside its idle latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Method, Request};
use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_consensus::genesis::DEV_ACCOUNTS;
use oxchain_miner::MiningMode;
use oxchain_primitives::{Address, Network};
use oxchain_storage::Store;
use serde_json::json;

use super::api::{HttpClient, send};

/// Data carried by each transfer of the imported blocks: with it, about 900 transfers
/// fill a 1 MiB block.
const IMPORT_DATA_BYTES: usize = 1_000;

/// Accepted tutorial transfers per second in each step of `step` transfers, from `conns`
/// connections, each sending as one of the five dev accounts.
pub(super) async fn tutorial_fill(
    client: &HttpClient,
    addr: SocketAddr,
    conns: usize,
    step: u64,
    steps: u64,
) -> anyhow::Result<Vec<f64>> {
    let total = steps * step;
    let accepted = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    let sink = Address([0x55; 20]).to_bech32(Network::Regtest);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (client, accepted, issued) = (client.clone(), accepted.clone(), issued.clone());
        let body = json!({"sender": DEV_ACCOUNTS[i % DEV_ACCOUNTS.len()], "recipient": sink,
                          "amount": 0.0001})
        .to_string();
        tasks.push(tokio::spawn(async move {
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                let status = send(
                    &client,
                    addr,
                    Method::POST,
                    "/transactions/new",
                    body.clone(),
                )
                .await?;
                if status != 201 {
                    bail!("POST /transactions/new answered {status}");
                }
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    // Time each step as the accepted count crosses it.
    let mut rates = Vec::new();
    let mut step_start = Instant::now();
    let mut next = step;
    while next <= total {
        if tasks.iter().all(|t| t.is_finished()) && accepted.load(Ordering::Relaxed) < next {
            break;
        }
        if accepted.load(Ordering::Relaxed) >= next {
            let now = Instant::now();
            rates.push(step as f64 / (now - step_start).as_secs_f64());
            eprintln!(
                "  {next} pending: {:.0} accepted/s in this step",
                rates.last().copied().unwrap_or(0.0)
            );
            step_start = now;
            next += step;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for task in tasks {
        task.await??;
    }
    if rates.len() as u64 != steps {
        bail!("the fill stopped after {} steps", rates.len());
    }
    Ok(rates)
}

/// `GET /v1/status` latencies, p50 and p99 in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Latency {
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) samples: usize,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1_000.0
        };
        Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            samples: samples.len(),
        }
    }
}

/// What the import phase measured.
pub(super) struct ImportFigures {
    pub(super) idle: Latency,
    pub(super) importing: Latency,
    pub(super) blocks: usize,
    pub(super) block_bytes: usize,
    pub(super) import_seconds: f64,
}

/// A fresh node, idle, then importing `count` full blocks from a peer that connects to
/// it: its `GET /v1/status` latency in both states, one request at a time.
pub(super) async fn status_while_importing(
    client: &HttpClient,
    count: usize,
    idle_for: Duration,
) -> anyhow::Result<ImportFigures> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let params = ChainParams::regtest();
    let per_block = super::import::full_block_transfers(IMPORT_DATA_BYTES);
    eprintln!(
        "building {count} full blocks ({per_block} transfers of {IMPORT_DATA_BYTES} data bytes each) ..."
    );
    let (funding, measured) = tokio::task::block_in_place(|| {
        super::import::build_blocks(&params, count, threads, per_block, IMPORT_DATA_BYTES)
    })?;
    let block_bytes = measured
        .iter()
        .map(|b| oxchain_primitives::encode(b).len())
        .max()
        .unwrap_or(0);
    let served_dir = super::import::tempdir()?;
    let server = tokio::task::block_in_place(|| -> anyhow::Result<Chain> {
        let mut server = Chain::new(
            params.clone(),
            Store::open(served_dir.path(), &params)?,
            MempoolLimits::default(),
            threads,
        )?;
        super::import::import(&mut server, &funding)?;
        super::import::import(&mut server, &measured)?;
        Ok(server)
    })?;
    let target = server.tip().height.0;

    // The measured node: a real node, alone at first.
    let node = super::api::BenchNode::start(MiningMode::Off, threads).await?;
    let (addr, p2p) = (node.api, node.p2p.clone());

    eprintln!(
        "GET /v1/status on the idle node for {} s ...",
        idle_for.as_secs()
    );
    let mut idle = Vec::new();
    let deadline = Instant::now() + idle_for;
    while Instant::now() < deadline {
        idle.push(timed_status(client, addr).await?.0);
    }

    eprintln!("the peer connects; GET /v1/status while the node imports {count} blocks ...");
    let mut config = oxchain_net::NetConfig::new(served_dir.path().to_path_buf(), "127.0.0.1:0");
    config.peers = p2p;
    let server_net = oxchain_net::service::start(config, SharedChain::new(server)).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1_800);
    let mut importing = Vec::new();
    let mut last_report = Instant::now();
    loop {
        // From the peer's connection until the node has every block.
        let (took, height) = timed_status(client, addr).await?;
        importing.push(took);
        if height >= target {
            break;
        }
        if Instant::now() > deadline {
            bail!("the import did not finish within 30 minutes (at height {height} of {target})");
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!("  height {height} of {target}");
            last_report = Instant::now();
        }
    }
    let import_seconds = started.elapsed().as_secs_f64();
    drop(server_net);
    node.stop().await?;
    Ok(ImportFigures {
        idle: Latency::of(idle),
        importing: Latency::of(importing),
        blocks: measured.len(),
        block_bytes,
        import_seconds,
    })
}

/// One `GET /v1/status`: how long it took and the height it reported.
async fn timed_status(client: &HttpClient, addr: SocketAddr) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{addr}/v1/status"))
        .body(Body::empty())?;
    let res = client.request(req).await?;
    let status = res.status();
    let body = axum::body::to_bytes(Body::new(res.into_body()), 1 << 20).await?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("GET /v1/status answered {status}");
    }
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    let height = value["height"]
        .as_u64()
        .context("GET /v1/status gave no height")?;
    Ok((took, height))
}
