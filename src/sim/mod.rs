//! The simulated IB Gateway. It speaks the TWS wire protocol of the protobuf era (server
//! versions 213..226) to an unmodified `ibapi` client: handshake, client ids, managed
//! accounts, farm notices, market data (live, frozen, delayed; streaming and snapshot;
//! option computations), contract details, option chain parameters, symbol search, the
//! pacing limit and the market-data line budget. A seeded market model makes runs
//! repeatable, and a control plane ([`SimControl`], gRPC `ibsim.v1.SimulatorControl`)
//! reports statistics and injects faults.
//!
//! Layout, following a request: [`frame`] (length-prefixed frames) → `handshake` →
//! `connection` (one socket: writer task, read loop) → `session` (pacing, dispatch) →
//! `market_data` / `reference` (answers) ← `feed` (one producer per watched instrument)
//! ← [`model`] (random walk, Black-Scholes options) over [`universe`] (instruments,
//! option chains).

mod catalog;
mod chains;
mod connection;
mod contract_data;
mod control;
mod feed;
pub mod frame;
mod grpc;
mod handshake;
mod market_data;
pub mod model;
mod option_model;
mod reference;
mod session;
mod state;
pub mod ticks;
pub mod universe;
mod walk;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

pub use control::{SimControl, SimStats};
pub use grpc::ControlService;
pub use handshake::{MAX_SERVER_VERSION, MIN_SERVER_VERSION};
use state::Shared;

/// Settings of a simulated gateway.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address of the TWS API socket (port 0 picks a free port).
    pub gateway_listen: SocketAddr,
    /// Address of the gRPC control plane; `None` runs without one.
    pub control_listen: Option<SocketAddr>,
    /// Seed of the market model: the same seed gives the same price series.
    pub seed: u64,
    /// Interval between model steps of each watched instrument.
    pub tick_interval: Duration,
    /// Market-data lines per connection; one more request gets error 101.
    pub line_limit: u32,
    /// Inbound messages per second per connection; more get error 100.
    pub max_messages_per_second: u32,
    /// Seconds over the message rate before the client is disconnected (`None`: never).
    pub disconnect_after_violations: Option<u32>,
    /// Accounts reported in ManagedAccounts.
    pub accounts: Vec<String>,
    /// Highest server version offered (213..=226). Values from 100 to 212 play an outdated
    /// gateway that announces that version, which protobuf-era clients refuse.
    pub server_version: i32,
    /// Symbols without a live market-data subscription: type 1 requests get error 354,
    /// delayed types get notice 10167 and delayed ticks.
    pub no_live_permission: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            control_listen: None,
            seed: 7,
            tick_interval: Duration::from_millis(250),
            line_limit: 100,
            max_messages_per_second: 50,
            disconnect_after_violations: Some(3),
            accounts: vec!["DU1234567".to_string()],
            server_version: MAX_SERVER_VERSION,
            no_live_permission: Vec::new(),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The gateway socket could not be bound.
    #[error("cannot listen for TWS API clients on {addr}: {source}")]
    GatewayBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The control-plane socket could not be bound.
    #[error("cannot listen for the control plane on {addr}: {source}")]
    ControlBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor set.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    /// A setting is out of range.
    #[error("invalid setting {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
}

/// Starts simulated gateways.
#[derive(Debug)]
pub struct Simulator;

/// A running simulator; [`SimHandle::shutdown`] stops it (dropping it stops it too).
#[derive(Debug)]
pub struct SimHandle {
    gateway_addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    control: SimControl,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

fn validate(config: &SimConfig) -> Result<(), SimError> {
    let invalid = |field, reason: &str| {
        Err(SimError::InvalidConfig {
            field,
            reason: reason.into(),
        })
    };
    if !(handshake::OLDEST_ANNOUNCED_VERSION..=MAX_SERVER_VERSION).contains(&config.server_version)
    {
        return invalid("server_version", "must be within 100..=226");
    }
    if config.tick_interval.is_zero() {
        return invalid("tick_interval", "must be positive");
    }
    if config.max_messages_per_second == 0 {
        return invalid("max_messages_per_second", "must be at least 1");
    }
    if config.accounts.iter().any(|a| a.contains(',')) {
        return invalid("accounts", "account ids cannot contain commas");
    }
    Ok(())
}

impl Simulator {
    /// Binds the sockets and starts serving.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        validate(&config)?;
        let listener = TcpListener::bind(config.gateway_listen)
            .await
            .map_err(|source| SimError::GatewayBind {
                addr: config.gateway_listen,
                source,
            })?;
        let gateway_addr = listener
            .local_addr()
            .map_err(|source| SimError::GatewayBind {
                addr: config.gateway_listen,
                source,
            })?;
        let shutdown = CancellationToken::new();
        let today = time::OffsetDateTime::now_utc().date();
        let universe = Arc::new(universe::Universe::build(today));
        let shared = Shared::new(&config, universe, shutdown.clone());
        let control = SimControl::new(shared.clone());
        let tasks = TaskTracker::new();
        let control_addr = match config.control_listen {
            Some(addr) => {
                Some(start_control(addr, control.clone(), &tasks, shutdown.clone()).await?)
            }
            None => None,
        };
        tasks.spawn(accept_loop(listener, shared, tasks.clone()));
        info!(%gateway_addr, ?control_addr, seed = config.seed, "simulated gateway listening");
        Ok(SimHandle {
            gateway_addr,
            control_addr,
            control,
            shutdown,
            tasks,
        })
    }
}

async fn start_control(
    addr: SocketAddr,
    control: SimControl,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<SocketAddr, SimError> {
    use crate::proto::ibsim::v1::simulator_control_server::SimulatorControlServer;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::ControlBind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| SimError::ControlBind { addr, source })?;
    // Both reflection versions: grpcurl releases before 1.9 speak only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .with_service_name("ibsim.v1.SimulatorControl")
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| SimError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| SimError::Reflection(e.to_string()))?;
    let server = tonic::transport::Server::builder()
        .add_service(SimulatorControlServer::new(ControlService::new(control)))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tasks.spawn(async move {
        if let Err(e) = server
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await
        {
            error!(error = %e, "control plane stopped");
        }
    });
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tasks: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tasks.spawn(connection::serve(shared.clone(), stream, peer));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl SimHandle {
    /// Address of the TWS API socket.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway_addr
    }

    /// Address of the gRPC control plane, if one runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// In-process access to the control-plane operations.
    pub fn control(&self) -> &SimControl {
        &self.control
    }

    /// Closes every connection and the listeners, and waits for the tasks to end.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
