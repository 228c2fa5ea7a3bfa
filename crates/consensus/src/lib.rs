//! The consensus rules of oxchain, as pure functions over `oxchain-primitives` types.
//!
//! Chain parameters are always passed in ([`ChainParams`]), never read from a global.
//! Nothing here does I/O: account state is read through [`AccountReader`], and applying a
//! block returns the changes and the undo data for the caller to write.
//!
//! # Layout
//! - [`params`]: [`ChainParams`] for main, test, dev and regtest; subsidy and halving.
//! - [`genesis`]: the constant genesis block of each network and the dev accounts.
//! - [`error`]: [`ConsensusError`], one variant per broken rule, and whose [`Fault`] it is.
//! - [`validate`]: context-free rules (`validate_*`): size, structure, merkle root,
//!   proof of work, transfer fields.
//! - [`signatures`]: Ed25519 verification of transfers, single and batched (ZIP-215).
//! - [`difficulty`]: the ASERT schedule (aserti3-2d, integer-only) and median time.
//! - [`accept`]: contextual header rules (`accept_*`): bits on schedule, time window.
//! - [`ledger`]: the account-state transition: apply a block, produce undo data, undo it.
//! - [`light`]: [`light::HeaderChain`], a light client's checked headers from genesis.

pub mod accept;
pub mod difficulty;
pub mod error;
pub mod genesis;
pub mod ledger;
pub mod light;
pub mod params;
pub mod signatures;
pub mod validate;

pub use error::{ConsensusError, Fault};
pub use ledger::{AccountReader, LedgerUpdate, MemoryState};
pub use params::ChainParams;
