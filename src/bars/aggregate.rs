//! Bars of any multiple of five seconds, built from five-second bars as they come: each
//! five-second bar updates the forming bar, and the bar is complete with the last five
//! seconds of its period (or, after a hole, when a later period begins).

use crate::store::StoredBar;

/// Seconds of a real-time bar.
pub const REALTIME_SECONDS: i64 = 5;

/// What one five-second bar made of the bar being built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Built {
    /// A whole bar.
    Completed(StoredBar),
    /// The bar of the current period so far.
    Forming(StoredBar),
}

/// Builds bars of `size` seconds.
#[derive(Debug)]
pub struct Aggregator {
    size: i64,
    forming: Option<StoredBar>,
    notional: f64,
}

impl Aggregator {
    /// An aggregator of `size`-second bars (a multiple of five).
    pub fn new(size: i64) -> Aggregator {
        Aggregator {
            size: size.max(REALTIME_SECONDS),
            forming: None,
            notional: 0.0,
        }
    }

    /// Adds the five-second bar `bar`; returns what it completed and formed.
    pub fn push(&mut self, bar: &StoredBar) -> Vec<Built> {
        let period = bar.time.div_euclid(self.size) * self.size;
        let mut out = Vec::new();
        if let Some(done) = self.forming.take_if(|f| f.time != period) {
            out.push(Built::Completed(done));
        }
        let traded = bar.volume > 0.0;
        let merged = match self.forming.take() {
            None => {
                self.notional = if traded { bar.wap * bar.volume } else { 0.0 };
                StoredBar {
                    time: period,
                    ..*bar
                }
            }
            Some(f) => {
                let volume = if f.volume < 0.0 {
                    f.volume
                } else {
                    f.volume + bar.volume.max(0.0)
                };
                if traded {
                    self.notional += bar.wap * bar.volume;
                }
                StoredBar {
                    time: period,
                    open: f.open,
                    high: f.high.max(bar.high),
                    low: f.low.min(bar.low),
                    close: bar.close,
                    volume,
                    wap: if volume > 0.0 {
                        self.notional / volume
                    } else {
                        f.wap
                    },
                    count: if f.count < 0 {
                        f.count
                    } else {
                        f.count + bar.count.max(0)
                    },
                }
            }
        };
        if bar.time + REALTIME_SECONDS >= period + self.size {
            out.push(Built::Completed(merged));
        } else {
            out.push(Built::Forming(merged));
            self.forming = Some(merged);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five(time: i64, open: f64, high: f64, low: f64, close: f64, volume: f64) -> StoredBar {
        StoredBar {
            time,
            open,
            high,
            low,
            close,
            volume,
            wap: (high + low) / 2.0,
            count: 1,
        }
    }

    #[test]
    fn a_minute_is_built_from_twelve_five_second_bars() {
        let mut agg = Aggregator::new(60);
        let mut last = Vec::new();
        for i in 0..12 {
            let p = 100.0 + i as f64;
            last = agg.push(&five(600 + 5 * i, p, p + 0.5, p - 0.5, p + 0.25, 100.0));
        }
        let Some(Built::Completed(bar)) = last.last().copied() else {
            panic!("{last:?}")
        };
        assert_eq!(bar.time, 600);
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close),
            (100.0, 111.5, 99.5, 111.25)
        );
        assert_eq!((bar.volume, bar.count), (1200.0, 12));
        assert!((bar.wap - 105.5).abs() < 1e-9);
    }

    #[test]
    fn a_hole_completes_the_bar_it_interrupted() {
        let mut agg = Aggregator::new(60);
        assert!(matches!(
            agg.push(&five(600, 1.0, 1.0, 1.0, 1.0, 1.0))[..],
            [Built::Forming(_)]
        ));
        let out = agg.push(&five(725, 2.0, 2.0, 2.0, 2.0, 1.0));
        assert!(
            matches!(out[..], [Built::Completed(b), Built::Forming(f)] if b.time == 600 && f.time == 720)
        );
        let mut fives = Aggregator::new(5);
        assert!(matches!(
            fives.push(&five(600, 1.0, 1.0, 1.0, 1.0, 1.0))[..],
            [Built::Completed(_)]
        ));
    }
}
