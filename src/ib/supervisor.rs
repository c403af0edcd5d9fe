//! The task that owns the IB session: connects, watches the link, reconnects with
//! backoff behind a circuit breaker, and answers the handle's requests.
//!
//! `ibapi` re-establishes a dropped socket by itself (same `Client`) a few times; the
//! supervisor notices that through `is_connected()`/`wait_connected()` and publishes a
//! new link generation. When `ibapi` gives up, or the health monitor finds the gateway
//! silent, the supervisor drops the client and reconnects on its own, for as long as a
//! session is wanted.
//!
//! This file holds the state machine and the requests it answers in every state; the
//! connecting phase (retry policy) is in [`connect`], the live phase (watching a
//! connected client) in [`live`].

use std::sync::Arc;
use std::time::Duration;

use ibapi::subscriptions::NoticeStream;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{broadcast, mpsc, watch};

use super::backend::{SessionBackend, SessionEvent};
use super::circuit::CircuitBreaker;
use super::data_type::DataTypeSwitch;
use super::error::SessionError;
use super::link::Link;
use super::notices::SessionNotice;
use super::pacer::MessagePacer;
use super::reporter::Reporter;
use super::session::{Command, Reply, SessionSettings};
use super::state::{CircuitState, ConnectionState, SessionStatus};
use crate::market_data_type::MarketDataType;
use crate::metrics::Metrics;

mod connect;
mod live;

/// How long closing a client may take before it is abandoned.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Parts {
    pub backend: Arc<dyn SessionBackend>,
    pub settings: SessionSettings,
    pub metrics: Arc<Metrics>,
    pub pacer: MessagePacer,
    pub notices: broadcast::Sender<SessionNotice>,
    pub data_types: DataTypeSwitch,
    pub status: Arc<watch::Sender<SessionStatus>>,
    pub link: watch::Sender<Option<Link>>,
    pub events: mpsc::Sender<SessionEvent>,
    pub commands: mpsc::Receiver<Command>,
}

/// What the supervisor does next.
enum Next {
    /// No session wanted: wait for a request.
    Idle,
    /// A session is wanted and there is none: attempt, now or after a delay.
    Establish {
        immediate: bool,
    },
    Live(Live),
    Stop(Option<tokio::sync::oneshot::Sender<()>>),
}

/// A connected client and what came with it.
struct Live {
    client: Arc<ibapi::Client>,
    notices: NoticeStream,
    /// The profile's type, asked for at the start of every session on this client.
    market_data_type: MarketDataType,
}

/// What interrupted a wait.
enum Interrupt {
    /// Stop waiting and go here.
    Go(Next),
    /// A request that only needed an answer; keep waiting.
    Handled,
}

pub(crate) struct Supervisor {
    backend: Arc<dyn SessionBackend>,
    settings: SessionSettings,
    metrics: Arc<Metrics>,
    pacer: MessagePacer,
    notices: broadcast::Sender<SessionNotice>,
    data_types: DataTypeSwitch,
    report: Reporter,
    link: watch::Sender<Option<Link>>,
    commands: mpsc::Receiver<Command>,
    circuit: CircuitBreaker,
    rng: StdRng,
    generation: u64,
    /// Connect/Reconnect requests waiting for the outcome of the next attempt.
    waiters: Vec<Reply>,
    /// Whether a session was up since the last connect request (Reconnecting vs Connecting).
    was_connected: bool,
    /// `host:port` of the last attempt, for the port probe.
    gateway_address: Option<String>,
    /// Whether the last failure was the gateway being away (refused, closed, lost), which
    /// its port accepting again answers; not one of a gateway that is up and says no.
    port_tells: bool,
}

impl Supervisor {
    pub(crate) fn new(parts: Parts) -> Supervisor {
        Supervisor {
            backend: parts.backend,
            circuit: CircuitBreaker::new(0, parts.settings.circuit_cooldown),
            settings: parts.settings,
            report: Reporter::new(parts.status, parts.events, parts.metrics.clone()),
            metrics: parts.metrics,
            pacer: parts.pacer,
            notices: parts.notices,
            data_types: parts.data_types,
            link: parts.link,
            commands: parts.commands,
            rng: StdRng::from_os_rng(),
            generation: 0,
            waiters: Vec::new(),
            was_connected: false,
            gateway_address: None,
            port_tells: true,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut next = Next::Idle;
        loop {
            next = match next {
                Next::Idle => self.idle().await,
                Next::Establish { immediate } => self.establish(immediate).await,
                Next::Live(live) => self.live(live).await,
                Next::Stop(done) => {
                    self.stopped();
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            };
        }
    }

    async fn idle(&mut self) -> Next {
        self.report.update(|s| {
            s.wanted = false;
            s.next_retry = None;
        });
        self.report
            .set_state(ConnectionState::Disconnected, "no session wanted");
        loop {
            let command = self.commands.recv().await;
            match self.interrupt(command) {
                Interrupt::Go(next) => return next,
                Interrupt::Handled => continue,
            }
        }
    }

    /// Handles a request in a state without a client.
    fn interrupt(&mut self, command: Option<Command>) -> Interrupt {
        match command {
            None => Interrupt::Go(Next::Stop(None)),
            Some(Command::Shutdown(done)) => Interrupt::Go(Next::Stop(Some(done))),
            Some(Command::Connect(reply)) | Some(Command::Reconnect(reply)) => {
                self.want_session(reply);
                Interrupt::Go(Next::Establish { immediate: true })
            }
            Some(Command::Disconnect(reply)) => {
                self.fail_waiters(SessionError::Cancelled);
                let was_wanted = self.report.snapshot().wanted;
                self.report.update(|s| {
                    s.wanted = false;
                    s.next_retry = None;
                });
                self.report
                    .set_state(ConnectionState::Disconnected, "disconnect requested");
                let _ = reply.send(Ok(self.report.snapshot()));
                if was_wanted {
                    Interrupt::Go(Next::Idle)
                } else {
                    Interrupt::Handled
                }
            }
        }
    }

    fn want_session(&mut self, reply: Reply) {
        if !self.report.snapshot().wanted {
            self.was_connected = false;
        }
        self.circuit.reset();
        self.report.update(|s| {
            s.wanted = true;
            s.circuit = CircuitState::Closed;
            s.reconnect_attempt = 0;
        });
        self.waiters.push(reply);
    }

    fn publish_link(&mut self, client: &Arc<ibapi::Client>) {
        self.generation += 1;
        let generation = self.generation;
        self.report.update(|s| s.generation = generation);
        self.link.send_replace(Some(Link {
            generation,
            client: client.clone(),
        }));
    }

    /// Asks the gateway for the profile's market-data type in the session just
    /// published; a failure is reported, the session goes on with IB's default.
    async fn request_data_type(&mut self, client: &Arc<ibapi::Client>, kind: MarketDataType) {
        let link = Link {
            generation: self.generation,
            client: client.clone(),
        };
        if let Err(err) = self.data_types.hold().await.ensure(&link, kind).await {
            self.report.error(
                None,
                &format!("requesting the market data type failed: {err}"),
            );
        }
    }

    /// Forgets what the ended session's notices and requests said: a new session
    /// starts with every farm unknown, no competing session and IB connected.
    fn forget_session(&self) {
        self.report.update(|s| {
            s.farms.clear();
            s.competing_session = false;
            s.ib_connectivity_lost = false;
            s.market_data_type = None;
        });
    }

    fn fail_waiters(&mut self, error: SessionError) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
    }

    fn stopped(&mut self) {
        self.link.send_replace(None);
        self.fail_waiters(SessionError::Stopped);
        self.report.update(|s| {
            s.wanted = false;
            s.next_retry = None;
        });
        self.report
            .set_state(ConnectionState::Disconnected, "server shutting down");
    }
}
