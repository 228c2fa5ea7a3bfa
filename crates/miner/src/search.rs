//! The nonce search over one header: the fastest path this CPU has, the same answer on
//! every path.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use oxchain_primitives::{BlockHash, Target};

use crate::sha256::HeaderWork;

/// How many nonces a search does between looks at its cancel token and hash counter:
/// about 0.4 ms at 20 MH/s, far inside the 50 ms a new tip may wait.
pub const CHECK_EVERY: u64 = 8192;

/// Which implementation hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// x86-64 SHA extensions, several nonces interleaved.
    ShaNi,
    /// The `sha2` crate, one nonce at a time (it uses SHA-NI itself when present).
    Portable,
}

impl Path {
    /// The fastest path this CPU supports, detected at run time.
    pub fn detect() -> Path {
        #[cfg(target_arch = "x86_64")]
        if crate::shani::ShaNi::detect().is_some() {
            return Path::ShaNi;
        }
        Path::Portable
    }
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOutcome {
    /// This nonce gives a hash at or below the target.
    Found {
        /// The nonce.
        nonce: u64,
        /// The block hash it gives.
        hash: BlockHash,
    },
    /// No nonce in the range meets the target.
    Exhausted,
    /// `stop` said so.
    Stopped,
}

/// Searches `nonces` for a hash at or below `target`. Every [`CHECK_EVERY`] nonces it adds
/// to `hashes` and asks `stop` whether to give up.
pub fn search(
    path: Path,
    work: &HeaderWork,
    target: &Target,
    nonces: Range<u64>,
    hashes: &AtomicU64,
    stop: &dyn Fn() -> bool,
) -> SearchOutcome {
    // A hash can only meet the target if its first word is at most the target's.
    let target_bytes = target.to_be_bytes();
    let top = u32::from_be_bytes([
        target_bytes[0],
        target_bytes[1],
        target_bytes[2],
        target_bytes[3],
    ]);
    let check = |nonce: u64| -> Option<SearchOutcome> {
        let hash = BlockHash(work.compute_hash(nonce));
        target
            .is_met_by(&hash)
            .then_some(SearchOutcome::Found { nonce, hash })
    };
    #[cfg(target_arch = "x86_64")]
    let shani = match path {
        Path::ShaNi => crate::shani::ShaNi::detect(),
        Path::Portable => None,
    };
    let mut start = nonces.start;
    while start < nonces.end {
        if stop() {
            return SearchOutcome::Stopped;
        }
        let end = nonces.end.min(start.saturating_add(CHECK_EVERY));
        #[cfg(target_arch = "x86_64")]
        let found = match shani {
            Some(shani) => search_shani(shani, work, top, start..end, &check),
            None => (start..end).find_map(check),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let found = (start..end).find_map(check);
        hashes.fetch_add(end - start, Ordering::Relaxed);
        if let Some(outcome) = found {
            return outcome;
        }
        start = end;
    }
    SearchOutcome::Exhausted
}

#[cfg(target_arch = "x86_64")]
fn search_shani(
    shani: crate::shani::ShaNi,
    work: &HeaderWork,
    top: u32,
    nonces: Range<u64>,
    check: &dyn Fn(u64) -> Option<SearchOutcome>,
) -> Option<SearchOutcome> {
    let lanes = crate::shani::LANES as u64;
    let mut n = nonces.start;
    while n + lanes <= nonces.end {
        let first_words = shani.hash_words(work, n);
        for (l, word) in first_words.into_iter().enumerate() {
            if word <= top
                && let Some(found) = check(n + l as u64)
            {
                return Some(found);
            }
        }
        n += lanes;
    }
    (n..nonces.end).find_map(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxchain_primitives::{BlockHash, CompactTarget, Header, MerkleRoot};
    use proptest::prelude::*;

    fn header(seed: u8, time_ms: u64) -> Header {
        Header {
            version: 1,
            prev_hash: BlockHash([seed; 32]),
            merkle_root: MerkleRoot([seed.wrapping_mul(7); 32]),
            time_ms,
            bits: CompactTarget(0x207f_ffff),
            nonce: 0,
        }
    }

    #[test]
    fn both_paths_find_the_same_first_nonce() {
        // A target that about one hash in 4096 meets.
        let target = CompactTarget(0x1f0f_ffff).to_target().unwrap();
        for seed in 0..4u8 {
            let work = HeaderWork::new(&header(seed, 1_767_225_600_000));
            let counter = AtomicU64::new(0);
            let portable = search(
                Path::Portable,
                &work,
                &target,
                0..200_000,
                &counter,
                &|| false,
            );
            let fast = search(
                Path::detect(),
                &work,
                &target,
                0..200_000,
                &counter,
                &|| false,
            );
            assert_eq!(portable, fast);
            let SearchOutcome::Found { nonce, hash } = fast else {
                panic!("no nonce found")
            };
            let mut h = header(seed, 1_767_225_600_000);
            h.nonce = nonce;
            assert_eq!(h.compute_hash(), hash);
            assert!(target.is_met_by(&hash));
        }
    }

    #[test]
    fn stops_when_told_and_counts_hashes() {
        // A target of 1: no hash will meet it.
        let target = CompactTarget(0x0101_0000).to_target().unwrap();
        let work = HeaderWork::new(&header(9, 1));
        let counter = AtomicU64::new(0);
        let calls = std::cell::Cell::new(0);
        let outcome = search(
            Path::detect(),
            &work,
            &target,
            0..u64::MAX,
            &counter,
            &|| {
                calls.set(calls.get() + 1);
                calls.get() > 3
            },
        );
        assert_eq!(outcome, SearchOutcome::Stopped);
        assert_eq!(counter.load(Ordering::Relaxed), 3 * CHECK_EVERY);
        let exhausted = search(Path::detect(), &work, &target, 10..1000, &counter, &|| {
            false
        });
        assert_eq!(exhausted, SearchOutcome::Exhausted);
    }

    #[cfg(target_arch = "x86_64")]
    proptest! {
        #[test]
        fn shani_first_words_match_the_portable_hash(
            seed in any::<u8>(),
            time_ms in any::<u64>(),
            bits in any::<u32>(),
            nonce in any::<u64>(),
        ) {
            let Some(shani) = crate::shani::ShaNi::detect() else { return Ok(()) };
            let mut h = header(seed, time_ms);
            h.bits = CompactTarget(bits);
            let work = HeaderWork::new(&h);
            let nonce = nonce.min(u64::MAX - crate::shani::LANES as u64);
            let words = shani.hash_words(&work, nonce);
            for (l, word) in words.into_iter().enumerate() {
                let full = work.compute_hash(nonce + l as u64);
                prop_assert_eq!(word, u32::from_be_bytes(full[..4].try_into().unwrap()));
            }
        }

        #[test]
        fn shani_compression_matches_sha2(state in any::<[u32; 8]>(), block in any::<[u32; 16]>()) {
            let Some(shani) = crate::shani::ShaNi::detect() else { return Ok(()) };
            let mut ours = state;
            shani.compress(&mut ours, &block);
            let mut reference = state;
            let mut bytes = [0u8; 64];
            for (c, w) in bytes.chunks_exact_mut(4).zip(block) {
                c.copy_from_slice(&w.to_be_bytes());
            }
            sha2::block_api::compress256(&mut reference, &[bytes]);
            prop_assert_eq!(ours, reference);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn shani_compression_gives_the_fips_180_4_digests() {
        let Some(shani) = crate::shani::ShaNi::detect() else {
            return;
        };
        // "abc" and the two-block 448-bit message, FIPS 180-4 / NIST examples.
        let cases: [(&[u8], &str); 2] = [
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for (message, expected) in cases {
            let mut padded = message.to_vec();
            padded.push(0x80);
            while padded.len() % 64 != 56 {
                padded.push(0);
            }
            padded.extend_from_slice(&((message.len() as u64) * 8).to_be_bytes());
            let mut state = crate::sha256::IV;
            for block in padded.chunks_exact(64) {
                let mut words = [0u32; 16];
                for (w, c) in words.iter_mut().zip(block.chunks_exact(4)) {
                    *w = u32::from_be_bytes(c.try_into().unwrap());
                }
                shani.compress(&mut state, &words);
            }
            let hex: String = state.iter().map(|w| format!("{w:08x}")).collect();
            assert_eq!(hex, expected);
        }
    }
}
