//! Gossip through the loop: what comes in on the two topics (decoded, then queued for
//! checks off the loop, within the budgets), the verdicts that come back and go to
//! gossipsub, blocks that wait as orphans, the transfers a held transfer's nonce gap
//! lacks asked of its sender (`GetPending`), and the node's own transfers going out.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::request_response::OutboundRequestId;
use oxchain_primitives::{BlockHash, Transaction, Transfer, Txid, decode};

use crate::compact::CompactBlock;
use crate::gossip::{self, Gap, Verdict};
use crate::message::{MAX_PENDING_REQUEST, SyncRequest, SyncResponse};
use crate::sync::{Penalty, Step};

use super::{
    MAX_GOSSIPED_TRANSFERS, MAX_UNSENT, MAX_VALIDATING, MAX_VALIDATING_BLOCKS, Service, local,
    remember,
};

/// `GetPending` requests out at once, at most (one per sender).
pub(super) const MAX_PENDING_ASKS: usize = 64;
/// `GetPending` requests out to one peer at once, at most: a peer that never answers
/// holds no more of the slots than this.
const MAX_ASKS_PER_PEER: usize = 4;
/// Senders whose nonce gaps wait to be asked about, at most.
pub(super) const MAX_GAPS: usize = 1_024;
/// How long a nonce gap may stay open before its sender's peer is asked: gossip over
/// two paths often brings the missing transfer a moment after the one it gapped.
const GAP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A transfer for the checker thread, in order with the rest.
pub(super) enum ToCheck {
    /// Gossiped: its verdict goes to gossipsub, and a nonce gap is asked of its sender.
    Gossiped(MessageId, PeerId, Transfer),
    /// Sent by a peer in answer to `GetPending`.
    Fetched(PeerId, Transfer),
}

/// Why a `GetPending` got no answer to use.
pub(super) enum PendingFailure {
    /// It timed out, or its connection or stream closed: nobody's fault.
    Unanswered,
    /// The answer did not decode or was over its cap: the peer could have seen that.
    BadAnswer,
}

/// A `GetPending` request out.
pub(super) struct PendingAsk {
    peer: PeerId,
    gap: Gap,
}

impl Service {
    /// Strikes the peers whose orphans waited [`crate::peers::ORPHAN_GRACE`] outside any sync
    /// round and never connected, and drops those orphans.
    pub(super) fn check_orphans(&mut self, now: Instant) {
        if self.syncer.syncing() {
            self.peers.orphans_waited_for_sync(now);
            return;
        }
        let store = self.store.clone();
        let stale = self
            .peers
            .stale_orphans(now, |hash| matches!(store.header(hash), Ok(Some(_))));
        for (peer, hashes) in stale {
            self.drop_orphans(hashes);
            self.carry_out(Step::Penalise {
                peer,
                penalty: Penalty::Strike("orphans_never_connected"),
            });
        }
    }

    /// Drops orphans from the chain's pool, off the loop (the pool is the writer's).
    fn drop_orphans(&mut self, hashes: Vec<BlockHash>) {
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || {
            chain.write(|c| {
                for hash in &hashes {
                    c.drop_orphan(hash);
                }
            })
        });
    }

    /// Bans the peers whose gossip score went negative: gossipsub dropped a message of
    /// theirs before it reached us (oversize for its topic, or a bad envelope).
    pub(super) fn ban_invalid_senders(&mut self) {
        let behaviour = self.swarm.behaviour();
        let bad: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| !behaviour.gate.is_banned(p))
            .filter(|p| behaviour.gossipsub.peer_score(p).is_some_and(|s| s < 0.0))
            .copied()
            .collect();
        for peer in bad {
            self.ban(peer, "malformed_gossip");
        }
    }

    /// Gossips a transfer. One that finds no subscribed peer yet (a node just started,
    /// or a peer connected but has not yet told us its topics) is held until one
    /// subscribes: nothing else would carry it.
    pub(super) fn publish_transfer(&mut self, txid: Txid, data: Vec<u8>) {
        let topic = self.txs_topic.clone();
        let hash = topic.hash();
        // Nobody to send to: hold it without building a message for nobody.
        let subscribed = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&hash));
        let held = !subscribed
            || matches!(
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, data.clone()),
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
            );
        if held {
            if self.unsent.len() == MAX_UNSENT {
                self.unsent.pop_front();
            }
            self.unsent.push_back((txid, data));
        }
    }

    /// A peer subscribed to `topic`: send the held transfers that are still pending
    /// (some may have been mined or replaced while they waited).
    pub(super) fn on_subscribed(&mut self, topic: &gossipsub::TopicHash) {
        if *topic != self.txs_topic.hash() {
            return;
        }
        let held = std::mem::take(&mut self.unsent);
        let pending: Vec<_> = {
            let mempool = self.chain.view().mempool();
            held.into_iter()
                .filter(|(txid, _)| mempool.contains(txid))
                .collect()
        };
        for (txid, data) in pending {
            self.publish_transfer(txid, data);
        }
    }

    pub(super) fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        // Decoding comes first, so that bytes that do not decode get their sender banned
        // even while the checks are full; past [`MAX_VALIDATING`] transfers (or
        // [`MAX_VALIDATING_BLOCKS`] blocks) the rest is ignored.
        if message.topic == self.blocks_topic.hash() {
            let full = self.validating_blocks >= MAX_VALIDATING_BLOCKS;
            let Ok(compact) = CompactBlock::from_bytes(&message.data) else {
                self.report(&id, &source, "block", Verdict::Reject);
                return;
            };
            self.metrics.compact_bytes(message.data.len());
            if full {
                self.report(&id, &source, "block", Verdict::Ignore);
                return;
            }
            self.on_compact(id, source, compact);
        } else if message.topic == self.txs_topic.hash() {
            let transfer = match decode::<Transaction>(&message.data) {
                Ok(Transaction::Transfer(t)) => t,
                _ => {
                    self.report(&id, &source, "transfer", Verdict::Reject);
                    return;
                }
            };
            if self.validating >= MAX_VALIDATING {
                self.report(&id, &source, "transfer", Verdict::Ignore);
                return;
            }
            // Its txid: the message is the transfer's canonical encoding.
            self.remember_gossiped_tx(Txid(oxchain_primitives::sha256d(&message.data)));
            self.validating += 1;
            // In arrival order, on one thread: a sender's transfers come in nonce order,
            // and checked side by side the later one could find a nonce gap and be
            // dropped.
            if self
                .transfers
                .send(ToCheck::Gossiped(id, source, transfer))
                .is_err()
            {
                tracing::error!("the gossip transfer checker has stopped");
            }
        } else {
            self.report(&id, &source, "other", Verdict::Ignore);
        }
    }

    pub(super) fn report(
        &mut self,
        id: &MessageId,
        source: &PeerId,
        kind: &'static str,
        verdict: Verdict,
    ) {
        let (acceptance, name) = match verdict {
            Verdict::Accept => (MessageAcceptance::Accept, "accept"),
            Verdict::Ignore => (MessageAcceptance::Ignore, "ignore"),
            Verdict::Reject => (MessageAcceptance::Reject, "reject"),
        };
        self.metrics.gossip(kind, name);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
        if verdict == Verdict::Reject {
            self.ban(*source, "invalid_gossip");
        }
    }

    /// A gossiped message was checked: its verdict goes to gossipsub, and what it says of
    /// its sender to the sync and the orphan rules.
    pub(super) fn on_checked(
        &mut self,
        id: MessageId,
        source: PeerId,
        checked: gossip::Checked,
        kind: &'static str,
        arrived: Option<(Instant, i64)>,
    ) {
        if kind == "block" {
            self.validating_blocks = self.validating_blocks.saturating_sub(1);
        } else {
            self.validating = self.validating.saturating_sub(1);
        }
        if let (Some((at, late_ms)), Verdict::Accept) = (arrived, checked.verdict) {
            self.metrics.block_arrived(late_ms);
            self.metrics.block_connected(at.elapsed());
        }
        self.report(&id, &source, kind, checked.verdict);
        // Peers' heights shown between status rounds follow their blocks.
        if let Some(height) = checked.height {
            self.syncer.saw_height(source, height);
        }
        // A block whose parent we lack: its sender has a chain we have not seen, unless a
        // sync fault keeps it from being asked. Each peer's share of the orphan pool is
        // capped.
        if let Some(hash) = checked.not_taken {
            self.on_not_taken(hash, false);
        }
        if let Some((orphan, parent)) = checked.orphan {
            self.on_orphan(source, orphan, parent);
        }
    }

    /// A gossiped block was not taken through no fault of its sender (its low work, or a
    /// stale block 1), or is a child of one. Its children, and theirs, are not counted
    /// against their senders: those already pooled (gossip over several paths, and checks
    /// that run side by side, can finish a child before its parent) are forgotten now.
    /// The pooled ones are dropped from the pool: a branch we did not take is fetched by
    /// sync if it ever leads.
    fn on_not_taken(&mut self, hash: BlockHash, pooled: bool) {
        let mut drop = if pooled { vec![hash] } else { Vec::new() };
        let mut parents = vec![hash];
        while let Some(parent) = parents.pop() {
            remember(&mut self.not_taken, parent);
            for child in self.peers.excuse_children(&parent) {
                parents.push(child);
                drop.push(child);
            }
        }
        if !drop.is_empty() {
            self.drop_orphans(drop);
        }
    }

    /// A gossiped block from `source` waits in the orphan pool.
    fn on_orphan(&mut self, source: PeerId, orphan: BlockHash, parent: BlockHash) {
        let now = Instant::now();
        if self.not_taken.contains(&parent) {
            self.on_not_taken(orphan, true);
            return;
        }
        // A sender gone by now has no share to keep: its orphans age out of the pool.
        if !self.swarm.is_connected(&source) {
            return;
        }
        if let Some(dropped) = self.peers.orphan(source, orphan, parent, now) {
            self.drop_orphans(vec![dropped]);
        }
        if !self.peers.paused(&source, now) {
            let local = local(&self.chain, self.genesis);
            self.syncer.orphan_from(&local, source, now);
        }
    }
    /// A transfer that came from a peer (by gossip, or asked for): not published again
    /// when the mempool takes it (the last [`MAX_GOSSIPED_TRANSFERS`]).
    fn remember_gossiped_tx(&mut self, txid: Txid) {
        let (order, set) = &mut self.gossiped_txs;
        if set.insert(txid) {
            order.push_back(txid);
            if order.len() > MAX_GOSSIPED_TRANSFERS
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }

    /// A gossiped transfer from `source` is held for a nonce gap: noted, to be asked
    /// about if it stays open ([`Service::ask_gaps`]). The first held transfer of a
    /// sender keeps its place; a lower nonce held later takes it.
    pub(super) fn note_gap(&mut self, source: PeerId, gap: Gap) {
        let room = self.gaps.len() < MAX_GAPS;
        match self.gaps.get_mut(&gap.sender) {
            Some(noted) if gap.held < noted.1 => *noted = (source, gap.held, noted.2),
            Some(_) => {}
            None if room => {
                self.gaps
                    .insert(gap.sender, (source, gap.held, Instant::now()));
            }
            None => {}
        }
    }

    /// Nonce gaps open for [`GAP_GRACE`]: the peer that sent the held transfer had the
    /// sender's transfers before it in its mempool (a mempool has no gaps), so it is
    /// asked for those the mempool still lacks, at most 64 (a wider gap's rest on the
    /// sender's next transfer). One request per sender at a time, [`MAX_PENDING_ASKS`]
    /// in all; past that the held transfer waits for gossip or a block, as it did
    /// before.
    pub(super) fn ask_gaps(&mut self, now: Instant) {
        let due: Vec<_> = self
            .gaps
            .iter()
            .filter(|(_, (_, _, at))| now.duration_since(*at) >= GAP_GRACE)
            .map(|(sender, &(peer, held, _))| (*sender, peer, held))
            .collect();
        for (sender, peer, held) in due {
            // The cheap checks first; a gap that cannot be asked about yet stays noted.
            if self.pending_asks.len() >= MAX_PENDING_ASKS {
                break;
            }
            if !self.swarm.is_connected(&peer) {
                self.gaps.remove(&sender);
                continue;
            }
            if self.pending_asks.values().any(|a| a.gap.sender == sender)
                || self
                    .pending_asks
                    .values()
                    .filter(|a| a.peer == peer)
                    .count()
                    >= MAX_ASKS_PER_PEER
            {
                continue;
            }
            self.gaps.remove(&sender);
            let from = {
                let view = self.chain.view();
                let pending = view.mempool().next_nonce(&sender);
                match pending {
                    Some(next) => next,
                    None => match view.store().account(&sender) {
                        Ok(account) => account.map_or(0, |a| a.nonce),
                        Err(_) => continue,
                    },
                }
            };
            if from >= held {
                continue;
            }
            let count = (held - from).min(MAX_PENDING_REQUEST as u64) as u16;
            let request = SyncRequest::GetPending {
                sender,
                from,
                count,
            };
            let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
            let gap = Gap { sender, from, held };
            self.pending_asks.insert(id, PendingAsk { peer, gap });
            *self.relay.entry("pending_asked".into()).or_default() += 1;
        }
    }

    /// The answer to a `GetPending`, or its failure. Transfers that are not the
    /// sender's asked-for nonces, in order, or an answer that does not decode, earn the
    /// peer a strike; the rest go to the checks in order, where the held transfer follows
    /// them in, and are not forwarded (remembered as gossiped: the peers that lack them
    /// ask for them in turn). An empty answer, or a request that timed out or whose
    /// connection closed, is nobody's fault: the transfers may have been mined or
    /// replaced meanwhile.
    pub(super) fn on_pending_answer(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        response: Result<SyncResponse, PendingFailure>,
    ) {
        let Some(PendingAsk { peer: asked, gap }) = self.pending_asks.remove(&request_id) else {
            return;
        };
        match response {
            Err(PendingFailure::Unanswered) => {}
            Err(PendingFailure::BadAnswer) => self.carry_out(Step::Penalise {
                peer,
                penalty: Penalty::Strike("pending_not_asked"),
            }),
            Ok(SyncResponse::Pending(txs)) if peer == asked => {
                let count = (gap.held - gap.from).min(MAX_PENDING_REQUEST as u64) as usize;
                let as_asked = txs.len() <= count
                    && txs.iter().zip(gap.from..).all(|(tx, nonce)| {
                        matches!(tx, Transaction::Transfer(t)
                            if t.nonce == nonce && t.sender() == gap.sender)
                    });
                if !as_asked {
                    self.carry_out(Step::Penalise {
                        peer,
                        penalty: Penalty::Strike("pending_not_asked"),
                    });
                    return;
                }
                *self.relay.entry("pending_fetched".into()).or_default() += txs.len() as u64;
                for tx in txs {
                    if let Transaction::Transfer(t) = tx {
                        self.remember_gossiped_tx(Transaction::Transfer(t.clone()).compute_txid());
                        if self.transfers.send(ToCheck::Fetched(peer, t)).is_err() {
                            tracing::error!("the gossip transfer checker has stopped");
                        }
                    }
                }
            }
            Ok(_) => self.ban(peer, "unrequested_answer"),
        }
    }
}
