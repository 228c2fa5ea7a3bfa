//! Who may lock what: the chain's writer and its readers.
//!
//! - [`SharedChain`] holds the one [`Chain`] behind a mutex. Only block writes take it
//!   (the miner's templates and blocks, the network's imports), through
//!   [`SharedChain::write`], and only on threads that may block (the miner's own thread,
//!   `spawn_blocking`), never on the async runtime.
//! - [`ChainView`] is what everyone else holds. It never takes the chain's mutex: the tip
//!   is a published snapshot ([`ArcSwap`], replaced after each commit), blocks and
//!   accounts come from redb read transactions (MVCC: a reader never waits on the
//!   writer), and the mempool has its own read-write lock, held for one lookup, one page,
//!   one insert or one block's revalidation, never across an `.await` and never while
//!   the ledger is touched. Submitting a transfer checks its signature before taking that
//!   lock; call [`ChainView::submit_transfer`] off the async runtime.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use arc_swap::ArcSwap;
use oxchain_consensus::ChainParams;
use oxchain_consensus::signatures::{KeyCache, SigCache};
use oxchain_primitives::{Block, BlockHash, Transfer, Txid};
use oxchain_storage::{Store, StoreError, Tip};
use tokio::sync::broadcast;

use crate::{BlockOutcome, Chain, ChainEvent, ChainWatch, Mempool, MempoolError};

/// Decoded keys per submitting thread: the signature check runs in parallel, unlocked.
/// Small, because tokio may run many blocking threads (the network checks up to 64
/// gossiped transfers at once): 256 keys are about 40 KB a thread.
const SUBMIT_KEY_CACHE: usize = 256;

thread_local! {
    static SUBMIT_KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::new(SUBMIT_KEY_CACHE));
}

/// The chain as readers see it: the tip snapshot, the store, the mempool and the
/// events. Cloning is cheap; nothing here takes the chain's mutex.
#[derive(Debug, Clone)]
pub struct ChainView {
    params: ChainParams,
    store: Store,
    tip: Arc<ArcSwap<Tip>>,
    mempool: Arc<RwLock<Mempool>>,
    pub(crate) events: broadcast::Sender<ChainEvent>,
    pub(crate) watch: ChainWatch,
    /// Txids whose signatures the mempool checked: a block carrying them skips those
    /// checks.
    pub(crate) verified: Arc<SigCache>,
}

impl ChainView {
    pub(crate) fn new(
        params: ChainParams,
        store: Store,
        tip: Tip,
        mempool: Mempool,
        events: broadcast::Sender<ChainEvent>,
    ) -> ChainView {
        ChainView {
            params,
            store,
            tip: Arc::new(ArcSwap::from_pointee(tip)),
            mempool: Arc::new(RwLock::new(mempool)),
            events,
            watch: ChainWatch::default(),
            verified: Arc::new(SigCache::default()),
        }
    }

    /// The chain parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The store, for reads (each read is its own snapshot).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The best chain's tip as last committed. The store is never behind it.
    pub fn tip(&self) -> Tip {
        **self.tip.load()
    }

    pub(crate) fn publish_tip(&self, tip: Tip) {
        self.tip.store(Arc::new(tip));
        self.watch.counters.0.fetch_add(1, Ordering::AcqRel);
    }

    /// The pending transfers, read-locked: keep the guard for one lookup or one page,
    /// never across an `.await`.
    pub fn mempool(&self) -> RwLockReadGuard<'_, Mempool> {
        // Every mempool change completes under the lock or not at all: carry on after
        // a panic elsewhere.
        self.mempool.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn mempool_mut(&self) -> RwLockWriteGuard<'_, Mempool> {
        self.mempool.write().unwrap_or_else(|e| e.into_inner())
    }

    /// What a block already stored comes to, read from the store alone (no writer, no
    /// write transaction): `AlreadyKnown` if its body matches its header, `Invalid` (the
    /// sender's fault: it could have checked) if a known header comes with another body.
    /// `LowWork` for a block with a valid proof of work on a known, valid parent whose
    /// branch would have less work than the tip (the pipeline would not store it).
    /// `None` for anything else: it goes through the pipeline.
    pub fn screen_block(&self, block: &Block) -> Result<Option<BlockOutcome>, StoreError> {
        let hash = block.header.compute_hash();
        if self.store.header(&hash)?.is_some() {
            return Ok(Some(known_block(hash, block)));
        }
        if oxchain_consensus::validate::validate_pow(&self.params, &block.header).is_err() {
            return Ok(None);
        }
        let Some(parent) = self.store.header(&block.header.prev_hash)? else {
            return Ok(None);
        };
        let work = block
            .header
            .work()
            .and_then(|w| parent.chain_work.checked_add(w));
        if parent.status == oxchain_storage::BlockStatus::Valid
            && work.is_some_and(|work| work < self.tip().chain_work)
        {
            return Ok(Some(BlockOutcome::LowWork {
                hash,
                height: oxchain_primitives::Height(parent.height.0 + 1),
            }));
        }
        Ok(None)
    }

    /// Txids whose signatures were checked on mempool entry.
    pub fn verified_signatures(&self) -> &SigCache {
        &self.verified
    }

    /// Lock-free counters of tip and mempool changes.
    pub fn watch(&self) -> ChainWatch {
        self.watch.clone()
    }

    /// A new listener for chain events.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Checks a transfer and adds it to the mempool: the context-free and state checks
    /// under the mempool's read lock, the signature with no lock, then the insert under
    /// its write lock. Blocks for a signature check and a store read: call it off the
    /// async runtime.
    pub fn submit_transfer(&self, transfer: Transfer) -> Result<Txid, MempoolError> {
        let candidate = {
            let pool = self.mempool();
            let candidate = pool.prepare(transfer)?;
            pool.check(&self.store, &candidate)?;
            candidate
        };
        let genesis = self.params.genesis_hash();
        let verified =
            SUBMIT_KEYS.with(|keys| candidate.verify(&mut keys.borrow_mut(), &genesis))?;
        let transfer = verified.transfer().clone();
        let txid = self.mempool_mut().insert(&self.store, verified)?;
        self.announce(txid, transfer);
        Ok(txid)
    }

    /// Tells the miner and the listeners that a transfer entered the mempool, and
    /// remembers that its signature is good.
    pub(crate) fn announce(&self, txid: Txid, transfer: Transfer) {
        self.verified.insert([txid]);
        self.watch.counters.1.fetch_add(1, Ordering::AcqRel);
        // Nobody listening is fine.
        let _ = self.events.send(ChainEvent::TransferAccepted {
            txid,
            transfer: Arc::new(transfer),
        });
    }
}

/// The chain's one writer behind its mutex, beside the [`ChainView`] for everyone else.
#[derive(Debug, Clone)]
pub struct SharedChain {
    chain: Arc<Mutex<Chain>>,
    view: ChainView,
}

impl SharedChain {
    /// Shares `chain`.
    pub fn new(chain: Chain) -> SharedChain {
        let view = chain.view().clone();
        SharedChain {
            chain: Arc::new(Mutex::new(chain)),
            view,
        }
    }

    /// The readers' side.
    pub fn view(&self) -> &ChainView {
        &self.view
    }

    /// Runs `f` with the chain's writer. Blocks until the writer is free (an import may
    /// hold it for seconds): call it from a thread that may block, never from async code.
    pub fn write<R>(&self, f: impl FnOnce(&mut Chain) -> R) -> R {
        // The store commits atomically; a panic elsewhere leaves nothing half-written.
        let mut chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut chain)
    }
}

/// A block whose hash is known already: its body must be the one its header commits to.
/// The tip's header with a coinbase of one's own is a new gossip message each time but
/// costs no proof of work: it is the sender's fault, not another `AlreadyKnown`.
pub(crate) fn known_block(hash: BlockHash, block: &Block) -> BlockOutcome {
    let expected = block.compute_merkle_root();
    if expected == block.header.merkle_root {
        BlockOutcome::AlreadyKnown { hash }
    } else {
        BlockOutcome::Invalid {
            hash,
            error: oxchain_consensus::ConsensusError::BadMerkleRoot {
                got: block.header.merkle_root,
                expected,
            },
        }
    }
}
