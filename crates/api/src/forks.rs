//! `GET /v1/forks`: the recent fork tree. The store keeps side-branch blocks but no index
//! of them by height, so the API remembers the side blocks and reorgs it has seen go by
//! in the chain's events (since the node started, up to a cap), for the explorer to draw
//! beside the best chain.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use oxchain_chain::ChainEvent;
use oxchain_primitives::BlockHash;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Side blocks remembered; the oldest go first.
const MAX_SIDE_BLOCKS: usize = 256;
/// Reorgs remembered.
const MAX_REORGS: usize = 32;

/// A block off the best chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct SideBlockView {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u64,
    /// Its parent's hash.
    pub parent: String,
    /// `true` if it was on the best chain and a reorg took it off.
    pub reorged_out: bool,
}

/// A switch of the best chain from one branch to another.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ReorgView {
    /// The tip before.
    pub old_tip: String,
    /// The tip after.
    pub new_tip: String,
    /// The height of the last block both branches share.
    pub fork_height: u64,
    /// Blocks taken off the best chain.
    pub depth: u64,
    /// When this node switched, in ms since the Unix epoch.
    pub time_ms: u64,
}

/// What `/v1/forks` answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ForksView {
    /// The best chain's height now.
    pub tip_height: u64,
    /// Side blocks seen since the node started (up to 256), oldest first.
    pub side_blocks: Vec<SideBlockView>,
    /// Reorgs seen since the node started (up to 32), oldest first.
    pub reorgs: Vec<ReorgView>,
}

/// The side blocks and reorgs seen in the chain's events.
#[derive(Debug, Default)]
pub(crate) struct Forks {
    side: VecDeque<SideBlockView>,
    reorgs: VecDeque<ReorgView>,
}

impl Forks {
    /// Takes note of one chain event. `parent_of` finds a disconnected block's parent.
    pub(crate) fn on_event(
        &mut self,
        event: &ChainEvent,
        parent_of: impl FnOnce(&BlockHash) -> Option<BlockHash>,
    ) {
        match event {
            ChainEvent::SideBlock {
                hash,
                height,
                parent,
            } => self.push_side(SideBlockView {
                hash: hash.to_string(),
                height: height.0,
                parent: parent.to_string(),
                reorged_out: false,
            }),
            ChainEvent::BlockDisconnected { hash, height } => {
                if let Some(parent) = parent_of(hash) {
                    self.push_side(SideBlockView {
                        hash: hash.to_string(),
                        height: height.0,
                        parent: parent.to_string(),
                        reorged_out: true,
                    });
                }
            }
            ChainEvent::BlockConnected { hash, .. } => {
                // A side block that a reorg brought onto the best chain.
                let hash = hash.to_string();
                self.side.retain(|s| s.hash != hash);
            }
            ChainEvent::Reorg {
                old_tip,
                new_tip,
                fork_height,
                depth,
            } => {
                push_capped(
                    &mut self.reorgs,
                    MAX_REORGS,
                    ReorgView {
                        old_tip: old_tip.to_string(),
                        new_tip: new_tip.to_string(),
                        fork_height: fork_height.0,
                        depth: *depth,
                        time_ms: SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    },
                );
            }
            ChainEvent::TransferAccepted { .. } => {}
        }
    }

    fn push_side(&mut self, view: SideBlockView) {
        if self.side.iter().any(|s| s.hash == view.hash) {
            return;
        }
        push_capped(&mut self.side, MAX_SIDE_BLOCKS, view);
    }
}

/// Appends `item`, dropping the oldest when `list` holds `cap`.
fn push_capped<T>(list: &mut VecDeque<T>, cap: usize, item: T) {
    if list.len() == cap {
        list.pop_front();
    }
    list.push_back(item);
}

/// `GET /v1/forks`: side blocks and reorgs this node has seen since it started, to draw
/// the fork tree beside the best chain (`/v1/blocks`).
#[utoipa::path(get, path = "/v1/forks", tag = "v1",
    responses((status = 200, description = "Recent side blocks and reorgs", body = ForksView)))]
pub(crate) async fn forks(State(state): State<AppState>) -> Json<ForksView> {
    let tip_height = state.chain().tip().height.0;
    let forks = state.inner.forks.lock().unwrap_or_else(|e| e.into_inner());
    Json(ForksView {
        tip_height,
        side_blocks: forks.side.iter().cloned().collect(),
        reorgs: forks.reorgs.iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use oxchain_primitives::Height;

    use super::*;

    fn hash(n: u8) -> BlockHash {
        BlockHash([n; 32])
    }

    #[test]
    fn side_blocks_and_reorgs_are_remembered_and_a_reconnected_block_leaves_the_side() {
        let mut forks = Forks::default();
        forks.on_event(
            &ChainEvent::SideBlock {
                hash: hash(2),
                height: Height(5),
                parent: hash(1),
            },
            |_| None,
        );
        // A reorg takes block 3 off the best chain; its parent comes from the store.
        forks.on_event(
            &ChainEvent::BlockDisconnected {
                hash: hash(3),
                height: Height(5),
            },
            |h| (*h == hash(3)).then(|| hash(1)),
        );
        forks.on_event(
            &ChainEvent::Reorg {
                old_tip: hash(3),
                new_tip: hash(2),
                fork_height: Height(4),
                depth: 1,
            },
            |_| None,
        );
        assert_eq!(forks.side.len(), 2);
        assert!(forks.side[1].reorged_out);
        assert_eq!(forks.side[1].parent, hash(1).to_string());
        assert_eq!(forks.reorgs.len(), 1);
        assert_eq!(forks.reorgs[0].fork_height, 4);
        // Block 2 was the side block; the reorg connected it.
        let block = std::sync::Arc::new(oxchain_primitives::Block {
            header: oxchain_primitives::Header {
                version: 1,
                prev_hash: hash(1),
                merkle_root: oxchain_primitives::MerkleRoot([0; 32]),
                time_ms: 0,
                bits: oxchain_primitives::CompactTarget(0),
                nonce: 0,
            },
            transactions: Vec::new(),
        });
        forks.on_event(
            &ChainEvent::BlockConnected {
                hash: hash(2),
                height: Height(5),
                block,
            },
            |_| None,
        );
        assert_eq!(forks.side.len(), 1);
        assert_eq!(forks.side[0].hash, hash(3).to_string());
    }

    #[test]
    fn the_side_list_is_capped() {
        let mut forks = Forks::default();
        for n in 0..(MAX_SIDE_BLOCKS as u64 + 10) {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            forks.on_event(
                &ChainEvent::SideBlock {
                    hash: BlockHash(bytes),
                    height: Height(n),
                    parent: hash(0),
                },
                |_| None,
            );
        }
        assert_eq!(forks.side.len(), MAX_SIDE_BLOCKS);
        assert_eq!(forks.side[0].height, 10);
    }
}
