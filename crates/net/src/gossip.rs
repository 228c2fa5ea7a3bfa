//! Gossip: the gossipsub set-up (topics' size caps, a score that counts only invalid
//! messages) and the checks a message goes through before it is forwarded.

use std::time::Duration;

use libp2p::gossipsub::{self, MessageId};
use oxchain_chain::{BlockOutcome, MempoolError, SharedChain};
use oxchain_consensus::params::MAX_FUTURE_BLOCK_TIME_MS;
use oxchain_consensus::validate::validate_pow;
use oxchain_consensus::{ChainParams, Fault};
use oxchain_primitives::{Address, Block, BlockHash, Header, Transaction, Transfer, Txid, decode};

use crate::compact::{CompactBlock, Partial};
use crate::message::{MAX_RESPONSE_BYTES, SyncRequest, SyncResponse};

/// The largest gossip frame read: a larger one is cut at its length prefix, unread.
const GOSSIP_FRAME_BYTES: usize = 2 * oxchain_primitives::limits::MAX_BLOCK_BYTES;
/// Room for gossipsub's envelope (source, sequence number, signature, key, topic).
const GOSSIP_ENVELOPE_BYTES: usize = 1024;
/// The largest message on the blocks topic: the largest valid block as a compact block
/// with every transaction prefilled (a salt, two counts, an index gap a transaction), and
/// an envelope.
const MAX_BLOCK_GOSSIP_BYTES: usize = oxchain_primitives::limits::MAX_BLOCK_BYTES
    + 8
    + 10
    + oxchain_primitives::limits::MAX_BLOCK_TXS
    + GOSSIP_ENVELOPE_BYTES;
/// The largest message on the transfers topic: a transfer with the most data (its fixed
/// fields take under 200 bytes) and an envelope.
const MAX_TRANSFER_GOSSIP_BYTES: usize =
    oxchain_primitives::limits::MAX_TX_DATA_BYTES + 512 + GOSSIP_ENVELOPE_BYTES;

/// What becomes of a gossiped message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: forwarded.
    Accept,
    /// Not forwarded, nobody's fault.
    Ignore,
    /// Invalid in a way its sender could have checked: reject and ban the sender.
    Reject,
}

/// What checking a gossiped block found.
pub(crate) struct Checked {
    pub(crate) verdict: Verdict,
    /// Its hash and its parent's, when the parent is unknown (it waits in the orphan
    /// pool): its sender has a chain we have not seen.
    pub(crate) orphan: Option<(BlockHash, BlockHash)>,
    /// Its hash, when it was not stored through no fault of its sender: its branch has
    /// less work than ours, or it is a block 1 dated long before our clock (ADR 0017).
    pub(crate) not_taken: Option<BlockHash>,
    /// Its height, once stored: its sender has at least it.
    pub(crate) height: Option<u64>,
}

/// How a compact block became a block, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rebuilt {
    /// Every transfer was in the mempool (or prefilled).
    Mempool,
    /// Missing transfers were asked of the sender.
    Fetched,
    /// The full block was asked of the sender.
    FullBlock,
}

impl Rebuilt {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rebuilt::Mempool => "mempool",
            Rebuilt::Fetched => "fetched",
            Rebuilt::FullBlock => "full_block",
        }
    }
}

/// What a compact block needs from its sender before it can be checked.
pub(crate) enum Needs {
    /// The missing transfers of this partial block.
    Transfers(Partial),
    /// The full block (a short id collided, or the rebuild failed).
    FullBlock,
}

/// What receiving a compact block came to.
pub(crate) enum Received {
    /// It was checked as a block (or refused before that, on its header).
    Checked(Checked, Option<Rebuilt>),
    /// It waits for its sender.
    Needs(Needs),
}

/// Receives a gossiped compact block (on a blocking thread): its header's proof of work
/// first, then a known block is ignored at once (a whole block, all prefilled, goes on
/// to the body check, which finds a known header over another body), then the block is
/// rebuilt from the mempool and checked as [`check_block`] checks it.
pub(crate) fn receive_compact(
    chain: &SharedChain,
    compact: &CompactBlock,
    now_ms: u64,
) -> Received {
    let view = chain.view();
    if validate_pow(view.params(), &compact.header).is_err() {
        return Received::Checked(Checked::verdict(Verdict::Reject), None);
    }
    if !compact.is_full() && matches!(view.store().header(&compact.hash()), Ok(Some(_))) {
        return Received::Checked(Checked::verdict(Verdict::Ignore), None);
    }
    let rebuilt = {
        let pool = view.mempool();
        compact.rebuild(pool.iter())
    };
    match rebuilt {
        Err(_) => Received::Needs(Needs::FullBlock),
        Ok(partial) if !partial.missing().is_empty() => Received::Needs(Needs::Transfers(partial)),
        Ok(partial) => finish_compact(chain, compact, partial, Rebuilt::Mempool, now_ms),
    }
}

/// Checks a rebuilt block, unless its merkle root shows a short id that matched the wrong
/// transfer (a collision, or a lie): then the full block is needed.
pub(crate) fn finish_compact(
    chain: &SharedChain,
    compact: &CompactBlock,
    partial: Partial,
    how: Rebuilt,
    now_ms: u64,
) -> Received {
    let Some((block, txids)) = partial.block() else {
        return Received::Needs(Needs::FullBlock);
    };
    if !compact.is_full()
        && oxchain_primitives::merkle::compute_root(&txids) != block.header.merkle_root
    {
        return Received::Needs(Needs::FullBlock);
    }
    Received::Checked(check_block(chain, block, Some(txids), now_ms), Some(how))
}

/// Checks the full block a compact block's sender gave. It is relayed only if the compact
/// block describes it: a message whose short ids name other transfers is not forwarded
/// (nobody's fault: a collision looks the same), and the node announces the block itself.
/// Returns the block to announce, if any (only then is the block copied).
pub(crate) fn check_full_block(
    chain: &SharedChain,
    compact: &CompactBlock,
    block: Block,
    now_ms: u64,
) -> (Checked, Option<Block>) {
    let kept = (!compact.describes(&block)).then(|| block.clone());
    let mut checked = check_block(chain, block, None, now_ms);
    let announce = kept.filter(|_| checked.verdict == Verdict::Accept);
    if announce.is_some() {
        checked.verdict = Verdict::Ignore;
    }
    (checked, announce)
}

impl Checked {
    /// A verdict alone.
    pub(crate) fn verdict(verdict: Verdict) -> Checked {
        Checked {
            verdict,
            orphan: None,
            not_taken: None,
            height: None,
        }
    }
}

/// The gossipsub behaviour of a node on the topics `blocks` and `transfers`.
pub(crate) fn behaviour(
    blocks: gossipsub::TopicHash,
    transfers: gossipsub::TopicHash,
) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        // Blocks go to 10 mesh peers, not 6: a compact block is a few KB, and a denser
        // mesh takes a block to everyone in fewer hops, with fewer nodes left to learn
        // of it from the next heartbeat's IHAVE.
        .mesh_n_for_topic(10, blocks.clone())
        .mesh_n_low_for_topic(8, blocks.clone())
        .mesh_n_high_for_topic(16, blocks.clone())
        // A message is kept for forwarding for 10 heartbeats (5 s): a compact block
        // that waits for its sender's transfers is still forwarded once checked.
        .history_length(10)
        // No envelope signature (ADR 0013): blocks carry their proof of work and
        // transfers their sender's signature; the envelope's cost a signature per message
        // sent and a check per message received, on every hop.
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        // Each topic's cap is its largest valid message with room for the envelope; a
        // message over it but under the frame cap is counted against its sender (ADR
        // 0009), and one over the frame cap is cut at its length prefix, unread.
        .max_transmit_size(GOSSIP_FRAME_BYTES)
        .max_transmit_size_for_topic(MAX_BLOCK_GOSSIP_BYTES, blocks.clone())
        .max_transmit_size_for_topic(MAX_TRANSFER_GOSSIP_BYTES, transfers.clone())
        .message_id_fn(|m: &gossipsub::Message| {
            MessageId::from(oxchain_primitives::sha256(&m.data).to_vec())
        })
        .build()
        .map_err(|e| e.to_string())?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)?;
    behaviour.with_peer_score(
        invalid_messages_only([blocks, transfers]),
        gossipsub::PeerScoreThresholds::default(),
    )?;
    Ok(behaviour)
}

/// Peer scores that count only invalid messages (oversize for their topic, a bad
/// envelope, or rejected by our validation): every other term is off, so a negative
/// score means a misbehaving peer and nothing else (no penalty for sharing an IP, as
/// every devnet node does, nor for being slow).
fn invalid_messages_only(topics: [gossipsub::TopicHash; 2]) -> gossipsub::PeerScoreParams {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    gossipsub::PeerScoreParams {
        topics: topics.into_iter().map(|t| (t, topic.clone())).collect(),
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: 0.0,
        slow_peer_weight: 0.0,
        ..Default::default()
    }
}

/// Checks a gossiped block against the chain (on a blocking thread). A known block is
/// answered from the store without the writer. Only a block that connected, and so was
/// checked against the ledger, is forwarded: a side block is stored but not relayed (a
/// peer that needs its branch fetches it by sync when the branch wins).
pub(crate) fn check_block(
    chain: &SharedChain,
    block: Block,
    txids: Option<Vec<Txid>>,
    now_ms: u64,
) -> Checked {
    let view = chain.view();
    let outcome = match view.screen_block(&block) {
        Ok(Some(outcome)) => Ok(outcome),
        _ if stale_first_block(view.params(), &block.header, now_ms) => {
            return Checked {
                verdict: Verdict::Ignore,
                orphan: None,
                not_taken: Some(block.header.compute_hash()),
                height: None,
            };
        }
        _ => chain.write(|c| match txids {
            Some(txids) => c.process_block_with_txids(block, txids, now_ms),
            None => c.process_block(block, now_ms),
        }),
    };
    let not_taken = match &outcome {
        Ok(BlockOutcome::LowWork { hash, .. }) => Some(*hash),
        _ => None,
    };
    let (verdict, orphan, height) = match outcome {
        Ok(BlockOutcome::Extended { height, .. } | BlockOutcome::Reorg { height, .. }) => {
            (Verdict::Accept, None, Some(height.0))
        }
        Ok(BlockOutcome::SideChain { height, .. }) => (Verdict::Ignore, None, Some(height.0)),
        Ok(BlockOutcome::Orphan { hash, parent }) => (Verdict::Ignore, Some((hash, parent)), None),
        Ok(BlockOutcome::Invalid { error, .. }) if error.fault() == Fault::Sender => {
            (Verdict::Reject, None, None)
        }
        _ => (Verdict::Ignore, None, None),
    };
    Checked {
        verdict,
        orphan,
        not_taken,
        height,
    }
}

/// Whether `header` is a block 1 dated more than [`MAX_FUTURE_BLOCK_TIME_MS`] before the
/// clock, with a valid proof of work, on a network whose difficulty schedule it would
/// anchor (ADR 0017): gossip brings new blocks, and a new block 1 dated that early would
/// make every block after it easy. By sync it is taken like any block.
fn stale_first_block(params: &ChainParams, header: &Header, now_ms: u64) -> bool {
    params.retarget
        && header.prev_hash == params.genesis_hash()
        && header.time_ms.saturating_add(MAX_FUTURE_BLOCK_TIME_MS) < now_ms
        && validate_pow(params, header).is_ok()
}

/// Gossiped transfers held for want of their sender's previous nonce, at most
/// [`MAX_GAPPED`].
const MAX_GAPPED: usize = 1024;
/// Held transfers of one sender, at most.
const MAX_GAPPED_PER_SENDER: usize = 32;
/// How long a held transfer waits for the one before it.
const GAPPED_FOR: Duration = Duration::from_secs(60);

/// Gossiped transfers that came before their sender's previous nonce. Gossip takes many
/// paths, so a sender's transfers sent in nonce order can arrive out of it; without
/// this, the later one would be dropped for a nonce gap and never come again (gossip
/// drops what it has seen), and every block that carries it would have to fetch it.
/// Bounded: the oldest go first, and nothing waits longer than [`GAPPED_FOR`]. A
/// signature is checked before its transfer is held (a forged transfer must not take an
/// honest one's place, nor make the node ask anybody for anything), and again when it is
/// taken, as any transfer's.
#[derive(Default)]
pub(crate) struct Gapped {
    by_sender: std::collections::HashMap<
        Address,
        std::collections::BTreeMap<u64, (Transfer, std::time::Instant)>,
    >,
    order: std::collections::VecDeque<(Address, u64)>,
    keys: oxchain_consensus::signatures::KeyCache,
}

impl Gapped {
    fn hold(&mut self, sender: Address, transfer: Transfer) {
        let queue = self.by_sender.entry(sender).or_default();
        if queue.len() >= MAX_GAPPED_PER_SENDER {
            return;
        }
        queue.insert(
            transfer.nonce,
            (transfer.clone(), std::time::Instant::now()),
        );
        self.order.push_back((sender, transfer.nonce));
        while self.order.len() > MAX_GAPPED {
            if let Some((sender, nonce)) = self.order.pop_front() {
                self.take(&sender, nonce);
            }
        }
    }

    /// The held transfer of `sender` with `nonce`, if it has not waited too long.
    fn take(&mut self, sender: &Address, nonce: u64) -> Option<Transfer> {
        let queue = self.by_sender.get_mut(sender)?;
        let held = queue.remove(&nonce);
        if queue.is_empty() {
            self.by_sender.remove(sender);
        }
        held.filter(|(_, at)| at.elapsed() < GAPPED_FOR)
            .map(|(t, _)| t)
    }

    /// Transfers held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_sender.values().map(|q| q.len()).sum()
    }
}

/// A held transfer's nonce gap: its sender's transfers from `from` up to the one before
/// `held` are not pending here. The peer that sent it holds them (a mempool's transfers
/// have no gap), so the node may ask it for them (`GetPending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) sender: Address,
    /// The next nonce the mempool can take from the sender.
    pub(crate) from: u64,
    /// The held transfer's nonce.
    pub(crate) held: u64,
}

/// Checks a gossiped transfer through the mempool (on the transfer checker's thread).
/// One that leaves a nonce gap is held, and the gap returned; one that the mempool takes
/// lets the held transfers that follow it in.
pub(crate) fn check_transfer(
    chain: &SharedChain,
    gapped: &mut Gapped,
    transfer: Transfer,
) -> (Verdict, Option<Gap>) {
    let view = chain.view();
    let (sender, nonce) = (transfer.sender(), transfer.nonce);
    match view.submit_transfer(transfer.clone()) {
        Ok(_) => {
            let mut next = nonce + 1;
            while let Some(held) = gapped.take(&sender, next) {
                if view.submit_transfer(held).is_err() {
                    break;
                }
                next += 1;
            }
            (Verdict::Accept, None)
        }
        Err(MempoolError::NonceGap { got, expected, .. }) => {
            let genesis = view.params().genesis_hash();
            let txid = Transaction::Transfer(transfer.clone()).compute_txid();
            if oxchain_consensus::signatures::verify_transfer(
                &mut gapped.keys,
                &genesis,
                &transfer,
                txid,
            )
            .is_err()
            {
                return (Verdict::Reject, None);
            }
            gapped.hold(sender, transfer);
            let gap = Gap {
                sender,
                from: expected,
                held: got,
            };
            (Verdict::Ignore, Some(gap))
        }
        Err(e) if e.is_bad_data() => (Verdict::Reject, None),
        Err(_) => (Verdict::Ignore, None),
    }
}

/// The checks a peer's gossip goes through, without the network: the steps the event
/// loop takes for a message on the blocks topic (decoded as a compact block,
/// [`receive_compact`], then the sender's answer to what the node asks of it, through
/// [`finish_compact`] or [`check_full_block`], as `service/relay.rs` does) and on the
/// transfers topic (decoded as a transfer, [`check_transfer`] with the held transfers).
/// Public for the fuzz targets (`fuzz/`): a change to those steps in the event loop is
/// made here too.
#[doc(hidden)]
pub struct GossipInbox {
    chain: SharedChain,
    gapped: Gapped,
}

impl GossipInbox {
    /// An inbox over `chain`, holding no transfer yet.
    pub fn new(chain: SharedChain) -> GossipInbox {
        GossipInbox {
            chain,
            gapped: Gapped::default(),
        }
    }

    /// A message on the blocks topic. `answer` gives the sender's answer, as bytes on the
    /// wire (`None`: no answer in time), to each request the node sends it for the
    /// transfers or the block it lacks.
    pub fn block(
        &mut self,
        bytes: &[u8],
        mut answer: impl FnMut(&SyncRequest) -> Option<Vec<u8>>,
        now_ms: u64,
    ) -> Verdict {
        let Ok(compact) = CompactBlock::from_bytes(bytes) else {
            return Verdict::Reject;
        };
        let hash = compact.hash();
        let mut received = receive_compact(&self.chain, &compact, now_ms);
        loop {
            let needs = match received {
                Received::Checked(checked, _) => return checked.verdict,
                Received::Needs(needs) => needs,
            };
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
            // The codec refuses an answer over the cap or one that does not decode.
            let response = answer(&request)
                .filter(|b| b.len() <= MAX_RESPONSE_BYTES)
                .and_then(|b| SyncResponse::from_bytes(&b).ok());
            received = match (response, partial) {
                (Some(SyncResponse::BlockTxs(txs)), Some(mut partial)) => {
                    if partial.fill(txs, &compact) {
                        finish_compact(&self.chain, &compact, partial, Rebuilt::Fetched, now_ms)
                    } else {
                        Received::Needs(Needs::FullBlock)
                    }
                }
                (Some(SyncResponse::Blocks(blocks)), None)
                    if blocks.first().is_some_and(|b| b.compute_hash() == hash) =>
                {
                    let block = blocks.into_iter().next().expect("checked above");
                    return check_full_block(&self.chain, &compact, block, now_ms)
                        .0
                        .verdict;
                }
                // Not served: not forwarded, and the sender is struck.
                _ => return Verdict::Ignore,
            };
        }
    }

    /// A message on the transfers topic.
    pub fn transfer(&mut self, bytes: &[u8]) -> Verdict {
        match decode::<Transaction>(bytes) {
            Ok(Transaction::Transfer(t)) => check_transfer(&self.chain, &mut self.gapped, t).0,
            _ => Verdict::Reject,
        }
    }
}

/// Starts the thread that checks gossiped transfers one at a time, in the order sent
/// (`check` for each). It stops when the sender is dropped.
pub(crate) fn transfer_checker<T: Send + 'static>(
    mut check: impl FnMut(T) + Send + 'static,
) -> std::io::Result<std::sync::mpsc::Sender<T>> {
    let (queue, inbox) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gossip-transfers".into())
        .spawn(move || {
            for item in inbox {
                check(item);
            }
        })?;
    Ok(queue)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use oxchain_chain::{Chain, MempoolLimits};
    use oxchain_primitives::Transaction;
    use oxchain_testkit::{dev_account_address, dev_account_key, signed_transfer};

    /// A sender's transfers that arrive out of nonce order (gossip over two paths) all
    /// end in the mempool: the later one waits for the one before it. It used to be
    /// dropped for a nonce gap.
    #[test]
    fn a_transfer_ahead_of_its_nonce_waits_for_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let params = ChainParams::regtest();
        let store = oxchain_storage::Store::open(dir.path(), &params).unwrap();
        let chain = SharedChain::new(
            Chain::new(params.clone(), store, MempoolLimits::default(), 1).unwrap(),
        );
        let transfer = |nonce| {
            signed_transfer(
                &params.genesis_hash(),
                &dev_account_key("alice"),
                dev_account_address("bob"),
                1_000,
                1_000,
                nonce,
            )
        };
        let mut gapped = Gapped::default();
        let gap = |held| {
            Some(Gap {
                sender: dev_account_address("alice"),
                from: 0,
                held,
            })
        };
        assert_eq!(
            check_transfer(&chain, &mut gapped, transfer(2)),
            (Verdict::Ignore, gap(2))
        );
        assert_eq!(
            check_transfer(&chain, &mut gapped, transfer(1)),
            (Verdict::Ignore, gap(1))
        );
        assert_eq!(gapped.len(), 2);
        assert_eq!(
            check_transfer(&chain, &mut gapped, transfer(0)),
            (Verdict::Accept, None)
        );
        let pool = chain.view().mempool();
        for nonce in 0..3 {
            let txid = Transaction::Transfer(transfer(nonce)).compute_txid();
            assert!(pool.contains(&txid), "nonce {nonce} is pending");
        }
        assert_eq!(gapped.len(), 0);
    }
}
