//! Sync request decoding (what a peer asks us): bytes that decode re-encode to the same
//! bytes, within the wire's cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_net::message::{MAX_REQUEST_BYTES, SyncRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = SyncRequest::from_bytes(data) else {
        return;
    };
    let bytes = request.to_bytes();
    assert_eq!(
        bytes, data,
        "a decoded request re-encodes to its bytes: {request:?}"
    );
    assert!(
        bytes.len() <= MAX_REQUEST_BYTES,
        "every request that decodes fits the cap"
    );
    assert_eq!(SyncRequest::from_bytes(&bytes), Ok(request));
});
