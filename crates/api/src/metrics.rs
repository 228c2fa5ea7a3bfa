//! `GET /metrics` in the Prometheus text format (0.0.4), written by hand: a few gauges,
//! counters by reason, and request latencies per route.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oxchain_chain::ChainEvent;

use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Counters the API keeps.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    blocks_connected: AtomicU64,
    transfers_accepted: AtomicU64,
    blocks_rejected: Mutex<BTreeMap<String, u64>>,
    transfers_rejected: Mutex<BTreeMap<String, u64>>,
    latencies: Mutex<BTreeMap<String, Histogram>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub(crate) fn on_event(&self, event: &ChainEvent) {
        match event {
            ChainEvent::BlockConnected { .. } => {
                self.blocks_connected.fetch_add(1, Ordering::Relaxed);
            }
            ChainEvent::TransferAccepted { .. } => {
                self.transfers_accepted.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Counts a refused transfer by its error code word.
    pub(crate) fn transfer_rejected(&self, reason: &str) {
        *lock(&self.transfers_rejected)
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// Counts a refused block by its error code word.
    #[allow(dead_code)] // Blocks come from peers with the network (issue 5).
    pub(crate) fn block_rejected(&self, reason: &str) {
        *lock(&self.blocks_rejected)
            .entry(reason.to_string())
            .or_default() += 1;
    }

    fn observe(&self, route: &str, seconds: f64) {
        let mut all = lock(&self.latencies);
        let h = all.entry(route.to_string()).or_default();
        h.count += 1;
        h.sum += seconds;
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Times every request by its route pattern (`/v1/blocks/{id}`, not the raw path).
pub(crate) async fn time_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    state
        .inner
        .metrics
        .observe(&route, started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics: height, peers, mempool, hash rate, blocks and transfers accepted
/// and rejected by reason, request latencies.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let (height, mempool_count, mempool_bytes) = {
        let chain = state.chain();
        (
            chain.tip().height.0,
            chain.mempool().len(),
            chain.mempool().bytes(),
        )
    };
    let hashes: f64 = state.inner.miner.hash_rates().iter().sum();
    let m = &state.inner.metrics;
    let mut s = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "oxchain_height",
        "Height of the best chain's tip.",
        height as f64,
    );
    let peers = state.inner.net.as_ref().map_or(0, |n| n.info().peers.len());
    gauge("oxchain_peers", "Connected peers.", peers as f64);
    gauge(
        "oxchain_mempool_transactions",
        "Transfers in the mempool.",
        mempool_count as f64,
    );
    gauge(
        "oxchain_mempool_bytes",
        "Encoded bytes of the transfers in the mempool.",
        mempool_bytes as f64,
    );
    gauge(
        "oxchain_hash_rate",
        "Hashes per second of this node's miner.",
        hashes,
    );
    gauge(
        "oxchain_uptime_seconds",
        "Seconds since the API started.",
        state.inner.started.elapsed().as_secs_f64(),
    );
    let mut counter = |name: &str, help: &str, rows: Vec<(String, u64)>| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in rows {
            let _ = writeln!(s, "{name}{labels} {value}");
        }
    };
    counter(
        "oxchain_blocks_accepted_total",
        "Blocks connected to the best chain.",
        vec![(String::new(), m.blocks_connected.load(Ordering::Relaxed))],
    );
    let mut rejected = lock(&m.blocks_rejected).clone();
    if let Some(net) = &state.inner.net {
        for (reason, n) in net.info().rejected {
            *rejected.entry(reason).or_default() += n;
        }
    }
    counter(
        "oxchain_blocks_rejected_total",
        "Blocks (and gossip) from peers refused as invalid, by reason.",
        labelled(&rejected),
    );
    counter(
        "oxchain_transfers_accepted_total",
        "Transfers accepted into the mempool.",
        vec![(String::new(), m.transfers_accepted.load(Ordering::Relaxed))],
    );
    counter(
        "oxchain_transfers_rejected_total",
        "Transfers refused, by reason.",
        labelled(&lock(&m.transfers_rejected)),
    );
    let _ = writeln!(
        s,
        "# HELP oxchain_http_request_duration_seconds API request latency by route.\n\
         # TYPE oxchain_http_request_duration_seconds histogram"
    );
    for (route, h) in lock(&m.latencies).iter() {
        let route = escape(route);
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                s,
                "oxchain_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            s,
            "oxchain_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
             oxchain_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
             oxchain_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
            h.count, h.sum, h.count
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s,
    )
        .into_response()
}

fn labelled(map: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    map.iter()
        .map(|(reason, n)| (format!("{{reason=\"{}\"}}", escape(reason)), *n))
        .collect()
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
