//! Our ZIP-215 verification, single and batched, with and without the key cache, must
//! accept exactly what `ed25519-zebra` accepts: on valid signatures, on random
//! corruptions, and on the adversarial encodings ZIP-215 is about (small-order and
//! non-canonical points, s out of range).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_zebra::{Signature as ZebraSignature, VerificationKey};
use oxchain_consensus::signatures::{KeyCache, SignedMessage, verify_batch};
use oxchain_primitives::{SecretKey, sha256};
use proptest::prelude::*;

fn zebra_accepts((key, signature, message): &SignedMessage) -> bool {
    VerificationKey::try_from(*key)
        .and_then(|vk| vk.verify(&ZebraSignature::from_bytes(signature), message))
        .is_ok()
}

fn signed(seed: u64, message: [u8; 32]) -> SignedMessage {
    let key = SecretKey::from_seed(sha256(&seed.to_le_bytes()));
    (key.public_key().0, key.sign(&message).0, message)
}

/// Checks `item` alone, with and without a cache, and inside a batch of valid items,
/// against zebra's verdict.
fn agrees_with_zebra(item: SignedMessage) -> Result<(), TestCaseError> {
    let expected = zebra_accepts(&item);
    for capacity in [0, 64] {
        let mut cache = KeyCache::new(capacity);
        // Twice: the second time any decoded key comes from the cache.
        for _ in 0..2 {
            prop_assert_eq!(verify_batch(&mut cache, &[item]).is_ok(), expected);
            let mut batch: Vec<SignedMessage> =
                (0..5).map(|i| signed(1000 + i, [i as u8; 32])).collect();
            batch.insert(2, item);
            let got = verify_batch(&mut cache, &batch);
            prop_assert_eq!(got, if expected { Ok(()) } else { Err(2) });
        }
    }
    Ok(())
}

/// The 8 torsion points' canonical encodings and non-canonical ones (y + p).
fn small_order_encodings() -> Vec<[u8; 32]> {
    use curve25519_dalek::constants::EIGHT_TORSION;
    let mut out = Vec::new();
    for p in EIGHT_TORSION {
        let e = p.compress().to_bytes();
        out.push(e);
    }
    // y = 0 and y = 1 plus p, both signs: non-canonical encodings that still decode.
    for low in [0xedu8, 0xee] {
        let mut e = [0xffu8; 32];
        e[0] = low;
        e[31] = 0x7f;
        out.push(e);
        e[31] = 0xff;
        out.push(e);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_signatures_agree(seed in any::<u64>(), message in any::<[u8; 32]>()) {
        agrees_with_zebra(signed(seed, message))?;
    }

    #[test]
    fn corrupted_signatures_agree(
        seed in any::<u64>(),
        message in any::<[u8; 32]>(),
        part in 0usize..3,
        at in 0usize..64,
        xor in 1u8..=255,
    ) {
        let (mut key, mut sig, mut msg) = signed(seed, message);
        match part {
            0 => key[at % 32] ^= xor,
            1 => sig[at] ^= xor,
            _ => msg[at % 32] ^= xor,
        }
        agrees_with_zebra((key, sig, msg))?;
    }

    #[test]
    fn adversarial_encodings_agree(
        key_pick in any::<prop::sample::Index>(),
        r_pick in any::<prop::sample::Index>(),
        s_kind in 0usize..4,
        message in any::<[u8; 32]>(),
    ) {
        let encodings = small_order_encodings();
        let key = *key_pick.get(&encodings);
        let r = *r_pick.get(&encodings);
        let s: [u8; 32] = match s_kind {
            0 => [0; 32],
            1 => {
                // l, the group order: not canonical, must be refused.
                let mut l = [0u8; 32];
                l[..16].copy_from_slice(&0x14def9dea2f79cd65812631a5cf5d3edu128.to_le_bytes());
                l[31] = 0x10;
                l
            }
            2 => [0xff; 32],
            _ => {
                let mut one = [0u8; 32];
                one[0] = 1;
                one
            }
        };
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(&s);
        agrees_with_zebra((key, sig, message))?;
    }
}

#[test]
fn zip215_accepts_small_order_key_with_zero_s() {
    // The case that makes weak keys dangerous: verification alone accepts it, so the
    // ledger must refuse such keys (see the rules tests).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let item = (identity, sig, [7u8; 32]);
    assert!(zebra_accepts(&item));
    assert!(verify_batch(&mut KeyCache::new(0), &[item]).is_ok());
}

#[test]
fn the_cache_stays_bounded() {
    let mut cache = KeyCache::new(8);
    let items: Vec<SignedMessage> = (0..40).map(|i| signed(i, [1; 32])).collect();
    verify_batch(&mut cache, &items).unwrap();
    assert!(cache.len() <= 8, "{} keys held", cache.len());
    assert!(!cache.is_empty());
    let mut off = KeyCache::new(0);
    verify_batch(&mut off, &items).unwrap();
    assert!(off.is_empty());
}
