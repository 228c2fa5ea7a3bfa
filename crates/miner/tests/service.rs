//! The mining loop against a real chain on a real store (regtest): on demand, continuous,
//! pool:N, off, rewards to the given address, and stopping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_miner::{MineError, Miner, MiningHandle, MiningMode};
use oxchain_primitives::{Address, Amount, Height};
use oxchain_storage::Store;
use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};

const REWARD_TO: Address = Address([0x42; 20]);

fn chain() -> (tempfile::TempDir, SharedChain) {
    let params = ChainParams::regtest();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    let chain = Chain::new(params, store, MempoolLimits::default(), 1).unwrap();
    (dir, SharedChain::new(chain))
}

fn start(chain: &SharedChain, mode: MiningMode) -> MiningHandle {
    MiningHandle::start(chain.clone(), Arc::new(Miner::new(1)), mode, REWARD_TO).unwrap()
}

fn height(chain: &SharedChain) -> u64 {
    chain.view().tip().height.0
}

/// Waits up to 20 s for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn submit(chain: &SharedChain, nonce: u64) {
    let chain = chain.view();
    let t = signed_transfer(
        &chain.params().genesis_hash(),
        &dev_account_key("alice"),
        dev_account_address("bob"),
        1_000,
        1_000,
        nonce,
    );
    chain.submit_transfer(t).unwrap();
}

#[test]
fn on_demand_mines_exactly_the_blocks_asked_for_and_pays_the_miner_address() {
    let (_dir, chain) = chain();
    let handle = start(&chain, MiningMode::OnDemand);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(height(&chain), 0, "on-demand mines nothing by itself");
    submit(&chain, 0);
    let mined = handle.mine(3).unwrap();
    assert_eq!(
        mined.iter().map(|m| m.height).collect::<Vec<_>>(),
        [Height(1), Height(2), Height(3)]
    );
    let chain = chain.view();
    assert_eq!(chain.tip().hash, mined[2].hash);
    assert!(chain.mempool().is_empty(), "the pending transfer was mined");
    let paid = chain.store().account(&REWARD_TO).unwrap().unwrap().balance;
    assert_eq!(
        paid,
        Amount::from_units(3 * 50 * Amount::UNITS_PER_COIN + 1_000)
    );
}

#[test]
fn continuous_mines_until_stopped() {
    let (_dir, chain) = chain();
    let handle = start(&chain, MiningMode::Continuous);
    wait_for("5 blocks", || height(&chain) >= 5);
    let started = Instant::now();
    handle.stop();
    let stopped_in = started.elapsed();
    let at_stop = height(&chain);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(height(&chain), at_stop, "no block after stop");
    eprintln!("stopped in {stopped_in:?}");
}

#[test]
fn pool_mode_waits_for_n_transfers() {
    let (_dir, chain) = chain();
    let _handle = start(&chain, MiningMode::Pool(3));
    submit(&chain, 0);
    submit(&chain, 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(height(&chain), 0, "two transfers are not enough for pool:3");
    submit(&chain, 2);
    wait_for("a block with the three transfers", || height(&chain) >= 1);
    let chain = chain.view();
    let hash = chain.store().hash_at(Height(1)).unwrap().unwrap();
    let block = chain.store().block(&hash).unwrap().unwrap();
    assert_eq!(
        block.transactions.len(),
        4,
        "coinbase and the three transfers"
    );
}

#[test]
fn off_refuses_requests() {
    let (_dir, chain) = chain();
    let handle = start(&chain, MiningMode::Off);
    assert_eq!(handle.mine(1), Err(MineError::Off));
    submit(&chain, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(height(&chain), 0);
}

#[test]
fn a_hard_search_ends_on_stop() {
    // Main-network difficulty: about 2^32 hashes a block, so the loop never finds one
    // here; stop must end its search.
    let params = ChainParams::main();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    let chain = SharedChain::new(Chain::new(params, store, MempoolLimits::default(), 1).unwrap());
    let miner = Arc::new(Miner::new(1));
    let handle = MiningHandle::start(
        chain.clone(),
        miner.clone(),
        MiningMode::Continuous,
        REWARD_TO,
    )
    .unwrap();
    wait_for("hashing", || miner.hashes_per_thread()[0] > 1_000_000);
    let started = Instant::now();
    handle.stop();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    eprintln!("stop took {took:?}");
}

#[test]
fn a_search_ends_when_the_tip_moves() {
    let (_dir, chain) = chain();
    let watch = chain.view().watch();
    // A header at main-network difficulty: never found here.
    let hard = ChainParams::main();
    let header = hard.genesis().header;
    let miner = Miner::new(1);
    let tip_at = watch.tip();
    let mover = {
        let chain = chain.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let params = ChainParams::regtest();
            let mut block = chain.write(|c| c.block_template(REWARD_TO, 0)).unwrap();
            oxchain_testkit::mine(&params, &mut block.header);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            chain.write(|c| c.process_block(block, now)).unwrap();
            Instant::now()
        })
    };
    let found = miner.mine_until(header, 0, &|| watch.tip() != tip_at);
    let ended = Instant::now();
    let moved = mover.join().unwrap();
    assert!(found.is_none());
    let lag = ended.duration_since(moved);
    assert!(
        lag < Duration::from_secs(2),
        "the search ran on for {lag:?}"
    );
    eprintln!("search ended {lag:?} after the tip moved");
}
