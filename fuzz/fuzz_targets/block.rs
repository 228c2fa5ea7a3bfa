//! Block decoding: bytes that decode as a block re-encode to the same bytes, and the
//! context-free checks run on it without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_consensus::validate::validate_block;
use oxchain_primitives::limits::HEADER_BYTES;
use oxchain_primitives::{Block, Encode, Header, decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(block) = decode::<Block>(data) else {
        return;
    };
    assert_eq!(
        encode(&block),
        data,
        "a decoded block re-encodes to its bytes"
    );
    assert_eq!(block.encoded_size(), data.len());
    assert_eq!(block.encoded_len(), data.len());
    // The header is the first 88 bytes, and the hash is taken over them.
    let header = decode::<Header>(&data[..HEADER_BYTES]).expect("a block's header decodes alone");
    assert_eq!(header, block.header);
    assert_eq!(block.compute_hash(), header.compute_hash());
    assert_eq!(
        block.compute_hash().0,
        oxchain_primitives::sha256d(&data[..HEADER_BYTES])
    );
    let txids = block.compute_txids();
    assert_eq!(txids.len(), block.transactions.len());
    if let Ok(checked) = validate_block(&block) {
        assert_eq!(checked, txids);
        assert_eq!(block.compute_merkle_root(), block.header.merkle_root);
    }
});
