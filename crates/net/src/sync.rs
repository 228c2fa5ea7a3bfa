//! The sync as a state machine with no I/O: statuses, headers, blocks, failures and
//! import results go in; requests, imports and penalties come out as [`Step`]s, which
//! the event loop carries out. Unit-tested without sockets (`tests` below).
//!
//! A round is led by one peer, the one with the most work that no fault keeps out: its
//! headers are checked (chaining, each one's proof of work, the parent known) before any
//! block is asked for, and a short answer (the peer's tip) must show the work the peer
//! claimed. The blocks of those headers are then downloaded from the leader and from up
//! to [`MAX_DOWNLOAD_PEERS`] - 1 helpers, peers whose tip is the leader's or one of the
//! round's headers, each with at most one request out; what an answer leaves out is
//! asked for again. Blocks are imported in chain order, one batch at a time, while the
//! next ones download; at most [`READY_BYTES`] of downloaded blocks wait, except that
//! the first block missing is always asked for when blocks after it wait on it, so the
//! round never waits on itself.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use oxchain_primitives::{Block, BlockHash, Header, Work};

use crate::message::{MAX_GET_BLOCKS, MAX_HEADERS, SyncRequest};

/// What the machine needs to know of the local chain.
pub(crate) trait Local {
    /// The best chain's work.
    fn tip_work(&self) -> Work;
    /// The best chain's height.
    fn tip_height(&self) -> u64;
    /// The cumulative work of a stored block (any branch), if stored.
    fn stored_work(&self, hash: &BlockHash) -> Option<Work>;
    /// A locator of the best chain, with `head` first when given.
    fn locator(&self, head: Option<BlockHash>) -> Vec<BlockHash>;
    /// Whether a header's hash meets its own target, within the network's limit.
    fn pow_ok(&self, header: &Header) -> bool;
    /// The least work a chain must show before its blocks are downloaded.
    fn min_chain_work(&self) -> Work;
}

/// Names a request the machine sent; the loop maps libp2p's request ids to these.
pub(crate) type Token = u64;

/// A peer's best chain, as it said (Status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) height: u64,
    pub(crate) work: Work,
    pub(crate) tip: BlockHash,
}

/// How a request failed, as the transport says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer in time.
    Timeout,
    /// An answer that does not decode, or is over its cap.
    BadAnswer,
    /// The peer does not speak the sync protocol.
    Unsupported,
    /// The connection went away: nobody's fault.
    Closed,
}

/// What a fault costs its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Penalty {
    /// A fault no single message proves (claiming work it does not show, stalling,
    /// timing out): the peer is passed over for a while, and banned when it repeats.
    Strike(&'static str),
    /// A message that proves the peer at fault (it could have checked it itself).
    Ban(&'static str),
}

/// Something for the loop to do.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send a request; its answer or failure comes back with `token`.
    Send {
        peer: PeerId,
        token: Token,
        request: SyncRequest,
    },
    /// Import these blocks, in order, then call [`Syncer::imported`] with `round`. Each
    /// comes with the peer that sent it. One import at a time, across rounds.
    Import {
        round: u64,
        blocks: Vec<(Block, PeerId)>,
    },
    /// Penalise a peer.
    Penalise { peer: PeerId, penalty: Penalty },
    /// A round ended; `reached` when it brought us to its leader's height, `imported`
    /// when it imported any block.
    Finished {
        height: u64,
        reached: bool,
        imported: bool,
    },
}

/// Peers a round downloads from at once, at most (the leader among them).
pub(crate) const MAX_DOWNLOAD_PEERS: usize = 4;
/// Downloaded blocks that may wait for the import before them, at most (bytes).
pub(crate) const READY_BYTES: usize = 32 << 20;
/// Headers a round holds ahead of its imports, at most: the next headers are asked for
/// once fewer wait.
const HEADERS_AHEAD: usize = 2 * MAX_HEADERS;
/// Headers a round may hold before they show the network's minimum chain work (no block
/// is asked for until then), at most: 32 bytes each and a map entry.
const HEADERS_BELOW_MIN_WORK: usize = 100 * MAX_HEADERS;
/// A request for headers, or for blocks that the round waits on while another peer
/// could serve them, unanswered after this long: its peer stalls the round (struck, and
/// what it held is asked of another). The transport's own timeout (30 s) is the bound
/// when nobody else could.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(10);

struct Round {
    /// Tells this round's imports from an earlier round's.
    id: u64,
    leader: PeerId,
    /// The leader's tip and height, as it last said.
    leader_tip: BlockHash,
    target: u64,
    /// The most work the leader has claimed.
    claimed: Work,
    /// What it had claimed when the outstanding GetHeaders was sent: what the headers
    /// of its tip must show (a later claim may count blocks found since).
    claimed_at_request: Work,
    headers_out: Option<(Token, Instant)>,
    /// The leader's headers reached its tip.
    headers_done: bool,
    /// The last header accepted and the work of the chain ending at it.
    last: Option<(BlockHash, Work)>,
    /// The blocks to import, in chain order; `base` is the position of `order[0]`.
    order: VecDeque<BlockHash>,
    base: u64,
    position: HashMap<BlockHash, u64>,
    /// Positions not asked for (or to be asked again).
    queue: BTreeSet<u64>,
    /// Block requests out: who has each, the positions it asks for in order, and when.
    inflight: HashMap<Token, (PeerId, Vec<u64>, Instant)>,
    /// Helpers that answered a request with nothing: left alone for this round.
    useless: HashSet<PeerId>,
    arrived: BTreeMap<u64, (Block, PeerId)>,
    arrived_bytes: usize,
    imported: bool,
}

impl Round {
    fn busy(&self, peer: &PeerId) -> bool {
        self.inflight.values().any(|(p, _, _)| p == peer)
    }

    /// The first position not yet imported nor downloaded.
    fn first_missing(&self) -> Option<u64> {
        let inflight = self
            .inflight
            .values()
            .flat_map(|(_, ps, _)| ps.first())
            .min();
        match (self.queue.first(), inflight) {
            (Some(q), Some(i)) => Some((*q).min(*i)),
            (q, i) => q.or(i).copied(),
        }
    }

    /// The last position `peer` can serve, if any: all of them for a peer on the
    /// leader's tip, up to its tip for a peer whose tip is one of the round's headers.
    fn serves_up_to(&self, peer: &PeerId, status: Option<&Status>) -> Option<u64> {
        if *peer == self.leader {
            return Some(u64::MAX);
        }
        let status = status?;
        if status.tip == self.leader_tip {
            return Some(u64::MAX);
        }
        self.position.get(&status.tip).copied()
    }

    fn finished(&self, importing: Option<u64>) -> bool {
        self.headers_done && self.order.is_empty() && importing != Some(self.id)
    }
}

/// The sync: who said what, and the round under way.
#[derive(Default)]
pub(crate) struct Syncer {
    statuses: HashMap<PeerId, Status>,
    round: Option<Round>,
    next_token: Token,
    out: Vec<Step>,
    /// When a round's start was last logged at INFO, and how many started since.
    logged: Option<Instant>,
    rounds_unlogged: u64,
    /// Rounds started so far: the next round's id.
    rounds: u64,
    /// The round whose import runs now, if one does (it may have ended since).
    importing: Option<u64>,
}

/// Round starts are logged at INFO at most this often (the rest at DEBUG, counted in the
/// next INFO line).
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Syncer {
    /// The steps to carry out, in order.
    pub(crate) fn take_steps(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.out)
    }

    /// The height of the round's leader, while a round is under way.
    pub(crate) fn target(&self) -> Option<u64> {
        self.round.as_ref().map(|r| r.target)
    }

    /// Whether a round is under way.
    pub(crate) fn syncing(&self) -> bool {
        self.round.is_some()
    }

    /// The peer's height, as it said or as its blocks showed.
    pub(crate) fn height(&self, peer: &PeerId) -> Option<u64> {
        self.statuses.get(peer).map(|s| s.height)
    }

    /// A peer's Status answer.
    pub(crate) fn status(&mut self, peer: PeerId, status: Status) {
        if let Some(round) = self.round.as_mut().filter(|r| r.leader == peer) {
            round.target = round.target.max(status.height);
            if status.work > round.claimed {
                round.claimed = status.work;
                round.leader_tip = status.tip;
            }
        }
        self.statuses.insert(peer, status);
    }

    /// A block of height `height` from `peer` was stored: it has at least that.
    pub(crate) fn saw_height(&mut self, peer: PeerId, height: u64) {
        if let Some(status) = self.statuses.get_mut(&peer) {
            status.height = status.height.max(height);
        }
    }

    /// `peer` is gone (disconnected, or banned).
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.statuses.remove(peer);
        let Some(round) = self.round.as_mut() else {
            return;
        };
        if round.leader == *peer {
            self.round = None;
            return;
        }
        let tokens: Vec<Token> = round
            .inflight
            .iter()
            .filter(|(_, (p, _, _))| p == peer)
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            if let Some((_, positions, _)) = round.inflight.remove(&token) {
                round.queue.extend(positions);
            }
        }
    }

    /// A gossiped block from `peer` has an unknown parent: `peer` has a chain we have
    /// not seen, so a round starts from it unless one is under way.
    pub(crate) fn orphan_from(&mut self, local: &dyn Local, peer: PeerId, now: Instant) {
        if self.round.is_none() {
            let status = self.statuses.get(&peer).copied();
            self.start(local, peer, status, now);
        }
    }

    /// Starts a round when a usable peer has more work than we have, and sends the
    /// requests the round can send now. Call after any input.
    pub(crate) fn drive(
        &mut self,
        local: &dyn Local,
        usable: &dyn Fn(&PeerId) -> bool,
        now: Instant,
    ) {
        // A penalty is carried out before anything else is sent: the loop drives again.
        if self.check_stalls(usable, now) {
            return;
        }
        if self.round.is_none() {
            let ours = local.tip_work();
            let least = ours.max(local.min_chain_work());
            let best = self
                .statuses
                .iter()
                .filter(|(peer, s)| s.work > ours && s.work >= least && usable(peer))
                .max_by_key(|(_, s)| s.work)
                .map(|(p, s)| (*p, *s));
            if let Some((peer, status)) = best {
                self.start(local, peer, Some(status), now);
            }
            return;
        }
        self.request_headers(local, now);
        self.request_blocks(local, usable, now);
    }

    /// Strikes a leader that sits on a request for headers (see [`STALL_AFTER`]): true
    /// when it did. Gives a request for blocks that the round waits on to another peer,
    /// without a penalty (the peer may just be slow; its answer, if it comes, is not
    /// taken, and it is asked for no more blocks this round).
    fn check_stalls(&mut self, usable: &dyn Fn(&PeerId) -> bool, now: Instant) -> bool {
        let Some(round) = self.round.as_ref() else {
            return false;
        };
        if let Some((_, sent)) = round.headers_out
            && sent + STALL_AFTER <= now
        {
            let leader = round.leader;
            self.penalise(leader, Penalty::Strike("sync_stalled"));
            return true;
        }
        let Some(first) = round.first_missing() else {
            return false;
        };
        let Some((&token, (peer, _, _))) = round
            .inflight
            .iter()
            .find(|(_, (_, ps, sent))| ps.first() == Some(&first) && *sent + STALL_AFTER <= now)
        else {
            return false;
        };
        // Stalling only if another peer could take the blocks over now.
        let peer = *peer;
        let other = std::iter::once(&round.leader)
            .chain(self.statuses.keys())
            .any(|p| {
                *p != peer
                    && !round.busy(p)
                    && !round.useless.contains(p)
                    && usable(p)
                    && round
                        .serves_up_to(p, self.statuses.get(p))
                        .is_some_and(|limit| limit >= first)
            });
        if other
            && let Some(round) = self.round.as_mut()
            && let Some((_, positions, _)) = round.inflight.remove(&token)
        {
            tracing::debug!(%peer, "slow to answer for blocks: asking another peer");
            round.queue.extend(positions);
            round.useless.insert(peer);
        }
        false
    }

    fn start(&mut self, local: &dyn Local, leader: PeerId, status: Option<Status>, now: Instant) {
        let claimed = status.map_or(Work::default(), |s| s.work);
        // One line a minute at most: rounds that end at once (a peer's orphan on a
        // branch we have, a struck leader) would otherwise fill the log.
        let target = status.map_or(0, |s| s.height);
        if self.logged.is_none_or(|at| at + LOG_EVERY <= now) {
            self.logged = Some(now);
            tracing::info!(peer = %leader, target, rounds = self.rounds_unlogged + 1, "syncing: headers first from the peer with most work");
            self.rounds_unlogged = 0;
        } else {
            self.rounds_unlogged += 1;
            tracing::debug!(peer = %leader, target, "syncing: headers first from the peer with most work");
        }
        self.rounds += 1;
        self.round = Some(Round {
            id: self.rounds,
            leader,
            leader_tip: status.map_or(BlockHash([0; 32]), |s| s.tip),
            target: status.map_or(0, |s| s.height),
            claimed,
            claimed_at_request: claimed,
            headers_out: None,
            headers_done: false,
            last: None,
            order: VecDeque::new(),
            base: 0,
            position: HashMap::new(),
            queue: BTreeSet::new(),
            inflight: HashMap::new(),
            useless: HashSet::new(),
            arrived: BTreeMap::new(),
            arrived_bytes: 0,
            imported: false,
        });
        self.request_headers(local, now);
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        self.next_token
    }

    fn request_headers(&mut self, local: &dyn Local, now: Instant) {
        let token = self.next_token + 1;
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let below_min = round
            .last
            .is_none_or(|(_, work)| work < local.min_chain_work());
        let ahead = if below_min {
            HEADERS_BELOW_MIN_WORK
        } else {
            HEADERS_AHEAD
        };
        if round.headers_out.is_some() || round.headers_done || round.order.len() >= ahead {
            return;
        }
        round.headers_out = Some((token, now));
        round.claimed_at_request = round.claimed;
        let request = SyncRequest::GetHeaders {
            locator: local.locator(round.last.map(|(hash, _)| hash)),
            max: MAX_HEADERS as u16,
        };
        let peer = round.leader;
        self.next_token = token;
        self.out.push(Step::Send {
            peer,
            token,
            request,
        });
    }

    fn request_blocks(
        &mut self,
        local: &dyn Local,
        usable: &dyn Fn(&PeerId) -> bool,
        now: Instant,
    ) {
        let Some(round) = self.round.as_ref() else {
            return;
        };
        // No block before the headers show the network's minimum chain work.
        if round
            .last
            .is_none_or(|(_, work)| work < local.min_chain_work())
        {
            return;
        }
        // The leader first, then helpers, each with at most one request out (none to a
        // peer found slow or without the blocks this round).
        let mut peers: Vec<PeerId> = vec![round.leader];
        peers.retain(|p| !round.useless.contains(p));
        let mut helpers: Vec<PeerId> = self
            .statuses
            .keys()
            .filter(|p| **p != round.leader && !round.useless.contains(p) && usable(p))
            .copied()
            .collect();
        helpers.sort();
        peers.extend(helpers);
        let mut downloading = round.inflight.len();
        for peer in peers {
            let status = self.statuses.get(&peer).copied();
            let Some(round) = self.round.as_mut() else {
                return;
            };
            if round.queue.is_empty() {
                return;
            }
            if round.busy(&peer) {
                continue;
            }
            if downloading >= MAX_DOWNLOAD_PEERS {
                return;
            }
            let Some(limit) = round.serves_up_to(&peer, status.as_ref()) else {
                continue;
            };
            // Past the cap only the first block missing is asked for, and only when
            // blocks after it wait on it (else the import is what is waited for).
            let full = round.arrived_bytes >= READY_BYTES;
            let first = round.first_missing();
            let gap = first.is_some_and(|f| round.arrived.keys().next_back() > Some(&f));
            if full && !gap {
                return;
            }
            let positions: Vec<u64> = round
                .queue
                .iter()
                .take_while(|p| **p <= limit)
                .take(if full { 1 } else { MAX_GET_BLOCKS })
                .copied()
                .collect();
            if positions.is_empty() || (full && positions.first() != first.as_ref()) {
                continue;
            }
            for p in &positions {
                round.queue.remove(p);
            }
            let hashes = positions
                .iter()
                .map(|p| round.order[(p - round.base) as usize])
                .collect();
            let token = self.token();
            if let Some(round) = self.round.as_mut() {
                round.inflight.insert(token, (peer, positions, now));
            }
            downloading += 1;
            self.out.push(Step::Send {
                peer,
                token,
                request: SyncRequest::GetBlocks(hashes),
            });
        }
        // Blocks wait and nobody is asked for them (every peer was found slow or without
        // them): everyone gets another chance, rather than the round waiting for ever.
        if let Some(round) = self.round.as_mut()
            && round.inflight.is_empty()
            && !round.queue.is_empty()
            && !round.useless.is_empty()
        {
            round.useless.clear();
        }
    }

    fn penalise(&mut self, peer: PeerId, penalty: Penalty) {
        self.out.push(Step::Penalise { peer, penalty });
        if self.round.as_ref().is_some_and(|r| r.leader == peer) {
            self.round = None;
        } else {
            self.forget_requests(&peer);
        }
    }

    /// Puts `peer`'s requests back in the queue and leaves it alone for the round.
    fn forget_requests(&mut self, peer: &PeerId) {
        let statuses = self.statuses.remove(peer);
        self.forget(peer);
        if let Some(status) = statuses {
            self.statuses.insert(*peer, status);
        }
        if let Some(round) = self.round.as_mut() {
            round.useless.insert(*peer);
        }
    }

    /// Headers from `peer`, answering `token`.
    pub(crate) fn headers(
        &mut self,
        local: &dyn Local,
        peer: PeerId,
        token: Token,
        headers: Vec<Header>,
    ) {
        let Some(round) = self
            .round
            .as_mut()
            .filter(|r| r.leader == peer && r.headers_out.is_some_and(|(t, _)| t == token))
        else {
            return; // a late answer to an earlier round: not this round's
        };
        round.headers_out = None;
        // Headers must chain: each one's parent is the one before.
        if !headers
            .windows(2)
            .all(|w| w[1].prev_hash == w[0].compute_hash())
        {
            return self.penalise(peer, Penalty::Ban("unchained_headers"));
        }
        // Each header's proof of work before any block is asked for.
        if !headers.iter().all(|h| local.pow_ok(h)) {
            return self.penalise(peer, Penalty::Ban("bad_header_pow"));
        }
        // The first one's parent is the last header of this round, or a stored block.
        let parent = match headers.first() {
            None => round.last.map_or(local.tip_work(), |(_, work)| work),
            Some(first) => match round.last {
                Some((hash, work)) if hash == first.prev_hash => work,
                _ => match local.stored_work(&first.prev_hash) {
                    Some(work) => work,
                    None => return self.penalise(peer, Penalty::Strike("unconnected_headers")),
                },
            },
        };
        let mut work = parent;
        let mut fresh = Vec::new();
        for header in &headers {
            // Every header's bits decoded in the proof-of-work check above.
            let target_work = header.work().unwrap_or_default();
            work = work.checked_add(target_work).unwrap_or(work);
            let hash = header.compute_hash();
            if local.stored_work(&hash).is_none() && !round.position.contains_key(&hash) {
                fresh.push(hash);
            }
        }
        // Fewer than asked: this is the peer's tip, so its chain's work is known. A
        // Status claim only grows (a chain switches only to more work), so showing less
        // than claimed is a lie.
        let short = headers.len() < MAX_HEADERS;
        if short && work < round.claimed_at_request {
            return self.penalise(peer, Penalty::Strike("sync_work_not_shown"));
        }
        // A full answer must take the round further: the same headers again (they
        // would pass every other check) would keep the round going for ever.
        if !short && round.last.is_some_and(|(_, before)| work <= before) {
            return self.penalise(peer, Penalty::Strike("sync_no_progress"));
        }
        // A chain that ends below the network's minimum chain work is not worth its
        // blocks.
        let below_min = work < local.min_chain_work();
        if below_min && short {
            return self.penalise(peer, Penalty::Strike("below_min_chain_work"));
        }
        // Headers held below the minimum are capped; past the cap the round ends with no
        // penalty (a chain that long below the minimum needs a header presync, which a
        // network will need before its minimum is raised that far).
        if below_min && round.order.len() + fresh.len() > HEADERS_BELOW_MIN_WORK {
            tracing::warn!(%peer, "over {HEADERS_BELOW_MIN_WORK} headers below the minimum chain work: round ended");
            self.round = None;
            return;
        }
        round.headers_done = short;
        if let Some(last) = headers.last() {
            round.last = Some((last.compute_hash(), work));
        }
        for hash in fresh {
            let position = round.base + round.order.len() as u64;
            round.order.push_back(hash);
            round.position.insert(hash, position);
            round.queue.insert(position);
        }
        self.maybe_finish(local);
    }

    /// Blocks from `peer`, answering `token`.
    pub(crate) fn blocks(
        &mut self,
        local: &dyn Local,
        peer: PeerId,
        token: Token,
        blocks: Vec<Block>,
    ) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let Some((asker, positions, _)) = round.inflight.remove(&token) else {
            return;
        };
        if asker != peer {
            round.queue.extend(positions);
            return;
        }
        // What was asked for, in order, and nothing else.
        let mut next = 0;
        let mut got = Vec::with_capacity(blocks.len());
        for block in blocks {
            let hash = block.header.compute_hash();
            let found = positions[next..]
                .iter()
                .position(|p| round.order[(p - round.base) as usize] == hash);
            match found {
                Some(i) => {
                    got.push((positions[next + i], block));
                    next += i + 1;
                }
                None => {
                    round.queue.extend(positions);
                    return self.penalise(peer, Penalty::Ban("unrequested_blocks"));
                }
            }
        }
        if got.is_empty() {
            round.queue.extend(positions);
            if peer == round.leader {
                return self.penalise(peer, Penalty::Strike("sync_stalled"));
            }
            // A helper may have moved to another branch: no fault, but no more asks.
            round.useless.insert(peer);
            return;
        }
        // What was left out (an answer is cut at its size cap) is asked for again.
        let received: HashSet<u64> = got.iter().map(|(p, _)| *p).collect();
        round
            .queue
            .extend(positions.into_iter().filter(|p| !received.contains(p)));
        for (position, block) in got {
            round.arrived_bytes += block.encoded_len();
            round.arrived.insert(position, (block, peer));
        }
        self.import_next();
        self.maybe_finish(local);
    }

    /// A request failed.
    pub(crate) fn failed(&mut self, peer: PeerId, token: Token, failure: Failure) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let headers = round.headers_out.is_some_and(|(t, _)| t == token);
        let ours = headers
            || round
                .inflight
                .get(&token)
                .is_some_and(|(p, _, _)| *p == peer);
        if !ours {
            return;
        }
        if headers {
            round.headers_out = None;
        }
        if let Some((_, positions, _)) = round.inflight.remove(&token) {
            round.queue.extend(positions);
        }
        let penalty = match failure {
            Failure::Timeout => Penalty::Strike("sync_timeout"),
            Failure::BadAnswer => Penalty::Strike("sync_bad_answer"),
            Failure::Unsupported => Penalty::Strike("sync_unsupported"),
            Failure::Closed => {
                if round.leader == peer {
                    self.round = None;
                }
                return;
            }
        };
        self.penalise(peer, penalty);
    }

    /// The [`Step::Import`] of round `id` is done; `faulty` when a block in it was
    /// invalid (the loop penalises its sender): that round ends, if it still runs, since
    /// what follows cannot connect.
    pub(crate) fn imported(&mut self, local: &dyn Local, id: u64, faulty: bool) {
        self.importing = None;
        if faulty && self.round.as_ref().is_some_and(|r| r.id == id) {
            self.round = None;
            return;
        }
        self.import_next();
        self.maybe_finish(local);
    }

    /// Hands the blocks that arrived in order to the import, unless one is running.
    fn import_next(&mut self) {
        if self.importing.is_some() {
            return;
        }
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let mut batch = Vec::new();
        while let Some(entry) = round.arrived.first_entry() {
            if *entry.key() != round.base {
                break;
            }
            let (block, peer) = entry.remove();
            round.arrived_bytes -= block.encoded_len();
            if let Some(hash) = round.order.pop_front() {
                round.position.remove(&hash);
            }
            round.base += 1;
            batch.push((block, peer));
        }
        if !batch.is_empty() {
            round.imported = true;
            self.importing = Some(round.id);
            self.out.push(Step::Import {
                round: round.id,
                blocks: batch,
            });
        }
    }

    fn maybe_finish(&mut self, local: &dyn Local) {
        if self
            .round
            .as_ref()
            .is_some_and(|r| r.finished(self.importing))
            && let Some(round) = self.round.take()
        {
            let height = local.tip_height();
            self.out.push(Step::Finished {
                height,
                reached: height >= round.target,
                imported: round.imported,
            });
        }
    }
}

#[cfg(test)]
mod tests;
