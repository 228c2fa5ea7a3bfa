//! The tables, and the byte layout of what they hold. Keys are fixed-size byte arrays
//! (big-endian where they hold numbers, so that key order is numeric order); values are
//! the canonical encodings of `oxchain-primitives` or the small records below.

use oxchain_primitives::encode::Reader;
use oxchain_primitives::{Address, DecodeError, Encode, Header, Height, Work, decode};
use redb::TableDefinition;

use crate::error::StoreError;

/// Schema, network, genesis and tip.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Every stored block's header record, best chain or not.
pub(crate) const HEADERS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("headers");
/// Every stored block, encoded.
pub(crate) const BLOCKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("blocks");
/// The undo data of each block on the best chain.
pub(crate) const UNDO: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("undo");
/// Height -> hash on the best chain.
pub(crate) const BEST: TableDefinition<u64, [u8; 32]> = TableDefinition::new("best");
/// Address -> account at the tip.
pub(crate) const ACCOUNTS: TableDefinition<[u8; 20], &[u8]> = TableDefinition::new("accounts");
/// Txid -> where it is on the best chain (height, position); the block's hash is in
/// `BEST`. Kept small: this index takes a random insert per transaction.
pub(crate) const TXS: TableDefinition<[u8; 32], [u8; 12]> = TableDefinition::new("txs");
/// (address, height, position) -> txid: every best-chain transaction that touches the
/// address (as sender or recipient), in chain order.
pub(crate) const HISTORY: TableDefinition<[u8; 32], [u8; 32]> = TableDefinition::new("history");
/// (first 32 bytes of a transfer's `data`, height, position) -> txid: every best-chain
/// transfer whose data is at least 32 bytes (a SHA-256, maybe followed by a label), in
/// chain order. Schema 2.
pub(crate) const DATA: TableDefinition<[u8; 44], [u8; 32]> = TableDefinition::new("data");

pub(crate) const META_SCHEMA: &str = "schema";
pub(crate) const META_NETWORK: &str = "network";
pub(crate) const META_GENESIS: &str = "genesis";
pub(crate) const META_TIP: &str = "tip";

/// Whether a stored block may still join the best chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Its header and body passed every rule that does not need account state; it is on
    /// the best chain or may join it.
    Valid,
    /// It broke a ledger rule when it was connected; it and its descendants never join.
    Invalid,
}

/// What the store knows about a block's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRecord {
    /// The header.
    pub header: Header,
    /// Its height.
    pub height: Height,
    /// Cumulative work from genesis up to and including this block.
    pub chain_work: Work,
    /// Whether it may join the best chain.
    pub status: BlockStatus,
}

const HEADER_RECORD_BYTES: usize = 88 + 8 + 32 + 1;

impl HeaderRecord {
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_RECORD_BYTES);
        self.header.encode_to(&mut out);
        out.extend_from_slice(&self.height.0.to_le_bytes());
        out.extend_from_slice(&self.chain_work.to_be_bytes());
        out.push(match self.status {
            BlockStatus::Valid => 1,
            BlockStatus::Invalid => 2,
        });
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<HeaderRecord, StoreError> {
        let parse = || -> Result<HeaderRecord, DecodeError> {
            let mut r = Reader::new(bytes);
            let header = oxchain_primitives::Decode::decode_from(&mut r)?;
            let height = Height(r.u64()?);
            let chain_work = Work::from_be_bytes(r.array()?);
            let status = match r.u8()? {
                1 => BlockStatus::Valid,
                2 => BlockStatus::Invalid,
                tag => {
                    return Err(DecodeError::UnknownTag {
                        what: "block status",
                        tag,
                    });
                }
            };
            r.finish()?;
            Ok(HeaderRecord {
                header,
                height,
                chain_work,
                status,
            })
        };
        parse().map_err(|e| StoreError::corrupt(format!("header record: {e}")))
    }
}

/// Decodes a stored value, calling a failure corruption.
pub(crate) fn decode_stored<T: oxchain_primitives::Decode>(
    what: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    decode(bytes).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

pub(crate) fn tx_location_bytes(height: Height, position: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&height.0.to_be_bytes());
    out[8..].copy_from_slice(&position.to_be_bytes());
    out
}

pub(crate) fn split_tx_location(bytes: &[u8; 12]) -> (Height, u32) {
    let (height, position) = bytes.split_at(8);
    (
        Height(u64::from_be_bytes(height.try_into().expect("8 bytes"))),
        u32::from_be_bytes(position.try_into().expect("4 bytes")),
    )
}

pub(crate) fn history_key(address: &Address, height: Height, position: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..20].copy_from_slice(&address.0);
    out[20..28].copy_from_slice(&height.0.to_be_bytes());
    out[28..].copy_from_slice(&position.to_be_bytes());
    out
}

pub(crate) fn split_history_key(key: &[u8; 32]) -> (Height, u32) {
    (
        Height(u64::from_be_bytes(key[20..28].try_into().expect("8 bytes"))),
        u32::from_be_bytes(key[28..].try_into().expect("4 bytes")),
    )
}

/// The bytes of a transfer's data that the data index keys on: its first 32, when it has
/// that many.
pub(crate) fn data_prefix(data: &[u8]) -> Option<[u8; 32]> {
    data.get(..32).map(|d| d.try_into().expect("32 bytes"))
}

pub(crate) fn data_key(prefix: &[u8; 32], height: Height, position: u32) -> [u8; 44] {
    let mut out = [0u8; 44];
    out[..32].copy_from_slice(prefix);
    out[32..40].copy_from_slice(&height.0.to_be_bytes());
    out[40..].copy_from_slice(&position.to_be_bytes());
    out
}

pub(crate) fn split_data_key(key: &[u8; 44]) -> (Height, u32) {
    (
        Height(u64::from_be_bytes(key[32..40].try_into().expect("8 bytes"))),
        u32::from_be_bytes(key[40..].try_into().expect("4 bytes")),
    )
}
