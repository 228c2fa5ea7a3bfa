//! Opening data directories: fresh, reopened, locked, of another network or schema, and
//! damaged. A refused directory is never written to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use oxchain_consensus::ChainParams;
use oxchain_consensus::genesis::dev_account_address;
use oxchain_storage::{SCHEMA_VERSION, Store, StoreError};

fn db_file(dir: &Path) -> std::path::PathBuf {
    dir.join("chain.redb")
}

#[test]
fn fresh_store_holds_genesis_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let params = ChainParams::regtest();
    let store = Store::open(dir.path(), &params).unwrap();
    let tip = store.tip().unwrap();
    assert_eq!(tip.hash, params.genesis_hash());
    assert_eq!(tip.height.0, 0);
    let alice = dev_account_address("alice");
    assert_eq!(
        store.account(&alice).unwrap().unwrap().balance,
        params.dev_account_funds
    );
    let history = store.history(&alice, None, 10).unwrap();
    assert_eq!(
        history.len(),
        1,
        "the genesis allocation is in alice's history"
    );
    let digest = store.compute_state_digest().unwrap();
    drop(store);

    let store = Store::open(dir.path(), &params).unwrap();
    assert_eq!(store.tip().unwrap().hash, params.genesis_hash());
    assert_eq!(store.compute_state_digest().unwrap(), digest);
    assert_eq!(
        digest,
        oxchain_consensus::MemoryState::at_genesis(&params).compute_digest()
    );
}

/// A new store is made as `chain.redb.new` and renamed once initialised: a process
/// killed while creating it (seen in the crash test: a SIGKILL 150 ms after start left a
/// `chain.redb` without a header, refused at every later start) leaves only the `.new`
/// file, which the next start replaces.
#[test]
fn a_store_creation_cut_short_leaves_nothing_that_stops_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let params = ChainParams::regtest();
    std::fs::write(dir.path().join("chain.redb.new"), b"half a database").unwrap();
    let store = Store::open(dir.path(), &params).unwrap();
    assert_eq!(store.tip().unwrap().hash, params.genesis_hash());
    assert!(!dir.path().join("chain.redb.new").exists());
    assert!(db_file(dir.path()).exists());
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let params = ChainParams::regtest();
    let first = Store::open(dir.path(), &params).unwrap();
    let err = Store::open(dir.path(), &params).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("another oxchain node is using"),
        "{err}"
    );
    drop(first);
    Store::open(dir.path(), &params).unwrap();
}

#[test]
fn another_network_or_genesis_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    let before = snapshot(dir.path());

    let err = Store::open(dir.path(), &ChainParams::dev()).unwrap_err();
    assert!(matches!(err, StoreError::WrongNetwork { .. }), "{err}");
    assert!(
        err.to_string().contains("holds a regtest chain, not dev"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);

    // Same network name, another genesis: a chain from a different build.
    let mut other = ChainParams::regtest();
    other.dev_account_funds = oxchain_primitives::Amount::from_units(1);
    let other = ChainParams::for_network(other.network);
    assert_eq!(other.genesis_hash(), ChainParams::regtest().genesis_hash());
    Store::open(dir.path(), &other).unwrap();
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), &ChainParams::regtest()).unwrap());
    {
        let db = redb::Database::open(db_file(dir.path())).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(def).unwrap();
            meta.insert("schema", (SCHEMA_VERSION + 1).to_le_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Store::open(dir.path(), &ChainParams::regtest()).unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("upgrade oxchain"), "{err}");
    let db = redb::Database::open(db_file(dir.path())).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let meta = txn.open_table(def).unwrap();
    let schema = meta.get("schema").unwrap().unwrap().value().to_vec();
    assert_eq!(
        schema,
        (SCHEMA_VERSION + 1).to_le_bytes(),
        "the schema was rewritten"
    );
}

#[test]
fn a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        db_file(dir.path()),
        b"not a database at all, just some bytes",
    )
    .unwrap();
    let err = Store::open(dir.path(), &ChainParams::regtest()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    let after = std::fs::read(db_file(dir.path())).unwrap();
    assert!(
        after == b"not a database at all, just some bytes",
        "the file was changed"
    );
}

/// What a store holds, read through a fresh open: tip, and account-state digest.
/// (redb's integrity check at open commits its own bookkeeping, so the file's bytes may
/// change; what it holds must not.)
fn snapshot(dir: &Path) -> (oxchain_primitives::BlockHash, [u8; 32]) {
    let store = Store::open(dir, &ChainParams::regtest()).unwrap();
    (
        store.tip().unwrap().hash,
        store.compute_state_digest().unwrap(),
    )
}

/// A store with some history, for the damage tests.
fn populated(dir: &Path) -> Vec<u8> {
    use oxchain_testkit::{ChainBuilder, dev_account_key, signed_transfer};
    let params = ChainParams::regtest();
    let store = Store::open(dir, &params).unwrap();
    let mut builder = ChainBuilder::regtest();
    let genesis = params.genesis_hash();
    for nonce in 0..20 {
        let t = signed_transfer(
            &genesis,
            &dev_account_key("alice"),
            dev_account_address("bob"),
            1_000,
            500,
            nonce,
        );
        builder.extend(vec![t]).unwrap();
        let block = builder.tip().clone();
        let mut w = store.begin_write().unwrap();
        let parent = w.header(&block.header.prev_hash).unwrap().unwrap();
        let hash = block.compute_hash();
        let record = oxchain_storage::HeaderRecord {
            header: block.header,
            height: oxchain_primitives::Height(parent.height.0 + 1),
            chain_work: parent
                .chain_work
                .checked_add(block.header.bits.to_target().unwrap().work())
                .unwrap(),
            status: oxchain_storage::BlockStatus::Valid,
        };
        w.put_block(&hash, &record, &block).unwrap();
        w.connect(
            &params,
            &hash,
            &block,
            &block.compute_txids(),
            record.height,
        )
        .unwrap();
        w.commit().unwrap();
    }
    assert_eq!(
        store.compute_state_digest().unwrap(),
        builder.state.compute_digest()
    );
    drop(store);
    std::fs::read(db_file(dir)).unwrap()
}

#[test]
fn a_truncated_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = populated(dir.path());
    for keep in [bytes.len() / 2, bytes.len() - 4096, 100] {
        std::fs::write(db_file(dir.path()), &bytes[..keep]).unwrap();
        match Store::open(dir.path(), &ChainParams::regtest()) {
            Err(e) => assert!(
                e.to_string().contains("damaged") || e.to_string().contains("cannot use"),
                "{e}"
            ),
            Ok(_) => panic!("a file truncated to {keep} of {} bytes opened", bytes.len()),
        }
    }
}

#[test]
fn flipped_bytes_give_an_error_or_the_last_commit_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = populated(dir.path());
    let params = ChainParams::regtest();
    let mut refused = 0;
    // Every 4 KiB page, one byte in the middle of it.
    for offset in (0..bytes.len()).step_by(4096).map(|o| o + 2048) {
        if offset >= bytes.len() {
            break;
        }
        let mut damaged = bytes.clone();
        damaged[offset] ^= 0x5a;
        std::fs::write(db_file(dir.path()), &damaged).unwrap();
        match Store::open(dir.path(), &params) {
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
            // A flip in free space or in the inactive commit slot is harmless: then the
            // store must be exactly the one written.
            Ok(store) => {
                assert_eq!(store.tip().unwrap().height.0, 20, "flip at {offset}");
            }
        }
    }
    assert!(refused > 0, "no flipped page was detected");
}
