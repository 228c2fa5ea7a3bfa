//! Opening a data directory, and reading the store.
//!
//! Opening takes the directory's lock, then checks, before anything is written, that the
//! store is of this schema, network and genesis; a fresh directory gets genesis. redb
//! verifies every page's checksum at open, so a damaged file is an error here instead of
//! a panic later. Each reader call is one short read transaction; a [`Snapshot`] holds one
//! for reads that must agree with each other.

use std::fs::{File, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxchain_consensus::ChainParams;
use oxchain_consensus::ledger::{AccountReader, compute_state_digest};
use oxchain_primitives::{
    Account, Address, Block, BlockHash, BlockUndo, Header, Height, Txid, Work,
};
use redb::{Builder, Database, ReadTransaction, ReadableDatabase, ReadableTable};

use crate::error::StoreError;
use crate::tables::{
    ACCOUNTS, BEST, BLOCKS, DATA, HEADERS, HISTORY, HeaderRecord, META, META_GENESIS, META_NETWORK,
    META_SCHEMA, META_TIP, TXS, UNDO, data_key, decode_stored, history_key, split_data_key,
    split_history_key, split_tx_location,
};
use crate::write::StoreWriter;

/// The layout version this build writes. It opens schema 1 too, adding the data index
/// (schema 2) in one write transaction.
pub const SCHEMA_VERSION: u32 = 2;

/// The file that holds the chain, inside the data directory.
const DB_FILE: &str = "chain.redb";
/// Where a new store is made before it takes [`DB_FILE`]'s name: a process killed while
/// creating a store leaves this, never a `chain.redb` without a header.
const NEW_DB_FILE: &str = "chain.redb.new";
/// The first bytes of every redb file.
const REDB_MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";
/// The lock file: held while a node uses the directory.
const LOCK_FILE: &str = "LOCK";
/// redb's page cache. Bounded so that memory does not grow with the chain; the working
/// set (tip accounts and recent blocks) fits easily.
const CACHE_BYTES: usize = 64 << 20;

/// The best chain's last block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its hash.
    pub hash: BlockHash,
    /// Its header.
    pub header: Header,
    /// Its height.
    pub height: Height,
    /// Cumulative work of the best chain.
    pub chain_work: Work,
}

/// Where a transaction is on the best chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// The block that holds it.
    pub block: BlockHash,
    /// That block's height.
    pub height: Height,
    /// Its position in the block (0 is the coinbase).
    pub position: u32,
}

/// One transaction in an address's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: Txid,
    /// The height of its block.
    pub height: Height,
    /// Its position in the block.
    pub position: u32,
}

/// An open data directory. Cheap to clone; every clone shares the database and the lock,
/// which is released when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Tells when every handle on a [`Store`] is gone, and so the directory's lock is free.
#[derive(Debug, Clone)]
pub struct StoreClosed(std::sync::Weak<()>);

impl StoreClosed {
    /// Whether every handle on the store is gone.
    pub fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

struct Inner {
    db: Database,
    dir: PathBuf,
    genesis: BlockHash,
    // Held for the lock; released on drop.
    _lock: File,
    /// Dropped last (fields drop in order): gone only once the database is closed and
    /// the lock released, which is what [`StoreClosed`] watches. (The `Inner` itself
    /// counts as gone as soon as its last handle is, while redb may still be closing.)
    closing: Arc<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// Makes a new store at `path`: created and initialised under [`NEW_DB_FILE`] (a
/// leftover from a creation that was killed is removed first), made durable, then renamed
/// into place, so that `path` only ever names a whole store.
fn create_fresh(
    dir: &Path,
    path: &Path,
    builder: &Builder,
    lock: &File,
    params: &ChainParams,
) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let new = dir.join(NEW_DB_FILE);
    match std::fs::remove_file(&new) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&new)(e)),
    }
    let db = builder
        .create(&new)
        .map_err(|e| StoreError::Corrupt(format!("cannot create {}: {e}", new.display())))?;
    let store = Store {
        inner: Arc::new(Inner {
            db,
            dir: dir.to_path_buf(),
            genesis: params.genesis_hash(),
            // A second handle on the same open lock file: closing it keeps the lock.
            _lock: lock.try_clone().map_err(io(&dir.join(LOCK_FILE)))?,
            closing: Arc::new(()),
        }),
    };
    let mut w = store.begin_write()?;
    w.init(params)?;
    w.commit()?;
    drop(store);
    std::fs::rename(&new, path).map_err(io(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

impl Store {
    /// A watch on this store's closing: a node that stops waits on it, so that a
    /// restart on the same directory finds the lock free.
    pub fn closed(&self) -> StoreClosed {
        StoreClosed(Arc::downgrade(&self.inner.closing))
    }

    /// Opens (or creates) the store in `dir` for the network of `params`.
    pub fn open(dir: &Path, params: &ChainParams) -> Result<Store, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }

        let path = dir.join(DB_FILE);
        let mut builder = Builder::new();
        builder
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true);
        let existing = match File::open(&path) {
            Ok(file) => {
                let mut head = Vec::with_capacity(REDB_MAGIC.len());
                file.take(REDB_MAGIC.len() as u64)
                    .read_to_end(&mut head)
                    .map_err(io(&path))?;
                Some(head)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&path)(e)),
        };
        // redb would initialise a file too short to be a database: never write over a
        // file that is not one of ours.
        if let Some(bytes) = &existing
            && !bytes.starts_with(REDB_MAGIC)
        {
            return Err(StoreError::Corrupt(format!(
                "{} is not an oxchain store (no database header)",
                path.display()
            )));
        }
        if existing.is_none() {
            create_fresh(dir, &path, &builder, &lock, params)?;
        }
        let db = builder.open(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                dir: dir.to_path_buf(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => StoreError::Io {
                path: path.clone(),
                source,
            },
            other => StoreError::Corrupt(format!("{}: {other}", path.display())),
        })?;

        let store = Store {
            inner: Arc::new(Inner {
                db,
                dir: dir.to_path_buf(),
                genesis: params.genesis_hash(),
                _lock: lock,
                closing: Arc::new(()),
            }),
        };
        if store.check_meta(params)? {
            store.validate_tip()?;
            store.upgrade()?;
        } else {
            // A database without tables (a creation before stores were made under
            // NEW_DB_FILE, killed before its first commit): initialise it.
            let mut w = store.begin_write()?;
            w.init(params)?;
            w.commit()?;
        }
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The genesis hash of this store's chain.
    pub fn genesis_hash(&self) -> BlockHash {
        self.inner.genesis
    }

    /// Starts the one write transaction.
    pub fn begin_write(&self) -> Result<StoreWriter, StoreError> {
        StoreWriter::begin(&self.inner.db)
    }

    /// Brings a store of an older schema to [`SCHEMA_VERSION`]: schema 1 lacks the data
    /// index, built here from the best chain in one write (a crash leaves schema 1, and
    /// the next open builds it again).
    fn upgrade(&self) -> Result<(), StoreError> {
        let schema = self
            .read()?
            .open_table(META)?
            .get(META_SCHEMA)?
            .and_then(|v| v.value().try_into().ok())
            .map(u32::from_le_bytes);
        if schema == Some(1) {
            let started = std::time::Instant::now();
            let mut w = self.begin_write()?;
            let indexed = w.add_data_index()?;
            let height = w.tip()?.height;
            w.commit()?;
            tracing::info!(
                "store: schema 1 -> 2: indexed {indexed} transfers' data over {} blocks in {:.1} s",
                height.0 + 1,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Checks the metadata against `params`. `Ok(false)`: a fresh store (no tables yet).
    fn check_meta(&self, params: &ChainParams) -> Result<bool, StoreError> {
        let dir = || self.inner.dir.clone();
        let txn = self.read()?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                // A store killed while being created has no tables; anything else without
                // metadata is not ours.
                if txn.list_tables()?.next().is_some() {
                    return Err(StoreError::corrupt("tables without metadata"));
                }
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let get = |key: &str| -> Result<Vec<u8>, StoreError> {
            meta.get(key)?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| StoreError::corrupt(format!("no {key} in metadata")))
        };
        let schema = get(META_SCHEMA)?;
        let schema = u32::from_le_bytes(
            schema
                .try_into()
                .map_err(|_| StoreError::corrupt("schema is not 4 bytes"))?,
        );
        if schema > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                dir: dir(),
                found: schema,
                supported: SCHEMA_VERSION,
            });
        }
        if schema < 1 {
            return Err(StoreError::corrupt(format!("unknown schema {schema}")));
        }
        let network = get(META_NETWORK)?;
        let expected = params.network.name();
        if network != expected.as_bytes() {
            return Err(StoreError::WrongNetwork {
                dir: dir(),
                found: String::from_utf8_lossy(&network).into_owned(),
                expected: expected.to_string(),
            });
        }
        let genesis = get(META_GENESIS)?;
        if genesis != self.inner.genesis.0 {
            return Err(StoreError::WrongGenesis {
                dir: dir(),
                found: hex(&genesis),
                expected: self.inner.genesis.to_string(),
            });
        }
        Ok(true)
    }

    /// Checks that the tip is a complete best-chain block.
    fn validate_tip(&self) -> Result<(), StoreError> {
        let tip = self.tip()?;
        let txn = self.read()?;
        if txn.open_table(BEST)?.get(tip.height.0)?.map(|v| v.value()) != Some(tip.hash.0) {
            return Err(StoreError::corrupt(
                "the tip is not on the best-chain index",
            ));
        }
        if txn.open_table(BLOCKS)?.get(tip.hash.0)?.is_none() {
            return Err(StoreError::corrupt("the tip block's body is missing"));
        }
        if tip.height.0 > 0 && txn.open_table(UNDO)?.get(tip.hash.0)?.is_none() {
            return Err(StoreError::corrupt("the tip block's undo data is missing"));
        }
        Ok(())
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.inner.db.begin_read()?)
    }

    /// A consistent view of the store as of now: reads through it see neither later
    /// commits nor a reorg. Hold it only as long as needed: pages later commits free are
    /// reused only after it is dropped.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot { txn: self.read()? })
    }

    /// The best chain's tip.
    pub fn tip(&self) -> Result<Tip, StoreError> {
        self.snapshot()?.tip()
    }

    /// A block's header record, best chain or not.
    pub fn header(&self, hash: &BlockHash) -> Result<Option<HeaderRecord>, StoreError> {
        self.snapshot()?.header(hash)
    }

    /// A stored block, best chain or not.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        self.snapshot()?.block(hash)
    }

    /// A best-chain block's undo data.
    pub fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError> {
        read_undo(&self.read()?.open_table(UNDO)?, hash)
    }

    /// The hash of the best-chain block at `height`.
    pub fn hash_at(&self, height: Height) -> Result<Option<BlockHash>, StoreError> {
        self.snapshot()?.hash_at(height)
    }

    /// The account at `address` at the tip.
    pub fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        read_account(&self.read()?.open_table(ACCOUNTS)?, address)
    }

    /// Where a transaction is on the best chain.
    pub fn tx_location(&self, txid: &Txid) -> Result<Option<TxLocation>, StoreError> {
        self.snapshot()?.tx_location(txid)
    }

    /// Up to `limit` best-chain transactions touching `address`, newest first, strictly
    /// before `before` (a `(height, position)` cursor) when given.
    pub fn history(
        &self,
        address: &Address,
        before: Option<(Height, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(HISTORY)?;
        let start = history_key(address, Height(0), 0);
        let end = match before {
            Some((height, position)) => history_key(address, height, position),
            None => history_key(address, Height(u64::MAX), u32::MAX),
        };
        let mut out = Vec::new();
        let range = match before {
            Some(_) => table.range(start..end)?,
            None => table.range(start..=end)?,
        };
        for entry in range.rev().take(limit) {
            let (key, value) = entry?;
            let (height, position) = split_history_key(&key.value());
            out.push(HistoryEntry {
                txid: Txid(value.value()),
                height,
                position,
            });
        }
        Ok(out)
    }

    /// Up to `limit` best-chain transfers whose data starts with `prefix` (32 bytes),
    /// oldest first, strictly after `after` (a `(height, position)` cursor) when given.
    pub fn data(
        &self,
        prefix: &[u8; 32],
        after: Option<(Height, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.snapshot()?.data(prefix, after, limit)
    }

    /// The digest of the whole account state at the tip (see
    /// [`compute_state_digest`]), read in one transaction.
    pub fn compute_state_digest(&self) -> Result<[u8; 32], StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ACCOUNTS)?;
        let mut accounts = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            accounts.push((
                Address(key.value()),
                decode_stored::<Account>("account", value.value())?,
            ));
        }
        Ok(compute_state_digest(accounts.iter().map(|(a, b)| (a, b))))
    }
}

/// A read transaction: every read through it sees the store as it was when it was taken
/// ([`Store::snapshot`]).
pub struct Snapshot {
    txn: ReadTransaction,
}

impl Snapshot {
    /// The best chain's tip.
    pub fn tip(&self) -> Result<Tip, StoreError> {
        let txn = &self.txn;
        let hash = txn
            .open_table(META)?
            .get(META_TIP)?
            .ok_or_else(|| StoreError::corrupt("no tip in metadata"))?
            .value()
            .try_into()
            .map(BlockHash)
            .map_err(|_| StoreError::corrupt("tip is not 32 bytes"))?;
        let record = read_header(&txn.open_table(HEADERS)?, &hash)?
            .ok_or_else(|| StoreError::corrupt(format!("no header for the tip {hash}")))?;
        Ok(Tip {
            hash,
            header: record.header,
            height: record.height,
            chain_work: record.chain_work,
        })
    }

    /// A block's header record, best chain or not.
    pub fn header(&self, hash: &BlockHash) -> Result<Option<HeaderRecord>, StoreError> {
        read_header(&self.txn.open_table(HEADERS)?, hash)
    }

    /// A stored block, best chain or not.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        read_block(&self.txn.open_table(BLOCKS)?, hash)
    }

    /// The hash of the best-chain block at `height`.
    pub fn hash_at(&self, height: Height) -> Result<Option<BlockHash>, StoreError> {
        read_hash_at(&self.txn.open_table(BEST)?, height)
    }

    /// Up to `limit` best-chain transfers whose data starts with `prefix` (32 bytes),
    /// oldest first, strictly after `after` (a `(height, position)` cursor) when given.
    pub fn data(
        &self,
        prefix: &[u8; 32],
        after: Option<(Height, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let table = self.txn.open_table(DATA)?;
        let end = data_key(prefix, Height(u64::MAX), u32::MAX);
        let range = match after {
            Some((height, position)) => table.range((
                std::ops::Bound::Excluded(data_key(prefix, height, position)),
                std::ops::Bound::Included(end),
            ))?,
            None => table.range(data_key(prefix, Height(0), 0)..=end)?,
        };
        let mut out = Vec::new();
        for entry in range.take(limit) {
            let (key, value) = entry?;
            let (height, position) = split_data_key(&key.value());
            out.push(HistoryEntry {
                txid: Txid(value.value()),
                height,
                position,
            });
        }
        Ok(out)
    }

    /// Where a transaction is on the best chain.
    pub fn tx_location(&self, txid: &Txid) -> Result<Option<TxLocation>, StoreError> {
        let txn = &self.txn;
        let Some(location) = txn.open_table(TXS)?.get(txid.0)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let (height, position) = split_tx_location(&location);
        let block = read_hash_at(&txn.open_table(BEST)?, height)?.ok_or_else(|| {
            StoreError::corrupt(format!(
                "transaction {txid} is indexed at missing height {height}"
            ))
        })?;
        Ok(Some(TxLocation {
            block,
            height,
            position,
        }))
    }
}

/// Reads of header records and the best-chain index: from the committed store, or from
/// inside an open write transaction (which sees its own writes).
pub trait HeaderReader {
    /// A block's header record, best chain or not.
    fn header(&self, hash: &BlockHash) -> Result<Option<HeaderRecord>, StoreError>;
    /// The hash of the best-chain block at `height`.
    fn hash_at(&self, height: Height) -> Result<Option<BlockHash>, StoreError>;
}

impl HeaderReader for Store {
    fn header(&self, hash: &BlockHash) -> Result<Option<HeaderRecord>, StoreError> {
        Store::header(self, hash)
    }
    fn hash_at(&self, height: Height) -> Result<Option<BlockHash>, StoreError> {
        Store::hash_at(self, height)
    }
}

impl HeaderReader for StoreWriter {
    fn header(&self, hash: &BlockHash) -> Result<Option<HeaderRecord>, StoreError> {
        StoreWriter::header(self, hash)
    }
    fn hash_at(&self, height: Height) -> Result<Option<BlockHash>, StoreError> {
        StoreWriter::hash_at(self, height)
    }
}

impl AccountReader for Store {
    type Error = StoreError;
    fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        Store::account(self, address)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Reads shared by the readers above and the writer, over any table handle.

pub(crate) fn read_header(
    table: &impl ReadableTable<[u8; 32], &'static [u8]>,
    hash: &BlockHash,
) -> Result<Option<HeaderRecord>, StoreError> {
    table
        .get(hash.0)?
        .map(|v| HeaderRecord::from_bytes(v.value()))
        .transpose()
}

pub(crate) fn read_block(
    table: &impl ReadableTable<[u8; 32], &'static [u8]>,
    hash: &BlockHash,
) -> Result<Option<Block>, StoreError> {
    table
        .get(hash.0)?
        .map(|v| decode_stored("block", v.value()))
        .transpose()
}

pub(crate) fn read_undo(
    table: &impl ReadableTable<[u8; 32], &'static [u8]>,
    hash: &BlockHash,
) -> Result<Option<BlockUndo>, StoreError> {
    table
        .get(hash.0)?
        .map(|v| decode_stored("undo data", v.value()))
        .transpose()
}

pub(crate) fn read_hash_at(
    table: &impl ReadableTable<u64, [u8; 32]>,
    height: Height,
) -> Result<Option<BlockHash>, StoreError> {
    Ok(table.get(height.0)?.map(|v| BlockHash(v.value())))
}

pub(crate) fn read_account(
    table: &impl ReadableTable<[u8; 20], &'static [u8]>,
    address: &Address,
) -> Result<Option<Account>, StoreError> {
    table
        .get(address.0)?
        .map(|v| decode_stored("account", v.value()))
        .transpose()
}
