//! The lab's observer: runs inside the bridge's namespace, talks to every node's API
//! (plain HTTP/1.0, and each node's `/v1/events` WebSocket for the moment each block
//! connects there), drives the scenario and computes its figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to run.
pub(crate) struct Plan {
    /// Each node's API, `IP:PORT`.
    pub(crate) apis: Vec<String>,
    /// Each node's data directory: off loopback, its API wants the bearer token the
    /// node writes there (`api.cookie`) for mining.
    pub(crate) dirs: Vec<std::path::PathBuf>,
    pub(crate) blocks: usize,
    pub(crate) miners: usize,
    /// Each link's one-way delay and each node's sending rate, for the floor.
    pub(crate) latency_ms: f64,
    pub(crate) mbit: f64,
    /// Fill each block with about this many bytes of transfers, gossiped to every
    /// node's mempool before the block is mined (0: empty blocks).
    pub(crate) block_bytes: usize,
}

/// A transfer with the most data a transfer may carry: about 1,170 bytes encoded.
const FILL_DATA: usize = oxchain_primitives::limits::MAX_TX_DATA_BYTES;
const FILL_TX_BYTES: usize = FILL_DATA + 150;

/// Signs transfers from the dev accounts, each account's nonces in order.
struct Filler {
    keys: Vec<oxchain_primitives::SecretKey>,
    nonces: Vec<u64>,
    genesis: oxchain_primitives::BlockHash,
    next: usize,
}

impl Filler {
    fn new() -> Filler {
        let names = oxchain_consensus::genesis::DEV_ACCOUNTS;
        Filler {
            keys: names
                .iter()
                .map(|n| oxchain_consensus::genesis::dev_account_key(n))
                .collect(),
            nonces: vec![0; names.len()],
            genesis: oxchain_consensus::ChainParams::regtest().genesis_hash(),
            next: 0,
        }
    }

    /// The body of `POST /v1/transactions` for the next transfer.
    fn next_body(&mut self) -> String {
        use oxchain_primitives::{Amount, Network, Signature, Transfer};
        let i = self.next % self.keys.len();
        self.next += 1;
        let key = &self.keys[i];
        let to = oxchain_consensus::genesis::dev_account_address("eve");
        let nonce = self.nonces[i];
        self.nonces[i] += 1;
        let data = vec![(self.next % 251) as u8; FILL_DATA];
        let mut t = Transfer {
            from: key.public_key(),
            to,
            amount: Amount::from_units(1_000),
            fee: Amount::from_units(2 * FILL_TX_BYTES as u64),
            nonce,
            data,
            signature: Signature([0; 64]),
        };
        t.sign(key, &self.genesis);
        json!({
            "from": hex::encode(t.from.as_bytes()),
            "to": to.to_bech32(Network::Regtest),
            "amount": t.amount.units(),
            "fee": t.fee.units(),
            "nonce": nonce,
            "data": hex::encode(&t.data),
            "signature": hex::encode(t.signature.as_bytes()),
        })
        .to_string()
    }
}

/// When each node connected each block (by hash).
type Arrivals = Arc<Mutex<HashMap<String, Vec<(usize, Instant)>>>>;

/// The figures of a propagation run.
pub(crate) struct Report {
    nodes: usize,
    discovery_s: f64,
    /// The peers every node had to reach: 6, or all the others in a smaller lab.
    want_peers: u64,
    min_peers: u64,
    mean_peers: f64,
    blocks: usize,
    block_bytes: u64,
    /// Per block: ms from the miner's connection to 50%, 95%, 100% of nodes.
    to_50: Vec<f64>,
    to_95: Vec<f64>,
    to_100: Vec<f64>,
    /// Hops from the miners to 95% of the nodes in the graph of connections (mean over
    /// the miners).
    hops_to_95: f64,
    /// A node's time from a block's arrival to its connection (mean over nodes).
    validation_ms: f64,
    /// What no network of these links could beat: hops x (latency + the block's
    /// transmission time + validation).
    floor_ms: f64,
}

/// The graph of connections: each node's peers, by index.
async fn graph(apis: &[String]) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut ids = Vec::new();
    for api in apis {
        let (_, node) = http(api, "GET", "/v1/node", "", None).await?;
        ids.push(node["peer_id"].as_str().unwrap_or_default().to_string());
    }
    let mut edges = Vec::new();
    for api in apis {
        let (_, peers) = http(api, "GET", "/v1/peers", "", None).await?;
        let linked = peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| ids.iter().position(|id| p["peer_id"] == id.as_str()))
            .collect();
        edges.push(linked);
    }
    Ok(edges)
}

/// Hops from `from` until 95% of the nodes are reached (breadth first).
fn hops_to_95(graph: &[Vec<usize>], from: usize) -> usize {
    let n = graph.len();
    let want = ((0.95 * n as f64).ceil() as usize).max(1);
    let mut seen = vec![false; n];
    seen[from] = true;
    let (mut frontier, mut reached, mut hops) = (vec![from], 1, 0);
    while reached < want && !frontier.is_empty() {
        let mut next = Vec::new();
        for node in frontier {
            for &peer in &graph[node] {
                if !seen[peer] {
                    seen[peer] = true;
                    reached += 1;
                    next.push(peer);
                }
            }
        }
        frontier = next;
        hops += 1;
    }
    hops
}

/// The mean, over nodes, of their own time from a block's arrival to its connection
/// (`oxchain_block_arrival_to_connected_seconds` in their metrics), in ms.
async fn validation_ms(apis: &[String]) -> f64 {
    let (mut sum, mut count) = (0.0, 0.0);
    for api in apis {
        let Ok(mut stream) = tokio::net::TcpStream::connect(api.as_str()).await else {
            continue;
        };
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {api}\r\n\r\n");
        let mut text = String::new();
        if stream.write_all(request.as_bytes()).await.is_err()
            || stream.read_to_string(&mut text).await.is_err()
        {
            continue;
        }
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let (Some(s), Some(c)) = (
            value("oxchain_block_arrival_to_connected_seconds_sum "),
            value("oxchain_block_arrival_to_connected_seconds_count "),
        ) {
            sum += s;
            count += c;
        }
    }
    if count > 0.0 {
        sum / count * 1000.0
    } else {
        0.0
    }
}

/// Plain HTTP/1.0 to a node's API; the status and the JSON body.
async fn http(
    api: &str,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(api))
            .await
            .context("timed out")??;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {api}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut text))
        .await
        .context("no answer in 30 s")??;
    let (head, body) = text.split_once("\r\n\r\n").context("not HTTP")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

async fn status(api: &str) -> anyhow::Result<Value> {
    let (code, v) = http(api, "GET", "/v1/status", "", None).await?;
    if code != 200 {
        bail!("GET /v1/status answered {code}");
    }
    Ok(v)
}

/// Waits until `check` holds, polling every 100 ms, for at most `secs`.
async fn wait_until(
    what: &str,
    secs: u64,
    mut check: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        if Instant::now() >= deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Follows node `i`'s events and records when each block connects there.
async fn follow(i: usize, api: String, arrivals: Arrivals) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{api}/v1/events"))
        .await
        .with_context(|| format!("node {i}'s events"))?;
    tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            let at = Instant::now();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if event["type"] == "block"
                && let Some(hash) = event["hash"].as_str()
            {
                let mut all = arrivals.lock().unwrap_or_else(|e| e.into_inner());
                all.entry(hash.to_string()).or_default().push((i, at));
            }
        }
    });
    Ok(())
}

/// Discovery from one seed, then `plan.blocks` blocks mined in turn by the first
/// `plan.miners` nodes, each followed to every node before the next.
pub(crate) async fn propagation(plan: Plan) -> anyhow::Result<Report> {
    let n = plan.apis.len();
    for (i, api) in plan.apis.iter().enumerate() {
        wait_until(&format!("node {i}'s API"), 60, async || {
            status(api).await.is_ok()
        })
        .await?;
    }
    let arrivals: Arrivals = Arc::default();
    for (i, api) in plan.apis.iter().enumerate() {
        follow(i, api.clone(), arrivals.clone()).await?;
    }
    // Discovery: each node was given only the seed.
    let want = 6.min(n - 1) as u64;
    let started = Instant::now();
    let peers = async || {
        let mut all = Vec::new();
        for api in &plan.apis {
            all.push(
                status(api)
                    .await
                    .map_or(0, |s| s["peers"].as_u64().unwrap_or(0)),
            );
        }
        all
    };
    let deadline = started + Duration::from_secs(120);
    loop {
        let now = peers().await;
        if now.iter().all(|p| *p >= want) {
            break;
        }
        if Instant::now() >= deadline {
            let short: Vec<String> = now
                .iter()
                .enumerate()
                .filter(|(_, p)| **p < want)
                .map(|(i, p)| format!("node {i}: {p}"))
                .collect();
            bail!(
                "after 120 s, {} of {n} nodes had fewer than {want} peers ({})",
                short.len(),
                short.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let discovery_s = started.elapsed().as_secs_f64();
    println!("every node reached {want} peers in {discovery_s:.1} s");
    // Gossipsub meshes form at its heartbeats (500 ms).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mut to_50, mut to_95, mut to_100) = (Vec::new(), Vec::new(), Vec::new());
    let mut block_bytes = 0;
    let mut filler = Filler::new();
    let per_block = plan.block_bytes.div_ceil(FILL_TX_BYTES);
    for b in 0..plan.blocks {
        if per_block > 0 {
            // Sent to a node that does not mine this block, one per dev account at a
            // time, each round waited for at every node: the transfers reach the miner,
            // and every other node, by gossip before the block is mined. (Sent faster,
            // a sender's transfers can arrive out of nonce order over two paths, and a
            // node drops the one that comes before its predecessor.)
            let entry = &plan.apis[(plan.miners + b) % n];
            let mut sent = 0;
            while sent < per_block {
                let burst = (per_block - sent).min(filler.keys.len());
                for _ in 0..burst {
                    let (code, answer) =
                        http(entry, "POST", "/v1/transactions", &filler.next_body(), None).await?;
                    if code != 202 {
                        bail!("a fill transfer was refused ({code}): {answer}");
                    }
                }
                sent += burst;
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let mut counts = Vec::new();
                    for api in &plan.apis {
                        counts.push(
                            status(api)
                                .await
                                .map_or(0, |s| s["mempool"].as_u64().unwrap_or(0)),
                        );
                    }
                    if counts.iter().all(|c| *c >= sent as u64) {
                        break;
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "after 60 s, the nodes' mempools held {counts:?} of {sent} fill transfers"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let m = b % plan.miners;
        let miner = &plan.apis[m];
        let token = std::fs::read_to_string(plan.dirs[m].join("api.cookie")).ok();
        let (code, mined) = http(
            miner,
            "POST",
            "/v1/mine",
            r#"{"count": 1}"#,
            token.as_deref().map(str::trim),
        )
        .await?;
        if code != 200 {
            bail!("mining at {miner} answered {code}: {mined}");
        }
        let hash = mined["blocks"][0]["hash"]
            .as_str()
            .context("the mined block's hash")?
            .to_string();
        wait_until(&format!("block {hash} at every node"), 60, async || {
            arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&hash)
                .is_some_and(|a| a.len() >= n)
        })
        .await?;
        if let Ok((200, block)) = http(miner, "GET", &format!("/v1/blocks/{hash}"), "", None).await
        {
            block_bytes = block["size"].as_u64().unwrap_or(block_bytes);
        }
        let times = arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash)
            .unwrap_or_default();
        let from = times
            .iter()
            .map(|(_, at)| *at)
            .min()
            .context("no arrivals")?;
        let mut delays: Vec<f64> = times
            .iter()
            .map(|(_, at)| at.duration_since(from).as_secs_f64() * 1000.0)
            .collect();
        delays.sort_by(f64::total_cmp);
        let at_share = |share: f64| delays[((share * n as f64).ceil() as usize).clamp(1, n) - 1];
        to_50.push(at_share(0.5));
        to_95.push(at_share(0.95));
        to_100.push(at_share(1.0));
        if (b + 1) % 10 == 0 || b + 1 == plan.blocks {
            println!("{} of {} blocks followed", b + 1, plan.blocks);
        }
        // A short gap, so that blocks do not overlap.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Everyone on one tip.
    let tip = status(&plan.apis[0]).await?["hash"].clone();
    for (i, api) in plan.apis.iter().enumerate() {
        let theirs = status(api).await?["hash"].clone();
        if theirs != tip {
            bail!("node {i} is on another tip: {theirs} against {tip}");
        }
    }
    let now = peers().await;
    let graph = graph(&plan.apis).await?;
    let hops = (0..plan.miners)
        .map(|m| hops_to_95(&graph, m) as f64)
        .sum::<f64>()
        / plan.miners as f64;
    let validation_ms = validation_ms(&plan.apis).await;
    let transmit_ms = block_bytes as f64 * 8.0 / (plan.mbit * 1e6) * 1000.0;
    let floor_ms = hops * (plan.latency_ms + transmit_ms + validation_ms);
    Ok(Report {
        hops_to_95: hops,
        validation_ms,
        floor_ms,
        nodes: n,
        discovery_s,
        want_peers: want,
        min_peers: now.iter().copied().min().unwrap_or(0),
        mean_peers: now.iter().sum::<u64>() as f64 / n as f64,
        blocks: plan.blocks,
        block_bytes,
        to_50,
        to_95,
        to_100,
    })
}

/// The `p`th percentile (0 to 100) of `values`, nearest rank.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

impl Report {
    pub(crate) fn print(&self, json_line: bool, namespaces: bool) {
        println!(
            "{} nodes ({}), {} blocks of about {} bytes",
            self.nodes,
            if namespaces {
                "network namespaces"
            } else {
                "loopback"
            },
            self.blocks,
            self.block_bytes
        );
        println!(
            "{:<40} {:.1} s (each node given only the seed)",
            format!("discovery: every node at {} peers", self.want_peers),
            self.discovery_s
        );
        println!(
            "{:<40} min {}, mean {:.1}",
            "peers at the end", self.min_peers, self.mean_peers
        );
        println!(
            "{:<40} {:.2} hops x (link + transmission + {:.1} ms validation) = {:.1} ms",
            "floor to 95% of nodes", self.hops_to_95, self.validation_ms, self.floor_ms
        );
        for (label, values) in [
            ("delay to 50% of nodes", &self.to_50),
            ("delay to 95% of nodes", &self.to_95),
            ("delay to 100% of nodes", &self.to_100),
        ] {
            println!(
                "{label:<40} p50 {:>7.1} ms   p95 {:>7.1} ms",
                percentile(values, 50.0),
                percentile(values, 95.0)
            );
        }
        if json_line {
            println!(
                "{}",
                json!({
                    "scenario": "propagation",
                    "nodes": self.nodes,
                    "namespaces": namespaces,
                    "discovery_s": self.discovery_s,
                    "min_peers": self.min_peers,
                    "mean_peers": self.mean_peers,
                    "blocks": self.blocks,
                    "block_bytes": self.block_bytes,
                    "p50_to_50pct_ms": percentile(&self.to_50, 50.0),
                    "p95_to_50pct_ms": percentile(&self.to_50, 95.0),
                    "p50_to_95pct_ms": percentile(&self.to_95, 50.0),
                    "p95_to_95pct_ms": percentile(&self.to_95, 95.0),
                    "p95_to_95pct_over_floor": percentile(&self.to_95, 95.0) / self.floor_ms,
                    "floor_ms": self.floor_ms,
                    "hops_to_95pct": self.hops_to_95,
                    "validation_ms": self.validation_ms,
                    "p50_to_100pct_ms": percentile(&self.to_100, 50.0),
                    "p95_to_100pct_ms": percentile(&self.to_100, 95.0),
                })
            );
        }
    }
}
