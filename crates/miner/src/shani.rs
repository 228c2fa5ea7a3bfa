//! SHA-256d nonce search with the x86-64 SHA extensions (SHA-NI), several nonces at once.
//!
//! One SHA-256 compression is a chain of 32 `sha256rnds2` instructions, each waiting on
//! the one before: a single stream leaves the SHA unit idle most of each instruction's
//! latency. Hashing `LANES` independent nonces in one loop body, round by round, gives the
//! CPU that many chains to overlap.
//!
//! Only SSE-encoded (128-bit) instructions belong in this loop. On CPUs that run legacy-SSE
//! SHA instructions next to dirty upper YMM state, one 256-bit instruction in the loop
//! makes every SHA instruction about 100x slower (LLVM issue 142368). Everything here uses
//! explicit 128-bit intrinsics and no slice or array code the compiler could widen;
//! `scripts/check-miner-asm.sh` checks the compiled loop for `ymm` registers.
//!
//! State layout follows the SHA extensions: `abef` holds words (a, b, e, f) in lanes
//! (3, 2, 1, 0), `cdgh` holds (c, d, g, h).

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_extract_epi32, _mm_set_epi32,
    _mm_setzero_si128, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32,
    _mm_shuffle_epi32,
};

use crate::sha256::{DIGEST_BITS, HEADER_BITS, HeaderWork, IV, K};

/// Nonces hashed together. Measured on this project's machine (AMD EPYC, one thread, MH/s,
/// `oxchain bench mine --threads 1`): 3 lanes 25.5, 4 lanes 26.5, 5 lanes 26.4, 6 lanes
/// 21.3 (register spills). See docs/benchmarks.md.
pub(crate) const LANES: usize = 4;

/// Proof that this CPU has the instructions this module needs: only [`ShaNi::detect`]
/// makes one, so its safe methods may call the `unsafe` target-feature functions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShaNi(());

impl ShaNi {
    /// `Some` when the CPU has SHA, SSSE3 and SSE4.1 (detected at run time, cached by std).
    pub(crate) fn detect() -> Option<ShaNi> {
        let ok = std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3");
        ok.then_some(ShaNi(()))
    }

    /// See [`hash_words`].
    #[inline]
    pub(crate) fn hash_words(self, work: &HeaderWork, first: u64) -> [u32; LANES] {
        // SAFETY: `self` exists only when the CPU has the features `hash_words` enables.
        unsafe { hash_words(work, first) }
    }

    /// See [`compress`].
    #[cfg(test)]
    pub(crate) fn compress(self, state: &mut [u32; 8], block: &[u32; 16]) {
        // SAFETY: as above.
        unsafe { compress(state, block) }
    }
}

/// A vector of four words, `w[0]` in lane 0.
#[inline(always)]
fn words(w: [u32; 4]) -> __m128i {
    // SAFETY: SSE2 is part of the x86-64 baseline.
    unsafe { _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32) }
}

/// The state (a..h) in the SHA-extension layout: (abef, cdgh).
#[inline(always)]
fn pack_state(s: &[u32; 8]) -> (__m128i, __m128i) {
    (
        words([s[5], s[4], s[1], s[0]]),
        words([s[7], s[6], s[3], s[2]]),
    )
}

/// Four rounds (group `g` of 16) on every lane, computing the group's schedule words
/// first when `g >= 4`. A macro, so that `g` is a constant in each copy: the schedule
/// indices fold and the 16 groups unroll into straight-line code with no array indexing
/// the compiler would have to keep in memory.
macro_rules! group {
    ($g:expr, $abef:ident, $cdgh:ident, $w:ident) => {{
        const G: usize = $g;
        if G >= 4 {
            for l in 0..LANES {
                // w[g] = msg2(msg1(w[g-4], w[g-3]) + words 9..12 of the window, w[g-1])
                let (a, b, c, d) = (
                    $w[l][G % 4],
                    $w[l][(G + 1) % 4],
                    $w[l][(G + 2) % 4],
                    $w[l][(G + 3) % 4],
                );
                let t = _mm_add_epi32(_mm_sha256msg1_epu32(a, b), _mm_alignr_epi8::<4>(d, c));
                $w[l][G % 4] = _mm_sha256msg2_epu32(t, d);
            }
        }
        let k = words([K[4 * G], K[4 * G + 1], K[4 * G + 2], K[4 * G + 3]]);
        for l in 0..LANES {
            let wk = _mm_add_epi32($w[l][G % 4], k);
            $cdgh[l] = _mm_sha256rnds2_epu32($cdgh[l], $abef[l], wk);
            $abef[l] = _mm_sha256rnds2_epu32($abef[l], $cdgh[l], _mm_shuffle_epi32::<0x0E>(wk));
        }
    }};
}

/// 64 rounds on `LANES` states with message schedules `w` (16 words each, as four vectors
/// of four words). The schedule is rewritten in place as rounds go.
#[inline(always)]
unsafe fn rounds(
    abef: &mut [__m128i; LANES],
    cdgh: &mut [__m128i; LANES],
    w: &mut [[__m128i; 4]; LANES],
) {
    // SAFETY (whole function): the caller has checked for SHA, SSSE3 and SSE4.1.
    unsafe {
        group!(0, abef, cdgh, w);
        group!(1, abef, cdgh, w);
        group!(2, abef, cdgh, w);
        group!(3, abef, cdgh, w);
        group!(4, abef, cdgh, w);
        group!(5, abef, cdgh, w);
        group!(6, abef, cdgh, w);
        group!(7, abef, cdgh, w);
        group!(8, abef, cdgh, w);
        group!(9, abef, cdgh, w);
        group!(10, abef, cdgh, w);
        group!(11, abef, cdgh, w);
        group!(12, abef, cdgh, w);
        group!(13, abef, cdgh, w);
        group!(14, abef, cdgh, w);
        group!(15, abef, cdgh, w);
    }
}

/// Converts a state back from (abef, cdgh) to message vectors (a, b, c, d), (e, f, g, h).
#[inline(always)]
unsafe fn unpack(abef: __m128i, cdgh: __m128i) -> (__m128i, __m128i) {
    // SAFETY: SSE4.1 and SSE2, checked by the caller.
    unsafe {
        let feba = _mm_shuffle_epi32::<0x1B>(abef); // lanes f e b a -> a b e f reversed
        let dchg = _mm_shuffle_epi32::<0xB1>(cdgh);
        let abcd = _mm_blend_epi16::<0xF0>(feba, dchg);
        let efgh = _mm_alignr_epi8::<8>(dchg, feba);
        (abcd, efgh)
    }
}

/// The first big-endian word of the block hash of the `LANES` consecutive nonces from
/// `first`: enough to tell whether a hash can meet a target.
///
/// # Safety
/// The CPU must have SHA, SSSE3 and SSE4.1 ([`ShaNi::detect`]).
// Never inlined, so that scripts/check-miner-asm.sh finds the loop under this symbol in
// every build (a call per four nonces costs nothing measurable).
#[inline(never)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn hash_words(work: &HeaderWork, first: u64) -> [u32; LANES] {
    let (mid_abef, mid_cdgh) = pack_state(&work.midstate);
    let (iv_abef, iv_cdgh) = pack_state(&IV);
    let t = work.tail;
    let head = words(t);
    let zero = _mm_setzero_si128();
    let mut abef = [mid_abef; LANES];
    let mut cdgh = [mid_cdgh; LANES];
    let mut w = [[head, zero, zero, words([0, 0, 0, HEADER_BITS])]; LANES];
    for (l, lane) in w.iter_mut().enumerate() {
        let [n0, n1] = HeaderWork::nonce_words(first + l as u64);
        lane[1] = words([n0, n1, 0x8000_0000, 0]);
    }
    // SAFETY: this function's target features are the ones `rounds` needs.
    unsafe { rounds(&mut abef, &mut cdgh, &mut w) };
    // Second hash: the first hash's eight words, then padding for 256 bits.
    let pad = words([0x8000_0000, 0, 0, 0]);
    let len = words([0, 0, 0, DIGEST_BITS]);
    for l in 0..LANES {
        let a = _mm_add_epi32(abef[l], mid_abef);
        let c = _mm_add_epi32(cdgh[l], mid_cdgh);
        // SAFETY: as above.
        let (abcd, efgh) = unsafe { unpack(a, c) };
        w[l] = [abcd, efgh, pad, len];
        abef[l] = iv_abef;
        cdgh[l] = iv_cdgh;
    }
    // SAFETY: as above.
    unsafe { rounds(&mut abef, &mut cdgh, &mut w) };
    let mut out = [0u32; LANES];
    for l in 0..LANES {
        // Word a sits in lane 3 of abef.
        out[l] = _mm_extract_epi32::<3>(_mm_add_epi32(abef[l], iv_abef)) as u32;
    }
    out
}

/// The whole hash of one nonce through this path, for tests against the portable one.
///
/// # Safety
/// As [`hash_words`].
#[cfg(test)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn compress(state: &mut [u32; 8], block: &[u32; 16]) {
    let (a, c) = pack_state(state);
    let mut abef = [a; LANES];
    let mut cdgh = [c; LANES];
    let w4 = |i: usize| words([block[i], block[i + 1], block[i + 2], block[i + 3]]);
    let mut w = [[w4(0), w4(4), w4(8), w4(12)]; LANES];
    // SAFETY: same target features.
    unsafe { rounds(&mut abef, &mut cdgh, &mut w) };
    let (abcd, efgh) = unsafe { unpack(_mm_add_epi32(abef[0], a), _mm_add_epi32(cdgh[0], c)) };
    let out = [
        _mm_extract_epi32::<0>(abcd) as u32,
        _mm_extract_epi32::<1>(abcd) as u32,
        _mm_extract_epi32::<2>(abcd) as u32,
        _mm_extract_epi32::<3>(abcd) as u32,
        _mm_extract_epi32::<0>(efgh) as u32,
        _mm_extract_epi32::<1>(efgh) as u32,
        _mm_extract_epi32::<2>(efgh) as u32,
        _mm_extract_epi32::<3>(efgh) as u32,
    ];
    *state = out;
}
