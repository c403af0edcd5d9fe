//! Publishes the session's status and records its history: every state change and
//! error goes to the status watch, the metrics, the log and the event store.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use super::backend::{SessionEvent, SessionEventKind};
use super::notices::NoticeEffect;
use super::state::{ConnectionState, FarmStatus, LastError, SessionStatus};
use crate::metrics::Metrics;

pub(crate) struct Reporter {
    /// Shared with the market-data type switch, which shows what it last sent.
    status: Arc<watch::Sender<SessionStatus>>,
    events: mpsc::Sender<SessionEvent>,
    metrics: Arc<Metrics>,
}

impl Reporter {
    pub(crate) fn new(
        status: Arc<watch::Sender<SessionStatus>>,
        events: mpsc::Sender<SessionEvent>,
        metrics: Arc<Metrics>,
    ) -> Reporter {
        Reporter {
            status,
            events,
            metrics,
        }
    }

    pub(crate) fn snapshot(&self) -> SessionStatus {
        self.status.borrow().clone()
    }

    /// Changes fields other than the state; watchers see it.
    pub(crate) fn update(&self, change: impl FnOnce(&mut SessionStatus)) {
        self.status.send_modify(change);
    }

    /// Enters `state` (a no-op when already there) and records why.
    pub(crate) fn set_state(&self, state: ConnectionState, reason: &str) {
        let now = OffsetDateTime::now_utc();
        let mut changed = false;
        self.status.send_if_modified(|s| {
            if s.state == state {
                return false;
            }
            s.state = state;
            s.since = now;
            changed = true;
            // Before watchers wake: whoever sees the new state reads the same gauge.
            self.metrics.connection_state.set(state.code());
            true
        });
        if changed {
            tracing::info!(state = state.as_str(), reason, "IB session state changed");
            self.record(SessionEventKind::StateChanged, None, reason.to_owned());
        }
    }

    /// Shows `message` as the last error and records it.
    pub(crate) fn error(&self, code: Option<i32>, message: &str) {
        let now = OffsetDateTime::now_utc();
        self.update(|s| {
            s.last_error = Some(LastError {
                code,
                message: message.to_owned(),
                time: now,
            })
        });
        tracing::warn!(code, error = message, "IB session error");
        self.record(SessionEventKind::Error, code, message.to_owned());
    }

    /// Applies a classified IB notice to the status and records it.
    pub(crate) fn notice(&self, code: i32, message: &str, effect: &NoticeEffect) {
        let now = OffsetDateTime::now_utc();
        let error = || LastError {
            code: Some(code),
            message: message.to_owned(),
            time: now,
        };
        match effect {
            NoticeEffect::Other | NoticeEffect::TransportReconnected => return,
            NoticeEffect::IbConnectivityLost => self.update(|s| {
                s.ib_connectivity_lost = true;
                s.last_error = Some(error());
            }),
            NoticeEffect::IbConnectivityRestored { .. } => self.update(|s| {
                s.ib_connectivity_lost = false;
                // Data flows again: whatever competed for it is gone.
                s.competing_session = false;
            }),
            NoticeEffect::FarmDown { farm } | NoticeEffect::FarmOk { farm } => {
                let ok = matches!(effect, NoticeEffect::FarmOk { .. });
                self.update(|s| {
                    s.farms.insert(
                        farm.name.clone(),
                        FarmStatus {
                            ok,
                            code,
                            time: now,
                        },
                    );
                    if ok && farm.kind.is_some() {
                        // A market-data farm serving this login again ends the
                        // competing session.
                        s.competing_session = false;
                    }
                });
            }
            NoticeEffect::CompetingSession => self.update(|s| {
                s.competing_session = true;
                s.last_error = Some(error());
            }),
            NoticeEffect::ClientIdInUse => self.update(|s| s.last_error = Some(error())),
        }
        tracing::info!(code, notice = message, "IB notice");
        self.record(SessionEventKind::Notice, Some(code), message.to_owned());
    }

    fn record(&self, kind: SessionEventKind, code: Option<i32>, message: String) {
        let status = self.status.borrow();
        let event = SessionEvent {
            time: OffsetDateTime::now_utc(),
            kind,
            state: status.state,
            profile: status.profile.clone(),
            code,
            message,
        };
        drop(status);
        if self.events.try_send(event).is_err() {
            tracing::warn!("connection history is falling behind; an event was not recorded");
        }
    }
}
