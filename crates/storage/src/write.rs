//! The one writer: a redb write transaction with the operations the chain needs. Nothing
//! is visible to readers, or survives a crash, until [`StoreWriter::commit`]; a writer
//! dropped without committing changes nothing.

use oxchain_consensus::ChainParams;
use oxchain_consensus::ledger::{AccountReader, LedgerUpdate, apply_block, apply_genesis};
use oxchain_primitives::{
    Address, Block, BlockHash, BlockUndo, Encode, Height, Transaction, Txid, encode,
};
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};

use crate::error::{ConnectError, StoreError};
use crate::store::{
    SCHEMA_VERSION, Tip, read_account, read_block, read_hash_at, read_header, read_undo,
};
use crate::tables::{
    ACCOUNTS, BEST, BLOCKS, BlockStatus, DATA, HEADERS, HISTORY, HeaderRecord, META, META_GENESIS,
    META_NETWORK, META_SCHEMA, META_TIP, TXS, UNDO, data_key, data_prefix, history_key,
    tx_location_bytes,
};

/// One write transaction.
pub struct StoreWriter {
    txn: WriteTransaction,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreWriter")
    }
}

/// Account reads through a table of the open write transaction, so that a batch sees its
/// own earlier blocks.
struct TableAccounts<'a, 't>(&'a Table<'t, [u8; 20], &'static [u8]>);

impl AccountReader for TableAccounts<'_, '_> {
    type Error = StoreError;
    fn account(
        &self,
        address: &Address,
    ) -> Result<Option<oxchain_primitives::Account>, StoreError> {
        read_account(self.0, address)
    }
}

impl StoreWriter {
    pub(crate) fn begin(db: &Database) -> Result<StoreWriter, StoreError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Db(e.into()))?;
        txn.set_two_phase_commit(true);
        Ok(StoreWriter { txn })
    }

    /// Makes everything written durable, atomically.
    pub fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit()?)
    }

    /// Writes the metadata and genesis of a fresh store.
    pub(crate) fn init(&mut self, params: &ChainParams) -> Result<(), StoreError> {
        {
            let mut meta = self.txn.open_table(META)?;
            meta.insert(META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
            meta.insert(META_NETWORK, params.network.name().as_bytes())?;
            meta.insert(META_GENESIS, params.genesis_hash().0.as_slice())?;
        }
        // Create every table, so that a reader never meets a missing one.
        self.txn.open_table(UNDO)?;
        self.txn.open_table(DATA)?;
        let genesis = params.genesis();
        let hash = params.genesis_hash();
        let work = genesis
            .header
            .bits
            .to_target()
            .map_err(|e| StoreError::corrupt(format!("genesis bits: {e}")))?
            .work();
        self.put_block(
            &hash,
            &HeaderRecord {
                header: genesis.header,
                height: Height(0),
                chain_work: work,
                status: BlockStatus::Valid,
            },
            genesis,
        )?;
        let update = apply_genesis(params);
        self.write_connected(&hash, genesis, &genesis.compute_txids(), Height(0), &update)?;
        Ok(())
    }

    /// The tip as written so far in this transaction.
    pub fn tip(&self) -> Result<Tip, StoreError> {
        let hash = self
            .txn
            .open_table(META)?
            .get(META_TIP)?
            .ok_or_else(|| StoreError::corrupt("no tip in metadata"))?
            .value()
            .try_into()
            .map(BlockHash)
            .map_err(|_| StoreError::corrupt("tip is not 32 bytes"))?;
        let record = self
            .header(&hash)?
            .ok_or_else(|| StoreError::corrupt(format!("no header for the tip {hash}")))?;
        Ok(Tip {
            hash,
            header: record.header,
            height: record.height,
            chain_work: record.chain_work,
        })
    }

    /// A header record, including those written in this transaction.
    pub fn header(&self, hash: &BlockHash) -> Result<Option<HeaderRecord>, StoreError> {
        read_header(&self.txn.open_table(HEADERS)?, hash)
    }

    /// A stored block, including those written in this transaction.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        read_block(&self.txn.open_table(BLOCKS)?, hash)
    }

    /// The best-chain hash at `height` as written so far.
    pub fn hash_at(&self, height: Height) -> Result<Option<BlockHash>, StoreError> {
        read_hash_at(&self.txn.open_table(BEST)?, height)
    }

    /// Stores a block and its header record (not yet on the best chain).
    pub fn put_block(
        &mut self,
        hash: &BlockHash,
        record: &HeaderRecord,
        block: &Block,
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(HEADERS)?
            .insert(hash.0, record.to_bytes().as_slice())?;
        self.txn
            .open_table(BLOCKS)?
            .insert(hash.0, encode(block).as_slice())?;
        Ok(())
    }

    /// Marks a stored block as invalid (it broke a ledger rule).
    pub fn mark_invalid(&mut self, hash: &BlockHash) -> Result<(), StoreError> {
        let mut record = self
            .header(hash)?
            .ok_or_else(|| StoreError::corrupt(format!("no header for {hash}")))?;
        record.status = BlockStatus::Invalid;
        self.txn
            .open_table(HEADERS)?
            .insert(hash.0, record.to_bytes().as_slice())?;
        Ok(())
    }

    /// Schema 1 to 2: builds the data index from the best chain's blocks. Returns how
    /// many transfers it indexed.
    pub(crate) fn add_data_index(&mut self) -> Result<u64, StoreError> {
        let tip = self.tip()?;
        let mut indexed = 0;
        let mut data = self.txn.open_table(DATA)?;
        let best = self.txn.open_table(BEST)?;
        let blocks = self.txn.open_table(BLOCKS)?;
        for height in 0..=tip.height.0 {
            let hash = read_hash_at(&best, Height(height))?
                .ok_or_else(|| StoreError::corrupt(format!("no best block at {height}")))?;
            let block = read_block(&blocks, &hash)?
                .ok_or_else(|| StoreError::corrupt(format!("no body for {hash}")))?;
            for (position, tx) in block.transactions.iter().enumerate() {
                if let Some(prefix) = recorded(tx) {
                    let position = u32::try_from(position).expect("a block holds < 2^32 txs");
                    data.insert(
                        data_key(&prefix, Height(height), position),
                        tx.compute_txid().0,
                    )?;
                    indexed += 1;
                }
            }
        }
        drop((data, best, blocks));
        self.txn
            .open_table(META)?
            .insert(META_SCHEMA, 2u32.to_le_bytes().as_slice())?;
        Ok(indexed)
    }

    /// Connects a stored block on top of the tip: applies it to the account state under
    /// the ledger rules, and writes the new accounts, its undo data, the indexes and the
    /// tip. On a rule failure nothing is written.
    pub fn connect(
        &mut self,
        params: &ChainParams,
        hash: &BlockHash,
        block: &Block,
        txids: &[Txid],
        height: Height,
    ) -> Result<LedgerUpdate, ConnectError> {
        let update = {
            let accounts = self.txn.open_table(ACCOUNTS).map_err(StoreError::from)?;
            apply_block(params, &TableAccounts(&accounts), block, txids, height).map_err(|e| {
                match e {
                    oxchain_consensus::ConsensusError::StateRead(source) => {
                        ConnectError::Store(StoreError::Corrupt(source.to_string()))
                    }
                    e => ConnectError::Invalid(e),
                }
            })?
        };
        self.write_connected(hash, block, txids, height, &update)?;
        Ok(update)
    }

    fn write_connected(
        &mut self,
        hash: &BlockHash,
        block: &Block,
        txids: &[Txid],
        height: Height,
        update: &LedgerUpdate,
    ) -> Result<(), StoreError> {
        {
            let mut accounts = self.txn.open_table(ACCOUNTS)?;
            let mut buf = Vec::with_capacity(16);
            for (address, account) in &update.accounts {
                buf.clear();
                account.encode_to(&mut buf);
                accounts.insert(address.0, buf.as_slice())?;
            }
        }
        if height.0 > 0 {
            self.txn
                .open_table(UNDO)?
                .insert(hash.0, encode(&update.undo).as_slice())?;
        }
        self.txn.open_table(BEST)?.insert(height.0, hash.0)?;
        {
            // Inserted in key order: neighbouring keys share B-tree pages.
            let mut locations = Vec::with_capacity(txids.len());
            let mut entries = Vec::with_capacity(2 * txids.len());
            let mut records = Vec::new();
            for (position, (tx, txid)) in block.transactions.iter().zip(txids).enumerate() {
                let position = u32::try_from(position).expect("a block holds < 2^32 txs");
                locations.push((txid.0, tx_location_bytes(height, position)));
                for address in touched(tx) {
                    entries.push((history_key(&address, height, position), txid.0));
                }
                if let Some(prefix) = recorded(tx) {
                    records.push((data_key(&prefix, height, position), txid.0));
                }
            }
            locations.sort_unstable_by_key(|(key, _)| *key);
            entries.sort_unstable_by_key(|(key, _)| *key);
            records.sort_unstable_by_key(|(key, _)| *key);
            let mut txs = self.txn.open_table(TXS)?;
            for (key, value) in locations {
                txs.insert(key, value)?;
            }
            let mut history = self.txn.open_table(HISTORY)?;
            for (key, value) in entries {
                history.insert(key, value)?;
            }
            let mut data = self.txn.open_table(DATA)?;
            for (key, value) in records {
                data.insert(key, value)?;
            }
        }
        self.txn
            .open_table(META)?
            .insert(META_TIP, hash.0.as_slice())?;
        Ok(())
    }

    /// Disconnects the tip: restores the accounts from its undo data, removes it from the
    /// indexes and makes its parent the tip. Returns the block and its undo data.
    pub fn disconnect_tip(&mut self) -> Result<(Block, BlockUndo), StoreError> {
        let tip = self.tip()?;
        if tip.height.0 == 0 {
            return Err(StoreError::corrupt("asked to disconnect genesis"));
        }
        let block = self
            .block(&tip.hash)?
            .ok_or_else(|| StoreError::corrupt(format!("no body for the tip {}", tip.hash)))?;
        let undo = read_undo(&self.txn.open_table(UNDO)?, &tip.hash)?
            .ok_or_else(|| StoreError::corrupt(format!("no undo data for {}", tip.hash)))?;
        {
            let mut accounts = self.txn.open_table(ACCOUNTS)?;
            for (address, prior) in &undo.prior {
                match prior {
                    Some(account) => {
                        accounts.insert(address.0, encode(account).as_slice())?;
                    }
                    None => {
                        accounts.remove(address.0)?;
                    }
                }
            }
        }
        {
            let mut txs = self.txn.open_table(TXS)?;
            let mut history = self.txn.open_table(HISTORY)?;
            let mut data = self.txn.open_table(DATA)?;
            for (position, tx) in block.transactions.iter().enumerate() {
                let position = u32::try_from(position).expect("a block holds < 2^32 txs");
                txs.remove(tx.compute_txid().0)?;
                for address in touched(tx) {
                    history.remove(history_key(&address, tip.height, position))?;
                }
                if let Some(prefix) = recorded(tx) {
                    data.remove(data_key(&prefix, tip.height, position))?;
                }
            }
        }
        self.txn.open_table(UNDO)?.remove(tip.hash.0)?;
        self.txn.open_table(BEST)?.remove(tip.height.0)?;
        self.txn
            .open_table(META)?
            .insert(META_TIP, block.header.prev_hash.0.as_slice())?;
        Ok((block, undo))
    }
}

/// The key a transaction has in the data index: a transfer's first 32 bytes of data.
pub(crate) fn recorded(tx: &Transaction) -> Option<[u8; 32]> {
    match tx {
        Transaction::Transfer(t) => data_prefix(&t.data),
        Transaction::Coinbase(_) => None,
    }
}

/// The addresses whose history a transaction belongs to.
fn touched(tx: &Transaction) -> impl Iterator<Item = Address> {
    let (first, second) = match tx {
        Transaction::Coinbase(c) => (c.to, None),
        Transaction::Transfer(t) => {
            let from = t.sender();
            (from, (t.to != from).then_some(t.to))
        }
    };
    std::iter::once(first).chain(second)
}
