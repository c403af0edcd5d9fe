//! IB's pacing rules for historical data, kept for every client of the one session.
//!
//! IB rejects a historical request with error 162 (and may stall the client) when it
//! breaks any of three rules: an identical request within 15 s; more than six requests
//! for the same contract, exchange and data type within 2 s; more than 60 requests in
//! any ten minutes. [`HistoryLog`] holds the requests sent recently and says when the
//! next one may go; the simulator uses the same log to find violations, so both sides
//! read the rules the same way. [`HistoricalPacer`] schedules ibstream's requests: it
//! lets one go only when the log allows it (with a margin for transit jitter), and only
//! once the session's message pacer has admitted it, so the time it records is the time
//! the request is written.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::pacer::MessagePacer;

/// IB's historical pacing rules. Tests shrink the windows ([`HistoricalRules::scaled`]);
/// the counts stay IB's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoricalRules {
    /// No identical request within this.
    pub identical_gap: Duration,
    /// At most `burst_max` requests for one contract, exchange and type within this.
    pub burst_window: Duration,
    pub burst_max: usize,
    /// At most `window_max` requests within this.
    pub window: Duration,
    pub window_max: usize,
}

impl HistoricalRules {
    /// IB's published rules.
    pub const IB: HistoricalRules = HistoricalRules {
        identical_gap: Duration::from_secs(15),
        burst_window: Duration::from_secs(2),
        burst_max: 6,
        window: Duration::from_secs(600),
        window_max: 60,
    };

    /// IB's rules with every window multiplied by `factor` (0 < factor ≤ 1 in tests).
    pub fn scaled(factor: f64) -> HistoricalRules {
        let ib = Self::IB;
        let scale = |d: Duration| d.mul_f64(factor.clamp(1e-6, 1e6));
        HistoricalRules {
            identical_gap: scale(ib.identical_gap),
            burst_window: scale(ib.burst_window),
            window: scale(ib.window),
            ..ib
        }
    }

    /// The same rules with every window lengthened by `margin` of itself.
    fn widened(self, margin: f64) -> HistoricalRules {
        let widen = |d: Duration| d + d.mul_f64(margin);
        HistoricalRules {
            identical_gap: widen(self.identical_gap),
            burst_window: widen(self.burst_window),
            window: widen(self.window),
            ..self
        }
    }
}

impl Default for HistoricalRules {
    fn default() -> Self {
        Self::IB
    }
}

/// What the rules compare of one request: the whole request (identical requests) and
/// its contract, exchange and data type (bursts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacingKey {
    pub request: String,
    pub group: String,
}

/// The historical requests sent within the longest window, oldest first.
#[derive(Debug, Default)]
pub struct HistoryLog {
    sent: VecDeque<(Instant, PacingKey)>,
}

impl HistoryLog {
    /// When a request with `key` may be sent at the earliest (`now` if at once).
    pub fn earliest(&mut self, rules: &HistoricalRules, key: &PacingKey, now: Instant) -> Instant {
        let longest = rules
            .window
            .max(rules.identical_gap)
            .max(rules.burst_window);
        while self.sent.front().is_some_and(|(t, _)| *t + longest <= now) {
            self.sent.pop_front();
        }
        let mut at = now;
        if let Some((t, _)) = self
            .sent
            .iter()
            .rev()
            .find(|(_, k)| k.request == key.request)
        {
            at = at.max(*t + rules.identical_gap);
        }
        // The n-th most recent request decides when one more fits a window of n.
        let nth_back = |n: usize, same_group: bool| {
            self.sent
                .iter()
                .rev()
                .filter(|(_, k)| !same_group || k.group == key.group)
                .nth(n.saturating_sub(1))
                .map(|(t, _)| *t)
        };
        if let Some(t) = nth_back(rules.burst_max, true) {
            at = at.max(t + rules.burst_window);
        }
        if let Some(t) = nth_back(rules.window_max, false) {
            at = at.max(t + rules.window);
        }
        at
    }

    /// Records a request sent at `now`.
    pub fn record(&mut self, key: PacingKey, now: Instant) {
        self.sent.push_back((now, key));
    }
}

/// The historical request may not go before `retry_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingFull {
    pub retry_at: Instant,
}

/// Share of each window added before ibstream sends again: requests that leave here
/// exactly a window apart may arrive closer together after transit jitter.
const MARGIN: f64 = 0.1;

/// Schedules the session's historical requests under [`HistoricalRules`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HistoricalPacer {
    rules: HistoricalRules,
    log: Arc<Mutex<HistoryLog>>,
    /// Held from the decision until the request is admitted by the message pacer, so
    /// the time recorded is the time it is written and no two decisions overlap.
    turn: Arc<tokio::sync::Mutex<()>>,
    messages: MessagePacer,
}

impl HistoricalPacer {
    /// A pacer following `rules`, sending through `messages`.
    pub fn new(rules: HistoricalRules, messages: MessagePacer) -> HistoricalPacer {
        HistoricalPacer {
            rules: rules.widened(MARGIN),
            log: Arc::default(),
            turn: Arc::default(),
            messages,
        }
    }

    /// Waits for the turn of a request with `key`: returns once it may be written now
    /// (and records it), or, unless `wait`, fails at once with the time it could go.
    pub async fn admit(&self, key: &PacingKey, wait: bool) -> Result<(), PacingFull> {
        loop {
            let turn = self.turn.lock().await;
            let now = Instant::now();
            let at = self.lock().earliest(&self.rules, key, now);
            if at <= now {
                self.messages.acquire().await;
                self.lock().record(key.clone(), Instant::now());
                drop(turn);
                return Ok(());
            }
            drop(turn);
            if !wait {
                return Err(PacingFull { retry_at: at });
            }
            tokio::time::sleep_until(at).await;
        }
    }

    /// How long a request with `key` would wait now.
    pub fn delay(&self, key: &PacingKey) -> Duration {
        let now = Instant::now();
        self.lock().earliest(&self.rules, key, now) - now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HistoryLog> {
        // Plain times and keys, valid even if a holder panicked.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn key(request: &str, group: &str) -> PacingKey {
        PacingKey {
            request: request.into(),
            group: group.into(),
        }
    }

    fn pacer() -> HistoricalPacer {
        HistoricalPacer::new(
            HistoricalRules::IB,
            MessagePacer::new(1000, Arc::new(Metrics::default())),
        )
    }

    /// Checks a schedule against IB's rules exactly as written (no margin).
    fn assert_within_rules(sent: &[(Instant, PacingKey)]) {
        let r = HistoricalRules::IB;
        for (i, (t, k)) in sent.iter().enumerate() {
            let before = &sent[..i];
            assert!(
                !before
                    .iter()
                    .any(|(s, o)| o.request == k.request && *t - *s < r.identical_gap),
                "identical request within {:?}",
                r.identical_gap
            );
            let burst = before
                .iter()
                .filter(|(s, o)| o.group == k.group && *t - *s < r.burst_window)
                .count();
            assert!(burst < r.burst_max, "{} in a burst", burst + 1);
            let window = before.iter().filter(|(s, _)| *t - *s < r.window).count();
            assert!(window < r.window_max, "{} in ten minutes", window + 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_identical_request_waits_fifteen_seconds() {
        let p = pacer();
        let t0 = Instant::now();
        p.admit(&key("a", "g"), false).await.unwrap();
        let full = p.admit(&key("a", "g"), false).await.unwrap_err();
        assert!(full.retry_at >= t0 + Duration::from_secs(15));
        p.admit(&key("a", "g"), true).await.unwrap();
        assert!(Instant::now() >= t0 + Duration::from_secs(15));
        assert!(Instant::now() < t0 + Duration::from_secs(17));
    }

    #[tokio::test(start_paused = true)]
    async fn a_seventh_request_for_one_contract_waits_out_two_seconds() {
        let p = pacer();
        let t0 = Instant::now();
        for i in 0..6 {
            p.admit(&key(&format!("r{i}"), "AAPL"), false)
                .await
                .unwrap();
        }
        assert!(p.admit(&key("r6", "AAPL"), false).await.is_err());
        p.admit(&key("other", "MSFT"), false).await.unwrap();
        p.admit(&key("r6", "AAPL"), true).await.unwrap();
        assert!(Instant::now() >= t0 + Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn two_hundred_requests_finish_when_the_rules_allow_and_never_break_them() {
        // 20 clients × 10 distinct requests over 20 contracts.
        let p = pacer();
        let t0 = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (p, sent) = (p.clone(), sent.clone());
                tokio::spawn(async move {
                    let k = key(&format!("req{i}"), &format!("c{}", i % 20));
                    p.admit(&k, true).await.unwrap();
                    sent.lock().unwrap().push((Instant::now(), k));
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let sent = sent.lock().unwrap().clone();
        assert_within_rules(&sent);
        // 200 requests at 60 per window need three full windows before the last 20;
        // the margin is all the pacer may add.
        let r = HistoricalRules::IB;
        let windows = (200 - 1) / r.window_max as u32;
        let bound = (r.window + r.window.mul_f64(MARGIN)) * windows + Duration::from_secs(1);
        let took = Instant::now() - t0;
        assert!(took >= r.window * windows, "finished in {took:?}");
        assert!(took <= bound, "took {took:?}, the rules allow {bound:?}");
    }
}
