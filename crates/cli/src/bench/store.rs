//! `oxchain bench store`: peak memory of a node process that opens a store, at chain
//! lengths of 1,000, N and 2N blocks measured in the same run. The page cache is capped
//! (64 MiB), so memory stops growing with the chain once the store outgrows the cache:
//! the figure to watch is the 2N / N ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use oxchain_chain::{BlockOutcome, Chain, MempoolLimits};
use oxchain_consensus::ChainParams;
use oxchain_consensus::validate::validate_pow;
use oxchain_primitives::{Address, Block, Coinbase, Header, Height, Transaction};
use oxchain_storage::Store;
use serde_json::json;

/// Blocks imported per call, so that the builder never holds the whole chain.
const CHUNK: usize = 1024;
/// Distinct coinbase recipients, so that the account table has some size.
const MINERS: u64 = 1_000;

/// Options of `bench store`.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// N: stores of 1,000, N and 2N blocks are measured.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..=5_000_000))]
    blocks: u64,
    /// Measure one store (used by the benchmark itself, in a fresh process).
    #[arg(long, hide = true)]
    open: Option<PathBuf>,
}

pub(crate) fn bench_store(args: &StoreArgs) -> anyhow::Result<()> {
    let params = ChainParams::regtest();
    if let Some(dir) = &args.open {
        return measure_open(dir, &params);
    }
    let root = super::import::tempdir()?;
    let mut figures = Vec::new();
    for (i, blocks) in [1_000, args.blocks, 2 * args.blocks]
        .into_iter()
        .enumerate()
    {
        let dir = root.path().join(format!("chain-{i}"));
        eprintln!("building a store of {blocks} blocks ...");
        let started = Instant::now();
        build_store(&dir, &params, blocks)?;
        eprintln!("  built in {:.1} s", started.elapsed().as_secs_f64());
        let exe = std::env::current_exe().context("finding the oxchain binary")?;
        let out = Command::new(exe)
            .args(["bench", "store", "--open"])
            .arg(&dir)
            .output()
            .context("running the measuring process")?;
        if !out.status.success() {
            bail!(
                "the measuring process failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let figure: serde_json::Value =
            serde_json::from_str(line.trim()).context("reading the measuring process's figures")?;
        let bytes = std::fs::metadata(dir.join("chain.redb"))?.len();
        figures.push((blocks, figure, bytes));
    }
    let rss = |i: usize| figures[i].1["peak_rss_kib"].as_f64().unwrap_or(f64::NAN);
    let open_ms = |i: usize| figures[i].1["open_ms"].as_f64().unwrap_or(f64::NAN);
    println!(
        "Peak RSS of a process that opens a store and reads the tip, an account and a history page"
    );
    for (i, (blocks, _, bytes)) in figures.iter().enumerate() {
        println!(
            "{:>9} blocks: store {:>8.1} MiB, peak RSS {:>7.1} MiB, open {:>7.0} ms",
            blocks,
            *bytes as f64 / (1 << 20) as f64,
            rss(i) / 1024.0,
            open_ms(i)
        );
    }
    let ratio = rss(2) / rss(1);
    println!(
        "peak RSS ratio, {} vs {} blocks: {ratio:.2}x",
        2 * args.blocks,
        args.blocks
    );
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "store",
                "blocks": [figures[0].0, figures[1].0, figures[2].0],
                "peak_rss_kib": [rss(0), rss(1), rss(2)],
                "store_bytes": [figures[0].2, figures[1].2, figures[2].2],
                "open_ms": [open_ms(0), open_ms(1), open_ms(2)],
                "double_vs_single_rss": ratio,
            })
        );
    }
    Ok(())
}

/// A store of `blocks` coinbase-only blocks on regtest.
pub(super) fn build_store(dir: &Path, params: &ChainParams, blocks: u64) -> anyhow::Result<()> {
    let store = Store::open(dir, params)?;
    let mut chain = Chain::new(params.clone(), store, MempoolLimits::default(), 1)?;
    let mut parent = params.genesis().header;
    let mut height = 0;
    let now = super::import::now_ms();
    while height < blocks {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK && height < blocks {
            height += 1;
            let block = next_block(params, &parent, height);
            parent = block.header;
            chunk.push(block);
        }
        for outcome in chain.process_blocks(chunk, now)? {
            anyhow::ensure!(
                matches!(outcome, BlockOutcome::Extended { .. }),
                "benchmark block not connected: {outcome:?}"
            );
        }
        if height % 20_000 < CHUNK as u64 {
            eprintln!("  {height} of {blocks}");
        }
    }
    Ok(())
}

/// A mined coinbase-only block on `parent` (regtest's fixed target).
fn next_block(params: &ChainParams, parent: &Header, height: u64) -> Block {
    let mut to = [0u8; 20];
    to[..8].copy_from_slice(&(height % MINERS).to_le_bytes());
    let mut block = Block {
        header: Header {
            version: oxchain_consensus::params::HEADER_VERSION,
            prev_hash: parent.compute_hash(),
            merkle_root: Default::default(),
            time_ms: parent.time_ms + 1_000,
            bits: params.initial_bits,
            nonce: 0,
        },
        transactions: vec![Transaction::Coinbase(Coinbase {
            height: Height(height),
            to: Address(to),
            amount: params.block_subsidy(Height(height)),
        })],
    };
    block.header.merkle_root = block.compute_merkle_root();
    while validate_pow(params, &block.header).is_err() {
        block.header.nonce += 1;
    }
    block
}

/// Opens the store in `dir` as a node does, reads a little, and prints the peak RSS.
fn measure_open(dir: &Path, params: &ChainParams) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = Store::open(dir, params)?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    let tip = store.tip()?;
    let block = store.block(&tip.hash)?.context("the tip's body")?;
    let Some(Transaction::Coinbase(coinbase)) = block.transactions.first() else {
        bail!("the tip has no coinbase");
    };
    let account = store
        .account(&coinbase.to)?
        .context("the miner's account")?;
    let history = store.history(&coinbase.to, None, 50)?;
    anyhow::ensure!(account.balance.units() > 0 && !history.is_empty());
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    println!(
        "{}",
        json!({ "height": tip.height.0, "peak_rss_kib": peak_kib, "open_ms": open_ms })
    );
    Ok(())
}
