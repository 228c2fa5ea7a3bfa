//! Block relay by compact blocks (see [`crate::compact`]): the event loop's side. A
//! compact block is received off the loop ([`gossip::receive_compact`]); when it needs
//! transfers or the whole block from its sender, the request goes out from here, the
//! message waits (at most [`MAX_WAITING`] of them, each at most [`COMPACT_WAIT`]), and
//! gossipsub is told the verdict once the block is checked. A sender that does not
//! answer, or answers with what was not asked for, is struck and the block is left to
//! sync; nothing here waits on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;
use libp2p::request_response::OutboundRequestId;
use oxchain_primitives::Block;

use super::{Done, Service, now_ms};
use crate::compact::{CompactBlock, Partial};
use crate::gossip::{self, Needs, Rebuilt, Received, Verdict};
use crate::message::{SyncRequest, SyncResponse};
use crate::sync::{Penalty, Step};

/// Compact blocks waiting for their senders at once, at most; past it a compact block
/// that needs its sender is ignored (sync brings the block).
pub(super) const MAX_WAITING: usize = 16;

/// How long a compact block waits for its sender's answer. Gossipsub keeps a message for
/// forwarding about 5 s (10 heartbeats of 0.5 s); a verdict later than that cannot
/// forward it.
pub(super) const COMPACT_WAIT: Duration = Duration::from_secs(4);

/// A compact block waiting for its sender.
pub(super) struct Waiting {
    id: MessageId,
    source: PeerId,
    compact: Arc<CompactBlock>,
    /// The block being rebuilt, when transfers were asked for; `None`: the full block.
    partial: Option<Partial>,
    since: Instant,
    arrived: Option<(Instant, i64)>,
}

/// A compact block's way through the checks, sent back to the loop.
pub(super) struct CompactDone {
    id: MessageId,
    source: PeerId,
    compact: Arc<CompactBlock>,
    received: Received,
    arrived: Option<(Instant, i64)>,
    /// A block to announce under our own compact block: the sender's message did not
    /// describe it, so it was not forwarded.
    announce: Option<Block>,
}

impl Service {
    /// A compact block arrived by gossip (decoded, with room in the checks).
    pub(super) fn on_compact(&mut self, id: MessageId, source: PeerId, compact: CompactBlock) {
        super::remember(&mut self.gossiped, compact.hash());
        self.validating_blocks += 1;
        let now = now_ms();
        let arrived = Some((Instant::now(), now as i64 - compact.header.time_ms as i64));
        let compact = Arc::new(compact);
        let (chain, done) = (self.chain.clone(), self.done_tx.clone());
        tokio::task::spawn_blocking(move || {
            let received = gossip::receive_compact(&chain, &compact, now);
            let _ = done.send(Done::Compact(Box::new(CompactDone {
                id,
                source,
                compact,
                received,
                arrived,
                announce: None,
            })));
        });
    }

    /// A compact block's checks came back: a verdict, or a request to its sender.
    pub(super) fn on_compact_done(&mut self, done: CompactDone) {
        let CompactDone {
            id,
            source,
            compact,
            received,
            arrived,
            announce,
        } = done;
        match received {
            Received::Checked(checked, how) => {
                if let Some(how) = how {
                    self.metrics.compact(how.name());
                    *self.relay.entry(how.name().to_string()).or_default() += 1;
                }
                if let Some(block) = announce {
                    self.publish_block(&block);
                }
                self.on_checked(id, source, checked, "block", arrived);
            }
            Received::Needs(needs) => {
                if self.compact.len() >= MAX_WAITING || !self.swarm.is_connected(&source) {
                    // Sync brings the block from whoever has it.
                    self.validating_blocks = self.validating_blocks.saturating_sub(1);
                    self.report(&id, &source, "block", Verdict::Ignore);
                    self.ask_statuses();
                    return;
                }
                let hash = compact.hash();
                let (request, partial) = match needs {
                    Needs::Transfers(partial) => (
                        SyncRequest::GetBlockTxs {
                            block: hash,
                            indexes: partial.missing().to_vec(),
                        },
                        Some(partial),
                    ),
                    Needs::FullBlock => (SyncRequest::GetBlocks(vec![hash]), None),
                };
                let request_id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&source, request);
                self.compact.insert(
                    request_id,
                    Waiting {
                        id,
                        source,
                        compact,
                        partial,
                        since: Instant::now(),
                        arrived,
                    },
                );
            }
        }
    }

    /// The answer to a compact block's request, if `request_id` was one. Returns whether
    /// it was.
    pub(super) fn on_compact_answer(
        &mut self,
        peer: PeerId,
        request_id: &OutboundRequestId,
        response: Option<SyncResponse>,
    ) -> bool {
        let Some(waiting) = self.compact.remove(request_id) else {
            return false;
        };
        let hash = waiting.compact.hash();
        let Waiting {
            id,
            source,
            compact,
            partial,
            arrived,
            ..
        } = waiting;
        let (chain, done) = (self.chain.clone(), self.done_tx.clone());
        match (response, partial) {
            (Some(SyncResponse::BlockTxs(txs)), Some(mut partial)) if peer == source => {
                let fetched = txs.len() as u64;
                *self.relay.entry("fetched_transfers".into()).or_default() += fetched;
                self.metrics.compact_fetched(fetched);
                tokio::task::spawn_blocking(move || {
                    let received = if partial.fill(txs, &compact) {
                        gossip::finish_compact(
                            &chain,
                            &compact,
                            partial,
                            Rebuilt::Fetched,
                            now_ms(),
                        )
                    } else {
                        // Not the transfers asked for: the full block is the way left.
                        Received::Needs(Needs::FullBlock)
                    };
                    let _ = done.send(Done::Compact(Box::new(CompactDone {
                        id,
                        source,
                        compact,
                        received,
                        arrived,
                        announce: None,
                    })));
                });
            }
            (Some(SyncResponse::Blocks(blocks)), None)
                if peer == source && blocks.first().is_some_and(|b| b.compute_hash() == hash) =>
            {
                let block = blocks.into_iter().next().expect("checked above");
                tokio::task::spawn_blocking(move || {
                    let (checked, announce) =
                        gossip::check_full_block(&chain, &compact, block, now_ms());
                    let _ = done.send(Done::Compact(Box::new(CompactDone {
                        id,
                        source,
                        compact,
                        received: Received::Checked(checked, Some(Rebuilt::FullBlock)),
                        arrived,
                        announce,
                    })));
                });
            }
            // No answer, an empty one, or another block: the sender relayed a block it
            // does not give.
            _ => self.compact_failed(id, source),
        }
        true
    }

    /// Gives up on a compact block: not forwarded, its sender struck, and everyone asked
    /// for their status so that a sync fetches the block from whoever has it.
    fn compact_failed(&mut self, id: MessageId, source: PeerId) {
        self.validating_blocks = self.validating_blocks.saturating_sub(1);
        self.report(&id, &source, "block", Verdict::Ignore);
        self.carry_out(Step::Penalise {
            peer: source,
            penalty: Penalty::Strike("compact_not_served"),
        });
        self.ask_statuses();
    }

    /// Gives up on compact blocks whose senders took longer than [`COMPACT_WAIT`].
    pub(super) fn expire_compact(&mut self, now: Instant) {
        let late: Vec<OutboundRequestId> = self
            .compact
            .iter()
            .filter(|(_, w)| now.duration_since(w.since) > COMPACT_WAIT)
            .map(|(request, _)| *request)
            .collect();
        for request in late {
            if let Some(waiting) = self.compact.remove(&request) {
                self.compact_failed(waiting.id, waiting.source);
            }
        }
    }

    /// Gossips `block` as a compact block under a fresh salt.
    pub(super) fn publish_block(&mut self, block: &Block) {
        let topic = self.blocks_topic.clone();
        let bytes = CompactBlock::new(block, rand::random()).to_bytes();
        // Nobody subscribed is fine: sync brings the block to a peer that connects; a
        // duplicate (already relayed) too.
        let _ = self.swarm.behaviour_mut().gossipsub.publish(topic, bytes);
    }
}
