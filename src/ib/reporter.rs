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
    status: watch::Sender<SessionStatus>,
    events: mpsc::Sender<SessionEvent>,
    metrics: Arc<Metrics>,
}

impl Reporter {
    pub(crate) fn new(
        status: watch::Sender<SessionStatus>,
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
            true
        });
        if changed {
            self.metrics.connection_state.set(state.code());
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

    /// Applies an IB notice to the status. Returns true when IB dropped every
    /// subscription (1101), so a new generation must be published.
    pub(crate) fn notice(&self, code: i32, message: &str, effect: &NoticeEffect) -> bool {
        let now = OffsetDateTime::now_utc();
        let mut subscriptions_lost = false;
        match effect {
            NoticeEffect::Other | NoticeEffect::TransportReconnected => return false,
            NoticeEffect::IbConnectivityLost => self.update(|s| {
                s.ib_connectivity_lost = true;
                s.last_error = Some(LastError {
                    code: Some(code),
                    message: message.to_owned(),
                    time: now,
                });
            }),
            NoticeEffect::IbConnectivityRestored {
                subscriptions_lost: lost,
            } => {
                subscriptions_lost = *lost;
                self.update(|s| s.ib_connectivity_lost = false);
            }
            NoticeEffect::FarmDown { farm } | NoticeEffect::FarmOk { farm } => {
                let ok = matches!(effect, NoticeEffect::FarmOk { .. });
                self.update(|s| {
                    s.farms.insert(
                        farm.clone(),
                        FarmStatus {
                            ok,
                            code,
                            time: now,
                        },
                    );
                });
            }
            NoticeEffect::CompetingSession => self.update(|s| {
                s.competing_session = true;
                s.last_error = Some(LastError {
                    code: Some(code),
                    message: message.to_owned(),
                    time: now,
                });
            }),
            NoticeEffect::ClientIdInUse => self.update(|s| {
                s.last_error = Some(LastError {
                    code: Some(code),
                    message: message.to_owned(),
                    time: now,
                })
            }),
        }
        tracing::info!(code, notice = message, "IB notice");
        self.record(SessionEventKind::Notice, Some(code), message.to_owned());
        subscriptions_lost
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
