//! SHA-256, SHA-256d and the 32-byte hash newtypes.
//!
//! Hashes are shown as lowercase hex of the bytes in order (no byte reversal), so a block
//! hash that meets a low target visibly starts with zeros.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 applied twice: the hash of blocks and transactions.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    sha256(&sha256(data))
}

/// A hex string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits, got {got:?}")]
pub struct HashParseError {
    /// The text that was given, cut to 80 characters.
    pub got: String,
}

pub(crate) fn parse_hex32(s: &str) -> Result<[u8; 32], HashParseError> {
    let mut out = [0u8; 32];
    if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(HashParseError {
            got: s.chars().take(80).collect(),
        });
    }
    Ok(out)
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The hash bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = HashParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map(Self)
            }
        }
    };
}

hash_newtype!(
    /// SHA-256d of an encoded block header.
    BlockHash
);
hash_newtype!(
    /// SHA-256d of a transaction's full canonical encoding.
    Txid
);
hash_newtype!(
    /// The RFC 6962 merkle root over a block's txids.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_fips_180_4_vectors() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // SHA-256d("abc") = SHA-256 of the 32 bytes above.
        assert_eq!(
            hex::encode(sha256d(b"abc")),
            "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"
        );
    }

    #[test]
    fn hash_hex_round_trip_and_errors() {
        let h = BlockHash(sha256(b"x"));
        assert_eq!(h.to_string().parse::<BlockHash>().unwrap(), h);
        assert!("00".parse::<Txid>().is_err());
        assert!("zz".repeat(32).parse::<Txid>().is_err());
        assert!("é".repeat(32).parse::<Txid>().is_err());
    }
}
