//! What the session needs from the rest of the server: the active profile's parameters
//! and somewhere to record its history. Kept as a trait so the session knows nothing of
//! the database.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::connector::Endpoint;
use super::state::ConnectionState;
use crate::market_data_type::MarketDataType;

/// The parameters of one session, read from the active profile before every attempt so
/// that edited settings take effect on the next (re)connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionProfile {
    pub name: String,
    pub endpoint: Endpoint,
    pub connection_timeout: Duration,
    /// Consecutive failures before the circuit breaker opens.
    pub retry_attempts: u32,
    pub message_rate: u32,
    pub market_data_type: MarketDataType,
}

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEventKind {
    StateChanged,
    Error,
    Notice,
}

/// One entry of the connection history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    pub time: OffsetDateTime,
    pub kind: SessionEventKind,
    /// The state after the event.
    pub state: ConnectionState,
    pub profile: String,
    pub code: Option<i32>,
    pub message: String,
}

/// Where profiles come from and events go.
pub trait SessionBackend: Send + Sync + 'static {
    /// The active profile, or why it cannot be read.
    fn active_profile(&self) -> BoxFuture<'_, Result<SessionProfile, String>>;
    /// Persists one event; failures are the implementation's to log.
    fn record_event(&self, event: SessionEvent) -> BoxFuture<'_, ()>;
}

/// Events waiting to be written; past this many the newest are dropped (and logged)
/// rather than stalling the session on a slow database.
const EVENT_QUEUE: usize = 1024;

/// Writes events in order on a task of their own. The task ends when the sender drops.
pub(crate) fn spawn_event_writer(
    backend: Arc<dyn SessionBackend>,
) -> (mpsc::Sender<SessionEvent>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<SessionEvent>(EVENT_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            backend.record_event(event).await;
        }
    });
    (tx, task)
}
