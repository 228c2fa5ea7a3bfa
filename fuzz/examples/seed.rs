//! Writes the seed corpus of every fuzz target into `fuzz/corpus/TARGET/seed-NAME`, from
//! real encodings: regtest blocks built and mined through the real ledger, signed
//! transfers, sync messages, compact blocks and a peer's answers, a mempool file written
//! by the node's own `save`, a wallet key file written by the wallet, `miner.key` as the
//! node writes it, a config file, and the API's JSON bodies.
//!
//! Run by `scripts/fuzz --seed` (then commit `fuzz/corpus/*/seed-*`).

use std::path::{Path, PathBuf};

use oxchain_api::MAX_BODY_BYTES;
use oxchain_fuzz::{frame, kind};
use oxchain_net::compact::CompactBlock;
use oxchain_net::message::{SyncRequest, SyncResponse};
use oxchain_primitives::{Block, Network, Transaction, Transfer, encode};
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, signed_transfer};

// Built with the fuzz targets' flags (instrumented, `scripts/fuzz --seed`), so that it
// reuses their build: the coverage hooks then come from libFuzzer, which links only with
// a target, so this one is an empty target that never runs (`main` below is the entry).
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory is made");
    let path: PathBuf = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).expect("a seed is written");
    println!("{} ({} bytes)", path.display(), bytes.len());
}

fn transfer(builder: &ChainBuilder, from: &str, to: &str, coins: u64, nonce: u64) -> Transfer {
    signed_transfer(
        &builder.genesis_hash(),
        &dev_account_key(from),
        dev_account_address(to),
        coins * 100_000_000,
        1_000,
        nonce,
    )
}

fn main() {
    // A regtest chain: block 1 (coinbase only), block 2 with two transfers.
    let mut builder = ChainBuilder::regtest();
    let genesis = builder.tip().clone();
    let block1 = builder.build_block(Vec::new());
    builder.push(block1.clone()).expect("block 1 is valid");
    let t0 = transfer(&builder, "alice", "bob", 5, 0);
    let mut t1 = transfer(&builder, "alice", "charlie", 2, 1);
    t1.data = b"for the fuzzers".to_vec();
    t1.sign(&dev_account_key("alice"), &builder.genesis_hash());
    let t2 = transfer(&builder, "bob", "alice", 1, 0);
    let block2 = builder.build_block(vec![t0.clone(), t1.clone()]);
    builder.push(block2.clone()).expect("block 2 is valid");
    let tx = |t: &Transfer| encode(&Transaction::Transfer(t.clone()));

    // Blocks, transfers, transactions.
    write("block", "genesis", &encode(&genesis));
    write("block", "block1", &encode(&block1));
    write("block", "block2", &encode(&block2));
    write("transfer", "plain", &tx(&t0));
    write("transfer", "with-data", &tx(&t1));
    write("transaction", "coinbase", &encode(&block2.transactions[0]));
    write("transaction", "transfer", &tx(&t0));
    write("transaction", "transfer-data", &tx(&t1));

    // Sync messages.
    let hashes = vec![
        block2.compute_hash(),
        block1.compute_hash(),
        genesis.compute_hash(),
    ];
    let requests = [
        ("status", SyncRequest::Status),
        (
            "get-headers",
            SyncRequest::GetHeaders {
                locator: hashes.clone(),
                max: 2_000,
            },
        ),
        ("get-blocks", SyncRequest::GetBlocks(hashes[..2].to_vec())),
        (
            "get-block-txs",
            SyncRequest::GetBlockTxs {
                block: block2.compute_hash(),
                indexes: vec![1, 2, 7],
            },
        ),
        (
            "get-pending",
            SyncRequest::GetPending {
                sender: oxchain_primitives::Address([0x11; 20]),
                from: 5,
                count: 3,
            },
        ),
    ];
    for (name, request) in &requests {
        write("sync_request", name, &request.to_bytes());
    }
    let responses = [
        (
            "status",
            SyncResponse::Status {
                genesis: genesis.compute_hash(),
                tip: block2.compute_hash(),
                height: builder.height(),
                total_work: {
                    let work = genesis.header.bits.to_target().expect("bits").work();
                    work.checked_add(work).expect("small")
                },
            },
        ),
        (
            "headers",
            SyncResponse::Headers(vec![block1.header, block2.header]),
        ),
        (
            "blocks",
            SyncResponse::Blocks(vec![block1.clone(), block2.clone()]),
        ),
        (
            "block-txs",
            SyncResponse::BlockTxs(block2.transactions[1..].to_vec()),
        ),
        (
            "pending",
            SyncResponse::Pending(block2.transactions[1..].to_vec()),
        ),
    ];
    for (name, response) in &responses {
        write("sync_response", name, &response.to_bytes());
    }

    // Gossip: messages a peer sends, and its answers.
    let full = |b: &Block| CompactBlock::full(b).to_bytes();
    let compact = |b: &Block| CompactBlock::new(b, 0x5eed).to_bytes();
    let answer = |r: SyncResponse| frame(kind::ANSWER, &r.to_bytes());
    let block_txs = SyncResponse::BlockTxs(vec![
        Transaction::Transfer(t0.clone()),
        Transaction::Transfer(t1.clone()),
    ]);
    let gossip: [(&str, Vec<Vec<u8>>); 6] = [
        ("full-block", vec![frame(kind::BLOCK, &full(&block1))]),
        (
            "two-blocks",
            vec![
                frame(kind::BLOCK, &full(&block1)),
                frame(kind::BLOCK, &full(&block2)),
            ],
        ),
        (
            "transfers-then-compact",
            vec![
                frame(kind::BLOCK, &compact(&block1)),
                frame(kind::TRANSFER, &tx(&t0)),
                frame(kind::TRANSFER, &tx(&t1)),
                frame(kind::BLOCK, &compact(&block2)),
            ],
        ),
        (
            "compact-fetches-transfers",
            vec![
                frame(kind::BLOCK, &compact(&block1)),
                frame(kind::BLOCK, &compact(&block2)),
                answer(block_txs),
            ],
        ),
        (
            "compact-fetches-block",
            vec![
                frame(kind::BLOCK, &compact(&block1)),
                frame(kind::BLOCK, &compact(&block2)),
                answer(SyncResponse::BlockTxs(Vec::new())),
                answer(SyncResponse::Blocks(vec![block2.clone()])),
            ],
        ),
        (
            "transfers-out-of-order",
            vec![
                frame(kind::TRANSFER, &tx(&t1)),
                frame(kind::TRANSFER, &tx(&t2)),
                frame(kind::TRANSFER, &tx(&t0)),
            ],
        ),
    ];
    for (name, frames) in &gossip {
        write("gossip", name, &frames.concat());
    }

    // The mempool file, as the node writes it at shutdown.
    let dir = oxchain_fuzz::tempdir();
    let chain = oxchain_fuzz::regtest_chain(&dir.path().join("chain"));
    for t in [&t0, &t1, &t2] {
        chain
            .view()
            .submit_transfer(t.clone())
            .expect("a seed transfer is taken");
    }
    oxchain_node::mempool_file::save(dir.path(), chain.view()).expect("the mempool is saved");
    let file = std::fs::read(dir.path().join(oxchain_node::mempool_file::FILE)).expect("read");
    write("mempool_file", "three-transfers", &file);
    write(
        "mempool_file",
        "empty",
        &file[..8].iter().chain(&[0; 4]).copied().collect::<Vec<_>>(),
    );

    // Key files: one the wallet writes (passphrase "fuzz", as the target opens it), and
    // the node's miner.key.
    // Also: the same file with cheap derivation parameters (fast to mutate; they are
    // authenticated, so it does not open), and a version 1 file.
    let wallet = oxchain_wallet::Wallet::new(dir.path().join("wallet"));
    let regtest = oxchain_wallet::KeyNetwork {
        network: oxchain_primitives::Network::Regtest,
        genesis: oxchain_consensus::ChainParams::regtest().genesis_hash(),
    };
    wallet
        .import("k", &[7; 32], "fuzz", regtest)
        .expect("the wallet writes a key");
    let key = std::fs::read(dir.path().join("wallet").join("k.key.json")).expect("read");
    write("key_files", "wallet-key", &key);
    let mut cheap: serde_json::Value = serde_json::from_slice(&key).expect("a key file is JSON");
    cheap["kdf"]["memory_kib"] = 8.into();
    cheap["kdf"]["passes"] = 1.into();
    write(
        "key_files",
        "wallet-key-cheap",
        cheap.to_string().as_bytes(),
    );
    write(
        "key_files",
        "wallet-key-v1",
        include_bytes!("../../crates/wallet/tests/fixtures/legacy-v1.key.json"),
    );
    oxchain_node::keys::miner_address(dir.path()).expect("the node writes miner.key");
    let miner = std::fs::read(dir.path().join("miner.key")).expect("read");
    write("key_files", "miner-key", &miner);

    // Config files.
    write(
        "config",
        "every-key",
        br#"network = "regtest"
data_dir = "/var/lib/oxchain"
api = "127.0.0.1:5000"
p2p = "0.0.0.0:6000"
peers = ["127.0.0.1:6001", "/ip4/10.0.0.2/tcp/6000", "http://127.0.0.1:5002"]
external_addresses = ["203.0.113.7:6000", "/dns/node.example/tcp/6000"]
mine = "pool:10"
miner_address = "savings"
threads = 4
cors_origins = ["http://localhost:3000"]
api_hosts = ["node.example"]
"#,
    );
    write(
        "config",
        "small",
        b"api = \"[::1]:5001\"\nmine = \"continuous\"\n",
    );

    // The API's bodies: the first byte picks the route and the content type, as
    // fuzz_targets/api_bodies.rs reads it (8 routes; content types: 0 JSON, 1 form,
    // 2 text/plain, 3 none).
    let pick = |route: u8, content_type: u8| content_type * 8 + route;
    let bob = dev_account_address("bob").to_bech32(Network::Regtest);
    let signed = transfer(&builder, "charlie", "dave", 3, 0);
    let bodies: Vec<(&str, u8, String)> = vec![
        (
            "transactions-new",
            pick(0, 0),
            r#"{"sender": "alice", "recipient": "bob", "amount": 5}"#.into(),
        ),
        (
            "transactions-new-address",
            pick(0, 0),
            format!(r#"{{"sender": "alice", "recipient": "{bob}", "amount": "0.00000001"}}"#),
        ),
        (
            "transactions-new-form",
            pick(0, 1),
            "sender=alice&recipient=bob&amount=1.5".into(),
        ),
        (
            "transaction",
            pick(1, 2),
            r#"{"sender": "bob", "receiver": "charlie", "amount": 1.5e-3}"#.into(),
        ),
        (
            "v1-transactions",
            pick(2, 0),
            serde_json::json!({
                "from": signed.from.to_string(),
                "to": signed.to.to_bech32(Network::Regtest),
                "amount": signed.amount.units(),
                "fee": signed.fee.units(),
                "nonce": signed.nonce,
                "data": "",
                "signature": signed.signature.to_string(),
            })
            .to_string(),
        ),
        ("v1-mine", pick(3, 0), r#"{"count": 2}"#.into()),
        ("v1-mine-empty", pick(3, 3), String::new()),
        (
            "v1-peers",
            pick(4, 0),
            r#"{"address": "http://127.0.0.1:5001"}"#.into(),
        ),
        (
            "nodes",
            pick(5, 0),
            r#"{"host": "127.0.0.1", "port": 5001}"#.into(),
        ),
        (
            "nodes-callback",
            pick(6, 1),
            "host=127.0.0.1&port=5001".into(),
        ),
        (
            "nodes-register",
            pick(7, 0),
            r#"{"nodes": ["http://127.0.0.1:5001", "127.0.0.1:5002"]}"#.into(),
        ),
    ];
    for (name, pick, body) in &bodies {
        assert!(body.len() < MAX_BODY_BYTES);
        let mut bytes = vec![*pick];
        bytes.extend_from_slice(body.as_bytes());
        write("api_bodies", name, &bytes);
    }
}
