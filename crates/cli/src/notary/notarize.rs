//! `oxchain notarize FILE`: records the file's SHA-256 (and a label) in a transfer to the
//! key's own address, waits for confirmations, and writes the receipt beside the file.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use oxchain_primitives::limits::MAX_TX_DATA_BYTES;
use oxchain_primitives::{Address, Amount, Header, Transaction, Txid, decode, encode};

use super::receipt::{FORMAT, ProofJson, Receipt};

/// `oxchain notarize`.
#[derive(Debug, Args)]
pub(crate) struct NotarizeArgs {
    /// The file to record.
    file: PathBuf,
    /// A wallet key's name (on dev and regtest also a dev account; default there: alice).
    #[arg(long)]
    from: Option<String>,
    /// Text recorded after the hash (at most 992 bytes), such as what the file is.
    #[arg(long)]
    label: Option<String>,
    /// Blocks to wait for, the recording block included.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    confirmations: u64,
    /// Fee in coins.
    #[arg(long, default_value = "0.00001", allow_negative_numbers = true)]
    fee: Amount,
    /// Where to write the receipt (default: FILE.oxproof).
    #[arg(long)]
    receipt: Option<PathBuf>,
    /// The node's API: http://HOST:PORT or HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:5000", value_parser = crate::query::parse_node)]
    node: String,
    /// The data directory holding the wallet (default: the platform data dir/oxchain/NETWORK).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The receipt's default path: `FILE.oxproof`.
pub(crate) fn default_receipt(file: &std::path::Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".oxproof");
    PathBuf::from(name)
}

pub(crate) fn notarize(args: NotarizeArgs) -> anyhow::Result<()> {
    let hash = super::sha256_file(&args.file)?;
    let label = args.label.clone().unwrap_or_default();
    let data = [hash.as_slice(), label.as_bytes()].concat();
    if data.len() > MAX_TX_DATA_BYTES {
        bail!(
            "--label is {} bytes: at most {} fit after the hash",
            label.len(),
            MAX_TX_DATA_BYTES - 32
        );
    }
    let (status, node) = crate::query::call(&args.node, "GET", "/v1/status", "")?;
    if status != 200 {
        bail!("the node answered {status} to /v1/status");
    }
    let has_dev_accounts = node["network"]
        .as_str()
        .and_then(|n| n.parse::<oxchain_primitives::Network>().ok())
        .is_some_and(|n| n.has_dev_accounts());
    let from = match (&args.from, has_dev_accounts) {
        (Some(from), _) => from.clone(),
        (None, true) => "alice".to_string(),
        (None, false) => bail!("give --from KEY: the wallet key that pays the fee"),
    };
    let signer = crate::wallet::signer(&args.node, &from, args.data_dir.clone())?;
    let network = signer.network;
    let own = Address::from_public_key(&signer.key.public_key());
    // To itself: only the fee leaves the account. The API takes no zero amount.
    let (transfer, txid) = signer.submit(&args.node, own, Amount::from_units(1), args.fee, data)?;
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("recording {file_name} (SHA-256 {})", hex::encode(hash));
    println!(
        "txid     {txid}, fee {} coins, from {}",
        transfer.fee,
        own.to_bech32(network)
    );
    wait_for_confirmations(&args.node, &txid, args.confirmations)?;

    // The proof and its block's header, read until they agree (a block that arrives in
    // between moves nothing, a reorg does), and checked here before anything is written.
    let mut tries = 0;
    let (height, proof, header_hex, header) = loop {
        tries += 1;
        match proof_and_header(&args.node, &txid) {
            Ok(found) => break found,
            Err(e) if tries < 10 => {
                eprintln!("note: {e:#}; asking again");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            Err(e) => bail!(
                "{e:#}. The transfer {txid} is sent; `oxchain verify {}` finds it without a \
                 receipt once it is in a block",
                args.file.display()
            ),
        }
    };
    let tx = Transaction::Transfer(transfer);
    let computed: Txid = tx.compute_txid();
    if computed.to_string() != txid {
        bail!("the node named txid {txid}, but the transfer hashes to {computed}");
    }
    let merkle = proof.to_proof().map_err(anyhow::Error::msg)?;
    if !merkle.verify(&computed, &header.merkle_root) {
        bail!("the node's merkle proof of {txid} does not lead to block {height}'s root");
    }
    let receipt = Receipt {
        oxproof: FORMAT,
        network: network.to_string(),
        genesis: signer.genesis.to_string(),
        file: file_name,
        sha256: hex::encode(hash),
        label: args.label,
        txid,
        transaction: hex::encode(encode(&tx)),
        block: header.compute_hash().to_string(),
        height,
        header: header_hex,
        proof,
    };
    let path = args.receipt.unwrap_or_else(|| default_receipt(&args.file));
    receipt.write(&path)?;
    println!(
        "recorded at height {height} (block {}); receipt {}",
        receipt.block,
        path.display()
    );
    Ok(())
}

/// The proof of `txid` and the header of the block it names, which must hash to that
/// block: (height, proof, header hex, header).
fn proof_and_header(node: &str, txid: &str) -> anyhow::Result<(u64, ProofJson, String, Header)> {
    let (status, proof) =
        crate::query::call(node, "GET", &format!("/v1/transactions/{txid}/proof"), "")?;
    if status != 200 {
        bail!("the node answered {status} for the proof of {txid}");
    }
    let height = proof["height"]
        .as_u64()
        .context("the node's proof has no height")?;
    let block = proof["block"].as_str().unwrap_or_default().to_string();
    let json = ProofJson::from_api(&proof).context("the node's proof")?;
    let (status, headers) = crate::query::call(
        node,
        "GET",
        &format!("/v1/headers?from={height}&count=1"),
        "",
    )?;
    let header_hex = headers["headers"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if status != 200 || header_hex.is_empty() {
        bail!("the node did not give the header at height {height}");
    }
    let header: Header = decode(&hex::decode(&header_hex).context("the header's hex")?)
        .context("the node's header")?;
    if header.compute_hash().to_string() != block {
        bail!("the chain moved between the proof and the header at height {height}");
    }
    Ok((height, json, header_hex, header))
}

/// Polls the node until `txid` has `wanted` confirmations; shows how many it has.
fn wait_for_confirmations(node: &str, txid: &str, wanted: u64) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut last_line = std::time::Instant::now();
    let mut shown = None;
    loop {
        let (status, tx) =
            crate::query::call(node, "GET", &format!("/v1/transactions/{txid}"), "")?;
        let have = match (status, tx["status"].as_str()) {
            (200, Some("confirmed")) => tx["confirmations"].as_u64().unwrap_or(0),
            (200, _) => 0,
            (404, _) => bail!(
                "the node no longer knows {txid}: it left the mempool without a block \
                 (replaced, or evicted by higher fees)"
            ),
            (other, _) => bail!("the node answered {other} about {txid}"),
        };
        if have >= wanted {
            if terminal {
                eprint!("\r\x1b[2K");
            }
            return Ok(());
        }
        let waited = started.elapsed().as_secs();
        let line = format!(
            "{have} of {wanted} confirmations ({waited} s; Ctrl-C stops waiting, the transfer stays)"
        );
        if terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if shown != Some(have) || last_line.elapsed() >= std::time::Duration::from_secs(10) {
            eprintln!("{line}");
            last_line = std::time::Instant::now();
            shown = Some(have);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
