//! Transactions: the coinbase that pays the miner, and signed transfers between accounts.

use crate::address::Address;
use crate::amount::Amount;
use crate::block::Height;
use crate::encode::{self, Encode};
use crate::hash::{BlockHash, Txid, sha256d};
use crate::keys::{PublicKey, SecretKey, Signature};

/// Domain tag of the message a transfer signs, so that a transfer signature can never be
/// taken for a signature over anything else.
pub const TRANSFER_SIGNING_TAG: &[u8; 20] = b"oxchain/transfer/v1\0";

/// A transaction: a block's first transaction is its coinbase, every other is a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transaction {
    /// New coins (subsidy plus fees) to the miner.
    Coinbase(Coinbase),
    /// A signed payment from one account to another.
    Transfer(Transfer),
}

/// New coins for the miner of the block at `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coinbase {
    /// The height of the block this coinbase is in; makes every coinbase txid unique.
    pub height: Height,
    /// Who receives the coins.
    pub to: Address,
    /// At most the block subsidy plus the block's fees.
    pub amount: Amount,
}

/// A payment signed by the sender's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The sender's public key; the sender's account is its address.
    pub from: PublicKey,
    /// The recipient.
    pub to: Address,
    /// What the recipient receives.
    pub amount: Amount,
    /// What the miner receives.
    pub fee: Amount,
    /// Must equal the sender's account nonce: orders the sender's transfers and stops
    /// replays.
    pub nonce: u64,
    /// An optional record of at most `MAX_TX_DATA_BYTES` bytes.
    pub data: Vec<u8>,
    /// Ed25519 signature over [`Transfer::signing_hash`].
    pub signature: Signature,
}

impl Transaction {
    /// The txid: SHA-256d of the full canonical encoding.
    pub fn compute_txid(&self) -> Txid {
        Txid(sha256d(&encode::encode(self)))
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encoded_size()
    }
}

impl Transfer {
    /// The sender's address.
    pub fn sender(&self) -> Address {
        Address::from_public_key(&self.from)
    }

    /// `amount + fee`, or `None` if it overflows.
    pub fn total_cost(&self) -> Option<Amount> {
        self.amount.checked_add(self.fee)
    }

    /// The 32 bytes the sender signs: SHA-256 of the domain tag, the network's genesis
    /// hash (so a transfer is valid on one network only) and every field but the
    /// signature.
    pub fn signing_hash(&self, genesis: &BlockHash) -> [u8; 32] {
        let mut msg = Vec::with_capacity(
            TRANSFER_SIGNING_TAG.len() + 32 + encode::TRANSFER_FIXED_BYTES + self.data.len(),
        );
        msg.extend_from_slice(TRANSFER_SIGNING_TAG);
        msg.extend_from_slice(&genesis.0);
        encode::encode_transfer_unsigned(self, &mut msg);
        crate::hash::sha256(&msg)
    }

    /// Signs the transfer with `key` for the network whose genesis is `genesis`, setting
    /// `from` to the key's public key.
    pub fn sign(&mut self, key: &SecretKey, genesis: &BlockHash) {
        self.from = key.public_key();
        self.signature = key.sign(&self.signing_hash(genesis));
    }
}
