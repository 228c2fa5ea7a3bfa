//! Every way a block or transfer can break the rules, with the data to say how, and
//! whose fault it is.

use std::sync::Arc;

use oxchain_primitives::{
    Address, Amount, BlockHash, CompactTarget, Height, KeyError, MerkleRoot, Target, TargetError,
    Txid,
};

/// Who is to blame when data fails a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The data is invalid: whoever sent it misbehaved (a peer to ban, a client to answer
    /// with a 4xx).
    Sender,
    /// Not valid yet, possibly later (a block time beyond our clock's window): keep it and
    /// retry; nobody is to blame.
    RetryLater,
    /// Our own state could not be read: nothing is known about the data.
    Local,
}

/// A broken consensus rule.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsensusError {
    /// The encoded block is larger than the limit.
    #[error("block is {size} bytes, the limit is {max}")]
    BlockTooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A header version this node does not know.
    #[error("unsupported header version {0}")]
    UnsupportedVersion(u32),
    /// A block without transactions.
    #[error("block has no transactions (a coinbase is required)")]
    NoTransactions,
    /// The first transaction is a transfer.
    #[error("the first transaction is not a coinbase")]
    FirstNotCoinbase,
    /// A coinbase after the first position.
    #[error("second coinbase at position {index}")]
    ExtraCoinbase {
        /// Its position in the block.
        index: usize,
    },
    /// The same transaction twice.
    #[error("transaction {txid} appears twice")]
    DuplicateTxid {
        /// The repeated txid.
        txid: Txid,
    },
    /// The header's merkle root does not match the transactions.
    #[error("bad merkle root: header has {got}, transactions give {expected}")]
    BadMerkleRoot {
        /// In the header.
        got: MerkleRoot,
        /// Computed from the transactions.
        expected: MerkleRoot,
    },
    /// The compact target does not decode.
    #[error("bad target bits: {0}")]
    BadBits(#[from] TargetError),
    /// The target is easier than the network allows.
    #[error("target {bits} is above the network's limit")]
    TargetAboveLimit {
        /// The header's bits.
        bits: CompactTarget,
    },
    /// The block hash does not meet the header's target.
    #[error("hash {hash} does not meet target {target:?}")]
    HighHash {
        /// The block hash.
        hash: BlockHash,
        /// The target it had to meet.
        target: Target,
    },
    /// The bits are not what the difficulty schedule gives.
    #[error("wrong difficulty bits {got}, the schedule gives {expected}")]
    WrongBits {
        /// In the header.
        got: CompactTarget,
        /// From the schedule.
        expected: CompactTarget,
    },
    /// The block time is not after the median of the previous 11 blocks.
    #[error("block time {time_ms} ms is not after the median time past {median_ms} ms")]
    TimeTooOld {
        /// The header's time.
        time_ms: u64,
        /// The median of the previous 11 blocks' times.
        median_ms: u64,
    },
    /// The block time is more than two minutes ahead of our clock.
    #[error("block time {time_ms} ms is more than {window_ms} ms ahead of our clock ({now_ms} ms)")]
    TimeTooNew {
        /// The header's time.
        time_ms: u64,
        /// Our clock.
        now_ms: u64,
        /// How far ahead a block may be.
        window_ms: u64,
    },
    /// Transfer data longer than the limit.
    #[error("transfer {txid} carries {len} bytes of data, the limit is {max}")]
    DataTooLong {
        /// The transfer.
        txid: Txid,
        /// Its data length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `amount + fee` overflows.
    #[error("transfer {txid}: amount plus fee overflows")]
    AmountOverflow {
        /// The transfer.
        txid: Txid,
    },
    /// A sender key the ledger refuses.
    #[error("transfer {txid}: {source}")]
    WeakKey {
        /// The transfer.
        txid: Txid,
        /// What is wrong with the key.
        source: KeyError,
    },
    /// The signature does not verify (or the key is not a curve point).
    #[error("transfer {txid}: invalid signature")]
    BadSignature {
        /// The transfer.
        txid: Txid,
    },
    /// The coinbase names another height.
    #[error("coinbase is for height {got}, the block is at {expected}")]
    BadCoinbaseHeight {
        /// In the coinbase.
        got: Height,
        /// The block's height.
        expected: Height,
    },
    /// The coinbase pays more than subsidy plus fees.
    #[error("coinbase pays {got}, at most {max} (subsidy plus fees) allowed")]
    CoinbaseTooLarge {
        /// What it pays.
        got: Amount,
        /// Subsidy plus fees.
        max: Amount,
    },
    /// The transfer nonce is not the sender's account nonce.
    #[error("transfer {txid}: nonce {got}, the account's next nonce is {expected}")]
    WrongNonce {
        /// The transfer.
        txid: Txid,
        /// The account's nonce.
        expected: u64,
        /// The transfer's nonce.
        got: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("transfer {txid}: balance {balance} cannot pay {needed} (amount plus fee)")]
    InsufficientFunds {
        /// The transfer.
        txid: Txid,
        /// The sender's balance.
        balance: Amount,
        /// Amount plus fee.
        needed: Amount,
    },
    /// The sender has used every nonce (2^64 transfers): unreachable in practice.
    #[error("transfer {txid}: the sender's nonce is exhausted")]
    NonceExhausted {
        /// The transfer.
        txid: Txid,
    },
    /// A credit that would overflow an account's balance.
    #[error("balance of {address:?} would overflow")]
    BalanceOverflow {
        /// The account.
        address: Address,
    },
    /// The block extends a block that broke a rule.
    #[error("the parent block {parent} is invalid")]
    InvalidParent {
        /// The parent.
        parent: BlockHash,
    },
    /// The account state could not be read.
    #[error("reading account state failed: {0}")]
    StateRead(Arc<dyn std::error::Error + Send + Sync>),
}

impl ConsensusError {
    /// Whose fault this is, for data that came as (or in) a block. A loose transfer with a
    /// nonce ahead of its account or more than its balance may only be early or outdated
    /// (after a reorg): the mempool judges those against its own view, not through this.
    pub fn fault(&self) -> Fault {
        match self {
            ConsensusError::TimeTooNew { .. } => Fault::RetryLater,
            ConsensusError::StateRead(_) => Fault::Local,
            _ => Fault::Sender,
        }
    }

    /// Whether the sender of the data misbehaved (ban a peer, 4xx a client).
    pub fn is_bad_data(&self) -> bool {
        self.fault() == Fault::Sender
    }
}
