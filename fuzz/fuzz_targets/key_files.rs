//! The key file readers: a wallet key file (`oxchain_wallet`: `NAME.key.json`, read by
//! `oxchain wallet show|list|export` and `oxchain send`) and the node's `miner.key`
//! (`oxchain_node::keys::miner_address`). The input is the file.
//!
//! Checked: `show` and `list` agree; a key that opens (`export` with the passphrase the
//! seeds use) is the key the file names; `miner.key` gives the address of its 64 hex
//! digits or an error, and is never rewritten.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_primitives::{Address, SecretKey};
use oxchain_wallet::Wallet;

/// The passphrase of the seed key files (`examples/seed.rs`).
const PASSPHRASE: &str = "fuzz";

fuzz_target!(|data: &[u8]| {
    let dir = oxchain_fuzz::tempdir();
    let keys = dir.path().join("wallet");
    std::fs::create_dir(&keys).expect("the wallet directory is made");
    std::fs::write(keys.join("k.key.json"), data).expect("the key file is written");
    let wallet = Wallet::new(&keys);
    let shown = wallet.show("k");
    let listed = wallet.list();
    match &shown {
        Ok(info) => {
            assert_eq!(info.address, Address::from_public_key(&info.public_key));
            assert_eq!(listed.as_ref().ok(), Some(&vec![info.clone()]));
        }
        Err(_) => assert!(listed.is_err(), "list reads the file show refuses"),
    }
    if let Ok(seed) = wallet.export("k", PASSPHRASE) {
        let info = shown.as_ref().expect("a key that opens shows");
        assert_eq!(SecretKey::from_seed(*seed).public_key(), info.public_key);
    }

    let miner_key = dir.path().join("miner.key");
    std::fs::write(&miner_key, data).expect("miner.key is written");
    let seed = std::str::from_utf8(data)
        .ok()
        .and_then(|text| oxchain_wallet::parse_seed(text).ok());
    match oxchain_node::keys::miner_address(dir.path()) {
        Ok(address) => {
            let seed = seed.expect("miner.key read as a key holds 64 hex digits");
            let key = SecretKey::from_seed(*seed).public_key();
            assert_eq!(address, Address::from_public_key(&key));
        }
        Err(_) => assert!(seed.is_none(), "64 hex digits are refused as miner.key"),
    }
    assert_eq!(std::fs::read(&miner_key).expect("miner.key is kept"), data);
});
