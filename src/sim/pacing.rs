//! The inbound message rate of one connection (IB's 50 messages per second), counted over
//! a sliding one-second window, and the seconds a client spends over it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The pacing window.
const WINDOW: Duration = Duration::from_secs(1);

/// Inbound message counting over a sliding one-second window.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Arrival times within the last window, oldest first.
    arrivals: VecDeque<Instant>,
    /// Seconds spent over the limit so far.
    violations: u32,
    /// When the latest violation began (one violation per window).
    last_violation: Option<Instant>,
}

impl Pacing {
    /// Records an arrival; returns the count within the last second.
    pub(crate) fn arrive(&mut self, now: Instant) -> usize {
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.arrivals.len()
    }

    /// Records a message over the limit. A violation is one second spent over the limit,
    /// however many messages it rejects; returns the violations so far.
    pub(crate) fn violate(&mut self, now: Instant) -> u32 {
        if self
            .last_violation
            .is_none_or(|t| now.duration_since(t) >= WINDOW)
        {
            self.violations = self.violations.saturating_add(1);
            self.last_violation = Some(now);
        }
        self.violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_counts_a_sliding_second() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        for i in 0..50 {
            assert_eq!(p.arrive(t0 + Duration::from_millis(i)), i as usize + 1);
        }
        assert_eq!(p.arrive(t0 + Duration::from_millis(999)), 51);
        assert_eq!(p.arrive(t0 + Duration::from_millis(1_020)), 31);
    }

    #[test]
    fn violations_count_seconds_not_messages() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        assert_eq!(p.violate(t0), 1);
        assert_eq!(p.violate(t0 + Duration::from_millis(500)), 1);
        assert_eq!(p.violate(t0 + Duration::from_millis(1_000)), 2);
    }
}
