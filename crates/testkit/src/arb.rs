//! Proptest strategies for every consensus type. Values are arbitrary, not valid: they
//! exercise the encoding, not the rules.

use oxchain_primitives::limits::MAX_TX_DATA_BYTES;
use oxchain_primitives::{
    Account, Address, Amount, Block, BlockHash, BlockUndo, Coinbase, CompactTarget, Header, Height,
    MerkleRoot, PublicKey, Signature, Transaction, Transfer,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Any address.
pub fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

/// Any amount.
pub fn amount() -> impl Strategy<Value = Amount> {
    any::<u64>().prop_map(Amount::from_units)
}

/// Any header.
pub fn header() -> impl Strategy<Value = Header> {
    (
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(version, prev, root, time_ms, bits, nonce)| Header {
            version,
            prev_hash: BlockHash(prev),
            merkle_root: MerkleRoot(root),
            time_ms,
            bits: CompactTarget(bits),
            nonce,
        })
}

/// Any coinbase.
pub fn coinbase() -> impl Strategy<Value = Coinbase> {
    (any::<u64>(), address(), amount()).prop_map(|(h, to, amount)| Coinbase {
        height: Height(h),
        to,
        amount,
    })
}

/// Any transfer, data up to the limit.
pub fn transfer() -> impl Strategy<Value = Transfer> {
    (
        any::<[u8; 32]>(),
        address(),
        amount(),
        amount(),
        any::<u64>(),
        prop_oneof![
            vec(any::<u8>(), 0..8),
            vec(any::<u8>(), 0..=MAX_TX_DATA_BYTES)
        ],
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(from, to, amount, fee, nonce, data, s1, s2)| {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&s1);
            sig[32..].copy_from_slice(&s2);
            Transfer {
                from: PublicKey(from),
                to,
                amount,
                fee,
                nonce,
                data,
                signature: Signature(sig),
            }
        })
}

/// Any transaction.
pub fn transaction() -> impl Strategy<Value = Transaction> {
    prop_oneof![
        coinbase().prop_map(Transaction::Coinbase),
        transfer().prop_map(Transaction::Transfer)
    ]
}

/// Any block of up to 12 transactions.
pub fn block() -> impl Strategy<Value = Block> {
    (header(), vec(transaction(), 0..12)).prop_map(|(header, transactions)| Block {
        header,
        transactions,
    })
}

/// Any account.
pub fn account() -> impl Strategy<Value = Account> {
    (amount(), any::<u64>()).prop_map(|(balance, nonce)| Account { balance, nonce })
}

/// Any undo record.
pub fn block_undo() -> impl Strategy<Value = BlockUndo> {
    vec((address(), proptest::option::of(account())), 0..20).prop_map(|prior| BlockUndo { prior })
}
