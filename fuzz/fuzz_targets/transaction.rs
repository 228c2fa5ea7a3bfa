//! Transaction decoding (a coinbase or a transfer, as blocks and sync answers carry
//! them): bytes that decode re-encode to the same bytes, and the txid is their hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_primitives::{Encode, Transaction, Txid, decode, encode, sha256d};

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = decode::<Transaction>(data) else {
        return;
    };
    assert_eq!(
        encode(&tx),
        data,
        "a decoded transaction re-encodes to its bytes"
    );
    assert_eq!(tx.encoded_size(), data.len());
    assert_eq!(tx.compute_txid(), Txid(sha256d(data)));
});
