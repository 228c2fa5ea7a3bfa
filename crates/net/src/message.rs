//! The sync protocol's messages and their byte encoding (tag byte, then fields in the
//! canonical encoding). Every length is capped before anything is allocated.

use oxchain_primitives::encode::Reader;
use oxchain_primitives::limits::MAX_BLOCK_TXS;
use oxchain_primitives::{
    Address, Block, BlockHash, Decode, DecodeError, Encode, Header, Height, Transaction, Work,
};

use crate::compact::MAX_TX_REQUEST;

/// Headers per `GetHeaders` answer, at most.
pub const MAX_HEADERS: usize = 2_000;
/// Blocks per `GetBlocks` request, at most.
pub const MAX_GET_BLOCKS: usize = 64;
/// Hashes in a block locator, at most.
pub const MAX_LOCATOR: usize = 64;
/// Transfers per `GetPending` request and `Pending` answer, at most.
pub const MAX_PENDING_REQUEST: usize = 64;
/// Largest request on the wire: a locator or a list of hashes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Largest answer on the wire: 64 full blocks would be 64 MiB, so a node answers
/// `GetBlocks` with the blocks that fit in this.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A question to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// What is your best chain?
    Status,
    /// Best-chain headers after the first locator hash you know, up to `max`.
    GetHeaders {
        /// Hashes of our best chain, newest first, thinning out back to genesis.
        locator: Vec<BlockHash>,
        /// At most this many headers (capped at [`MAX_HEADERS`]).
        max: u16,
    },
    /// These blocks.
    GetBlocks(Vec<BlockHash>),
    /// Transactions of a block, by index: what a compact block's receiver lacks.
    GetBlockTxs {
        /// The block.
        block: BlockHash,
        /// Indexes in the block, increasing (at most [`MAX_TX_REQUEST`]).
        indexes: Vec<usize>,
    },
    /// A sender's pending transfers with nonces `from` to `from + count - 1`: those a
    /// gossiped transfer's nonce gap says the node lacks.
    GetPending {
        /// The sender's address.
        sender: Address,
        /// The first nonce.
        from: u64,
        /// How many nonces (at most [`MAX_PENDING_REQUEST`]).
        count: u16,
    },
}

/// A peer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    /// Its best chain.
    Status {
        /// Its genesis (a peer of another network is dropped).
        genesis: BlockHash,
        /// Its tip.
        tip: BlockHash,
        /// The tip's height.
        height: Height,
        /// Cumulative work of its best chain.
        total_work: Work,
    },
    /// Consecutive best-chain headers.
    Headers(Vec<Header>),
    /// The blocks asked for that it has, in the order asked.
    Blocks(Vec<Block>),
    /// The transactions asked for, in the order asked; none if it lacks the block or an
    /// index is outside it.
    BlockTxs(Vec<Transaction>),
    /// The sender's pending transfers asked for that the mempool holds, in nonce order
    /// from the first nonce asked, stopping at the first it lacks.
    Pending(Vec<Transaction>),
}

const STATUS: u8 = 0;
const GET_HEADERS: u8 = 1;
const GET_BLOCKS: u8 = 2;
const GET_BLOCK_TXS: u8 = 3;
const GET_PENDING: u8 = 4;
const HEADERS: u8 = 1;
const BLOCKS: u8 = 2;
const BLOCK_TXS: u8 = 3;
const PENDING: u8 = 4;

fn hashes(out: &mut Vec<u8>, list: &[BlockHash]) {
    oxchain_primitives::encode::write_varint(out, list.len() as u64);
    for h in list {
        out.extend_from_slice(&h.0);
    }
}

fn read_hashes(r: &mut Reader<'_>, max: usize) -> Result<Vec<BlockHash>, DecodeError> {
    let n = r.length("hashes", max)?;
    (0..n).map(|_| r.array().map(BlockHash)).collect()
}

impl SyncRequest {
    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            SyncRequest::Status => out.push(STATUS),
            SyncRequest::GetHeaders { locator, max } => {
                out.push(GET_HEADERS);
                hashes(&mut out, locator);
                out.extend_from_slice(&max.to_le_bytes());
            }
            SyncRequest::GetBlocks(list) => {
                out.push(GET_BLOCKS);
                hashes(&mut out, list);
            }
            SyncRequest::GetBlockTxs { block, indexes } => {
                // Each index as its gap from the one before plus one (the first from -1).
                out.push(GET_BLOCK_TXS);
                out.extend_from_slice(&block.0);
                oxchain_primitives::encode::write_varint(&mut out, indexes.len() as u64);
                let mut next = 0;
                for &index in indexes {
                    oxchain_primitives::encode::write_varint(
                        &mut out,
                        index.saturating_sub(next) as u64,
                    );
                    next = index + 1;
                }
            }
            SyncRequest::GetPending {
                sender,
                from,
                count,
            } => {
                out.push(GET_PENDING);
                out.extend_from_slice(&sender.0);
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
            }
        }
        out
    }

    /// Reads a request; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<SyncRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        let request = match r.u8()? {
            STATUS => SyncRequest::Status,
            GET_HEADERS => {
                let locator = read_hashes(&mut r, MAX_LOCATOR)?;
                let max = u16::from_le_bytes(r.array()?);
                SyncRequest::GetHeaders { locator, max }
            }
            GET_BLOCKS => SyncRequest::GetBlocks(read_hashes(&mut r, MAX_GET_BLOCKS)?),
            GET_BLOCK_TXS => {
                let block = BlockHash(r.array()?);
                let n = r.length("indexes", MAX_TX_REQUEST)?;
                let mut indexes = Vec::with_capacity(n);
                let mut next: u64 = 0;
                for _ in 0..n {
                    let index = next.saturating_add(r.varint()?);
                    if index >= MAX_BLOCK_TXS as u64 {
                        return Err(DecodeError::TooLong {
                            what: "transaction index",
                            len: index,
                            max: MAX_BLOCK_TXS as u64 - 1,
                        });
                    }
                    indexes.push(index as usize);
                    next = index + 1;
                }
                SyncRequest::GetBlockTxs { block, indexes }
            }
            GET_PENDING => {
                let sender = Address(r.array()?);
                let from = r.u64()?;
                let count = u16::from_le_bytes(r.array()?);
                if usize::from(count) > MAX_PENDING_REQUEST {
                    return Err(DecodeError::TooLong {
                        what: "pending transfers",
                        len: u64::from(count),
                        max: MAX_PENDING_REQUEST as u64,
                    });
                }
                SyncRequest::GetPending {
                    sender,
                    from,
                    count,
                }
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "sync request",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(request)
    }
}

impl SyncResponse {
    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            SyncResponse::Status {
                genesis,
                tip,
                height,
                total_work,
            } => {
                out.push(STATUS);
                out.extend_from_slice(&genesis.0);
                out.extend_from_slice(&tip.0);
                out.extend_from_slice(&height.0.to_le_bytes());
                out.extend_from_slice(&total_work.to_be_bytes());
            }
            SyncResponse::Headers(list) => {
                out.push(HEADERS);
                oxchain_primitives::encode::write_varint(&mut out, list.len() as u64);
                for h in list {
                    h.encode_to(&mut out);
                }
            }
            SyncResponse::Blocks(list) => {
                out.push(BLOCKS);
                oxchain_primitives::encode::write_varint(&mut out, list.len() as u64);
                for b in list {
                    b.encode_to(&mut out);
                }
            }
            SyncResponse::BlockTxs(list) | SyncResponse::Pending(list) => {
                out.push(if matches!(self, SyncResponse::BlockTxs(_)) {
                    BLOCK_TXS
                } else {
                    PENDING
                });
                oxchain_primitives::encode::write_varint(&mut out, list.len() as u64);
                for t in list {
                    t.encode_to(&mut out);
                }
            }
        }
        out
    }

    /// Reads an answer; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<SyncResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        let response = match r.u8()? {
            STATUS => SyncResponse::Status {
                genesis: BlockHash(r.array()?),
                tip: BlockHash(r.array()?),
                height: Height(r.u64()?),
                total_work: Work::from_be_bytes(r.array()?),
            },
            HEADERS => {
                let n = r.length("headers", MAX_HEADERS)?;
                SyncResponse::Headers(
                    (0..n)
                        .map(|_| Header::decode_from(&mut r))
                        .collect::<Result<_, _>>()?,
                )
            }
            BLOCKS => {
                let n = r.length("blocks", MAX_GET_BLOCKS)?;
                SyncResponse::Blocks(
                    (0..n)
                        .map(|_| Block::decode_from(&mut r))
                        .collect::<Result<_, _>>()?,
                )
            }
            BLOCK_TXS => {
                let n = r.length("transactions", MAX_TX_REQUEST)?;
                SyncResponse::BlockTxs(
                    (0..n)
                        .map(|_| Transaction::decode_from(&mut r))
                        .collect::<Result<_, _>>()?,
                )
            }
            PENDING => {
                let n = r.length("pending transfers", MAX_PENDING_REQUEST)?;
                SyncResponse::Pending(
                    (0..n)
                        .map(|_| Transaction::decode_from(&mut r))
                        .collect::<Result<_, _>>()?,
                )
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "sync response",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(response)
    }
}
