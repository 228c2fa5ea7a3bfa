//! The on-disk store of an oxchain node, on redb.
//!
//! One [`Store`] per data directory, locked against a second process. Everything that
//! must survive a crash is written here, in one write transaction per connected block (or
//! per batch while syncing), committed with `Durability::Immediate` and two-phase commit:
//! after a crash the store holds exactly the last committed tip, its state and indexes.
//! The whole chain is never loaded into memory; readers open short read transactions.
//!
//! # Layout
//! - [`error`]: [`StoreError`], and [`ConnectError`] for a block that breaks a rule.
//! - `tables`: the table definitions and the byte layout of stored records.
//! - [`store`]: opening a data directory (lock, metadata checks, genesis), the readers,
//!   and [`HeaderReader`], implemented by the store and by the writer.
//! - [`write`]: [`StoreWriter`], one write transaction: headers, bodies, connecting and
//!   disconnecting blocks on the best chain.

pub mod error;
pub mod store;
mod tables;
pub mod write;

pub use error::{ConnectError, StoreError};
pub use store::{
    HeaderReader, HistoryEntry, SCHEMA_VERSION, Snapshot, Store, StoreClosed, Tip, TxLocation,
};
pub use tables::{BlockStatus, HeaderRecord};
pub use write::StoreWriter;
