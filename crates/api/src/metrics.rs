//! `GET /metrics`: every family in the node's registry (`prometheus-client`), in the
//! OpenMetrics text format: the network's and libp2p's (registered by the network), and
//! the API's own, here: the chain's gauges (read when scraped), blocks and transfers
//! accepted, transfers refused through the API by reason, and request latencies per
//! route.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oxchain_chain::ChainEvent;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The API's families, registered in the node's registry.
pub(crate) struct Metrics {
    height: Gauge,
    mempool_transactions: Gauge,
    mempool_bytes: Gauge,
    hash_rate: FloatGauge,
    uptime: FloatGauge,
    blocks_connected: Counter,
    transfers_accepted: Counter,
    transfers_rejected: Family<Labels, Counter>,
    latencies: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Registers the API's families in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            height: Gauge::default(),
            mempool_transactions: Gauge::default(),
            mempool_bytes: Gauge::default(),
            hash_rate: FloatGauge::default(),
            uptime: FloatGauge::default(),
            blocks_connected: Counter::default(),
            transfers_accepted: Counter::default(),
            transfers_rejected: Family::default(),
            latencies: Family::new_with_constructor(latency_histogram),
        };
        let r = registry.sub_registry_with_prefix("oxchain");
        r.register(
            "height",
            "Height of the best chain's tip.",
            m.height.clone(),
        );
        r.register(
            "mempool_transactions",
            "Transfers in the mempool.",
            m.mempool_transactions.clone(),
        );
        r.register(
            "mempool_bytes",
            "Encoded bytes of the transfers in the mempool.",
            m.mempool_bytes.clone(),
        );
        r.register(
            "hash_rate",
            "Hashes per second of this node's miner.",
            m.hash_rate.clone(),
        );
        r.register(
            "uptime_seconds",
            "Seconds since the API started.",
            m.uptime.clone(),
        );
        r.register(
            "blocks_accepted",
            "Blocks connected to the best chain.",
            m.blocks_connected.clone(),
        );
        r.register(
            "transfers_accepted",
            "Transfers accepted into the mempool.",
            m.transfers_accepted.clone(),
        );
        r.register(
            "transfers_rejected",
            "Transfers submitted through the API and refused, by reason.",
            m.transfers_rejected.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "API request latency by route.",
            m.latencies.clone(),
        );
        m
    }

    pub(crate) fn on_event(&self, event: &ChainEvent) {
        match event {
            ChainEvent::BlockConnected { .. } => {
                self.blocks_connected.inc();
            }
            ChainEvent::TransferAccepted { .. } => {
                self.transfers_accepted.inc();
            }
            _ => {}
        }
    }

    /// Counts a refused transfer by its error code word.
    pub(crate) fn transfer_rejected(&self, reason: &str) {
        self.transfers_rejected
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    fn observe(&self, route: String, seconds: f64) {
        self.latencies
            .get_or_create(&vec![("route", route)])
            .observe(seconds);
    }
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
        .observe(route, started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics (OpenMetrics text): the chain (height, mempool, hash rate), blocks
/// and transfers accepted and refused, request latencies, the network (peers by
/// direction, gossip verdicts, penalties by reason, sync progress, the validation
/// queue, block propagation delays) and libp2p's own families (`libp2p_*`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses((status = 200, description = "OpenMetrics text format 1.0.0", content_type = "application/openmetrics-text"))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.inner.metrics;
    {
        let chain = state.chain();
        m.height.set(chain.tip().height.0 as i64);
        m.mempool_transactions.set(chain.mempool().len() as i64);
        m.mempool_bytes.set(chain.mempool().bytes() as i64);
    }
    m.hash_rate
        .set(state.inner.miner.hash_rates().iter().sum::<f64>());
    m.uptime.set(state.inner.started.elapsed().as_secs_f64());
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.inner.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        // Encoding into a String fails only if a family's own encoder does.
        Err(_) => crate::error::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics_unavailable",
            "the metrics could not be encoded",
        )
        .into_response(),
    }
}
