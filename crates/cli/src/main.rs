//! The `oxchain` command.
//!
//! # Layout
//! - `main.rs`: the command-line surface (clap) and dispatch.
//! - [`bench`]: `oxchain bench ...`, figures printed beside a reference measured in the
//!   same run.

mod bench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// oxchain: a proof-of-work blockchain node.
#[derive(Debug, Parser)]
#[command(
    name = "oxchain",
    version,
    about = "oxchain: a proof-of-work blockchain node (so far: the consensus core and its benchmarks)",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure this machine: figures beside a reference (OpenSSL) from the same run.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { which } => bench::run(which),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
