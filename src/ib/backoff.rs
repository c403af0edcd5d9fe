//! Capped exponential backoff with jitter between reconnection attempts.

use std::time::Duration;

use rand::Rng;

/// Delays grow as `base · 2^attempt` up to `cap`; each delay is drawn uniformly from
/// the upper half of that ceiling ("equal jitter"), so many servers restarted together
/// do not reconnect in lockstep while a delay never collapses to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The ceiling for the `attempt`-th retry (0-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the `attempt`-th retry, jitter drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_micros() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            rng.random_range(0..=spread)
        };
        half + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_until_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn delays_stay_within_the_upper_half_and_vary() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        };
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..50).map(|_| b.delay(3, &mut rng)).collect();
        for d in &delays {
            assert!(*d >= Duration::from_millis(400) && *d <= Duration::from_millis(800));
        }
        let first = delays[0];
        assert!(delays.iter().any(|d| *d != first), "jitter never varied");
    }
}
