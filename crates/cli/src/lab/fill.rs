//! Signed transfers for the lab: from the dev accounts, each account's nonces in order.

use oxchain_primitives::{Amount, Network, SecretKey, Signature, Transfer};
use serde_json::json;

/// A transfer with the most data a transfer may carry: about 1,170 bytes encoded.
const FILL_DATA: usize = oxchain_primitives::limits::MAX_TX_DATA_BYTES;
pub(crate) const FILL_TX_BYTES: usize = FILL_DATA + 150;

/// Signs transfers from some of the dev accounts, in turn.
pub(crate) struct Filler {
    keys: Vec<SecretKey>,
    nonces: Vec<u64>,
    genesis: oxchain_primitives::BlockHash,
    next: usize,
    data: usize,
}

impl Filler {
    /// Transfers from the dev accounts `accounts` (indices into `DEV_ACCOUNTS`), each
    /// carrying `data` bytes.
    pub(crate) fn new(accounts: &[usize], data: usize) -> Filler {
        let names = oxchain_consensus::genesis::DEV_ACCOUNTS;
        Filler {
            keys: accounts
                .iter()
                .map(|&i| oxchain_consensus::genesis::dev_account_key(names[i]))
                .collect(),
            nonces: vec![0; accounts.len()],
            genesis: oxchain_consensus::ChainParams::regtest().genesis_hash(),
            next: 0,
            data,
        }
    }

    /// Blocks' worth of the largest transfers, from every dev account.
    pub(crate) fn full() -> Filler {
        Filler::new(&[0, 1, 2, 3, 4], FILL_DATA)
    }

    /// The body of `POST /v1/transactions` for the next transfer.
    pub(crate) fn next_body(&mut self) -> String {
        let i = self.next % self.keys.len();
        self.next += 1;
        let key = &self.keys[i];
        let to = oxchain_consensus::genesis::dev_account_address("eve");
        let nonce = self.nonces[i];
        self.nonces[i] += 1;
        let data = vec![(self.next % 251) as u8; self.data];
        let mut t = Transfer {
            from: key.public_key(),
            to,
            amount: Amount::from_units(1_000),
            fee: Amount::from_units(2 * (self.data as u64 + 150)),
            nonce,
            data,
            signature: Signature([0; 64]),
        };
        t.sign(key, &self.genesis);
        json!({
            "from": hex::encode(t.from.as_bytes()),
            "to": to.to_bech32(Network::Regtest),
            "amount": t.amount.units(),
            "fee": t.fee.units(),
            "nonce": nonce,
            "data": hex::encode(&t.data),
            "signature": hex::encode(t.signature.as_bytes()),
        })
        .to_string()
    }
}
