//! Mempool policy: nonce order, fee-rate priority, replacement, caps and eviction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::txid;
use oxchain_chain::{Chain, MempoolError, MempoolLimits};
use oxchain_consensus::ChainParams;
use oxchain_primitives::{Signature, Transfer};
use oxchain_storage::Store;
use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};

fn chain_with(limits: MempoolLimits) -> (tempfile::TempDir, Chain) {
    let params = ChainParams::regtest();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    (dir, Chain::new(params, store, limits, 1).unwrap())
}

fn pay(chain: &Chain, from: &str, amount: u64, fee: u64, nonce: u64) -> Transfer {
    signed_transfer(
        &chain.params().genesis_hash(),
        &dev_account_key(from),
        dev_account_address("dave"),
        amount,
        fee,
        nonce,
    )
}

#[test]
fn nonces_must_follow_on_without_gaps() {
    let (_dir, mut chain) = chain_with(MempoolLimits::default());
    let err = chain
        .submit_transfer(pay(&chain, "alice", 1, 1_000, 1))
        .unwrap_err();
    assert!(
        matches!(err, MempoolError::NonceGap { expected: 0, .. }),
        "{err}"
    );
    chain
        .submit_transfer(pay(&chain, "alice", 1, 1_000, 0))
        .unwrap();
    chain
        .submit_transfer(pay(&chain, "alice", 1, 1_000, 1))
        .unwrap();
    let again = pay(&chain, "alice", 1, 1_000, 1);
    assert!(matches!(
        chain.submit_transfer(again),
        Err(MempoolError::AlreadyPending(_))
    ));
    assert_eq!(
        chain.mempool().next_nonce(&dev_account_address("alice")),
        Some(2)
    );
}

#[test]
fn fees_below_the_minimum_and_bad_signatures_are_refused() {
    let (_dir, mut chain) = chain_with(MempoolLimits::default());
    let err = chain
        .submit_transfer(pay(&chain, "alice", 1, 10, 0))
        .unwrap_err();
    assert!(matches!(err, MempoolError::FeeTooLow { .. }), "{err}");
    assert!(!err.is_bad_data());
    let mut forged = pay(&chain, "alice", 1, 1_000, 0);
    forged.signature = Signature([1; 64]);
    let err = chain.submit_transfer(forged).unwrap_err();
    assert!(err.is_bad_data(), "{err}");
    assert!(chain.mempool().is_empty());
}

#[test]
fn the_balance_must_cover_every_pending_transfer() {
    let (_dir, mut chain) = chain_with(MempoolLimits::default());
    let funds = chain.params().dev_account_funds.units();
    chain
        .submit_transfer(pay(&chain, "alice", funds / 2, 1_000, 0))
        .unwrap();
    let err = chain
        .submit_transfer(pay(&chain, "alice", funds / 2, 1_000, 1))
        .unwrap_err();
    assert!(
        matches!(err, MempoolError::InsufficientFunds { .. }),
        "{err}"
    );
}

#[test]
fn replacement_needs_ten_percent_more_fee_and_drops_what_it_leaves_unpaid() {
    let (_dir, mut chain) = chain_with(MempoolLimits::default());
    let funds = chain.params().dev_account_funds.units();
    let first = pay(&chain, "alice", 1, 10_000, 0);
    let second = pay(&chain, "alice", funds / 2, 1_000, 1);
    chain.submit_transfer(first.clone()).unwrap();
    chain.submit_transfer(second.clone()).unwrap();
    let err = chain
        .submit_transfer(pay(&chain, "alice", 2, 10_999, 0))
        .unwrap_err();
    assert!(
        matches!(err, MempoolError::ReplacementFeeTooLow { .. }),
        "{err}"
    );
    // A bigger replacement of nonce 0 leaves nonce 1 unpaid: nonce 1 goes.
    let bigger = pay(&chain, "alice", funds / 2 + 1, 11_000, 0);
    chain.submit_transfer(bigger.clone()).unwrap();
    assert!(chain.mempool().contains(&txid(&bigger)));
    assert!(!chain.mempool().contains(&txid(&first)));
    assert!(!chain.mempool().contains(&txid(&second)));
    assert_eq!(chain.mempool().len(), 1);
}

#[test]
fn when_full_the_tail_of_the_lowest_fee_rate_queue_is_evicted() {
    let (_dir, mut chain) = chain_with(MempoolLimits {
        max_count: 3,
        ..MempoolLimits::default()
    });
    let a0 = pay(&chain, "alice", 1, 5_000, 0);
    let a1 = pay(&chain, "alice", 1, 9_000, 1);
    let b0 = pay(&chain, "bob", 1, 2_000, 0);
    for t in [&a0, &a1, &b0] {
        chain.submit_transfer(t.clone()).unwrap();
    }
    // Lower than every tail: refused.
    let err = chain
        .submit_transfer(pay(&chain, "charlie", 1, 1_000, 0))
        .unwrap_err();
    assert!(matches!(err, MempoolError::Full), "{err}");
    // Higher than bob's tail: bob's goes.
    let c0 = pay(&chain, "charlie", 1, 3_000, 0);
    chain.submit_transfer(c0.clone()).unwrap();
    assert!(!chain.mempool().contains(&txid(&b0)));
    // alice's nonce 0 pays less than charlie, but alice's queue as a whole pays more
    // (what a miner gets for taking both). So the next low one evicts charlie.
    let e0 = pay(&chain, "eve", 1, 4_000, 0);
    chain.submit_transfer(e0.clone()).unwrap();
    assert!(!chain.mempool().contains(&txid(&c0)));
    assert!(chain.mempool().contains(&txid(&a0)) && chain.mempool().contains(&txid(&a1)));
    assert_eq!(chain.mempool().len(), 3);
}

#[test]
fn a_high_fee_tail_does_not_pin_a_queue_of_low_fee_transfers() {
    let (_dir, mut chain) = chain_with(MempoolLimits {
        max_count: 10,
        ..MempoolLimits::default()
    });
    // alice: eight transfers near the minimum fee, then one paying 100 times more (the
    // best rate of all, but the queue as a whole still pays little).
    for nonce in 0..8 {
        chain
            .submit_transfer(pay(&chain, "alice", 1, 200, nonce))
            .unwrap();
    }
    chain
        .submit_transfer(pay(&chain, "alice", 1, 20_000, 8))
        .unwrap();
    // bob pays a good rate on every transfer: each one is taken, alice's queue shrinks
    // from its tail.
    for nonce in 0..5 {
        chain
            .submit_transfer(pay(&chain, "bob", 1, 5_000, nonce))
            .unwrap_or_else(|e| panic!("bob's transfer {nonce} refused: {e}"));
    }
    let mempool = chain.mempool();
    assert_eq!(mempool.len(), 10);
    assert_eq!(mempool.next_nonce(&dev_account_address("bob")), Some(5));
    assert_eq!(mempool.next_nonce(&dev_account_address("alice")), Some(5));
}

#[test]
fn a_template_takes_the_best_fee_rate_first_in_nonce_order() {
    let (_dir, mut chain) = chain_with(MempoolLimits::default());
    let a0 = pay(&chain, "alice", 1, 1_000, 0);
    let a1 = pay(&chain, "alice", 1, 50_000, 1);
    let b0 = pay(&chain, "bob", 1, 20_000, 0);
    for t in [&a0, &a1, &b0] {
        chain.submit_transfer(t.clone()).unwrap();
    }
    let all: Vec<_> = chain
        .mempool()
        .select(usize::MAX)
        .iter()
        .map(txid)
        .collect();
    assert_eq!(all, vec![txid(&b0), txid(&a0), txid(&a1)]);
    // Room for one: the best head.
    let size = oxchain_primitives::Transaction::Transfer(b0.clone()).encoded_len();
    let one: Vec<_> = chain.mempool().select(size).iter().map(txid).collect();
    assert_eq!(one, vec![txid(&b0)]);
}
