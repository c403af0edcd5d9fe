//! `ibstream serve`: the gRPC server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::{App, ServerOptions};
use crate::config::{ConfigArgs, ConfigOverrides, ENV_VARS, LogConfig, LogFormat, duration};
use crate::crypto::MasterKeySource;
use crate::ib::SessionSettings;
use crate::ib::backoff::Backoff;
use crate::ib::health::HealthSettings;
use crate::store::Store;

/// Serve ConnectionService and MarketDataService over gRPC.
#[derive(Debug, clap::Args)]
#[command(after_long_help = layering_help())]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain; TLS is on when this and --tls-key are set.
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Serve a non-loopback address even though no API key exists (anyone who can reach
    /// it gets admin access).
    #[arg(long)]
    insecure_no_auth: bool,
    /// The master key file [default: <data dir>/master.key, or $IBSTREAM_MASTER_KEY].
    #[arg(long, value_name = "PATH")]
    master_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// `tracing` filter directives, e.g. `info,ibstream=debug`.
    #[arg(long, value_name = "FILTER")]
    log_filter: Option<String>,
    /// An origin whose web pages may call the API (repeat for more); replaces
    /// `web.allowed_origins`. The console's own origin needs no listing when reached by
    /// IP address or as localhost.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Run as one node of a cluster over this NATS server (`nats://host:4222`); the
    /// store must then be PostgreSQL, shared by every node, as is the master key.
    #[arg(long = "cluster", value_name = "URL")]
    cluster_url: Option<String>,
    /// This node's name in the cluster [default: host name and process id].
    #[arg(long = "node", value_name = "NAME")]
    cluster_node: Option<String>,
    #[command(flatten)]
    session: SessionArgs,
}

/// Timings of the IB session's own machinery (the gateway's address, client id, retry
/// attempts and rate come from the active settings profile).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "IB session")]
struct SessionArgs {
    /// How often the health monitor asks the gateway for its time.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    health_interval: Duration,
    /// How long each health check waits for the answer.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    health_timeout: Duration,
    /// Unanswered health checks in a row after which the connection counts as lost.
    #[arg(long, value_name = "N", default_value_t = 3)]
    health_misses: u32,
    /// First delay between reconnection attempts (doubles up to --backoff-cap, jittered).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = duration::parse)]
    backoff_base: Duration,
    /// Longest delay between reconnection attempts.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    backoff_cap: Duration,
    /// How long the circuit breaker stays open before letting one attempt through.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    circuit_cooldown: Duration,
    /// Reconnection attempts the IB client library makes by itself after a drop.
    #[arg(long, value_name = "N", default_value_t = 3)]
    library_reconnect_attempts: u32,
}

impl SessionArgs {
    fn settings(&self) -> SessionSettings {
        SessionSettings {
            health: HealthSettings {
                interval: self.health_interval,
                timeout: self.health_timeout,
                max_missed: self.health_misses.max(1),
            },
            backoff: Backoff {
                base: self.backoff_base,
                cap: self.backoff_cap.max(self.backoff_base),
            },
            circuit_cooldown: self.circuit_cooldown,
            library_reconnect_attempts: self.library_reconnect_attempts,
            ..SessionSettings::default()
        }
    }
}

fn layering_help() -> String {
    let mut help = String::from(
        "Configuration is layered, each layer overriding the one before:\n  \
         defaults < TOML file (--config, or <data dir>/ibstream.toml) < environment < flags.\n\n\
         Environment variables:\n",
    );
    for var in ENV_VARS {
        help.push_str(&format!("  {:<38} {}\n", var.name, var.field));
    }
    help.push_str(
        "  IBSTREAM_MASTER_KEY                    the master secret itself (instead of the key file)\n\n\
         Access: clients send `authorization: Bearer <key>` with keys made by `ibstream keys \
         create`. Without any key the server only listens on loopback (with a warning), unless \
         --insecure-no-auth.\n\
         Stop with Ctrl-C or SIGTERM: streams end with UNAVAILABLE and the IB session closes cleanly.",
    );
    help
}

/// Runs `ibstream serve` until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let overrides = ConfigOverrides {
        master_key_file: args.master_key_file,
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        insecure_no_auth: args.insecure_no_auth.then_some(true),
        metrics_listen: args.metrics_listen,
        log_format: args.log_format,
        log_filter: args.log_filter,
        allowed_origins: (!args.allow_origins.is_empty()).then_some(args.allow_origins),
        cluster_url: args.cluster_url,
        cluster_node: args.cluster_node,
        ..ConfigOverrides::default()
    };
    let config = args.config.load(overrides)?;
    init_logging(&config.log)?;
    let stop = termination()?;
    let store = Store::open_configured(config.database_url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the database")?;
    let source =
        MasterKeySource::resolve(|name| std::env::var(name).ok(), config.master_key_path());
    let master_key = crate::store::unlock_from(&store, &source)
        .await
        .context("cannot unlock the credential store")?;
    let metrics_listen = config.metrics.listen;
    let server = App::start(
        ServerOptions {
            config,
            store,
            master_key,
            session: args.session.settings(),
        },
        None,
    )
    .await?;
    let metrics_shutdown = CancellationToken::new();
    if let Some(addr) = metrics_listen {
        let bound =
            crate::metrics::endpoint::spawn(addr, server.metrics(), metrics_shutdown.clone())
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!(addr = %bound, "metrics at /metrics");
    }
    let result = server.run_until(stop).await;
    metrics_shutdown.cancel();
    result
}

/// Installs the global subscriber: text or JSON lines on stderr, filtered.
pub fn init_logging(log: &LogConfig) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)
        .with_context(|| format!("invalid log filter {:?}", log.filter))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if installed.is_err() {
        // A host that installed its own subscriber first (an embedding program, a test
        // capturing logs) keeps it.
        tracing::debug!("a tracing subscriber is already installed; keeping it");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives while the server starts is not lost (nor fatal).
fn termination() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            } else {
                std::future::pending::<()>().await;
            }
        })
    }
}
