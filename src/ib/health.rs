//! The health monitor: asks the gateway for its time every second and reports the
//! round trip, or that no answer came.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::pacer::MessagePacer;

/// How often to ask and how long to wait for each answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive unanswered checks after which the link counts as lost.
    pub max_missed: u32,
}

/// How long a stalled gateway (socket open, nothing answered) goes unnoticed at most
/// with the default settings: `max_missed` checks, each waiting `timeout`, the first
/// starting up to one `interval` after the stall began. A stalled link serves stale
/// quotes as if they were current, so this is kept to a few seconds; the price is one
/// current-time request a second through the session's one pacer, 2 % of IB's budget
/// of 50 messages a second.
pub const STALL_DETECTION_BOUND: Duration = Duration::from_secs(4);

impl Default for HealthSettings {
    fn default() -> Self {
        // Three one-second misses in a row, not one three-second miss: a single slow
        // answer (a busy gateway) does not drop a session that is still working.
        HealthSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_missed: 3,
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthReport {
    Answered { rtt: Duration },
    Missed { reason: String },
}

/// Counts consecutive misses; decides when the link is dead.
#[derive(Debug, Clone, Default)]
pub struct MissCounter {
    missed: u32,
}

impl MissCounter {
    /// Records a report; true when `max_missed` checks in a row went unanswered.
    pub fn record(&mut self, report: &HealthReport, max_missed: u32) -> bool {
        match report {
            HealthReport::Answered { .. } => {
                self.missed = 0;
                false
            }
            HealthReport::Missed { .. } => {
                self.missed += 1;
                self.missed >= max_missed.max(1)
            }
        }
    }
}

/// Starts checking `client` until the returned task is aborted or `reports` closes.
pub fn spawn(
    client: Arc<ibapi::Client>,
    settings: HealthSettings,
    pacer: MessagePacer,
    reports: mpsc::Sender<HealthReport>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker =
            tokio::time::interval_at(Instant::now() + settings.interval, settings.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let report = check(&client, settings.timeout, &pacer).await;
            if reports.send(report).await.is_err() {
                return;
            }
        }
    })
}

async fn check(client: &ibapi::Client, timeout: Duration, pacer: &MessagePacer) -> HealthReport {
    pacer.acquire().await;
    let started = Instant::now();
    match tokio::time::timeout(timeout, client.server_time()).await {
        Ok(Ok(_)) => HealthReport::Answered {
            rtt: started.elapsed(),
        },
        Ok(Err(err)) => HealthReport::Missed {
            reason: format!("current-time request failed: {err}"),
        },
        Err(_) => HealthReport::Missed {
            reason: format!("no answer to a current-time request within {timeout:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_notice_a_stall_within_the_bound() {
        let d = HealthSettings::default();
        let worst = d.interval + d.timeout * d.max_missed;
        assert!(worst <= STALL_DETECTION_BOUND, "{worst:?}");
    }

    #[test]
    fn consecutive_misses_declare_the_link_dead() {
        let miss = HealthReport::Missed { reason: "x".into() };
        let ok = HealthReport::Answered {
            rtt: Duration::from_millis(1),
        };
        let mut c = MissCounter::default();
        assert!(!c.record(&miss, 3));
        assert!(!c.record(&miss, 3));
        assert!(!c.record(&ok, 3));
        assert!(!c.record(&miss, 3));
        assert!(!c.record(&miss, 3));
        assert!(c.record(&miss, 3));
    }
}
