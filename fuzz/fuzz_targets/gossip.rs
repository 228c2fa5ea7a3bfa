//! Gossip up to the chain: what a peer can put on the blocks topic (compact blocks) and
//! on the transfers topic, and its answers to what the node then asks of it, through the
//! checks the node runs on them (`oxchain_net::GossipInbox`: decoding, the compact
//! block's rebuild from the mempool, the block pipeline, the mempool) on a fresh regtest
//! chain per input.
//!
//! Input: frames (`oxchain_fuzz::frames`): a block message, a transfer message, or an
//! answer, which goes to the next request of the block message before it.
//!
//! Checked: a block without its proof of work is rejected; a rejected block never moves
//! the tip, an accepted one is the tip; an accepted transfer is in the mempool and a
//! rejected one is not; the store's tip is the one readers see.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use oxchain_consensus::validate::validate_pow;
use oxchain_fuzz::kind;
use oxchain_net::compact::CompactBlock;
use oxchain_net::{GossipInbox, GossipVerdict};
use oxchain_primitives::{Txid, sha256d};

/// Messages per input, at most: each may take a write transaction.
const MAX_FRAMES: usize = 12;

fuzz_target!(|data: &[u8]| {
    let frames = oxchain_fuzz::frames(data, MAX_FRAMES);
    if frames.is_empty() {
        return;
    }
    let dir = oxchain_fuzz::tempdir();
    let chain = oxchain_fuzz::regtest_chain(dir.path());
    let params = oxchain_fuzz::params();
    let mut inbox = GossipInbox::new(chain.clone());
    let now = oxchain_fuzz::now_ms();
    let mut i = 0;
    while i < frames.len() {
        let (k, bytes) = frames[i];
        i += 1;
        let view = chain.view();
        match k % 3 {
            kind::BLOCK => {
                let mut answers: VecDeque<Vec<u8>> = VecDeque::new();
                while i < frames.len() && frames[i].0 % 3 == kind::ANSWER {
                    answers.push_back(frames[i].1.to_vec());
                    i += 1;
                }
                let before = view.tip();
                let verdict = inbox.block(bytes, |_| answers.pop_front(), now);
                let after = view.tip();
                match CompactBlock::from_bytes(bytes) {
                    Err(_) => assert_eq!(verdict, GossipVerdict::Reject),
                    Ok(compact) => {
                        if validate_pow(&params, &compact.header).is_err() {
                            assert_eq!(verdict, GossipVerdict::Reject, "no proof of work");
                        }
                        match verdict {
                            GossipVerdict::Reject => {
                                assert_eq!(
                                    after.hash, before.hash,
                                    "a rejected block moved the tip"
                                )
                            }
                            GossipVerdict::Accept => {
                                assert_eq!(
                                    after.hash,
                                    compact.hash(),
                                    "an accepted block is the tip"
                                )
                            }
                            GossipVerdict::Ignore => {}
                        }
                    }
                }
                let stored = view.store().tip().expect("the store reads");
                assert_eq!(stored.hash, after.hash, "the store's tip is the readers'");
            }
            kind::TRANSFER => {
                let txid = Txid(sha256d(bytes));
                let pending = view.mempool().contains(&txid);
                let verdict = inbox.transfer(bytes);
                let now_pending = view.mempool().contains(&txid);
                match verdict {
                    GossipVerdict::Accept => {
                        assert!(now_pending, "an accepted transfer is pending")
                    }
                    GossipVerdict::Reject => {
                        assert!(
                            !pending && !now_pending,
                            "a rejected transfer is not pending"
                        )
                    }
                    GossipVerdict::Ignore => assert_eq!(pending, now_pending),
                }
            }
            // An answer nobody asked for: dropped, as the codec drops it.
            _ => {}
        }
    }
});
