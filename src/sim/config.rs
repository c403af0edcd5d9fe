//! Settings of a simulated gateway, their validation, and why a start can fail.

use std::net::SocketAddr;
use std::time::Duration;

use super::handshake::{MAX_SERVER_VERSION, OLDEST_ANNOUNCED_VERSION};

/// Longest duration the simulator takes anywhere: the tick interval (setting or control
/// plane), a refusal window, a stall. A clock cannot add durations of any size (an
/// `Instant` plus `u64::MAX` seconds does not exist), and a year is far beyond any test.
/// The in-process [`SimControl`](super::SimControl) clamps to it; the gRPC control plane
/// answers `INVALID_ARGUMENT` above it.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Settings of a simulated gateway.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address of the TWS API socket (port 0 picks a free port).
    pub gateway_listen: SocketAddr,
    /// Address of the gRPC control plane; `None` runs without one.
    pub control_listen: Option<SocketAddr>,
    /// Seed of the market model: the same seed gives the same price series.
    pub seed: u64,
    /// Interval between model steps of each watched instrument (at most [`MAX_DURATION`]).
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
    /// IB's historical-data pacing rules (error 162 when broken); tests shrink the windows.
    pub historical_rules: crate::ib::historical_pacer::HistoricalRules,
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
            historical_rules: crate::ib::historical_pacer::HistoricalRules::IB,
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
    if config.tick_interval > MAX_DURATION {
        return invalid("tick_interval", "must be at most 365 days");
    }
    if config.max_messages_per_second == 0 {
        return invalid("max_messages_per_second", "must be at least 1");
    }
    let rules = &config.historical_rules;
    if rules.identical_gap > MAX_DURATION
        || rules.burst_window > MAX_DURATION
        || rules.window > MAX_DURATION
    {
        return invalid("historical_rules", "windows must be at most 365 days");
    }
    if config.accounts.iter().any(|a| a.contains(',')) {
        return invalid("accounts", "account ids cannot contain commas");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: SimConfig) -> Option<&'static str> {
        match validate(&config) {
            Err(SimError::InvalidConfig { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn the_tick_interval_must_fit_the_clock() {
        let with = |tick_interval| SimConfig {
            tick_interval,
            ..SimConfig::default()
        };
        assert_eq!(field_of(with(Duration::ZERO)), Some("tick_interval"));
        assert_eq!(field_of(with(Duration::MAX)), Some("tick_interval"));
        assert_eq!(
            field_of(with(MAX_DURATION + Duration::from_nanos(1))),
            Some("tick_interval")
        );
        assert_eq!(field_of(with(MAX_DURATION)), None);
        assert_eq!(field_of(SimConfig::default()), None);
    }
}
