//! `oxchain bench ...`: figures printed beside a reference measured in the same run
//! (OpenSSL, or our own batch verification for the import), so that the ratio means
//! something on a shared, noisy machine.

mod api;
mod api_load;
mod chain;
mod flood;
mod import;
mod light;
mod pace;
mod store;
mod sync;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use oxchain_consensus::signatures::{KeyCache, SignedMessage, verify_batch};
use std::sync::atomic::{AtomicU64, Ordering};

use oxchain_miner::Path;
use oxchain_miner::search::search;
use oxchain_miner::sha256::HeaderWork;
use oxchain_primitives::{
    BlockHash, CompactTarget, Header, MerkleRoot, SecretKey, Target, sha256, sha256d,
};
use serde_json::json;

/// Which benchmark.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Ed25519 verifications per second on one core, single and in batches of 64 and 1024,
    /// for new senders (every public key decoded) and known senders (decoded keys cached),
    /// beside `openssl speed ed25519`.
    Verify(BenchArgs),
    /// Block-header hashes (SHA-256d of 88 bytes) per second on one thread, beside
    /// `openssl speed -evp sha256` on 16 KiB blocks.
    Hash(BenchArgs),
    /// The miner's nonce search: hashes per second on N threads, beside `openssl speed
    /// -evp sha256` on 16 KiB blocks (with `-multi N`), and `minerd --benchmark` when a
    /// minerd (cpuminer) is on PATH.
    Mine(MineArgs),
    /// Blocks of 1,000 signed transfers among many accounts imported into a fresh store
    /// on disk: blocks and transfers per second, beside batch signature verification of
    /// the same transfers on the same threads.
    Import(import::ImportArgs),
    /// Peak memory of a process that opens a store of 1,000, N and 2N blocks (built
    /// first; N = 100,000 by default), to show that memory does not grow with the chain.
    Store(store::StoreArgs),
    /// Requests per second against a real node on loopback: `GET /v1/status`, `GET
    /// /chain` on a 1,000-block chain, `POST /v1/transactions` with pre-signed transfers,
    /// beside `GET /` (the cheapest route) in the same run.
    Api(api::ApiArgs),
    /// The tutorials' `GET /chain` from a node process: requests per second on a chain of
    /// 101 blocks holding 10,000 transfers beside `GET /`, and peak memory growth while
    /// answering it on 1,000 and 100,000 blocks.
    Chain(chain::ChainArgs),
    /// A node with a chain of blocks of 100 transfers serves a fresh node over loopback:
    /// sync throughput beside the local import of the same blocks, same run.
    Sync(sync::SyncArgs),
    /// A node under a flood of junk tip headers (the known header over a coinbase of the
    /// flooder's, a new peer id at each ban) while an honest peer mines: status latency,
    /// honest block delay and memory, beside the same without the flood.
    Flood(flood::FloodArgs),
    /// The dev network's block interval over its first N blocks (300 by default),
    /// simulated over the consensus difficulty rule at this machine's hash rate (measured
    /// with the miner in the same run) and multiples of it, beside the 10 s target.
    Pace(pace::PaceArgs),
    /// The light client of `oxchain verify`: every header of a regtest chain of N blocks
    /// (100,000 by default) fetched from a node process over loopback and checked, beside
    /// checking the same headers with no network.
    Light(light::LightArgs),
}

/// Options of `bench mine`.
#[derive(Debug, Args)]
pub(crate) struct MineArgs {
    #[command(flatten)]
    common: BenchArgs,
    /// Mining threads (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
}

/// Options every benchmark takes.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Seconds of measuring per figure, in 5 rounds taken in turn with OpenSSL's.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    seconds: u64,
}

pub(crate) fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Verify(args) => bench_verify(&args),
        BenchCommand::Hash(args) => bench_hash(&args),
        BenchCommand::Mine(args) => bench_mine(&args),
        BenchCommand::Import(args) => import::bench_import(&args),
        BenchCommand::Store(args) => store::bench_store(&args),
        BenchCommand::Api(args) => api::bench_api(&args),
        BenchCommand::Chain(args) => chain::bench_chain(&args),
        BenchCommand::Sync(args) => sync::bench_sync(&args),
        BenchCommand::Flood(args) => flood::bench_flood(&args),
        BenchCommand::Pace(args) => pace::bench_pace(&args),
        BenchCommand::Light(args) => light::bench_light(&args),
    }
}

/// Rounds per figure, for ours and for OpenSSL's.
const ROUNDS: usize = 5;

/// Best operations per second seen for one figure over the rounds.
#[derive(Debug, Default, Clone, Copy)]
struct Best(f64);

impl Best {
    /// Runs `step` (which does `per_step` operations) for `budget` and keeps the rate if
    /// it is the best so far.
    fn round(&mut self, budget: Duration, per_step: usize, mut step: impl FnMut(usize)) {
        let start = Instant::now();
        let mut steps = 0usize;
        while start.elapsed() < budget {
            step(steps);
            steps += 1;
        }
        self.0 = self
            .0
            .max((steps * per_step) as f64 / start.elapsed().as_secs_f64());
    }
}

/// The machine is shared, so every figure (ours and OpenSSL's) is measured in [`ROUNDS`]
/// rounds taken in turn, and the best round of each is kept: the least disturbed one, with
/// both sides sampled over the same stretch of time.
fn round_budget(seconds: u64) -> Duration {
    Duration::from_secs_f64(seconds as f64 / ROUNDS as f64)
}

fn ratio(ours: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if r > 0.0 => format!("{:.2}x", ours / r),
        _ => "-".into(),
    }
}

/// Runs `openssl speed -mr -seconds S <args>` once (S = `seconds / ROUNDS`, at least 1)
/// and returns the last field of the line starting with `prefix`, or `None` when
/// `openssl` is not on PATH.
fn openssl_speed(seconds: u64, args: &[&str], prefix: &str) -> anyhow::Result<Option<f64>> {
    let per_round = (seconds / ROUNDS as u64).max(1).to_string();
    let output = match Command::new("openssl")
        .args(["speed", "-mr", "-seconds", &per_round])
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("running openssl speed"),
    };
    if !output.status.success() {
        bail!(
            "openssl speed {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .with_context(|| format!("no {prefix} line in the output of openssl speed"))?;
    let last = line.rsplit(':').next().unwrap_or_default().trim();
    let value = last
        .parse()
        .with_context(|| format!("openssl printed {last:?}, not a number"))?;
    Ok(Some(value))
}

/// Keeps the best of OpenSSL's rounds; `None` once openssl turned out to be missing.
fn best_of(best: Option<f64>, round: Option<f64>) -> Option<f64> {
    match (best, round) {
        (Some(b), Some(r)) => Some(b.max(r)),
        (None, r) => r,
        (b, None) => b,
    }
}

fn bench_verify(args: &BenchArgs) -> anyhow::Result<()> {
    // Distinct keys and messages, as in blocks of transfers from many senders.
    const ITEMS: usize = 4096;
    const SIZES: [usize; 3] = [1, 64, 1024];
    eprintln!("signing {ITEMS} transfers with distinct keys ...");
    let items: Vec<SignedMessage> = (0..ITEMS)
        .map(|i| {
            let key = SecretKey::from_seed(sha256(&(i as u64).to_le_bytes()));
            let message = sha256(&(i as u64 + 1_000_000).to_le_bytes());
            (key.public_key().0, key.sign(&message).0, message)
        })
        .collect();
    let s = args.seconds;
    let budget = round_budget(s);
    // Two extremes of what an import pays for keys: every sender new (each key decoded),
    // and every sender seen before (its decoded key in the node's cache).
    let mut caches = [KeyCache::new(0), KeyCache::new(KeyCache::DEFAULT_CAPACITY)];
    for cache in &mut caches {
        assert!(
            verify_batch(cache, &items).is_ok(),
            "benchmark signatures are valid"
        );
    }
    let mut best = [[Best::default(); 3]; 2];
    let mut openssl = None;
    for round in 1..=ROUNDS {
        eprintln!(
            "round {round} of {ROUNDS}: ours ({} s), then openssl speed ed25519 ...",
            6.0 * budget.as_secs_f64()
        );
        for (cache, figures) in caches.iter_mut().zip(&mut best) {
            for (size, figure) in SIZES.into_iter().zip(figures.iter_mut()) {
                figure.round(budget, size, |i| {
                    let at = (i * size) % ITEMS;
                    let ok = verify_batch(cache, &items[at..at + size]).is_ok();
                    assert!(ok, "benchmark signatures are valid");
                });
            }
        }
        openssl = best_of(openssl, openssl_speed(s, &["ed25519"], "+F6:")?);
    }

    let new = best[0].map(|b| b.0);
    let known = best[1].map(|b| b.0);
    println!("Ed25519 verification, one core, best of {ROUNDS} rounds, verifications per second");
    println!(
        "{:<22} {:>12} {:>8}   {:>12} {:>8}",
        "", "new senders", "vs ossl", "known sndrs", "vs ossl"
    );
    for (i, name) in ["single", "batch of 64", "batch of 1024"]
        .iter()
        .enumerate()
    {
        println!(
            "{name:<22} {:>12.0} {:>8}   {:>12.0} {:>8}",
            new[i],
            ratio(new[i], openssl),
            known[i],
            ratio(known[i], openssl)
        );
    }
    match openssl {
        Some(o) => println!("{:<22} {o:>12.0}", "openssl speed ed25519"),
        None => println!("openssl not found on PATH: no reference figure"),
    }
    println!("new senders: every public key decoded; known senders: decoded keys cached");
    if args.json {
        let per_openssl = |x: f64| openssl.map(|o| x / o);
        println!(
            "{}",
            json!({
                "bench": "verify",
                "seconds": s,
                "rounds": ROUNDS,
                "single_verify_per_s": new[0].round(),
                "batch64_verify_per_s": new[1].round(),
                "batch1024_verify_per_s": new[2].round(),
                "single_vs_openssl": per_openssl(new[0]),
                "batch64_vs_openssl": per_openssl(new[1]),
                "batch1024_vs_openssl": per_openssl(new[2]),
                "single_known_sender_verify_per_s": known[0].round(),
                "batch64_known_sender_verify_per_s": known[1].round(),
                "batch1024_known_sender_verify_per_s": known[2].round(),
                "single_known_sender_vs_openssl": per_openssl(known[0]),
                "batch64_known_sender_vs_openssl": per_openssl(known[1]),
                "batch1024_known_sender_vs_openssl": per_openssl(known[2]),
                "openssl_verify_per_s": openssl.map(f64::round),
            })
        );
    }
    Ok(())
}

fn bench_hash(args: &BenchArgs) -> anyhow::Result<()> {
    let s = args.seconds;
    let budget = round_budget(s);
    let mut header = Header {
        version: 1,
        prev_hash: Default::default(),
        merkle_root: Default::default(),
        time_ms: 1_767_225_600_000,
        bits: Default::default(),
        nonce: 0,
    };
    const PER_STEP: usize = 4096;
    let mut sink = 0u8;
    let mut best = Best::default();
    let mut openssl_bytes = None;
    for round in 1..=ROUNDS {
        eprintln!(
            "round {round} of {ROUNDS}: SHA-256d of 88-byte headers ({:.1} s), then openssl speed -evp sha256 ...",
            budget.as_secs_f64()
        );
        best.round(budget, PER_STEP, |i| {
            for n in 0..PER_STEP as u64 {
                header.nonce = (i as u64) * PER_STEP as u64 + n;
                sink ^= sha256d(&header.to_bytes())[0];
            }
        });
        openssl_bytes = best_of(
            openssl_bytes,
            openssl_speed(s, &["-bytes", "16384", "-evp", "sha256"], "+F:")?,
        );
    }
    std::hint::black_box(sink);
    let hashes_per_s = best.0;
    // 88 bytes pad to two 64-byte blocks, then 32 bytes to one: three compressions.
    let compressions_per_s = hashes_per_s * 3.0;
    let openssl_compressions = openssl_bytes.map(|b| b / 64.0);
    println!(
        "SHA-256d of block headers, one thread, best of {ROUNDS} rounds (no midstate: 3 compressions per hash)"
    );
    println!("{:<36} {:>16} {:>12}", "", "per second", "vs openssl");
    println!("{:<36} {hashes_per_s:>16.0}", "header hashes");
    println!(
        "{:<36} {compressions_per_s:>16.0} {:>12}",
        "SHA-256 compressions",
        ratio(compressions_per_s, openssl_compressions)
    );
    match openssl_compressions {
        Some(c) => println!("{:<36} {c:>16.0}", "openssl sha256 16 KiB (bytes/64)"),
        None => println!("openssl not found on PATH: no reference figure"),
    }
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "hash",
                "seconds": s,
                "rounds": ROUNDS,
                "header_hashes_per_s": hashes_per_s.round(),
                "compressions_per_s": compressions_per_s.round(),
                "openssl_sha256_16k_bytes_per_s": openssl_bytes.map(f64::round),
                "compressions_vs_openssl": openssl_compressions.map(|o| compressions_per_s / o),
            })
        );
    }
    Ok(())
}

/// A header to hash and a target of 1, which no nonce meets: the miner hashes for as long
/// as it is given.
fn unmeetable_work() -> (HeaderWork, Target) {
    let header = Header {
        version: 1,
        prev_hash: BlockHash([0x11; 32]),
        merkle_root: MerkleRoot([0x22; 32]),
        time_ms: 1_767_225_600_000,
        bits: CompactTarget(0x0101_0000),
        nonce: 0,
    };
    let target = CompactTarget(0x0101_0000)
        .to_target()
        .expect("0x01010000 is the valid target 1");
    (HeaderWork::new(&header), target)
}

fn bench_mine(args: &MineArgs) -> anyhow::Result<()> {
    let s = args.common.seconds;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let budget = round_budget(s);
    let path = Path::detect();
    let (work, target) = unmeetable_work();
    let multi = threads.to_string();
    let mut openssl_args = vec!["-bytes", "16384", "-evp", "sha256"];
    if threads > 1 {
        openssl_args.splice(0..0, ["-multi", multi.as_str()]);
    }
    let mut best_total = Best::default();
    let mut best_portable = Best::default();
    let mut openssl = None;
    for round in 1..=ROUNDS {
        eprintln!(
            "round {round} of {ROUNDS}: {threads} mining thread(s) ({:.1} s), one portable thread, then openssl speed {} ...",
            budget.as_secs_f64(),
            openssl_args.join(" ")
        );
        best_total.0 = best_total
            .0
            .max(hash_for(path, &work, &target, threads, budget));
        best_portable.0 = best_portable
            .0
            .max(hash_for(Path::Portable, &work, &target, 1, budget));
        openssl = best_of(openssl, openssl_speed(s, &openssl_args, "+F:")?);
    }
    let minerd = minerd_khash(threads, s)?.map(|k| k * 1000.0);
    let hashes_per_s = best_total.0;
    let openssl_compressions = openssl.map(|b| b / 64.0);

    println!(
        "Nonce search (SHA-256d, midstate cached: 2 compressions per hash), best of {ROUNDS} rounds"
    );
    println!("{:<44} {:>16} {:>12}", "", "per second", "vs openssl");
    println!(
        "{:<44} {hashes_per_s:>16.0} {:>12}",
        format!("hashes, {threads} thread(s), {path:?} path"),
        ratio(hashes_per_s, openssl_compressions)
    );
    println!(
        "{:<44} {:>16.0}",
        "hashes per thread",
        hashes_per_s / threads as f64
    );
    println!(
        "{:<44} {:>16.0}",
        "hashes, 1 thread, portable path (sha2 crate)", best_portable.0
    );
    match openssl_compressions {
        Some(c) => println!(
            "{:<44} {c:>16.0}",
            format!("openssl sha256 16 KiB x{threads} (bytes/64)")
        ),
        None => println!("openssl not found on PATH: no reference figure"),
    }
    match minerd {
        Some(m) => println!(
            "{:<44} {m:>16.0} {:>12}",
            "minerd --benchmark -a sha256d",
            ratio(hashes_per_s, Some(m))
        ),
        None => println!("minerd (cpuminer) not found on PATH: no cpuminer figure"),
    }
    if args.common.json {
        println!(
            "{}",
            json!({
                "bench": "mine",
                "seconds": s,
                "rounds": ROUNDS,
                "threads": threads,
                "path": format!("{path:?}"),
                "hashes_per_s": hashes_per_s.round(),
                "hashes_per_s_per_thread": (hashes_per_s / threads as f64).round(),
                "portable_hashes_per_s_one_thread": best_portable.0.round(),
                "openssl_sha256_16k_bytes_per_s": openssl.map(f64::round),
                "openssl_processes": threads,
                "hashes_vs_openssl_compressions": openssl_compressions.map(|c| hashes_per_s / c),
                "minerd_hashes_per_s": minerd.map(f64::round),
            })
        );
    }
    Ok(())
}

/// Hashes per second of `threads` threads searching disjoint ranges for `budget`.
fn hash_for(
    path: Path,
    work: &HeaderWork,
    target: &Target,
    threads: usize,
    budget: Duration,
) -> f64 {
    let counter = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + budget;
    std::thread::scope(|scope| {
        for t in 0..threads as u64 {
            let counter = &counter;
            scope.spawn(move || {
                let range = t << 40..(t + 1) << 40;
                search(path, work, target, range, counter, &|| {
                    Instant::now() >= deadline
                });
            });
        }
    });
    counter.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// cpuminer's own figure: `minerd --benchmark -a sha256d -t N` for `seconds`, in khash/s
/// (its last "Total:" line), or `None` when no minerd is on PATH.
fn minerd_khash(threads: usize, seconds: u64) -> anyhow::Result<Option<f64>> {
    let child = Command::new("minerd")
        .args(["--benchmark", "-a", "sha256d", "-t", &threads.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("starting minerd"),
    };
    eprintln!("measuring minerd --benchmark -a sha256d -t {threads} ({seconds} s) ...");
    std::thread::sleep(Duration::from_secs(seconds.max(5)));
    let _ = child.kill();
    let output = child
        .wait_with_output()
        .context("reading minerd's output")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let total = text
        .lines()
        .filter_map(|l| l.split("Total: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .next_back();
    Ok(total)
}
