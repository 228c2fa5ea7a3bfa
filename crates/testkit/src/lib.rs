//! Test helpers (dev-only): build valid regtest chains, sign transfers, and generate
//! arbitrary consensus values for property tests.
//!
//! # Layout
//! - [`ChainBuilder`]: a chain grown block by block with valid headers, coinbase and
//!   proof of work, tracking the account state through the real ledger.
//! - [`signed_transfer`]: a transfer signed for a network.
//! - [`arb`]: proptest strategies for every consensus type.
//! - `adversary` (feature `adversary`): a real libp2p peer that answers the sync
//!   protocol by a script, honest or hostile.

#[cfg(feature = "adversary")]
pub mod adversary;
pub mod arb;

use oxchain_consensus::accept::{HeaderContext, accept_header};
use oxchain_consensus::difficulty::compute_next_bits;
use oxchain_consensus::ledger::{LedgerUpdate, apply_block};
use oxchain_consensus::signatures::{KeyCache, SigCache, verify_block_signatures};
use oxchain_consensus::validate::validate_block;
use oxchain_consensus::validate::validate_pow;
use oxchain_consensus::{ChainParams, ConsensusError, MemoryState};
use oxchain_primitives::{
    Address, Amount, Block, BlockHash, Coinbase, Header, Height, SecretKey, Signature, Transaction,
    Transfer, Txid, sha256d,
};

pub use oxchain_consensus::genesis::{dev_account_address, dev_account_key};

/// A transfer from `key` signed for the network of `genesis`.
pub fn signed_transfer(
    genesis: &BlockHash,
    key: &SecretKey,
    to: Address,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> Transfer {
    let mut t = Transfer {
        from: key.public_key(),
        to,
        amount: Amount::from_units(amount),
        fee: Amount::from_units(fee),
        nonce,
        data: Vec::new(),
        signature: Signature([0; 64]),
    };
    t.sign(key, genesis);
    t
}

/// `n` transfers of 1,000 units (fee 1,000) from the dev account `from` to the dev
/// account `to`, nonces 0 to `n - 1`, signed for the network of `genesis`.
pub fn dev_transfers(genesis: &BlockHash, from: &str, to: &str, n: u64) -> Vec<Transfer> {
    (0..n)
        .map(|nonce| {
            signed_transfer(
                genesis,
                &dev_account_key(from),
                dev_account_address(to),
                1_000,
                1_000,
                nonce,
            )
        })
        .collect()
}

/// Searches nonces until the header meets its own target (quick on regtest; a dev block
/// takes about 2^26 hashes: seconds; give a test its own easier `initial_bits` when the
/// work is not the point).
///
/// # Panics
/// If the bits are not a usable target: no nonce would ever do.
pub fn mine(params: &ChainParams, header: &mut Header) {
    match validate_pow(params, header) {
        Ok(()) => return,
        Err(ConsensusError::HighHash { .. }) => {}
        Err(e) => panic!("cannot mine a header with these bits: {e}"),
    }
    let target = header.bits.to_target().expect("checked above");
    // The nonce is the header's last 8 bytes: hash the bytes, not a header re-encoded
    // per try (this crate is built unoptimised in tests; the hash function is not).
    let mut bytes = header.to_bytes();
    let at = bytes.len() - 8;
    loop {
        bytes[at..].copy_from_slice(&header.nonce.to_le_bytes());
        if target.is_met_by(&BlockHash(sha256d(&bytes))) {
            debug_assert!(validate_pow(params, header).is_ok());
            return;
        }
        header.nonce = header.nonce.wrapping_add(1);
    }
}

/// The block a miner would build on a parent: coinbase of subsidy plus fees to `miner`.
pub struct Template {
    /// The block, already mined.
    pub block: Block,
    /// Its txids.
    pub txids: Vec<Txid>,
}

/// A chain on the consensus rules, grown one block at a time.
#[derive(Debug, Clone)]
pub struct ChainBuilder {
    /// The network.
    pub params: ChainParams,
    /// Account state at the tip.
    pub state: MemoryState,
    /// Every block, genesis first.
    pub blocks: Vec<Block>,
    /// Where coinbases pay.
    pub miner: Address,
    /// Milliseconds between blocks.
    pub spacing_ms: u64,
}

impl ChainBuilder {
    /// A chain holding only the genesis block of `params`.
    pub fn new(params: ChainParams) -> ChainBuilder {
        let state = MemoryState::at_genesis(&params);
        let genesis = params.genesis().clone();
        ChainBuilder {
            params,
            state,
            blocks: vec![genesis],
            miner: Address([0xaa; 20]),
            spacing_ms: 1_000,
        }
    }

    /// A regtest chain.
    pub fn regtest() -> ChainBuilder {
        Self::new(ChainParams::regtest())
    }

    /// The genesis hash of this network.
    pub fn genesis_hash(&self) -> BlockHash {
        self.params.genesis_hash()
    }

    /// Height of the tip.
    pub fn height(&self) -> Height {
        Height(self.blocks.len() as u64 - 1)
    }

    /// The tip block.
    pub fn tip(&self) -> &Block {
        self.blocks.last().expect("a chain always holds genesis")
    }

    /// Times of the last 11 blocks, oldest first.
    pub fn recent_times(&self) -> Vec<u64> {
        let start = self.blocks.len().saturating_sub(11);
        self.blocks[start..]
            .iter()
            .map(|b| b.header.time_ms)
            .collect()
    }

    /// The difficulty anchor's time (block 1), or the tip's when only genesis exists.
    pub fn anchor_time(&self) -> u64 {
        self.blocks.get(1).unwrap_or(self.tip()).header.time_ms
    }

    /// The context a header on top of the tip is checked in, with the clock at `now_ms`.
    /// `recent` is normally [`ChainBuilder::recent_times`].
    pub fn header_context<'a>(&self, recent: &'a [u64], now_ms: u64) -> HeaderContext<'a> {
        HeaderContext {
            parent_height: self.height(),
            parent_time_ms: self.tip().header.time_ms,
            anchor_time_ms: self.anchor_time(),
            recent_times_ms: recent,
            now_ms,
        }
    }

    /// A valid, mined block on the tip holding `transfers` (which must be valid in order),
    /// with a coinbase of subsidy plus fees.
    pub fn build_block(&self, transfers: Vec<Transfer>) -> Block {
        let mut block = self.build_block_unmined(transfers);
        mine(&self.params, &mut block.header);
        block
    }

    /// As [`ChainBuilder::build_block`], but with nonce 0 and no proof of work yet: a
    /// template for a miner.
    pub fn build_block_unmined(&self, transfers: Vec<Transfer>) -> Block {
        let fees = transfers
            .iter()
            .try_fold(Amount::ZERO, |sum, t| sum.checked_add(t.fee));
        let height = Height(self.height().0 + 1);
        let amount = fees
            .and_then(|f| self.params.block_subsidy(height).checked_add(f))
            .expect("test transfers' fees fit in a u64");
        let mut transactions = vec![Transaction::Coinbase(Coinbase {
            height,
            to: self.miner,
            amount,
        })];
        transactions.extend(transfers.into_iter().map(Transaction::Transfer));
        self.assemble(transactions)
    }

    /// Wraps `transactions` in a header on the tip (right bits, time, merkle root) and
    /// mines it.
    pub fn seal(&self, transactions: Vec<Transaction>) -> Block {
        let mut block = self.assemble(transactions);
        mine(&self.params, &mut block.header);
        block
    }

    /// Wraps `transactions` in an unmined header on the tip.
    fn assemble(&self, transactions: Vec<Transaction>) -> Block {
        let parent = self.tip();
        let time_ms = parent.header.time_ms + self.spacing_ms;
        let bits = compute_next_bits(
            &self.params,
            self.height(),
            parent.header.time_ms,
            self.anchor_time(),
        );
        let mut block = Block {
            header: Header {
                version: 1,
                prev_hash: parent.compute_hash(),
                merkle_root: Default::default(),
                time_ms,
                bits,
                nonce: 0,
            },
            transactions,
        };
        block.header.merkle_root = block.compute_merkle_root();
        block
    }

    /// Runs `block` through the ledger on the tip state without changing anything.
    pub fn check_ledger(&self, block: &Block) -> Result<LedgerUpdate, ConsensusError> {
        self.apply_on_tip(block, &block.compute_txids())
    }

    fn apply_on_tip(&self, block: &Block, txids: &[Txid]) -> Result<LedgerUpdate, ConsensusError> {
        let height = Height(self.height().0 + 1);
        apply_block(&self.params, &self.state, block, txids, height)
    }

    /// Runs `block` through every check a node makes on a block extending the tip, in
    /// pipeline order (PoW, structure, header context, signatures, ledger), with the clock
    /// far ahead so that no time is in the future. Changes nothing.
    ///
    /// # Panics
    /// If `block` does not extend the tip (that is the chain's orphan handling, not a
    /// consensus rule).
    pub fn check_block(&self, block: &Block) -> Result<LedgerUpdate, ConsensusError> {
        validate_pow(&self.params, &block.header)?;
        let txids = validate_block(block)?;
        if block.header.prev_hash != self.tip().compute_hash() {
            panic!("check_block only checks blocks on the tip");
        }
        let recent = self.recent_times();
        accept_header(
            &self.params,
            &block.header,
            &self.header_context(&recent, u64::MAX / 2),
        )?;
        verify_block_signatures(
            &mut KeyCache::new(0),
            &SigCache::new(0),
            &self.genesis_hash(),
            block,
            &txids,
        )?;
        self.apply_on_tip(block, &txids)
    }

    /// Adds `block` to the tip if it passes every check ([`ChainBuilder::check_block`]).
    pub fn push(&mut self, block: Block) -> Result<LedgerUpdate, ConsensusError> {
        let update = self.check_block(&block)?;
        self.state.apply(&update);
        self.blocks.push(block);
        Ok(update)
    }

    /// Builds and pushes a block of `transfers`.
    pub fn extend(&mut self, transfers: Vec<Transfer>) -> Result<LedgerUpdate, ConsensusError> {
        let block = self.build_block(transfers);
        self.push(block)
    }

    /// The account state's view of `address`.
    pub fn account(&self, address: &Address) -> oxchain_primitives::Account {
        use oxchain_consensus::AccountReader;
        let Ok(found) = self.state.account(address);
        found.unwrap_or_default()
    }
}
