//! The handle through which the server drives the one IB session.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::backend::{SessionBackend, SessionProfile, spawn_event_writer};
use super::backoff::Backoff;
use super::data_type::DataTypeSwitch;
use super::error::SessionError;
use super::health::HealthSettings;
use super::link::{Link, LinkWatch};
use super::notices::SessionNotice;
use super::pacer::MessagePacer;
use super::state::SessionStatus;
use super::supervisor::Supervisor;
use crate::metrics::Metrics;

/// How soon, with the default settings, fresh quotes follow a gateway that takes
/// clients again after being away (a restart, a refusing window) for as long as the
/// server wants a session. Why it holds: while `ibapi` reconnects by itself its longest
/// step between attempts is 3 s (Fibonacci 1, 2, 3 s for the default 3 attempts); after
/// that the session notices the port accepting within one
/// [`PORT_PROBE_INTERVAL`](super::port_probe::PORT_PROBE_INTERVAL) plus a 200 ms hold,
/// whatever its backoff or circuit cool-down says. The handshake, the market-data type
/// and the resubscriptions take well under a second more on a LAN; the rest is margin.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// Timings of the session's own machinery (the per-gateway parameters come from the
/// active profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    pub health: HealthSettings,
    /// Delays between the session's own reconnection attempts.
    pub backoff: Backoff,
    /// How long an open circuit waits before allowing a probe.
    pub circuit_cooldown: Duration,
    /// Attempts `ibapi` makes on its own after a drop before the session takes over.
    pub library_reconnect_attempts: u32,
    /// How often the session looks at whether `ibapi` still has its socket.
    pub link_poll_interval: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            health: HealthSettings::default(),
            backoff: Backoff::default(),
            circuit_cooldown: Duration::from_secs(60),
            library_reconnect_attempts: 3,
            link_poll_interval: Duration::from_millis(200),
        }
    }
}

pub(crate) type Reply = oneshot::Sender<Result<SessionStatus, SessionError>>;

/// Requests to the supervisor task.
pub(crate) enum Command {
    Connect(Reply),
    Disconnect(Reply),
    Reconnect(Reply),
    Shutdown(oneshot::Sender<()>),
}

/// Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct Session {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<SessionStatus>,
    link: LinkWatch,
    pacer: MessagePacer,
    notices: broadcast::Sender<SessionNotice>,
    data_types: DataTypeSwitch,
}

/// Classified notices that may wait for a slow follower before the oldest are dropped.
const NOTICE_QUEUE: usize = 256;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.status.borrow().state)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts the supervisor task, disconnected. Returns the handle and the task, which
    /// ends after [`Session::shutdown`] once the session is closed and its events written.
    ///
    /// `profile`, when given, is shown in the status until the first attempt reads the
    /// active profile again.
    pub fn start(
        backend: Arc<dyn SessionBackend>,
        settings: SessionSettings,
        metrics: Arc<Metrics>,
        profile: Option<&SessionProfile>,
    ) -> (Session, JoinHandle<()>) {
        let (commands_tx, commands_rx) = mpsc::channel(32);
        let mut initial = SessionStatus::initial(OffsetDateTime::now_utc());
        if let Some(profile) = profile {
            initial.show_profile(profile);
        }
        metrics.connection_state.set(initial.state.code());
        let (status_tx, status_rx) = watch::channel(initial);
        let status_tx = Arc::new(status_tx);
        let (link_tx, link_rx) = watch::channel::<Option<Link>>(None);
        // IB's documented rate until the first attempt reads the active profile's.
        let pacer = MessagePacer::new(50, metrics.clone());
        let (notices, _) = broadcast::channel(NOTICE_QUEUE);
        let data_types = DataTypeSwitch::new(pacer.clone(), status_tx.clone());
        let (events, writer) = spawn_event_writer(backend.clone());
        let supervisor = Supervisor::new(super::supervisor::Parts {
            backend,
            settings,
            metrics,
            pacer: pacer.clone(),
            notices: notices.clone(),
            data_types: data_types.clone(),
            status: status_tx,
            link: link_tx,
            events,
            commands: commands_rx,
        });
        let task = tokio::spawn(async move {
            supervisor.run().await;
            // The supervisor dropped its event sender: the writer drains and ends.
            let _ = writer.await;
        });
        let session = Session {
            commands: commands_tx,
            status: status_rx,
            link: link_rx,
            pacer,
            notices,
            data_types,
        };
        (session, task)
    }

    /// The current status.
    pub fn status(&self) -> SessionStatus {
        self.status.borrow().clone()
    }

    /// Every status change; ends (the sender closes) when the session stops.
    pub fn watch_status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// The live client, `None` while there is none.
    pub fn link(&self) -> LinkWatch {
        self.link.clone()
    }

    /// The pacer every message sent through the session's client waits for, at the
    /// active profile's rate.
    pub fn pacer(&self) -> MessagePacer {
        self.pacer.clone()
    }

    /// IB's notices, classified once, from now on: every session's, each stamped with
    /// its link generation.
    pub fn notices(&self) -> broadcast::Receiver<SessionNotice> {
        self.notices.subscribe()
    }

    /// The one way to ask the gateway for a market-data type.
    pub fn data_types(&self) -> DataTypeSwitch {
        self.data_types.clone()
    }

    /// Wants a session with the active profile; resets the circuit breaker. Answers once
    /// the session is up or the first attempt failed (retries go on in the background).
    pub async fn connect(&self) -> Result<SessionStatus, SessionError> {
        self.request(Command::Connect).await
    }

    /// Closes the session and stops reconnecting.
    pub async fn disconnect(&self) -> Result<SessionStatus, SessionError> {
        self.request(Command::Disconnect).await
    }

    /// Drops the session and opens a new one.
    pub async fn reconnect(&self) -> Result<SessionStatus, SessionError> {
        self.request(Command::Reconnect).await
    }

    /// Closes the session cleanly and stops the supervisor. Idempotent.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn request(&self, make: fn(Reply) -> Command) -> Result<SessionStatus, SessionError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| SessionError::Stopped)?;
        rx.await.map_err(|_| SessionError::Stopped)?
    }
}
