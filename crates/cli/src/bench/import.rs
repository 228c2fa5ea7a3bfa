//! `oxchain bench import`: blocks of 1,000 signed transfers among many accounts,
//! imported into a fresh store on disk, beside the batch signature verification rate of
//! the same signatures on the same number of threads, measured in the same run.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use oxchain_chain::{BATCH_BLOCKS, Chain, MempoolLimits};
use oxchain_consensus::ChainParams;
use oxchain_consensus::genesis::dev_account_key;
use oxchain_consensus::signatures::{KeyCache, SigCache, verify_block_signatures};
use oxchain_consensus::validate::validate_pow;
use oxchain_primitives::{
    Address, Amount, Block, SecretKey, Signature, Transaction, Transfer, sha256,
};
use oxchain_storage::Store;
use serde_json::json;

/// Transfers per measured block.
const BLOCK_TRANSFERS: usize = 1_000;
/// Accounts that send and receive.
const ACCOUNTS: usize = 2_000;
/// Rounds, each measuring the reference and then the import.
const ROUNDS: usize = 3;
/// Fee of every transfer, in base units (above the minimum relay fee).
const FEE: u64 = 1_000;

/// Options of `bench import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Print a JSON object with the figures as the last line.
    #[arg(long)]
    json: bool,
    /// Measured blocks of 1,000 transfers each.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    blocks: u64,
    /// Threads for signature verification (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: Option<u64>,
}

pub(crate) fn bench_import(args: &ImportArgs) -> anyhow::Result<()> {
    let threads = match args.threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let params = ChainParams::regtest();
    eprintln!(
        "building {} blocks of {BLOCK_TRANSFERS} signed transfers among {ACCOUNTS} accounts ...",
        args.blocks
    );
    let (funding, measured) =
        build_blocks(&params, args.blocks as usize, threads, BLOCK_TRANSFERS, 0)?;
    let transfers = (measured.len() * BLOCK_TRANSFERS) as f64;

    let mut best_verify: f64 = 0.0;
    let mut best_import: f64 = 0.0;
    let mut best_cached: f64 = 0.0;
    for round in 1..=ROUNDS {
        eprintln!(
            "round {round} of {ROUNDS}: batch verification, import, import of transfers verified beforehand ..."
        );
        let seconds = time_verification(&params, &measured, threads);
        best_verify = best_verify.max(transfers / seconds);
        let seconds = time_import(&params, &funding, &measured, threads, false)?;
        best_import = best_import.max(transfers / seconds);
        let seconds = time_import(&params, &funding, &measured, threads, true)?;
        best_cached = best_cached.max(transfers / seconds);
    }
    let blocks_per_s = best_import / BLOCK_TRANSFERS as f64;
    let ratio = best_import / best_verify;
    let cached_ratio = best_cached / best_import;
    println!(
        "Import into a fresh store on disk, {threads} signature thread(s), {BATCH_BLOCKS} blocks per write, best of {ROUNDS} rounds"
    );
    println!("{:<34} {:>12.1}", "blocks per second", blocks_per_s);
    println!("{:<34} {:>12.0}", "transfers per second", best_import);
    println!(
        "{:<34} {:>12.0}",
        "batch verification per second", best_verify
    );
    println!("{:<34} {:>12.2}x", "import / batch verification", ratio);
    println!(
        "{:<34} {:>12.0}",
        "transfers per second, cache hits", best_cached
    );
    println!("{:<34} {:>12.2}x", "cache hits / cold import", cached_ratio);
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "import",
                "threads": threads,
                "blocks": measured.len(),
                "transfers_per_block": BLOCK_TRANSFERS,
                "accounts": ACCOUNTS,
                "batch_blocks": BATCH_BLOCKS,
                "rounds": ROUNDS,
                "blocks_per_s": (blocks_per_s * 10.0).round() / 10.0,
                "txs_per_s": best_import.round(),
                "batch_verify_per_s": best_verify.round(),
                "import_vs_batch_verify": ratio,
                "cached_txs_per_s": best_cached.round(),
                "cached_vs_cold": cached_ratio,
            })
        );
    }
    Ok(())
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds to verify every transfer signature of `blocks`, split over `threads` as the
/// import splits them, each thread with its own key cache.
fn time_verification(params: &ChainParams, blocks: &[Block], threads: usize) -> f64 {
    let genesis = params.genesis_hash();
    let chunk = blocks.len().div_ceil(threads.max(1));
    let start = Instant::now();
    std::thread::scope(|s| {
        for part in blocks.chunks(chunk) {
            s.spawn(move || {
                let mut cache = KeyCache::new(KeyCache::DEFAULT_CAPACITY);
                for block in part {
                    let txids = block.compute_txids();
                    let none = SigCache::new(0);
                    let ok = verify_block_signatures(&mut cache, &none, &genesis, block, &txids);
                    assert!(ok.is_ok(), "benchmark blocks are valid");
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

/// Seconds to import `measured` (after the untimed `funding`) into a fresh store. With
/// `cached`, every measured transfer's signature is first verified (untimed) and recorded
/// in the chain's signature cache, as mempool entry records it: the import of blocks whose
/// transfers a node had in its mempool.
fn time_import(
    params: &ChainParams,
    funding: &[Block],
    measured: &[Block],
    threads: usize,
    cached: bool,
) -> anyhow::Result<f64> {
    let dir = tempdir()?;
    let store = Store::open(dir.path(), params)?;
    let mut chain = Chain::new(params.clone(), store, MempoolLimits::default(), threads)?;
    import(&mut chain, funding)?;
    if cached {
        let genesis = params.genesis_hash();
        let (mut keys, none) = (KeyCache::default(), SigCache::new(0));
        for block in measured {
            let txids = block.compute_txids();
            verify_block_signatures(&mut keys, &none, &genesis, block, &txids)
                .map_err(|e| anyhow::anyhow!("benchmark block: {e}"))?;
            chain.view().verified_signatures().insert(txids);
        }
    }
    let start = Instant::now();
    import(&mut chain, measured)?;
    Ok(start.elapsed().as_secs_f64())
}

pub(super) fn import(chain: &mut Chain, blocks: &[Block]) -> anyhow::Result<()> {
    for outcome in chain.process_blocks(blocks.to_vec(), now_ms())? {
        anyhow::ensure!(
            matches!(outcome, oxchain_chain::BlockOutcome::Extended { .. }),
            "benchmark block not connected: {outcome:?}"
        );
    }
    Ok(())
}

/// A fresh directory for a benchmark's store, removed when dropped.
pub(super) fn tempdir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("oxchain-bench-")
        .tempdir()
        .context("creating a directory for the benchmark's store")
}

/// How many transfers carrying `data_bytes` of data fill a block (its coinbase and
/// header aside).
pub(super) fn full_block_transfers(data_bytes: usize) -> usize {
    block_transfers(oxchain_primitives::limits::MAX_BLOCK_BYTES, data_bytes)
}

/// How many transfers carrying `data_bytes` of data make a block of about `block_bytes`
/// (at least one).
pub(super) fn block_transfers(block_bytes: usize, data_bytes: usize) -> usize {
    let sample = Transaction::Transfer(Transfer {
        from: Default::default(),
        to: Address([0; 20]),
        amount: Amount::from_units(u64::MAX),
        fee: Amount::from_units(u64::MAX),
        nonce: u64::MAX,
        data: vec![0; data_bytes],
        signature: Signature([0; 64]),
    });
    let room = block_bytes
        .min(oxchain_primitives::limits::MAX_BLOCK_BYTES)
        .saturating_sub(1024);
    (room / sample.encoded_len()).max(1)
}

/// Funding blocks (two dev accounts pay every benchmark account) and `count` measured
/// blocks in which the accounts pay each other (`per_block` transfers, each carrying
/// `data_bytes` of data), each a valid block on the last.
pub(super) fn build_blocks(
    params: &ChainParams,
    count: usize,
    threads: usize,
    per_block: usize,
    data_bytes: usize,
) -> anyhow::Result<(Vec<Block>, Vec<Block>)> {
    let genesis = params.genesis_hash();
    let keys: Vec<SecretKey> = (0..ACCOUNTS)
        .map(|i| SecretKey::from_seed(sha256(format!("bench account {i}").as_bytes())))
        .collect();
    let addresses: Vec<Address> = keys
        .iter()
        .map(|k| Address::from_public_key(&k.public_key()))
        .collect();
    let dir = tempdir()?;
    let store = Store::open(dir.path(), params)?;
    let mut chain = Chain::new(params.clone(), store, MempoolLimits::default(), threads)?;
    let mut built = Vec::new();

    let sign = |key: &SecretKey, to: Address, amount: u64, nonce: u64, data: usize| {
        let mut t = Transfer {
            from: key.public_key(),
            to,
            amount: Amount::from_units(amount),
            // Above the minimum fee rate whatever the data.
            fee: Amount::from_units(FEE + data as u64),
            nonce,
            data: vec![0x42; data],
            signature: Signature([0; 64]),
        };
        t.sign(key, &genesis);
        t
    };
    let per_funder = ACCOUNTS / 2;
    for (f, name) in ["alice", "bob"].into_iter().enumerate() {
        let key = dev_account_key(name);
        let transfers = (0..per_funder)
            .map(|i| {
                sign(
                    &key,
                    addresses[f * per_funder + i],
                    5 * Amount::UNITS_PER_COIN,
                    i as u64,
                    0,
                )
            })
            .collect();
        built.push(seal(&mut chain, transfers)?);
    }
    let mut nonces = vec![0u64; ACCOUNTS];
    for k in 0..count {
        let transfers = (0..per_block)
            .map(|j| {
                let from = (k * per_block + j) % ACCOUNTS;
                let to = (from * 7 + k + 1) % ACCOUNTS;
                nonces[from] += 1;
                sign(
                    &keys[from],
                    addresses[to],
                    1_000,
                    nonces[from] - 1,
                    data_bytes,
                )
            })
            .collect();
        built.push(seal(&mut chain, transfers)?);
    }
    let measured = built.split_off(2);
    Ok((built, measured))
}

/// A mined block of `transfers` on the chain's tip, connected to it.
fn seal(chain: &mut Chain, transfers: Vec<Transfer>) -> anyhow::Result<Block> {
    let params = chain.params().clone();
    let mut block = chain.block_template(Address([0xee; 20]), now_ms())?;
    let fees: u64 = transfers.iter().map(|t| t.fee.units()).sum();
    if let Some(Transaction::Coinbase(c)) = block.transactions.first_mut() {
        c.amount = c
            .amount
            .checked_add(Amount::from_units(fees))
            .context("fees overflow")?;
    }
    block
        .transactions
        .extend(transfers.into_iter().map(Transaction::Transfer));
    block.header.merkle_root = block.compute_merkle_root();
    while validate_pow(&params, &block.header).is_err() {
        block.header.nonce += 1;
    }
    import(chain, std::slice::from_ref(&block))?;
    Ok(block)
}
