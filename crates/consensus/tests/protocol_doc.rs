//! The worked example in docs/protocol.md, recomputed: if the encoding changes, this
//! test fails until the document is updated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxchain_consensus::ChainParams;
use oxchain_consensus::genesis::{dev_account_address, dev_account_key};
use oxchain_primitives::encode::encode;
use oxchain_primitives::{Amount, Network, Signature, Transaction, Transfer};

/// Hex of `bytes`, wrapped at 64 characters per line as in the document.
fn wrapped_hex(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn example() -> Vec<(&'static str, String)> {
    let params = ChainParams::regtest();
    let genesis = params.genesis();
    let mut transfer = Transfer {
        from: dev_account_key("alice").public_key(),
        to: dev_account_address("bob"),
        amount: Amount::parse_coins("1.5").unwrap(),
        fee: Amount::from_units(1000),
        nonce: 0,
        data: b"hi".to_vec(),
        signature: Signature([0; 64]),
    };
    transfer.sign(&dev_account_key("alice"), &params.genesis_hash());
    let tx = Transaction::Transfer(transfer.clone());
    vec![
        (
            "regtest genesis header",
            wrapped_hex(&genesis.header.to_bytes()),
        ),
        ("regtest genesis hash", params.genesis_hash().to_string()),
        (
            "first genesis allocation",
            wrapped_hex(&encode(&genesis.transactions[0])),
        ),
        (
            "alice address",
            dev_account_address("alice").to_bech32(Network::Regtest),
        ),
        (
            "bob address",
            dev_account_address("bob").to_bech32(Network::Regtest),
        ),
        (
            "transfer signing hash",
            wrapped_hex(&transfer.signing_hash(&params.genesis_hash())),
        ),
        ("transfer", wrapped_hex(&encode(&tx))),
        ("transfer txid", tx.compute_txid().to_string()),
    ]
}

#[test]
fn protocol_doc_worked_example_is_current() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/protocol.md exists");
    let mut missing = Vec::new();
    for (what, hex) in example() {
        if !doc.contains(&hex) {
            missing.push(format!("{what}:\n{hex}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md is out of date; current values:\n\n{}",
        missing.join("\n\n")
    );
}

/// The genesis table: each network's row names its nonce, bits and hash, and the dev
/// accounts' rows their addresses.
#[test]
fn protocol_doc_genesis_table_is_current() {
    use oxchain_primitives::Network;
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/protocol.md exists");
    for network in [Network::Main, Network::Test, Network::Dev, Network::Regtest] {
        let params = ChainParams::for_network(network);
        let header = params.genesis().header;
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", network.name())))
            .unwrap_or_else(|| panic!("no genesis row for {network}"));
        for cell in [
            format!("| {} |", header.nonce),
            format!("| `{}` |", header.bits),
            format!("`{}`", params.genesis_hash()),
        ] {
            assert!(row.contains(&cell), "{network}: {cell} not in {row}");
        }
    }
    for name in oxchain_consensus::genesis::DEV_ACCOUNTS {
        let address = dev_account_address(name);
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row for {name}"));
        for cell in [
            address
                .0
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            address.to_bech32(Network::Dev),
            address.to_bech32(Network::Regtest),
        ] {
            assert!(row.contains(&cell), "{name}: {cell} not in {row}");
        }
    }
}
