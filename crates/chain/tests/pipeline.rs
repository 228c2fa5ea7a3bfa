//! The block pipeline's outcomes, one test per step, on a real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{feed, now_ms, open_chain};
use oxchain_chain::BlockOutcome;
use oxchain_consensus::{ChainParams, ConsensusError, Fault};
use oxchain_primitives::{Address, Amount, Height, Signature, Transaction};
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, mine, signed_transfer};

fn transfer(b: &ChainBuilder, amount: u64, nonce: u64) -> oxchain_primitives::Transfer {
    signed_transfer(
        &b.genesis_hash(),
        &dev_account_key("alice"),
        dev_account_address("bob"),
        amount,
        1_000,
        nonce,
    )
}

#[test]
fn orphans_wait_for_their_parent_then_connect() {
    let mut b = ChainBuilder::regtest();
    for _ in 0..4 {
        b.extend(vec![]).unwrap();
    }
    let (_dir, mut chain) = open_chain(ChainParams::regtest());
    let outcomes = feed(
        &mut chain,
        &[
            b.blocks[4].clone(),
            b.blocks[3].clone(),
            b.blocks[2].clone(),
        ],
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, BlockOutcome::Orphan { .. })),
        "{outcomes:?}"
    );
    assert_eq!(chain.orphans().len(), 3);
    assert!(matches!(
        feed(&mut chain, &b.blocks[4..5])[0],
        BlockOutcome::AlreadyKnown { .. }
    ));
    let outcome = chain.process_block(b.blocks[1].clone(), now_ms()).unwrap();
    assert!(
        matches!(outcome, BlockOutcome::Extended { .. }),
        "{outcome:?}"
    );
    assert_eq!(chain.tip().height, Height(4));
    assert_eq!(chain.tip().hash, b.tip().compute_hash());
    assert!(chain.orphans().is_empty());
}

#[test]
fn bad_proof_of_work_is_refused_before_anything_is_stored() {
    let b = ChainBuilder::regtest();
    let (_dir, mut chain) = open_chain(ChainParams::regtest());
    let mut block = b.build_block(vec![]);
    // Find a nonce that misses the target.
    while oxchain_consensus::validate::validate_pow(chain.params(), &block.header).is_ok() {
        block.header.nonce += 1;
    }
    let outcome = chain.process_block(block.clone(), now_ms()).unwrap();
    assert!(
        matches!(
            &outcome,
            BlockOutcome::Invalid {
                error: ConsensusError::HighHash { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.fault(), Some(Fault::Sender));
    assert_eq!(chain.store().header(&block.compute_hash()).unwrap(), None);
}

#[test]
fn a_bad_signature_is_refused_and_not_stored() {
    let b = ChainBuilder::regtest();
    let (_dir, mut chain) = open_chain(ChainParams::regtest());
    let mut t = transfer(&b, 5, 0);
    t.signature = Signature([7; 64]);
    let block = b.seal(vec![
        b.build_block_unmined(vec![]).transactions[0].clone(),
        Transaction::Transfer(t),
    ]);
    let outcome = chain.process_block(block.clone(), now_ms()).unwrap();
    assert!(
        matches!(
            &outcome,
            BlockOutcome::Invalid {
                error: ConsensusError::BadSignature { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(chain.store().header(&block.compute_hash()).unwrap(), None);
    assert_eq!(chain.tip().height, Height(0));
}

#[test]
fn a_block_from_the_future_is_no_fault() {
    let mut b = ChainBuilder::regtest();
    b.spacing_ms = 10 * 365 * 24 * 3600 * 1000;
    let block = b.build_block(vec![]);
    let (_dir, mut chain) = open_chain(ChainParams::regtest());
    let outcome = chain.process_block(block.clone(), now_ms()).unwrap();
    assert_eq!(outcome.fault(), Some(Fault::RetryLater), "{outcome:?}");
    // Later, it is fine.
    let outcome = chain.process_block(block, u64::MAX / 2).unwrap();
    assert!(
        matches!(outcome, BlockOutcome::Extended { .. }),
        "{outcome:?}"
    );
}

#[test]
fn an_overdraft_on_a_side_branch_is_caught_when_it_would_connect() {
    let params = ChainParams::regtest();
    let mut a = ChainBuilder::new(params.clone());
    a.extend(vec![]).unwrap();
    a.extend(vec![]).unwrap();
    // Branch B: one good block, then a block that overdraws alice, then a child.
    let mut b = ChainBuilder::new(params.clone());
    b.miner = Address([0xbb; 20]);
    b.extend(vec![]).unwrap();
    let too_much = params.dev_account_funds.units() + 1;
    let mut bad = b.build_block_unmined(vec![transfer(&b, too_much, 0)]);
    mine(&params, &mut bad.header);
    b.blocks.push(bad.clone());
    let mut child = b.build_block_unmined(vec![]);
    if let Transaction::Coinbase(c) = &mut child.transactions[0] {
        c.height = Height(3);
    }
    child.header.merkle_root = child.compute_merkle_root();
    mine(&params, &mut child.header);

    let (_dir, mut chain) = open_chain(params);
    feed(&mut chain, &a.blocks[1..]);
    let tip = chain.tip();
    let digest = chain.store().compute_state_digest().unwrap();
    let outcomes = feed(&mut chain, &[b.blocks[1].clone(), bad.clone()]);
    assert!(
        matches!(outcomes[0], BlockOutcome::SideChain { .. }),
        "{outcomes:?}"
    );
    // Equal work: a side block, not yet checked against the ledger.
    assert!(
        matches!(outcomes[1], BlockOutcome::SideChain { .. }),
        "{outcomes:?}"
    );
    let outcome = chain.process_block(child.clone(), now_ms()).unwrap();
    assert!(
        matches!(
            &outcome,
            BlockOutcome::Invalid {
                error: ConsensusError::InvalidParent { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    // The old chain is back, whole.
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.store().compute_state_digest().unwrap(), digest);
    let bad_record = chain.store().header(&bad.compute_hash()).unwrap().unwrap();
    assert_eq!(bad_record.status, oxchain_storage::BlockStatus::Invalid);
}

#[test]
fn a_batch_connects_in_one_write_with_parallel_signatures() {
    let params = ChainParams::regtest();
    let mut b = ChainBuilder::new(params.clone());
    for nonce in 0..10 {
        b.extend(vec![transfer(&b, 1, nonce)]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = oxchain_storage::Store::open(dir.path(), &params).unwrap();
    let mut chain =
        oxchain_chain::Chain::new(params, store, oxchain_chain::MempoolLimits::default(), 2)
            .unwrap();
    let mut events = chain.subscribe();
    let outcomes = chain
        .process_blocks(b.blocks[1..].to_vec(), now_ms())
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, BlockOutcome::Extended { .. })),
        "{outcomes:?}"
    );
    assert_eq!(
        chain.store().compute_state_digest().unwrap(),
        b.state.compute_digest()
    );
    let mut connected = 0;
    while let Ok(event) = events.try_recv() {
        assert!(matches!(
            event,
            oxchain_chain::ChainEvent::BlockConnected { .. }
        ));
        connected += 1;
    }
    assert_eq!(connected, 10);
}

#[test]
fn the_template_holds_the_mempool_and_is_valid_once_mined() {
    let params = ChainParams::regtest();
    let b = ChainBuilder::new(params.clone());
    let (_dir, mut chain) = open_chain(params.clone());
    for nonce in 0..5 {
        chain.submit_transfer(transfer(&b, 100, nonce)).unwrap();
    }
    let miner = Address([0xcc; 20]);
    let mut block = chain.block_template(miner, now_ms()).unwrap();
    assert_eq!(block.transactions.len(), 6);
    mine(&params, &mut block.header);
    let outcome = chain.process_block(block, now_ms()).unwrap();
    assert!(
        matches!(outcome, BlockOutcome::Extended { .. }),
        "{outcome:?}"
    );
    assert!(chain.mempool().is_empty());
    let paid = chain.store().account(&miner).unwrap().unwrap().balance;
    assert_eq!(
        paid,
        Amount::from_units(50 * Amount::UNITS_PER_COIN + 5 * 1_000)
    );
}
