//! What the session looks like from outside: its state machine and the status snapshot
//! published on every change.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::market_data_type::MarketDataType;

/// The session's state machine:
/// `Disconnected → Connecting → Connected → Reconnecting → … (Failed while the circuit is open)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// No session, and none wanted.
    Disconnected,
    /// Opening the first session after a connect request.
    Connecting,
    /// A live session.
    Connected,
    /// The session was lost; reconnecting.
    Reconnecting,
    /// The circuit breaker is open: attempts paused until its cool-down ends.
    Failed,
}

impl ConnectionState {
    /// The number the public API and the `connection_state` gauge use.
    pub fn code(self) -> i64 {
        match self {
            ConnectionState::Disconnected => 1,
            ConnectionState::Connecting => 2,
            ConnectionState::Connected => 3,
            ConnectionState::Reconnecting => 4,
            ConnectionState::Failed => 5,
        }
    }

    /// Lower-case name for logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of the circuit breaker in front of connection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Attempts allowed.
    Closed,
    /// Too many consecutive failures: no attempt until the cool-down ends.
    Open,
    /// The cool-down ended: one probe allowed.
    HalfOpen,
}

/// An error the session met, as shown in its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// IB error code when IB reported it.
    pub code: Option<i32>,
    pub message: String,
    pub time: OffsetDateTime,
}

/// A data farm's state as IB's farm notices report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarmStatus {
    pub ok: bool,
    /// The notice code that set this state.
    pub code: i32,
    pub time: OffsetDateTime,
}

/// Everything the session publishes about itself. Counters that change on every message
/// (messages sent, rate-limiter delay, lines) live in [`crate::metrics::Metrics`] and are
/// read when a status is rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStatus {
    pub state: ConnectionState,
    /// When `state` was entered.
    pub since: OffsetDateTime,
    /// Whether the server wants a session (false after a disconnect request).
    pub wanted: bool,
    /// Profile of the current or last attempt.
    pub profile: String,
    pub host: String,
    pub port: u16,
    pub client_id: i32,
    pub server_version: Option<i32>,
    pub managed_accounts: Vec<String>,
    pub last_error: Option<LastError>,
    /// Failed attempts since the last live session.
    pub reconnect_attempt: u32,
    /// When the next attempt is due, while waiting for one.
    pub next_retry: Option<OffsetDateTime>,
    pub circuit: CircuitState,
    pub heartbeat_rtt: Option<Duration>,
    pub last_heartbeat: Option<OffsetDateTime>,
    /// Per farm name, from IB's farm notices.
    pub farms: BTreeMap<String, FarmStatus>,
    /// IB reported a competing live session for the login (10197).
    pub competing_session: bool,
    /// IB reported its own link to IB's servers lost (1100) and not yet restored.
    pub ib_connectivity_lost: bool,
    /// Increases with every (re)established session.
    pub generation: u64,
    /// The type the session last asked the gateway for (`reqMarketDataType`), `None`
    /// before it asked; a fallback to delayed data shows here, not the profile's type.
    pub market_data_type: Option<MarketDataType>,
    /// Messages per second allowed by the active rate limiter.
    pub message_rate: u32,
}

impl SessionStatus {
    /// The status before anything happened.
    pub fn initial(now: OffsetDateTime) -> SessionStatus {
        SessionStatus {
            state: ConnectionState::Disconnected,
            since: now,
            wanted: false,
            profile: String::new(),
            host: String::new(),
            port: 0,
            client_id: 0,
            server_version: None,
            managed_accounts: Vec::new(),
            last_error: None,
            reconnect_attempt: 0,
            next_retry: None,
            circuit: CircuitState::Closed,
            heartbeat_rtt: None,
            last_heartbeat: None,
            farms: BTreeMap::new(),
            competing_session: false,
            ib_connectivity_lost: false,
            generation: 0,
            market_data_type: None,
            message_rate: 0,
        }
    }

    /// Shows the parameters of `profile` (the one in use or about to be).
    pub fn show_profile(&mut self, profile: &super::backend::SessionProfile) {
        self.profile = profile.name.clone();
        self.host = profile.endpoint.host.clone();
        self.port = profile.endpoint.port;
        self.client_id = profile.endpoint.client_id;
        self.message_rate = profile.message_rate;
    }

    /// True when the session can serve requests.
    pub fn is_serving(&self) -> bool {
        self.state == ConnectionState::Connected && !self.ib_connectivity_lost
    }
}
