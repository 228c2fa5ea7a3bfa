//! The data index (schema 2): transfers found by the first 32 bytes of their `data`,
//! written in the same transaction as their block, removed when it is disconnected, and
//! built for a schema 1 store when it is opened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxchain_consensus::ChainParams;
use oxchain_primitives::{Height, Transfer};
use oxchain_storage::{BlockStatus, HeaderRecord, SCHEMA_VERSION, Store};
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, signed_transfer};

/// A transfer from `from` carrying `data`, signed.
fn with_data(from: &str, nonce: u64, data: &[u8]) -> Transfer {
    let params = ChainParams::regtest();
    let mut t = signed_transfer(
        &params.genesis_hash(),
        &dev_account_key(from),
        dev_account_address(from),
        1,
        1_000,
        nonce,
    );
    t.data = data.to_vec();
    t.sign(&dev_account_key(from), &params.genesis_hash());
    t
}

/// Builds a block of `transfers` on the builder's tip and connects it in the store.
fn connect(store: &Store, builder: &mut ChainBuilder, transfers: Vec<Transfer>) {
    let params = ChainParams::regtest();
    builder.extend(transfers).unwrap();
    let block = builder.tip().clone();
    let mut w = store.begin_write().unwrap();
    let parent = w.header(&block.header.prev_hash).unwrap().unwrap();
    let hash = block.compute_hash();
    let record = HeaderRecord {
        header: block.header,
        height: Height(parent.height.0 + 1),
        chain_work: parent
            .chain_work
            .checked_add(block.header.bits.to_target().unwrap().work())
            .unwrap(),
        status: BlockStatus::Valid,
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

/// (height, position) of what the index holds for `prefix`.
fn found(
    store: &Store,
    prefix: &[u8; 32],
    after: Option<(u64, u32)>,
    limit: usize,
) -> Vec<(u64, u32)> {
    store
        .data(prefix, after.map(|(h, p)| (Height(h), p)), limit)
        .unwrap()
        .iter()
        .map(|e| (e.height.0, e.position))
        .collect()
}

const FILE: [u8; 32] = [0xab; 32];
const OTHER: [u8; 32] = [0x01; 32];

/// Three blocks: FILE with a label (1), FILE alone (2), OTHER and a 31-byte record that
/// is too short to index (3).
fn three_blocks(dir: &std::path::Path) -> Store {
    let store = Store::open(dir, &ChainParams::regtest()).unwrap();
    let mut builder = ChainBuilder::regtest();
    let labelled = [FILE.as_slice(), b"contract v2"].concat();
    connect(&store, &mut builder, vec![with_data("alice", 0, &labelled)]);
    connect(&store, &mut builder, vec![with_data("bob", 0, &FILE)]);
    connect(
        &store,
        &mut builder,
        vec![
            with_data("charlie", 0, &[0xab; 31]),
            with_data("dave", 0, &OTHER),
        ],
    );
    store
}

#[test]
fn transfers_are_found_by_their_data_oldest_first_and_reorgs_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = three_blocks(dir.path());
    // Position 0 is each block's coinbase.
    assert_eq!(found(&store, &FILE, None, 10), [(1, 1), (2, 1)]);
    assert_eq!(found(&store, &FILE, None, 1), [(1, 1)]);
    assert_eq!(found(&store, &FILE, Some((1, 1)), 10), [(2, 1)]);
    assert_eq!(found(&store, &FILE, Some((2, 1)), 10), []);
    assert_eq!(found(&store, &OTHER, None, 10), [(3, 2)]);
    assert_eq!(
        found(&store, &[0xab; 32][..].try_into().unwrap(), None, 10).len(),
        2
    );
    assert_eq!(found(&store, &[0; 32], None, 10), []);
    // The txid is the transfer's.
    let entry = store.data(&OTHER, None, 1).unwrap()[0];
    let location = store.tx_location(&entry.txid).unwrap().unwrap();
    assert_eq!((location.height, location.position), (Height(3), 2));

    for (disconnected, file, other) in
        [(3, vec![(1, 1), (2, 1)], vec![]), (2, vec![(1, 1)], vec![])]
    {
        let mut w = store.begin_write().unwrap();
        w.disconnect_tip().unwrap();
        w.commit().unwrap();
        assert_eq!(found(&store, &FILE, None, 10), file, "after {disconnected}");
        assert_eq!(
            found(&store, &OTHER, None, 10),
            other,
            "after {disconnected}"
        );
    }
}

/// A schema 1 store is the same tables without `data`: opening it builds the index.
#[test]
fn a_schema_1_store_gets_its_index_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(three_blocks(dir.path()));
    let file = dir.path().join("chain.redb");
    let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    {
        let db = redb::Database::open(&file).unwrap();
        let txn = db.begin_write().unwrap();
        let data: redb::TableDefinition<[u8; 44], [u8; 32]> = redb::TableDefinition::new("data");
        assert!(txn.delete_table(data).unwrap(), "schema 2 has the table");
        txn.open_table(meta)
            .unwrap()
            .insert("schema", 1u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path(), &ChainParams::regtest()).unwrap();
    assert_eq!(found(&store, &FILE, None, 10), [(1, 1), (2, 1)]);
    assert_eq!(found(&store, &OTHER, None, 10), [(3, 2)]);
    drop(store);
    let db = redb::Database::open(&file).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let schema = txn
        .open_table(meta)
        .unwrap()
        .get("schema")
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(schema, SCHEMA_VERSION.to_le_bytes());
    assert_eq!(SCHEMA_VERSION, 2);
}
