//! The `oxchain` command.
//!
//! # Layout
//! - `main.rs`: the command-line surface (clap) and dispatch.
//! - [`node`]: `oxchain node`, a node until SIGINT or SIGTERM.
//! - [`devnet`]: `oxchain devnet`, a local network of node processes.
//! - [`query`]: `oxchain status | block | tx | account | mine` against a node's API.
//! - [`wallet`]: `oxchain wallet ...` (encrypted keys) and `oxchain send`.
//! - [`notary`]: `oxchain notarize` and `oxchain verify` (a light client).
//! - [`bench`]: `oxchain bench ...`, figures printed beside a reference measured in the
//!   same run.

mod bench;
mod devnet;
mod lab;
mod node;
mod notary;
mod query;
mod wallet;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// oxchain: a proof-of-work blockchain node.
#[derive(Debug, Parser)]
#[command(
    name = "oxchain",
    version,
    about = "oxchain: a proof-of-work blockchain node",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node: the chain in a data directory, the miner, the network, and the HTTP API.
    Node(node::NodeArgs),
    /// Run a local network of nodes on the dev network, wired together and mining.
    Devnet(devnet::DevnetArgs),
    /// A network lab: N nodes, each in a network namespace of its own on one bridge
    /// (root; loopback otherwise), discovering each other from one seed; measures how
    /// blocks spread. Removes everything it made when it ends.
    Lab(lab::LabArgs),
    /// Keys, encrypted at rest: new, list, show, import, export.
    Wallet {
        #[command(subcommand)]
        command: wallet::WalletCommand,
    },
    /// Build and sign a transfer with a wallet key, and send it to a node.
    Send(wallet::SendArgs),
    /// Record a file's SHA-256 on the chain and write a receipt (FILE.oxproof).
    Notarize(notary::NotarizeArgs),
    /// Check, as a light client, that a file was recorded and when. Exit codes: 0
    /// recorded, 3 not recorded, 4 a proof, receipt or node's headers do not check, 5 no
    /// node could be reached.
    Verify(notary::VerifyArgs),
    /// Ask a node: status, a block, a transaction, an account; or mine blocks.
    #[command(flatten)]
    Query(query::Query),
    /// Measure this machine: figures beside a reference (OpenSSL) from the same run.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
    /// Print a shell completion script, e.g. `oxchain completions bash >
    /// ~/.local/share/bash-completion/completions/oxchain`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// What is logged when `RUST_LOG` is not set: the events of the crates that log (chain,
/// net, api) from `info` up, and every other crate's warnings (but Kademlia's, which
/// warns when its automatic refresh finds no peer yet, a normal state at start).
const DEFAULT_LOG: &str =
    "warn,libp2p_kad=error,oxchain_chain=info,oxchain_net=info,oxchain_api=info";

fn main() -> ExitCode {
    // Logs go to stderr, filtered by RUST_LOG (for example RUST_LOG=oxchain_net=debug);
    // stdout keeps what commands print for people and scripts.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Node(args) => match matches.subcommand() {
            Some((_, node_matches)) => node::run(args, node_matches),
            None => unreachable!("clap parsed the node subcommand"),
        },
        Command::Devnet(args) => devnet::run(args),
        Command::Lab(args) => lab::run(args),
        Command::Query(query) => query::run(query),
        Command::Wallet { command } => wallet::run(command),
        Command::Send(args) => wallet::send(args),
        Command::Notarize(args) => notary::notarize(args),
        Command::Verify(args) => notary::verify(args),
        Command::Bench { which } => bench::run(which),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "oxchain",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `verify`'s verdicts have exit codes of their own.
        Err(e) if e.downcast_ref::<notary::Verdict>().is_some() => {
            let code = e.downcast_ref::<notary::Verdict>().map_or(1, |v| v.code);
            if wants_json(&matches) {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
        // With --json, a failure is JSON too, on stdout where the answer would have
        // been: `{"error": "..."}`.
        Err(e) if wants_json(&matches) => {
            println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the subcommand that ran was given `--json`.
fn wants_json(matches: &clap::ArgMatches) -> bool {
    matches
        .subcommand()
        .and_then(|(_, m)| m.try_get_one::<bool>("json").ok().flatten().copied())
        .unwrap_or(false)
}
