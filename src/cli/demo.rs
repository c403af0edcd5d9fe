//! `ibstream demo`: everything on one machine with no setup — the simulated IB Gateway,
//! the server (SQLite in a temporary directory, a profile pointing at the simulator,
//! connected on start), the metrics endpoint and the web console — ready for grpcurl,
//! the clients and a browser.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use tokio_util::sync::CancellationToken;

use crate::api::ServerHandle;
use crate::app::{App, ServerOptions};
use crate::config::{Config, LogConfig, LogFormat};
use crate::crypto::MasterKeySource;
use crate::ib::{ConnectionState, SessionSettings};
use crate::sim::{SimConfig, SimHandle, Simulator};
use crate::store::Store;

/// The grpcurl commands the demo suggests, the README shows and the tests run; the
/// address in them is the default listen address, replaced by the bound one.
pub const GRPCURL_EXAMPLES: &str = include_str!("../../examples/grpcurl.txt");
/// The server address as written in [`GRPCURL_EXAMPLES`].
pub const EXAMPLE_ADDRESS: &str = "127.0.0.1:50051";
/// How long the demo waits for the session before announcing itself anyway.
const CONNECT_WAIT: Duration = Duration::from_secs(20);

/// Run the simulated gateway, the server and the metrics endpoint together, ready for
/// grpcurl and the clients; no API keys (loopback only) and a throwaway master key.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// gRPC listen address (port 0 picks a free port).
    #[arg(long, default_value = EXAMPLE_ADDRESS, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Address of the simulated gateway's TWS API socket.
    #[arg(long, default_value = "127.0.0.1:4002", value_name = "ADDR")]
    pub sim_listen: SocketAddr,
    /// Address of the simulator's control plane (ibsim.v1.SimulatorControl).
    #[arg(long, default_value = "127.0.0.1:4003", value_name = "ADDR")]
    pub sim_control: SocketAddr,
    /// Address of the Prometheus endpoint (http://ADDR/metrics).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub metrics_listen: SocketAddr,
    /// Keep the database here (its master key in `master.key` beside it) instead of in
    /// a temporary directory deleted on exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seed of the simulated market: the same seed gives the same prices.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// `tracing` filter for the log on stderr.
    #[arg(
        long,
        env = "IBSTREAM_LOG",
        default_value = "warn,ibstream=info",
        value_name = "FILTER"
    )]
    pub log_filter: String,
}

/// Where the demo keeps its database, and whether it is thrown away.
enum DataDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temporary(dir) => dir.path(),
            DataDir::Kept(path) => path,
        }
    }

    /// A random secret for a temporary database; the key file of a kept one (created on
    /// first use), so the next run can open it.
    fn master_key_source(&self) -> MasterKeySource {
        match self {
            DataDir::Temporary(_) => {
                let mut bytes = [0u8; 32];
                rand::fill(&mut bytes);
                MasterKeySource::Secret(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            DataDir::Kept(path) => {
                MasterKeySource::File(path.join(crate::crypto::MASTER_KEY_FILE_NAME))
            }
        }
    }
}

/// Everything the demo runs; stopped in reverse order of start.
struct Running {
    sim: SimHandle,
    server: ServerHandle,
    metrics_addr: SocketAddr,
    metrics_shutdown: CancellationToken,
    data: DataDir,
    /// Whether the database holds API keys (a kept data directory may): then every call
    /// needs one.
    keys_required: bool,
}

/// Runs `ibstream demo` until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    super::serve::init_logging(&LogConfig {
        format: LogFormat::Text,
        filter: args.log_filter.clone(),
    })?;
    // Before anything starts: a signal during start-up then stops the demo cleanly.
    let mut termination = super::shutdown::Termination::install()?;
    let running = start(&args).await?;
    let state = tokio::select! {
        state = wait_connected(&running.server) => state,
        _ = termination.recv() => return stop(running).await,
    };
    print_banner(&running, state);
    termination.recv().await;
    println!("stopping");
    stop(running).await
}

async fn start(args: &Args) -> anyhow::Result<Running> {
    let sim = Simulator::start(SimConfig {
        gateway_listen: args.sim_listen,
        control_listen: Some(args.sim_control),
        seed: args.seed,
        ..SimConfig::default()
    })
    .await
    .context("cannot start the simulated gateway")?;
    let data = match &args.data_dir {
        Some(dir) => DataDir::Kept(dir.clone()),
        None => DataDir::Temporary(
            tempfile::Builder::new()
                .prefix("ibstream-demo-")
                .tempdir()
                .context("cannot create a temporary data directory")?,
        ),
    };
    let store = Store::open_in_data_dir(data.path())
        .await
        .with_context(|| format!("cannot open the database in {}", data.path().display()))?;
    let master_key = crate::store::unlock_from(&store, &data.master_key_source())
        .await
        .context("cannot unlock the credential store")?;
    point_at_simulator(&store, sim.gateway_addr()).await?;
    let keys_required = store
        .has_api_keys()
        .await
        .context("cannot read the API keys")?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    config.server.listen = args.listen;
    config.metrics.listen = Some(args.metrics_listen);
    let server = App::start(
        ServerOptions {
            config,
            store,
            master_key,
            session: SessionSettings::default(),
        },
        None,
    )
    .await?;
    let metrics_shutdown = CancellationToken::new();
    let metrics_addr = crate::metrics::endpoint::spawn(
        args.metrics_listen,
        server.metrics(),
        metrics_shutdown.clone(),
    )
    .await
    .with_context(|| format!("cannot serve metrics on {}", args.metrics_listen))?;
    Ok(Running {
        sim,
        server,
        metrics_addr,
        metrics_shutdown,
        data,
        keys_required,
    })
}

/// Makes the active profile the simulator's, connected on start.
async fn point_at_simulator(store: &Store, gateway: SocketAddr) -> anyhow::Result<()> {
    let mut profile = store
        .active_profile()
        .await
        .context("cannot read the active profile")?;
    profile.host = gateway.ip().to_string();
    profile.port = gateway.port();
    profile.connect_on_start = true;
    store
        .save_profile(&profile)
        .await
        .context("cannot save the demo profile")?;
    Ok(())
}

/// Waits (bounded) until the session is up, so the banner's commands work at once.
async fn wait_connected(server: &ServerHandle) -> ConnectionState {
    let mut status = server.session().watch_status();
    let connected = matches!(
        tokio::time::timeout(
            CONNECT_WAIT,
            status.wait_for(|s| s.state == ConnectionState::Connected),
        )
        .await,
        Ok(Ok(_))
    );
    if connected {
        ConnectionState::Connected
    } else {
        status.borrow().state
    }
}

/// The lines scripts parse (`name: value`, one per line), then how to use them.
fn print_banner(running: &Running, state: ConnectionState) {
    let grpc = running.server.addr();
    let temporary = matches!(running.data, DataDir::Temporary(_));
    println!("ibstream demo: simulated IB Gateway + ibstream server");
    println!("grpc: {grpc}");
    // The web console shares the gRPC port (gRPC-web over HTTP/1).
    println!("web: http://{grpc}/");
    println!("gateway: {}", running.sim.gateway_addr());
    if let Some(control) = running.sim.control_addr() {
        println!("sim-control: {control}");
    }
    println!("metrics: http://{}/metrics", running.metrics_addr);
    println!(
        "data-dir: {}{}",
        running.data.path().display(),
        if temporary {
            " (temporary, deleted on exit)"
        } else {
            ""
        }
    );
    println!("session: {}", state.as_str().to_ascii_uppercase());
    println!();
    if running.keys_required {
        println!(
            "API keys exist in {}: pass one with --api-key (or IBSTREAM_API_KEY) and to grpcurl with -H 'authorization: Bearer <key>'.",
            running.data.path().display()
        );
    } else {
        println!(
            "No API keys: any local process may call this server (it listens on loopback only)."
        );
    }
    if temporary {
        println!(
            "The master key is a throwaway random secret: nothing stored here outlives the demo."
        );
    }
    println!();
    println!("Try:");
    for line in examples(grpc) {
        println!("  {line}");
    }
    println!();
    println!("ready (Ctrl-C or SIGTERM to stop)");
}

/// The grpcurl examples and the client commands, with this server's address.
fn examples(grpc: SocketAddr) -> Vec<String> {
    let addr = grpc.to_string();
    let mut lines: Vec<String> = GRPCURL_EXAMPLES
        .lines()
        .map(|l| l.replace(EXAMPLE_ADDRESS, &addr))
        .collect();
    let server = if addr == EXAMPLE_ADDRESS {
        String::new()
    } else {
        format!(" --server http://{addr}")
    };
    lines.push("# The terminal client".into());
    lines.push(format!("ibstream quotes AAPL MSFT SPY{server}"));
    lines.push(format!(
        "ibstream chain SPY --expirations 2 --strikes 10{server}"
    ));
    lines.push(format!("ibstream status --watch{server}"));
    lines
}

async fn stop(running: Running) -> anyhow::Result<()> {
    let served = running.server.shutdown().await;
    running.metrics_shutdown.cancel();
    running.sim.shutdown().await;
    drop(running.data);
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_carry_the_bound_address() {
        let lines = examples("127.0.0.1:6000".parse().unwrap());
        assert!(
            lines.iter().all(|l| !l.contains(EXAMPLE_ADDRESS)),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("grpcurl -plaintext 127.0.0.1:6000 list"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("--server http://127.0.0.1:6000"))
        );
    }

    #[test]
    fn default_address_needs_no_server_flag() {
        let lines = examples(EXAMPLE_ADDRESS.parse().unwrap());
        assert!(lines.iter().any(|l| l == "ibstream quotes AAPL MSFT SPY"));
    }
}
