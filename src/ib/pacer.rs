//! The one pacer every message to the gateway waits for.
//!
//! IB counts every message an API client sends (requests, cancels, look-ups, the
//! session's own heartbeats) against one budget, 50 a second by default. `ibapi`'s own
//! limiter paces requests but lets cancels through at once, so it alone cannot keep the
//! total under the budget. Every layer that sends through the session's client first
//! waits here ([`MessagePacer::acquire`]); the wait is what the rate-limiter metrics
//! report. The rate comes from the active profile, set by the session when it
//! connects ([`MessagePacer::reset`]).
//!
//! Look-ups (contract details, option parameters, symbol searches) take their slots
//! through [`MessagePacer::acquire_lookup`], which lets only [`LOOKUPS_AHEAD`] of them
//! hold a slot at a time: a burst of hundreds of look-ups cannot push a new
//! instrument's subscription, a cancel or the heartbeat seconds into the future.
//!
//! The schedule is `ibapi`'s algorithm (GCRA: a burst of a tenth of the rate, the rest
//! spread evenly), run at a share of the profile's rate, so `ibapi`'s limiter, which
//! sees the same messages a moment later, never has to hold one back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// Share of the profile's rate the pacer hands out. The rest absorbs what the pacer
/// cannot see: transit jitter that bunches messages inside the gateway's one-second
/// window, and the few messages `ibapi` writes on its own.
const SHARE: f64 = 0.9;

/// The gateway counts messages per second.
const WINDOW: Duration = Duration::from_secs(1);

/// Look-ups holding a slot at once. Any other message waits behind at most this many
/// look-ups; two keep a look-up ready to go whenever a slot frees.
pub const LOOKUPS_AHEAD: usize = 2;

/// Shared handle; clones pace against one budget.
#[derive(Debug, Clone)]
pub struct MessagePacer {
    inner: Arc<Mutex<Gcra>>,
    lookups: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl MessagePacer {
    /// A pacer for a budget of `per_second` messages a second, reporting into `metrics`.
    pub fn new(per_second: u32, metrics: Arc<Metrics>) -> MessagePacer {
        MessagePacer {
            inner: Arc::new(Mutex::new(Gcra::per_second(per_second))),
            lookups: Arc::new(Semaphore::new(LOOKUPS_AHEAD)),
            metrics,
        }
    }

    /// Restarts with a new budget: a new client has a fresh limiter.
    pub fn reset(&self, per_second: u32) {
        *self.lock() = Gcra::per_second(per_second);
    }

    /// The budget in messages per second (the profile's rate).
    pub fn rate(&self) -> u32 {
        self.lock().budget
    }

    /// Waits until one message may be sent, counts it, and returns how long it waited
    /// (added to the rate-limiter delay metric). A wait that is cancelled still uses
    /// its slot.
    pub async fn acquire(&self) -> Duration {
        let start = Instant::now();
        let slot = self.reserve_at(start);
        if !slot.is_zero() {
            tokio::time::sleep(slot).await;
        }
        // A task that wakes late (a busy machine) finds its slot long past, together
        // with the tasks of the slots after it: the messages really let go in the last
        // second decide, so late wake-ups never bunch past the rate.
        loop {
            let admitted = self.lock().admit(Instant::now());
            match admitted {
                Ok(()) => break,
                Err(until) => tokio::time::sleep_until(until).await,
            }
        }
        let held = start.elapsed();
        let late = held.saturating_sub(slot);
        self.metrics.rate_limiter_delay.inc_by(late.as_secs_f64());
        held
    }

    /// Like [`acquire`](Self::acquire) for a look-up: waits first until fewer than
    /// [`LOOKUPS_AHEAD`] look-ups hold a slot, so look-ups queue here, not ahead of the
    /// other messages. Returns the whole wait (also added to the delay metric).
    pub async fn acquire_lookup(&self) -> Duration {
        let start = Instant::now();
        // The semaphore is never closed; without a permit the look-up would still be paced.
        let _turn = self.lookups.acquire().await.ok();
        let queued = start.elapsed();
        self.metrics.rate_limiter_delay.inc_by(queued.as_secs_f64());
        queued + self.acquire().await
    }

    /// How long a message sent now would wait.
    pub fn current_delay(&self) -> Duration {
        self.lock().peek(Instant::now())
    }

    fn reserve_at(&self, now: Instant) -> Duration {
        let wait = self.lock().reserve(now);
        self.metrics.ib_messages_sent.inc();
        self.metrics.rate_limiter_delay.inc_by(wait.as_secs_f64());
        wait
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gcra> {
        // The guarded state is plain numbers, valid even if a holder panicked.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The generic cell rate algorithm with `ibapi`'s parameters, for [`SHARE`] of the
/// budget: a burst of a tenth of the rate, the rest spread evenly. GCRA admits
/// `burst + rate - 1` messages in any one-second window, which is the paced rate.
#[derive(Debug)]
struct Gcra {
    budget: u32,
    interval: Duration,
    tolerance: Duration,
    tat: Option<Instant>,
    /// Messages admitted in any one second at most (the paced rate).
    per_window: usize,
    /// When the messages of the last second were let go, oldest first.
    sent: VecDeque<Instant>,
}

impl Gcra {
    fn per_second(budget: u32) -> Gcra {
        // Truncating keeps the paced rate at or under the share.
        let n = ((f64::from(budget.max(1)) * SHARE) as u32).max(1);
        let burst = (n / 10).max(1);
        let rate = (n + 1).saturating_sub(burst).max(1);
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(rate)));
        Gcra {
            budget,
            interval,
            tolerance: interval * (burst - 1),
            tat: None,
            per_window: (burst + rate - 1) as usize,
            sent: VecDeque::new(),
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

    /// Lets a message go at `now` if fewer than the paced rate went in the second
    /// before; otherwise says when one of them leaves the window.
    fn admit(&mut self, now: Instant) -> Result<(), Instant> {
        while self.sent.front().is_some_and(|t| *t + WINDOW <= now) {
            self.sent.pop_front();
        }
        match self.sent.front() {
            Some(oldest) if self.sent.len() >= self.per_window => Err(*oldest + WINDOW),
            _ => {
                self.sent.push_back(now);
                Ok(())
            }
        }
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
        // 50/s at a 90 % share is 45/s: a burst of 4, then one every 1/42 s.
        for _ in 0..4 {
            assert_eq!(pacer.reserve_at(t0), Duration::ZERO);
        }
        let wait = pacer.reserve_at(t0);
        assert!(wait > Duration::ZERO && wait < Duration::from_millis(50));
        assert_eq!(metrics.ib_messages_sent.get(), 5);
        assert!((metrics.rate_limiter_delay.get() - wait.as_secs_f64()).abs() < 1e-9);
        assert!(pacer.lock().peek(t0) > wait);
    }

    #[test]
    fn idle_time_restores_the_burst() {
        let pacer = MessagePacer::new(10, Arc::new(Metrics::default()));
        let t0 = Instant::now();
        pacer.reserve_at(t0);
        assert!(pacer.reserve_at(t0) > Duration::ZERO);
        assert_eq!(
            pacer.lock().peek(t0 + Duration::from_secs(1)),
            Duration::ZERO
        );
        pacer.reset(20);
        assert_eq!(pacer.rate(), 20);
        assert_eq!(pacer.lock().peek(t0), Duration::ZERO);
    }

    #[test]
    fn slots_stay_under_the_budget_in_any_second() {
        let pacer = MessagePacer::new(50, Arc::new(Metrics::default()));
        let now = Instant::now();
        let slots: Vec<_> = (0..200).map(|_| now + pacer.reserve_at(now)).collect();
        for (i, s) in slots.iter().enumerate() {
            let in_window = slots[i..]
                .iter()
                .take_while(|t| **t < *s + Duration::from_secs(1))
                .count();
            assert!(in_window <= 45, "{in_window} slots within a second");
        }
        assert_eq!(slots[0], now);
    }

    #[tokio::test(start_paused = true)]
    async fn late_wake_ups_do_not_bunch_past_the_rate() {
        let pacer = MessagePacer::new(50, Arc::new(Metrics::default()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (pacer, sent) = (pacer.clone(), sent.clone());
                tokio::spawn(async move {
                    pacer.acquire().await;
                    sent.lock().unwrap().push(Instant::now());
                })
            })
            .collect();
        tokio::task::yield_now().await;
        // The machine is busy: nothing runs for two seconds, then every task whose
        // slot passed wakes at once.
        tokio::time::advance(Duration::from_secs(2)).await;
        for t in tasks {
            t.await.unwrap();
        }
        let mut sent = sent.lock().unwrap().clone();
        sent.sort();
        for (i, s) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|t| **t < *s + WINDOW).count();
            assert!(
                in_window <= 45,
                "{in_window} messages let go within a second"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscription_waits_behind_a_bounded_number_of_look_ups() {
        // 10/s at a 90 % share: one slot every 1/9 s.
        let pacer = MessagePacer::new(10, Arc::new(Metrics::default()));
        // One slot, rounded up as the pacer rounds its interval.
        let slot = Duration::from_nanos(111_111_112);
        let lookups: Vec<_> = (0..100)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move { pacer.acquire_lookup().await })
            })
            .collect();
        tokio::task::yield_now().await;
        let subscription = pacer.acquire().await;
        assert!(
            // (timers fire on whole milliseconds)
            // two look-ups ahead of it, then its own slot
            subscription <= slot * 3 + Duration::from_millis(2),
            "a subscription waited {subscription:?} behind 100 look-ups"
        );
        for l in lookups {
            l.await.unwrap();
        }
        let all = Instant::now();
        assert!(
            pacer.current_delay() < slot * 2,
            "every look-up was sent by {all:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_holds_the_message_and_reports_the_wait() {
        // 10/s at a 90 % share is 9/s: no burst beyond one, one slot every 1/9 s.
        let metrics = Arc::new(Metrics::default());
        let pacer = MessagePacer::new(10, metrics.clone());
        assert_eq!(pacer.acquire().await, Duration::ZERO);
        let before = Instant::now();
        let second = pacer.acquire().await;
        assert!(
            (second.as_secs_f64() - 1.0 / 9.0).abs() < 1e-3,
            "{second:?}"
        );
        assert!(before.elapsed() >= second, "the caller was held that long");
        assert_eq!(metrics.ib_messages_sent.get(), 2);
    }
}
