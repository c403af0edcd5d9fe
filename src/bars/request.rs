//! A validated bar request: the contract (resolved), the bars' size and data type, and
//! the window `[start, end)` in unix seconds. Bars are whole bars: each starts at or
//! after `start` and ends at or before `end`.

use std::time::Duration;

use super::error::BarsError;
use super::spec::{BarSize, WhatToShow, parse_duration};

/// What a client asked, before validation (times in unix seconds).
#[derive(Debug, Clone, Default)]
pub struct BarAsk {
    pub bar_size: String,
    /// IB's "what to show" text; empty means trades.
    pub what_to_show: String,
    pub duration: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub regular_hours: bool,
}

/// A valid request for one contract's bars.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BarQuery {
    pub con_id: i64,
    pub size: BarSize,
    pub what: WhatToShow,
    pub regular_hours: bool,
    pub start: i64,
    pub end: i64,
}

/// How far in the future an end may lie (clock skew between client and server).
const SKEW: i64 = 5;

impl BarQuery {
    /// Checks `ask` for contract `con_id` at `now`, naming the field that is wrong.
    pub fn new(con_id: i64, ask: &BarAsk, now: i64) -> Result<BarQuery, BarsError> {
        let size = BarSize::parse(&ask.bar_size).ok_or_else(|| {
            BarsError::invalid(
                "bar_size",
                "unknown bar size; use 1s 5s 10s 15s 30s 1m 2m 3m 5m 10m 15m 20m 30m 1h 2h 3h 4h 8h 1d 1w 1mo",
            )
        })?;
        let what = if ask.what_to_show.is_empty() {
            WhatToShow::Trades
        } else {
            WhatToShow::parse(&ask.what_to_show)
                .ok_or_else(|| BarsError::invalid("what_to_show", "unknown data type"))?
        };
        let end = ask.end.unwrap_or(now);
        if end > now + SKEW {
            return Err(BarsError::invalid("end", "lies in the future"));
        }
        let start = match (ask.start, ask.duration.trim()) {
            (Some(_), d) if !d.is_empty() => {
                return Err(BarsError::invalid(
                    "duration",
                    "give either start or duration",
                ));
            }
            (Some(start), _) if start >= end => {
                return Err(BarsError::invalid("start", "must lie before end"));
            }
            (Some(start), _) => start,
            (None, "") => return Err(BarsError::invalid("duration", "required (or start)")),
            (None, d) => {
                let span = parse_duration(d).ok_or_else(|| {
                    BarsError::invalid("duration", "expected <n> S|D|W|M|Y, e.g. \"1 D\" or \"1d\"")
                })?;
                end.saturating_sub(i64::try_from(span.as_secs()).unwrap_or(i64::MAX))
            }
        };
        let span = Duration::from_secs(u64::try_from(end - start).unwrap_or(u64::MAX));
        if span > size.max_duration() {
            return Err(BarsError::invalid(
                if ask.start.is_some() {
                    "start"
                } else {
                    "duration"
                },
                format!(
                    "IB serves at most {} s of {} bars in one request",
                    size.max_duration().as_secs(),
                    size.short()
                ),
            ));
        }
        Ok(BarQuery {
            con_id,
            size,
            what,
            regular_hours: ask.regular_hours,
            start,
            end,
        })
    }

    /// The cache's name for the series these bars belong to.
    pub fn series(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.con_id,
            self.what.ib_text(),
            self.size.short(),
            if self.regular_hours { "rth" } else { "all" }
        )
    }

    /// Whether a bar starting at `time` lies wholly inside the window, before `now`.
    pub fn keeps(&self, time: i64, now: i64) -> bool {
        time >= self.start && time + self.size.seconds() as i64 <= self.end.min(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(size: &str, duration: &str) -> BarAsk {
        BarAsk {
            bar_size: size.into(),
            duration: duration.into(),
            ..Default::default()
        }
    }

    fn field(r: Result<BarQuery, BarsError>) -> String {
        match r {
            Err(BarsError::Source(crate::fanout::FanoutError::InvalidArgument {
                field, ..
            })) => field,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let now = 1_800_000_000;
        assert_eq!(field(BarQuery::new(1, &ask("7m", "1 D"), now)), "bar_size");
        assert_eq!(field(BarQuery::new(1, &ask("1s", "1 D"), now)), "duration");
        assert_eq!(field(BarQuery::new(1, &ask("1m", "soon"), now)), "duration");
        let mut a = ask("1m", "1 D");
        a.what_to_show = "PRICES".into();
        assert_eq!(field(BarQuery::new(1, &a, now)), "what_to_show");
        let mut a = ask("1m", "");
        a.end = Some(now - 10);
        a.start = Some(now);
        assert_eq!(field(BarQuery::new(1, &a, now)), "start");
        let mut a = ask("1m", "1 D");
        a.end = Some(now + 3600);
        assert_eq!(field(BarQuery::new(1, &a, now)), "end");
        let q = BarQuery::new(1, &ask("1m", "1d"), now).unwrap();
        assert_eq!((q.start, q.end), (now - 86_400, now));
        assert_eq!(q.what, WhatToShow::Trades);
    }
}
