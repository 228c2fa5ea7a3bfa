//! The JSON shapes of the API, built from consensus types. The tutorial view keeps the
//! tutorials' field names (amounts in coins, as JSON numbers); `/v1` gives amounts in base
//! units (integers) with the coin string beside them.

use oxchain_primitives::{Amount, Block, Network, Target, Transaction, Txid};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// An amount in coins as an exact JSON number (`12.5`), never through a float.
pub(crate) fn coins_number(amount: Amount) -> Box<RawValue> {
    RawValue::from_string(amount.to_string()).expect("an amount's decimal form is a JSON number")
}

/// A big-endian 256-bit number as a float (for difficulty, which is a ratio).
pub(crate) fn be_bytes_to_f64(bytes: [u8; 32]) -> f64 {
    bytes.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b))
}

/// How much harder than the network's easiest target `target` is.
pub(crate) fn difficulty(pow_limit: &Target, target: &Target) -> f64 {
    be_bytes_to_f64(pow_limit.to_be_bytes()) / be_bytes_to_f64(target.to_be_bytes()).max(1.0)
}

/// A transaction as the tutorials showed one.
#[derive(Debug, Serialize, ToSchema)]
pub struct TutorialTx {
    /// The sender's address; "0" for the coinbase, as in the tutorials.
    pub sender: String,
    /// The recipient's address.
    pub recipient: String,
    /// Coins, as a JSON number.
    #[schema(value_type = f64)]
    pub amount: Box<RawValue>,
    /// Fee in coins.
    #[schema(value_type = f64)]
    pub fee: Box<RawValue>,
    /// The sender's nonce (0 for the coinbase).
    pub nonce: u64,
    /// The transaction id.
    pub txid: String,
}

/// A block as the tutorials showed one.
#[derive(Debug, Serialize, ToSchema)]
pub struct TutorialBlock {
    /// The height.
    pub index: u64,
    /// Block time, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Its transactions, coinbase first.
    pub transactions: Vec<TutorialTx>,
    /// The proof of work: the header's nonce.
    pub proof: u64,
    /// The parent's hash.
    pub previous_hash: String,
    /// This block's hash.
    pub hash: String,
}

impl TutorialTx {
    pub(crate) fn new(network: Network, tx: &Transaction, txid: Txid) -> TutorialTx {
        match tx {
            Transaction::Coinbase(c) => TutorialTx {
                sender: "0".into(),
                recipient: c.to.to_bech32(network),
                amount: coins_number(c.amount),
                fee: coins_number(Amount::ZERO),
                nonce: 0,
                txid: txid.to_string(),
            },
            Transaction::Transfer(t) => TutorialTx {
                sender: t.sender().to_bech32(network),
                recipient: t.to.to_bech32(network),
                amount: coins_number(t.amount),
                fee: coins_number(t.fee),
                nonce: t.nonce,
                txid: txid.to_string(),
            },
        }
    }
}

impl TutorialBlock {
    pub(crate) fn new(network: Network, height: u64, block: &Block) -> TutorialBlock {
        TutorialBlock {
            index: height,
            timestamp: block.header.time_ms,
            transactions: block
                .transactions
                .iter()
                .map(|tx| TutorialTx::new(network, tx, tx.compute_txid()))
                .collect(),
            proof: block.header.nonce,
            previous_hash: block.header.prev_hash.to_string(),
            hash: block.compute_hash().to_string(),
        }
    }
}

/// A transaction in the `/v1` API.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxView {
    /// The transaction id.
    pub txid: String,
    /// `coinbase` or `transfer`.
    pub kind: &'static str,
    /// The sender's address (transfers only).
    pub from: Option<String>,
    /// The sender's public key, hex (transfers only).
    pub from_key: Option<String>,
    /// The recipient's address.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// The amount in coins, exact.
    pub amount_coins: String,
    /// Fee in base units (0 for the coinbase).
    pub fee: u64,
    /// The sender's nonce (transfers only).
    pub nonce: Option<u64>,
    /// Attached data, hex (transfers only).
    pub data: Option<String>,
    /// The Ed25519 signature, 128 hex digits (transfers only): with it anyone can
    /// re-encode the transfer and recompute its txid.
    pub signature: Option<String>,
    /// The height a coinbase names.
    pub coinbase_height: Option<u64>,
}

impl TxView {
    pub(crate) fn new(network: Network, tx: &Transaction, txid: Txid) -> TxView {
        match tx {
            Transaction::Coinbase(c) => TxView {
                txid: txid.to_string(),
                kind: "coinbase",
                from: None,
                from_key: None,
                to: c.to.to_bech32(network),
                amount: c.amount.units(),
                amount_coins: c.amount.to_string(),
                fee: 0,
                nonce: None,
                data: None,
                signature: None,
                coinbase_height: Some(c.height.0),
            },
            Transaction::Transfer(t) => TxView {
                txid: txid.to_string(),
                kind: "transfer",
                from: Some(t.sender().to_bech32(network)),
                from_key: Some(hex::encode(t.from.as_bytes())),
                to: t.to.to_bech32(network),
                amount: t.amount.units(),
                amount_coins: t.amount.to_string(),
                fee: t.fee.units(),
                nonce: Some(t.nonce),
                data: Some(hex::encode(&t.data)),
                signature: Some(hex::encode(t.signature.as_bytes())),
                coinbase_height: None,
            },
        }
    }
}

/// A block's header and size, without its transactions.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockSummary {
    /// Height.
    pub height: u64,
    /// The header's version (1).
    pub version: u32,
    /// Hash.
    pub hash: String,
    /// Parent's hash.
    pub prev_hash: String,
    /// Merkle root over the txids.
    pub merkle_root: String,
    /// Block time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Compact target, hex.
    pub bits: String,
    /// Difficulty: the network's easiest target over this block's.
    pub difficulty: f64,
    /// Header nonce.
    pub nonce: u64,
    /// Number of transactions.
    pub tx_count: usize,
    /// Encoded size in bytes.
    pub size: usize,
    /// Where the coinbase pays.
    pub miner: Option<String>,
    /// The transfers' fees, base units.
    pub fees: u64,
    /// What the coinbase pays (the subsidy and the fees), base units.
    pub reward: u64,
}

impl BlockSummary {
    pub(crate) fn new(
        network: Network,
        pow_limit: &Target,
        height: u64,
        block: &Block,
    ) -> BlockSummary {
        let header = &block.header;
        BlockSummary {
            height,
            version: header.version,
            hash: header.compute_hash().to_string(),
            prev_hash: header.prev_hash.to_string(),
            merkle_root: header.merkle_root.to_string(),
            time_ms: header.time_ms,
            bits: header.bits.to_string(),
            difficulty: header
                .bits
                .to_target()
                .map_or(0.0, |t| difficulty(pow_limit, &t)),
            nonce: header.nonce,
            tx_count: block.transactions.len(),
            size: block.encoded_len(),
            miner: match block.transactions.first() {
                Some(Transaction::Coinbase(c)) => Some(c.to.to_bech32(network)),
                _ => None,
            },
            fees: block
                .transactions
                .iter()
                .map(|tx| match tx {
                    Transaction::Transfer(t) => t.fee.units(),
                    Transaction::Coinbase(_) => 0,
                })
                .fold(0u64, u64::saturating_add),
            reward: block
                .transactions
                .iter()
                .map(|tx| match tx {
                    Transaction::Coinbase(c) => c.amount.units(),
                    Transaction::Transfer(_) => 0,
                })
                .fold(0u64, u64::saturating_add),
        }
    }
}

/// A block with its transactions.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockView {
    /// Header and size.
    #[serde(flatten)]
    pub summary: BlockSummary,
    /// Whether it is on the best chain (a side-chain block is not).
    pub best_chain: bool,
    /// Blocks on top of it, itself included (0 off the best chain).
    pub confirmations: u64,
    /// Its transactions, coinbase first.
    pub transactions: Vec<TxView>,
}
