//! `oxchain bench light`: what `oxchain verify` spends on headers. A node process serves
//! a regtest chain of N coinbase-only blocks (100,000 by default); the light client
//! fetches every header from genesis over loopback (`GET /v1/headers`, 2,000 at a time,
//! as bytes) and checks each with the consensus crate, as `verify` does with an empty
//! cache. Beside it, in the same run: checking the same headers with no network, the
//! ceiling of the fetch.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use oxchain_consensus::ChainParams;
use oxchain_consensus::light::HeaderChain;
use serde_json::json;

use super::chain::NodeProcess;

/// Options of `bench light`.
#[derive(Debug, Args)]
pub(crate) struct LightArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Blocks in the chain the node serves.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..=1_000_000))]
    blocks: u64,
}

/// Rounds of each figure; the best is kept (ADR 0004).
const ROUNDS: usize = 3;

pub(crate) fn bench_light(args: &LightArgs) -> anyhow::Result<()> {
    let params = ChainParams::regtest();
    let dir = super::import::tempdir()?;
    eprintln!("building a regtest store of {} blocks ...", args.blocks);
    super::store::build_store(dir.path(), &params, args.blocks)?;
    let binary = std::env::current_exe().context("finding the oxchain binary")?;
    let node = NodeProcess::start(&binary, dir.path(), "off")?;
    let url = format!("http://{}", node.api);

    let mut fetch_s = f64::MAX;
    let mut chain = HeaderChain::new(&params);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        chain = crate::notary::fetch_headers(&url, &HeaderChain::new(&params), &mut |_| {})
            .map_err(anyhow::Error::msg)?;
        fetch_s = fetch_s.min(started.elapsed().as_secs_f64());
    }
    node.stop();
    anyhow::ensure!(
        chain.height() == args.blocks,
        "the light client reached height {}, not {}",
        chain.height(),
        args.blocks
    );
    let headers: Vec<_> = chain.headers()[1..].to_vec();
    let now = super::import::now_ms();
    let mut check_s = f64::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut local = HeaderChain::new(&params);
        for header in &headers {
            local
                .push(*header, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        check_s = check_s.min(started.elapsed().as_secs_f64());
    }
    let count = args.blocks + 1;
    let fetch_rate = count as f64 / fetch_s;
    let check_rate = count as f64 / check_s;
    println!("light client: {count} headers from genesis, best of {ROUNDS}");
    println!("  fetched over loopback and checked  {fetch_s:>7.2} s  {fetch_rate:>10.0} headers/s");
    println!(
        "  checked alone (no network)         {check_s:>7.2} s  {check_rate:>10.0} headers/s  (fetch = {})",
        super::ratio(fetch_rate, Some(check_rate))
    );
    let target_s = 5.0 * args.blocks as f64 / 100_000.0;
    println!(
        "  target: {} headers in {target_s:.1} s ({:.2}x of it used)",
        count,
        fetch_s / target_s
    );
    if args.json {
        println!(
            "{}",
            json!({
                "headers": count,
                "fetch_s": fetch_s,
                "fetch_headers_per_s": fetch_rate,
                "check_s": check_s,
                "check_headers_per_s": check_rate,
                "fetch_vs_check": fetch_rate / check_rate,
                "target_s": target_s,
            })
        );
    }
    Ok(())
}
