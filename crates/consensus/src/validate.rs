//! Context-free rules: what can be checked on a header, block or transfer alone.
//! Cheap checks come first; signatures are in [`crate::signatures`], checked after these.

use std::collections::HashSet;

use oxchain_primitives::limits::{MAX_BLOCK_BYTES, MAX_TX_DATA_BYTES};
use oxchain_primitives::{Block, Header, Transaction, Transfer, Txid};

use crate::error::ConsensusError;
use crate::params::{ChainParams, HEADER_VERSION};

/// Checks the proof of work: the bits decode to a target within the network's limit, and
/// the header's hash meets it.
pub fn validate_pow(params: &ChainParams, header: &Header) -> Result<(), ConsensusError> {
    let target = header.bits.to_target()?;
    if target > params.pow_limit {
        return Err(ConsensusError::TargetAboveLimit { bits: header.bits });
    }
    let hash = header.compute_hash();
    if !target.is_met_by(&hash) {
        return Err(ConsensusError::HighHash { hash, target });
    }
    Ok(())
}

/// Checks a transfer's fields: data length, no overflow of amount plus fee, and a sender
/// key that is canonical and not of small order.
pub fn validate_transfer(transfer: &Transfer, txid: Txid) -> Result<(), ConsensusError> {
    if transfer.data.len() > MAX_TX_DATA_BYTES {
        return Err(ConsensusError::DataTooLong {
            txid,
            len: transfer.data.len(),
            max: MAX_TX_DATA_BYTES,
        });
    }
    if transfer.total_cost().is_none() {
        return Err(ConsensusError::AmountOverflow { txid });
    }
    transfer
        .from
        .validate()
        .map_err(|source| ConsensusError::WeakKey { txid, source })
}

/// Checks a block's structure: version, size, exactly one coinbase and it first, valid
/// transfer fields, no duplicate txid, and the merkle root. Returns the txids, computed
/// once here for the later steps.
pub fn validate_block(block: &Block) -> Result<Vec<Txid>, ConsensusError> {
    validate_shape(block)?;
    validate_transactions(block, block.compute_txids())
}

/// [`validate_block`] with the block's txids (in order) computed by the caller from these
/// very transactions, as a mempool keeps them beside its transfers: they are not computed
/// again (a 1 MB block's take about a millisecond). A list that is not theirs is a bug in
/// the caller; debug builds check it, and a list of another length is set aside for the
/// block's own txids (so that no transaction goes unchecked).
pub fn validate_block_with_txids(
    block: &Block,
    txids: Vec<Txid>,
) -> Result<Vec<Txid>, ConsensusError> {
    if txids.len() != block.transactions.len() {
        return validate_block(block);
    }
    debug_assert_eq!(
        txids,
        block.compute_txids(),
        "txids that are not the block's"
    );
    validate_shape(block)?;
    validate_transactions(block, txids)
}

/// The checks that need no hashing: version, size, the coinbase first.
fn validate_shape(block: &Block) -> Result<(), ConsensusError> {
    if block.header.version != HEADER_VERSION {
        return Err(ConsensusError::UnsupportedVersion(block.header.version));
    }
    let size = block.encoded_len();
    if size > MAX_BLOCK_BYTES {
        return Err(ConsensusError::BlockTooLarge {
            size,
            max: MAX_BLOCK_BYTES,
        });
    }
    match block.transactions.first() {
        None => return Err(ConsensusError::NoTransactions),
        Some(Transaction::Transfer(_)) => return Err(ConsensusError::FirstNotCoinbase),
        Some(Transaction::Coinbase(_)) => {}
    }
    Ok(())
}

/// The transactions' fields, no duplicate txid, and the merkle root.
fn validate_transactions(block: &Block, txids: Vec<Txid>) -> Result<Vec<Txid>, ConsensusError> {
    let mut seen = HashSet::with_capacity(txids.len());
    for (index, (tx, txid)) in block.transactions.iter().zip(&txids).enumerate() {
        match tx {
            Transaction::Coinbase(_) if index > 0 => {
                return Err(ConsensusError::ExtraCoinbase { index });
            }
            Transaction::Coinbase(_) => {}
            Transaction::Transfer(t) => validate_transfer(t, *txid)?,
        }
        if !seen.insert(*txid) {
            return Err(ConsensusError::DuplicateTxid { txid: *txid });
        }
    }
    let expected = oxchain_primitives::merkle::compute_root(&txids);
    if block.header.merkle_root != expected {
        return Err(ConsensusError::BadMerkleRoot {
            got: block.header.merkle_root,
            expected,
        });
    }
    Ok(txids)
}
