//! What the fuzz targets share: a fresh regtest chain on disk, the clock they run at, and
//! the framing of inputs that carry several messages (the gossip target's).
//!
//! Each target is one file in `fuzz_targets/`; `examples/seed.rs` writes their seed
//! corpus (`scripts/fuzz --seed`) from real encodings.

use std::path::Path;

use oxchain_chain::{Chain, MempoolLimits, SharedChain};
use oxchain_consensus::ChainParams;
use oxchain_storage::Store;

/// The regtest chain's parameters.
pub fn params() -> ChainParams {
    ChainParams::regtest()
}

/// The clock every target runs at: an hour after the regtest genesis, so that blocks
/// built on it (a second apart) are in the past and none is "from the future" unless
/// its time says so.
pub fn now_ms() -> u64 {
    params().genesis().header.time_ms + 3_600_000
}

/// A temporary directory, in memory (`/dev/shm`) when the machine has one: a store is
/// made per input, and its fsyncs cost nothing there.
pub fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("oxchain-fuzz")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// A regtest chain holding only genesis, in `dir`, as the node builds it.
pub fn regtest_chain(dir: &Path) -> SharedChain {
    std::fs::create_dir_all(dir).expect("the chain's directory is made");
    let store = Store::open(dir, &params()).expect("a new store opens");
    let chain =
        Chain::new(params(), store, MempoolLimits::default(), 1).expect("a new chain starts");
    SharedChain::new(chain)
}

/// The frame kinds of a multi-message input.
pub mod kind {
    /// A message on the blocks topic (a compact block).
    pub const BLOCK: u8 = 0;
    /// A message on the transfers topic (a transfer).
    pub const TRANSFER: u8 = 1;
    /// The sender's answer to the node's next request (a sync response on the wire).
    pub const ANSWER: u8 = 2;
}

/// Splits an input into frames: a kind byte, a u32 length (little-endian), that many
/// bytes (the last frame takes what is left when the input is shorter). At most `max`.
pub fn frames(mut data: &[u8], max: usize) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while out.len() < max && data.len() >= 5 {
        let kind = data[0];
        let len = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) as usize;
        let rest = &data[5..];
        let len = len.min(rest.len());
        out.push((kind, &rest[..len]));
        data = &rest[len..];
    }
    out
}

/// One frame, as [`frames`] reads it.
pub fn frame(kind: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}
