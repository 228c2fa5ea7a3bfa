//! The nonce search alone, for `scripts/check-miner-asm.sh`: a small binary whose
//! disassembly holds the SHA-NI loop as the miner builds it, without building the whole
//! node for each set of compiler flags. Runs a short search and prints the hash count.

use std::sync::atomic::{AtomicU64, Ordering};

use oxchain_miner::Path;
use oxchain_miner::search::search;
use oxchain_miner::sha256::HeaderWork;
use oxchain_primitives::{BlockHash, CompactTarget, Header, MerkleRoot};

fn main() {
    let header = Header {
        version: 1,
        prev_hash: BlockHash([0x11; 32]),
        merkle_root: MerkleRoot([0x22; 32]),
        time_ms: 1_767_225_600_000,
        bits: CompactTarget(0x0101_0000),
        nonce: 0,
    };
    let Ok(target) = header.bits.to_target() else {
        eprintln!("bad bits");
        return;
    };
    let hashes = AtomicU64::new(0);
    let _ = search(
        Path::detect(),
        &HeaderWork::new(&header),
        &target,
        0..1 << 20,
        &hashes,
        &|| false,
    );
    println!(
        "{} hashes on {:?}",
        hashes.load(Ordering::Relaxed),
        Path::detect()
    );
}
