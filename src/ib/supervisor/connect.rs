//! The connecting phase: attempts behind backoff and the circuit breaker, until a client
//! is established or a request sends the supervisor elsewhere.
//!
//! Kept apart from the top-level state machine and from the live phase because this is
//! where the retry policy lives (backoff, circuit, what each attempt reports), and it
//! changes for reasons of its own.

use std::sync::Arc;

use ibapi::subscriptions::NoticeStream;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::{Interrupt, Live, Next, Supervisor};
use crate::ib::backend::SessionProfile;
use crate::ib::connector::{self, ClientOptions, ConnectFailure, ConnectFailureKind};
use crate::ib::error::SessionError;
use crate::ib::port_probe;
use crate::ib::state::{CircuitState, ConnectionState};

impl Supervisor {
    /// Attempts sessions (after the backoff or the circuit's cool-down unless
    /// `immediate`) until one is established or a request sends the supervisor elsewhere.
    pub(super) async fn establish(&mut self, mut immediate: bool) -> Next {
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
    ///
    /// After the gateway went away (refused, closed the socket, was lost) the wait also
    /// ends, and an open circuit half-opens, as soon as its port takes clients again.
    /// The circuit's purpose stays: it spares the gateway full API handshakes while it
    /// refuses, and a plain TCP connect a second costs it nothing. Without this a 20 s
    /// restart cost a full cool-down of stale data after the gateway was back. A
    /// gateway that is up and says no (client id in use, too old) gives the port nothing
    /// to tell, so those failures wait out the whole delay.
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
        let probed = self
            .port_tells
            .then(|| self.gateway_address.clone())
            .flatten();
        let port_back = async move {
            match probed {
                Some(address) => port_probe::until_accepting(&address).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(port_back);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                _ = &mut port_back => {
                    tracing::info!("the gateway's port accepts clients again");
                    self.circuit.half_open();
                    return None;
                }
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
        self.gateway_address = Some(profile.endpoint.address());
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
        // A timeout is a gateway that holds the socket without answering: its port
        // accepting says nothing new.
        self.port_tells = matches!(
            failure.kind,
            ConnectFailureKind::Refused | ConnectFailureKind::Other
        );
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
        // Whatever ends this session next, the gateway going away is what the port tells.
        self.port_tells = true;
        self.pacer.reset(profile.message_rate);
        let client = Arc::new(client);
        let server_version = client.server_version();
        let accounts = client.handshake_managed_accounts().to_vec();
        let rate = self.pacer.rate();
        self.forget_session();
        self.report.update(|s| {
            s.server_version = Some(server_version);
            s.managed_accounts = accounts;
            s.reconnect_attempt = 0;
            s.circuit = CircuitState::Closed;
            s.next_retry = None;
            s.message_rate = rate;
        });
        if self.was_connected {
            self.metrics.reconnects.inc();
        }
        self.was_connected = true;
        self.publish_link(&client);
        self.request_data_type(&client, profile.market_data_type)
            .await;
        self.report
            .set_state(ConnectionState::Connected, "session established");
        let status = self.report.snapshot();
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Ok(status.clone()));
        }
        Next::Live(Live {
            client,
            notices,
            market_data_type: profile.market_data_type,
        })
    }
}
