//! One test per consensus rule, each on a real regtest chain built through the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxchain_consensus::accept::accept_header;
use oxchain_consensus::signatures::{KeyCache, verify_transfer};
use oxchain_consensus::validate::{validate_block_with_txids, validate_pow, validate_transfer};
use oxchain_consensus::{ChainParams, ConsensusError, Fault};
use oxchain_primitives::limits::{MAX_BLOCK_BYTES, MAX_TX_DATA_BYTES};
use oxchain_primitives::{
    Amount, Block, Coinbase, CompactTarget, Height, PublicKey, Transaction, Transfer,
};
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, signed_transfer};

const COIN: u64 = Amount::UNITS_PER_COIN;

fn alice_to_bob(chain: &ChainBuilder, amount: u64, fee: u64, nonce: u64) -> Transfer {
    signed_transfer(
        &chain.genesis_hash(),
        &dev_account_key("alice"),
        dev_account_address("bob"),
        amount,
        fee,
        nonce,
    )
}

fn check_block(chain: &ChainBuilder, block: &Block) -> Result<(), ConsensusError> {
    chain.check_block(block).map(|_| ())
}

#[test]
fn a_valid_transfer_moves_funds_and_bumps_the_nonce() {
    let mut chain = ChainBuilder::regtest();
    let block = chain.build_block(vec![alice_to_bob(&chain, 3 * COIN, 1_000, 0)]);
    check_block(&chain, &block).unwrap();
    chain.push(block).unwrap();
    let alice = chain.account(&dev_account_address("alice"));
    assert_eq!(alice.balance.units(), 10_000 * COIN - 3 * COIN - 1_000);
    assert_eq!(alice.nonce, 1);
    assert_eq!(
        chain.account(&dev_account_address("bob")).balance.units(),
        10_003 * COIN
    );
    assert_eq!(
        chain.account(&chain.miner).balance.units(),
        50 * COIN + 1_000
    );
}

#[test]
fn overdraft_is_rejected_with_the_balance() {
    let chain = ChainBuilder::regtest();
    let block = chain.build_block(vec![alice_to_bob(&chain, 10_000 * COIN, 1, 0)]);
    match check_block(&chain, &block) {
        Err(ConsensusError::InsufficientFunds {
            balance, needed, ..
        }) => {
            assert_eq!(balance.units(), 10_000 * COIN);
            assert_eq!(needed.units(), 10_000 * COIN + 1);
        }
        other => panic!("expected an overdraft, got {other:?}"),
    }
}

#[test]
fn wrong_nonce_and_replay_are_rejected() {
    let mut chain = ChainBuilder::regtest();
    let first = alice_to_bob(&chain, COIN, 0, 0);
    chain.extend(vec![first.clone()]).unwrap();
    // The same signed transfer again: its nonce is now stale.
    let replay = chain.build_block(vec![first]);
    assert!(matches!(
        check_block(&chain, &replay),
        Err(ConsensusError::WrongNonce {
            expected: 1,
            got: 0,
            ..
        })
    ));
    // A nonce from the future is wrong too.
    let ahead = chain.build_block(vec![alice_to_bob(&chain, COIN, 0, 5)]);
    assert!(matches!(
        check_block(&chain, &ahead),
        Err(ConsensusError::WrongNonce {
            expected: 1,
            got: 5,
            ..
        })
    ));
}

#[test]
fn a_signature_for_another_networks_genesis_is_rejected() {
    let chain = ChainBuilder::regtest();
    let dev_genesis = ChainParams::dev().genesis_hash();
    let t = signed_transfer(
        &dev_genesis,
        &dev_account_key("alice"),
        dev_account_address("bob"),
        COIN,
        0,
        0,
    );
    let txid = Transaction::Transfer(t.clone()).compute_txid();
    verify_transfer(&mut KeyCache::new(0), &dev_genesis, &t, txid).unwrap();
    assert!(matches!(
        verify_transfer(&mut KeyCache::new(0), &chain.genesis_hash(), &t, txid),
        Err(ConsensusError::BadSignature { .. })
    ));
    let block = chain.build_block(vec![t]);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::BadSignature { .. })
    ));
}

#[test]
fn a_weak_small_order_public_key_is_rejected() {
    let chain = ChainBuilder::regtest();
    // The identity point: under ZIP-215 alone, R = identity and s = 0 would verify for
    // every message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut t = alice_to_bob(&chain, 0, 0, 0);
    t.from = PublicKey(identity);
    let mut sig = [0u8; 64];
    sig[0] = 1;
    t.signature = oxchain_primitives::Signature(sig);
    let txid = Transaction::Transfer(t.clone()).compute_txid();
    assert!(
        verify_transfer(&mut KeyCache::new(0), &chain.genesis_hash(), &t, txid).is_ok(),
        "ZIP-215 accepts it"
    );
    assert!(matches!(
        validate_transfer(&t, txid),
        Err(ConsensusError::WeakKey { .. })
    ));
    let block = chain.build_block(vec![t]);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::WeakKey { .. })
    ));
}

#[test]
fn amount_plus_fee_overflow_is_rejected() {
    let chain = ChainBuilder::regtest();
    let t = alice_to_bob(&chain, u64::MAX, 1, 0);
    let block = chain.build_block(vec![t]);
    // build_block's own fee sum does not overflow here; the rule is what stops it.
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::AmountOverflow { .. })
    ));
}

#[test]
fn a_coinbase_above_subsidy_plus_fees_is_rejected() {
    let chain = ChainBuilder::regtest();
    let t = alice_to_bob(&chain, COIN, 700, 0);
    let exact = chain.build_block(vec![t.clone()]);
    check_block(&chain, &exact).unwrap();
    let mut txs = exact.transactions.clone();
    let Transaction::Coinbase(c) = &mut txs[0] else {
        unreachable!()
    };
    c.amount = Amount::from_units(c.amount.units() + 1);
    let greedy = chain.seal(txs);
    match check_block(&chain, &greedy) {
        Err(ConsensusError::CoinbaseTooLarge { got, max }) => {
            assert_eq!(max.units(), 50 * COIN + 700);
            assert_eq!(got.units(), 50 * COIN + 701);
        }
        other => panic!("expected a greedy coinbase, got {other:?}"),
    }
}

#[test]
fn a_coinbase_for_another_height_is_rejected() {
    let chain = ChainBuilder::regtest();
    let mut txs = chain.build_block(vec![]).transactions;
    let Transaction::Coinbase(c) = &mut txs[0] else {
        unreachable!()
    };
    c.height = Height(7);
    let block = chain.seal(txs);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::BadCoinbaseHeight {
            got: Height(7),
            expected: Height(1)
        })
    ));
}

#[test]
fn two_coinbases_and_a_missing_coinbase_are_rejected() {
    let chain = ChainBuilder::regtest();
    let mut txs = chain.build_block(vec![]).transactions;
    txs.push(Transaction::Coinbase(Coinbase {
        height: Height(1),
        to: dev_account_address("eve"),
        amount: Amount::ZERO,
    }));
    let block = chain.seal(txs);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::ExtraCoinbase { index: 1 })
    ));
    let transfer_first = chain.seal(vec![Transaction::Transfer(alice_to_bob(
        &chain, COIN, 0, 0,
    ))]);
    assert!(matches!(
        check_block(&chain, &transfer_first),
        Err(ConsensusError::FirstNotCoinbase)
    ));
    let empty = chain.seal(vec![]);
    assert!(matches!(
        check_block(&chain, &empty),
        Err(ConsensusError::NoTransactions)
    ));
}

#[test]
fn a_duplicate_txid_in_a_block_is_rejected() {
    let chain = ChainBuilder::regtest();
    let t = alice_to_bob(&chain, COIN, 0, 0);
    let block = chain.build_block(vec![t.clone(), t]);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::DuplicateTxid { .. })
    ));
}

#[test]
fn an_oversize_block_is_rejected() {
    let chain = ChainBuilder::regtest();
    let key = dev_account_key("alice");
    let per_tx = {
        let mut t = alice_to_bob(&chain, 1, 0, 0);
        t.data = vec![0; MAX_TX_DATA_BYTES];
        Transaction::Transfer(t).encoded_len()
    };
    let count = MAX_BLOCK_BYTES / per_tx + 1;
    let transfers = (0..count as u64)
        .map(|nonce| {
            let mut t = alice_to_bob(&chain, 1, 0, nonce);
            t.data = vec![0; MAX_TX_DATA_BYTES];
            t.sign(&key, &chain.genesis_hash());
            t
        })
        .collect();
    let block = chain.build_block(transfers);
    assert!(block.encoded_len() > MAX_BLOCK_BYTES);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::BlockTooLarge {
            max: MAX_BLOCK_BYTES,
            ..
        })
    ));
}

#[test]
fn oversize_data_is_rejected() {
    let chain = ChainBuilder::regtest();
    let key = dev_account_key("alice");
    let mut fits = alice_to_bob(&chain, 1, 0, 0);
    fits.data = vec![b'k'; MAX_TX_DATA_BYTES];
    fits.sign(&key, &chain.genesis_hash());
    check_block(&chain, &chain.build_block(vec![fits.clone()])).unwrap();
    let mut over = fits;
    over.data.push(b'k');
    over.sign(&key, &chain.genesis_hash());
    let block = chain.build_block(vec![over]);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::DataTooLong {
            len: 1025,
            max: 1024,
            ..
        })
    ));
}

#[test]
fn a_bad_merkle_root_is_rejected() {
    let chain = ChainBuilder::regtest();
    let mut block = chain.build_block(vec![alice_to_bob(&chain, COIN, 0, 0)]);
    block.header.merkle_root.0[0] ^= 1;
    oxchain_testkit::mine(&chain.params, &mut block.header);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::BadMerkleRoot { .. })
    ));
}

#[test]
fn a_txid_list_short_of_the_block_leaves_no_transaction_unchecked() {
    // A header whose merkle root covers all but the last transaction, which is a second
    // copy of the first: given the txids of the others only, every transaction must
    // still be checked (duplicate), and the root against all of them.
    let chain = ChainBuilder::regtest();
    let transfer = alice_to_bob(&chain, COIN, 0, 0);
    let mut block = chain.build_block(vec![transfer.clone()]);
    let txids = block.compute_txids();
    block.transactions.push(Transaction::Transfer(transfer));
    oxchain_testkit::mine(&chain.params, &mut block.header);
    assert!(matches!(
        validate_block_with_txids(&block, txids),
        Err(ConsensusError::DuplicateTxid { .. })
    ));
}

#[test]
fn wrong_bits_are_rejected() {
    // A harder target than the schedule's: the PoW holds, the bits are still wrong.
    let chain = ChainBuilder::regtest();
    let mut block = chain.build_block(vec![]);
    let harder = CompactTarget(0x2000_ffff);
    block.header.bits = harder;
    oxchain_testkit::mine(&chain.params, &mut block.header);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::WrongBits { got, expected }) if got == harder && expected == chain.params.initial_bits
    ));
}

#[test]
fn a_hash_above_the_target_is_rejected() {
    let chain = ChainBuilder::regtest();
    let mut block = chain.build_block(vec![]);
    while validate_pow(&chain.params, &block.header).is_ok() {
        block.header.nonce += 1;
    }
    let err = check_block(&chain, &block).unwrap_err();
    assert!(matches!(err, ConsensusError::HighHash { .. }));
    assert_eq!(err.fault(), Fault::Sender);
}

#[test]
fn time_equal_to_the_median_is_rejected_and_median_plus_one_accepted() {
    let mut chain = ChainBuilder::regtest();
    for _ in 0..12 {
        chain.extend(vec![]).unwrap();
    }
    let recent = chain.recent_times();
    let median = oxchain_consensus::difficulty::compute_median_time_past(&recent);
    let ctx = chain.header_context(&recent, median + 10_000);
    let mut header = chain.build_block(vec![]).header;
    header.time_ms = median;
    assert!(matches!(
        accept_header(&chain.params, &header, &ctx),
        Err(ConsensusError::TimeTooOld { time_ms, median_ms }) if time_ms == median && median_ms == median
    ));
    header.time_ms = median + 1;
    accept_header(&chain.params, &header, &ctx).unwrap();
}

#[test]
fn a_block_from_the_future_is_retried_later_not_a_fault() {
    let chain = ChainBuilder::regtest();
    let recent = chain.recent_times();
    let now = chain.tip().header.time_ms + 1_000;
    let ctx = chain.header_context(&recent, now);
    let mut header = chain.build_block(vec![]).header;
    header.time_ms = now + 120_000;
    accept_header(&chain.params, &header, &ctx).unwrap();
    header.time_ms = now + 120_001;
    let err = accept_header(&chain.params, &header, &ctx).unwrap_err();
    assert!(matches!(err, ConsensusError::TimeTooNew { .. }));
    assert_eq!(err.fault(), Fault::RetryLater);
    assert!(!err.is_bad_data());
}

#[test]
fn a_target_above_the_network_limit_is_rejected() {
    let chain = ChainBuilder::regtest();
    let mut block = chain.build_block(vec![]);
    // Easier than dev's limit of 2^248 - 1 (checked before the hash, so no mining needed).
    block.header.bits = CompactTarget(0x2100_ffff);
    assert!(matches!(
        validate_pow(&ChainParams::dev(), &block.header),
        Err(ConsensusError::TargetAboveLimit { .. })
    ));
}

#[test]
fn an_unknown_header_version_is_rejected() {
    let chain = ChainBuilder::regtest();
    let mut block = chain.build_block(vec![]);
    block.header.version = 2;
    oxchain_testkit::mine(&chain.params, &mut block.header);
    assert!(matches!(
        check_block(&chain, &block),
        Err(ConsensusError::UnsupportedVersion(2))
    ));
}

#[test]
fn the_subsidy_halves_at_the_interval() {
    // Regtest halves every 150 blocks.
    let mut chain = ChainBuilder::regtest();
    for _ in 0..149 {
        chain.extend(vec![]).unwrap();
    }
    let miner = chain.miner;
    assert_eq!(chain.account(&miner).balance.units(), 149 * 50 * COIN);
    // Block 150 may claim only 25 coins.
    let full = chain.build_block(vec![]);
    let mut txs = full.transactions.clone();
    let Transaction::Coinbase(c) = &mut txs[0] else {
        unreachable!()
    };
    assert_eq!(c.amount.units(), 25 * COIN);
    c.amount = Amount::from_units(50 * COIN);
    let greedy = chain.seal(txs);
    assert!(matches!(
        check_block(&chain, &greedy),
        Err(ConsensusError::CoinbaseTooLarge { max, .. }) if max.units() == 25 * COIN
    ));
    chain.push(full).unwrap();
    assert_eq!(
        chain.account(&miner).balance.units(),
        149 * 50 * COIN + 25 * COIN
    );
}

#[test]
fn a_bad_signature_among_many_is_named_by_the_batch() {
    let chain = ChainBuilder::regtest();
    let genesis = chain.genesis_hash();
    let mut transfers: Vec<Transfer> = ["alice", "bob", "charlie", "dave", "eve"]
        .iter()
        .map(|name| {
            signed_transfer(
                &genesis,
                &dev_account_key(name),
                dev_account_address("eve"),
                COIN,
                1,
                0,
            )
        })
        .collect();
    // A second transfer from alice: two signatures under one key in the batch.
    transfers.push(signed_transfer(
        &genesis,
        &dev_account_key("alice"),
        dev_account_address("bob"),
        COIN,
        1,
        1,
    ));
    let good = chain.build_block(transfers.clone());
    check_block(&chain, &good).unwrap();
    transfers[3].signature.0[40] ^= 1;
    let culprit = Transaction::Transfer(transfers[3].clone()).compute_txid();
    let bad = chain.build_block(transfers);
    match check_block(&chain, &bad) {
        Err(ConsensusError::BadSignature { txid }) => assert_eq!(txid, culprit),
        other => panic!("expected a bad signature, got {other:?}"),
    }
}
