//! The `ibstream` command line: one module per subcommand.

use clap::{Parser, Subcommand};

pub mod keys;
pub mod live;
pub mod remote;
pub mod shutdown;
pub mod sim;
pub mod table;

/// gRPC market-data server for Interactive Brokers.
#[derive(Debug, Parser)]
#[command(name = "ibstream", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand has its own module with an `Args` struct and a `run` function.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a simulated IB Gateway (TWS API) with a gRPC control plane.
    Sim(sim::Args),
    /// Create, list and revoke API keys.
    Keys(keys::Args),
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sim(args) => sim::run(args).await,
        Command::Keys(args) => keys::run(args).await,
    }
}
