//! Ed25519 verification of transfer signatures.
//!
//! `ed25519-zebra` implements ZIP-215, whose rules make single and batch verification
//! accept exactly the same signatures; so a block can be checked in one batch and, only if
//! the batch fails, signature by signature to name the culprit. Sender keys must first
//! pass [`crate::validate::validate_transfer`] (no weak keys).

use ed25519_zebra::batch;
use ed25519_zebra::{Signature as ZebraSignature, VerificationKey, VerificationKeyBytes};
use oxchain_primitives::{Block, BlockHash, Transaction, Transfer, Txid};

use crate::error::ConsensusError;

/// Verifies one transfer's signature for the network of `genesis`.
pub fn verify_transfer(
    genesis: &BlockHash,
    transfer: &Transfer,
    txid: Txid,
) -> Result<(), ConsensusError> {
    let message = transfer.signing_hash(genesis);
    check_one(&transfer.from.0, &transfer.signature.0, &message)
        .map_err(|()| ConsensusError::BadSignature { txid })
}

fn check_one(key: &[u8; 32], signature: &[u8; 64], message: &[u8; 32]) -> Result<(), ()> {
    let key = VerificationKey::try_from(*key).map_err(|_| ())?;
    key.verify(&ZebraSignature::from_bytes(signature), message)
        .map_err(|_| ())
}

/// Verifies `(public key, signature, message)` triples in one batch. On failure, returns
/// the index of the first triple that fails on its own.
pub fn verify_batch(items: &[([u8; 32], [u8; 64], [u8; 32])]) -> Result<(), usize> {
    if items.len() == 1 {
        let (k, s, m) = &items[0];
        return check_one(k, s, m).map_err(|()| 0);
    }
    let mut verifier = batch::Verifier::new();
    for (key, signature, message) in items {
        verifier.queue((
            VerificationKeyBytes::from(*key),
            ZebraSignature::from_bytes(signature),
            &message[..],
        ));
    }
    if verifier.verify(rand::rng()).is_ok() {
        return Ok(());
    }
    // ZIP-215: the batch failed, so at least one item fails alone.
    let bad = items
        .iter()
        .position(|(k, s, m)| check_one(k, s, m).is_err());
    Err(bad.unwrap_or(0))
}

/// Verifies every transfer signature of a block in one batch. `txids` are the block's
/// txids in order (from [`crate::validate::validate_block`]).
pub fn verify_block_signatures(
    genesis: &BlockHash,
    block: &Block,
    txids: &[Txid],
) -> Result<(), ConsensusError> {
    let mut items = Vec::with_capacity(block.transactions.len());
    let mut item_txids = Vec::with_capacity(block.transactions.len());
    for (tx, txid) in block.transactions.iter().zip(txids) {
        if let Transaction::Transfer(t) = tx {
            items.push((t.from.0, t.signature.0, t.signing_hash(genesis)));
            item_txids.push(*txid);
        }
    }
    if items.is_empty() {
        return Ok(());
    }
    verify_batch(&items).map_err(|i| ConsensusError::BadSignature {
        txid: item_txids[i],
    })
}
