//! `ibstream drill`: the chaos drill against a child `ibstream demo` (see
//! [`crate::drill`]). Prints the summary; exits non-zero when a check failed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::config::duration;
use crate::drill::{self, Options};

/// Run the server and a simulated gateway, inject seeded faults while clients stream,
/// and check that the server keeps its guarantees.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long faults are injected and clients stream (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = duration::parse, value_name = "DURATION")]
    pub duration: Duration,
    /// Seed of the fault schedule and the clients (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent clients, each with its own connection and API key.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,
    /// Also write the summary to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Runs `ibstream drill`; a Ctrl-C ends it (and its child) at once.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = Options {
        exe: std::env::current_exe().context("cannot find the ibstream binary")?,
        duration: args.duration,
        seed,
        clients: args.clients as usize,
    };
    println!(
        "drill: seed {seed}, {} of faults, {} clients (replay with --seed {seed})",
        duration::format(args.duration),
        options.clients
    );
    let mut termination = super::shutdown::Termination::install()?;
    let summary = tokio::select! {
        summary = drill::run(&options) => summary?,
        _ = termination.recv() => anyhow::bail!("interrupted; the server was stopped"),
    };
    let text = summary.render();
    print!("{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, &text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    anyhow::ensure!(
        summary.passed(),
        "{} drill check(s) failed",
        summary.violations.len()
    );
    Ok(())
}
