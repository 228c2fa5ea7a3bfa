//! `oxchain bench flood`: a real node, an honest peer that mines a block every 2 s, and
//! a flooder that gossips the honest tip's header with a fresh coinbase of its own, as
//! fast as it can, under a new peer id each time it is banned. Measured in one run: the
//! node's `GET /v1/status` p99 without and with the flood, how long the honest blocks
//! take to reach the node, the process's RSS before and after, and the flood's rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, SwarmBuilder, noise, tcp, yamux};
use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_consensus::validate::validate_pow;
use oxchain_miner::MiningMode;
use oxchain_net::compact::CompactBlock;
use oxchain_primitives::{Address, Block, Transaction};
use oxchain_storage::Store;
use serde_json::json;

use super::api::{BenchNode, HttpClient};

/// Options of `bench flood`.
#[derive(Debug, Args)]
pub(crate) struct FloodArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Seconds of each phase (without, then with the flood).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=600))]
    seconds: u64,
}

/// Time between the honest peer's blocks.
const BLOCK_EVERY: Duration = Duration::from_secs(2);

pub(crate) fn bench_flood(args: &FloodArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// What one phase measured.
struct Phase {
    status_p99_ms: f64,
    block_delays_ms: Vec<f64>,
}

async fn run(args: &FloodArgs) -> anyhow::Result<()> {
    let params = ChainParams::regtest();
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let node = BenchNode::start(MiningMode::Off, 1).await?;
    let target: Multiaddr = node
        .p2p
        .first()
        .context("the node has no p2p address")?
        .parse()?;

    // The honest peer, connected to the node.
    let honest_dir = super::import::tempdir()?;
    let honest = SharedChain::new(Chain::new(
        params.clone(),
        Store::open(honest_dir.path(), &params)?,
        MempoolLimits::default(),
        1,
    )?);
    let mut config = oxchain_net::NetConfig::new(honest_dir.path().to_path_buf(), "127.0.0.1:0");
    config.peers = vec![target.to_string()];
    let honest_net = oxchain_net::service::start(config, honest.clone()).await?;
    let seconds = Duration::from_secs(args.seconds);

    eprintln!(
        "without a flood: the honest peer mines every 2 s for {} s ...",
        args.seconds
    );
    let rss_before = rss_mib();
    let quiet = phase(&client, node.api, &honest, seconds).await?;

    eprintln!(
        "with a flood of junk tip headers for {} s ...",
        args.seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let identities = Arc::new(AtomicU64::new(0));
    // The flooder runs on a thread and runtime of its own, as another process would:
    // on the node's runtime its busy loop would hold one of the node's own workers.
    let flooder = {
        let (target, honest) = (target.clone(), honest.clone());
        let (stop, sent, identities) = (stop.clone(), sent.clone(), identities.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("flooder".into())
            .spawn(move || {
                runtime.block_on(flood(target, honest, stop, sent, identities));
            })?
    };
    let started = Instant::now();
    let flooded = phase(&client, node.api, &honest, seconds).await?;
    let flood_seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || flooder.join()).await;
    let rss_after = rss_mib();
    drop(honest_net);
    node.stop().await?;

    let flood_rate = sent.load(Ordering::Relaxed) as f64 / flood_seconds;
    let worst = |p: &Phase| p.block_delays_ms.iter().copied().fold(0.0, f64::max);
    println!("A node, an honest peer mining every 2 s, and a flooder (release build, one process)");
    println!(
        "{:<44} {:>9.2} ms",
        "GET /v1/status p99 without the flood", quiet.status_p99_ms
    );
    println!(
        "{:<44} {:>9.2} ms  {:.2}x",
        "GET /v1/status p99 under the flood",
        flooded.status_p99_ms,
        flooded.status_p99_ms / quiet.status_p99_ms
    );
    println!(
        "{:<44} {:>9.0} ms  ({} blocks)",
        "honest block delay, worst, without",
        worst(&quiet),
        quiet.block_delays_ms.len()
    );
    println!(
        "{:<44} {:>9.0} ms  ({} blocks)",
        "honest block delay, worst, under the flood",
        worst(&flooded),
        flooded.block_delays_ms.len()
    );
    println!(
        "{:<44} {:>9.1} MiB -> {:.1} MiB",
        "process RSS before and after", rss_before, rss_after
    );
    println!(
        "{:<44} {:>9.0} msgs/s  ({} connections tried, a new peer id each)",
        "flood rate",
        flood_rate,
        identities.load(Ordering::Relaxed)
    );
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "flood",
                "seconds": args.seconds,
                "status_p99_ms": flooded.status_p99_ms,
                "status_p99_idle_ms": quiet.status_p99_ms,
                "honest_block_delay_ms": worst(&flooded),
                "honest_block_delay_idle_ms": worst(&quiet),
                "honest_blocks": flooded.block_delays_ms.len(),
                "rss_growth_mib": rss_after - rss_before,
                "flood_msgs_per_s": flood_rate,
                "flood_identities": identities.load(Ordering::Relaxed),
            })
        );
    }
    Ok(())
}

/// The honest peer mines a block every [`BLOCK_EVERY`] while status requests go to the
/// node one at a time; each block's delay is from its connection at the honest peer to
/// the node's status showing it as the tip.
async fn phase(
    client: &HttpClient,
    api: std::net::SocketAddr,
    honest: &SharedChain,
    length: Duration,
) -> anyhow::Result<Phase> {
    let end = Instant::now() + length;
    let mut latencies = Vec::new();
    let mut delays = Vec::new();
    let mut next_block = Instant::now();
    let mut waiting: Option<(String, Instant)> = None;
    while Instant::now() < end {
        if waiting.is_none() && Instant::now() >= next_block {
            let chain = honest.clone();
            let hash = tokio::task::spawn_blocking(move || mine_one(&chain)).await??;
            waiting = Some((hash, Instant::now()));
            next_block = Instant::now() + BLOCK_EVERY;
        }
        let started = Instant::now();
        let status = super::api::get_json(client, api, "/v1/status").await?;
        latencies.push(started.elapsed());
        if let Some((hash, since)) = &waiting
            && status["tip"].as_str() == Some(hash.as_str())
        {
            delays.push(since.elapsed().as_secs_f64() * 1_000.0);
            waiting = None;
        }
    }
    latencies.sort();
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1_000.0);
    if let Some((_, since)) = waiting {
        // Not arrived by the end of the phase: count what it has waited so far.
        delays.push(since.elapsed().as_secs_f64() * 1_000.0);
    }
    Ok(Phase {
        status_p99_ms: p99,
        block_delays_ms: delays,
    })
}

/// Mines one empty block on the honest peer's tip (regtest's target is trivial).
fn mine_one(chain: &SharedChain) -> anyhow::Result<String> {
    chain.write(|c| {
        let params = c.params().clone();
        let mut block = c.block_template(Address([0xbb; 20]), super::import::now_ms())?;
        while validate_pow(&params, &block.header).is_err() {
            block.header.nonce += 1;
        }
        let hash = block.header.compute_hash();
        c.process_block(block, super::import::now_ms())?;
        Ok(hash.to_string())
    })
}

/// Gossips junk until `stop`: the honest tip's header with a coinbase paying the
/// flooder, a new amount each time (so each is a new message), under a new peer id
/// whenever the node bans the last one.
async fn flood(
    target: Multiaddr,
    honest: SharedChain,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    identities: Arc<AtomicU64>,
) {
    let genesis = ChainParams::regtest().genesis_hash().to_string();
    let topic = IdentTopic::new(format!("/oxchain/regtest/{}/blocks", &genesis[..16]));
    let mut amount = 0u64;
    let mut tip: Option<Block> = None;
    while !stop.load(Ordering::Relaxed) {
        identities.fetch_add(1, Ordering::Relaxed);
        let Ok(mut swarm) = junk_peer() else { return };
        let _ = swarm.behaviour_mut().subscribe(&topic);
        if swarm.dial(target.clone()).is_err() {
            return;
        }
        let mut ready = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if ready {
                let Some(junk) = junk_block(&honest, &mut tip, &mut amount) else {
                    return;
                };
                if swarm
                    .behaviour_mut()
                    .publish(topic.clone(), CompactBlock::full(&junk).to_bytes())
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Let the swarm work between messages; leave when the node drops us.
            let event = tokio::time::timeout(Duration::from_micros(200), swarm.select_next_some());
            match event.await {
                Ok(SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. })) => ready = true,
                Ok(
                    SwarmEvent::ConnectionClosed { .. }
                    | SwarmEvent::OutgoingConnectionError { .. },
                ) => {
                    break;
                }
                _ => {}
            }
        }
    }
}

fn junk_peer() -> anyhow::Result<libp2p::Swarm<gossipsub::Behaviour>> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .max_transmit_size(1 << 20)
        .build()
        .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
    let behaviour = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
        .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(move |_| behaviour)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// The honest tip's block with its coinbase changed: the known header over another body.
/// `tip` keeps the tip's block between calls.
fn junk_block(honest: &SharedChain, tip: &mut Option<Block>, amount: &mut u64) -> Option<Block> {
    let view = honest.view();
    let hash = view.tip().hash;
    if tip.as_ref().is_none_or(|b| b.header.compute_hash() != hash) {
        *tip = Some(view.store().block(&hash).ok()??);
    }
    let mut block = tip.clone()?;
    *amount += 1;
    if let Some(Transaction::Coinbase(c)) = block.transactions.first_mut() {
        c.to = Address([0x66; 20]);
        c.amount = oxchain_primitives::Amount::from_units(*amount);
    }
    Some(block)
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
