//! The task that owns the IB session: connects, watches the link, reconnects with
//! backoff behind a circuit breaker, and answers the handle's requests.
//!
//! `ibapi` re-establishes a dropped socket by itself (same `Client`) a few times; the
//! supervisor notices that through `is_connected()`/`wait_connected()` and publishes a
//! new link generation. When `ibapi` gives up, or the health monitor finds the gateway
//! silent, the supervisor drops the client and reconnects on its own, for as long as a
//! session is wanted.

use std::future::Future;
use std::pin::Pin;
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
use super::health::{self, HealthReport, MissCounter};
use super::link::Link;
use super::notices::{self, NoticeEffect};
use super::pacer::MessagePacer;
use super::reporter::Reporter;
use super::session::{Command, Reply, SessionSettings};
use super::state::{CircuitState, ConnectionState, SessionStatus};
use crate::metrics::Metrics;
use crate::store::MarketDataType;

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
                let _ = reply.send(Ok(self.report.snapshot()));
                if self.report.snapshot().wanted {
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
        self.report.update(|s| {
            s.profile = profile.name.clone();
            s.host = profile.endpoint.host.clone();
            s.port = profile.endpoint.port;
            s.client_id = profile.endpoint.client_id;
            s.market_data_type = profile.market_data_type;
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

    /// Watches a live client until it is lost for good or a request ends it.
    async fn live(&mut self, mut live: Live) -> Next {
        let (health_tx, mut health_rx) = mpsc::channel(4);
        let mut monitor = Some(AbortOnDrop(self.spawn_health(&live, &health_tx)));
        let mut misses = MissCounter::default();
        let mut poll = tokio::time::interval(self.settings.link_poll_interval);
        // Set while `ibapi` reconnects the socket itself: resolves with its outcome.
        let mut library_reconnect: Option<ReconnectWait> = None;
        // The -8 notice that follows a reconnect already seen through `wait_connected`.
        let mut reconnect_notice_expected = false;
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    if let Some(next) = self.live_command(command, &live).await {
                        return next;
                    }
                }
                notice = live.notices.next() => {
                    let Some(notice) = notice else {
                        return self.lost(&live, "the IB client stopped").await;
                    };
                    let effect = notices::classify(notice.code, &notice.message);
                    if effect == NoticeEffect::TransportReconnected {
                        if !std::mem::take(&mut reconnect_notice_expected) && library_reconnect.is_none() {
                            // Dropped and re-established between two polls.
                            self.report.set_state(ConnectionState::Reconnecting, "the gateway connection dropped");
                            self.library_reconnected(&live);
                            monitor = Some(AbortOnDrop(self.spawn_health(&live, &health_tx)));
                        }
                    } else if self.report.notice(notice.code, &notice.message, &effect) {
                        // IB dropped every subscription: a new generation makes the
                        // market-data layer request them again.
                        self.publish_link(&live.client);
                    }
                }
                report = health_rx.recv() => {
                    let Some(report) = report else { continue };
                    if self.health_report(&report, &mut misses) {
                        let reason = match &report {
                            HealthReport::Missed { reason } => reason.clone(),
                            HealthReport::Answered { .. } => String::new(),
                        };
                        return self.lost(&live, &format!("the gateway stopped answering: {reason}")).await;
                    }
                }
                outcome = wait_or_pending(&mut library_reconnect) => {
                    library_reconnect = None;
                    match outcome {
                        Ok(()) => {
                            reconnect_notice_expected = true;
                            self.library_reconnected(&live);
                            misses = MissCounter::default();
                            monitor = Some(AbortOnDrop(self.spawn_health(&live, &health_tx)));
                        }
                        Err(err) => {
                            let reason = format!("the IB client gave up reconnecting: {err}");
                            self.circuit.record_failure(Instant::now());
                            return self.lost(&live, &reason).await;
                        }
                    }
                }
                _ = poll.tick() => {
                    if library_reconnect.is_none() && !live.client.is_connected() {
                        monitor = None;
                        self.link.send_replace(None);
                        self.report.error(None, "the connection to the gateway dropped; the IB client is reconnecting");
                        self.report.set_state(ConnectionState::Reconnecting, "the gateway connection dropped");
                        let client = live.client.clone();
                        library_reconnect = Some(Box::pin(async move { client.wait_connected().await }));
                    }
                }
            }
            let _ = &monitor;
        }
    }

    fn spawn_health(
        &self,
        live: &Live,
        reports: &mpsc::Sender<HealthReport>,
    ) -> tokio::task::JoinHandle<()> {
        health::spawn(
            live.client.clone(),
            self.settings.health,
            self.pacer.clone(),
            reports.clone(),
        )
    }

    /// Records a health check; true when the link counts as lost.
    fn health_report(&mut self, report: &HealthReport, misses: &mut MissCounter) -> bool {
        if let HealthReport::Answered { rtt } = report {
            let (rtt, now) = (*rtt, OffsetDateTime::now_utc());
            self.report.update(|s| {
                s.heartbeat_rtt = Some(rtt);
                s.last_heartbeat = Some(now);
            });
        } else if let HealthReport::Missed { reason } = report {
            tracing::warn!(reason = reason.as_str(), "health check unanswered");
        }
        misses.record(report, self.settings.health.max_missed)
    }

    /// `ibapi` re-established the socket on the same client.
    fn library_reconnected(&mut self, live: &Live) {
        self.metrics.reconnects.inc();
        let server_version = live.client.server_version();
        self.report.update(|s| {
            s.server_version = Some(server_version);
            s.reconnect_attempt = 0;
            s.ib_connectivity_lost = false;
        });
        self.publish_link(&live.client);
        self.report.set_state(
            ConnectionState::Connected,
            "the IB client re-established the session",
        );
    }

    async fn live_command(&mut self, command: Option<Command>, live: &Live) -> Option<Next> {
        match command {
            None => {
                self.close(live).await;
                Some(Next::Stop(None))
            }
            Some(Command::Shutdown(done)) => {
                self.close(live).await;
                Some(Next::Stop(Some(done)))
            }
            Some(Command::Connect(reply)) => {
                self.circuit.reset();
                let _ = reply.send(Ok(self.report.snapshot()));
                None
            }
            Some(Command::Disconnect(reply)) => {
                self.close(live).await;
                self.report.update(|s| s.wanted = false);
                self.report
                    .set_state(ConnectionState::Disconnected, "disconnect requested");
                let _ = reply.send(Ok(self.report.snapshot()));
                Some(Next::Idle)
            }
            Some(Command::Reconnect(reply)) => {
                self.close(live).await;
                self.circuit.reset();
                self.waiters.push(reply);
                self.report
                    .set_state(ConnectionState::Reconnecting, "reconnect requested");
                Some(Next::Establish { immediate: true })
            }
        }
    }

    /// The link is gone for good: drop the client and reconnect on our own.
    async fn lost(&mut self, live: &Live, reason: &str) -> Next {
        self.report.error(None, reason);
        self.close(live).await;
        self.report.set_state(
            ConnectionState::Reconnecting,
            "the gateway connection was lost",
        );
        Next::Establish { immediate: false }
    }

    /// Withdraws the link and closes the client.
    async fn close(&mut self, live: &Live) {
        self.link.send_replace(None);
        self.report.update(|s| {
            s.server_version = None;
            s.heartbeat_rtt = None;
        });
        if tokio::time::timeout(CLOSE_TIMEOUT, live.client.disconnect())
            .await
            .is_err()
        {
            tracing::warn!("closing the IB client timed out");
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

/// `ibapi`'s own reconnect in progress, resolving with its outcome.
type ReconnectWait = Pin<Box<dyn Future<Output = Result<(), ibapi::Error>> + Send>>;

/// Aborts the health monitor when the live phase ends or a new one replaces it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn wait_or_pending(slot: &mut Option<ReconnectWait>) -> Result<(), ibapi::Error> {
    match slot {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
