//! Every size limit of the consensus encoding, each with its reason.
//!
//! Decoders check these before allocating, so no input can make a node allocate more than
//! a valid block needs.

/// Largest encoded block, header included: 1 MiB. Small enough that a CPU node relays and
/// verifies a full block in well under a second, large enough for about 6,000 transfers.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// Largest `data` field of a transfer: room for a record such as an SSH public key
/// (an RSA-4096 key in OpenSSH form is about 750 bytes), not for bulk storage.
pub const MAX_TX_DATA_BYTES: usize = 1024;

/// Encoded size of a header: version 4, prev_hash 32, merkle_root 32, time_ms 8, bits 4,
/// nonce 8.
pub const HEADER_BYTES: usize = 88;

/// Smallest encoded transaction (a coinbase: tag 1, height 8, address 20, amount 8).
pub const MIN_TX_BYTES: usize = 37;

/// Most transactions a block can hold: a full block of the smallest transactions. Used to
/// cap the transaction count before allocating.
pub const MAX_BLOCK_TXS: usize = (MAX_BLOCK_BYTES - HEADER_BYTES) / MIN_TX_BYTES;

/// Longest undo record: every transfer touches two accounts and the coinbase one.
pub const MAX_UNDO_ENTRIES: usize = 2 * MAX_BLOCK_TXS + 1;

/// Longest merkle inclusion proof: a tree over `MAX_BLOCK_TXS` leaves is 15 levels deep;
/// 32 leaves room for any `u32` leaf count.
pub const MAX_MERKLE_PROOF_LEN: usize = 32;
