//! When an instrument's data has paused for much longer than usual: each feed learns
//! its usual gap between updates and counts a pause of many such gaps (never less than
//! a floor) as a stall of that one instrument, which the session's health monitor
//! cannot see (the gateway answers, this instrument just stopped).

use std::time::Duration;

use tokio::time::Instant;

/// A pause this many usual gaps long marks the instrument stale.
pub const SILENCE_FACTOR: u32 = 10;

/// The shortest pause that marks an instrument stale: below it, quiet spells of liquid
/// instruments (a few seconds without a trade or a quote change) are normal.
pub const SILENCE_FLOOR: Duration = Duration::from_secs(5);

/// Weight of the newest gap in the mean: about the last ten gaps count.
const WEIGHT: f64 = 0.2;

/// An exponentially weighted mean of the gaps between updates, and the last update.
#[derive(Debug, Default)]
pub(crate) struct Cadence {
    mean: Option<Duration>,
    last: Option<Instant>,
}

impl Cadence {
    /// Data arrived at `now`. A gap is counted at most at the current threshold, so
    /// one outage does not teach the feed that hour-long pauses are usual, while an
    /// instrument that is quiet by nature still learns its pace within a few pauses.
    pub(crate) fn record(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gap = (now - last).min(self.threshold());
            self.mean = Some(match self.mean {
                None => gap,
                Some(mean) => mean.mul_f64(1.0 - WEIGHT) + gap.mul_f64(WEIGHT),
            });
        }
        self.last = Some(now);
    }

    /// Stops timing until the next update: the subscription was renewed, or the data
    /// is stale for a reason of its own (session, farm).
    pub(crate) fn pause(&mut self) {
        self.last = None;
    }

    /// How long a pause may last: `SILENCE_FACTOR` usual gaps, at least the floor.
    pub(crate) fn threshold(&self) -> Duration {
        self.mean.map_or(SILENCE_FLOOR, |mean| {
            (mean * SILENCE_FACTOR).max(SILENCE_FLOOR)
        })
    }

    /// When the instrument counts as silent, if no update comes first; `None` before
    /// the first update.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.last.map(|last| last + self.threshold())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn learns_the_usual_gap_and_caps_one_long_pause() {
        let mut c = Cadence::default();
        assert_eq!(c.deadline(), None);
        c.record(Instant::now());
        assert_eq!(c.threshold(), SILENCE_FLOOR);
        // A slow instrument: an update every 2 s teaches a 20 s threshold.
        for _ in 0..40 {
            tokio::time::advance(Duration::from_secs(2)).await;
            c.record(Instant::now());
        }
        assert!(
            c.threshold() > Duration::from_secs(19),
            "{:?}",
            c.threshold()
        );
        // A fast one stays at the floor; one hour-long pause is counted as the threshold.
        let mut fast = Cadence::default();
        for _ in 0..20 {
            fast.record(Instant::now());
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        assert_eq!(fast.threshold(), SILENCE_FLOOR);
        tokio::time::advance(Duration::from_secs(3600)).await;
        fast.record(Instant::now());
        assert!(
            fast.threshold() <= SILENCE_FLOOR * 3,
            "{:?}",
            fast.threshold()
        );
        fast.pause();
        assert_eq!(fast.deadline(), None);
    }
}
