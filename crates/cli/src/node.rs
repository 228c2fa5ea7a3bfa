//! `oxchain node`: runs a node until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};
use oxchain_miner::MiningMode;
use oxchain_primitives::{Address, Network};

/// Options of `oxchain node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The network: main, test, dev or regtest.
    #[arg(long, default_value = "dev")]
    network: Network,
    /// Where the chain and keys live (default: the platform data dir/oxchain/NETWORK).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the HTTP API listens. Off loopback, routes that change the node need the
    /// bearer token in DATA_DIR/api.cookie.
    #[arg(long, default_value = "127.0.0.1:5000")]
    api: SocketAddr,
    /// Where to listen for peers: HOST:PORT or a multiaddr.
    #[arg(long, default_value = "127.0.0.1:6000")]
    p2p: String,
    /// A peer to join (repeatable): a multiaddr with /p2p/ID, a p2p HOST:PORT, or
    /// http://HOST:PORT of a node's API.
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<String>,
    /// When to mine: off, on-demand (GET /mine), continuous, or pool:N (when N
    /// transfers wait).
    #[arg(long, default_value = "on-demand")]
    mine: MiningMode,
    /// Where coinbases pay (default: a key the node keeps in DATA_DIR/miner.key).
    #[arg(long)]
    miner_address: Option<String>,
    /// Mining and signature-checking threads (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// A web origin allowed to call the API from a browser (repeatable; `*` for any).
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    cors_origins: Vec<String>,
}

fn parse_origin(text: &str) -> Result<String, String> {
    if text == "*"
        || ((text.starts_with("http://") || text.starts_with("https://"))
            && axum::http::HeaderValue::from_str(text).is_ok())
    {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not an origin like http://localhost:3000 (or * for any)"
        ))
    }
}

/// The platform's data directory for a network (XDG on Linux).
pub(crate) fn default_data_dir(network: Network) -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .context("neither XDG_DATA_HOME nor HOME is set: pass --data-dir")?,
        )
        .join(".local/share"),
    };
    Ok(base.join("oxchain").join(network.name()))
}

pub(crate) fn run(args: NodeArgs) -> anyhow::Result<()> {
    let network = args.network;
    let miner_address = match args.miner_address.as_deref() {
        None => None,
        Some(text) => match Address::parse(text, network) {
            Ok(address) => Some(address),
            // A usage error, like any other bad flag: exit code 2.
            Err(e) => crate::Cli::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!(
                        "invalid value {text:?} for '--miner-address': not a {network} address: {e}"
                    ),
                )
                .exit(),
        },
    };
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir(network)?,
    };
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let config = oxchain_node::NodeConfig {
        network,
        data_dir: data_dir.clone(),
        api: args.api,
        mine: args.mine,
        miner_address,
        threads,
        p2p: args.p2p.clone(),
        peers: args.peers.clone(),
        cors: if args.cors_origins.iter().any(|o| o == "*") {
            oxchain_api::Cors::Any
        } else if args.cors_origins.is_empty() {
            oxchain_api::Cors::None
        } else {
            oxchain_api::Cors::Origins(
                args.cors_origins
                    .iter()
                    .filter_map(|o| axum::http::HeaderValue::from_str(o).ok())
                    .collect(),
            )
        },
    };
    let mine = args.mine;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(oxchain_node::run(config, stop_signal(), |started| {
        println!("oxchain node on {network}");
        println!("  data dir       {}", data_dir.display());
        println!("  API            http://{}", started.api);
        println!("  explorer       http://{}/explorer/", started.api);
        for addr in &started.p2p {
            println!("  p2p            {addr}");
        }
        println!("  height         {}", started.height);
        println!("  mining         {mine}");
        println!(
            "  miner address  {}",
            started.miner_address.to_bech32(network)
        );
        if let Some(cookie) = &started.cookie {
            println!(
                "  API token      {} (needed for mine and send routes)",
                cookie.display()
            );
        }
        println!("Ctrl-C stops the node.");
    }))
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping: finishing the current write ...");
}
