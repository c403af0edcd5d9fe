//! A mirror of `ibapi`'s message-rate limiter, for reporting.
//!
//! `ibapi` paces every message it writes with a GCRA limiter but exposes none of its
//! state. ibstream runs the same algorithm, with the same parameters, over the messages
//! it asks `ibapi` to send, and reports the delay those messages were (and the next one
//! would be) held back by.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;

/// Shared handle: every layer that sends messages through the session's client notes
/// them here ([`MessagePacer::note_send`]).
#[derive(Debug, Clone)]
pub struct MessagePacer {
    inner: Arc<Mutex<Gcra>>,
    metrics: Arc<Metrics>,
}

impl MessagePacer {
    /// A pacer for `per_second` messages a second, reporting into `metrics`.
    pub fn new(per_second: u32, metrics: Arc<Metrics>) -> MessagePacer {
        MessagePacer {
            inner: Arc::new(Mutex::new(Gcra::per_second(per_second))),
            metrics,
        }
    }

    /// Restarts with a new rate: a new client has a fresh limiter.
    pub fn reset(&self, per_second: u32) {
        *self.lock() = Gcra::per_second(per_second);
    }

    /// Messages per second currently allowed.
    pub fn rate(&self) -> u32 {
        self.lock().per_second
    }

    /// Records one message handed to `ibapi`; returns how long its limiter will hold
    /// the message back, and adds that to the metrics.
    pub fn note_send(&self) -> Duration {
        self.note_send_at(Instant::now())
    }

    /// How long a message sent now would wait.
    pub fn current_delay(&self) -> Duration {
        self.lock().peek(Instant::now())
    }

    fn note_send_at(&self, now: Instant) -> Duration {
        let wait = self.lock().reserve(now);
        self.metrics.ib_messages_sent.inc();
        self.metrics
            .rate_limiter_delay_micros
            .add(wait.as_micros() as u64);
        wait
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gcra> {
        // The guarded state is plain numbers, valid even if a holder panicked.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The generic cell rate algorithm with `ibapi`'s parameters: a burst of a tenth of the
/// rate, the rest spread evenly.
#[derive(Debug)]
struct Gcra {
    per_second: u32,
    interval: Duration,
    tolerance: Duration,
    tat: Option<Instant>,
}

impl Gcra {
    fn per_second(n: u32) -> Gcra {
        let n = n.max(1);
        let burst = (n / 10).max(1);
        let rate = (n + 1).saturating_sub(burst).max(1);
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(rate)));
        Gcra {
            per_second: n,
            interval,
            tolerance: interval * (burst - 1),
            tat: None,
        }
    }

    fn send_at(&self, now: Instant) -> (Instant, Instant) {
        let tat = self.tat.map_or(now, |tat| tat.max(now));
        let send_at = tat
            .checked_sub(self.tolerance)
            .map_or(now, |earliest| earliest.max(now));
        (tat, send_at)
    }

    fn reserve(&mut self, now: Instant) -> Duration {
        let (tat, send_at) = self.send_at(now);
        self.tat = Some(tat + self.interval);
        send_at - now
    }

    fn peek(&self, now: Instant) -> Duration {
        self.send_at(now).1 - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_messages_wait() {
        let metrics = Arc::new(Metrics::default());
        let pacer = MessagePacer::new(50, metrics.clone());
        let t0 = Instant::now();
        // 50/s: a burst of 5, then one every 1/46 s.
        for _ in 0..5 {
            assert_eq!(pacer.note_send_at(t0), Duration::ZERO);
        }
        let wait = pacer.note_send_at(t0);
        assert!(wait > Duration::ZERO && wait < Duration::from_millis(50));
        assert_eq!(metrics.ib_messages_sent.get(), 6);
        assert_eq!(
            metrics.rate_limiter_delay_micros.get(),
            wait.as_micros() as u64
        );
        assert!(pacer.lock().peek(t0) > wait);
    }

    #[test]
    fn idle_time_restores_the_burst() {
        let pacer = MessagePacer::new(10, Arc::new(Metrics::default()));
        let t0 = Instant::now();
        pacer.note_send_at(t0);
        assert!(pacer.note_send_at(t0) > Duration::ZERO);
        assert_eq!(
            pacer.lock().peek(t0 + Duration::from_secs(1)),
            Duration::ZERO
        );
        pacer.reset(20);
        assert_eq!(pacer.rate(), 20);
        assert_eq!(pacer.lock().peek(t0), Duration::ZERO);
    }
}
