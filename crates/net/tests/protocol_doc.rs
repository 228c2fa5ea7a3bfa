//! The sync worked example in docs/protocol.md, recomputed with the crate's own
//! encoding: if the messages change, this fails until the document follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxchain_consensus::ChainParams;
use oxchain_net::message::{MAX_HEADERS, SyncRequest, SyncResponse};
use oxchain_primitives::{Address, Height, Work};

/// The hex of the code block that follows `marker` in the document.
fn block_after(doc: &str, marker: &str) -> String {
    let at = doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in the doc"));
    let rest = &doc[at..];
    let start = rest.find("```\n").expect("a code block") + 4;
    let end = start + rest[start..].find("```").expect("its end");
    rest[start..end].split_whitespace().collect()
}

#[test]
fn the_documented_sync_messages_are_what_the_code_sends() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol.md"
    ))
    .unwrap();
    let genesis = ChainParams::regtest().genesis_hash();
    assert_eq!(
        block_after(&doc, "A Status request (1 byte)"),
        hex::encode(SyncRequest::Status.to_bytes())
    );
    let get_headers = SyncRequest::GetHeaders {
        locator: vec![genesis],
        max: MAX_HEADERS as u16,
    };
    assert_eq!(
        block_after(&doc, "A GetHeaders request whose locator"),
        hex::encode(get_headers.to_bytes())
    );
    let mut two = [0u8; 32];
    two[31] = 2;
    let status = SyncResponse::Status {
        genesis,
        tip: genesis,
        height: Height(0),
        total_work: Work::from_be_bytes(two),
    };
    assert_eq!(
        block_after(&doc, "Its Status answer (105 bytes)"),
        hex::encode(status.to_bytes())
    );
    assert_eq!(
        hex::encode(SyncResponse::Headers(vec![]).to_bytes()),
        "0100"
    );
    let get_pending = SyncRequest::GetPending {
        sender: Address([0x11; 20]),
        from: 5,
        count: 3,
    };
    assert_eq!(
        block_after(&doc, "A GetPending request for the transfers"),
        hex::encode(get_pending.to_bytes())
    );
    assert!(doc.contains("answers `0400` (Pending tag, count 0)"));
    assert_eq!(
        hex::encode(SyncResponse::Pending(vec![]).to_bytes()),
        "0400"
    );
    // A count over 64 does not decode.
    let mut over = get_pending.to_bytes();
    over[29] = 65;
    assert!(SyncRequest::from_bytes(&over).is_err());
    // Each decodes back to itself.
    for bytes in [
        get_headers.to_bytes(),
        SyncRequest::Status.to_bytes(),
        get_pending.to_bytes(),
    ] {
        assert_eq!(SyncRequest::from_bytes(&bytes).unwrap().to_bytes(), bytes);
    }
    assert_eq!(
        SyncResponse::from_bytes(&status.to_bytes()).unwrap(),
        status
    );
}
