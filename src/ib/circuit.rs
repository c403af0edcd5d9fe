//! Circuit breaker in front of connection attempts: stops hammering a gateway that
//! keeps refusing, probes it again after a cool-down.

use std::time::Duration;

use tokio::time::Instant;

use super::state::CircuitState;

/// Opens after `threshold` consecutive failures, half-opens once `cooldown` has passed
/// (allowing one probe), closes on a success. A threshold of 0 never opens.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    state: CircuitState,
}

impl CircuitBreaker {
    /// A closed circuit opening after `threshold` failures, probing after `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> CircuitBreaker {
        CircuitBreaker {
            threshold,
            cooldown,
            failures: 0,
            opened_at: None,
            state: CircuitState::Closed,
        }
    }

    /// Changes the failure threshold (the active profile's `retry_attempts`).
    pub fn set_threshold(&mut self, threshold: u32) {
        self.threshold = threshold;
    }

    /// Closed, open or half-open.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Consecutive failures since the last success or reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When an open circuit half-opens.
    pub fn reopens_at(&self) -> Option<Instant> {
        match self.state {
            CircuitState::Open => self.opened_at.map(|at| at + self.cooldown),
            _ => None,
        }
    }

    /// Whether an attempt may start at `now`; moves an open circuit whose cool-down has
    /// passed to half-open.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            CircuitState::Closed | CircuitState::HalfOpen => true,
            CircuitState::Open => {
                if self.reopens_at().is_some_and(|at| now >= at) {
                    self.state = CircuitState::HalfOpen;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Half-opens an open circuit before its cool-down ends, when there is evidence the
    /// gateway takes clients again (its port accepts).
    pub fn half_open(&mut self) {
        if self.state == CircuitState::Open {
            self.state = CircuitState::HalfOpen;
        }
    }

    /// A successful attempt closes the circuit and forgets the failures.
    pub fn record_success(&mut self) {
        self.failures = 0;
        self.opened_at = None;
        self.state = CircuitState::Closed;
    }

    /// Counts a failed attempt; a failed probe or the threshold-th failure opens the
    /// circuit. Returns true when this failure opened it.
    pub fn record_failure(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        let open = match self.state {
            CircuitState::HalfOpen => true,
            CircuitState::Closed => self.threshold > 0 && self.failures >= self.threshold,
            CircuitState::Open => false,
        };
        if open {
            self.state = CircuitState::Open;
            self.opened_at = Some(now);
        }
        open
    }

    /// A manual connect: forget the failures and close the circuit.
    pub fn reset(&mut self) {
        self.record_success();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(3, Duration::from_secs(10));
        assert!(!c.record_failure(t0));
        assert!(!c.record_failure(t0));
        assert!(c.allow(t0));
        assert!(c.record_failure(t0));
        assert_eq!(c.state(), CircuitState::Open);
        assert!(!c.allow(t0 + Duration::from_secs(9)));
        assert!(c.allow(t0 + Duration::from_secs(10)));
        assert_eq!(c.state(), CircuitState::HalfOpen);
    }

    #[test]
    fn failed_probe_reopens_and_success_closes() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(1, Duration::from_secs(1));
        assert!(c.record_failure(t0));
        let t1 = t0 + Duration::from_secs(1);
        assert!(c.allow(t1));
        assert!(c.record_failure(t1));
        assert_eq!(c.reopens_at(), Some(t1 + Duration::from_secs(1)));
        let t2 = t1 + Duration::from_secs(1);
        assert!(c.allow(t2));
        assert!(c.record_failure(t2));
        c.half_open();
        assert_eq!(c.state(), CircuitState::HalfOpen);
        assert!(c.allow(t2));
        c.record_success();
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.failures(), 0);
    }

    #[test]
    fn zero_threshold_never_opens_and_reset_closes() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            assert!(!c.record_failure(t0));
        }
        c.set_threshold(2);
        assert!(c.record_failure(t0));
        c.reset();
        assert_eq!(c.state(), CircuitState::Closed);
        assert!(c.allow(t0));
    }
}
