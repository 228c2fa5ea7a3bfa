//! Blocks whose parent is not known yet, held until it arrives. Bounded in count and
//! bytes; the oldest goes first when full. Nothing here is trusted: an orphan is checked
//! in full when its parent arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use oxchain_primitives::{Block, BlockHash};

/// At most this many orphans.
pub const MAX_ORPHANS: usize = 256;
/// At most this many encoded bytes of orphans.
pub const MAX_ORPHAN_BYTES: usize = 32 << 20;

/// The orphan pool.
#[derive(Debug, Default)]
pub struct OrphanPool {
    blocks: HashMap<BlockHash, (Arc<Block>, usize)>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>>,
    order: VecDeque<BlockHash>,
    bytes: usize,
}

impl OrphanPool {
    /// How many orphans are held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether `hash` is held.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Holds a block (already known to have valid proof of work), evicting the oldest
    /// while over the caps.
    pub fn insert(&mut self, hash: BlockHash, block: Arc<Block>) {
        if self.blocks.contains_key(&hash) {
            return;
        }
        let size = block.encoded_len();
        self.by_parent
            .entry(block.header.prev_hash)
            .or_default()
            .push(hash);
        self.blocks.insert(hash, (block, size));
        self.order.push_back(hash);
        self.bytes += size;
        while self.blocks.len() > MAX_ORPHANS || self.bytes > MAX_ORPHAN_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.remove(&oldest);
        }
    }

    /// Takes out the orphans whose parent is `parent`.
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<Arc<Block>> {
        let hashes = self.by_parent.remove(parent).unwrap_or_default();
        hashes
            .iter()
            .filter_map(|h| {
                self.order.retain(|o| o != h);
                self.blocks.remove(h).map(|(block, size)| {
                    self.bytes -= size;
                    block
                })
            })
            .collect()
    }

    /// Drops an orphan (its sender's share of the pool is full, or it never connected).
    pub fn remove(&mut self, hash: &BlockHash) {
        if let Some((block, size)) = self.blocks.remove(hash) {
            self.order.retain(|o| o != hash);
            self.bytes -= size;
            if let Some(siblings) = self.by_parent.get_mut(&block.header.prev_hash) {
                siblings.retain(|h| h != hash);
                if siblings.is_empty() {
                    self.by_parent.remove(&block.header.prev_hash);
                }
            }
        }
    }
}
