//! The consensus types of oxchain and their one canonical byte encoding.
//!
//! Nothing here does I/O or knows about a network; every function is pure. Consensus
//! rules that need chain parameters live in `oxchain-consensus`.
//!
//! # Layout
//! - [`hash`]: SHA-256 and SHA-256d, and the hash newtypes [`BlockHash`], [`Txid`],
//!   [`MerkleRoot`].
//! - [`encode`]: the canonical encoding, written field by field for every consensus type,
//!   and its strict decoder (capped lengths, minimal varints, no trailing bytes).
//! - [`limits`]: every size limit, each a named constant with its reason.
//! - [`amount`]: [`Amount`] in base units and exact conversion from and to coin strings.
//! - [`network`]: the four [`Network`]s and their address prefixes.
//! - [`address`]: [`Address`] (20 bytes of SHA-256 of a public key) and its bech32m form.
//! - [`keys`]: Ed25519 [`PublicKey`], [`Signature`] and [`SecretKey`].
//! - [`target`]: proof-of-work [`CompactTarget`], [`Target`] and [`Work`].
//! - [`tx`]: [`Transaction`] (coinbase or transfer) and the message a transfer signs.
//! - [`block`]: [`Header`] (88 bytes), [`Block`] and [`Height`].
//! - [`merkle`]: RFC 6962 merkle roots over txids and inclusion proofs.
//! - [`account`]: [`Account`] state and the [`BlockUndo`] data that reverses a block.

pub mod account;
pub mod address;
pub mod amount;
pub mod block;
pub mod encode;
pub mod hash;
pub mod keys;
pub mod limits;
pub mod merkle;
pub mod network;
pub mod target;
pub mod tx;

pub use account::{Account, BlockUndo};
pub use address::{Address, AddressError};
pub use amount::{Amount, AmountError};
pub use block::{Block, Header, Height};
pub use encode::{Decode, DecodeError, Encode, decode, encode};
pub use hash::{BlockHash, HashParseError, MerkleRoot, Txid, sha256, sha256d};
pub use keys::{KeyError, PublicKey, SecretKey, Signature};
pub use merkle::MerkleProof;
pub use network::Network;
pub use target::{CompactTarget, Target, TargetError, Work};
pub use tx::{Coinbase, Transaction, Transfer};
