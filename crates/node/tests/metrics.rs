//! `GET /metrics` of a node with a peer, read by the Prometheus project's own
//! OpenMetrics parser (Python `prometheus_client`, Debian's `python3-prometheus-client`,
//! which `scripts/test` installs): it must parse, and hold libp2p's families beside the
//! node's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::TestNode;
use oxchain_miner::MiningMode;
use serde_json::json;

/// Parses OpenMetrics text from stdin; prints one line per sample: name, labels as
/// sorted JSON, value.
const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        print(s.name, json.dumps(s.labels, sort_keys=True, separators=(",", ":")), s.value)
"#;

/// The samples of `text` as the reference parser reads them; panics if it refuses it.
fn parse(text: &str) -> Vec<(String, String, f64)> {
    // Debian's Python, which the Debian package is for (another may come first on PATH).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (scripts/test installs it with python3-prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let name = parts.next().unwrap().to_string();
            let labels = parts.next().unwrap().to_string();
            let value = parts.next().unwrap().parse().unwrap();
            (name, labels, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_name_the_libp2p_families() {
    let a = TestNode::start(MiningMode::OnDemand).await;
    let b = TestNode::start(MiningMode::OnDemand).await;
    let (status, body) = a
        .post_json(
            "/nodes",
            &json!({"host": "127.0.0.1", "port": b.addr.port()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.get("/v1/status").await.1["peers"] != 1 {
        assert!(Instant::now() < deadline, "the nodes did not connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let gossipsub build its mesh, then mine: the block reaches B by gossip.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = a.get("/mine").await;
    assert_eq!(status, StatusCode::OK);
    while b.get("/v1/status").await.1["height"] != 1 {
        assert!(Instant::now() < deadline, "the block did not reach B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The block is on B's chain a moment before its gossip verdict is counted: read
    // until the count shows (or 20 s pass, and the assertions below say what is off).
    let gossiped = |samples: &[(String, String, f64)]| {
        samples.iter().any(|(n, l, v)| {
            n == "oxchain_gossip_messages_total"
                && l.contains(r#""kind":"block","verdict":"accept""#)
                && *v >= 1.0
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let samples = loop {
        let (status, text) = b.get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        let samples = parse(text.as_str().unwrap());
        if gossiped(&samples) || Instant::now() >= deadline {
            break samples;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.contains(labels))
            .map(|(_, _, v)| *v)
    };
    // libp2p's own families, one from each part registered.
    for family in [
        "libp2p_swarm_connections_established_total",
        "libp2p_bandwidth_bytes_total",
        "libp2p_gossipsub_messages_total",
        "libp2p_identify_received_total",
        "libp2p_kad_query_result_get_closest_peers_ok_count",
        "libp2p_ping_rtt_seconds_count",
    ] {
        assert!(
            samples.iter().any(|(n, _, _)| n == family),
            "no {family} in /metrics"
        );
    }
    // The node's own.
    assert_eq!(value("oxchain_height", ""), Some(1.0));
    assert_eq!(
        value("oxchain_peers", r#""direction":"inbound""#).unwrap()
            + value("oxchain_peers", r#""direction":"outbound""#).unwrap(),
        1.0
    );
    assert_eq!(
        value(
            "oxchain_gossip_messages_total",
            r#""kind":"block","verdict":"accept""#
        ),
        Some(1.0)
    );
    assert_eq!(
        value("oxchain_block_propagation_delay_seconds_count", ""),
        Some(1.0)
    );
    assert_eq!(
        value("oxchain_block_arrival_to_connected_seconds_count", ""),
        Some(1.0)
    );
    assert!(value("oxchain_validation_queue", "").is_some());
    assert!(
        value(
            "oxchain_http_request_duration_seconds_count",
            r#""route":"/v1/status""#
        )
        .is_some_and(|n| n >= 1.0)
    );
    a.stop().await;
    b.stop().await;
}
