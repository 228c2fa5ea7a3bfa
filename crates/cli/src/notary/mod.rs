//! `oxchain notarize` and `oxchain verify`: record a file's SHA-256 in a transfer, and
//! check later, as a light client, that it was recorded and when.
//!
//! - [`receipt`]: the `.oxproof` file, JSON.
//! - `notarize`: sign, submit, wait for confirmations, write the receipt.
//! - `verify`: headers from genesis (cached), the receipt's merkle proof against them,
//!   the file against the transfer.
//! - `headers`: fetching and checking headers from one or more nodes, and the cache.

mod headers;
mod notarize;
pub(crate) mod receipt;
mod verify;

use std::path::Path;

use anyhow::Context;
use oxchain_primitives::{Address, Amount, Network, PublicKey, Signature, Transfer};
use serde_json::Value;

pub(crate) use headers::fetch as fetch_headers;
pub(crate) use notarize::{NotarizeArgs, notarize};
pub(crate) use verify::{VerifyArgs, verify};

/// A verify that ends in a verdict other than "recorded": the process exits with `code`.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The exit code ([`NOT_RECORDED`], [`INVALID`], [`UNREACHABLE`]).
    pub code: u8,
    /// What failed, for a person.
    pub message: String,
}

/// Exit code: the file is not recorded on the best chain.
pub(crate) const NOT_RECORDED: u8 = 3;
/// Exit code: a proof, a receipt or a node's headers do not check.
pub(crate) const INVALID: u8 = 4;
/// Exit code: no node could be reached.
pub(crate) const UNREACHABLE: u8 = 5;

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Verdict {}

/// Fails with a verdict.
pub(crate) fn verdict<T>(code: u8, message: impl Into<String>) -> anyhow::Result<T> {
    Err(Verdict {
        code,
        message: message.into(),
    }
    .into())
}

/// The SHA-256 of a file, read in pieces.
pub(crate) fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// A transfer rebuilt from the node's JSON view of it (`from_key`, `to`, `amount`, `fee`,
/// `nonce`, `data`, `signature`): its encoding, hashed, must give the txid the view
/// names, so nothing in it is taken on trust.
pub(crate) fn transfer_from_view(view: &Value, network: Network) -> anyhow::Result<Transfer> {
    let text = |key: &str| {
        view[key]
            .as_str()
            .with_context(|| format!("the node's transfer has no {key}"))
    };
    let bytes = |key: &str| -> anyhow::Result<Vec<u8>> {
        hex::decode(text(key)?).with_context(|| format!("the node's transfer's {key} is not hex"))
    };
    let units = |key: &str| {
        view[key]
            .as_u64()
            .map(Amount::from_units)
            .with_context(|| format!("the node's transfer has no {key}"))
    };
    let from: [u8; 32] = bytes("from_key")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the node's transfer's key is not 32 bytes"))?;
    let signature: [u8; 64] = bytes("signature")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the node's transfer's signature is not 64 bytes"))?;
    Ok(Transfer {
        from: PublicKey(from),
        to: Address::parse(text("to")?, network).context("the node's transfer's recipient")?,
        amount: units("amount")?,
        fee: units("fee")?,
        nonce: view["nonce"]
            .as_u64()
            .context("the node's transfer has no nonce")?,
        data: bytes("data")?,
        signature: Signature(signature),
    })
}
