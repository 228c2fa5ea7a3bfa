//! Helpers shared by the chain's integration tests: a chain on a real store in a
//! temporary directory, and the mempool a chain should hold.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use oxchain_chain::{BlockOutcome, Chain, MempoolLimits};
use oxchain_consensus::ChainParams;
use oxchain_primitives::{Block, Transaction, Transfer, Txid};
use oxchain_storage::Store;
use tempfile::TempDir;

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub(crate) fn open_chain(params: ChainParams) -> (TempDir, Chain) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    let chain = Chain::new(params, store, MempoolLimits::default(), 1).unwrap();
    (dir, chain)
}

/// Processes blocks one at a time.
/// Each block as a sync brings it (asked for, so stored whatever its branch's work),
/// one at a time.
pub(crate) fn feed(chain: &mut Chain, blocks: &[Block]) -> Vec<BlockOutcome> {
    blocks
        .iter()
        .map(|b| {
            chain
                .process_blocks(vec![b.clone()], now_ms())
                .unwrap()
                .remove(0)
        })
        .collect()
}

pub(crate) fn transfers(block: &Block) -> impl Iterator<Item = &Transfer> {
    block.transactions.iter().filter_map(|tx| match tx {
        Transaction::Transfer(t) => Some(t),
        Transaction::Coinbase(_) => None,
    })
}

pub(crate) fn txid(t: &Transfer) -> Txid {
    Transaction::Transfer(t.clone()).compute_txid()
}

/// The txids a mempool must hold, given every transfer it may hold (`candidates`, no two
/// with the same sender and nonce) and the state at the tip: per sender, the run of
/// consecutive nonces from the account's that its balance pays for.
pub(crate) fn still_valid(chain: &Chain, candidates: &[Transfer]) -> BTreeSet<Txid> {
    let mut by_sender: BTreeMap<_, BTreeMap<u64, &Transfer>> = BTreeMap::new();
    for t in candidates {
        let previous = by_sender.entry(t.sender()).or_default().insert(t.nonce, t);
        assert!(
            previous.is_none_or(|p| txid(p) == txid(t)),
            "ambiguous candidates"
        );
    }
    let mut out = BTreeSet::new();
    for (sender, queue) in by_sender {
        let account = chain.store().account(&sender).unwrap().unwrap_or_default();
        let mut balance = account.balance;
        let mut nonce = account.nonce;
        while let Some(t) = queue.get(&nonce) {
            let Some(left) = balance.checked_sub(t.total_cost().unwrap()) else {
                break;
            };
            balance = left;
            nonce += 1;
            out.insert(txid(t));
        }
    }
    out
}

pub(crate) fn mempool_txids(chain: &Chain) -> BTreeSet<Txid> {
    chain
        .mempool()
        .transfers()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}
