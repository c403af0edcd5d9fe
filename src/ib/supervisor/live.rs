//! The live phase: watching a connected client until it is lost for good or a request
//! ends it.

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CLOSE_TIMEOUT, Live, Next, Supervisor};
use crate::ib::health::{self, HealthReport, MissCounter};
use crate::ib::notices::{self, NoticeEffect, SessionNotice};
use crate::ib::session::Command;
use crate::ib::state::ConnectionState;

impl Supervisor {
    /// Watches a live client until it is lost for good or a request ends it.
    pub(super) async fn live(&mut self, mut live: Live) -> Next {
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
                        // The client retired its notice channel: it gave up (this can
                        // overtake `wait_connected` reporting the same).
                        if library_reconnect.is_some() {
                            self.circuit.record_failure(Instant::now());
                            return self.lost(&live, "the IB client gave up reconnecting").await;
                        }
                        return self.lost(&live, "the IB client stopped").await;
                    };
                    let effect = notices::classify(notice.code, &notice.message);
                    if effect != NoticeEffect::TransportReconnected
                        && library_reconnect.is_none()
                        && !live.client.is_connected()
                    {
                        // The drop happened since the last poll: this notice already
                        // comes from the reconnect's handshake.
                        monitor = None;
                        library_reconnect = Some(self.library_reconnecting(&live));
                    }
                    if effect == NoticeEffect::TransportReconnected {
                        let seen_through_wait = std::mem::take(&mut reconnect_notice_expected);
                        let drop_seen = library_reconnect.take().is_some();
                        if drop_seen || !seen_through_wait {
                            // The notice overtook `wait_connected`, or the socket dropped
                            // and came back between two polls.
                            if !drop_seen {
                                self.forget_session();
                            }
                            self.report.set_state(ConnectionState::Reconnecting, "the gateway connection dropped");
                            self.library_reconnected(&live).await;
                            misses = MissCounter::default();
                            monitor = Some(AbortOnDrop(self.spawn_health(&live, &health_tx)));
                        }
                    } else {
                        self.report.notice(notice.code, &notice.message, &effect);
                    }
                    // Nobody listening is fine: the fan-out may not be running.
                    // While `ibapi` reconnects, notices (the farm states sent during its
                    // handshake) belong to the session about to be published; stamped
                    // with the old one, the fan-out would drop them with it.
                    let generation = self.generation + u64::from(library_reconnect.is_some());
                    let _ = self.notices.send(SessionNotice {
                        generation,
                        code: notice.code,
                        effect,
                    });
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
                            self.library_reconnected(&live).await;
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
                        library_reconnect = Some(self.library_reconnecting(&live));
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

    /// `ibapi` lost the socket and reconnects by itself: withdraw the link and wait for
    /// its outcome.
    fn library_reconnecting(&mut self, live: &Live) -> ReconnectWait {
        self.link.send_replace(None);
        self.forget_session();
        self.report.error(
            None,
            "the connection to the gateway dropped; the IB client is reconnecting",
        );
        self.report.set_state(
            ConnectionState::Reconnecting,
            "the gateway connection dropped",
        );
        let client = live.client.clone();
        Box::pin(async move { client.wait_connected().await })
    }

    /// `ibapi` re-established the socket on the same client: a new TWS session.
    async fn library_reconnected(&mut self, live: &Live) {
        self.metrics.reconnects.inc();
        let server_version = live.client.server_version();
        self.report.update(|s| {
            s.server_version = Some(server_version);
            s.reconnect_attempt = 0;
        });
        self.publish_link(&live.client);
        self.request_data_type(&live.client, live.market_data_type)
            .await;
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
    pub(super) async fn close(&mut self, live: &Live) {
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
