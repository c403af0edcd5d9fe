//! Spaces the messages the fan-out sends to IB evenly, cancels included.
//!
//! `ibapi`'s own rate limiter paces requests but lets cancels through at once, and IB
//! counts both against its 50 messages a second. Sending every request and cancel
//! through this pacer, set a little below the profile's rate, keeps the total under the
//! limit however many instruments are asked for or released at once.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Share of the configured rate the fan-out uses; the rest is left to the session's
/// own messages (heartbeats, account requests).
const SHARE: f64 = 0.9;

/// An evenly spaced schedule of send slots.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    interval: Duration,
    next: Option<Instant>,
}

fn interval_for(per_second: u32) -> Duration {
    let rate = (f64::from(per_second.max(1)) * SHARE).max(1.0);
    Duration::from_secs_f64(1.0 / rate)
}

impl Pacer {
    /// A pacer for a budget of `per_second` messages a second.
    pub fn new(per_second: u32) -> Pacer {
        Pacer {
            state: Mutex::new(PacerState {
                interval: interval_for(per_second),
                next: None,
            }),
        }
    }

    /// Changes the budget for the slots handed out from now on.
    pub fn set_rate(&self, per_second: u32) {
        self.lock().interval = interval_for(per_second);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the next slot, returns when it has come, and says how long that took:
    /// the delay the rate limit cost this message.
    pub async fn acquire(&self) -> Duration {
        let now = Instant::now();
        let at = self.reserve(now);
        tokio::time::sleep_until(at).await;
        at - now
    }

    fn reserve(&self, now: Instant) -> Instant {
        let mut st = self.lock();
        let at = st.next.map_or(now, |n| n.max(now));
        st.next = Some(at + st.interval);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_under_the_rate() {
        let pacer = Pacer::new(50);
        let now = Instant::now();
        let slots: Vec<_> = (0..100).map(|_| pacer.reserve(now)).collect();
        // In any one-second window no more than 90 % of 50 slots fall (plus the one
        // that starts the next interval, as rounding may put it inside the window).
        for (i, s) in slots.iter().enumerate() {
            let in_window = slots[i..]
                .iter()
                .take_while(|t| **t < *s + Duration::from_secs(1))
                .count();
            assert!(in_window <= 46, "{in_window} slots within a second");
        }
        assert_eq!(slots[0], now);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_reports_how_long_the_message_was_held() {
        // 10/s at a 90 % share: one slot every 1/9 s.
        let pacer = Pacer::new(10);
        assert_eq!(pacer.acquire().await, Duration::ZERO);
        let second = pacer.acquire().await;
        assert!(
            (second.as_secs_f64() - 1.0 / 9.0).abs() < 1e-3,
            "{second:?}"
        );
    }
}
