//! The sync machine without sockets: a local chain of genesis only, peers serving a
//! real regtest chain (mined by the testkit), every input fed by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use oxchain_testkit::ChainBuilder;

use super::*;

struct Fake {
    stored: HashMap<BlockHash, Work>,
    tip: (u64, Work),
    bad_pow: HashSet<BlockHash>,
    min_work: Work,
}

impl Fake {
    fn at_genesis(chain: &ChainBuilder) -> Fake {
        let genesis = chain.blocks[0].header;
        let work = genesis.bits.to_target().unwrap().work();
        Fake {
            stored: HashMap::from([(genesis.compute_hash(), work)]),
            tip: (0, work),
            bad_pow: HashSet::new(),
            min_work: Work::default(),
        }
    }
}

impl Local for Fake {
    fn tip_work(&self) -> Work {
        self.tip.1
    }
    fn tip_height(&self) -> u64 {
        self.tip.0
    }
    fn stored_work(&self, hash: &BlockHash) -> Option<Work> {
        self.stored.get(hash).copied()
    }
    fn locator(&self, head: Option<BlockHash>) -> Vec<BlockHash> {
        head.into_iter().collect()
    }
    fn pow_ok(&self, header: &Header) -> bool {
        !self.bad_pow.contains(&header.compute_hash())
    }
    fn min_chain_work(&self) -> Work {
        self.min_work
    }
}

fn chain(blocks: usize) -> ChainBuilder {
    let mut chain = ChainBuilder::regtest();
    for _ in 0..blocks {
        chain.extend(vec![]).unwrap();
    }
    chain
}

fn status_of(chain: &ChainBuilder) -> Status {
    let mut work = Work::default();
    for b in &chain.blocks {
        work = work
            .checked_add(b.header.bits.to_target().unwrap().work())
            .unwrap();
    }
    Status {
        height: chain.height().0,
        work,
        tip: chain.tip().header.compute_hash(),
    }
}

fn headers(chain: &ChainBuilder) -> Vec<Header> {
    chain.blocks[1..].iter().map(|b| b.header).collect()
}

fn everyone(_: &PeerId) -> bool {
    true
}

/// The requests among `steps`.
fn sends(steps: &[Step]) -> Vec<(PeerId, Token, SyncRequest)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Send {
                peer,
                token,
                request,
            } => Some((*peer, *token, request.clone())),
            _ => None,
        })
        .collect()
}

fn penalties(steps: &[Step]) -> Vec<(PeerId, Penalty)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Penalise { peer, penalty } => Some((*peer, *penalty)),
            _ => None,
        })
        .collect()
}

/// A syncer whose round, led by `leader`, has asked for headers: the token of that ask.
fn started(local: &Fake, leader: PeerId, status: Status) -> (Syncer, Token) {
    let mut sync = Syncer::default();
    sync.status(leader, status);
    sync.drive(local, &everyone, Instant::now());
    let steps = sync.take_steps();
    let sent = sends(&steps);
    assert_eq!(sent.len(), 1, "one GetHeaders: {steps:?}");
    assert!(matches!(sent[0].2, SyncRequest::GetHeaders { .. }));
    assert_eq!(sent[0].0, leader);
    (sync, sent[0].1)
}

/// A round led by one peer with a helper, both on `honest`'s tip, after its headers:
/// the leader, the helper, the syncer and the requests for blocks sent at `now`.
#[allow(clippy::type_complexity)]
fn two_downloading(
    local: &Fake,
    honest: &ChainBuilder,
    now: Instant,
) -> (PeerId, PeerId, Syncer, Vec<(PeerId, Token, SyncRequest)>) {
    let (leader, helper) = (PeerId::random(), PeerId::random());
    let (mut sync, token) = started(local, leader, status_of(honest));
    sync.status(helper, status_of(honest));
    sync.headers(local, leader, token, headers(honest));
    sync.drive(local, &everyone, now);
    let sent = sends(&sync.take_steps());
    (leader, helper, sync, sent)
}

/// Asserts that the last input struck `peer` for `reason` (and nothing else) and ended
/// the round.
fn assert_struck(sync: &mut Syncer, peer: PeerId, reason: &'static str) {
    assert_eq!(
        penalties(&sync.take_steps()),
        vec![(peer, Penalty::Strike(reason))]
    );
    assert!(!sync.syncing(), "the round ended");
}

/// The blocks a GetBlocks asks for, from `chain`.
fn answer(chain: &ChainBuilder, request: &SyncRequest) -> Vec<Block> {
    let SyncRequest::GetBlocks(hashes) = request else {
        panic!("not a GetBlocks: {request:?}");
    };
    hashes
        .iter()
        .map(|h| {
            chain
                .blocks
                .iter()
                .find(|b| b.header.compute_hash() == *h)
                .unwrap()
                .clone()
        })
        .collect()
}

#[test]
fn a_peer_that_claims_work_and_shows_none_is_struck_and_the_round_ends() {
    let honest = chain(3);
    let local = Fake::at_genesis(&honest);
    let liar = PeerId::random();
    let mut claim = status_of(&honest);
    claim.work = claim.work.checked_add(claim.work).unwrap();
    let (mut sync, token) = started(&local, liar, claim);
    sync.headers(&local, liar, token, Vec::new());
    assert_struck(&mut sync, liar, "sync_work_not_shown");
    // The loop pauses the liar: the next drive leaves it alone.
    sync.drive(&local, &|p| *p != liar, Instant::now());
    assert!(sends(&sync.take_steps()).is_empty());
}

#[test]
fn headers_that_do_not_chain_or_lack_proof_of_work_ban_the_sender() {
    let honest = chain(4);
    let mut local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    let mut skipped = headers(&honest);
    skipped.remove(1);
    sync.headers(&local, peer, token, skipped);
    assert_eq!(
        penalties(&sync.take_steps()),
        vec![(peer, Penalty::Ban("unchained_headers"))]
    );

    local.bad_pow.insert(honest.blocks[2].header.compute_hash());
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    sync.headers(&local, peer, token, headers(&honest));
    let steps = sync.take_steps();
    assert_eq!(
        penalties(&steps),
        vec![(peer, Penalty::Ban("bad_header_pow"))]
    );
    assert!(sends(&steps).is_empty(), "no block is asked for");
}

#[test]
fn headers_whose_parent_is_unknown_strike_the_sender() {
    let honest = chain(4);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    sync.headers(&local, peer, token, headers(&honest)[2..].to_vec());
    assert_eq!(
        penalties(&sync.take_steps()),
        vec![(peer, Penalty::Strike("unconnected_headers"))]
    );
}

#[test]
fn a_late_answer_to_an_ended_round_is_not_taken() {
    let honest = chain(3);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    sync.failed(peer, token, Failure::Timeout);
    assert_eq!(
        penalties(&sync.take_steps()),
        vec![(peer, Penalty::Strike("sync_timeout"))]
    );
    sync.headers(&local, peer, token, headers(&honest));
    assert!(
        sync.take_steps().is_empty(),
        "the late headers start nothing"
    );
}

#[test]
fn blocks_left_out_are_asked_again_and_imports_go_in_chain_order() {
    let honest = chain(6);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    sync.headers(&local, peer, token, headers(&honest));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    assert_eq!(sent.len(), 1);
    let all = answer(&honest, &sent[0].2);
    assert_eq!(all.len(), 6);
    // Only the first two come back.
    sync.blocks(&local, peer, sent[0].1, all[..2].to_vec());
    let steps = sync.take_steps();
    let Some(Step::Import { blocks: batch, .. }) = steps.first() else {
        panic!("an import first: {steps:?}");
    };
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].0, honest.blocks[1]);
    sync.drive(&local, &everyone, Instant::now());
    let again = sends(&sync.take_steps());
    let SyncRequest::GetBlocks(hashes) = &again[0].2 else {
        panic!("{again:?}");
    };
    assert_eq!(hashes[0], honest.blocks[3].header.compute_hash());
    assert_eq!(hashes.len(), 4);
    // The rest arrives while the first batch imports: it waits for it.
    sync.blocks(&local, peer, again[0].1, answer(&honest, &again[0].2));
    assert!(
        sync.take_steps().is_empty(),
        "no second import while one runs"
    );
    sync.imported(&local, 1, false);
    let steps = sync.take_steps();
    let Some(Step::Import { blocks: batch, .. }) = steps.first() else {
        panic!("{steps:?}");
    };
    assert_eq!(batch.len(), 4);
    sync.imported(&local, 1, false);
    let steps = sync.take_steps();
    assert!(
        matches!(steps[..], [Step::Finished { .. }]),
        "the round ends with the last import: {steps:?}"
    );
    assert!(!sync.syncing());
}

#[test]
fn blocks_that_were_not_asked_for_ban_the_sender() {
    let honest = chain(4);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let mut fair = chain(0);
    fair.blocks = honest.blocks[..3].to_vec();
    let (mut sync, token) = started(&local, peer, status_of(&fair));
    sync.headers(&local, peer, token, headers(&fair));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    sync.blocks(&local, peer, sent[0].1, vec![honest.blocks[4].clone()]);
    assert_eq!(
        penalties(&sync.take_steps()),
        vec![(peer, Penalty::Ban("unrequested_blocks"))]
    );
}

#[test]
fn two_peers_on_the_best_chain_download_at_once() {
    // 100 blocks: more than one request's worth (64).
    let honest = chain(100);
    let local = Fake::at_genesis(&honest);
    let (leader, helper, mut sync, sent) = two_downloading(&local, &honest, Instant::now());
    assert_eq!(sent.len(), 2, "one request each: {sent:?}");
    assert_eq!(sent[0].0, leader);
    assert_eq!(sent[1].0, helper);
    let (a, b) = (answer(&honest, &sent[0].2), answer(&honest, &sent[1].2));
    assert_eq!(a.len() + b.len(), 100, "the two requests cover the blocks");
    assert_eq!(a[0], honest.blocks[1]);
    assert_eq!(b[0], honest.blocks[65]);
    // The helper answers first: its blocks wait for the leader's.
    sync.blocks(&local, helper, sent[1].1, b);
    assert!(sync.take_steps().is_empty());
    sync.blocks(&local, leader, sent[0].1, a);
    let steps = sync.take_steps();
    let Some(Step::Import { blocks: batch, .. }) = steps.first() else {
        panic!("{steps:?}");
    };
    assert_eq!(batch.len(), 100, "all 100, in order");
    assert!(
        batch
            .windows(2)
            .all(|w| w[1].0.header.prev_hash == w[0].0.header.compute_hash())
    );
    assert_eq!(batch[70].1, helper, "each block with its sender");
}

#[test]
fn a_helper_without_the_blocks_is_left_alone_without_penalty() {
    let honest = chain(100);
    let local = Fake::at_genesis(&honest);
    let (leader, helper, mut sync, sent) = two_downloading(&local, &honest, Instant::now());
    sync.blocks(&local, helper, sent[1].1, Vec::new());
    assert!(penalties(&sync.take_steps()).is_empty());
    sync.blocks(&local, leader, sent[0].1, answer(&honest, &sent[0].2));
    sync.drive(&local, &everyone, Instant::now());
    let steps = sync.take_steps();
    let next = sends(&steps);
    assert_eq!(next.len(), 1, "{steps:?}");
    assert_eq!(next[0].0, leader, "the helper's blocks go to the leader");
    assert_eq!(answer(&honest, &next[0].2)[0], honest.blocks[65]);
}

#[test]
fn a_leader_that_stalls_is_struck_and_the_round_ends() {
    let honest = chain(3);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    sync.headers(&local, peer, token, headers(&honest));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    sync.blocks(&local, peer, sent[0].1, Vec::new());
    assert_struck(&mut sync, peer, "sync_stalled");
}

#[test]
fn a_helper_whose_tip_is_a_header_of_the_round_is_asked_only_up_to_it() {
    let honest = chain(100);
    let local = Fake::at_genesis(&honest);
    let (leader, behind) = (PeerId::random(), PeerId::random());
    let (mut sync, token) = started(&local, leader, status_of(&honest));
    let mut short = chain(0);
    short.blocks = honest.blocks[..41].to_vec();
    sync.status(behind, status_of(&short));
    sync.headers(&local, leader, token, headers(&honest));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    // The leader takes 1..=64; the peer at 40 has nothing past it to give.
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, leader);
}

#[test]
fn blocks_a_slow_helper_holds_too_long_go_to_the_leader_without_a_penalty() {
    let honest = chain(100);
    let local = Fake::at_genesis(&honest);
    let t0 = Instant::now();
    let (leader, helper, mut sync, sent) = two_downloading(&local, &honest, t0);
    // The leader answers; the helper holds 65..=100, which the round now waits on.
    sync.blocks(&local, leader, sent[0].1, answer(&honest, &sent[0].2));
    sync.imported(&local, 1, false);
    let _ = sync.take_steps();
    sync.drive(&local, &everyone, t0 + STALL_AFTER / 2);
    assert!(sync.take_steps().is_empty(), "not yet");
    sync.drive(&local, &everyone, t0 + STALL_AFTER);
    let steps = sync.take_steps();
    assert!(penalties(&steps).is_empty(), "slow is no fault: {steps:?}");
    let next = sends(&steps);
    assert_eq!(next.len(), 1, "{steps:?}");
    assert_eq!(next[0].0, leader);
    assert_eq!(answer(&honest, &next[0].2)[0], honest.blocks[65]);
    // Its answer, late, is not taken.
    sync.blocks(&local, helper, sent[1].1, answer(&honest, &sent[1].2));
    assert!(sync.take_steps().is_empty());
}

#[test]
fn a_leader_repeating_a_full_answer_of_headers_is_struck() {
    let honest = chain(MAX_HEADERS + 5);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let mut claim = status_of(&honest);
    claim.work = claim.work.checked_add(claim.work).unwrap();
    let (mut sync, token) = started(&local, peer, claim);
    let full = headers(&honest)[..MAX_HEADERS].to_vec();
    sync.headers(&local, peer, token, full.clone());
    sync.drive(&local, &everyone, Instant::now());
    let asked = sends(&sync.take_steps());
    let again = asked
        .iter()
        .find(|(_, _, r)| matches!(r, SyncRequest::GetHeaders { .. }))
        .unwrap();
    sync.headers(&local, peer, again.1, full);
    assert_struck(&mut sync, peer, "sync_no_progress");
}

#[test]
fn an_import_of_an_ended_round_holds_back_the_next_rounds_import() {
    let honest = chain(3);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status_of(&honest));
    sync.headers(&local, peer, token, headers(&honest));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    sync.blocks(
        &local,
        peer,
        sent[0].1,
        answer(&honest, &sent[0].2)[..1].to_vec(),
    );
    assert!(matches!(
        sync.take_steps()[..],
        [Step::Import { round: 1, .. }]
    ));
    // The round ends while its import runs; a second round downloads its blocks.
    sync.forget(&peer);
    let other = PeerId::random();
    sync.status(other, status_of(&honest));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    sync.headers(&local, other, sent[0].1, headers(&honest));
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    sync.blocks(&local, other, sent[0].1, answer(&honest, &sent[0].2));
    assert!(
        sync.take_steps().is_empty(),
        "no second import while the first one runs"
    );
    // The first round's import ends, faulty: it does not end the second round.
    sync.imported(&local, 1, true);
    let steps = sync.take_steps();
    assert!(
        matches!(steps[..], [Step::Import { round: 2, .. }]),
        "{steps:?}"
    );
    assert!(sync.syncing());
}

#[test]
fn a_leader_that_sits_on_a_request_for_headers_is_struck() {
    let honest = chain(3);
    let local = Fake::at_genesis(&honest);
    let peer = PeerId::random();
    let (mut sync, _) = started(&local, peer, status_of(&honest));
    sync.drive(&local, &everyone, Instant::now() + STALL_AFTER);
    assert_struck(&mut sync, peer, "sync_stalled");
}

#[test]
fn headers_that_end_below_the_minimum_chain_work_fetch_no_block_and_strike() {
    let honest = chain(50);
    let mut local = Fake::at_genesis(&honest);
    let status = status_of(&honest);
    // The network's minimum is more than this chain's work.
    local.min_work = status.work.checked_add(status.work).unwrap();
    let peer = PeerId::random();
    let mut sync = Syncer::default();
    sync.status(peer, status);
    // A peer that claims less than the minimum is not synced from ...
    sync.drive(&local, &everyone, Instant::now());
    assert!(sync.take_steps().is_empty());
    // ... but one of its blocks with an unknown parent starts a round, whose headers
    // then fall short of the minimum.
    sync.orphan_from(&local, peer, Instant::now());
    let sent = sends(&sync.take_steps());
    sync.headers(&local, peer, sent[0].1, headers(&honest));
    let steps = sync.take_steps();
    assert_eq!(
        penalties(&steps),
        vec![(peer, Penalty::Strike("below_min_chain_work"))]
    );
    assert!(sends(&steps).is_empty(), "no block asked for");
    assert!(!sync.syncing());
}

#[test]
fn blocks_are_asked_for_only_once_the_headers_show_the_minimum_chain_work() {
    // More than one answer of headers: the first 2,000 are below the minimum, the
    // minimum is reached at the last header.
    let honest = chain(MAX_HEADERS + 5);
    let mut local = Fake::at_genesis(&honest);
    let status = status_of(&honest);
    local.min_work = status.work;
    let peer = PeerId::random();
    let (mut sync, token) = started(&local, peer, status);
    let all = headers(&honest);
    sync.headers(&local, peer, token, all[..MAX_HEADERS].to_vec());
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        matches!(sent[0].2, SyncRequest::GetHeaders { .. }),
        "more headers, no blocks yet"
    );
    sync.headers(&local, peer, sent[0].1, all[MAX_HEADERS..].to_vec());
    sync.drive(&local, &everyone, Instant::now());
    let sent = sends(&sync.take_steps());
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|(_, _, r)| matches!(r, SyncRequest::GetBlocks(_))),
        "{sent:?}"
    );
    assert_eq!(answer(&honest, &sent[0].2)[0], honest.blocks[1]);
}
