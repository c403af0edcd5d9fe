//! The simulated IB Gateway. It speaks the TWS wire protocol of the protobuf era (server
//! versions 213..226) to an unmodified `ibapi` client: handshake, client ids, managed
//! accounts, farm notices, market data (live, frozen, delayed; streaming and snapshot;
//! option computations), contract details, option chain parameters, symbol search, the
//! pacing limit and the market-data line budget. A seeded market model makes runs
//! repeatable, and a control plane ([`SimControl`], gRPC `ibsim.v1.SimulatorControl`)
//! reports statistics and injects faults.
//!
//! Modules, in layers: a module uses only those listed before it, so dependencies run one
//! way (wire → market → shared state → requests → session → connection; control on top).
//! 1. Wire: [`frame`] (length-prefixed frames, message ids) and `handshake` (`API\0`,
//!    version negotiation).
//! 2. Market: `catalog` (listed underlyings), `chains` (option chains), [`universe`]
//!    (every instrument, contract look-up), [`ticks`] (tick messages, encoded once per
//!    update), `walk` (the underlyings' random walk), `option_model` (Black-Scholes
//!    options over it), [`model`] (the whole market, stepped per instrument),
//!    `contract_data` (contract and contract-details messages).
//! 3. Shared state: `config` ([`SimConfig`], [`SimError`], limits), `feed` (one producer
//!    per watched instrument), `state` (settings, registry, statistics, a connection's
//!    outbox).
//! 4. Requests: `cmd` parses a frame once into a typed command and holds one handler per
//!    request kind (market data, reference data, gateway queries, invalid requests).
//! 5. Session: `pacing` (the message rate) and `session` (count, pace, dispatch).
//! 6. Connection: `inbound` (frames read ahead of their handling, so a closed socket is
//!    seen at once) and `connection` (handshake, registration, writer task, read loop).
//! 7. Control: `control` ([`SimControl`], in process) and `grpc` (its gRPC adapter).
//!
//! This root starts the listeners and the accept loop.

mod catalog;
mod chains;
mod cmd;
mod config;
mod connection;
mod contract_data;
mod control;
mod feed;
pub mod frame;
mod grpc;
mod handshake;
mod historical_pacing;
pub mod history;
mod inbound;
pub mod model;
mod option_model;
mod pacing;
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

pub use config::{MAX_DURATION, SimConfig, SimError};
pub use control::{SimControl, SimStats};
pub use grpc::ControlService;
pub use handshake::{MAX_SERVER_VERSION, MIN_SERVER_VERSION};
use state::Shared;

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

impl Simulator {
    /// Binds the sockets and starts serving.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        config::validate(&config)?;
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
