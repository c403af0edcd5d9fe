//! `ibstream sim`: run the simulated IB Gateway until interrupted.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args as ClapArgs;

use crate::sim::{SimConfig, Simulator};

/// Runs a simulated IB Gateway speaking the TWS API (protobuf era) with a gRPC control plane.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Address of the TWS API socket (IB Gateway paper default port 4002).
    #[arg(long, env = "IBSIM_LISTEN", default_value = "127.0.0.1:4002")]
    pub listen: SocketAddr,
    /// Address of the gRPC control plane (ibsim.v1.SimulatorControl, with reflection).
    #[arg(long, env = "IBSIM_CONTROL", default_value = "127.0.0.1:4003")]
    pub control: SocketAddr,
    /// Run without the gRPC control plane.
    #[arg(long)]
    pub no_control: bool,
    /// Seed of the market model: the same seed gives the same price series.
    #[arg(long, env = "IBSIM_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Milliseconds between model steps of each watched instrument.
    #[arg(long, env = "IBSIM_TICK_INTERVAL_MS", default_value_t = 250)]
    pub tick_interval_ms: u64,
    /// Market-data lines per connection (one more request gets error 101).
    #[arg(long, default_value_t = 100)]
    pub line_limit: u32,
    /// Inbound messages per second per connection (more get error 100).
    #[arg(long, default_value_t = 50)]
    pub max_messages_per_second: u32,
    /// Seconds over the message rate before a client is disconnected; 0 never disconnects.
    #[arg(long, default_value_t = 3)]
    pub disconnect_after_violations: u32,
    /// Managed accounts reported to clients (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "DU1234567")]
    pub accounts: Vec<String>,
    /// Highest server version offered (213..=226; 100..=212 plays an outdated gateway that
    /// protobuf-era clients refuse).
    #[arg(long, default_value_t = 226, value_parser = clap::value_parser!(i32).range(100..=226))]
    pub server_version: i32,
    /// Symbols without a live market-data subscription (comma-separated): live requests
    /// get error 354, delayed ones notice 10167 and delayed ticks.
    #[arg(long, value_delimiter = ',')]
    pub no_live_permission: Vec<String>,
}

impl Args {
    /// The simulator settings these flags describe.
    pub fn config(&self) -> SimConfig {
        SimConfig {
            gateway_listen: self.listen,
            control_listen: (!self.no_control).then_some(self.control),
            seed: self.seed,
            tick_interval: Duration::from_millis(self.tick_interval_ms.max(1)),
            line_limit: self.line_limit,
            max_messages_per_second: self.max_messages_per_second,
            disconnect_after_violations: (self.disconnect_after_violations > 0)
                .then_some(self.disconnect_after_violations),
            accounts: self.accounts.clone(),
            server_version: self.server_version,
            no_live_permission: self.no_live_permission.clone(),
            ..SimConfig::default()
        }
    }
}

/// The log filter from `RUST_LOG`, `info` when it is unset or unreadable. A filter that is
/// not ASCII is refused: tracing-subscriber panics slicing some multi-byte directives.
fn log_filter(spec: Option<String>) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    use tracing_subscriber::EnvFilter;
    match spec {
        Some(spec) if !spec.is_ascii() => anyhow::bail!("RUST_LOG: must be ASCII"),
        Some(spec) => Ok(EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"))),
        None => Ok(EnvFilter::new("info")),
    }
}

/// Starts the simulator and serves until Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let filter = log_filter(std::env::var("RUST_LOG").ok())?;
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let sim = Simulator::start(args.config()).await?;
    println!("simulated IB Gateway on {}", sim.gateway_addr());
    if let Some(control) = sim.control_addr() {
        println!("control plane (ibsim.v1.SimulatorControl) on {control}");
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_filter_that_is_not_ascii_is_refused_not_a_panic() {
        // Found by fuzzing the config loader: this panics inside tracing-subscriber.
        assert!(log_filter(Some(", 1\u{fffd}[".into())).is_err());
        assert!(log_filter(Some("debug,ibstream=trace".into())).is_ok());
        assert!(log_filter(Some("[[[".into())).is_ok(), "unreadable: info");
        assert!(log_filter(None).is_ok());
    }
}
