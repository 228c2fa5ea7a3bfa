//! The difficulty schedule: ASERT (absolutely scheduled exponentially rising targets), in
//! integer arithmetic as in Bitcoin Cash's aserti3-2d, and the median time past.
//!
//! The schedule is anchored at the first block after genesis, not at genesis: genesis has
//! a fixed timestamp, and a network started months later would otherwise sit at the
//! easiest target until it had mined the months back (see docs/adr/0002).
//!
//! For a parent at height `h >= 1` and time `t`, with the anchor (height 1) at time `t1`:
//! `exponent = ((t - t1) - T * (h - 1)) * 2^16 / half_life` (floor division), and the next
//! target is `initial_target * 2^(exponent / 2^16)`, the fractional power of two taken from
//! a cubic approximation in fixed point. A chain ahead of schedule gets a lower (harder)
//! target, one behind gets a higher one, clamped to the network's limit.

use oxchain_primitives::{CompactTarget, Height, Target};
use ruint::Uint;
use ruint::aliases::U256;

use crate::params::{ChainParams, MEDIAN_TIME_SPAN};

type U512 = Uint<512, 8>;

/// The bits the block after `parent_height` must carry.
///
/// `anchor_time_ms` is the time of the block at height 1 on this branch; it is not read
/// when the parent is genesis (the next block is then the anchor and takes the initial
/// bits).
pub fn compute_next_bits(
    params: &ChainParams,
    parent_height: Height,
    parent_time_ms: u64,
    anchor_time_ms: u64,
) -> CompactTarget {
    if !params.retarget || parent_height.0 == 0 {
        return params.initial_bits;
    }
    let anchor_target = params
        .initial_bits
        .to_target()
        .expect("initial bits are a valid constant of every network");
    compute_asert_target(
        anchor_target,
        params.pow_limit,
        i128::from(parent_time_ms) - i128::from(anchor_time_ms),
        i128::from(parent_height.0 - 1),
        params.target_block_time_ms,
        params.asert_half_life_ms,
    )
    .to_compact()
}

/// The ASERT target for a parent `time_delta_ms` after the anchor and `height_delta`
/// blocks above it. Both deltas come from `u64` values, so the `i128` products below
/// cannot overflow.
fn compute_asert_target(
    anchor_target: Target,
    pow_limit: Target,
    time_delta_ms: i128,
    height_delta: i128,
    target_block_time_ms: u64,
    half_life_ms: u64,
) -> Target {
    let ideal = i128::from(target_block_time_ms) * height_delta;
    let exponent = ((time_delta_ms - ideal) * 65_536).div_euclid(i128::from(half_life_ms.max(1)));
    let shifts = exponent >> 16; // floor
    let frac = (exponent & 0xffff) as u128;
    // 2^(frac / 2^16) * 2^16, to within 0.013% (aserti3-2d's cubic).
    let factor: u128 = 65_536
        + ((195_766_423_245_049u128 * frac
            + 971_821_376u128 * frac * frac
            + 5_127u128 * frac * frac * frac
            + (1u128 << 47))
            >> 48);
    let mut next = U512::from(anchor_target.0) * U512::from(factor);
    if shifts < 0 {
        let right = usize::try_from(-shifts).unwrap_or(usize::MAX);
        next = if right >= 512 {
            U512::ZERO
        } else {
            next >> right
        };
    } else {
        let left = usize::try_from(shifts).unwrap_or(usize::MAX);
        // Anything shifted past 2^272 is far above every limit: clamp.
        next = if left >= 512 || next.bit_len() + left > 272 {
            return pow_limit;
        } else {
            next << left
        };
    }
    next >>= 16;
    if next.is_zero() {
        return Target(U256::from(1u8));
    }
    if next > U512::from(pow_limit.0) {
        return pow_limit;
    }
    Target(U256::from_limbs_slice(&next.as_limbs()[..4]))
}

/// The median of up to the last [`MEDIAN_TIME_SPAN`] block times (the parent's included).
/// A block's time must be strictly after it.
pub fn compute_median_time_past(recent_times_ms: &[u64]) -> u64 {
    let start = recent_times_ms.len().saturating_sub(MEDIAN_TIME_SPAN);
    let mut times = recent_times_ms[start..].to_vec();
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> ChainParams {
        ChainParams::dev()
    }

    fn target(bits: CompactTarget) -> U256 {
        bits.to_target().unwrap().0
    }

    #[test]
    fn on_schedule_keeps_the_initial_target() {
        let p = dev();
        let t = p.target_block_time_ms;
        assert_eq!(compute_next_bits(&p, Height(0), 0, 0), p.initial_bits);
        assert_eq!(
            compute_next_bits(&p, Height(1), 5_000, 5_000),
            p.initial_bits
        );
        assert_eq!(
            compute_next_bits(&p, Height(101), 5_000 + 100 * t, 5_000),
            p.initial_bits
        );
    }

    #[test]
    fn one_half_life_ahead_or_behind_halves_or_doubles() {
        let p = dev();
        let t = p.target_block_time_ms;
        let h = p.asert_half_life_ms;
        let initial = target(p.initial_bits);
        // 100 blocks in the time of 100 - h/t blocks: one half-life ahead: twice as hard.
        let ahead = compute_next_bits(&p, Height(101), 100 * t - h, 0);
        assert_eq!(target(ahead), initial >> 1);
        let behind = compute_next_bits(&p, Height(101), 100 * t + h, 0);
        assert_eq!(target(behind), initial << 1);
    }

    #[test]
    fn half_a_half_life_is_close_to_the_square_root_of_two() {
        let p = dev();
        let initial = target(p.initial_bits);
        let got = target(compute_next_bits(
            &p,
            Height(1),
            p.asert_half_life_ms / 2,
            0,
        ));
        // initial * sqrt(2) to within 0.02% (and the compact form's 16-bit precision).
        let expected = initial / U256::from(100_000_000u64) * U256::from(141_421_356u64);
        let diff = if got > expected {
            got - expected
        } else {
            expected - got
        };
        assert!(
            diff * U256::from(10_000u64) < expected * U256::from(2u8),
            "{got} vs {expected}"
        );
    }

    #[test]
    fn clamps_to_the_limit_and_to_one() {
        let p = dev();
        let far_behind = compute_next_bits(&p, Height(2), 1 << 50, 0);
        assert_eq!(far_behind, p.pow_limit.to_compact());
        let far_ahead = compute_asert_target(
            p.initial_bits.to_target().unwrap(),
            p.pow_limit,
            0,
            1 << 40,
            p.target_block_time_ms,
            p.asert_half_life_ms,
        );
        assert_eq!(far_ahead.0, U256::from(1u8));
    }

    #[test]
    fn a_parent_time_before_the_anchor_means_far_ahead() {
        let p = dev();
        let initial = target(p.initial_bits);
        // Parent time 1 s before block 1, ten blocks up: harder, and no panic.
        let bits = compute_next_bits(&p, Height(11), 1_000_000, 1_001_000);
        assert!(target(bits) < initial);
        let extreme = compute_next_bits(&p, Height(u64::MAX), 0, u64::MAX);
        assert_eq!(target(extreme), U256::from(1u8));
    }

    #[test]
    fn regtest_never_retargets() {
        let p = ChainParams::regtest();
        assert_eq!(
            compute_next_bits(&p, Height(500), 1, 1 << 40),
            p.initial_bits
        );
    }

    #[test]
    fn median_time_past_of_the_last_eleven() {
        assert_eq!(compute_median_time_past(&[]), 0);
        assert_eq!(compute_median_time_past(&[5]), 5);
        assert_eq!(compute_median_time_past(&[3, 1, 2]), 2);
        let times: Vec<u64> = (1..=20).collect();
        // The last eleven are 10..=20; their median is 15.
        assert_eq!(compute_median_time_past(&times), 15);
    }
}
