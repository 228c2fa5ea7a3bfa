//! Sync response decoding (what a peer answers us): bytes that decode re-encode to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_net::message::SyncResponse;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = SyncResponse::from_bytes(data) else {
        return;
    };
    let bytes = response.to_bytes();
    assert_eq!(bytes, data, "a decoded response re-encodes to its bytes");
    assert_eq!(SyncResponse::from_bytes(&bytes), Ok(response));
});
