//! The receipt `oxchain notarize` writes beside a file (`FILE.oxproof`): everything
//! needed to check the record later against any node's headers. JSON, so that it can be
//! read and checked by other tools; every hash is lowercase hex, as the API shows them.

use std::path::Path;

use anyhow::Context;
use oxchain_primitives::{
    BlockHash, Header, MerkleProof, Network, Transaction, Txid, decode, encode,
};
use serde::{Deserialize, Serialize};

use super::{INVALID, verdict};

/// The receipt's format version.
pub(crate) const FORMAT: u32 = 1;

/// `FILE.oxproof`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Receipt {
    /// The format version, [`FORMAT`].
    pub oxproof: u32,
    /// The network's name.
    pub network: String,
    /// Its genesis block's hash.
    pub genesis: String,
    /// The file's name when it was notarised (for people; not checked).
    pub file: String,
    /// The file's SHA-256.
    pub sha256: String,
    /// The label recorded after the hash, if any.
    pub label: Option<String>,
    /// The transfer's txid.
    pub txid: String,
    /// The whole transaction, encoded (`docs/protocol.md`), hex.
    pub transaction: String,
    /// The block's hash.
    pub block: String,
    /// Its height.
    pub height: u64,
    /// Its header, 88 bytes encoded, hex.
    pub header: String,
    /// The merkle proof of the txid in that header's root.
    pub proof: ProofJson,
}

/// A merkle proof as `/v1/transactions/{txid}/proof` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProofJson {
    /// The leaf index.
    pub index: u32,
    /// Transactions in the block.
    pub leaf_count: u32,
    /// Sibling hashes from the leaf up, hex.
    pub path: Vec<String>,
}

impl ProofJson {
    /// The proof fields of `/v1/transactions/{txid}/proof`'s answer.
    pub(crate) fn from_api(answer: &serde_json::Value) -> anyhow::Result<ProofJson> {
        Ok(serde_json::from_value(serde_json::json!({
            "index": answer["index"], "leaf_count": answer["leaf_count"], "path": answer["path"],
        }))?)
    }

    /// The proof, or what in it is not of the right shape.
    pub(crate) fn to_proof(&self) -> Result<MerkleProof, String> {
        let path = self
            .path
            .iter()
            .map(|step| {
                hex::decode(step)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("proof step {step:?} is not 32 bytes of hex"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MerkleProof {
            index: self.index,
            leaf_count: self.leaf_count,
            path,
        })
    }
}

/// A receipt's fields, decoded and checked against each other: the transaction hashes
/// to the txid, and its header hashes to the block.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub network: Network,
    pub genesis: BlockHash,
    pub txid: Txid,
    pub transaction: Transaction,
    pub block: BlockHash,
    pub height: u64,
    pub proof: MerkleProof,
}

impl Receipt {
    /// Reads a receipt file.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Receipt> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the receipt {}", path.display()))?;
        match serde_json::from_str::<Receipt>(&text) {
            Ok(receipt) => Ok(receipt),
            Err(e) => verdict(
                INVALID,
                format!("{} is not an oxchain receipt: {e}", path.display()),
            ),
        }
    }

    /// Writes it, pretty, replacing the file in one step.
    pub(crate) fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        let tmp = path.with_extension("oxproof.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Decodes the fields and checks them against each other. A field that does not
    /// decode, or that disagrees, is an invalid receipt (exit [`INVALID`]).
    pub(crate) fn check(&self) -> anyhow::Result<Checked> {
        let bad = |what: String| verdict(INVALID, format!("the receipt is invalid: {what}"));
        if self.oxproof != FORMAT {
            return bad(format!(
                "format {} (this oxchain reads {FORMAT})",
                self.oxproof
            ));
        }
        let Ok(network) = self.network.parse::<Network>() else {
            return bad(format!("unknown network {:?}", self.network));
        };
        let hash = |text: &str, what: &str| -> Result<[u8; 32], String> {
            hex::decode(text)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("{what} {text:?} is not 32 bytes of hex"))
        };
        let parsed = (|| -> Result<Checked, String> {
            let genesis = BlockHash(hash(&self.genesis, "genesis")?);
            let txid = Txid(hash(&self.txid, "txid")?);
            let block = BlockHash(hash(&self.block, "block")?);
            let tx_bytes = hex::decode(&self.transaction)
                .map_err(|_| "the transaction is not hex".to_string())?;
            let transaction: Transaction =
                decode(&tx_bytes).map_err(|e| format!("the transaction does not decode: {e}"))?;
            if transaction.compute_txid() != txid || encode(&transaction) != tx_bytes {
                return Err(format!("the transaction does not hash to the txid {txid}"));
            }
            let header_bytes =
                hex::decode(&self.header).map_err(|_| "the header is not hex".to_string())?;
            let header: Header =
                decode(&header_bytes).map_err(|e| format!("the header does not decode: {e}"))?;
            if header.compute_hash() != block {
                return Err(format!("the header does not hash to the block {block}"));
            }
            Ok(Checked {
                network,
                genesis,
                txid,
                transaction,
                block,
                height: self.height,
                proof: self.proof.to_proof()?,
            })
        })();
        match parsed {
            Ok(checked) => Ok(checked),
            Err(what) => bad(what),
        }
    }
}
