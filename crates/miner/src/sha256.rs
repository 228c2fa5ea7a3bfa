//! The pieces of SHA-256 the nonce search needs: the initial state, the round constants,
//! the header's midstate and the padded words of the second block.
//!
//! A header is 88 bytes: the first 64 bytes are one SHA-256 block that never changes while
//! the nonce does, so its compression (the midstate) is computed once per template. Each
//! nonce then costs two compressions: the 24-byte tail padded to a block, and the 32-byte
//! first hash padded to a block.

use oxchain_primitives::Header;
use sha2::block_api::compress256;

/// SHA-256 initial state (FIPS 180-4, 5.3.3).
pub(crate) const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Bit length of the header, the last word of the first hash's second block.
pub(crate) const HEADER_BITS: u32 = 88 * 8;
/// Bit length of a digest, the last word of the second hash's only block.
pub(crate) const DIGEST_BITS: u32 = 32 * 8;

/// What a nonce search needs of a header: the midstate of its first 64 bytes and the
/// big-endian words of bytes 64..80 (end of the merkle root, time, bits). The nonce fills
/// bytes 80..88.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderWork {
    /// SHA-256 state after the first 64 header bytes.
    pub midstate: [u32; 8],
    /// Words 0..4 of the second block.
    pub tail: [u32; 4],
}

impl HeaderWork {
    /// The work for `header` (its nonce is ignored).
    pub fn new(header: &Header) -> HeaderWork {
        let bytes = header.to_bytes();
        let mut midstate = IV;
        let first: [u8; 64] = bytes[..64].try_into().expect("a header is 88 bytes");
        compress256(&mut midstate, &[first]);
        let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        HeaderWork {
            midstate,
            tail: [word(64), word(68), word(72), word(76)],
        }
    }

    /// The two message words of `nonce` (bytes 80..88, little-endian, read as big-endian
    /// words).
    pub fn nonce_words(nonce: u64) -> [u32; 2] {
        [
            (nonce as u32).swap_bytes(),
            ((nonce >> 32) as u32).swap_bytes(),
        ]
    }

    /// The 16 words of the second block for `nonce`, padding included.
    pub fn second_block(&self, nonce: u64) -> [u32; 16] {
        let [n0, n1] = Self::nonce_words(nonce);
        let t = self.tail;
        [
            t[0],
            t[1],
            t[2],
            t[3],
            n0,
            n1,
            0x8000_0000,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            HEADER_BITS,
        ]
    }

    /// The block hash for `nonce`, in the plain way: two compressions through the `sha2`
    /// crate. The portable path, and the reference the fast paths are tested against.
    pub fn compute_hash(&self, nonce: u64) -> [u8; 32] {
        let mut state = self.midstate;
        compress256(&mut state, &[words_to_block(&self.second_block(nonce))]);
        let mut second = [0u32; 16];
        second[..8].copy_from_slice(&state);
        second[8] = 0x8000_0000;
        second[15] = DIGEST_BITS;
        let mut out = IV;
        compress256(&mut out, &[words_to_block(&second)]);
        let mut hash = [0u8; 32];
        for (chunk, word) in hash.chunks_exact_mut(4).zip(out) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        hash
    }
}

fn words_to_block(words: &[u32; 16]) -> [u8; 64] {
    let mut block = [0u8; 64];
    for (chunk, word) in block.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxchain_primitives::{BlockHash, CompactTarget, Header, MerkleRoot};

    #[test]
    fn midstate_path_equals_the_plain_block_hash() {
        let mut header = Header {
            version: 1,
            prev_hash: BlockHash([3; 32]),
            merkle_root: MerkleRoot([0xab; 32]),
            time_ms: 1_767_225_600_123,
            bits: CompactTarget(0x1e04_0000),
            nonce: 0,
        };
        let work = HeaderWork::new(&header);
        for nonce in [0u64, 1, 0xdead_beef, u64::MAX, 1 << 40] {
            header.nonce = nonce;
            assert_eq!(
                work.compute_hash(nonce),
                header.compute_hash().0,
                "nonce {nonce}"
            );
        }
    }
}
