//! The genesis block of each network, and the dev accounts.
//!
//! Genesis is a constant: a fixed timestamp and fixed allocations, so every node of a
//! network builds the same block and hash. It is the root of trust, so no rule is checked
//! on it (its proof of work included): nodes compare its hash. On dev and regtest it funds
//! the dev accounts `alice bob charlie dave eve`, whose keys anyone can derive from the
//! name: insecure by design, and only on those networks.

use oxchain_primitives::{
    Address, Amount, Block, BlockHash, Coinbase, CompactTarget, Header, Height, MerkleRoot,
    SecretKey, Transaction, sha256,
};

use crate::params::{ChainParams, HEADER_VERSION};

/// The dev accounts funded in the dev and regtest genesis blocks.
pub const DEV_ACCOUNTS: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

/// Genesis time of every network: 2026-01-01T00:00:00Z.
pub const GENESIS_TIME_MS: u64 = 1_767_225_600_000;

/// The insecure key of a dev account: its seed is SHA-256 of a fixed tag and the name.
/// Any name works (other names start with no coins); only dev and regtest accept them.
pub fn dev_account_key(name: &str) -> SecretKey {
    let mut input = b"oxchain dev account ".to_vec();
    input.extend_from_slice(name.as_bytes());
    SecretKey::from_seed(sha256(&input))
}

/// The address of a dev account.
pub fn dev_account_address(name: &str) -> Address {
    Address::from_public_key(&dev_account_key(name).public_key())
}

pub(crate) fn placeholder_header() -> Header {
    Header {
        version: HEADER_VERSION,
        prev_hash: BlockHash::default(),
        merkle_root: MerkleRoot::default(),
        time_ms: GENESIS_TIME_MS,
        bits: CompactTarget(0),
        nonce: 0,
    }
}

pub(crate) fn build_genesis(params: &ChainParams) -> Block {
    let allocation = |to: Address, amount: Amount| {
        Transaction::Coinbase(Coinbase {
            height: Height(0),
            to,
            amount,
        })
    };
    let transactions = if params.network.has_dev_accounts() {
        DEV_ACCOUNTS
            .iter()
            .map(|name| allocation(dev_account_address(name), params.dev_account_funds))
            .collect()
    } else {
        // No premine: one empty coinbase to the all-zero address, which no key controls.
        vec![allocation(Address([0; 20]), Amount::ZERO)]
    };
    let mut block = Block {
        header: placeholder_header(),
        transactions,
    };
    block.header.bits = params.initial_bits;
    // Distinguish networks that would otherwise share every field (main and test).
    block.header.nonce = u64::from(params.network.id());
    block.header.merkle_root = block.compute_merkle_root();
    block
}

/// Whether `text` is the name of one of the funded dev accounts ([`DEV_ACCOUNTS`]).
pub fn is_dev_account(text: &str) -> bool {
    DEV_ACCOUNTS.contains(&text)
}

/// Whether `text` could be a name where an address is also accepted (the tutorials'
/// recipients, `oxchain send --to-new-name`): a short word of letters, digits, `-` and
/// `_`, and not a mistyped address (those start with a network prefix and its `1`
/// separator). Only [`is_dev_account`] names are funded.
pub fn is_dev_account_name(text: &str) -> bool {
    let looks_like_address = text.starts_with("ox") && text.contains('1');
    !text.is_empty()
        && !looks_like_address
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_funds_the_dev_accounts() {
        for params in [ChainParams::dev(), ChainParams::regtest()] {
            let g = params.genesis();
            assert_eq!(g.transactions.len(), 5);
            assert_eq!(g.header.merkle_root, g.compute_merkle_root());
            assert_eq!(g.header.prev_hash, BlockHash::default());
        }
        assert_eq!(ChainParams::main().genesis().transactions.len(), 1);
        // Names derive distinct, stable keys.
        assert_ne!(dev_account_address("alice"), dev_account_address("bob"));
        assert_eq!(
            dev_account_key("alice").public_key(),
            dev_account_key("alice").public_key()
        );
    }

    #[test]
    fn dev_account_names_are_short_words_not_addresses() {
        for name in ["alice", "bob", "node-2", "test_user", "A1"] {
            assert!(is_dev_account_name(name), "{name}");
        }
        for text in [
            "",
            "oxd1qqqq",
            "ox1abc",
            "al ice",
            "alice!",
            &"a".repeat(33),
        ] {
            assert!(!is_dev_account_name(text), "{text:?}");
        }
    }
}
