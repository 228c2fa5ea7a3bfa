//! The sync machine ([`crate::sync`]) driven from the loop: the chain as it sees it, its
//! steps carried out (status, headers and block requests, imports off the loop), the
//! answers fed back, and the requests peers make of us served from the store.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{self, ResponseChannel};
use oxchain_chain::{ChainView, SharedChain};
use oxchain_consensus::Fault;
use oxchain_primitives::{Block, BlockHash, Header, Height, Work};

use crate::message::{MAX_LOCATOR, SyncRequest, SyncResponse};
use crate::peers::Struck;
use crate::sync::{Failure, Local, Penalty, Status, Step, Token};

use super::gossiping::PendingFailure;
use super::{Done, Service, now_ms, remember};

/// The local chain, as the sync machine sees it.
pub(super) struct ChainLocal<'a> {
    view: &'a ChainView,
    genesis: BlockHash,
}

/// The local chain of `chain`, as the sync machine sees it.
pub(super) fn local(chain: &SharedChain, genesis: BlockHash) -> ChainLocal<'_> {
    ChainLocal {
        view: chain.view(),
        genesis,
    }
}

impl Local for ChainLocal<'_> {
    fn tip_work(&self) -> Work {
        self.view.tip().chain_work
    }

    fn tip_height(&self) -> u64 {
        self.view.tip().height.0
    }

    fn stored_work(&self, hash: &BlockHash) -> Option<Work> {
        Some(self.view.store().header(hash).ok()??.chain_work)
    }

    fn locator(&self, head: Option<BlockHash>) -> Vec<BlockHash> {
        let store = self.view.store();
        let mut out: Vec<BlockHash> = head.into_iter().collect();
        let mut step = 1u64;
        let mut height = self.view.tip().height.0;
        loop {
            if let Ok(Some(hash)) = store.hash_at(Height(height)) {
                out.push(hash);
            }
            if height == 0 || out.len() >= MAX_LOCATOR - 1 {
                break;
            }
            if out.len() > 10 {
                step *= 2;
            }
            height = height.saturating_sub(step);
        }
        if out.last() != Some(&self.genesis) {
            out.push(self.genesis);
        }
        out
    }

    fn pow_ok(&self, header: &Header) -> bool {
        oxchain_consensus::validate::validate_pow(self.view.params(), header).is_ok()
    }

    fn min_chain_work(&self) -> Work {
        self.view.params().min_chain_work
    }
}

impl Service {
    /// Runs the sync machine: starts what it can start, and carries out its steps.
    pub(super) fn drive_sync(&mut self) {
        loop {
            // Steps an input left (a penalty above all) are carried out before the
            // machine chooses whom to ask next, so that it sees the penalty.
            let pending = self.syncer.take_steps();
            if !pending.is_empty() {
                for step in pending {
                    self.carry_out(step);
                }
                continue;
            }
            let now = Instant::now();
            {
                let Service {
                    syncer,
                    peers,
                    swarm,
                    chain,
                    genesis,
                    ..
                } = self;
                let local = ChainLocal {
                    view: chain.view(),
                    genesis: *genesis,
                };
                let usable = |p: &PeerId| {
                    swarm.is_connected(p)
                        && !peers.paused(p, now)
                        && !swarm.behaviour().gate.is_banned(p)
                };
                syncer.drive(&local, &usable, now);
            }
            let steps = self.syncer.take_steps();
            if steps.is_empty() {
                return;
            }
            for step in steps {
                self.carry_out(step);
            }
        }
    }

    pub(super) fn carry_out(&mut self, step: Step) {
        match step {
            Step::Send {
                peer,
                token,
                request,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.requests.insert(id, Some(token));
            }
            Step::Import { round, blocks } => self.import(round, blocks),
            Step::Penalise {
                peer,
                penalty: Penalty::Ban(why),
            } => self.ban(peer, why),
            Step::Penalise {
                peer,
                penalty: Penalty::Strike(why),
            } => match self.peers.strike(peer, Instant::now()) {
                Struck::Ban => self.ban(peer, why),
                Struck::Paused(count) => {
                    tracing::info!(%peer, reason = why, strikes = count, "sync peer at fault: syncing from another");
                    *self.rejected.entry(why.to_string()).or_default() += 1;
                    self.metrics.penalty(why);
                }
            },
            Step::Finished {
                height,
                reached,
                imported,
            } => {
                if reached && imported {
                    tracing::info!(height, "sync done");
                    self.announce_tip();
                } else {
                    tracing::debug!(height, reached, imported, "sync round ended");
                }
                self.publish_info();
            }
        }
    }

    /// After a sync that brought blocks, the tip is news to peers that were on another
    /// branch (a healed split): gossiped, so that they fetch the branch by sync now
    /// rather than at their next status poll. A tip that came by gossip is not (the
    /// peers have it, and gossipsub would refuse it).
    fn announce_tip(&mut self) {
        let view = self.chain.view();
        let tip = view.tip();
        if self.gossiped.contains(&tip.hash) {
            return;
        }
        let Ok(Some(block)) = view.store().block(&tip.hash) else {
            return;
        };
        remember(&mut self.gossiped, tip.hash);
        self.publish_block(&block);
    }

    pub(super) fn ask_statuses(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.ask_status(peer);
        }
    }

    pub(super) fn ask_status(&mut self, peer: PeerId) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::Status);
        self.requests.insert(id, None);
    }

    pub(super) fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve(request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if self.compact.contains_key(&request_id) {
                        self.on_compact_answer(peer, &request_id, Some(response));
                        self.drive_sync();
                        return;
                    }
                    if self.pending_asks.contains_key(&request_id) {
                        self.on_pending_answer(peer, request_id, Ok(response));
                        return;
                    }
                    let token = self.requests.remove(&request_id).flatten();
                    self.on_response(peer, token, response);
                    self.drive_sync();
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.on_compact_answer(peer, &request_id, None) {
                    self.drive_sync();
                    return;
                }
                if self.pending_asks.contains_key(&request_id) {
                    // As a sync answer's: one that does not decode or is over its cap
                    // is the peer's doing.
                    let failure = match error {
                        request_response::OutboundFailure::Io(_) => PendingFailure::BadAnswer,
                        _ => PendingFailure::Unanswered,
                    };
                    self.on_pending_answer(peer, request_id, Err(failure));
                    return;
                }
                if let Some(token) = self.requests.remove(&request_id).flatten() {
                    use request_response::OutboundFailure;
                    let failure = match error {
                        OutboundFailure::Timeout => Failure::Timeout,
                        // An answer that does not decode, or over its cap.
                        OutboundFailure::Io(_) => Failure::BadAnswer,
                        OutboundFailure::UnsupportedProtocols => Failure::Unsupported,
                        _ => Failure::Closed,
                    };
                    self.syncer.failed(peer, token, failure);
                    self.drive_sync();
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, peer: PeerId, token: Option<Token>, response: SyncResponse) {
        let local = local(&self.chain, self.genesis);
        match (response, token) {
            (
                SyncResponse::Status {
                    genesis,
                    tip,
                    height,
                    total_work,
                },
                _,
            ) => {
                if genesis != self.genesis {
                    // Another network: nobody's fault, but nothing to talk about.
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                }
                // A feeler is worth keeping if its chain is ahead of ours or on another
                // branch (either side of a healed split has blocks the other lacks).
                let on_our_chain = self
                    .chain
                    .view()
                    .store()
                    .hash_at(Height(height.0))
                    .ok()
                    .flatten()
                    == Some(tip);
                let useful = total_work > local.tip_work() || !on_our_chain;
                if self.peers.feeler_answered(&peer, useful) {
                    tracing::debug!(%peer, "feeler on our chain: letting it go");
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                }
                self.syncer.status(
                    peer,
                    Status {
                        height: height.0,
                        work: total_work,
                        tip,
                    },
                );
            }
            (SyncResponse::Headers(headers), Some(token)) => {
                self.syncer.headers(&local, peer, token, headers)
            }
            (SyncResponse::Blocks(blocks), Some(token)) => {
                self.syncer.blocks(&local, peer, token, blocks)
            }
            // Headers or blocks in answer to a Status: not what was asked for.
            (SyncResponse::Headers(_) | SyncResponse::Blocks(_), None)
            | (SyncResponse::BlockTxs(_) | SyncResponse::Pending(_), _) => {
                self.ban(peer, "unrequested_answer")
            }
        }
    }

    /// Imports a batch of sync round `round`, off the loop, one batch at a time. The
    /// loop always hears back, even if the import panics (else the sync would wait on it
    /// for ever).
    fn import(&mut self, round: u64, batch: Vec<(Block, PeerId)>) {
        let chain = self.chain.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let (blocks, senders): (Vec<Block>, Vec<PeerId>) = batch.into_iter().unzip();
            let outcomes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                chain.write(|c| c.process_blocks(blocks, now_ms()))
            }));
            let faulty = match outcomes {
                Ok(Ok(outcomes)) => {
                    let mut faulty: Vec<PeerId> = outcomes
                        .iter()
                        .zip(&senders)
                        .filter(|(o, _)| o.fault() == Some(Fault::Sender))
                        .map(|(_, p)| *p)
                        .collect();
                    faulty.sort();
                    faulty.dedup();
                    Some(faulty)
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "sync import failed");
                    None
                }
                Err(_) => {
                    tracing::error!("sync import panicked");
                    None
                }
            };
            let _ = done.send(Done::Imported { round, faulty });
        });
    }

    /// Answers a peer's request off the loop (reads may take a while).
    fn serve(&mut self, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        let store = self.store.clone();
        let genesis = self.genesis;
        let done = self.done_tx.clone();
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || {
            let response = match request {
                SyncRequest::GetPending {
                    sender,
                    from,
                    count,
                } => crate::serve::pending(&chain.view().mempool(), &sender, from, count),
                request => crate::serve::answer(&store, genesis, request),
            };
            let _ = done.send(Done::Respond { channel, response });
        });
    }
}
