//! Fork choice and reorganisations on a real store: most work wins, ties keep the first
//! seen, deep reorgs go there and back, a double spend ends up once, and the mempool
//! holds exactly the still-valid transfers after every reorg.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{feed, mempool_txids, open_chain, still_valid, transfers, txid};
use oxchain_chain::BlockOutcome;
use oxchain_consensus::ChainParams;
use oxchain_primitives::{Address, Amount, Transfer};
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, signed_transfer};

const COIN: u64 = Amount::UNITS_PER_COIN;

fn pay(builder: &ChainBuilder, from: &str, to: Address, coins: u64, nonce: u64) -> Transfer {
    signed_transfer(
        &builder.genesis_hash(),
        &dev_account_key(from),
        to,
        coins * COIN,
        1_000,
        nonce,
    )
}

fn assert_state_is(chain: &oxchain_chain::Chain, builder: &ChainBuilder) {
    let tip = chain.tip();
    assert_eq!(tip.hash, builder.tip().compute_hash());
    assert_eq!(tip.height, builder.height());
    assert_eq!(
        chain.store().compute_state_digest().unwrap(),
        builder.state.compute_digest()
    );
    for (height, block) in builder.blocks.iter().enumerate() {
        let hash = block.compute_hash();
        assert_eq!(
            chain
                .store()
                .hash_at(oxchain_primitives::Height(height as u64))
                .unwrap(),
            Some(hash)
        );
        for (position, tx) in block.transactions.iter().enumerate() {
            let location = chain
                .store()
                .tx_location(&tx.compute_txid())
                .unwrap()
                .unwrap();
            assert_eq!((location.block, location.position), (hash, position as u32));
        }
    }
    assert_eq!(
        chain
            .store()
            .hash_at(oxchain_primitives::Height(builder.height().0 + 1))
            .unwrap(),
        None
    );
}

#[test]
fn a_longer_but_lighter_chain_loses_to_a_heavier_one() {
    // Regtest with the difficulty schedule on: blocks far ahead of schedule get harder,
    // so a short burst of fast blocks outweighs a longer chain on schedule.
    let mut params = ChainParams::regtest();
    params.retarget = true;
    let mut light = ChainBuilder::new(params.clone());
    let mut heavy = ChainBuilder::new(params.clone());
    heavy.miner = Address([0xbb; 20]);
    heavy.spacing_ms = 1;
    for _ in 0..150 {
        light.extend(vec![]).unwrap();
    }
    for _ in 0..100 {
        heavy.extend(vec![]).unwrap();
    }

    for (first, second, winner) in [(&light, &heavy, &heavy), (&heavy, &light, &heavy)] {
        let (_dir, mut chain) = open_chain(params.clone());
        feed(&mut chain, &first.blocks[1..]);
        feed(&mut chain, &second.blocks[1..]);
        let light_work = chain
            .store()
            .header(&light.tip().compute_hash())
            .unwrap()
            .unwrap();
        let heavy_work = chain
            .store()
            .header(&heavy.tip().compute_hash())
            .unwrap()
            .unwrap();
        assert!(light_work.height > heavy_work.height);
        assert!(light_work.chain_work < heavy_work.chain_work);
        assert_state_is(&chain, winner);
    }
}

#[test]
fn equal_work_keeps_the_first_seen_and_more_work_reorgs() {
    let params = ChainParams::regtest();
    let mut a = ChainBuilder::new(params.clone());
    let mut b = ChainBuilder::new(params.clone());
    b.miner = Address([0xbb; 20]);
    for _ in 0..5 {
        a.extend(vec![]).unwrap();
        b.extend(vec![]).unwrap();
    }
    let (_dir, mut chain) = open_chain(params);
    let outcomes = feed(&mut chain, &a.blocks[1..]);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, BlockOutcome::Extended { .. }))
    );
    let outcomes = feed(&mut chain, &b.blocks[1..]);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, BlockOutcome::SideChain { .. })),
        "{outcomes:?}"
    );
    assert_state_is(&chain, &a);

    b.extend(vec![]).unwrap();
    let outcomes = feed(&mut chain, &b.blocks[6..]);
    assert!(
        matches!(outcomes[0], BlockOutcome::Reorg { depth: 5, .. }),
        "{outcomes:?}"
    );
    assert_state_is(&chain, &b);
    // Known blocks are known, whichever branch they are on.
    let outcomes = feed(&mut chain, &a.blocks[1..2]);
    assert!(matches!(outcomes[0], BlockOutcome::AlreadyKnown { .. }));
}

#[test]
fn a_100_block_reorg_and_back_again() {
    let params = ChainParams::regtest();
    let mut a = ChainBuilder::new(params.clone());
    let mut b = ChainBuilder::new(params.clone());
    b.miner = Address([0xbb; 20]);
    let (bob, charlie) = (dev_account_address("bob"), dev_account_address("charlie"));
    for i in 0..100 {
        let t = pay(&a, "alice", bob, 1, i);
        a.extend(vec![t]).unwrap();
    }
    for i in 0..101 {
        let t = pay(&b, "bob", charlie, 2, i);
        b.extend(vec![t]).unwrap();
    }
    let (_dir, mut chain) = open_chain(params);
    feed(&mut chain, &a.blocks[1..]);
    assert_state_is(&chain, &a);

    let outcomes = feed(&mut chain, &b.blocks[1..]);
    assert!(
        matches!(outcomes[99], BlockOutcome::SideChain { .. }),
        "equal work stays"
    );
    assert!(
        matches!(outcomes[100], BlockOutcome::Reorg { depth: 100, .. }),
        "{:?}",
        outcomes[100]
    );
    assert_state_is(&chain, &b);
    // A's transfers went back to the mempool and are still valid: alice's nonces are
    // unused on B.
    let a_transfers: Vec<Transfer> = a
        .blocks
        .iter()
        .flat_map(|b| transfers(b).cloned())
        .collect();
    assert_eq!(mempool_txids(&chain), still_valid(&chain, &a_transfers));
    assert_eq!(chain.mempool().len(), 100);
    for t in &a_transfers {
        assert_eq!(chain.store().tx_location(&txid(t)).unwrap(), None);
    }
    assert_eq!(
        chain
            .store()
            .history(&dev_account_address("alice"), None, 1000)
            .unwrap()
            .len(),
        1
    );

    for _ in 0..2 {
        a.extend(vec![]).unwrap();
    }
    let outcomes = feed(&mut chain, &a.blocks[101..]);
    assert!(
        matches!(outcomes[1], BlockOutcome::Reorg { depth: 101, .. }),
        "{outcomes:?}"
    );
    assert_state_is(&chain, &a);
    let b_transfers: Vec<Transfer> = b
        .blocks
        .iter()
        .flat_map(|b| transfers(b).cloned())
        .collect();
    assert_eq!(mempool_txids(&chain), still_valid(&chain, &b_transfers));
    assert_eq!(
        chain.mempool().len(),
        101,
        "B's transfers are valid on A too"
    );
}

#[test]
fn a_double_spend_on_two_forks_leaves_exactly_one() {
    let params = ChainParams::regtest();
    let mut a = ChainBuilder::new(params.clone());
    let mut b = ChainBuilder::new(params.clone());
    b.miner = Address([0xbb; 20]);
    let (bob, charlie) = (dev_account_address("bob"), dev_account_address("charlie"));
    let to_bob = pay(&a, "alice", bob, 9_000, 0);
    let to_charlie = pay(&b, "alice", charlie, 9_000, 0);
    a.extend(vec![to_bob.clone()]).unwrap();
    b.extend(vec![to_charlie.clone()]).unwrap();
    b.extend(vec![]).unwrap();

    let (_dir, mut chain) = open_chain(params.clone());
    feed(&mut chain, &a.blocks[1..]);
    feed(&mut chain, &b.blocks[1..]);
    assert_state_is(&chain, &b);
    let balance = |who: &str| {
        chain
            .store()
            .account(&dev_account_address(who))
            .unwrap()
            .unwrap()
            .balance
            .units()
    };
    let start = params.dev_account_funds.units();
    assert_eq!(balance("bob"), start);
    assert_eq!(balance("charlie"), start + 9_000 * COIN);
    assert_eq!(balance("alice"), start - 9_000 * COIN - 1_000);
    // The losing spend did not come back: its nonce is used.
    assert!(!chain.mempool().contains(&txid(&to_bob)));
    assert!(chain.mempool().is_empty());
    let err = chain.submit_transfer(to_bob).unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
}

#[test]
fn after_every_reorg_the_mempool_holds_exactly_the_still_valid_transfers() {
    let params = ChainParams::regtest();
    let mut a = ChainBuilder::new(params.clone());
    let mut b = ChainBuilder::new(params.clone());
    b.miner = Address([0xbb; 20]);
    let [alice, bob, carol, dave, eve] =
        ["alice", "bob", "charlie", "dave", "eve"].map(dev_account_address);

    let carol_tx = pay(&a, "charlie", dave, 5, 0);
    a.extend(vec![
        pay(&a, "alice", bob, 10, 0),
        pay(&a, "alice", bob, 10, 1),
    ])
    .unwrap();
    a.extend(vec![pay(&a, "bob", dave, 3, 0)]).unwrap();
    a.extend(vec![carol_tx.clone()]).unwrap();

    let eve_tx = pay(&a, "eve", alice, 1, 0);
    b.extend(vec![pay(&b, "alice", eve, 9_999, 0)]).unwrap();
    b.extend(vec![]).unwrap();
    b.extend(vec![carol_tx.clone()]).unwrap();
    b.extend(vec![eve_tx.clone()]).unwrap();

    let (_dir, mut chain) = open_chain(params);
    feed(&mut chain, &a.blocks[1..]);
    let pending = vec![
        pay(&a, "alice", carol, 1, 2),
        pay(&a, "alice", carol, 1, 3),
        eve_tx,
    ];
    for t in &pending {
        chain.submit_transfer(t.clone()).unwrap();
    }
    assert_eq!(chain.mempool().len(), 3);

    let outcomes = feed(&mut chain, &b.blocks[1..]);
    assert!(
        matches!(outcomes[3], BlockOutcome::Reorg { depth: 3, .. }),
        "{outcomes:?}"
    );
    assert_state_is(&chain, &b);
    let mut candidates = pending.clone();
    candidates.extend(a.blocks.iter().flat_map(|b| transfers(b).cloned()));
    // Drop the candidates B mined: their nonces are used, so they cannot be expected.
    let expected = still_valid(&chain, &candidates);
    // alice spent almost everything on B: her pending run no longer fits.
    assert!(!expected.contains(&txid(&pending[0])));
    assert_eq!(mempool_txids(&chain), expected);

    // And back: A grows past B.
    let mut candidates: Vec<Transfer> = chain
        .mempool()
        .transfers()
        .into_iter()
        .map(|(_, t)| t.clone())
        .collect();
    candidates.extend(b.blocks.iter().flat_map(|b| transfers(b).cloned()));
    for _ in 0..2 {
        a.extend(vec![]).unwrap();
    }
    let outcomes = feed(&mut chain, &a.blocks[4..]);
    assert!(
        matches!(outcomes[1], BlockOutcome::Reorg { depth: 4, .. }),
        "{outcomes:?}"
    );
    assert_state_is(&chain, &a);
    let expected = still_valid(&chain, &candidates);
    // B's spend to eve is gone with B, so is eve's own transfer: eve's nonce 0 is free
    // again on A and her transfer is pending once more.
    assert!(expected.contains(&txid(&pending[2])));
    assert_eq!(mempool_txids(&chain), expected);
}

/// A branch whose first block breaks a ledger rule: once the reorg to it fails, the
/// blocks above the bad one are marked invalid too, so a new child is refused at once
/// (not stored, no second reorg attempt through the bad block).
#[test]
fn descendants_of_a_ledger_invalid_block_are_refused_without_retrying_the_reorg() {
    let params = ChainParams::regtest();
    let mut main = ChainBuilder::new(params.clone());
    for _ in 0..2 {
        main.extend(vec![]).unwrap();
    }
    // The branch forks at genesis; its first block pays with a nonce from the future.
    let mut branch = ChainBuilder::new(params.clone());
    branch.miner = Address([0xbb; 20]);
    let bad = branch.build_block(vec![pay(&branch, "alice", Address([0x77; 20]), 1, 5)]);
    assert!(
        branch.check_ledger(&bad).is_err(),
        "the nonce breaks a ledger rule"
    );
    branch.blocks.push(bad.clone());
    for _ in 0..3 {
        let next = branch.build_block(vec![]);
        branch.blocks.push(next);
    }
    let (_dir, mut chain) = open_chain(params);
    feed(&mut chain, &main.blocks[1..]);
    // Blocks 1 and 2 of the branch are side blocks; its block 3 has more work than the
    // best chain, and the reorg to it fails at block 1.
    let outcomes = feed(&mut chain, &branch.blocks[1..4]);
    assert!(
        matches!(outcomes[2], BlockOutcome::Invalid { .. }),
        "{outcomes:?}"
    );
    assert_state_is(&chain, &main);
    let third = branch.blocks[3].compute_hash();
    assert_eq!(
        chain.store().header(&third).unwrap().unwrap().status,
        oxchain_storage::BlockStatus::Invalid,
        "the block above the bad one is marked"
    );
    // A child of the branch's tip: refused through its parent, and not stored.
    let child = &branch.blocks[4];
    let outcome = feed(&mut chain, std::slice::from_ref(child)).remove(0);
    match outcome {
        BlockOutcome::Invalid {
            error: oxchain_consensus::ConsensusError::InvalidParent { parent },
            ..
        } => assert_eq!(parent, third),
        other => panic!("{other:?}"),
    }
    assert!(
        chain
            .store()
            .header(&child.compute_hash())
            .unwrap()
            .is_none()
    );
    assert_state_is(&chain, &main);
}

/// A block nobody asked for (gossip) on a branch with less work than the best chain is
/// not stored: it cannot become the tip, and it would cost its sender little. The same
/// block brought by a sync is stored.
#[test]
fn a_low_work_side_block_is_stored_only_when_asked_for() {
    let params = ChainParams::regtest();
    let mut main = ChainBuilder::new(params.clone());
    for _ in 0..3 {
        main.extend(vec![]).unwrap();
    }
    let mut side = ChainBuilder::new(params.clone());
    side.miner = Address([0x77; 20]);
    side.extend(vec![]).unwrap();
    let low = side.blocks[1].clone();
    let hash = low.compute_hash();
    let (_dir, mut chain) = open_chain(params);
    feed(&mut chain, &main.blocks[1..]);
    let outcome = chain.process_block(low.clone(), common::now_ms()).unwrap();
    assert!(
        matches!(outcome, BlockOutcome::LowWork { .. }),
        "{outcome:?}"
    );
    assert!(chain.store().header(&hash).unwrap().is_none(), "not stored");
    assert!(matches!(
        chain.view().screen_block(&low).unwrap(),
        Some(BlockOutcome::LowWork { .. })
    ));
    let outcome = feed(&mut chain, &[low]).remove(0);
    assert!(
        matches!(outcome, BlockOutcome::SideChain { .. }),
        "{outcome:?}"
    );
    assert!(chain.store().header(&hash).unwrap().is_some());
    assert_state_is(&chain, &main);
}
