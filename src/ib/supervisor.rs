//! The task that owns the IB session: connects, watches the link, reconnects with
//! backoff behind a circuit breaker, and answers the handle's requests.
//!
//! `ibapi` re-establishes a dropped socket by itself (same `Client`) a few times; the
//! supervisor notices that through `is_connected()`/`wait_connected()` and publishes a
//! new link generation. When `ibapi` gives up, or the health monitor finds the gateway
//! silent, the supervisor drops the client and reconnects on its own, for as long as a
//! session is wanted.

use std::sync::Arc;
use std::time::Duration;

use ibapi::subscriptions::NoticeStream;
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::backend::{SessionBackend, SessionEvent, SessionProfile};
use super::circuit::CircuitBreaker;
use super::connector::{self, ClientOptions, ConnectFailure, ConnectFailureKind};
use super::error::SessionError;
use super::link::Link;
use super::pacer::MessagePacer;
use super::reporter::Reporter;
use super::session::{Command, Reply, SessionSettings};
use super::state::{CircuitState, ConnectionState, SessionStatus};
use crate::metrics::Metrics;
use crate::store::MarketDataType;

mod live;

/// How long closing a client may take before it is abandoned.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Parts {
    pub backend: Arc<dyn SessionBackend>,
    pub settings: SessionSettings,
    pub metrics: Arc<Metrics>,
    pub pacer: MessagePacer,
    pub status: watch::Sender<SessionStatus>,
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
            link: parts.link,
            commands: parts.commands,
            rng: StdRng::from_os_rng(),
            generation: 0,
            waiters: Vec::new(),
            was_connected: false,
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

    async fn establish(&mut self, mut immediate: bool) -> Next {
        loop {
            if !immediate && let Some(next) = self.wait_before_retry().await {
                return next;
            }
            immediate = false;
            let profile = match self.backend.active_profile().await {
                Ok(profile) => profile,
                Err(err) => {
                    let failure = ConnectFailure {
                        kind: ConnectFailureKind::Other,
                        message: format!("cannot read the active profile: {err}"),
                    };
                    self.attempt_failed(&failure);
                    continue;
                }
            };
            self.circuit.set_threshold(profile.retry_attempts);
            self.circuit.allow(Instant::now());
            self.begin_attempt(&profile);
            let options = ClientOptions {
                message_rate: profile.message_rate,
                timeout: profile.connection_timeout,
                library_reconnect_attempts: self.settings.library_reconnect_attempts,
            };
            let attempt = connector::open(&profile.endpoint, options);
            tokio::pin!(attempt);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut attempt => break outcome,
                    command = self.commands.recv() => match self.interrupt(command) {
                        Interrupt::Go(Next::Establish { .. }) | Interrupt::Handled => continue,
                        Interrupt::Go(next) => return next,
                    },
                }
            };
            match outcome {
                Ok((client, notices)) => return self.established(&profile, client, notices).await,
                Err(failure) => self.attempt_failed(&failure),
            }
        }
    }

    /// Waits out the backoff delay or the open circuit's cool-down. `Some` when a request
    /// sends the supervisor elsewhere.
    async fn wait_before_retry(&mut self) -> Option<Next> {
        let now = Instant::now();
        let until = match self.circuit.reopens_at() {
            Some(at) => {
                self.report.set_state(
                    ConnectionState::Failed,
                    "circuit breaker open after repeated failures",
                );
                at
            }
            None => {
                let attempt = self.circuit.failures().saturating_sub(1);
                now + self.settings.backoff.delay(attempt, &mut self.rng)
            }
        };
        let next_retry = OffsetDateTime::now_utc() + (until - now);
        self.report.update(|s| s.next_retry = Some(next_retry));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                command = self.commands.recv() => match self.interrupt(command) {
                    Interrupt::Go(Next::Establish { .. }) => return None,
                    Interrupt::Go(next) => return Some(next),
                    Interrupt::Handled => continue,
                },
            }
        }
    }

    fn begin_attempt(&mut self, profile: &SessionProfile) {
        let circuit = self.circuit.state();
        self.show_profile(profile);
        self.report.update(|s| {
            s.circuit = circuit;
            s.next_retry = None;
        });
        let state = if self.was_connected {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        let reason = match (circuit, self.was_connected) {
            (CircuitState::HalfOpen, _) => "circuit breaker half-open: probing the gateway",
            (_, true) => "reconnecting to the gateway",
            (_, false) => "connecting to the gateway",
        };
        self.report.set_state(state, reason);
        tracing::debug!(address = %profile.endpoint.address(), client_id = profile.endpoint.client_id, ?circuit, "connection attempt");
    }

    fn show_profile(&self, profile: &SessionProfile) {
        self.report.update(|s| s.show_profile(profile));
    }

    fn attempt_failed(&mut self, failure: &ConnectFailure) {
        self.report.error(failure.ib_code(), &failure.message);
        let opened = self.circuit.record_failure(Instant::now());
        let (circuit, attempts) = (self.circuit.state(), self.circuit.failures());
        self.report.update(|s| {
            s.circuit = circuit;
            s.reconnect_attempt = attempts;
        });
        if opened {
            self.report.error(
                None,
                &format!("circuit breaker opened after {attempts} consecutive failed attempts"),
            );
        }
        self.fail_waiters(SessionError::ConnectFailed(failure.clone()));
    }

    async fn established(
        &mut self,
        profile: &SessionProfile,
        client: ibapi::Client,
        notices: NoticeStream,
    ) -> Next {
        self.circuit.record_success();
        self.pacer.reset(profile.message_rate);
        self.pacer.note_send();
        if let Err(err) = client
            .switch_market_data_type(ibapi_market_data_type(profile.market_data_type))
            .await
        {
            self.report.error(
                None,
                &format!("requesting the market data type failed: {err}"),
            );
        }
        let client = Arc::new(client);
        let server_version = client.server_version();
        let accounts = client.handshake_managed_accounts().to_vec();
        let rate = self.pacer.rate();
        self.report.update(|s| {
            s.server_version = Some(server_version);
            s.managed_accounts = accounts;
            s.reconnect_attempt = 0;
            s.circuit = CircuitState::Closed;
            s.next_retry = None;
            s.competing_session = false;
            s.ib_connectivity_lost = false;
            s.farms.clear();
            s.message_rate = rate;
        });
        if self.was_connected {
            self.metrics.reconnects.inc();
        }
        self.was_connected = true;
        self.publish_link(&client);
        self.report
            .set_state(ConnectionState::Connected, "session established");
        let status = self.report.snapshot();
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Ok(status.clone()));
        }
        Next::Live(Live { client, notices })
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

fn ibapi_market_data_type(kind: MarketDataType) -> ibapi::market_data::MarketDataType {
    use ibapi::market_data::MarketDataType as T;
    match kind {
        MarketDataType::Live => T::Realtime,
        MarketDataType::Frozen => T::Frozen,
        MarketDataType::Delayed => T::Delayed,
        MarketDataType::DelayedFrozen => T::DelayedFrozen,
    }
}
