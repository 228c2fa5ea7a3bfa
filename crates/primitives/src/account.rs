//! Account state and the undo data that reverses a block.

use crate::address::Address;
use crate::amount::Amount;

/// The state of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    /// Spendable coins.
    pub balance: Amount,
    /// Transfers sent so far; the next transfer must carry this nonce.
    pub nonce: u64,
}

/// What a block changed, as the state before it: applying these entries in order (a
/// `None` deletes the account) undoes the block exactly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockUndo {
    /// Each touched address with its account before the block (`None`: did not exist).
    pub prior: Vec<(Address, Option<Account>)>,
}
