//! Ed25519 keys and signatures.
//!
//! Signing goes through `ed25519-zebra`. Verification follows ZIP-215, so single and
//! batch verification always agree; it lives in `oxchain-consensus::signatures`. On top of ZIP-215 the
//! ledger refuses public keys that are encoded non-canonically or have small order: such
//! a key is "weak", since a signature under it can be valid for many messages.

use std::fmt;
use std::str::FromStr;

use crate::hash::HashParseError;

/// An Ed25519 public key, as its 32 encoded bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature, as its 64 encoded bytes (R then s).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

/// An Ed25519 signing key. Its bytes never appear in `Debug` output, and are wiped when
/// it is dropped.
#[derive(Clone)]
pub struct SecretKey(ed25519_zebra::SigningKey);

/// A public key the ledger refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The y coordinate is encoded as a value at or above the field prime.
    #[error("public key {0} is not canonically encoded")]
    NonCanonical(PublicKey),
    /// The key is one of the eight points of small order.
    #[error("public key {0} has small order (a weak key)")]
    SmallOrder(PublicKey),
}

/// Every encoding that decodes to a point of order 1, 2, 4 or 8 under ZIP-215 rules
/// (canonical and non-canonical y, either sign bit). A test derives the same set from
/// `curve25519-dalek`'s torsion points.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 14] = {
    const fn y(low: u8, high: u8) -> [u8; 32] {
        // 0x00.. / 0x01.. / 0xed ff.. / 0xee ff.. / 0xec ff.. patterns.
        let mut out = [0u8; 32];
        if low >= 0xec {
            let mut i = 1;
            while i < 31 {
                out[i] = 0xff;
                i += 1;
            }
        }
        out[0] = low;
        out[31] = high;
        out
    }
    const ORDER8_A: [u8; 32] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    const ORDER8_B: [u8; 32] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ];
    const fn signed(mut b: [u8; 32]) -> [u8; 32] {
        b[31] |= 0x80;
        b
    }
    [
        y(0x00, 0x00), // y = 0 (order 4)
        y(0x00, 0x80),
        y(0xed, 0x7f), // y = p, non-canonical 0 (order 4)
        y(0xed, 0xff),
        y(0x01, 0x00), // y = 1, the identity
        y(0x01, 0x80),
        y(0xee, 0x7f), // y = p + 1, non-canonical identity
        y(0xee, 0xff),
        y(0xec, 0x7f), // y = p - 1 (order 2)
        y(0xec, 0xff),
        ORDER8_A, // the two y values of the order-8 points
        signed(ORDER8_A),
        ORDER8_B,
        signed(ORDER8_B),
    ]
};

impl PublicKey {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Cheap checks on the bytes: canonical encoding and not of small order. Whether the
    /// bytes are a point at all is found when the signature is verified.
    pub fn validate(&self) -> Result<(), KeyError> {
        let b = &self.0;
        let y_at_or_above_p =
            b[31] & 0x7f == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed;
        if y_at_or_above_p {
            return Err(KeyError::NonCanonical(*self));
        }
        if SMALL_ORDER_ENCODINGS.contains(b) {
            return Err(KeyError::SmallOrder(*self));
        }
        Ok(())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::hash::parse_hex32(s).map(PublicKey)
    }
}

impl Signature {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl SecretKey {
    /// The key whose 32-byte seed is `seed` (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(ed25519_zebra::SigningKey::from(seed))
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(ed25519_zebra::VerificationKeyBytes::from(&self.0).into())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::traits::{Identity, IsIdentity};

    /// Every encoding of a torsion point (both sign bits, y and y + p where that fits in
    /// 255 bits), kept when it decodes to a small-order point.
    fn derived_small_order_encodings() -> Vec<[u8; 32]> {
        let p_le: [u8; 32] = {
            let mut p = [0xffu8; 32];
            p[0] = 0xed;
            p[31] = 0x7f;
            p
        };
        let mut out = Vec::new();
        for point in EIGHT_TORSION {
            let mut canonical = point.compress().to_bytes();
            canonical[31] &= 0x7f;
            let mut variants = vec![canonical];
            // y + p, when it does not spill into the sign bit.
            let mut sum = [0u8; 32];
            let mut carry = 0u16;
            for i in 0..32 {
                let s = u16::from(canonical[i]) + u16::from(p_le[i]) + carry;
                sum[i] = s as u8;
                carry = s >> 8;
            }
            if carry == 0 && sum[31] & 0x80 == 0 {
                variants.push(sum);
            }
            for v in variants {
                for sign in [0u8, 0x80] {
                    let mut e = v;
                    e[31] |= sign;
                    let small = CompressedEdwardsY(e)
                        .decompress()
                        .is_some_and(|pt| pt.mul_by_cofactor().is_identity());
                    if small && !out.contains(&e) {
                        out.push(e);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn small_order_list_is_exactly_the_derived_set() {
        let mut derived = derived_small_order_encodings();
        let mut listed = SMALL_ORDER_ENCODINGS.to_vec();
        derived.sort();
        listed.sort();
        assert_eq!(derived, listed);
    }

    #[test]
    fn validate_refuses_weak_and_non_canonical_keys() {
        for enc in SMALL_ORDER_ENCODINGS {
            assert!(PublicKey(enc).validate().is_err());
        }
        let identity = PublicKey(CompressedEdwardsY::identity().to_bytes());
        assert_eq!(identity.validate(), Err(KeyError::SmallOrder(identity)));
        let mut p_plus_2 = [0xffu8; 32];
        p_plus_2[0] = 0xef;
        p_plus_2[31] = 0x7f;
        assert_eq!(
            PublicKey(p_plus_2).validate(),
            Err(KeyError::NonCanonical(PublicKey(p_plus_2)))
        );
        let good = SecretKey::from_seed([1; 32]).public_key();
        assert_eq!(good.validate(), Ok(()));
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: empty message.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let key = SecretKey::from_seed(seed.try_into().unwrap());
        assert_eq!(
            key.public_key().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            key.sign(b"").to_string(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
