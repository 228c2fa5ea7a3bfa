//! What a lab run prints: the figures every scenario shares, then its own.

use serde_json::{Map, Value, json};

/// The figures of a run.
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) nodes: usize,
    pub(crate) discovery_s: f64,
    pub(crate) want_peers: u64,
    pub(crate) min_peers: u64,
    pub(crate) mean_peers: f64,
    /// Blocks mined by the scenario.
    pub(crate) blocks: usize,
    /// Their mean size.
    pub(crate) block_bytes: u64,
    /// Per block: ms from its first connection (at its miner) to 50%, 95%, 100% of nodes.
    pub(crate) to_50: Vec<f64>,
    pub(crate) to_95: Vec<f64>,
    pub(crate) to_100: Vec<f64>,
    /// Hops from the miners to 95% of the nodes in the graph of connections (mean over
    /// the miners).
    pub(crate) hops_to_95: f64,
    /// A node's time from a block's arrival to its connection (mean over nodes).
    pub(crate) validation_ms: f64,
    /// A link's one-way delay.
    pub(crate) link_ms: f64,
    /// The bytes a hop sends of a block (its compact block's mean size where blocks went
    /// as compact blocks), and the time to send them at the node's rate.
    pub(crate) hop_bytes: f64,
    pub(crate) transmit_ms: f64,
    /// What no network of these links could beat: hops x (latency + the block's
    /// transmission time + validation).
    pub(crate) floor_ms: f64,
    /// Bytes each node sent to peers per block mined (all libp2p traffic while the
    /// blocks spread).
    pub(crate) bytes_per_node_per_block: f64,
    /// The scenario's own figures: the JSON key, the line's label, the value and its
    /// unit for the line.
    pub(crate) extra: Vec<(&'static str, String, f64, &'static str)>,
}

/// The `p`th percentile (0 to 100) of `values`, nearest rank.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
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
            "{}: {} nodes ({}), {} blocks of about {} bytes",
            self.scenario,
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
            "{:<40} {:.2} hops x ({:.0} ms link + {:.1} ms sending {:.0} bytes + {:.1} ms validation) = {:.1} ms",
            "floor to 95% of nodes",
            self.hops_to_95,
            self.link_ms,
            self.transmit_ms,
            self.hop_bytes,
            self.validation_ms,
            self.floor_ms
        );
        for (label, values) in [
            ("delay to 50% of nodes", &self.to_50),
            ("delay to 95% of nodes", &self.to_95),
            ("delay to 100% of nodes", &self.to_100),
        ] {
            println!(
                "{label:<40} p50 {:>7.1} ms   p95 {:>7.1} ms   ({} blocks)",
                percentile(values, 50.0),
                percentile(values, 95.0),
                values.len()
            );
        }
        let over = if self.block_bytes > 0 {
            self.bytes_per_node_per_block / self.block_bytes as f64
        } else {
            0.0
        };
        println!(
            "{:<40} {:.0} bytes ({:.2}x the block)",
            "sent per node per block", self.bytes_per_node_per_block, over
        );
        for (_, label, value, unit) in &self.extra {
            println!("{label:<40} {value:.3}{unit}");
        }
        if json_line {
            let mut line: Map<String, Value> = json!({
                "scenario": self.scenario,
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
                "hop_bytes": self.hop_bytes,
                "transmit_ms": self.transmit_ms,
                "p50_to_100pct_ms": percentile(&self.to_100, 50.0),
                "p95_to_100pct_ms": percentile(&self.to_100, 95.0),
                "bytes_per_node_per_block": self.bytes_per_node_per_block,
                "bytes_per_node_per_block_over_block": over,
            })
            .as_object()
            .cloned()
            .unwrap_or_default();
            for (key, _, value, _) in &self.extra {
                line.insert((*key).to_string(), json!(value));
            }
            println!("{}", Value::Object(line));
        }
    }
}
