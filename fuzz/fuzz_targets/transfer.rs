//! Transfer decoding, as the transfers topic and the mempool file take a transfer: bytes
//! that decode as one re-encode to the same bytes, its txid is the hash of exactly those
//! bytes (the node takes a gossiped transfer's txid from the message), and its signature
//! check gives the same answer alone and in a batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_consensus::signatures::{KeyCache, verify_batch, verify_transfer};
use oxchain_consensus::validate::validate_transfer;
use oxchain_primitives::{Transaction, Txid, decode, encode, sha256d};

fuzz_target!(|data: &[u8]| {
    let Ok(Transaction::Transfer(transfer)) = decode::<Transaction>(data) else {
        return;
    };
    let tx = Transaction::Transfer(transfer.clone());
    assert_eq!(
        encode(&tx),
        data,
        "a decoded transfer re-encodes to its bytes"
    );
    assert_eq!(tx.encoded_len(), data.len());
    let txid = tx.compute_txid();
    assert_eq!(txid, Txid(sha256d(data)));
    let _ = transfer.sender();
    let _ = validate_transfer(&transfer, txid);
    let genesis = oxchain_fuzz::params().genesis_hash();
    let alone = verify_transfer(&mut KeyCache::new(4), &genesis, &transfer, txid).is_ok();
    let item = (
        transfer.from.0,
        transfer.signature.0,
        transfer.signing_hash(&genesis),
    );
    let batch = verify_batch(&mut KeyCache::new(4), &[item]).is_ok();
    assert_eq!(alone, batch, "one signature, checked alone and in a batch");
});
