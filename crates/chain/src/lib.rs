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
//! - [`submit`]: the API's transfer submissions, checked in batches on threads of their
//!   own.
//! - [`view`]: who may lock what: [`SharedChain`] (the writer behind its mutex) and
//!   [`ChainView`] (the tip snapshot, store reads, the mempool; never the mutex).

pub mod events;
pub mod mempool;
pub mod orphans;
pub mod pipeline;
pub mod submit;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::RwLockReadGuard;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use oxchain_consensus::ChainParams;
use oxchain_consensus::difficulty::compute_next_bits;
use oxchain_consensus::signatures::KeyCache;
use oxchain_primitives::limits::MAX_BLOCK_BYTES;
use oxchain_primitives::{
    Address, Amount, Block, BlockHash, Coinbase, Header, Height, Transaction, Transfer, Txid,
};
use oxchain_storage::{Store, StoreError, Tip};
use tokio::sync::broadcast;

pub use events::{BlockOutcome, ChainEvent};
pub use mempool::{Mempool, MempoolError, MempoolLimits};
pub use orphans::OrphanPool;
pub use submit::Submitter;
pub use view::{ChainView, SharedChain};

/// How many events a slow listener may fall behind before it misses some.
const EVENT_CAPACITY: usize = 4096;
/// Blocks per write transaction in [`Chain::process_blocks`]: enough to spread the cost
/// of a durable commit (two fsyncs), few enough that a crash loses little work.
pub const BATCH_BLOCKS: usize = 64;
/// Room kept in a block template for the header and the coinbase.
const TEMPLATE_RESERVE_BYTES: usize = 1024;

/// The node's chain: the store, the tip, the orphan pool and the mempool. One owner
/// drives it (`&mut self`, shared as [`SharedChain`]); readers hold its [`ChainView`].
#[derive(Debug)]
pub struct Chain {
    params: ChainParams,
    store: Store,
    tip: Tip,
    orphans: OrphanPool,
    /// Block 1's time for the children of recent blocks (the difficulty's anchor).
    anchors: pipeline::Anchors,
    /// Decoded keys for the blocks this thread checks (the mempool's checkers keep their
    /// own).
    keys: KeyCache,
    /// One decoded-key cache per signature thread, for batches.
    worker_keys: Vec<KeyCache>,
    /// The readers' side: the published tip, the mempool, the events.
    view: ChainView,
}

/// Counters that move when the tip or the mempool changes, readable without any lock:
/// a miner checks them every few thousand hashes to drop a stale template.
#[derive(Debug, Clone, Default)]
pub struct ChainWatch {
    pub(crate) counters: Arc<(AtomicU64, AtomicU64)>,
}

impl ChainWatch {
    /// Moves on every change of the tip.
    pub fn tip(&self) -> u64 {
        self.counters.0.load(Ordering::Acquire)
    }

    /// Moves on every transfer accepted into the mempool.
    pub fn mempool(&self) -> u64 {
        self.counters.1.load(Ordering::Acquire)
    }
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
        let view = ChainView::new(
            params.clone(),
            store.clone(),
            tip,
            Mempool::new(params.genesis_hash(), limits),
            events,
        );
        Ok(Chain {
            params,
            store,
            tip,
            orphans: OrphanPool::default(),
            anchors: pipeline::Anchors::default(),
            keys: KeyCache::new(KeyCache::DEFAULT_CAPACITY),
            worker_keys: (0..signature_threads.max(1))
                .map(|_| KeyCache::new(KeyCache::DEFAULT_CAPACITY))
                .collect(),
            view,
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

    /// The pending transfers (read-locked: see [`ChainView::mempool`]).
    pub fn mempool(&self) -> RwLockReadGuard<'_, Mempool> {
        self.view.mempool()
    }

    /// The readers' side of the chain.
    pub fn view(&self) -> &ChainView {
        &self.view
    }

    /// The orphan pool.
    pub fn orphans(&self) -> &OrphanPool {
        &self.orphans
    }

    /// Drops an orphan, if held (the network caps each peer's share of the pool).
    pub fn drop_orphan(&mut self, hash: &BlockHash) {
        self.orphans.remove(hash);
    }

    /// Lock-free counters of tip and mempool changes.
    pub fn watch(&self) -> ChainWatch {
        self.view.watch()
    }

    /// A new listener for chain events.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.view.subscribe()
    }

    /// Checks a transfer and adds it to the mempool ([`ChainView::submit_transfer`]).
    pub fn submit_transfer(&mut self, transfer: Transfer) -> Result<Txid, MempoolError> {
        self.view.submit_transfer(transfer)
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
        let anchors = &mut pipeline::Anchors::default();
        let ctx = pipeline::header_context_parts(&self.store, &tip.hash, &parent, anchors)?;
        let bits = compute_next_bits(
            &self.params,
            tip.height,
            tip.header.time_ms,
            ctx.anchor_time_ms,
        );
        let median = oxchain_consensus::difficulty::compute_median_time_past(&ctx.recent_times_ms);
        let height = Height(tip.height.0 + 1);
        let transfers = self
            .view
            .mempool()
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

    /// Runs one block through the pipeline and commits the result. A block known already
    /// (stored, or waiting in the orphan pool) is answered from a read, with no write.
    pub fn process_block(&mut self, block: Block, now_ms: u64) -> Result<BlockOutcome, StoreError> {
        self.process_in_one(block, pipeline::Body::Unchecked, now_ms)
    }

    /// [`Chain::process_block`] for a block whose txids the caller computed from its very
    /// transactions (a compact block rebuilt from the mempool, whose entries keep their
    /// txids), in order: they are not computed again. Every other check runs.
    pub fn process_block_with_txids(
        &mut self,
        block: Block,
        txids: Vec<Txid>,
        now_ms: u64,
    ) -> Result<BlockOutcome, StoreError> {
        self.process_in_one(block, pipeline::Body::Txids(txids), now_ms)
    }

    fn process_in_one(
        &mut self,
        block: Block,
        body: pipeline::Body,
        now_ms: u64,
    ) -> Result<BlockOutcome, StoreError> {
        let hash = block.header.compute_hash();
        if self.orphans.contains(&hash) || self.store.header(&hash)?.is_some() {
            return Ok(view::known_block(hash, &block));
        }
        let mut writer = self.store.begin_write()?;
        let mut effects = pipeline::Effects::default();
        // Shared with the event that announces it, never copied.
        let block = Arc::new(block);
        let outcome = self.process_in(&mut writer, &block, body, false, now_ms, &mut effects)?;
        self.commit(writer, effects)?;
        Ok(outcome)
    }

    /// Runs blocks through the pipeline as a syncing node does, on the signature threads
    /// (this one included): the others check block bodies ahead, while this thread takes
    /// each block through the pipeline in order as soon as its body is checked (and checks
    /// bodies itself while it waits), committing one write transaction per
    /// [`BATCH_BLOCKS`] blocks (the threads keep checking during the commit). One outcome
    /// per block given, in order; orphans that these blocks complete are processed too.
    /// These blocks were asked for: side blocks are stored whatever their branch's work.
    /// On a store error, the batches committed before it stay committed.
    pub fn process_blocks(
        &mut self,
        blocks: Vec<Block>,
        now_ms: u64,
    ) -> Result<Vec<BlockOutcome>, StoreError> {
        let blocks: Vec<Arc<Block>> = blocks.into_iter().map(Arc::new).collect();
        let mut outcomes = Vec::with_capacity(blocks.len());
        let mut workers = std::mem::take(&mut self.worker_keys);
        let params = self.params.clone();
        let next = AtomicUsize::new(0);
        let verified = self.view.verified.clone();
        let result = std::thread::scope(|s| -> Result<(), StoreError> {
            let (done, arrived) = mpsc::channel();
            // This thread is one of the `threads`: it checks blocks too when it has no
            // checked block to take through the pipeline.
            for cache in workers.iter_mut().skip(1) {
                let (done, next, blocks, params, verified) =
                    (done.clone(), &next, &blocks, &params, &*verified);
                let work = move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(block) = blocks.get(i) else { break };
                        if done
                            .send((i, pipeline::check_body(params, cache, verified, block)))
                            .is_err()
                        {
                            break;
                        }
                    }
                };
                std::thread::Builder::new()
                    .name("block-check".into())
                    .spawn_scoped(s, work)
                    .map_err(|e| StoreError::Corrupt(format!("cannot start a thread: {e}")))?;
            }
            drop(done);
            let mut ready = BTreeMap::new();
            for batch in blocks.chunks(BATCH_BLOCKS) {
                let mut writer = self.store.begin_write()?;
                let mut effects = pipeline::Effects::default();
                for block in batch {
                    let i = outcomes.len();
                    let body = loop {
                        if let Some(body) = ready.remove(&i) {
                            break body;
                        }
                        while let Ok((j, body)) = arrived.try_recv() {
                            ready.insert(j, body);
                        }
                        if ready.contains_key(&i) {
                            continue;
                        }
                        // Not checked yet: check the next unclaimed block here rather than
                        // wait, so that exactly `threads` threads work at any time.
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if let Some(block) = blocks.get(j) {
                            let body =
                                pipeline::check_body(&params, &mut self.keys, &verified, block);
                            ready.insert(j, body);
                            continue;
                        }
                        let (j, body) = arrived
                            .recv()
                            .expect("the workers check every claimed block before they stop");
                        ready.insert(j, body);
                    };
                    outcomes.push(self.process_in(
                        &mut writer,
                        block,
                        body.into(),
                        true,
                        now_ms,
                        &mut effects,
                    )?);
                }
                // The commit waits on the disk: check bodies ahead meanwhile.
                let tip = writer.tip()?;
                let committing = s.spawn(move || writer.commit());
                while !committing.is_finished() {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(block) = blocks.get(j) else { break };
                    ready.insert(
                        j,
                        pipeline::check_body(&params, &mut self.keys, &verified, block),
                    );
                }
                committing
                    .join()
                    .map_err(|_| StoreError::Corrupt("the commit thread panicked".into()))??;
                self.set_tip(tip);
                self.after_commit(effects)?;
            }
            Ok(())
        });
        self.worker_keys = workers;
        result?;
        Ok(outcomes)
    }

    /// Commits, then brings the tip and mempool in step and tells the listeners.
    fn commit(
        &mut self,
        writer: oxchain_storage::StoreWriter,
        effects: pipeline::Effects,
    ) -> Result<(), StoreError> {
        let tip = writer.tip()?;
        writer.commit()?;
        self.set_tip(tip);
        self.after_commit(effects)
    }

    fn set_tip(&mut self, tip: Tip) {
        if tip.hash != self.tip.hash {
            self.tip = tip;
            self.view.publish_tip(tip);
        }
    }

    /// Brings the mempool in step with the new tip and tells the listeners.
    fn after_commit(&mut self, effects: pipeline::Effects) -> Result<(), StoreError> {
        let touched: BTreeSet<Address> = effects.touched;
        self.view
            .mempool_mut()
            .revalidate(&self.store, effects.returned, touched)?;
        for event in effects.events {
            log_event(&event);
            let _ = self.view.events.send(event);
        }
        Ok(())
    }
}

/// The chain's changes in the node's log: every new tip at debug, reorgs at info.
fn log_event(event: &ChainEvent) {
    match event {
        ChainEvent::BlockConnected {
            hash,
            height,
            block,
        } => {
            tracing::debug!(height = height.0, %hash, txs = block.transactions.len(), "new tip");
        }
        ChainEvent::Reorg {
            old_tip,
            new_tip,
            fork_height,
            depth,
        } => tracing::info!(
            fork_height = fork_height.0,
            depth,
            %old_tip,
            %new_tip,
            "reorg: the best chain switched branches"
        ),
        _ => {}
    }
}
