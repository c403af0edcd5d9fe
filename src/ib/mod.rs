//! The one IB session: connect, health monitor, reconnect with backoff, circuit breaker,
//! notices to status, connection tests.
//!
//! - [`session`]: the handle the server drives ([`Session`]) and its settings.
//! - `supervisor`: the task that owns the `ibapi` client and the state machine.
//! - [`state`]: the state machine's states and the published [`SessionStatus`].
//! - [`backoff`], [`circuit`], [`health`]: the policies it uses.
//! - [`notices`]: the one reading of IB's notices, applied to the status and broadcast.
//! - [`pacer`]: the one pacer every message to the gateway waits for.
//! - [`data_type`]: the one place that asks the gateway for a market-data type.
//! - [`connector`]: opening a client and typing its failures; [`probe`]: connection tests;
//!   [`port_probe`]: whether the gateway's port takes clients again, without a handshake.
//! - [`backend`]: what the session needs from the server (profile, event history).
//! - [`link`]: how other layers borrow the live client.

pub mod backend;
pub mod backoff;
pub mod circuit;
pub mod connector;
pub mod data_type;
pub mod error;
pub mod health;
pub mod historical_pacer;
pub mod link;
pub mod notices;
pub mod pacer;
pub mod port_probe;
pub mod probe;
mod reporter;
pub mod session;
pub mod state;
mod supervisor;

pub use backend::{SessionBackend, SessionEvent, SessionEventKind, SessionProfile};
pub use connector::{ConnectFailure, ConnectFailureKind, Endpoint};
pub use data_type::DataTypeSwitch;
pub use error::SessionError;
pub use link::{Link, LinkWatch};
pub use notices::{FarmKind, NoticeEffect, SessionNotice};
pub use pacer::MessagePacer;
pub use session::{RECOVERY_BOUND, Session, SessionSettings};
pub use state::{CircuitState, ConnectionState, SessionStatus};
