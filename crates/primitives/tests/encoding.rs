//! Properties of the canonical encoding over arbitrary values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxchain_primitives::encode::{Decode, Encode, decode, encode};
use oxchain_primitives::{
    Account, Address, Block, BlockHash, BlockUndo, CompactTarget, Header, Network, PublicKey,
    Transaction, Txid,
};
use oxchain_testkit::arb;
use proptest::prelude::*;

fn round_trips<T: Encode + Decode + PartialEq + std::fmt::Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let bytes = encode(value);
    prop_assert_eq!(bytes.len(), value.encoded_size());
    prop_assert_eq!(&decode::<T>(&bytes)?, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn header_round_trips(h in arb::header()) {
        round_trips(&h)?;
        let bytes = encode(&h);
        prop_assert_eq!(bytes.as_slice(), &h.to_bytes()[..]);
    }

    #[test]
    fn transaction_round_trips(t in arb::transaction()) {
        round_trips(&t)?;
    }

    #[test]
    fn block_round_trips(b in arb::block()) {
        round_trips(&b)?;
    }

    #[test]
    fn text_forms_round_trip(bytes in any::<[u8; 32]>(), net in 0usize..4) {
        let network = Network::ALL[net];
        let address = Address(bytes[..20].try_into().unwrap());
        prop_assert_eq!(Address::parse(&address.to_bech32(network), network)?, address);
        prop_assert_eq!(BlockHash(bytes).to_string().parse::<BlockHash>()?, BlockHash(bytes));
        prop_assert_eq!(Txid(bytes).to_string().parse::<Txid>()?, Txid(bytes));
        prop_assert_eq!(PublicKey(bytes).to_string().parse::<PublicKey>()?, PublicKey(bytes));
        let bits = CompactTarget(u32::from_le_bytes(bytes[..4].try_into().unwrap()));
        if let Ok(target) = bits.to_target() {
            // Canonical bits survive a round trip through the target.
            if target.to_compact() == bits {
                prop_assert_eq!(target.to_compact().to_target()?, target);
            }
        }
    }

    #[test]
    fn account_round_trips(a in arb::account()) {
        round_trips(&a)?;
    }

    #[test]
    fn undo_round_trips(u in arb::block_undo()) {
        round_trips(&u)?;
    }

    /// Any one-byte change of an encoded block either fails to decode, or gives a block
    /// whose hash differs, or whose transactions no longer match its merkle root: it can
    /// never pass for the same block.
    #[test]
    fn one_byte_change_never_passes_for_the_same_block(
        b in arb::block(),
        pick in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut b = b;
        b.header.merkle_root = b.compute_merkle_root();
        let hash = b.compute_hash();
        let mut bytes = encode(&b);
        let i = pick.index(bytes.len());
        bytes[i] ^= xor;
        if let Ok(changed) = decode::<Block>(&bytes) {
            prop_assert!(
                changed.compute_hash() != hash
                    || changed.compute_merkle_root() != changed.header.merkle_root,
                "byte {} changed and the block still passes as {}", i, hash
            );
        }
    }

    /// Every truncation of an encoded block, and every extension, fails to decode.
    #[test]
    fn truncation_and_extension_fail(b in arb::block(), cut in any::<prop::sample::Index>(), extra in any::<u8>()) {
        let bytes = encode(&b);
        let at = cut.index(bytes.len());
        prop_assert!(decode::<Block>(&bytes[..at]).is_err());
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert!(decode::<Block>(&longer).is_err());
    }

    /// Arbitrary bytes never make a decoder panic.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode::<Block>(&bytes);
        let _ = decode::<Transaction>(&bytes);
        let _ = decode::<Header>(&bytes);
        let _ = decode::<BlockUndo>(&bytes);
        let _ = decode::<Account>(&bytes);
    }

    /// Mangled valid encodings (bytes changed, inserted, removed) never make the decoder
    /// panic, and whatever still decodes is canonical: it encodes back to the same bytes.
    #[test]
    fn mangled_blocks_decode_canonically_or_fail(
        b in arb::block(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..8),
    ) {
        let mut bytes = encode(&b);
        for (at, kind, value) in edits {
            let i = at.index(bytes.len().max(1));
            match kind {
                0 if !bytes.is_empty() => bytes[i] = value,
                1 => bytes.insert(i.min(bytes.len()), value),
                _ if !bytes.is_empty() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(decoded) = decode::<Block>(&bytes) {
            prop_assert_eq!(encode(&decoded), bytes);
        }
    }
}
