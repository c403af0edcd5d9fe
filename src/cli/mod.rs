//! The `ibstream` command line: one module per subcommand, and the process set-up
//! `main` does first ([`allocator`]).

use clap::{Parser, Subcommand};

pub mod allocator;
pub mod bars;
pub mod chain;
pub mod demo;
pub mod drill;
pub mod keys;
pub mod live;
pub mod quotes;
pub mod remote;
pub mod serve;
pub mod shutdown;
pub mod sim;
pub mod status;
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
    /// Run the gRPC server.
    Serve(Box<serve::Args>),
    /// Run the simulated gateway, the server and the metrics endpoint together, ready to try.
    Demo(demo::Args),
    /// Stream live quotes from a server: a refreshing table, or lines when piped.
    Quotes(quotes::Args),
    /// Historical bars from a server, and with --follow live bars after them.
    Bars(bars::Args),
    /// Stream an option chain with Greeks from a server: calls | strike | puts.
    Chain(chain::Args),
    /// Show the server's IB session: state, version, heartbeat, lines, message rate.
    Status(status::Args),
    /// Chaos drill: the server and a simulated gateway under seeded faults, checked.
    Drill(drill::Args),
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sim(args) => sim::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Serve(args) => serve::run(*args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Quotes(args) => quotes::run(args).await,
        Command::Bars(args) => bars::run(args).await,
        Command::Chain(args) => chain::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Drill(args) => drill::run(args).await,
    }
}
