//! `oxchain verify FILE`: a light client. Headers from genesis, checked here (chaining,
//! proof of work, every difficulty step, times) and kept if they are the most work any
//! node serves; then the receipt's merkle proof against the header at its height, and
//! the file's SHA-256 against the transfer's data. Without a receipt, the node's data
//! index names the transfer, and its proof is checked the same way.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use oxchain_consensus::ChainParams;
use oxchain_consensus::light::HeaderChain;
use oxchain_primitives::{BlockHash, MerkleProof, Network, Transaction, Txid};
use serde_json::Value;

use super::headers;
use super::receipt::{ProofJson, Receipt};
use super::{INVALID, NOT_RECORDED, UNREACHABLE, verdict};

/// `oxchain verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The file to check.
    file: PathBuf,
    /// The network the record must be on: main, test, dev or regtest. Yours to say, not
    /// the nodes' or the receipt's: a record on regtest costs nothing to make.
    #[arg(long, default_value = "dev")]
    network: Network,
    /// Its receipt (default: FILE.oxproof if it exists; without one, the node's data
    /// index is asked where the file's hash was recorded).
    #[arg(long)]
    receipt: Option<PathBuf>,
    /// A node's API, http://HOST:PORT or HOST:PORT; give several to take the most-work
    /// chain among them.
    #[arg(long = "node", value_name = "URL", default_value = "http://127.0.0.1:5000", value_parser = crate::query::parse_node)]
    nodes: Vec<String>,
    /// The data directory where checked headers are cached (default: the platform data
    /// dir/oxchain/NETWORK).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Where the transfer is, by the receipt or by a node, before it is checked.
struct Claim {
    txid: Txid,
    transaction: Transaction,
    height: u64,
    block: BlockHash,
    proof: MerkleProof,
}

pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let hash = super::sha256_file(&args.file)?;
    let receipt_path = args
        .receipt
        .clone()
        .or_else(|| Some(super::notarize::default_receipt(&args.file)).filter(|p| p.exists()));
    let receipt = match &receipt_path {
        Some(path) => Some(Receipt::read(path)?.check()?),
        None => None,
    };

    // The network is the user's: nodes and receipts of another are set aside.
    let network = args.network;
    let params = ChainParams::for_network(network);
    if let Some(r) = &receipt
        && (r.network != network || r.genesis != params.genesis_hash())
    {
        return verdict(
            INVALID,
            format!(
                "the receipt is for {} (genesis {}), not {network}: it proves nothing here",
                r.network, r.genesis
            ),
        );
    }
    let mut reachable = Vec::new();
    let mut skipped = Vec::new();
    let mut unreachable = true;
    for node in &args.nodes {
        match crate::query::call(node, "GET", "/v1/status", "") {
            Ok((200, status)) => {
                unreachable = false;
                let name = status["network"].as_str().unwrap_or("");
                let genesis = status["genesis"].as_str().unwrap_or("");
                if name != network.name() || genesis != params.genesis_hash().to_string() {
                    skipped.push(format!(
                        "{node} is on {name:?} (genesis {genesis}), not {network}: set aside"
                    ));
                } else {
                    reachable.push(node.clone());
                }
            }
            Ok((status, _)) => {
                unreachable = false;
                skipped.push(format!("{node} answered {status} to /v1/status"));
            }
            Err(e) => skipped.push(format!("{e:#}")),
        }
    }
    for line in &skipped {
        eprintln!("note: {line}");
    }
    if reachable.is_empty() {
        let code = if unreachable { UNREACHABLE } else { INVALID };
        return verdict(
            code,
            format!("no {network} node to ask: {}", skipped.join("; ")),
        );
    }
    if network == Network::Regtest {
        eprintln!(
            "warning: on regtest a block's proof of work is next to nothing: anyone can make one"
        );
    }

    // Headers: the cache, then each node's chain on top of it; the most work wins.
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => crate::node::default_data_dir(network)?,
    };
    let cache = headers::cache_path(&data_dir, network);
    let cached = headers::load_cache(&params, &cache);
    let started = std::time::Instant::now();
    let mut best: Option<(HeaderChain, String)> = None;
    let mut problems = Vec::new();
    for node in &reachable {
        let mut progress = |height: u64| {
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprint!("\r\x1b[2Kheaders from {node}: {height}");
            }
        };
        match headers::fetch(node, &cached, &mut progress) {
            Ok(chain) => {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| chain.total_work() > b.total_work())
                {
                    best = Some((chain, node.clone()));
                }
            }
            Err(why) => problems.push(why),
        }
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprint!("\r\x1b[2K");
    }
    for why in &problems {
        eprintln!("note: {why}");
    }
    let Some((mut chain, source)) = best else {
        return verdict(
            INVALID,
            format!(
                "no node served a chain that checks: {}",
                problems.join("; ")
            ),
        );
    };
    // What this client checked before is a floor: nodes behind it, or on a lighter
    // branch, do not take it back.
    if cached.total_work() > chain.total_work() {
        eprintln!(
            "note: the nodes serve less work (tip {}) than this client checked before (tip {}); keeping that",
            chain.height(),
            cached.height()
        );
        chain = cached.clone();
    }
    headers::save_cache(&chain, &cache)?;
    let fetched = chain.height().saturating_sub(cached.height());
    eprintln!(
        "headers: {} checked ({fetched} new from {source}) in {:.2} s; tip {}",
        chain.height() + 1,
        started.elapsed().as_secs_f64(),
        chain.height()
    );

    // The claim: the receipt's, or the node's data index's.
    let claim = match receipt {
        Some(r) if chain.hash(r.height) == Some(r.block) => Claim {
            txid: r.txid,
            transaction: r.transaction,
            height: r.height,
            block: r.block,
            proof: r.proof,
        },
        Some(r) => {
            if r.height <= chain.height() {
                println!(
                    "the receipt's block {} at height {} is not on the best chain: a reorg dropped it",
                    r.block, r.height
                );
            } else {
                println!(
                    "the receipt's block is at height {}, above the best chain's tip {}",
                    r.height,
                    chain.height()
                );
            }
            match located(&source, &r.txid, network).map_err(node_failed)? {
                Some(claim) => {
                    println!(
                        "the transfer {} was recorded again, at height {}",
                        r.txid, claim.height
                    );
                    claim
                }
                None => {
                    return verdict(
                        NOT_RECORDED,
                        format!(
                            "not recorded: the transfer {} is in no best-chain block now",
                            r.txid
                        ),
                    );
                }
            }
        }
        None => match first_record(&source, &hash, network).map_err(node_failed)? {
            Some(claim) => claim,
            None => {
                return verdict(
                    NOT_RECORDED,
                    format!(
                        "not recorded: no transfer on the best chain records SHA-256 {} (and no receipt)",
                        hex::encode(hash)
                    ),
                );
            }
        },
    };

    // The checks, each naming itself when it fails.
    let Transaction::Transfer(transfer) = &claim.transaction else {
        return verdict(
            INVALID,
            "proof invalid: the recorded transaction is a coinbase, not a transfer",
        );
    };
    if claim.transaction.compute_txid() != claim.txid {
        return verdict(
            INVALID,
            format!(
                "proof invalid: the transaction does not hash to {}",
                claim.txid
            ),
        );
    }
    if !transfer.data.starts_with(&hash) {
        return verdict(
            INVALID,
            format!(
                "proof invalid: the file's SHA-256 is {}, but the transfer records {}",
                hex::encode(hash),
                hex::encode(transfer.data.get(..32).unwrap_or(&transfer.data))
            ),
        );
    }
    let header = chain
        .header(claim.height)
        .filter(|_| chain.hash(claim.height) == Some(claim.block));
    let Some(header) = header else {
        return verdict(
            NOT_RECORDED,
            format!(
                "not recorded: block {} is not at height {} of the best chain",
                claim.block, claim.height
            ),
        );
    };
    if !claim.proof.verify(&claim.txid, &header.merkle_root) {
        return verdict(
            INVALID,
            format!(
                "proof invalid: the merkle proof does not lead from {} to the root of block {} at height {}",
                claim.txid, claim.block, claim.height
            ),
        );
    }
    let confirmations = chain.height() - claim.height + 1;
    let below = match claim.height {
        0 => oxchain_primitives::Work(Default::default()),
        h => chain.work(h - 1).expect("below the tip"),
    };
    let on_top = work_f64(chain.total_work()) - work_f64(below);
    let label = &transfer.data[32..];
    println!("verified on {network}: {}", args.file.display());
    println!("  SHA-256        {}", hex::encode(hash));
    if !label.is_empty() {
        println!("  label          {}", shown(label));
    }
    println!(
        "  recorded at    height {} (block {})",
        claim.height, claim.block
    );
    println!(
        "  time           {}",
        crate::query::human_time(header.time_ms)
    );
    println!("  confirmations  {confirmations}");
    println!("  work on top    {on_top:.3e} expected hashes (that block and every one after it)");
    println!("  txid           {}", claim.txid);
    println!(
        "  recorded by    {} (the label is theirs)",
        transfer.sender().to_bech32(network)
    );
    Ok(())
}

/// What a node said or did that ends the check: no answer is [`UNREACHABLE`], anything
/// else (an error status, an answer that does not parse) [`INVALID`].
fn node_failed(e: anyhow::Error) -> anyhow::Error {
    let code = if e.downcast_ref::<crate::query::Unreachable>().is_some() {
        UNREACHABLE
    } else {
        INVALID
    };
    super::Verdict {
        code,
        message: format!("{e:#}"),
    }
    .into()
}

/// Text recorded by someone else, made safe to print on a terminal: control characters
/// (escape sequences, carriage returns) and bidirectional overrides become U+FFFD.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// A 256-bit work as a float, for printing.
fn work_f64(work: oxchain_primitives::Work) -> f64 {
    work.to_be_bytes()
        .iter()
        .fold(0.0, |acc, b| acc * 256.0 + f64::from(*b))
}

/// The node's proof of `txid` and the transfer, or `None` if it is in no best-chain block.
fn located(node: &str, txid: &Txid, network: Network) -> anyhow::Result<Option<Claim>> {
    let (status, tx) = crate::query::call(node, "GET", &format!("/v1/transactions/{txid}"), "")?;
    if status == 404 || (status == 200 && tx["status"] != "confirmed") {
        return Ok(None);
    }
    if status != 200 {
        anyhow::bail!("{node} answered {status} about {txid}");
    }
    claim_from(node, txid, &tx["transaction"], network).map(Some)
}

/// The oldest best-chain transfer recording `hash`, by the node's data index.
fn first_record(node: &str, hash: &[u8; 32], network: Network) -> anyhow::Result<Option<Claim>> {
    let (status, found) =
        crate::query::call(node, "GET", &format!("/v1/data/{}", hex::encode(hash)), "")?;
    if status != 200 {
        anyhow::bail!(
            "{node} answered {status} to /v1/data (an oxchain node before the data index?)"
        );
    }
    let Some(record) = found["records"].get(0) else {
        return Ok(None);
    };
    let txid: Txid = record["transaction"]["txid"]
        .as_str()
        .unwrap_or("")
        .parse()
        .context("the node's record has no txid")?;
    claim_from(node, &txid, &record["transaction"], network).map(Some)
}

/// The claim a node makes for `txid`: its proof, and the transfer rebuilt from `view`
/// (checked later: nothing here is trusted).
fn claim_from(node: &str, txid: &Txid, view: &Value, network: Network) -> anyhow::Result<Claim> {
    let (status, proof) =
        crate::query::call(node, "GET", &format!("/v1/transactions/{txid}/proof"), "")?;
    if status != 200 {
        anyhow::bail!("{node} answered {status} for the proof of {txid}");
    }
    let json = ProofJson::from_api(&proof).with_context(|| format!("{node}'s proof of {txid}"))?;
    let transfer = super::transfer_from_view(view, network)?;
    Ok(Claim {
        txid: *txid,
        transaction: Transaction::Transfer(transfer),
        height: proof["height"]
            .as_u64()
            .context("the proof has no height")?,
        block: proof["block"]
            .as_str()
            .unwrap_or("")
            .parse()
            .context("the proof has no block")?,
        proof: json.to_proof().map_err(anyhow::Error::msg)?,
    })
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn recorded_text_cannot_drive_the_terminal() {
        assert_eq!(shown(b"contract, v2"), "contract, v2");
        assert_eq!(
            shown(b"x\n  time  Jan 1\x1b[8m"),
            "x\u{fffd}  time  Jan 1\u{fffd}[8m"
        );
        assert_eq!(shown("a\u{202e}b".as_bytes()), "a\u{fffd}b");
        assert_eq!(shown(&[0xff, b'a']), "\u{fffd}a");
    }
}
