//! `oxchain bench sync`: a node holding a chain of blocks of 100 transfers (or, with
//! `--block-bytes N`, blocks of about N bytes of transfers carrying 1,000 data bytes each)
//! serves a fresh node over loopback (libp2p); blocks and transfers per second of the
//! sync, beside the local import of the same blocks into a fresh store, measured in the
//! same run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_storage::Store;
use serde_json::json;

/// Transfers per block by default.
const PER_BLOCK: usize = 100;
/// Data bytes of each transfer in blocks of `--block-bytes`.
const DATA_BYTES: usize = 1_000;

/// Options of `bench sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Blocks of 100 transfers in the served chain.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    blocks: u64,
    /// Blocks of about this many bytes (at most 1 MiB): transfers carrying 1,000 data
    /// bytes each, as many as fit (default: 100 transfers without data, about 15 KB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2_048..=1_048_576))]
    block_bytes: Option<u64>,
}

pub(crate) fn bench_sync(args: &SyncArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let params = ChainParams::regtest();
    let (per_block, data) = match args.block_bytes {
        Some(bytes) => (
            super::import::block_transfers(bytes as usize, DATA_BYTES),
            DATA_BYTES,
        ),
        None => (PER_BLOCK, 0),
    };
    eprintln!(
        "building {} blocks of {per_block} signed transfers ({data} data bytes each) ...",
        args.blocks
    );
    let (funding, measured) =
        super::import::build_blocks(&params, args.blocks as usize, threads, per_block, data)?;
    let transfers = (measured.len() * per_block) as f64;
    let block_bytes = measured
        .iter()
        .map(|b| oxchain_primitives::encode(b).len())
        .max()
        .unwrap_or(0);

    // Local import: the reference. Its store then serves the sync.
    eprintln!("importing them locally ...");
    let served_dir = super::import::tempdir()?;
    let store = Store::open(served_dir.path(), &params)?;
    let mut server = Chain::new(params.clone(), store, MempoolLimits::default(), threads)?;
    super::import::import(&mut server, &funding)?;
    let started = Instant::now();
    super::import::import(&mut server, &measured)?;
    let import_seconds = started.elapsed().as_secs_f64();
    let target = server.tip();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sync_seconds = runtime.block_on(async {
        let server = SharedChain::new(server);
        let server_net = oxchain_net::service::start(
            oxchain_net::NetConfig::new(served_dir.path().to_path_buf(), "127.0.0.1:0"),
            server.clone(),
        )
        .await?;
        let addr = server_net
            .info()
            .listen_addrs
            .first()
            .cloned()
            .context("the server did not listen")?;
        let fresh_dir = super::import::tempdir()?;
        let fresh = SharedChain::new(Chain::new(
            params.clone(),
            Store::open(fresh_dir.path(), &params)?,
            MempoolLimits::default(),
            threads,
        )?);
        eprintln!("syncing a fresh node over loopback ...");
        let mut config = oxchain_net::NetConfig::new(fresh_dir.path().to_path_buf(), "127.0.0.1:0");
        config.peers = vec![addr];
        let started = Instant::now();
        let fresh_net = oxchain_net::service::start(config, fresh.clone()).await?;
        let deadline = started + Duration::from_secs(3600);
        let mut last_report = Instant::now();
        loop {
            let tip = fresh.view().tip();
            if tip == target {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the sync did not finish within an hour (at height {})",
                    tip.height
                );
            }
            if last_report.elapsed() >= Duration::from_secs(5) {
                eprintln!("  height {} of {}", tip.height, target.height);
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        drop(fresh_net);
        drop(server_net);
        anyhow::Ok(seconds)
    })?;

    let import_rate = transfers / import_seconds;
    let sync_rate = transfers / sync_seconds;
    let blocks = measured.len() as f64;
    println!(
        "Sync of {} blocks of {per_block} transfers ({block_bytes} bytes at most) over loopback (libp2p), {threads} threads per node",
        measured.len()
    );
    println!(
        "{:<28} {:>10.1} blocks/s {:>10.0} transfers/s",
        "sync",
        blocks / sync_seconds,
        sync_rate
    );
    println!(
        "{:<28} {:>10.1} blocks/s {:>10.0} transfers/s",
        "local import (reference)",
        blocks / import_seconds,
        import_rate
    );
    println!("sync / local import: {:.2}x", sync_rate / import_rate);
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "sync",
                "blocks": measured.len(),
                "transfers_per_block": per_block,
                "block_bytes": block_bytes,
                "blocks_per_s": (blocks / sync_seconds * 10.0).round() / 10.0,
                "txs_per_s": sync_rate.round(),
                "import_txs_per_s": import_rate.round(),
                "sync_vs_import": sync_rate / import_rate,
                "threads": threads,
            })
        );
    }
    Ok(())
}
