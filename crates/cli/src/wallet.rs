//! `oxchain wallet new|list|show|import|export` and `oxchain send`. Keys live encrypted in
//! DATA_DIR/wallet (see `oxchain-wallet`); the passphrase comes from a prompt or
//! `OXCHAIN_PASSPHRASE`. `send` builds and signs the transfer here and posts only the
//! signed transfer to the node: keys never leave the wallet.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use oxchain_consensus::genesis::{self, dev_account_key};
use oxchain_primitives::{Address, Amount, BlockHash, Network, Signature, Transfer};
use oxchain_wallet::{KeyNetwork, Wallet};
use serde_json::json;
use zeroize::Zeroizing;

/// Which wallet.
#[derive(Debug, Args)]
pub(crate) struct WalletOpts {
    /// The network whose data directory holds the wallet: main, test, dev or regtest.
    #[arg(long, default_value = "dev")]
    network: Network,
    /// The data directory (default: the platform data dir/oxchain/NETWORK).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl WalletOpts {
    fn wallet(&self) -> anyhow::Result<Wallet> {
        wallet_for(self.network, self.data_dir.clone())
    }

    /// The network new keys are made for.
    fn key_network(&self) -> KeyNetwork {
        key_network(self.network)
    }
}

/// A network and its genesis, as keys record them.
fn key_network(network: Network) -> KeyNetwork {
    KeyNetwork {
        network,
        genesis: oxchain_consensus::ChainParams::for_network(network).genesis_hash(),
    }
}

fn wallet_for(network: Network, data_dir: Option<PathBuf>) -> anyhow::Result<Wallet> {
    let dir = match data_dir {
        Some(dir) => dir,
        None => crate::node::default_data_dir(network)?,
    };
    Ok(Wallet::new(dir.join("wallet")))
}

/// `oxchain wallet ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Make a new key, encrypted with a passphrase.
    New {
        /// Its name.
        name: String,
        #[command(flatten)]
        opts: WalletOpts,
    },
    /// List the keys and their addresses.
    List {
        #[command(flatten)]
        opts: WalletOpts,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// A key's address and public key.
    Show {
        /// Its name.
        name: String,
        #[command(flatten)]
        opts: WalletOpts,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Store a key from its secret (64 hex digits, read from standard input).
    Import {
        /// Its name.
        name: String,
        #[command(flatten)]
        opts: WalletOpts,
    },
    /// Print a key's secret (64 hex digits): anyone who sees it owns the coins.
    Export {
        /// Its name.
        name: String,
        #[command(flatten)]
        opts: WalletOpts,
    },
}

/// The passphrase: OXCHAIN_PASSPHRASE, or a prompt (twice for a new key).
fn passphrase(confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("OXCHAIN_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    let p = Zeroizing::new(
        rpassword::prompt_password("passphrase: ")
            .context("reading the passphrase (or set OXCHAIN_PASSPHRASE)")?,
    );
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("again: ")?);
        if again != p {
            bail!("the passphrases differ");
        }
    }
    Ok(p)
}

pub(crate) fn run(command: WalletCommand) -> anyhow::Result<()> {
    match command {
        WalletCommand::New { name, opts } => {
            let wallet = opts.wallet()?;
            let key = wallet.create(&name, &passphrase(true)?, opts.key_network())?;
            println!("{} {}", key.name, key.address.to_bech32(opts.network));
        }
        WalletCommand::List { opts, json } => {
            let keys = opts.wallet()?.list()?;
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| json!({"name": k.name, "address": k.address.to_bech32(opts.network)}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if keys.is_empty() {
                println!("no keys yet: `oxchain wallet new NAME`");
            } else {
                for k in keys {
                    println!("{:<20} {}", k.name, k.address.to_bech32(opts.network));
                }
            }
        }
        WalletCommand::Show { name, opts, json } => {
            let k = opts.wallet()?.show(&name)?;
            let address = k.address.to_bech32(opts.network);
            let public_key = hex::encode(k.public_key.as_bytes());
            let (network, genesis) = match k.network {
                Some(n) => (n.network.name().to_string(), Some(n.genesis.to_string())),
                None => ("any (a version 1 key file)".to_string(), None),
            };
            if json {
                println!(
                    "{}",
                    json!({"name": k.name, "address": address, "public_key": public_key,
                           "network": k.network.map(|n| n.network.name()), "genesis": genesis})
                );
            } else {
                println!(
                    "name        {}\naddress     {address}\npublic key  {public_key}\nnetwork     {network}",
                    k.name
                );
            }
        }
        WalletCommand::Import { name, opts } => {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the secret from standard input")?;
            let seed = oxchain_wallet::parse_seed(&text)?;
            let key =
                opts.wallet()?
                    .import(&name, &seed, &passphrase(true)?, opts.key_network())?;
            println!("{} {}", key.name, key.address.to_bech32(opts.network));
        }
        WalletCommand::Export { name, opts } => {
            let seed = opts.wallet()?.export(&name, &passphrase(false)?)?;
            println!("{}", Zeroizing::new(hex::encode(*seed)).as_str());
        }
    }
    Ok(())
}

/// `oxchain send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// A wallet key's name (or, on dev and regtest, a dev account name: alice).
    #[arg(long)]
    from: String,
    /// The recipient's address (or, on dev and regtest, a dev account name).
    #[arg(long)]
    to: String,
    /// On dev and regtest: take a `--to` that is neither an address nor a dev account as
    /// a new name (the coins go to the address made from it, as the tutorials' routes do).
    #[arg(long)]
    to_new_name: bool,
    /// Coins, at most 8 decimals.
    #[arg(long, allow_negative_numbers = true)]
    amount: Amount,
    /// Fee in coins.
    #[arg(long, default_value = "0.00001", allow_negative_numbers = true)]
    fee: Amount,
    /// Text to attach (at most 1024 bytes).
    #[arg(long)]
    data: Option<String>,
    /// The node's API: http://HOST:PORT or HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:5000", value_parser = crate::query::parse_node)]
    node: String,
    /// The data directory holding the wallet (default: the platform data dir/oxchain/NETWORK).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Wait for the transfer's first confirmation (Ctrl-C stops waiting; the transfer
    /// stays pending).
    #[arg(long)]
    wait: bool,
}

/// A node's network and genesis, checked, and a key that signs for them.
pub(crate) struct Signer {
    pub network: Network,
    pub genesis: BlockHash,
    pub key: oxchain_primitives::SecretKey,
}

/// Asks `node` which network it is on and unlocks the key `from` for it: a wallet key
/// (the passphrase is asked for), or on dev and regtest a dev account.
pub(crate) fn signer(node: &str, from: &str, data_dir: Option<PathBuf>) -> anyhow::Result<Signer> {
    let (status, answer) = crate::query::call(node, "GET", "/v1/status", "")?;
    if status != 200 {
        bail!("the node answered {status} to /v1/status");
    }
    let network: Network = answer["network"]
        .as_str()
        .unwrap_or("")
        .parse()
        .context("the node's network")?;
    let genesis: BlockHash = answer["genesis"]
        .as_str()
        .unwrap_or("")
        .parse()
        .context("the node's genesis")?;
    // A node that names a network but not its genesis is on another chain: signatures
    // commit to the genesis, so they would be for that chain.
    let known = key_network(network);
    if genesis != known.genesis {
        bail!(
            "the node at {node} says it is on {network} but its genesis is {genesis}, not {network}'s {}: \
             it is on another chain, and nothing is signed for it",
            known.genesis
        );
    }
    let wallet = wallet_for(network, data_dir)?;
    let key = match wallet.show(from) {
        Ok(_) => {
            // Before the passphrase is asked: a key of another network is refused.
            wallet.check_network(from, known)?;
            wallet.unlock(from, &passphrase(false)?, known)?
        }
        Err(oxchain_wallet::WalletError::NotFound(_))
            if network.has_dev_accounts() && genesis::is_dev_account(from) =>
        {
            dev_account_key(from)
        }
        Err(oxchain_wallet::WalletError::NotFound(_)) if network.has_dev_accounts() => bail!(
            "unknown account {from:?}: no key of that name in the wallet, and the dev accounts are {}",
            genesis::DEV_ACCOUNTS.join(" ")
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(Signer {
        network,
        genesis,
        key,
    })
}

impl Signer {
    /// Builds a transfer from this key at its next nonce (asked of `node`), signs it,
    /// and submits it. Returns the transfer and its txid.
    pub(crate) fn submit(
        &self,
        node: &str,
        to: Address,
        amount: Amount,
        fee: Amount,
        data: Vec<u8>,
    ) -> anyhow::Result<(Transfer, String)> {
        let network = self.network;
        let from = Address::from_public_key(&self.key.public_key());
        let (status, account) = crate::query::call(
            node,
            "GET",
            &format!("/v1/accounts/{}", from.to_bech32(network)),
            "",
        )?;
        if status != 200 {
            bail!(
                "{}",
                account["message"]
                    .as_str()
                    .unwrap_or("the node refused the account query")
            );
        }
        let nonce = account["next_nonce"]
            .as_u64()
            .context("the node's answer has no next_nonce")?;
        let mut transfer = Transfer {
            from: self.key.public_key(),
            to,
            amount,
            fee,
            nonce,
            data,
            signature: Signature([0; 64]),
        };
        transfer.sign(&self.key, &self.genesis);
        let body = json!({
            "from": hex::encode(transfer.from.as_bytes()),
            "to": to.to_bech32(network),
            "amount": transfer.amount.units(),
            "fee": transfer.fee.units(),
            "nonce": nonce,
            "data": hex::encode(&transfer.data),
            "signature": hex::encode(transfer.signature.as_bytes()),
        });
        let (status, answer) =
            crate::query::call(node, "POST", "/v1/transactions", &body.to_string())?;
        if status != 202 {
            bail!(
                "{}",
                answer["message"]
                    .as_str()
                    .unwrap_or("the node refused the transfer")
            );
        }
        let txid = answer["txid"].as_str().unwrap_or("?").to_string();
        Ok((transfer, txid))
    }
}

pub(crate) fn send(args: SendArgs) -> anyhow::Result<()> {
    let signer = signer(&args.node, &args.from, args.data_dir.clone())?;
    let network = signer.network;
    let to = match Address::parse(&args.to, network) {
        Ok(address) => address,
        Err(_) if network.has_dev_accounts() && genesis::is_dev_account(&args.to) => {
            genesis::dev_account_address(&args.to)
        }
        Err(_)
            if args.to_new_name
                && network.has_dev_accounts()
                && genesis::is_dev_account_name(&args.to) =>
        {
            let address = genesis::dev_account_address(&args.to);
            println!(
                "note: {:?} is a new name: the coins go to {}, the address made from it",
                args.to,
                address.to_bech32(network)
            );
            address
        }
        Err(_) if network.has_dev_accounts() => bail!(
            "--to {:?} is neither a {network} address nor a dev account ({}); to send to the \
             address made from that name, add --to-new-name",
            args.to,
            genesis::DEV_ACCOUNTS.join(" ")
        ),
        Err(e) => bail!("--to {:?} is not a {network} address: {e}", args.to),
    };
    let data = args.data.unwrap_or_default().into_bytes();
    let (transfer, txid) = signer.submit(&args.node, to, args.amount, args.fee, data)?;
    println!(
        "sent {} coins to {}: txid {txid}",
        transfer.amount,
        to.to_bech32(network),
    );
    println!("fee      {} coins", transfer.fee);
    println!("pending: in the mempool of {}", args.node);
    if args.wait {
        wait_for_confirmation(&args.node, &txid)?;
    }
    Ok(())
}

/// Polls the node until `txid` is in a block, with a spinner on a terminal.
pub(crate) fn wait_for_confirmation(node: &str, txid: &str) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let frames = ['|', '/', '-', '\\'];
    let mut last_line = std::time::Instant::now();
    let mut tick = 0usize;
    loop {
        tick += 1;
        let (status, tx) =
            crate::query::call(node, "GET", &format!("/v1/transactions/{txid}"), "")?;
        match (status, tx["status"].as_str()) {
            (200, Some("confirmed")) => {
                if terminal {
                    eprint!("\r\x1b[2K");
                }
                println!(
                    "confirmed: block {} at height {} ({:.0} s)",
                    tx["block"].as_str().unwrap_or("?"),
                    tx["height"],
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            (200, _) => {}
            (404, _) => bail!(
                "the node no longer knows {txid}: it left the mempool without a block \
                 (replaced, or evicted by higher fees)"
            ),
            (other, _) => bail!("the node answered {other} about {txid}"),
        }
        let waited = started.elapsed().as_secs();
        if terminal {
            eprint!(
                "\r{} waiting for the first confirmation ({waited} s; Ctrl-C stops waiting, the transfer stays pending)",
                frames[tick % frames.len()]
            );
            let _ = std::io::stderr().flush();
        } else if last_line.elapsed() >= std::time::Duration::from_secs(10) {
            eprintln!("waiting for the first confirmation ({waited} s)");
            last_line = std::time::Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
