//! The steps of [`crate::Chain::process_block`], in the order they run, cheapest first.
//! Each step either lets the block through or decides its [`BlockOutcome`].

use std::collections::BTreeSet;
use std::sync::Arc;

use oxchain_consensus::accept::{HeaderContext, accept_header};
use oxchain_consensus::params::MEDIAN_TIME_SPAN;
use oxchain_consensus::signatures::{KeyCache, SigCache, verify_block_signatures};
use oxchain_consensus::validate::{validate_block, validate_block_with_txids, validate_pow};
use oxchain_consensus::{ChainParams, ConsensusError};
use oxchain_primitives::limits::MAX_BLOCK_BYTES;
use oxchain_primitives::{Address, Block, BlockHash, Height, Transaction, Transfer, Txid};
use oxchain_storage::{
    BlockStatus, ConnectError, HeaderReader, HeaderRecord, StoreError, StoreWriter,
};

use crate::Chain;
use crate::events::{BlockOutcome, ChainEvent};

/// What the committed blocks mean for the mempool and the listeners.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) events: Vec<ChainEvent>,
    /// Transfers of disconnected blocks, to return to the mempool.
    pub(crate) returned: Vec<Transfer>,
    /// Accounts whose state changed.
    pub(crate) touched: BTreeSet<Address>,
}

/// What is known of a block's body when it enters the pipeline.
#[derive(Debug)]
pub(crate) enum Body {
    /// Nothing: the pipeline checks it at step 7.
    Unchecked,
    /// Its txids, computed by the caller from these very transactions (a compact block
    /// rebuilt from the mempool, whose entries keep their txids): step 7 checks the rest.
    Txids(Vec<Txid>),
    /// Checked beforehand, by [`check_body`] on a batch's threads.
    Checked(Result<Vec<Txid>, ConsensusError>),
}

impl From<Option<Result<Vec<Txid>, ConsensusError>>> for Body {
    fn from(checked: Option<Result<Vec<Txid>, ConsensusError>>) -> Body {
        checked.map_or(Body::Unchecked, Body::Checked)
    }
}

/// The context-free body checks of one block: structure, merkle root, signatures (those
/// not in `verified`). A block that fails the cheap checks (size, proof of work) is left
/// for the pipeline to refuse (`None`), so that no signature is checked for it.
pub(crate) fn check_body(
    params: &ChainParams,
    cache: &mut KeyCache,
    verified: &SigCache,
    block: &Block,
) -> Option<Result<Vec<Txid>, ConsensusError>> {
    if block.encoded_len() > MAX_BLOCK_BYTES || validate_pow(params, &block.header).is_err() {
        return None;
    }
    Some(validate_block(block).and_then(|txids| {
        verify_block_signatures(cache, verified, &params.genesis_hash(), block, &txids)
            .map(|()| txids)
    }))
}

impl Chain {
    /// The pipeline for one block, inside the open write transaction.
    ///
    /// `requested`: a sync asked for it. A block nobody asked for whose branch has less
    /// work than the best chain is not stored ([`BlockOutcome::LowWork`]).
    pub(crate) fn process_in(
        &mut self,
        w: &mut StoreWriter,
        block: &Arc<Block>,
        body: Body,
        requested: bool,
        now_ms: u64,
        effects: &mut Effects,
    ) -> Result<BlockOutcome, StoreError> {
        let outcome = self.run_steps(w, block, body, requested, now_ms, effects)?;
        // Orphans this block completes are processed after it, in the same write.
        let mut stored = Vec::new();
        if is_stored(&outcome) {
            stored.push(outcome.hash());
        }
        while let Some(parent) = stored.pop() {
            // Orphans came unasked (by gossip): the low-work rule applies to them,
            // whatever brought their parent.
            for child in self.orphans.take_children(&parent) {
                let outcome = self.run_steps(w, &child, Body::Unchecked, false, now_ms, effects)?;
                if is_stored(&outcome) {
                    stored.push(outcome.hash());
                }
            }
        }
        Ok(outcome)
    }

    fn run_steps(
        &mut self,
        w: &mut StoreWriter,
        block: &Arc<Block>,
        body: Body,
        requested: bool,
        now_ms: u64,
        effects: &mut Effects,
    ) -> Result<BlockOutcome, StoreError> {
        let hash = block.header.compute_hash();
        let invalid = |error: ConsensusError| {
            tracing::warn!(%hash, %error, "invalid block");
            Ok(BlockOutcome::Invalid { hash, error })
        };
        // 1. Size: nothing larger than a block is looked at further.
        let size = block.encoded_len();
        if size > MAX_BLOCK_BYTES {
            return invalid(ConsensusError::BlockTooLarge {
                size,
                max: MAX_BLOCK_BYTES,
            });
        }
        // 2. Proof of work: two hashes, before anything is read or stored.
        if let Err(e) = validate_pow(&self.params, &block.header) {
            return invalid(e);
        }
        // 3. Known already?
        if self.orphans.contains(&hash) || w.header(&hash)?.is_some() {
            return Ok(BlockOutcome::AlreadyKnown { hash });
        }
        // 4. Parent known? Else an orphan, which is nobody's fault; but its body must
        // match its header (structure and merkle root, no signature yet), so that the
        // header's hash, the pool's key, stands for the whole block: a junk body under an
        // honest header cannot take that header's place.
        let parent_hash = block.header.prev_hash;
        let Some(parent) = w.header(&parent_hash)? else {
            if let Err(e) = validate_block(block) {
                return invalid(e);
            }
            self.orphans.insert(hash, Arc::clone(block));
            return Ok(BlockOutcome::Orphan {
                hash,
                parent: parent_hash,
            });
        };
        if parent.status == BlockStatus::Invalid {
            return invalid(ConsensusError::InvalidParent {
                parent: parent_hash,
            });
        }
        // 5. Work: a block nobody asked for on a branch with less work than the best
        // chain is not stored. It cannot become the tip, and a fork off an old block gets
        // an easy target from the schedule, so storing it would cost its sender little;
        // if its branch ever leads, a sync fetches it.
        let work = block
            .header
            .work()
            .and_then(|w| parent.chain_work.checked_add(w))
            .ok_or_else(|| StoreError::Corrupt("cumulative work overflows".into()))?;
        let height = Height(parent.height.0 + 1);
        let tip = w.tip()?;
        if !requested && work < tip.chain_work {
            return Ok(BlockOutcome::LowWork { hash, height });
        }
        // 6. Contextual header rules: bits on schedule, time after the median, not from
        // the future.
        let parts = header_context_parts(&*w, &parent_hash, &parent, &mut self.anchors)?;
        let ctx = HeaderContext {
            parent_height: parent.height,
            parent_time_ms: parent.header.time_ms,
            anchor_time_ms: parts.anchor_time_ms,
            recent_times_ms: &parts.recent_times_ms,
            now_ms,
        };
        if let Err(e) = accept_header(&self.params, &block.header, &ctx) {
            return invalid(e);
        }
        // 7. Body: structure, merkle root, every signature (in parallel beforehand when
        // blocks come in a batch).
        let mut signatures = |structure: Result<Vec<Txid>, ConsensusError>| {
            structure.and_then(|txids| {
                verify_block_signatures(
                    &mut self.keys,
                    &self.view.verified,
                    &self.params.genesis_hash(),
                    block,
                    &txids,
                )
                .map(|()| txids)
            })
        };
        let body = match body {
            Body::Checked(result) => result,
            Body::Txids(txids) => signatures(validate_block_with_txids(block, txids)),
            Body::Unchecked => signatures(validate_block(block)),
        };
        let txids = match body {
            Ok(txids) => txids,
            Err(e) => return invalid(e),
        };
        // 8. Store it, with its branch's cumulative work.
        self.anchors.insert(
            hash,
            if parent.height.0 == 0 {
                block.header.time_ms
            } else {
                parts.anchor_time_ms
            },
        );
        let record = HeaderRecord {
            header: block.header,
            height,
            chain_work: work,
            status: BlockStatus::Valid,
        };
        w.put_block(&hash, &record, block)?;
        // 9. Fork choice: strictly more work wins; on a tie the first seen stays.
        if work <= tip.chain_work {
            effects.events.push(ChainEvent::SideBlock {
                hash,
                height,
                parent: parent_hash,
            });
            return Ok(BlockOutcome::SideChain { hash, height });
        }
        match self.switch_to(w, hash, block, &txids, effects)? {
            Ok(0) => Ok(BlockOutcome::Extended { hash, height }),
            Ok(depth) => Ok(BlockOutcome::Reorg {
                hash,
                height,
                depth,
            }),
            Err((bad, error)) if bad == hash => invalid(error),
            // An ancestor on the branch failed: this block is invalid through it.
            Err((bad, _)) => invalid(ConsensusError::InvalidParent { parent: bad }),
        }
    }

    /// Makes `new_tip` (stored, with more work) the tip: disconnects the best chain down
    /// to the fork and connects the branch. Returns the number of blocks disconnected.
    /// If a branch block breaks a ledger rule, the old chain is restored, that block is
    /// marked invalid, and it is returned with the rule.
    fn switch_to(
        &mut self,
        w: &mut StoreWriter,
        new_tip: BlockHash,
        new_block: &Arc<Block>,
        new_txids: &[Txid],
        effects: &mut Effects,
    ) -> Result<Result<u64, (BlockHash, ConsensusError)>, StoreError> {
        let old_tip = w.tip()?;
        // The branch, newest first, down to the first block on the best chain.
        let mut branch = Vec::new();
        let mut cursor = new_tip;
        let mut known_invalid = None;
        let fork = loop {
            let record = w
                .header(&cursor)?
                .ok_or_else(|| StoreError::Corrupt(format!("no header for {cursor}")))?;
            if w.hash_at(record.height)? == Some(cursor) {
                break (cursor, record.height);
            }
            if record.status == BlockStatus::Invalid && known_invalid.is_none() {
                known_invalid = Some(branch.len());
            }
            branch.push((cursor, record.height));
            cursor = record.header.prev_hash;
        };
        // A branch known invalid is not tried again: its blocks above the invalid one
        // are marked too, so that their children are refused before any work.
        if let Some(i) = known_invalid {
            let bad = branch[i].0;
            for (hash, _) in &branch[..i] {
                w.mark_invalid(hash)?;
            }
            return Ok(Err((bad, ConsensusError::InvalidParent { parent: bad })));
        }

        let mut disconnected = Vec::new();
        while w.tip()?.hash != fork.0 {
            let (block, undo) = w.disconnect_tip()?;
            disconnected.push(block);
            effects.touched.extend(undo.prior.iter().map(|(a, _)| *a));
        }

        let mut connected: Vec<(BlockHash, Height, Arc<Block>)> = Vec::new();
        for &(hash, height) in branch.iter().rev() {
            let (block, txids) = if hash == new_tip {
                (Arc::clone(new_block), new_txids.to_vec())
            } else {
                let block = w
                    .block(&hash)?
                    .ok_or_else(|| StoreError::Corrupt(format!("no body for {hash}")))?;
                let txids = block.compute_txids();
                (Arc::new(block), txids)
            };
            match w.connect(&self.params, &hash, &block, &txids, height) {
                Ok(update) => {
                    effects
                        .touched
                        .extend(update.accounts.iter().map(|(a, _)| *a));
                    connected.push((hash, height, block));
                }
                Err(ConnectError::Store(e)) => return Err(e),
                Err(ConnectError::Invalid(error)) => {
                    // Back to the old chain, which connected before.
                    for _ in &connected {
                        w.disconnect_tip()?;
                    }
                    for block in disconnected.iter().rev() {
                        let hash = block.header.compute_hash();
                        let record = w
                            .header(&hash)?
                            .ok_or_else(|| StoreError::Corrupt(format!("no header for {hash}")))?;
                        w.connect(
                            &self.params,
                            &hash,
                            block,
                            &block.compute_txids(),
                            record.height,
                        )
                        .map_err(|e| {
                            StoreError::Corrupt(format!(
                                "block {hash} of the old best chain no longer connects: {e}"
                            ))
                        })?;
                    }
                    // The failing block and every branch block above it.
                    for (above, _) in branch.iter().take_while(|(h, _)| *h != hash) {
                        w.mark_invalid(above)?;
                    }
                    w.mark_invalid(&hash)?;
                    return Ok(Err((hash, error)));
                }
            }
        }

        let depth = disconnected.len() as u64;
        for block in &disconnected {
            let hash = block.header.compute_hash();
            let height = match block.transactions.first() {
                Some(Transaction::Coinbase(c)) => c.height,
                _ => Height(0),
            };
            effects
                .events
                .push(ChainEvent::BlockDisconnected { hash, height });
        }
        if depth > 0 {
            effects.events.push(ChainEvent::Reorg {
                old_tip: old_tip.hash,
                new_tip,
                fork_height: fork.1,
                depth,
            });
        }
        for (hash, height, block) in connected {
            effects.events.push(ChainEvent::BlockConnected {
                hash,
                height,
                block,
            });
        }
        effects
            .returned
            .extend(disconnected.into_iter().flat_map(|b| {
                b.transactions.into_iter().filter_map(|tx| match tx {
                    Transaction::Transfer(t) => Some(t),
                    Transaction::Coinbase(_) => None,
                })
            }));
        Ok(Ok(depth))
    }
}

fn is_stored(outcome: &BlockOutcome) -> bool {
    matches!(
        outcome,
        BlockOutcome::Extended { .. } | BlockOutcome::SideChain { .. } | BlockOutcome::Reorg { .. }
    )
}

/// The ancestry a child of `parent` is judged by.
pub(crate) struct ContextParts {
    /// Times of up to the last 11 blocks ending with the parent, oldest first.
    pub(crate) recent_times_ms: Vec<u64>,
    /// Time of the block at height 1 on the parent's branch (0 if the parent is genesis).
    pub(crate) anchor_time_ms: u64,
}

/// The anchor time (block 1's) of the children of recently stored blocks, so that a
/// block on a side branch does not walk its whole branch to find it (which made a
/// branch of L blocks cost O(L^2)). Bounded: emptied when full; a miss only walks.
#[derive(Debug, Default)]
pub(crate) struct Anchors(std::collections::HashMap<BlockHash, u64>);

impl Anchors {
    const MAX: usize = 16_384;

    fn get(&self, hash: &BlockHash) -> Option<u64> {
        self.0.get(hash).copied()
    }

    fn insert(&mut self, hash: BlockHash, anchor_time_ms: u64) {
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(hash, anchor_time_ms);
    }
}

pub(crate) fn header_context_parts(
    headers: &impl HeaderReader,
    parent_hash: &BlockHash,
    parent: &HeaderRecord,
    anchors: &mut Anchors,
) -> Result<ContextParts, StoreError> {
    let missing = |h: &BlockHash| StoreError::Corrupt(format!("no header for ancestor {h}"));
    let mut recent = Vec::with_capacity(MEDIAN_TIME_SPAN);
    let mut record = *parent;
    loop {
        recent.push(record.header.time_ms);
        if recent.len() == MEDIAN_TIME_SPAN || record.height.0 == 0 {
            break;
        }
        let hash = record.header.prev_hash;
        record = headers.header(&hash)?.ok_or_else(|| missing(&hash))?;
    }
    recent.reverse();
    let anchor_time_ms = if parent.height.0 == 0 {
        0
    } else if let Some(anchor) = anchors.get(parent_hash) {
        anchor
    } else {
        // Down the branch until it joins the best chain (usually at once), then by index.
        let mut hash = *parent_hash;
        let mut record = *parent;
        loop {
            if record.height.0 == 1 {
                break record.header.time_ms;
            }
            if headers.hash_at(record.height)? == Some(hash) {
                let h1 = headers
                    .hash_at(Height(1))?
                    .ok_or_else(|| StoreError::Corrupt("no block at height 1".into()))?;
                break headers
                    .header(&h1)?
                    .ok_or_else(|| missing(&h1))?
                    .header
                    .time_ms;
            }
            hash = record.header.prev_hash;
            record = headers.header(&hash)?.ok_or_else(|| missing(&hash))?;
        }
    };
    if parent.height.0 > 0 {
        anchors.insert(*parent_hash, anchor_time_ms);
    }
    Ok(ContextParts {
        recent_times_ms: recent,
        anchor_time_ms,
    })
}
