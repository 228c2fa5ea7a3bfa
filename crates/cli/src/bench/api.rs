//! `oxchain bench api`: requests per second against a real node on loopback, with the
//! load generator on the same machine: `GET /v1/status`, `GET /chain` on a 1,000-block
//! chain, `POST /v1/transactions` with pre-signed transfers, and the tutorial's
//! `POST /transactions/new` (the node signs) while the mempool fills from 0 to 40,000;
//! beside `GET /` (the cheapest route, the reference) measured in the same run. Then
//! `GET /v1/status` latency on a fresh node, idle and while it imports 200 full blocks
//! from a peer (`api_load.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Method, Request};
use clap::Args;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oxchain_consensus::ChainParams;
use oxchain_miner::MiningMode;
use oxchain_primitives::{Address, Amount, Network, SecretKey, Signature, Transfer, sha256};
use serde_json::json;

/// Accounts that send the pre-signed transfers.
const SENDERS: usize = 1_000;
/// Rounds of pre-signed posts, each after a round of the reference.
const POST_ROUNDS: usize = 2;

/// Options of `bench api`.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Seconds per GET figure.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    seconds: u64,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    connections: u64,
    /// Blocks mined before measuring (the chain `GET /chain` returns).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    chain_blocks: u64,
    /// Pre-signed transfers per sender (1,000 senders).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=40))]
    per_sender: u64,
    /// Tutorial transfers per step of the mempool fill.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=12_000))]
    fill_step: u64,
    /// Steps of the mempool fill (the mempool holds up to 50,000).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=4))]
    fill_steps: u64,
    /// Full (1 MiB) blocks the fresh node imports while its status latency is measured.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    import_blocks: u64,
}

pub(super) type HttpClient = Client<HttpConnector, Body>;

pub(crate) fn bench_api(args: &ApiArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// A real regtest node on 127.0.0.1 (store in a temp dir), in this process.
pub(super) struct BenchNode {
    pub(super) api: SocketAddr,
    pub(super) p2p: Vec<String>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<oxchain_node::Stopped>>,
    _dir: tempfile::TempDir,
}

impl BenchNode {
    pub(super) async fn start(mine: MiningMode, threads: usize) -> anyhow::Result<BenchNode> {
        let dir = super::import::tempdir()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(oxchain_node::run(
            oxchain_node::NodeConfig {
                network: Network::Regtest,
                data_dir: dir.path().to_path_buf(),
                api: "127.0.0.1:0".parse()?,
                mine,
                miner_address: Some(Address([0xee; 20])),
                threads,
                cors: oxchain_api::Cors::None,
                api_hosts: Vec::new(),
                p2p: "127.0.0.1:0".into(),
                peers: Vec::new(),
                external_addresses: Vec::new(),
                link_latency: Duration::ZERO,
                name: None,
            },
            async move {
                let _ = stopped.await;
            },
            move |s| {
                let _ = started_tx.send((s.api, s.p2p.clone()));
            },
        ));
        let (api, p2p) = started_rx.await.context("the node did not start")?;
        Ok(BenchNode {
            api,
            p2p,
            stop,
            task,
            _dir: dir,
        })
    }

    /// Stops the node and waits for it.
    pub(super) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

async fn run(args: &ApiArgs) -> anyhow::Result<()> {
    let node = BenchNode::start(MiningMode::OnDemand, 1).await?;
    let addr = node.api;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    eprintln!(
        "funding {SENDERS} accounts and mining a {}-block chain ...",
        args.chain_blocks
    );
    let params = ChainParams::regtest();
    let keys: Vec<SecretKey> = (0..SENDERS)
        .map(|i| SecretKey::from_seed(sha256(format!("bench api sender {i}").as_bytes())))
        .collect();
    for key in &keys {
        let to = Address::from_public_key(&key.public_key()).to_bech32(Network::Regtest);
        let body = json!({"sender": "alice", "recipient": to, "amount": 1}).to_string();
        expect(&client, addr, Method::POST, "/transactions/new", body, 201).await?;
    }
    let mut mined = 0;
    while mined < args.chain_blocks {
        let count = (args.chain_blocks - mined).min(100);
        let body = json!({ "count": count }).to_string();
        expect(&client, addr, Method::POST, "/v1/mine", body, 200).await?;
        mined += count;
    }

    eprintln!("signing {} transfers ...", SENDERS as u64 * args.per_sender);
    let genesis = params.genesis_hash();
    let sink = Address([0x77; 20]);
    // Per sender, its transfers in nonce order.
    let transfers: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            (0..args.per_sender)
                .map(|nonce| signed_body(key, sink, nonce, &genesis))
                .collect()
        })
        .collect();

    let seconds = Duration::from_secs(args.seconds);
    let conns = args.connections as usize;
    eprintln!("GET / for {} s (the reference) ...", args.seconds);
    let root = get_rate(&client, addr, "/", seconds, conns).await?;
    eprintln!("GET /v1/status for {} s ...", args.seconds);
    let status = get_rate(&client, addr, "/v1/status", seconds, conns).await?;
    eprintln!(
        "GET /chain ({} blocks) for {} s ...",
        args.chain_blocks + 1,
        args.seconds
    );
    let chain = get_rate(&client, addr, "/chain", seconds, conns.min(8)).await?;
    // Pre-signed posts in rounds (each a share of every sender's nonces, in order), each
    // after a round of the reference: the best of each side (ADR 0004).
    let rounds = POST_ROUNDS.min(args.per_sender as usize);
    let per_round = (args.per_sender as usize).div_ceil(rounds);
    let (mut root, mut post_rate, mut accepted, mut refused) = (root, 0.0f64, 0, 0);
    for round in 0..rounds {
        let share: Vec<Vec<String>> = transfers
            .iter()
            .map(|nonces| {
                nonces
                    .iter()
                    .skip(round * per_round)
                    .take(per_round)
                    .cloned()
                    .collect()
            })
            .collect();
        let count: usize = share.iter().map(Vec::len).sum();
        if count == 0 {
            break;
        }
        if round > 0 {
            eprintln!("GET / for {} s (the reference) ...", args.seconds);
            root = root.max(get_rate(&client, addr, "/", seconds, conns).await?);
        }
        eprintln!(
            "POST /v1/transactions, round {} of {rounds}: {count} transfers ...",
            round + 1
        );
        let (ok, bad, took) = post_all(&client, addr, share, conns).await?;
        post_rate = post_rate.max(ok as f64 / took);
        accepted += ok;
        refused += bad;
    }

    // The tutorial route from an empty mempool: mine what the pre-signed ones left.
    eprintln!("mining the pending transfers ...");
    while pending(&client, addr).await? > 0 {
        let body = json!({ "count": 1 }).to_string();
        expect(&client, addr, Method::POST, "/v1/mine", body, 200).await?;
    }
    eprintln!(
        "POST /transactions/new from the 5 dev accounts, filling the mempool to {} ...",
        args.fill_step * args.fill_steps
    );
    let fill =
        super::api_load::tutorial_fill(&client, addr, conns, args.fill_step, args.fill_steps)
            .await?;
    node.stop().await?;

    let imported =
        super::api_load::status_while_importing(&client, args.import_blocks as usize, seconds)
            .await?;

    let fill_total = fill.len() as f64 / fill.iter().map(|r| 1.0 / r).sum::<f64>();
    let (fill_first, fill_last) = (fill[0], fill[fill.len() - 1]);
    println!("HTTP API on 127.0.0.1, load generator in the same process, {conns} connections");
    println!("{:<40} {:>10.0} req/s", "GET / (reference)", root);
    println!(
        "{:<40} {:>10.0} req/s  {:.2}x of GET /",
        "GET /v1/status",
        status,
        status / root
    );
    println!(
        "{:<40} {:>10.0} req/s  {:.3}x of GET /",
        "GET /chain (1,001 blocks)",
        chain,
        chain / root
    );
    println!(
        "{:<40} {:>10.0} accepted/s  {:.2}x of GET / ({accepted} accepted, {refused} refused)",
        "POST /v1/transactions (pre-signed)",
        post_rate,
        post_rate / root
    );
    println!(
        "{:<40} {:>10.0} accepted/s  {:.2}x of GET /",
        "POST /transactions/new (node signs)",
        fill_total,
        fill_total / root
    );
    for (i, rate) in fill.iter().enumerate() {
        println!(
            "{:<40} {:>10.0} accepted/s",
            format!(
                "  mempool {} to {}",
                i as u64 * args.fill_step,
                (i as u64 + 1) * args.fill_step
            ),
            rate
        );
    }
    println!(
        "{:<40} {:>10.2}x",
        "  last step / first step",
        fill_last / fill_first
    );
    println!(
        "GET /v1/status latency, one request at a time, on a fresh node ({} blocks of {} bytes imported from a peer in {:.1} s):",
        imported.blocks, imported.block_bytes, imported.import_seconds
    );
    println!(
        "{:<40} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests)",
        "  idle", imported.idle.p50_ms, imported.idle.p99_ms, imported.idle.samples
    );
    println!(
        "{:<40} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests)",
        "  importing",
        imported.importing.p50_ms,
        imported.importing.p99_ms,
        imported.importing.samples
    );
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "api",
                "connections": conns,
                "root_req_per_s": root.round(),
                "status_req_per_s": status.round(),
                "chain_req_per_s": chain.round(),
                "chain_blocks": args.chain_blocks + 1,
                "transfers_accepted_per_s": post_rate.round(),
                "presigned_post_per_s": post_rate.round(),
                "presigned_vs_root": post_rate / root,
                "tutorial_post_per_s": fill_total.round(),
                "tutorial_vs_root": fill_total / root,
                "tutorial_post_first_per_s": fill_first.round(),
                "tutorial_post_last_per_s": fill_last.round(),
                "tutorial_post_steps_per_s": fill.iter().map(|r| r.round()).collect::<Vec<_>>(),
                "fill_step": args.fill_step,
                "status_p50_ms_idle": imported.idle.p50_ms,
                "status_p99_ms_idle": imported.idle.p99_ms,
                "status_p50_ms_importing": imported.importing.p50_ms,
                "status_p99_ms_importing": imported.importing.p99_ms,
                "import_blocks": imported.blocks,
                "import_block_bytes": imported.block_bytes,
                "transfers_accepted": accepted,
                "transfers_refused": refused,
                "status_vs_root": status / root,
            })
        );
    }
    if refused > 0 {
        bail!("{refused} pre-signed transfers were refused");
    }
    Ok(())
}

fn signed_body(
    key: &SecretKey,
    to: Address,
    nonce: u64,
    genesis: &oxchain_primitives::BlockHash,
) -> String {
    let mut t = Transfer {
        from: key.public_key(),
        to,
        amount: Amount::from_units(1_000),
        fee: Amount::from_units(1_000),
        nonce,
        data: Vec::new(),
        signature: Signature([0; 64]),
    };
    t.sign(key, genesis);
    json!({
        "from": hex::encode(t.from.as_bytes()),
        "to": to.to_bech32(Network::Regtest),
        "amount": 1_000,
        "fee": 1_000,
        "nonce": nonce,
        "signature": hex::encode(t.signature.as_bytes()),
    })
    .to_string()
}

/// A GET's answer as JSON.
pub(super) async fn get_json(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    let req = Request::builder()
        .uri(format!("http://{addr}{path}"))
        .body(Body::empty())?;
    let res = client.request(req).await?;
    let body = axum::body::to_bytes(Body::new(res.into_body()), 1 << 20).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Transfers pending in the node's mempool.
async fn pending(client: &HttpClient, addr: SocketAddr) -> anyhow::Result<u64> {
    get_json(client, addr, "/v1/mempool?limit=1").await?["count"]
        .as_u64()
        .context("GET /v1/mempool gave no count")
}

pub(super) async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: String,
) -> anyhow::Result<u16> {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Body::from(body))?;
    let res = client.request(req).await?;
    let status = res.status().as_u16();
    // Read the whole answer, as a client does.
    axum::body::to_bytes(Body::new(res.into_body()), 64 << 20).await?;
    Ok(status)
}

async fn expect(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: String,
    status: u16,
) -> anyhow::Result<()> {
    let got = send(client, addr, method, path, body).await?;
    if got != status {
        bail!("{path} answered {got}, expected {status}");
    }
    Ok(())
}

/// Successful GETs per second over `duration`, from `conns` concurrent clients.
pub(super) async fn get_rate(
    client: &HttpClient,
    addr: SocketAddr,
    path: &'static str,
    duration: Duration,
    conns: usize,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, done) = (client.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let status = send(&client, addr, Method::GET, path, String::new()).await?;
                if status != 200 {
                    bail!("GET {path} answered {status}");
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Posts every transfer (each sender's in nonce order, senders spread over the
/// connections); returns accepted, refused and seconds taken.
async fn post_all(
    client: &HttpClient,
    addr: SocketAddr,
    transfers: Vec<Vec<String>>,
    conns: usize,
) -> anyhow::Result<(u64, u64, f64)> {
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut shares: Vec<Vec<Vec<String>>> = (0..conns).map(|_| Vec::new()).collect();
    for (i, sender) in transfers.into_iter().enumerate() {
        shares[i % conns].push(sender);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        let (client, accepted, refused) = (client.clone(), accepted.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let rounds = share.iter().map(Vec::len).max().unwrap_or(0);
            for round in 0..rounds {
                for sender in &share {
                    if let Some(body) = sender.get(round) {
                        match send(
                            &client,
                            addr,
                            Method::POST,
                            "/v1/transactions",
                            body.clone(),
                        )
                        .await?
                        {
                            202 => accepted.fetch_add(1, Ordering::Relaxed),
                            _ => refused.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        seconds,
    ))
}
