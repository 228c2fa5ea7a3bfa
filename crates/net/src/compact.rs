//! Compact blocks: what the blocks topic carries (BIP 152's idea). A block travels as its
//! header, a salt, 6-byte short ids of the transfers the receiver most likely has in its
//! mempool, and the transactions given in full ("prefilled": always the coinbase). The
//! receiver rebuilds the block from its mempool ([`CompactBlock::rebuild`]), asks the
//! sender only for what it lacks (`GetBlockTxs`), and checks the merkle root; when a
//! short id collides or the rebuild fails it asks for the full block.
//!
//! Short ids are keyed per block: SipHash-2-4 of the txid under keys taken from
//! SHA-256(header || salt), cut to 48 bits. The header carries the proof of work, so
//! nobody can grind transfers whose short ids collide in a block not yet mined.
//!
//! Layout on the wire (integers little-endian, varints as in blocks):
//! header (88 bytes) · salt (u64) · varint n · n short ids (6 bytes each) ·
//! varint m · m × (varint index gap, transaction).
//! The transactions of the block, in order, are the prefilled ones at their indexes and
//! the short ids' transfers in the remaining places, in order. A prefilled index is
//! written as its gap from the previous one plus one (the first from -1).

use std::collections::HashMap;

use oxchain_primitives::encode::{Reader, TRANSFER_FIXED_BYTES, write_varint};
use oxchain_primitives::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS};
use oxchain_primitives::{
    Block, BlockHash, Decode, DecodeError, Encode, Header, Transaction, Transfer, Txid, sha256,
};
use siphasher::sip::SipHasher24;

/// Bytes of a short id.
pub const SHORT_ID_BYTES: usize = 6;
/// Short ids in a compact block, at most: a block full of the smallest transfers.
pub const MAX_SHORT_IDS: usize = MAX_BLOCK_BYTES / (TRANSFER_FIXED_BYTES + 1);
/// Transfers asked for in one `GetBlockTxs`, at most; a block missing more is fetched
/// whole.
pub const MAX_TX_REQUEST: usize = 2_000;

/// A block as the blocks topic carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactBlock {
    /// The block's header.
    pub header: Header,
    /// The sender's salt for the short ids' key.
    pub salt: u64,
    /// Short ids of the transactions not prefilled, in block order.
    pub short_ids: Vec<u64>,
    /// Transactions given in full, with their indexes in the block, increasing.
    pub prefilled: Vec<(usize, Transaction)>,
}

/// Why a compact block cannot be rebuilt from short ids: the full block is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildError {
    /// Two short ids in the message are equal.
    DuplicateShortIds,
    /// More transfers are missing than one request may ask for.
    TooManyMissing,
}

/// The keys of a block's short ids.
fn keys(header: &Header, salt: u64) -> (u64, u64) {
    let mut data = header.to_bytes().to_vec();
    data.extend_from_slice(&salt.to_le_bytes());
    let digest = sha256(&data);
    let word = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[i * 8..i * 8 + 8]);
        u64::from_le_bytes(bytes)
    };
    (word(0), word(1))
}

/// The short id of `txid` under `keys`: the low 48 bits of SipHash-2-4.
fn short_id((k0, k1): (u64, u64), txid: &Txid) -> u64 {
    SipHasher24::new_with_keys(k0, k1).hash(&txid.0) & 0xffff_ffff_ffff
}

impl CompactBlock {
    /// `block` with only its coinbase prefilled: what a node sends.
    pub fn new(block: &Block, salt: u64) -> CompactBlock {
        CompactBlock::with_prefilled(block, salt, |tx| matches!(tx, Transaction::Coinbase(_)))
    }

    /// `block` with every transaction prefilled: the whole block, which needs no mempool.
    pub fn full(block: &Block) -> CompactBlock {
        CompactBlock::with_prefilled(block, 0, |_| true)
    }

    fn with_prefilled(
        block: &Block,
        salt: u64,
        prefill: impl Fn(&Transaction) -> bool,
    ) -> CompactBlock {
        let keys = keys(&block.header, salt);
        let mut short_ids = Vec::new();
        let mut prefilled = Vec::new();
        for (index, tx) in block.transactions.iter().enumerate() {
            if prefill(tx) {
                prefilled.push((index, tx.clone()));
            } else {
                short_ids.push(short_id(keys, &tx.compute_txid()));
            }
        }
        CompactBlock {
            header: block.header,
            salt,
            short_ids,
            prefilled,
        }
    }

    /// The short id `txid` has in this compact block.
    pub fn short_id(&self, txid: &Txid) -> u64 {
        short_id(keys(&self.header, self.salt), txid)
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.compute_hash()
    }

    /// Transactions in the block.
    pub fn len(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }

    /// Whether it has no transaction (a block never has none: it is invalid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every transaction is prefilled: the message is the whole block.
    pub fn is_full(&self) -> bool {
        self.short_ids.is_empty()
    }

    /// Whether this message is `block` with the short ids its salt gives (prefilled
    /// transactions where they are): a node relays only messages that are.
    pub fn describes(&self, block: &Block) -> bool {
        if block.header != self.header || block.transactions.len() != self.len() {
            return false;
        }
        let keys = keys(&self.header, self.salt);
        let mut prefilled = self.prefilled.iter().peekable();
        let mut short_ids = self.short_ids.iter();
        block.transactions.iter().enumerate().all(|(index, tx)| {
            match prefilled.next_if(|(i, _)| *i == index) {
                Some((_, given)) => given == tx,
                None => short_ids.next() == Some(&short_id(keys, &tx.compute_txid())),
            }
        })
    }

    /// Rebuilds the block from the transfers in `pool` (txid, transfer). What the pool
    /// lacks, or holds twice under one short id, is left missing.
    pub fn rebuild<'a>(
        &self,
        pool: impl IntoIterator<Item = (&'a Txid, &'a Transfer)>,
    ) -> Result<Partial, RebuildError> {
        let keys = keys(&self.header, self.salt);
        let mut slots: Vec<Option<Transaction>> = vec![None; self.len()];
        let mut txids: Vec<Option<Txid>> = vec![None; self.len()];
        for (index, tx) in &self.prefilled {
            slots[*index] = Some(tx.clone());
            txids[*index] = Some(tx.compute_txid());
        }
        // The places of the short ids: the slots not prefilled, in order.
        let mut places = HashMap::with_capacity(self.short_ids.len());
        let mut free = slots.iter().enumerate().filter(|(_, s)| s.is_none());
        for id in &self.short_ids {
            let (place, _) = free.next().expect("one free slot per short id");
            if places.insert(*id, place).is_some() {
                return Err(RebuildError::DuplicateShortIds);
            }
        }
        // A pool transfer whose short id is taken by another pool transfer: neither is
        // trusted (the place is asked for).
        let mut collided = Vec::new();
        for (txid, transfer) in pool {
            let Some(&place) = places.get(&short_id(keys, txid)) else {
                continue;
            };
            if slots[place].is_some() {
                collided.push(place);
            } else {
                slots[place] = Some(Transaction::Transfer(transfer.clone()));
                txids[place] = Some(*txid);
            }
        }
        for place in collided {
            slots[place] = None;
            txids[place] = None;
        }
        let missing: Vec<usize> = (0..slots.len()).filter(|i| slots[*i].is_none()).collect();
        if missing.len() > MAX_TX_REQUEST {
            return Err(RebuildError::TooManyMissing);
        }
        Ok(Partial {
            header: self.header,
            keys,
            slots,
            txids,
            missing,
        })
    }
}

/// A block being rebuilt: its transactions, some still missing.
#[derive(Debug, Clone)]
pub struct Partial {
    header: Header,
    keys: (u64, u64),
    slots: Vec<Option<Transaction>>,
    /// The txid of each transaction in place: the pool's for its transfers, computed for
    /// the others.
    txids: Vec<Option<Txid>>,
    missing: Vec<usize>,
}

impl Partial {
    /// The indexes of the missing transactions, increasing.
    pub fn missing(&self) -> &[usize] {
        &self.missing
    }

    /// Fills the missing places with `txs`, in order: they must be as many as the
    /// missing places, and each must have its place's short id. `false` if not (the
    /// answer was not what was asked for).
    pub fn fill(&mut self, txs: Vec<Transaction>, short_ids: &CompactBlock) -> bool {
        if txs.len() != self.missing.len() {
            return false;
        }
        // The short id each place carries in the message.
        let mut expected = HashMap::with_capacity(self.missing.len());
        let mut ids = short_ids.short_ids.iter();
        let prefilled: std::collections::HashSet<usize> =
            short_ids.prefilled.iter().map(|(i, _)| *i).collect();
        for place in 0..self.slots.len() {
            if prefilled.contains(&place) {
                continue;
            }
            let Some(id) = ids.next() else { return false };
            expected.insert(place, *id);
        }
        let mut txids = Vec::with_capacity(txs.len());
        for (place, tx) in self.missing.iter().zip(&txs) {
            let txid = tx.compute_txid();
            let ok = matches!(tx, Transaction::Transfer(_))
                && expected.get(place) == Some(&short_id(self.keys, &txid));
            if !ok {
                return false;
            }
            txids.push(txid);
        }
        for ((place, tx), txid) in self.missing.iter().zip(txs).zip(txids) {
            self.slots[*place] = Some(tx);
            self.txids[*place] = Some(txid);
        }
        self.missing.clear();
        true
    }

    /// The block and its txids, once nothing is missing.
    pub fn block(self) -> Option<(Block, Vec<Txid>)> {
        let block = Block {
            header: self.header,
            transactions: self.slots.into_iter().collect::<Option<Vec<_>>>()?,
        };
        Some((block, self.txids.into_iter().collect::<Option<Vec<_>>>()?))
    }
}

impl CompactBlock {
    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            120 + self.short_ids.len() * SHORT_ID_BYTES
                + self
                    .prefilled
                    .iter()
                    .map(|(_, t)| t.encoded_len() + 3)
                    .sum::<usize>(),
        );
        self.header.encode_to(&mut out);
        out.extend_from_slice(&self.salt.to_le_bytes());
        write_varint(&mut out, self.short_ids.len() as u64);
        for id in &self.short_ids {
            out.extend_from_slice(&id.to_le_bytes()[..SHORT_ID_BYTES]);
        }
        write_varint(&mut out, self.prefilled.len() as u64);
        let mut next = 0;
        for (index, tx) in &self.prefilled {
            write_varint(&mut out, (index - next) as u64);
            next = index + 1;
            tx.encode_to(&mut out);
        }
        out
    }

    /// Reads a compact block; never panics. Counts are capped before anything is
    /// allocated, and the prefilled indexes must fall inside the block.
    pub fn from_bytes(bytes: &[u8]) -> Result<CompactBlock, DecodeError> {
        let mut r = Reader::new(bytes);
        let header = Header::decode_from(&mut r)?;
        let salt = r.u64()?;
        let n = r.length("short ids", MAX_SHORT_IDS)?;
        let short_ids = (0..n)
            .map(|_| {
                let b: [u8; SHORT_ID_BYTES] = r.array()?;
                let mut word = [0u8; 8];
                word[..SHORT_ID_BYTES].copy_from_slice(&b);
                Ok(u64::from_le_bytes(word))
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let m = r.length("prefilled transactions", MAX_BLOCK_TXS)?;
        let mut prefilled = Vec::with_capacity(m.min(1024));
        let mut next: u64 = 0;
        for _ in 0..m {
            let index = next.saturating_add(r.varint()?);
            if index >= (n + m) as u64 {
                return Err(DecodeError::TooLong {
                    what: "prefilled index",
                    len: index,
                    max: (n + m) as u64 - 1,
                });
            }
            next = index + 1;
            prefilled.push((index as usize, Transaction::decode_from(&mut r)?));
        }
        r.finish()?;
        Ok(CompactBlock {
            header,
            salt,
            short_ids,
            prefilled,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use oxchain_testkit::{ChainBuilder, dev_transfers};

    fn block_with_transfers(n: usize) -> Block {
        let builder = ChainBuilder::regtest();
        let transfers = dev_transfers(&builder.genesis_hash(), "alice", "bob", n as u64);
        builder.build_block(transfers)
    }

    fn pool(block: &Block) -> Vec<(Txid, Transfer)> {
        block
            .transactions
            .iter()
            .filter_map(|tx| match tx {
                Transaction::Transfer(t) => Some((tx.compute_txid(), t.clone())),
                Transaction::Coinbase(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_block_is_rebuilt_from_a_pool_that_has_its_transfers() {
        let block = block_with_transfers(5);
        let compact = CompactBlock::new(&block, 7);
        assert_eq!(compact.short_ids.len(), 5);
        let bytes = compact.to_bytes();
        assert_eq!(CompactBlock::from_bytes(&bytes).unwrap(), compact);
        assert!(bytes.len() < 88 + 8 + 5 * 6 + 80);
        let pool = pool(&block);
        let partial = compact.rebuild(pool.iter().map(|(a, b)| (a, b))).unwrap();
        assert!(partial.missing().is_empty());
        assert_eq!(
            partial.block().unwrap(),
            (block.clone(), block.compute_txids())
        );
        assert!(compact.describes(&block));
        // The short ids of salt 7 under another salt name other transfers.
        let mut resalted = compact.clone();
        resalted.salt = 8;
        assert!(!resalted.describes(&block));
    }

    #[test]
    fn what_the_pool_lacks_is_missing_and_filled_from_the_answer() {
        let block = block_with_transfers(6);
        let compact = CompactBlock::new(&block, 1);
        let pool = pool(&block);
        let some = [&pool[0], &pool[2], &pool[5]];
        let mut partial = compact.rebuild(some.iter().map(|(a, b)| (a, b))).unwrap();
        assert_eq!(partial.missing(), &[2, 4, 5]);
        let answer: Vec<Transaction> = [2, 4, 5]
            .iter()
            .map(|&i| block.transactions[i].clone())
            .collect();
        // A wrong answer is refused and changes nothing.
        let mut wrong = answer.clone();
        wrong.swap(0, 1);
        assert!(!partial.fill(wrong, &compact));
        assert!(partial.fill(answer, &compact));
        assert_eq!(
            partial.block().unwrap(),
            (block.clone(), block.compute_txids())
        );
    }

    #[test]
    fn bad_bytes_and_duplicate_short_ids_are_refused() {
        let block = block_with_transfers(3);
        let mut compact = CompactBlock::new(&block, 1);
        // A prefilled index past the block's end.
        compact.prefilled[0].0 = 10;
        assert!(CompactBlock::from_bytes(&compact.to_bytes()).is_err());
        let bytes = CompactBlock::new(&block, 1).to_bytes();
        for cut in 0..bytes.len() {
            assert!(CompactBlock::from_bytes(&bytes[..cut]).is_err());
        }
        let mut dup = CompactBlock::new(&block, 1);
        dup.short_ids[1] = dup.short_ids[0];
        assert_eq!(
            dup.rebuild(std::iter::empty()).unwrap_err(),
            RebuildError::DuplicateShortIds
        );
        assert!(!dup.describes(&block));
        let full = CompactBlock::full(&block);
        assert!(full.is_full());
        let partial = full.rebuild(std::iter::empty()).unwrap();
        assert_eq!(
            partial.block().unwrap(),
            (block.clone(), block.compute_txids())
        );
    }
}
