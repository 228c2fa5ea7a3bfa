//! Addresses: the first 20 bytes of SHA-256 of an Ed25519 public key, shown as bech32m
//! with the network's prefix (`ox`, `oxt`, `oxd`, `oxr`).

use std::fmt;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};

use crate::hash::sha256;
use crate::keys::PublicKey;
use crate::network::Network;

/// An account address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 20]);

/// Text that is not an address of the expected network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not bech32m text, or its checksum does not match.
    #[error("{text:?} is not a bech32m address: {reason}")]
    Bech32 {
        /// The text given, cut to 100 characters.
        text: String,
        /// What the bech32m decoder said.
        reason: String,
    },
    /// A bech32m string with a prefix that is none of ours.
    #[error("address prefix {0:?} is not an oxchain network (ox, oxt, oxd, oxr)")]
    UnknownPrefix(String),
    /// An address of another network.
    #[error("address {text:?} is for the {found} network, this node runs {expected}")]
    WrongNetwork {
        /// The text given.
        text: String,
        /// The network this node runs.
        expected: Network,
        /// The network the address prefix names.
        found: Network,
    },
    /// A payload that is not 20 bytes.
    #[error("address payload is {0} bytes, expected 20")]
    WrongLength(usize),
}

impl Address {
    /// The address of `key`.
    pub fn from_public_key(key: &PublicKey) -> Address {
        let digest = sha256(key.as_bytes());
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[..20]);
        Address(out)
    }

    /// The bech32m text of this address on `network`.
    pub fn to_bech32(&self, network: Network) -> String {
        let hrp = Hrp::parse_unchecked(network.address_prefix());
        bech32::encode_lower::<Bech32m>(hrp, &self.0)
            .expect("a 20-byte payload with a short prefix is far below the bech32 length limit")
    }

    /// Parses bech32m text of any oxchain network and tells which network it names.
    pub fn parse_any(text: &str) -> Result<(Network, Address), AddressError> {
        let shown = || text.chars().take(100).collect::<String>();
        let checked = CheckedHrpstring::new::<Bech32m>(text).map_err(|e| AddressError::Bech32 {
            text: shown(),
            reason: e.to_string(),
        })?;
        let prefix = checked.hrp().to_lowercase();
        let network = Network::ALL
            .into_iter()
            .find(|n| n.address_prefix() == prefix)
            .ok_or_else(|| AddressError::UnknownPrefix(prefix.chars().take(20).collect()))?;
        // 20 bytes are exactly 32 five-bit characters, so there is no padding to check.
        let mut out = [0u8; 20];
        let mut len = 0usize;
        for b in checked.byte_iter() {
            if len < 20 {
                out[len] = b;
            }
            len += 1;
        }
        if len != 20 || checked.data_part_ascii_no_checksum().len() != 32 {
            return Err(AddressError::WrongLength(len));
        }
        Ok((network, Address(out)))
    }

    /// Parses bech32m text that must be an address of `network`.
    pub fn parse(text: &str, network: Network) -> Result<Address, AddressError> {
        let (found, address) = Address::parse_any(text)?;
        if found != network {
            return Err(AddressError::WrongNetwork {
                text: text.chars().take(100).collect(),
                expected: network,
                found,
            });
        }
        Ok(address)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bech32m_round_trip_per_network() {
        let a = Address([7u8; 20]);
        for n in Network::ALL {
            let text = a.to_bech32(n);
            assert!(
                text.starts_with(&format!("{}1", n.address_prefix())),
                "{text}"
            );
            assert_eq!(Address::parse(&text, n).unwrap(), a);
            assert_eq!(Address::parse_any(&text.to_uppercase()).unwrap(), (n, a));
        }
    }

    #[test]
    fn rejects_other_networks_bad_checksums_and_bech32() {
        let a = Address([9u8; 20]);
        let dev = a.to_bech32(Network::Dev);
        assert!(matches!(
            Address::parse(&dev, Network::Main),
            Err(AddressError::WrongNetwork {
                expected: Network::Main,
                found: Network::Dev,
                ..
            })
        ));
        let mut flipped = dev.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'q' { b'p' } else { b'q' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(matches!(
            Address::parse_any(&flipped),
            Err(AddressError::Bech32 { .. })
        ));
        // The same payload with the older bech32 checksum is refused.
        let legacy = bech32::encode::<bech32::Bech32>(Hrp::parse("oxd").unwrap(), &a.0).unwrap();
        assert!(matches!(
            Address::parse_any(&legacy),
            Err(AddressError::Bech32 { .. })
        ));
        let other = bech32::encode::<Bech32m>(Hrp::parse("bc").unwrap(), &a.0).unwrap();
        assert!(matches!(
            Address::parse_any(&other),
            Err(AddressError::UnknownPrefix(_))
        ));
        let short = bech32::encode::<Bech32m>(Hrp::parse("oxd").unwrap(), &a.0[..19]).unwrap();
        assert!(matches!(
            Address::parse_any(&short),
            Err(AddressError::WrongLength(19))
        ));
        assert!(Address::parse_any("").is_err());
        assert!(Address::parse_any("alice").is_err());
    }
}
