//! The network's metrics, on `prometheus-client`: libp2p's own families (`libp2p_*`:
//! swarm, bandwidth, gossipsub, identify, kad, ping) beside the node's (`oxchain_*`).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;
type OwnedLabels = Vec<(&'static str, String)>;

/// Seconds from 1 ms to about 33 s, doubling: block delays span both ends.
fn delay_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// What the network records.
pub(crate) struct NetMetrics {
    pub(crate) libp2p: libp2p::metrics::Metrics,
    peers: Family<Labels, Gauge>,
    gossip: Family<Labels, Counter>,
    penalties: Family<OwnedLabels, Counter>,
    sync_height: Gauge,
    sync_target: Gauge,
    validating: Gauge,
    block_delay: Histogram,
    block_check: Histogram,
    compact: Family<Labels, Counter>,
    compact_fetched: Counter,
    compact_bytes: Histogram,
}

impl NetMetrics {
    /// Registers the network's families in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> NetMetrics {
        let libp2p = libp2p::metrics::Metrics::new(registry);
        let ours = registry.sub_registry_with_prefix("oxchain");
        let metrics = NetMetrics {
            libp2p,
            peers: Family::default(),
            gossip: Family::default(),
            penalties: Family::default(),
            sync_height: Gauge::default(),
            sync_target: Gauge::default(),
            validating: Gauge::default(),
            block_delay: delay_histogram(),
            block_check: delay_histogram(),
            compact: Family::default(),
            compact_fetched: Counter::default(),
            // 128 bytes to 4 MiB, doubling.
            compact_bytes: Histogram::new(exponential_buckets(128.0, 2.0, 16)),
        };
        ours.register(
            "peers",
            "Connected peers, by direction (inbound, outbound).",
            metrics.peers.clone(),
        );
        ours.register(
            "gossip_messages",
            "Gossiped blocks and transfers by verdict: accept (forwarded), ignore, reject \
             (its sender banned).",
            metrics.gossip.clone(),
        );
        ours.register(
            "peer_penalties",
            "Penalties given to peers (strikes and bans), by reason.",
            metrics.penalties.clone(),
        );
        ours.register(
            "sync_height",
            "Our height while a sync round runs (0 between rounds).",
            metrics.sync_height.clone(),
        );
        ours.register(
            "sync_target",
            "The height the running sync round aims at (0 between rounds).",
            metrics.sync_target.clone(),
        );
        ours.register(
            "validation_queue",
            "Gossiped messages being checked now (at most 64 transfers and 16 blocks; past that, \
             ignored).",
            metrics.validating.clone(),
        );
        ours.register(
            "block_propagation_delay_seconds",
            "A gossiped block's arrival, after the time in its header (the miner's clock).",
            metrics.block_delay.clone(),
        );
        ours.register(
            "block_arrival_to_connected_seconds",
            "From a gossiped block's arrival to its connection to the best chain.",
            metrics.block_check.clone(),
        );
        ours.register(
            "compact_blocks",
            "Compact blocks turned into blocks, by how: mempool (from the mempool alone), \
             fetched (missing transfers asked of the sender), full_block (the whole block \
             asked for: a short id collided or the rebuild failed).",
            metrics.compact.clone(),
        );
        ours.register(
            "compact_fetched_transfers",
            "Transfers asked of compact blocks' senders.",
            metrics.compact_fetched.clone(),
        );
        ours.register(
            "compact_block_bytes",
            "Size of each compact block received by gossip: the bytes a block costs a hop.",
            metrics.compact_bytes.clone(),
        );
        metrics
    }

    pub(crate) fn compact(&self, how: &'static str) {
        self.compact.get_or_create(&vec![("how", how)]).inc();
    }

    pub(crate) fn compact_fetched(&self, transfers: u64) {
        self.compact_fetched.inc_by(transfers);
    }

    pub(crate) fn compact_bytes(&self, bytes: usize) {
        self.compact_bytes.observe(bytes as f64);
    }

    pub(crate) fn peers(&self, inbound: usize, outbound: usize) {
        for (direction, n) in [("inbound", inbound), ("outbound", outbound)] {
            self.peers
                .get_or_create(&vec![("direction", direction)])
                .set(n as i64);
        }
    }

    pub(crate) fn gossip(&self, kind: &'static str, verdict: &'static str) {
        self.gossip
            .get_or_create(&vec![("kind", kind), ("verdict", verdict)])
            .inc();
    }

    pub(crate) fn penalty(&self, reason: &str) {
        self.penalties
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub(crate) fn sync(&self, height: u64, target: u64) {
        self.sync_height.set(height as i64);
        self.sync_target.set(target as i64);
    }

    pub(crate) fn validating(&self, n: usize) {
        self.validating.set(n as i64);
    }

    /// A block arrived by gossip `late_ms` after its header's time.
    pub(crate) fn block_arrived(&self, late_ms: i64) {
        self.block_delay.observe(late_ms.max(0) as f64 / 1000.0);
    }

    /// A gossiped block connected `took` after it arrived.
    pub(crate) fn block_connected(&self, took: Duration) {
        self.block_check.observe(took.as_secs_f64());
    }
}
