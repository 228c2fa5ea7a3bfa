//! Proof-of-work targets.
//!
//! A header carries its target in compact form ([`CompactTarget`], Bitcoin's `nBits`: one
//! exponent byte and a 23-bit mantissa). A block hash meets the target when the hash, read
//! as a big-endian 256-bit integer, is at most the target. The [`Work`] of a block is
//! 2^256 / (target + 1), the expected number of hashes it took.

use std::fmt;

use ruint::aliases::U256;

use crate::hash::BlockHash;

/// A target in the compact form stored in headers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CompactTarget(pub u32);

/// A 256-bit target: the largest block hash that meets it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Target(pub U256);

/// Expected hashes to find a block (or a chain of blocks: work adds up).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Work(pub U256);

/// Compact bits that do not name a usable target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The sign bit of the mantissa is set.
    #[error("compact target {0:#010x} is negative")]
    Negative(u32),
    /// The value does not fit in 256 bits.
    #[error("compact target {0:#010x} overflows 256 bits")]
    Overflow(u32),
    /// The target is zero, which no hash can meet.
    #[error("compact target {0:#010x} is zero")]
    Zero(u32),
}

impl CompactTarget {
    /// The target these bits encode.
    pub fn to_target(self) -> Result<Target, TargetError> {
        let bits = self.0;
        let size = bits >> 24;
        let mut word = bits & 0x007f_ffff;
        if word != 0 && bits & 0x0080_0000 != 0 {
            return Err(TargetError::Negative(bits));
        }
        if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
            return Err(TargetError::Overflow(bits));
        }
        let value = if size <= 3 {
            word >>= 8 * (3 - size);
            U256::from(word)
        } else {
            U256::from(word) << (8 * (size as usize - 3))
        };
        if value.is_zero() {
            return Err(TargetError::Zero(bits));
        }
        Ok(Target(value))
    }
}

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:#010x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl Target {
    /// The canonical compact form. Precision below the top 23 bits is dropped (rounded
    /// down), so `to_compact` then `to_target` gives a target at most this one.
    pub fn to_compact(self) -> CompactTarget {
        let value = self.0;
        let mut size = value.bit_len().div_ceil(8) as u32;
        let mut compact: u32 = if size <= 3 {
            let low = value.as_limbs()[0] as u32;
            low << (8 * (3 - size))
        } else {
            let shifted = value >> (8 * (size as usize - 3));
            shifted.as_limbs()[0] as u32
        };
        // The mantissa's top bit is a sign bit: keep it clear by moving up one byte.
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget(compact | (size << 24))
    }

    /// Whether `hash`, read as a big-endian integer, is at most this target.
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        U256::from_be_bytes(hash.0) <= self.0
    }

    /// The work of a block with this target: 2^256 / (target + 1), computed as
    /// (!target / (target + 1)) + 1 so that nothing overflows.
    pub fn work(&self) -> Work {
        let t = self.0;
        if t == U256::MAX {
            return Work(U256::from(1u8));
        }
        Work((!t / (t + U256::from(1u8))) + U256::from(1u8))
    }

    /// The target as 32 big-endian bytes.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", hex::encode(self.to_be_bytes()))
    }
}

impl Work {
    /// No work.
    pub const ZERO: Work = Work(U256::ZERO);

    /// `self + rhs`, or `None` if it overflows 256 bits (which no real chain reaches).
    pub fn checked_add(self, rhs: Work) -> Option<Work> {
        self.0.checked_add(rhs.0).map(Work)
    }

    /// The work as 32 big-endian bytes (as stored, so byte order is numeric order).
    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// The work from 32 big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 32]) -> Work {
        Work(U256::from_be_bytes(bytes))
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Work({})", self.0)
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bitcoin_genesis_bits_decode() {
        let t = CompactTarget(0x1d00ffff).to_target().unwrap();
        assert_eq!(t.0, U256::from(0xffffu32) << 208);
        assert_eq!(t.to_compact(), CompactTarget(0x1d00ffff));
        // Bitcoin's genesis work is 0x100010001.
        assert_eq!(t.work().0, U256::from(0x1_0001_0001u64));
    }

    #[test]
    fn rejects_negative_overflowing_and_zero_bits() {
        assert_eq!(
            CompactTarget(0x04923456).to_target(),
            Err(TargetError::Negative(0x04923456))
        );
        assert_eq!(
            CompactTarget(0xff123456).to_target(),
            Err(TargetError::Overflow(0xff123456))
        );
        assert_eq!(
            CompactTarget(0x21010000).to_target(),
            Err(TargetError::Overflow(0x21010000))
        );
        assert_eq!(
            CompactTarget(0x01003456).to_target(),
            Err(TargetError::Zero(0x01003456))
        );
        assert_eq!(CompactTarget(0).to_target(), Err(TargetError::Zero(0)));
    }

    #[test]
    fn small_values_round_trip() {
        assert_eq!(
            CompactTarget(0x01120000).to_target().unwrap().0,
            U256::from(0x12u8)
        );
        assert_eq!(
            Target(U256::from(0x12u8)).to_compact(),
            CompactTarget(0x01120000)
        );
        assert_eq!(
            Target(U256::from(0x80u8)).to_compact(),
            CompactTarget(0x02008000)
        );
        assert_eq!(Target(U256::MAX).work().0, U256::from(1u8));
    }

    #[test]
    fn hash_meets_target_as_big_endian_integer() {
        let target = Target(U256::from(1u8) << 248); // 0x01 followed by 31 zero bytes
        let mut h = [0u8; 32];
        h[0] = 0x01;
        assert!(target.is_met_by(&BlockHash(h)));
        h[31] = 1;
        assert!(!target.is_met_by(&BlockHash(h)));
        h[0] = 0;
        h[31] = 0xff;
        assert!(target.is_met_by(&BlockHash(h)));
    }

    proptest! {
        #[test]
        fn compact_round_trip_rounds_down(limbs in any::<[u64; 4]>()) {
            let t = Target(U256::from_limbs(limbs));
            prop_assume!(!t.0.is_zero());
            let back = t.to_compact().to_target().unwrap();
            prop_assert!(back <= t);
            // Only bits below the 23-bit mantissa are lost.
            prop_assert!(t.0 - back.0 < (U256::from(1u8) << t.0.bit_len().saturating_sub(16)));
            prop_assert_eq!(back.to_compact(), t.to_compact());
        }

        #[test]
        fn work_is_two_to_256_over_target_plus_one(limbs in any::<[u64; 4]>()) {
            let t = U256::from_limbs(limbs);
            prop_assume!(t < U256::MAX);
            let w = Target(t).work().0;
            // w = floor(2^256 / (t + 1)): w * (t+1) <= 2^256 < (w+1) * (t+1).
            let t1 = ruint::Uint::<512, 8>::from(t) + ruint::Uint::<512, 8>::from(1u8);
            let w = ruint::Uint::<512, 8>::from(w);
            let two256 = ruint::Uint::<512, 8>::from(1u8) << 256;
            prop_assert!(w * t1 <= two256);
            prop_assert!((w + ruint::Uint::<512, 8>::from(1u8)) * t1 > two256);
        }
    }
}
