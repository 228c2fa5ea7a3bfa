//! The lab's observer: runs inside the bridge's namespace and talks to every node's API
//! (plain HTTP/1.0, and each node's `/v1/events` WebSocket for the moment each block
//! connects there). `Lab` holds what every scenario shares: discovery, mining, the
//! arrivals of blocks, bandwidth, and the figures every report carries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::report::Report;

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
    /// Fill each block with about this many bytes of transfers (propagation only).
    pub(crate) block_bytes: usize,
    /// The mean time between blocks of the scenarios mined on a clock.
    pub(crate) interval_s: f64,
    /// How long the two halves of `partition` mine apart.
    pub(crate) split_s: u64,
    /// Minutes of `churn` (a tenth of the nodes restart each minute).
    pub(crate) rounds: usize,
    /// Transfers per second from the load generator (scenarios on a clock).
    pub(crate) tx_rate: f64,
    /// Asks the lab's main thread to act on the nodes or their network.
    pub(crate) control: Controller,
}

/// What the observer asks of the lab's main thread, which owns the processes and the
/// namespaces.
#[derive(Debug)]
pub(crate) enum Control {
    /// Cut the network between these two sides.
    Partition(Vec<usize>, Vec<usize>),
    /// Undo the partition.
    Heal,
    /// Stop node `i` cleanly and start it again on the same data directory.
    Restart(usize),
}

pub(crate) type Request = (Control, tokio::sync::oneshot::Sender<anyhow::Result<()>>);

#[derive(Clone)]
pub(crate) struct Controller(pub(crate) std::sync::mpsc::Sender<Request>);

impl Controller {
    /// Sends the request and waits for it to be done.
    pub(crate) async fn ask(&self, control: Control) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .send((control, tx))
            .map_err(|_| anyhow::anyhow!("the lab has stopped"))?;
        rx.await.context("the lab has stopped")?
    }
}

/// What the observer reads of an event.
#[derive(serde::Deserialize)]
struct BlockEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    hash: Option<&'a str>,
}

/// A process's user and system time in clock ticks, from its `/proc/PID/stat` (fields 14
/// and 15; the name before them, in parentheses, may hold spaces).
fn process_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second, the unit of `/proc/PID/stat`'s times.
#[allow(unsafe_code)]
fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf takes and returns plain integers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// When each node connected each block (by hash): the first time only.
type Arrivals = Arc<Mutex<HashMap<String, Vec<(usize, Instant)>>>>;

/// A block the lab had mined.
pub(crate) struct Mined {
    pub(crate) hash: String,
    pub(crate) miner: usize,
}

/// The scenario's view of the running lab.
pub(crate) struct Lab {
    pub(crate) plan: Plan,
    arrivals: Arrivals,
    pub(crate) discovery_s: f64,
    /// The peers every node had to reach: 6, or all the others in a smaller lab.
    pub(crate) want_peers: u64,
}

impl Lab {
    pub(crate) fn n(&self) -> usize {
        self.plan.apis.len()
    }

    /// CPU seconds the node processes have used so far (user and system, every thread),
    /// from `/proc`: each node is the process whose `--data-dir` is one of the lab's.
    pub(crate) fn nodes_cpu_s(&self) -> f64 {
        let dirs: std::collections::HashSet<&[u8]> = self
            .plan
            .dirs
            .iter()
            .map(|d| d.as_os_str().as_encoded_bytes())
            .collect();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0.0;
        };
        let mut ticks = 0u64;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
                continue;
            };
            let mut args = cmdline.split(|b| *b == 0);
            let ours =
                args.any(|a| a == b"--data-dir") && args.next().is_some_and(|d| dirs.contains(d));
            if let (true, Ok(stat)) = (ours, std::fs::read_to_string(path.join("stat"))) {
                ticks += process_ticks(&stat).unwrap_or(0);
            }
        }
        ticks as f64 / clock_ticks_per_s()
    }

    pub(crate) fn api(&self, i: usize) -> &str {
        &self.plan.apis[i]
    }

    /// Waits for every node's API, follows every node's events, then waits until every
    /// node (each given only the seed) has found its peers.
    pub(crate) async fn start(plan: Plan) -> anyhow::Result<Lab> {
        let n = plan.apis.len();
        let mut lab = Lab {
            plan,
            arrivals: Arc::default(),
            discovery_s: 0.0,
            want_peers: 6.min(n - 1) as u64,
        };
        for i in 0..n {
            lab.follow(i).await?;
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        loop {
            let now = lab.peer_counts().await;
            if now.iter().all(|p| *p >= lab.want_peers) {
                break;
            }
            if Instant::now() >= deadline {
                let short: Vec<String> = now
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| **p < lab.want_peers)
                    .map(|(i, p)| format!("node {i}: {p}"))
                    .collect();
                bail!(
                    "after 120 s, {} of {n} nodes had fewer than {} peers ({})",
                    short.len(),
                    lab.want_peers,
                    short.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        lab.discovery_s = started.elapsed().as_secs_f64();
        println!(
            "every node reached {} peers in {:.1} s",
            lab.want_peers, lab.discovery_s
        );
        // Gossipsub meshes form at its heartbeats (500 ms).
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(lab)
    }

    /// Waits for node `i`'s API (60 s), then records when each block connects there
    /// from its events until its connection ends (a restarted node is followed again).
    pub(crate) async fn follow(&self, i: usize) -> anyhow::Result<()> {
        let api = self.plan.apis[i].clone();
        wait_until(&format!("node {i}'s API"), 60, async || {
            status(&api).await.is_ok()
        })
        .await?;
        // Without transactions: a block's event with its transfers is about twice the
        // block in JSON, which every node would build for the observer alone, on the
        // cores the nodes share, before the block's moment is stamped.
        let events = format!("ws://{api}/v1/events?transactions=false");
        let (mut ws, _) = tokio_tungstenite::connect_async(events)
            .await
            .with_context(|| format!("node {i}'s events"))?;
        let arrivals = self.arrivals.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let at = Instant::now();
                let Ok(text) = message.to_text() else {
                    continue;
                };
                // Only the type and the hash.
                let Ok(event) = serde_json::from_str::<BlockEvent>(text) else {
                    continue;
                };
                if event.kind == "block"
                    && let Some(hash) = event.hash
                {
                    let mut all = arrivals.lock().unwrap_or_else(|e| e.into_inner());
                    let seen = all.entry(hash.to_string()).or_default();
                    if !seen.iter().any(|(j, _)| *j == i) {
                        seen.push((i, at));
                    }
                }
            }
        });
        Ok(())
    }

    /// How many nodes have connected `hash`.
    pub(crate) fn arrived(&self, hash: &str) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .map_or(0, Vec::len)
    }

    /// Each node's peer count (0 for a node that does not answer).
    pub(crate) async fn peer_counts(&self) -> Vec<u64> {
        let mut all = Vec::new();
        for api in &self.plan.apis {
            all.push(
                status(api)
                    .await
                    .map_or(0, |s| s["peers"].as_u64().unwrap_or(0)),
            );
        }
        all
    }

    /// Mines one block at node `m` now.
    pub(crate) async fn mine(&self, m: usize) -> anyhow::Result<Mined> {
        let api = &self.plan.apis[m];
        let token = std::fs::read_to_string(self.plan.dirs[m].join("api.cookie")).ok();
        let (code, mined) = http(
            api,
            "POST",
            "/v1/mine",
            r#"{"count": 1}"#,
            token.as_deref().map(str::trim),
        )
        .await?;
        if code != 200 {
            bail!("mining at node {m} ({api}) answered {code}: {mined}");
        }
        let hash = mined["blocks"][0]["hash"]
            .as_str()
            .context("the mined block's hash")?
            .to_string();
        Ok(Mined { hash, miner: m })
    }

    /// Bytes every node has sent to peers so far (libp2p's transport counter), summed.
    pub(crate) async fn sent_bytes(&self) -> f64 {
        let mut sum = 0.0;
        for api in &self.plan.apis {
            let text = metrics(api).await.unwrap_or_default();
            sum += text
                .lines()
                .filter(|l| {
                    l.starts_with("libp2p_bandwidth_bytes_total{")
                        && l.contains("direction=\"Outbound\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        sum
    }

    /// Compact blocks over every node: rebuilt from the mempool alone, with transfers
    /// fetched, fallen back to the whole block; and the transfers fetched.
    pub(crate) async fn compact_relay(&self) -> [f64; 4] {
        let mut sums = [0.0; 4];
        for api in &self.plan.apis {
            let text = metrics(api).await.unwrap_or_default();
            for line in text.lines() {
                let slot = if line.starts_with("oxchain_compact_blocks_total{how=\"mempool\"}") {
                    0
                } else if line.starts_with("oxchain_compact_blocks_total{how=\"fetched\"}") {
                    1
                } else if line.starts_with("oxchain_compact_blocks_total{how=\"full_block\"}") {
                    2
                } else if line.starts_with("oxchain_compact_fetched_transfers_total ") {
                    3
                } else {
                    continue;
                };
                sums[slot] += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
        sums
    }

    /// Every node's tip, in node order (`None` for a node that does not answer).
    pub(crate) async fn tips(&self) -> Vec<Option<String>> {
        let mut tips = Vec::new();
        for api in &self.plan.apis {
            tips.push(
                status(api)
                    .await
                    .ok()
                    .and_then(|s| s["tip"].as_str().map(str::to_string)),
            );
        }
        tips
    }

    /// Waits (at most `secs`) until every node is on one tip; the tip.
    pub(crate) async fn one_tip(&self, secs: u64) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let tips = self.tips().await;
            if let Some(Some(first)) = tips.first()
                && tips.iter().all(|t| t.as_ref() == Some(first))
            {
                return Ok(first.clone());
            }
            if Instant::now() >= deadline {
                let distinct: std::collections::HashSet<_> = tips.iter().collect();
                bail!(
                    "after {secs} s the nodes were on {} different tips",
                    distinct.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Whether `hash` is on node `i`'s best chain.
    pub(crate) async fn on_best_chain(&self, i: usize, hash: &str) -> anyhow::Result<bool> {
        let (code, block) =
            http(self.api(i), "GET", &format!("/v1/blocks/{hash}"), "", None).await?;
        Ok(code == 200 && block["best_chain"] == true)
    }

    /// The size of block `hash`, in bytes, as node `i` has it.
    pub(crate) async fn block_size(&self, i: usize, hash: &str) -> Option<u64> {
        match http(self.api(i), "GET", &format!("/v1/blocks/{hash}"), "", None).await {
            Ok((200, block)) => block["size"].as_u64(),
            _ => None,
        }
    }

    /// Builds the report every scenario prints: discovery and peers now, the delays of
    /// `blocks` (from their first connection, at their miner, to 50%, 95% and 100% of
    /// the nodes; a block that did not reach a share is left out of that share's
    /// figures), the floor, and `sent` bytes over the blocks.
    /// Per block of `blocks` that some node has: ms from its first arrival to 50%, 95%
    /// and 100% of nodes.
    pub(crate) fn delays(&self, blocks: &[Mined]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = self.n();
        let (mut to_50, mut to_95, mut to_100) = (Vec::new(), Vec::new(), Vec::new());
        let all = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        for block in blocks {
            let Some(times) = all.get(&block.hash) else {
                continue;
            };
            let Some(from) = times.iter().map(|(_, at)| *at).min() else {
                continue;
            };
            let mut delays: Vec<f64> = times
                .iter()
                .map(|(_, at)| at.duration_since(from).as_secs_f64() * 1000.0)
                .collect();
            delays.sort_by(f64::total_cmp);
            for (share, into) in [(0.5, &mut to_50), (0.95, &mut to_95), (1.0, &mut to_100)] {
                let rank = ((share * n as f64).ceil() as usize).clamp(1, n);
                if let Some(d) = delays.get(rank - 1) {
                    into.push(*d);
                }
            }
        }
        (to_50, to_95, to_100)
    }

    pub(crate) async fn report(
        &self,
        scenario: &'static str,
        blocks: &[Mined],
        sent: f64,
    ) -> anyhow::Result<Report> {
        let n = self.n();
        let (to_50, to_95, to_100) = self.delays(blocks);
        let mut sizes = Vec::new();
        for block in blocks.iter().take(20) {
            if let Some(size) = self.block_size(block.miner, &block.hash).await {
                sizes.push(size);
            }
        }
        let block_bytes = if sizes.is_empty() {
            0
        } else {
            sizes.iter().sum::<u64>() / sizes.len() as u64
        };
        let peers = self.peer_counts().await;
        let graph = graph(&self.plan.apis).await?;
        let miners: Vec<usize> = (0..self.plan.miners.min(n)).collect();
        let hops = miners
            .iter()
            .map(|&m| hops_to_95(&graph, m) as f64)
            .sum::<f64>()
            / miners.len().max(1) as f64;
        // A node's own time from a block's arrival to its connection.
        let validation_ms = metric_mean(
            &self.plan.apis,
            "oxchain_block_arrival_to_connected_seconds",
        )
        .await
        .map_or(0.0, |s| s * 1000.0);
        // What a hop sends: the compact block where blocks went as compact blocks.
        let hop_bytes = metric_mean(&self.plan.apis, "oxchain_compact_block_bytes")
            .await
            .unwrap_or(block_bytes as f64);
        let transmit_ms = hop_bytes * 8.0 / (self.plan.mbit * 1e6) * 1000.0;
        let floor_ms = hops * (self.plan.latency_ms + transmit_ms + validation_ms);
        Ok(Report {
            scenario,
            nodes: n,
            discovery_s: self.discovery_s,
            want_peers: self.want_peers,
            min_peers: peers.iter().copied().min().unwrap_or(0),
            mean_peers: peers.iter().sum::<u64>() as f64 / n as f64,
            blocks: blocks.len(),
            block_bytes,
            to_50,
            to_95,
            to_100,
            hops_to_95: hops,
            validation_ms,
            link_ms: self.plan.latency_ms,
            hop_bytes,
            transmit_ms,
            floor_ms,
            bytes_per_node_per_block: sent / n as f64 / blocks.len().max(1) as f64,
            extra: Vec::new(),
        })
    }
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

/// A node's `/metrics` text.
async fn metrics(api: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(api).await?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {api}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut text))
        .await
        .context("no answer in 30 s")??;
    Ok(text)
}

/// The mean, over every node's observations, of histogram `name` in their metrics
/// (`NAME_sum` over `NAME_count`); `None` if none observed any.
async fn metric_mean(apis: &[String], name: &str) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0.0);
    let (sum_name, count_name) = (format!("{name}_sum "), format!("{name}_count "));
    for api in apis {
        let Ok(text) = metrics(api).await else {
            continue;
        };
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let (Some(s), Some(c)) = (value(&sum_name), value(&count_name)) {
            sum += s;
            count += c;
        }
    }
    (count > 0.0).then(|| sum / count)
}

/// Plain HTTP/1.0 to a node's API; the status and the JSON body.
pub(crate) async fn http(
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

pub(crate) async fn status(api: &str) -> anyhow::Result<Value> {
    let (code, v) = http(api, "GET", "/v1/status", "", None).await?;
    if code != 200 {
        bail!("GET /v1/status answered {code}");
    }
    Ok(v)
}

/// Waits until `check` holds, polling every 100 ms, for at most `secs`.
pub(crate) async fn wait_until(
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
