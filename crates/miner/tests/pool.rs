//! The miner as the node uses it: real headers on the consensus rules, several threads,
//! cancellation through a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use oxchain_consensus::ChainParams;
use oxchain_miner::search::CHECK_EVERY;
use oxchain_miner::{Canceller, Miner, Path};
use oxchain_primitives::CompactTarget;
use oxchain_testkit::ChainBuilder;

/// Block 1 of the dev network (about 67 million hashes expected), mined by the pool, passes
/// every consensus check.
#[test]
fn a_mined_block_is_valid_under_consensus() {
    for path in [Path::detect(), Path::Portable] {
        let mut chain = ChainBuilder::new(ChainParams::dev());
        let mut block = chain.build_block_unmined(vec![]);
        let miner = Miner::with_path(2, path);
        let min_time = block.header.time_ms;
        let mined = miner
            .mine(block.header, min_time, &Canceller::new().token())
            .unwrap();
        assert_eq!(mined.hash, mined.header.compute_hash());
        block.header = mined.header;
        chain.push(block).unwrap();
        assert!(miner.hashes_per_thread().iter().sum::<u64>() > 0);
        assert_eq!(miner.hash_rates().len(), 2);
    }
}

/// After `cancel()`, each thread finishes at most the chunk of CHECK_EVERY nonces it is in
/// (about 0.3 ms at full speed), so a new tip stops the search well within 50 ms.
#[test]
fn cancellation_stops_every_thread_within_one_check_interval() {
    let chain = ChainBuilder::new(ChainParams::dev());
    let mut header = chain.build_block_unmined(vec![]).header;
    // A target of 1: the search can only end by cancellation.
    header.bits = CompactTarget(0x0101_0000);
    let miner = Miner::new(2);
    let canceller = Canceller::new();
    let token = canceller.token();
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| miner.mine(header, 0, &token));
        // Until the threads hash (a fixed sleep can end first on a busy machine).
        let deadline = Instant::now() + Duration::from_secs(20);
        while miner.hashes_per_thread().iter().sum::<u64>() == 0 {
            assert!(
                Instant::now() < deadline,
                "the threads never started hashing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let cancelled_at = Instant::now();
        canceller.cancel();
        // Read after `cancel()` returns: each thread is then inside at most one chunk,
        // which it counts when it finishes. (Read before it, a preempted test thread
        // lets any number of chunks pass between the read and the cancel.)
        let at_cancel: u64 = miner.hashes_per_thread().iter().sum();
        assert!(handle.join().unwrap().is_none());
        let waited = cancelled_at.elapsed();
        let after: u64 = miner.hashes_per_thread().iter().sum();
        assert!(at_cancel > 0, "the threads were hashing");
        assert!(
            after - at_cancel <= 2 * CHECK_EVERY,
            "{} hashes after cancel, at most {} allowed",
            after - at_cancel,
            2 * CHECK_EVERY
        );
        // A loose bound against a hang; the hash count above is the real measure.
        assert!(waited < Duration::from_secs(2), "took {waited:?}");
    });
}

/// With small nonce ranges the pool runs out of nonces before it finds a block, moves the
/// time on, and still finds a valid block.
#[test]
fn a_spent_range_refreshes_the_time() {
    let mut chain = ChainBuilder::new(ChainParams::dev());
    let mut block = chain.build_block_unmined(vec![]);
    let start_time = block.header.time_ms;
    // 2 threads x 50,000 nonces per time: block 1 (67M hashes expected) needs many times.
    let miner = Miner::new(2).with_round_nonces(50_000);
    let mined = miner
        .mine(block.header, start_time, &Canceller::new().token())
        .unwrap();
    assert!(mined.header.time_ms > start_time, "the time moved on");
    assert!(mined.header.nonce < 100_000);
    block.header = mined.header;
    chain.push(block).unwrap();
}

#[test]
fn unusable_bits_mine_nothing() {
    let chain = ChainBuilder::regtest();
    let mut header = chain.build_block_unmined(vec![]).header;
    header.bits = CompactTarget(0x0480_0000); // negative
    assert!(
        Miner::new(1)
            .mine(header, 0, &Canceller::new().token())
            .is_none()
    );
}
