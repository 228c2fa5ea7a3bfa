//! Headers and blocks.

use std::fmt;

use crate::encode::{self, Encode};
use crate::hash::{BlockHash, MerkleRoot, Txid, sha256d};
use crate::limits::HEADER_BYTES;
use crate::merkle;
use crate::target::{CompactTarget, Work};
use crate::tx::Transaction;

/// A block's position in its chain; genesis is height 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 88-byte block header. Its first 64 bytes do not change while a miner searches
/// nonces, so one nonce costs two SHA-256 compressions after a cached midstate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header version, 1.
    pub version: u32,
    /// Hash of the parent block's header.
    pub prev_hash: BlockHash,
    /// Merkle root over the block's txids.
    pub merkle_root: MerkleRoot,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The proof-of-work target in compact form.
    pub bits: CompactTarget,
    /// The miner's counter.
    pub nonce: u64,
}

impl Header {
    /// The encoded 88 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        encode::header_bytes(self)
    }

    /// The block hash: SHA-256d of the 88 header bytes.
    pub fn compute_hash(&self) -> BlockHash {
        BlockHash(sha256d(&self.to_bytes()))
    }

    /// The work this header's target stands for (expected hashes), if its bits decode.
    pub fn work(&self) -> Option<Work> {
        self.bits.to_target().ok().map(|t| t.work())
    }
}

/// A header and its transactions, coinbase first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions; the first is the coinbase.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block hash.
    pub fn compute_hash(&self) -> BlockHash {
        self.header.compute_hash()
    }

    /// The txids of the transactions, in order.
    pub fn compute_txids(&self) -> Vec<Txid> {
        self.transactions
            .iter()
            .map(Transaction::compute_txid)
            .collect()
    }

    /// The merkle root the header should carry.
    pub fn compute_merkle_root(&self) -> MerkleRoot {
        merkle::compute_root(&self.compute_txids())
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encoded_size()
    }
}
