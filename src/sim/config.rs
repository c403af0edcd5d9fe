//! Settings of a simulated gateway, their validation, and why a start can fail.

use std::net::SocketAddr;
use std::time::Duration;

use super::handshake::{MAX_SERVER_VERSION, OLDEST_ANNOUNCED_VERSION};

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

/// Checks every setting a running simulator relies on.
pub(crate) fn validate(config: &SimConfig) -> Result<(), SimError> {
    let invalid = |field, reason: &str| {
        Err(SimError::InvalidConfig {
            field,
            reason: reason.into(),
        })
    };
    if !(OLDEST_ANNOUNCED_VERSION..=MAX_SERVER_VERSION).contains(&config.server_version) {
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
