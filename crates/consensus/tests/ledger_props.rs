//! Ledger invariants over random chains: supply is exactly genesis plus subsidies, no
//! rejected block changes anything, and undo reverses apply exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxchain_consensus::MemoryState;
use oxchain_consensus::genesis::DEV_ACCOUNTS;
use oxchain_primitives::{Account, Address, Amount, Transfer};
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, signed_transfer};
use proptest::prelude::*;

/// One attempted transfer: sender and recipient among the dev accounts and a few fresh
/// names, an amount as a fraction of the sender's balance (sometimes more than all of it),
/// and whether to use a stale nonce.
#[derive(Debug, Clone)]
struct Attempt {
    from: usize,
    to: usize,
    per_mille: u64,
    fee: u64,
    stale_nonce: bool,
}

const NAMES: [&str; 8] = [
    "alice", "bob", "charlie", "dave", "eve", "frank", "grace", "heidi",
];

fn attempt() -> impl Strategy<Value = Attempt> {
    (
        0..NAMES.len(),
        0..NAMES.len(),
        0u64..1_300,
        0u64..5_000,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(from, to, per_mille, fee, stale_nonce)| Attempt {
            from,
            to,
            per_mille,
            fee,
            stale_nonce,
        })
}

fn total_supply(state: &MemoryState) -> u64 {
    state
        .compute_total_supply()
        .expect("supply fits in u64")
        .units()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_chains_keep_supply_and_undo_exactly(
        blocks in proptest::collection::vec(proptest::collection::vec(attempt(), 0..6), 1..12)
    ) {
        let mut chain = ChainBuilder::regtest();
        let genesis_supply = total_supply(&chain.state);
        prop_assert_eq!(
            genesis_supply,
            DEV_ACCOUNTS.len() as u64 * chain.params.dev_account_funds.units()
        );
        let mut subsidies = 0u64;
        let mut miner_earned = 0u64;
        let mut history: Vec<(MemoryState, oxchain_primitives::BlockUndo)> = Vec::new();

        for attempts in blocks {
            let mut accepted: Vec<Transfer> = Vec::new();
            // Track the state as the block would leave it, to pick amounts near balances.
            let mut pending = chain.state.clone();
            for a in attempts {
                let key = dev_account_key(NAMES[a.from]);
                let sender = dev_account_address(NAMES[a.from]);
                let account = {
                    use oxchain_consensus::AccountReader;
                    let Ok(found) = pending.account(&sender);
                    found.unwrap_or_default()
                };
                let amount = account.balance.units() / 1000 * a.per_mille;
                let nonce = if a.stale_nonce { account.nonce.wrapping_sub(1) } else { account.nonce };
                let t = signed_transfer(&chain.genesis_hash(), &key, dev_account_address(NAMES[a.to]), amount, a.fee, nonce);
                let txid = oxchain_primitives::Transaction::Transfer(t.clone()).compute_txid();
                // A block holding the accepted transfers plus this one.
                let mut trial = accepted.clone();
                trial.push(t.clone());
                let block = chain.build_block(trial);
                match chain.check_ledger(&block) {
                    Ok(_) => {
                        let update = oxchain_consensus::ledger::apply_transfer(&pending, &t, txid).unwrap();
                        pending.apply(&update);
                        accepted.push(t);
                    }
                    Err(e) => {
                        // Only an overdraft or a bad nonce may reject it, and the state is
                        // untouched.
                        prop_assert!(
                            matches!(e, oxchain_consensus::ConsensusError::InsufficientFunds { .. }
                                | oxchain_consensus::ConsensusError::WrongNonce { .. }),
                            "unexpected rejection {e}"
                        );
                        prop_assert!(amount + a.fee > account.balance.units() || a.stale_nonce);
                    }
                }
            }
            let before = chain.state.clone();
            let height = chain.height().0 + 1;
            let fees: u64 = accepted.iter().map(|t| t.fee.units()).sum();
            let update = chain.extend(accepted).unwrap();
            let subsidy = chain.params.block_subsidy(oxchain_primitives::Height(height)).units();
            subsidies += subsidy;
            miner_earned += subsidy + fees;
            prop_assert_eq!(total_supply(&chain.state), genesis_supply + subsidies);
            // The block did exactly what its transfers did one by one, plus the coinbase.
            prop_assert_eq!(&chain.state, &with_miner(&pending, &chain.miner, miner_earned));
            history.push((before, update.undo));
        }

        // Undo every block, newest first: each step restores the state before that block.
        let mut state = chain.state.clone();
        while let Some((before, undo)) = history.pop() {
            state.undo(&undo);
            prop_assert_eq!(&state, &before);
            prop_assert_eq!(state.compute_digest(), before.compute_digest());
        }
        prop_assert_eq!(total_supply(&state), genesis_supply);
    }
}

/// `state` with the miner's account (which only ever receives coinbases) set to `earned`.
fn with_miner(state: &MemoryState, miner: &Address, earned: u64) -> MemoryState {
    let mut expected = state.clone();
    expected.apply(&oxchain_consensus::LedgerUpdate {
        accounts: vec![(
            *miner,
            Account {
                balance: Amount::from_units(earned),
                nonce: 0,
            },
        )],
        undo: Default::default(),
        fees: Amount::ZERO,
    });
    expected
}
