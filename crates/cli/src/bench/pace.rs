//! `oxchain bench pace`: the dev network's block interval, simulated over the consensus
//! crate's own difficulty rule.
//!
//! Mining is a Poisson process: at `H` hashes per second a block of expected work `W`
//! takes an exponentially distributed time of mean `W / H`, whoever of a devnet's miners
//! finds it (on loopback they share one tip within milliseconds). So a run needs no
//! hashing: each block draws its time, takes the bits [`compute_next_bits`] gives its
//! parent and the timestamp the node's miner would write (the time of its last template:
//! made at each new tip and every [`TEMPLATE_REFRESH`], never before the median time
//! past), exactly as the chain checks them. The hash rates simulated are this machine's,
//! measured with the real miner in the same run, and multiples of it.

use std::time::Duration;

use clap::Args;
use oxchain_consensus::ChainParams;
use oxchain_consensus::difficulty::{compute_median_time_past, compute_next_bits};
use oxchain_miner::Path;
use oxchain_miner::service::TEMPLATE_REFRESH;
use oxchain_primitives::Height;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

/// Options of `bench pace`.
#[derive(Debug, Args)]
pub(crate) struct PaceArgs {
    /// Blocks per simulated run, counted from block 1 (the first a new devnet mines).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(20..=100_000))]
    blocks: u64,
    /// Simulated runs per hash rate.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    runs: u64,
    /// Seed of the simulation's random numbers (the same seed, the same figures).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
}

/// Multiples of this machine's hash rate that are simulated beside it.
const FACTORS: [f64; 6] = [0.125, 0.5, 1.0, 4.0, 16.0, 64.0];

/// One simulated run: the wall-clock time from the start of mining to each block, in
/// seconds (index 0 is block 1).
fn run_once(params: &ChainParams, hashes_per_s: f64, blocks: u64, rng: &mut StdRng) -> Vec<f64> {
    // Mining starts a day after genesis's date; only differences matter.
    let start_ms = params.genesis().header.time_ms + 86_400_000;
    let refresh_ms = TEMPLATE_REFRESH.as_millis() as f64;
    let mut clock_ms = start_ms as f64;
    let mut times_ms = vec![params.genesis().header.time_ms];
    let mut found_at = Vec::with_capacity(blocks as usize);
    let mut anchor_ms = 0;
    for height in 1..=blocks {
        let parent_ms = *times_ms.last().expect("genesis is first");
        let bits = compute_next_bits(params, Height(height - 1), parent_ms, anchor_ms);
        let work = bits
            .to_target()
            .map(|t| f64::from(&t.work().0))
            .unwrap_or(f64::INFINITY);
        // Exponential with mean work / rate; 1 - u is in (0, 1].
        let u: f64 = rng.random();
        let took_ms = -(1.0 - u).ln() * work / hashes_per_s * 1000.0;
        let template_ms = clock_ms + (took_ms / refresh_ms).floor() * refresh_ms;
        clock_ms += took_ms;
        let median = compute_median_time_past(&times_ms);
        let time_ms = (template_ms as u64).max(median + 1);
        if height == 1 {
            anchor_ms = time_ms;
        }
        times_ms.push(time_ms);
        found_at.push((clock_ms - start_ms as f64) / 1000.0);
    }
    found_at
}

/// This machine's miner on every core for about a second: what a devnet here hashes.
fn machine_rate() -> (f64, usize) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (work, target) = super::unmeetable_work();
    let rate = (0..3)
        .map(|_| {
            super::hash_for(
                Path::detect(),
                &work,
                &target,
                threads,
                Duration::from_millis(400),
            )
        })
        .fold(0.0, f64::max);
    (rate, threads)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub(crate) fn bench_pace(args: &PaceArgs) -> anyhow::Result<()> {
    let params = ChainParams::dev();
    let target_s = params.target_block_time_ms as f64 / 1000.0;
    eprintln!("measuring this machine's miner on every core ...");
    let (machine, threads) = machine_rate();
    let n = args.blocks as usize;
    let half = n / 2;
    println!(
        "Dev network pace: {} blocks from block 1, {} simulated runs per hash rate, over the \
         consensus rule (ASERT, half-life {} s; block 1 at about 2^{:.0} hashes)",
        args.blocks,
        args.runs,
        params.asert_half_life_ms / 1000,
        f64::from(&params.initial_bits.to_target().expect("valid").work().0).log2(),
    );
    println!(
        "{:<28} {:>10} {:>14} {:>12} {:>10} {:>9}",
        "hash rate", "mean (s)", "runs p5-p95", "last half", "block 1", "vs 10 s"
    );
    let mut rows = Vec::new();
    let mut rng = StdRng::seed_from_u64(args.seed);
    for factor in FACTORS {
        let rate = machine * factor;
        let mut means = Vec::with_capacity(args.runs as usize);
        let mut last_half = 0.0;
        let mut first = 0.0;
        for _ in 0..args.runs {
            let at = run_once(&params, rate, args.blocks, &mut rng);
            means.push(at[n - 1] / n as f64);
            last_half += (at[n - 1] - at[half - 1]) / (n - half) as f64;
            first += at[0];
        }
        let runs = args.runs as f64;
        let mean = means.iter().sum::<f64>() / runs;
        means.sort_by(f64::total_cmp);
        let (p5, p95) = (percentile(&means, 0.05), percentile(&means, 0.95));
        let (last_half, first) = (last_half / runs, first / runs);
        let label = if factor == 1.0 {
            format!("{:.1} MH/s (here, {threads} thr)", rate / 1e6)
        } else {
            format!("{:.1} MH/s (x{factor})", rate / 1e6)
        };
        println!(
            "{label:<28} {mean:>10.2} {:>14} {last_half:>12.2} {first:>9.1}s {:>9}",
            format!("{p5:.2}-{p95:.2}"),
            format!("{:.3}x", mean / target_s),
        );
        rows.push(json!({
            "hashes_per_s": rate,
            "machine_factor": factor,
            "mean_interval_s": mean,
            "p5_s": p5,
            "p95_s": p95,
            "last_half_s": last_half,
            "block_1_s": first,
            "ratio": mean / target_s,
        }));
    }
    println!(
        "mean: the time from the start of mining to block {n}, over {n}; last half: blocks \
         {}..{n} only (after the difficulty found the hash rate)",
        half + 1
    );
    if args.json {
        println!(
            "{}",
            json!({
                "target_s": target_s,
                "blocks": args.blocks,
                "runs": args.runs,
                "machine_hashes_per_s": machine,
                "rates": rows,
            })
        );
    }
    Ok(())
}
