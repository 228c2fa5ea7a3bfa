//! What can go wrong with the store, said so that the operator knows what to do.

use std::path::PathBuf;

use oxchain_consensus::ConsensusError;

/// A store failure. `Ok(None)` from a reader means "not found"; this means something
/// broke.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory's lock.
    #[error("another oxchain node is using {}", dir.display())]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The data directory holds another network's chain.
    #[error(
        "{} holds a {found} chain, not {expected}: choose another --data-dir or --network",
        dir.display()
    )]
    WrongNetwork {
        /// The data directory.
        dir: PathBuf,
        /// The network in the store.
        found: String,
        /// The network asked for.
        expected: String,
    },
    /// The data directory holds a chain with another genesis block.
    #[error(
        "{} holds a chain with genesis {found}, but this node's genesis is {expected}: choose another --data-dir",
        dir.display()
    )]
    WrongGenesis {
        /// The data directory.
        dir: PathBuf,
        /// The genesis hash in the store (hex).
        found: String,
        /// This node's genesis hash (hex).
        expected: String,
    },
    /// The store was written by a newer oxchain.
    #[error(
        "{} was written by a newer oxchain (store schema {found}; this version reads {supported}): upgrade oxchain",
        dir.display()
    )]
    NewerSchema {
        /// The data directory.
        dir: PathBuf,
        /// The schema in the store.
        found: u32,
        /// The schema this build reads and writes.
        supported: u32,
    },
    /// The store's bytes are not what oxchain wrote: a damaged or altered file.
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    /// A file or directory could not be used.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed (I/O underneath, most likely).
    #[error("store failure: {0}")]
    Db(#[source] redb::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }
}

/// redb's per-operation errors all convert into `redb::Error`; corruption is reported as
/// such, everything else as a database failure.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                match redb::Error::from(e) {
                    redb::Error::Corrupted(what) => StoreError::Corrupt(what),
                    other => StoreError::Db(other),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

/// Why a block could not be connected to the best chain.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The block breaks a ledger rule.
    #[error(transparent)]
    Invalid(#[from] ConsensusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
