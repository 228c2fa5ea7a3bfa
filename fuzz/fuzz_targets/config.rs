//! Config parsing (`oxchain.toml`, read by `oxchain node`).
//!
//! The reader lives in the `oxchain` binary (`crates/cli/src/node.rs`: a private
//! `ConfigFile` and `NodeArgs::with_config_file`, which exits the process on a bad file),
//! so no library exposes it: this target parses the input into a copy of `ConfigFile`
//! with the same TOML crate and `deny_unknown_fields`, then gives each value to the same
//! library parsers the node applies (`Network`, `SocketAddr`, `MiningMode`,
//! `oxchain_net::parse_peer_addr`, the threads' range, an origin as a header value).
//! `scripts/fuzz` warns when the copy's fields and the binary's differ.
//!
//! Checked: every value that parses prints back as text that parses to the same value.
#![no_main]

use std::net::SocketAddr;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use oxchain_miner::MiningMode;
use oxchain_primitives::Network;

/// `oxchain.toml`: a copy of `ConfigFile` in `crates/cli/src/node.rs`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ConfigFile {
    network: Option<String>,
    data_dir: Option<PathBuf>,
    api: Option<String>,
    p2p: Option<String>,
    peers: Option<Vec<String>>,
    external_addresses: Option<Vec<String>>,
    mine: Option<String>,
    miner_address: Option<String>,
    threads: Option<i64>,
    cors_origins: Option<Vec<String>>,
    api_hosts: Option<Vec<String>>,
    name: Option<String>,
}

/// The most threads the node takes (`MAX_THREADS` in the binary).
const MAX_THREADS: i64 = 1024;

fn peer_addr(text: &str) {
    if let Ok(addr) = oxchain_net::parse_peer_addr(text) {
        let again = oxchain_net::parse_peer_addr(&addr.to_string())
            .unwrap_or_else(|e| panic!("{addr} (from {text:?}) does not parse again: {e}"));
        assert_eq!(again, addr, "from {text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    // The node reads the file as UTF-8 text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = toml::from_str::<ConfigFile>(text) else {
        return;
    };
    assert!(
        toml::from_str::<toml::Table>(text).is_ok(),
        "a config file is a TOML table"
    );
    if let Some(Ok(network)) = file.network.as_deref().map(str::parse::<Network>) {
        assert_eq!(network.to_string().parse::<Network>(), Ok(network));
    }
    if let Some(Ok(api)) = file.api.as_deref().map(str::parse::<SocketAddr>) {
        assert_eq!(api.to_string().parse::<SocketAddr>(), Ok(api));
    }
    if let Some(Ok(mode)) = file.mine.as_deref().map(str::parse::<MiningMode>) {
        assert_eq!(mode.to_string().parse::<MiningMode>(), Ok(mode));
    }
    if let Some(p2p) = &file.p2p {
        peer_addr(p2p);
    }
    for addr in file.peers.iter().chain(&file.external_addresses).flatten() {
        peer_addr(addr);
    }
    if let Some(threads) = file.threads {
        let _ = (1..=MAX_THREADS).contains(&threads);
    }
    for origin in file.cors_origins.iter().flatten() {
        let _ = axum::http::HeaderValue::from_str(origin);
    }
});
