//! What happened to a block, for its sender, and what happened to the chain, for
//! everyone else (mempool relay, API, explorer).

use std::sync::Arc;

use oxchain_consensus::{ConsensusError, Fault};
use oxchain_primitives::{Block, BlockHash, Height, Transfer, Txid};

/// What processing one block did.
#[derive(Debug, Clone)]
pub enum BlockOutcome {
    /// It extended the best chain.
    Extended {
        /// The block.
        hash: BlockHash,
        /// Its height, the new tip's.
        height: Height,
    },
    /// It was stored on a side branch with no more work than the best chain.
    SideChain {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: Height,
    },
    /// Its branch overtook the best chain: `depth` blocks were disconnected and the
    /// branch up to this block connected.
    Reorg {
        /// The block, the new tip.
        hash: BlockHash,
        /// Its height.
        height: Height,
        /// How many blocks of the old best chain were disconnected.
        depth: u64,
    },
    /// Nobody asked for it and its branch has less work than the best chain: not
    /// stored (a sync fetches the branch if it ever leads). Nobody's fault.
    LowWork {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: Height,
    },
    /// Its parent is unknown: it waits in the orphan pool.
    Orphan {
        /// The block.
        hash: BlockHash,
        /// The missing parent.
        parent: BlockHash,
    },
    /// It was stored (or waits as an orphan) already.
    AlreadyKnown {
        /// The block.
        hash: BlockHash,
    },
    /// It breaks a rule.
    Invalid {
        /// The block.
        hash: BlockHash,
        /// The rule.
        error: ConsensusError,
    },
}

impl BlockOutcome {
    /// Whose fault the block is, when it was refused.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            BlockOutcome::Invalid { error, .. } => Some(error.fault()),
            _ => None,
        }
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        match self {
            BlockOutcome::Extended { hash, .. }
            | BlockOutcome::SideChain { hash, .. }
            | BlockOutcome::Reorg { hash, .. }
            | BlockOutcome::LowWork { hash, .. }
            | BlockOutcome::Orphan { hash, .. }
            | BlockOutcome::AlreadyKnown { hash }
            | BlockOutcome::Invalid { hash, .. } => *hash,
        }
    }
}

/// A change to the chain or the mempool, broadcast after it is committed.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// A block joined the best chain.
    BlockConnected {
        /// The block's hash.
        hash: BlockHash,
        /// Its height.
        height: Height,
        /// The block.
        block: Arc<Block>,
    },
    /// A block left the best chain (in a reorg).
    BlockDisconnected {
        /// The block's hash.
        hash: BlockHash,
        /// Its former height.
        height: Height,
    },
    /// A block was stored on a side branch.
    SideBlock {
        /// The block's hash.
        hash: BlockHash,
        /// Its height.
        height: Height,
        /// Its parent.
        parent: BlockHash,
    },
    /// The best chain switched branches.
    Reorg {
        /// The tip before.
        old_tip: BlockHash,
        /// The tip after.
        new_tip: BlockHash,
        /// The height of the last block both branches share.
        fork_height: Height,
        /// How many blocks were disconnected.
        depth: u64,
    },
    /// A transfer entered the mempool.
    TransferAccepted {
        /// Its txid.
        txid: Txid,
        /// The transfer.
        transfer: Arc<Transfer>,
    },
}
