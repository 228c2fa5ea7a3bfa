//! The chain: accepting blocks into the store, choosing the best chain, and the mempool.
//!
//! [`Chain::process_block`] runs one pipeline of named steps, cheapest first: size, proof
//! of work, already known?, parent known? (else the orphan pool), contextual header
//! rules, block structure and signatures, then one write transaction that stores the
//! block and, if its branch now has the most cumulative work, connects it (through the
//! ledger), reorganising through undo data when the branch forks below the tip. Each
//! block gets a [`BlockOutcome`]; everyone else listens to [`ChainEvent`]s.
//!
//! # Layout
//! - [`pipeline`]: the steps of `process_block`, fork choice and reorgs.
//! - [`mempool`]: pending transfers, their order, replacement and eviction.
//! - [`orphans`]: blocks waiting for their parent.
//! - [`events`]: [`BlockOutcome`] and [`ChainEvent`].

pub mod events;
pub mod mempool;
pub mod orphans;
pub mod pipeline;

use std::collections::BTreeSet;

use oxchain_consensus::ChainParams;
use oxchain_consensus::difficulty::compute_next_bits;
use oxchain_consensus::signatures::KeyCache;
use oxchain_primitives::limits::MAX_BLOCK_BYTES;
use oxchain_primitives::{
    Address, Amount, Block, Coinbase, Header, Height, Transaction, Transfer, Txid,
};
use oxchain_storage::{Store, StoreError, Tip};
use tokio::sync::broadcast;

pub use events::{BlockOutcome, ChainEvent};
pub use mempool::{Mempool, MempoolError, MempoolLimits};
pub use orphans::OrphanPool;

/// How many events a slow listener may fall behind before it misses some.
const EVENT_CAPACITY: usize = 4096;
/// Room kept in a block template for the header and the coinbase.
const TEMPLATE_RESERVE_BYTES: usize = 1024;

/// The node's chain: the store, the tip, the orphan pool and the mempool. One owner
/// drives it (`&mut self`); readers go to the [`Store`] directly.
#[derive(Debug)]
pub struct Chain {
    params: ChainParams,
    store: Store,
    tip: Tip,
    orphans: OrphanPool,
    mempool: Mempool,
    /// One decoded-key cache per signature thread; the first also serves the mempool.
    keys: Vec<KeyCache>,
    events: broadcast::Sender<ChainEvent>,
}

impl Chain {
    /// The chain in `store`, verifying signatures on `signature_threads` threads (at
    /// least one) when blocks come in batches.
    pub fn new(
        params: ChainParams,
        store: Store,
        limits: MempoolLimits,
        signature_threads: usize,
    ) -> Result<Chain, StoreError> {
        let tip = store.tip()?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(Chain {
            mempool: Mempool::new(params.genesis_hash(), limits),
            params,
            store,
            tip,
            orphans: OrphanPool::default(),
            keys: (0..signature_threads.max(1))
                .map(|_| KeyCache::new(KeyCache::DEFAULT_CAPACITY))
                .collect(),
            events,
        })
    }

    /// The chain parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The best chain's tip.
    pub fn tip(&self) -> Tip {
        self.tip
    }

    /// The pending transfers.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// The orphan pool.
    pub fn orphans(&self) -> &OrphanPool {
        &self.orphans
    }

    /// A new listener for chain events.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Checks a transfer and adds it to the mempool.
    pub fn submit_transfer(&mut self, transfer: Transfer) -> Result<Txid, MempoolError> {
        let txid = self
            .mempool
            .add(&self.store, &mut self.keys[0], transfer.clone())?;
        // Nobody listening is fine.
        let _ = self.events.send(ChainEvent::TransferAccepted {
            txid,
            transfer: std::sync::Arc::new(transfer),
        });
        Ok(txid)
    }

    /// An unmined block on the tip paying `to`: the best pending transfers that fit, a
    /// coinbase of subsidy plus fees, the right bits, and a time after the median of the
    /// recent blocks and not before `now_ms`.
    pub fn block_template(&self, to: Address, now_ms: u64) -> Result<Block, StoreError> {
        let tip = self.tip;
        let parent = self
            .store
            .header(&tip.hash)?
            .ok_or_else(|| StoreError::Corrupt(format!("no header for the tip {}", tip.hash)))?;
        let ctx = pipeline::header_context_parts(&self.store, &tip.hash, &parent)?;
        let bits = compute_next_bits(
            &self.params,
            tip.height,
            tip.header.time_ms,
            ctx.anchor_time_ms,
        );
        let median = oxchain_consensus::difficulty::compute_median_time_past(&ctx.recent_times_ms);
        let height = Height(tip.height.0 + 1);
        let transfers = self
            .mempool
            .select(MAX_BLOCK_BYTES - TEMPLATE_RESERVE_BYTES);
        let fees = transfers
            .iter()
            .try_fold(Amount::ZERO, |sum, t| sum.checked_add(t.fee))
            .unwrap_or(Amount::MAX);
        let amount = self
            .params
            .block_subsidy(height)
            .checked_add(fees)
            .unwrap_or(Amount::MAX);
        let mut transactions = Vec::with_capacity(transfers.len() + 1);
        transactions.push(Transaction::Coinbase(Coinbase { height, to, amount }));
        transactions.extend(transfers.into_iter().map(Transaction::Transfer));
        let mut block = Block {
            header: Header {
                version: oxchain_consensus::params::HEADER_VERSION,
                prev_hash: tip.hash,
                merkle_root: Default::default(),
                time_ms: now_ms.max(median + 1),
                bits,
                nonce: 0,
            },
            transactions,
        };
        block.header.merkle_root = block.compute_merkle_root();
        Ok(block)
    }

    /// Runs one block through the pipeline and commits the result.
    pub fn process_block(&mut self, block: Block, now_ms: u64) -> Result<BlockOutcome, StoreError> {
        Ok(self
            .process_blocks(vec![block], now_ms)?
            .pop()
            .expect("one outcome per block"))
    }

    /// Runs blocks through the pipeline in one write transaction (as while syncing):
    /// their signatures are checked first, in parallel, then each block in order. One
    /// outcome per block given, in order; orphans that these blocks complete are
    /// processed too.
    pub fn process_blocks(
        &mut self,
        blocks: Vec<Block>,
        now_ms: u64,
    ) -> Result<Vec<BlockOutcome>, StoreError> {
        let bodies = pipeline::check_bodies(&self.params, &mut self.keys, &blocks);
        let mut writer = self.store.begin_write()?;
        let mut effects = pipeline::Effects::default();
        let mut outcomes = Vec::with_capacity(blocks.len());
        for (block, body) in blocks.into_iter().zip(bodies) {
            let outcome = self.process_in(&mut writer, block, body, now_ms, &mut effects)?;
            outcomes.push(outcome);
        }
        let tip = writer.tip()?;
        writer.commit()?;
        self.tip = tip;
        self.after_commit(effects)?;
        Ok(outcomes)
    }

    /// Brings the mempool in step with the new tip and tells the listeners.
    fn after_commit(&mut self, effects: pipeline::Effects) -> Result<(), StoreError> {
        let touched: BTreeSet<Address> = effects.touched;
        self.mempool
            .revalidate(&self.store, effects.returned, touched)?;
        for event in effects.events {
            let _ = self.events.send(event);
        }
        Ok(())
    }
}
