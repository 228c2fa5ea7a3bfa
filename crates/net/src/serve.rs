//! Answers to peers' sync requests, read from the store (and the mempool, for
//! `GetPending`). Public so that test peers can serve a chain exactly as a node does.

use oxchain_chain::Mempool;
use oxchain_primitives::{Address, BlockHash, Height, Transaction};
use oxchain_storage::Store;

use crate::message::{
    MAX_GET_BLOCKS, MAX_HEADERS, MAX_PENDING_REQUEST, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse,
};

/// The answer to `GetPending`: `sender`'s pending transfers with nonces from `from`, in
/// order, at most `count` (and [`MAX_PENDING_REQUEST`]), stopping at the first nonce the
/// mempool does not hold.
pub fn pending(mempool: &Mempool, sender: &Address, from: u64, count: u16) -> SyncResponse {
    let count = usize::from(count).min(MAX_PENDING_REQUEST);
    let transfers = mempool
        .sent_from(sender, from)
        .enumerate()
        .take_while(|(i, t)| from.checked_add(*i as u64) == Some(t.nonce))
        .take(count)
        .map(|(_, t)| Transaction::Transfer(t.clone()))
        .collect();
    SyncResponse::Pending(transfers)
}

/// The answer to `request` from the chain in `store` of the network with `genesis`. A
/// store that cannot be read answers as if it had nothing (an empty list, or genesis).
pub fn answer(store: &Store, genesis: BlockHash, request: SyncRequest) -> SyncResponse {
    match request {
        SyncRequest::Status => match store.tip() {
            Ok(tip) => SyncResponse::Status {
                genesis,
                tip: tip.hash,
                height: tip.height,
                total_work: tip.chain_work,
            },
            Err(_) => SyncResponse::Status {
                genesis,
                tip: genesis,
                height: Height(0),
                total_work: Default::default(),
            },
        },
        SyncRequest::GetHeaders { locator, max } => {
            // After the first locator hash on our best chain (genesis if none is).
            let on_best = |hash: &BlockHash| {
                let record = store.header(hash).ok()??;
                (store.hash_at(record.height).ok()?? == *hash).then_some(record.height.0 + 1)
            };
            let start = locator.iter().find_map(on_best).unwrap_or(1);
            let max = usize::from(max).min(MAX_HEADERS) as u64;
            let headers = (start..start + max)
                .map_while(|height| {
                    let hash = store.hash_at(Height(height)).ok()??;
                    Some(store.header(&hash).ok()??.header)
                })
                .collect();
            SyncResponse::Headers(headers)
        }
        SyncRequest::GetBlocks(hashes) => {
            // In the order asked, stopping at the first one we lack or at the size cap.
            let mut blocks = Vec::new();
            let mut bytes = 16;
            for hash in hashes.iter().take(MAX_GET_BLOCKS) {
                let Ok(Some(block)) = store.block(hash) else {
                    break;
                };
                bytes += block.encoded_len();
                if bytes > MAX_RESPONSE_BYTES {
                    break;
                }
                blocks.push(block);
            }
            SyncResponse::Blocks(blocks)
        }
        SyncRequest::GetBlockTxs { block, indexes } => {
            let Ok(Some(block)) = store.block(&block) else {
                return SyncResponse::BlockTxs(Vec::new());
            };
            let txs: Option<Vec<_>> = indexes
                .iter()
                .map(|&i| block.transactions.get(i).cloned())
                .collect();
            SyncResponse::BlockTxs(txs.unwrap_or_default())
        }
        // A store holds no pending transfers: the node answers these from its mempool
        // ([`pending`]).
        SyncRequest::GetPending { .. } => SyncResponse::Pending(Vec::new()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use oxchain_chain::{Chain, MempoolLimits, SharedChain};
    use oxchain_consensus::ChainParams;
    use oxchain_testkit::{dev_account_address, dev_transfers};

    use super::*;

    /// The nonces of a Pending answer's transfers, each checked to be alice's.
    fn nonces(answer: SyncResponse) -> Vec<u64> {
        let SyncResponse::Pending(txs) = answer else {
            panic!("not a Pending answer")
        };
        txs.iter()
            .map(|tx| match tx {
                Transaction::Transfer(t) => {
                    assert_eq!(t.sender(), dev_account_address("alice"));
                    t.nonce
                }
                Transaction::Coinbase(_) => panic!("a coinbase"),
            })
            .collect()
    }

    #[test]
    fn get_pending_answers_the_senders_nonces_from_the_first_asked_while_they_last() {
        let dir = tempfile::tempdir().unwrap();
        let params = ChainParams::regtest();
        let store = Store::open(dir.path(), &params).unwrap();
        let chain = SharedChain::new(
            Chain::new(params.clone(), store, MempoolLimits::default(), 1).unwrap(),
        );
        let genesis = params.genesis_hash();
        let view = chain.view();
        for t in dev_transfers(&genesis, "alice", "bob", 5)
            .into_iter()
            .chain(dev_transfers(&genesis, "bob", "alice", 1))
        {
            view.submit_transfer(t).unwrap();
        }
        let alice = dev_account_address("alice");
        let pool = view.mempool();
        assert_eq!(nonces(pending(&pool, &alice, 1, 3)), vec![1, 2, 3]);
        assert_eq!(nonces(pending(&pool, &alice, 3, 64)), vec![3, 4]);
        assert_eq!(nonces(pending(&pool, &alice, 0, 0)), Vec::<u64>::new());
        assert_eq!(nonces(pending(&pool, &alice, 5, 2)), Vec::<u64>::new());
        assert_eq!(
            nonces(pending(&pool, &alice, u64::MAX, 64)),
            Vec::<u64>::new()
        );
        // A count past 64 is read as 64.
        assert_eq!(nonces(pending(&pool, &alice, 0, u16::MAX)).len(), 5);
        let stranger = Address([7; 20]);
        assert_eq!(nonces(pending(&pool, &stranger, 0, 5)), Vec::<u64>::new());
    }
}
