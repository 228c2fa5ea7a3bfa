//! The ledger: applying a block to account state and undoing it.
//!
//! State is read through [`AccountReader`]; applying a block returns a [`LedgerUpdate`]
//! (the new accounts and the [`BlockUndo`] that restores the old ones) for the caller to
//! write in one transaction. Nothing is written on failure, so a rejected block leaves the
//! state untouched.
//!
//! Rules: the coinbase names the block's height and pays at most subsidy plus fees; a
//! transfer's nonce equals the sender's account nonce, and the sender's balance covers
//! amount plus fee. Transactions apply in block order.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use oxchain_primitives::{
    Account, Address, Amount, Block, BlockUndo, Encode, Height, Transaction, Transfer, Txid, sha256,
};

use crate::error::ConsensusError;
use crate::params::ChainParams;

/// Read access to account state.
pub trait AccountReader {
    /// Why a read can fail (I/O for a store, [`Infallible`] in memory).
    type Error: std::error::Error + Send + Sync + 'static;
    /// The account at `address`, `Ok(None)` if it never received anything.
    fn account(&self, address: &Address) -> Result<Option<Account>, Self::Error>;
}

/// What applying a block changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerUpdate {
    /// Every touched account's new state, sorted by address.
    pub accounts: Vec<(Address, Account)>,
    /// The touched accounts' state before the block, sorted by address.
    pub undo: BlockUndo,
    /// The fees the block's transfers paid.
    pub fees: Amount,
}

/// Touched accounts over a reader: the state before the block and the state now.
struct Overlay<'a, R> {
    reader: &'a R,
    touched: BTreeMap<Address, (Option<Account>, Account)>,
}

impl<'a, R: AccountReader> Overlay<'a, R> {
    fn new(reader: &'a R) -> Self {
        Overlay {
            reader,
            touched: BTreeMap::new(),
        }
    }

    fn get(&mut self, address: &Address) -> Result<&mut Account, ConsensusError> {
        if !self.touched.contains_key(address) {
            let prior = self
                .reader
                .account(address)
                .map_err(|e| ConsensusError::StateRead(Arc::new(e)))?;
            self.touched
                .insert(*address, (prior, prior.unwrap_or_default()));
        }
        Ok(&mut self.touched.get_mut(address).expect("inserted above").1)
    }

    fn credit(&mut self, address: &Address, amount: Amount) -> Result<(), ConsensusError> {
        let account = self.get(address)?;
        account.balance = account
            .balance
            .checked_add(amount)
            .ok_or(ConsensusError::BalanceOverflow { address: *address })?;
        Ok(())
    }

    /// Debits the sender and bumps its nonce, then credits the recipient. Returns the fee.
    fn transfer(&mut self, t: &Transfer, txid: Txid) -> Result<Amount, ConsensusError> {
        let needed = t
            .total_cost()
            .ok_or(ConsensusError::AmountOverflow { txid })?;
        let sender = self.get(&t.sender())?;
        if t.nonce != sender.nonce {
            return Err(ConsensusError::WrongNonce {
                txid,
                expected: sender.nonce,
                got: t.nonce,
            });
        }
        sender.balance =
            sender
                .balance
                .checked_sub(needed)
                .ok_or(ConsensusError::InsufficientFunds {
                    txid,
                    balance: sender.balance,
                    needed,
                })?;
        sender.nonce = sender
            .nonce
            .checked_add(1)
            .ok_or(ConsensusError::NonceExhausted { txid })?;
        self.credit(&t.to, t.amount)?;
        Ok(t.fee)
    }

    fn finish(self, fees: Amount) -> LedgerUpdate {
        let mut accounts = Vec::with_capacity(self.touched.len());
        let mut prior = Vec::with_capacity(self.touched.len());
        for (address, (before, after)) in self.touched {
            accounts.push((address, after));
            prior.push((address, before));
        }
        LedgerUpdate {
            accounts,
            undo: BlockUndo { prior },
            fees,
        }
    }
}

/// Applies a block at `height` to the state in `reader`. The block must already have
/// passed the context-free rules (structure, signatures); the coinbase position is
/// checked here again all the same, since a second coinbase would mint coins. `txids` are
/// the block's txids in order (recomputed where missing).
pub fn apply_block<R: AccountReader>(
    params: &ChainParams,
    reader: &R,
    block: &Block,
    txids: &[Txid],
    height: Height,
) -> Result<LedgerUpdate, ConsensusError> {
    let mut overlay = Overlay::new(reader);
    let mut fees = Amount::ZERO;
    let mut coinbase_amount = Amount::ZERO;
    for (index, tx) in block.transactions.iter().enumerate() {
        // The caller's txids save hashing twice; never trust their length.
        let txid = txids
            .get(index)
            .copied()
            .unwrap_or_else(|| tx.compute_txid());
        match tx {
            // Checked in validate_block too; here because a second coinbase would mint.
            Transaction::Coinbase(_) if index > 0 => {
                return Err(ConsensusError::ExtraCoinbase { index });
            }
            Transaction::Coinbase(c) => {
                if c.height != height {
                    return Err(ConsensusError::BadCoinbaseHeight {
                        got: c.height,
                        expected: height,
                    });
                }
                coinbase_amount = c.amount;
                overlay.credit(&c.to, c.amount)?;
            }
            Transaction::Transfer(t) => {
                let fee = overlay.transfer(t, txid)?;
                // Fees are bounded by the balances they come from, so this cannot overflow
                // in a valid chain; checked all the same.
                fees = fees
                    .checked_add(fee)
                    .ok_or(ConsensusError::AmountOverflow { txid })?;
            }
        }
    }
    let max = params
        .block_subsidy(height)
        .checked_add(fees)
        .unwrap_or(Amount::MAX);
    if coinbase_amount > max {
        return Err(ConsensusError::CoinbaseTooLarge {
            got: coinbase_amount,
            max,
        });
    }
    Ok(overlay.finish(fees))
}

/// The state genesis creates: every allocation credited, no rule checked (genesis is a
/// constant, see [`crate::genesis`]).
pub fn apply_genesis(params: &ChainParams) -> LedgerUpdate {
    let empty = MemoryState::default();
    let mut overlay = Overlay::new(&empty);
    for tx in &params.genesis().transactions {
        if let Transaction::Coinbase(c) = tx {
            overlay
                .credit(&c.to, c.amount)
                .expect("genesis allocations fit in a u64");
        }
    }
    overlay.finish(Amount::ZERO)
}

/// Applies one transfer on top of `reader` (for the mempool: the sender's next state).
pub fn apply_transfer<R: AccountReader>(
    reader: &R,
    transfer: &Transfer,
    txid: Txid,
) -> Result<LedgerUpdate, ConsensusError> {
    let mut overlay = Overlay::new(reader);
    let fee = overlay.transfer(transfer, txid)?;
    Ok(overlay.finish(fee))
}

/// A digest of a whole account state: SHA-256 over every (address, account) pair in
/// address order, each in canonical encoding. Two nodes agree on the state iff their
/// digests are equal.
pub fn compute_state_digest<'a>(
    accounts: impl IntoIterator<Item = (&'a Address, &'a Account)>,
) -> [u8; 32] {
    let mut bytes = Vec::new();
    let mut last: Option<Address> = None;
    for (address, account) in accounts {
        debug_assert!(
            last.is_none_or(|l| l < *address),
            "accounts must be in address order"
        );
        last = Some(*address);
        address.encode_to(&mut bytes);
        account.encode_to(&mut bytes);
    }
    sha256(&bytes)
}

/// Account state in memory: for tests, tools, and replaying a chain to check a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    accounts: BTreeMap<Address, Account>,
}

impl MemoryState {
    /// The state right after genesis.
    pub fn at_genesis(params: &ChainParams) -> MemoryState {
        let mut state = MemoryState::default();
        state.apply(&apply_genesis(params));
        state
    }

    /// Writes an update's new accounts.
    pub fn apply(&mut self, update: &LedgerUpdate) {
        for (address, account) in &update.accounts {
            self.accounts.insert(*address, *account);
        }
    }

    /// Restores the state before a block from its undo data.
    pub fn undo(&mut self, undo: &BlockUndo) {
        for (address, prior) in &undo.prior {
            match prior {
                Some(account) => self.accounts.insert(*address, *account),
                None => self.accounts.remove(address),
            };
        }
    }

    /// Every account, in address order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// The sum of all balances (`None` if it overflows, which a valid chain never does).
    pub fn compute_total_supply(&self) -> Option<Amount> {
        self.accounts
            .values()
            .try_fold(Amount::ZERO, |sum, a| sum.checked_add(a.balance))
    }

    /// See [`compute_state_digest`].
    pub fn compute_digest(&self) -> [u8; 32] {
        compute_state_digest(self.accounts.iter())
    }
}

impl AccountReader for MemoryState {
    type Error = Infallible;
    fn account(&self, address: &Address) -> Result<Option<Account>, Infallible> {
        Ok(self.accounts.get(address).copied())
    }
}
