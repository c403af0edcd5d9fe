//! What a bar request names, in IB's own words: bar sizes, data types ("what to show")
//! and durations, with IB's limit on how long a request may be for each bar size.
//! The simulator reads IB's request text with the same tables, so both sides agree.

use std::time::Duration;

/// Seconds of IB's duration units: `D`, `W`, `M` and `Y` are calendar spans here.
const DAY: u64 = 86_400;

/// A bar size IB serves, from one second to one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BarSize {
    Sec1,
    Sec5,
    Sec10,
    Sec15,
    Sec30,
    Min1,
    Min2,
    Min3,
    Min5,
    Min10,
    Min15,
    Min20,
    Min30,
    Hour1,
    Hour2,
    Hour3,
    Hour4,
    Hour8,
    Day1,
    Week1,
    Month1,
}

/// Every bar size with its IB text, its short name and its length in seconds.
const BAR_SIZES: &[(BarSize, &str, &str, u64)] = &[
    (BarSize::Sec1, "1 secs", "1s", 1),
    (BarSize::Sec5, "5 secs", "5s", 5),
    (BarSize::Sec10, "10 secs", "10s", 10),
    (BarSize::Sec15, "15 secs", "15s", 15),
    (BarSize::Sec30, "30 secs", "30s", 30),
    (BarSize::Min1, "1 min", "1m", 60),
    (BarSize::Min2, "2 mins", "2m", 120),
    (BarSize::Min3, "3 mins", "3m", 180),
    (BarSize::Min5, "5 mins", "5m", 300),
    (BarSize::Min10, "10 mins", "10m", 600),
    (BarSize::Min15, "15 mins", "15m", 900),
    (BarSize::Min20, "20 mins", "20m", 1_200),
    (BarSize::Min30, "30 mins", "30m", 1_800),
    (BarSize::Hour1, "1 hour", "1h", 3_600),
    (BarSize::Hour2, "2 hours", "2h", 7_200),
    (BarSize::Hour3, "3 hours", "3h", 10_800),
    (BarSize::Hour4, "4 hours", "4h", 14_400),
    (BarSize::Hour8, "8 hours", "8h", 28_800),
    (BarSize::Day1, "1 day", "1d", DAY),
    (BarSize::Week1, "1 week", "1w", 7 * DAY),
    (BarSize::Month1, "1 month", "1mo", 30 * DAY),
];

impl BarSize {
    fn row(self) -> &'static (BarSize, &'static str, &'static str, u64) {
        // The table lists every variant; the first row is never reached for another.
        BAR_SIZES
            .iter()
            .find(|r| r.0 == self)
            .unwrap_or(&BAR_SIZES[0])
    }

    /// IB's text (`"5 mins"`).
    pub fn ib_text(self) -> &'static str {
        self.row().1
    }

    /// The short name (`"5m"`), as the API and the CLI spell it.
    pub fn short(self) -> &'static str {
        self.row().2
    }

    /// Length of one bar in seconds (a month counts 30 days).
    pub fn seconds(self) -> u64 {
        self.row().3
    }

    /// A bar size from its short name or IB's text, case-insensitive.
    pub fn parse(text: &str) -> Option<BarSize> {
        let text = text.trim();
        BAR_SIZES
            .iter()
            .find(|r| r.1.eq_ignore_ascii_case(text) || r.2 == text.to_ascii_lowercase())
            .map(|r| r.0)
    }

    /// The longest duration IB serves in one request of this bar size (IB's table of
    /// valid duration and bar size combinations).
    pub fn max_duration(self) -> Duration {
        let secs = match self.seconds() {
            1 => 1_800,
            5 => 3_600,
            10 | 15 => 14_400,
            30 => 28_800,
            60 => DAY,
            120 => 2 * DAY,
            s if s < 1_800 => 7 * DAY,
            s if s < DAY => 30 * DAY,
            _ => 20 * 365 * DAY,
        };
        Duration::from_secs(secs)
    }

    /// Every bar size, shortest first.
    pub fn all() -> impl Iterator<Item = BarSize> {
        BAR_SIZES.iter().map(|r| r.0)
    }
}

/// What the bars are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhatToShow {
    Trades,
    Midpoint,
    Bid,
    Ask,
    BidAsk,
    AdjustedLast,
    HistoricalVolatility,
    ImpliedVolatility,
}

const WHAT_TO_SHOW: &[(WhatToShow, &str)] = &[
    (WhatToShow::Trades, "TRADES"),
    (WhatToShow::Midpoint, "MIDPOINT"),
    (WhatToShow::Bid, "BID"),
    (WhatToShow::Ask, "ASK"),
    (WhatToShow::BidAsk, "BID_ASK"),
    (WhatToShow::AdjustedLast, "ADJUSTED_LAST"),
    (WhatToShow::HistoricalVolatility, "HISTORICAL_VOLATILITY"),
    (WhatToShow::ImpliedVolatility, "OPTION_IMPLIED_VOLATILITY"),
];

impl WhatToShow {
    /// IB's text (`"MIDPOINT"`).
    pub fn ib_text(self) -> &'static str {
        WHAT_TO_SHOW
            .iter()
            .find(|r| r.0 == self)
            .map_or("TRADES", |r| r.1)
    }

    /// From IB's text, case-insensitive.
    pub fn parse(text: &str) -> Option<WhatToShow> {
        WHAT_TO_SHOW
            .iter()
            .find(|r| r.1.eq_ignore_ascii_case(text.trim()))
            .map(|r| r.0)
    }

    /// Whether the bars carry traded volume (the others report none).
    pub fn has_volume(self) -> bool {
        matches!(self, WhatToShow::Trades | WhatToShow::AdjustedLast)
    }
}

/// A duration in IB's words, `"<n> <unit>"` with unit `S`, `D`, `W`, `M` (months) or
/// `Y`, or the short form `"<n><unit>"` (`"30s"`, `"1d"`, `"2w"`, `"1mo"`, `"1y"`);
/// `None` for anything else. Days, weeks, months and years count 1, 7, 30 and 365
/// calendar days.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = text[..digits].parse().ok().filter(|n| *n > 0)?;
    let unit = text[digits..].trim();
    let per = match unit {
        "S" | "s" => 1,
        "D" | "d" => DAY,
        "W" | "w" => 7 * DAY,
        "M" | "mo" => 30 * DAY,
        "Y" | "y" => 365 * DAY,
        _ => return None,
    };
    n.checked_mul(per).map(Duration::from_secs)
}

/// The shortest IB duration text covering `span`: seconds up to a day (IB takes no
/// more than 86 400 S), then whole days, then whole years beyond a year.
pub fn ib_duration(span: Duration) -> String {
    let secs = span.as_secs().max(1);
    if secs <= DAY {
        format!("{secs} S")
    } else if secs <= 365 * DAY {
        format!("{} D", secs.div_ceil(DAY))
    } else {
        format!("{} Y", secs.div_ceil(365 * DAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizes_read_short_and_ib_names() {
        assert_eq!(BarSize::parse("1m"), Some(BarSize::Min1));
        assert_eq!(BarSize::parse("1 MIN"), Some(BarSize::Min1));
        assert_eq!(BarSize::parse("1mo"), Some(BarSize::Month1));
        assert_eq!(BarSize::parse("7m"), None);
        for size in BarSize::all() {
            assert_eq!(BarSize::parse(size.ib_text()), Some(size));
            assert_eq!(BarSize::parse(size.short()), Some(size));
        }
    }

    #[test]
    fn durations_read_ib_and_short_forms() {
        assert_eq!(parse_duration("1 D"), Some(Duration::from_secs(DAY)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(DAY)));
        assert_eq!(parse_duration("1800 S"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2 M"), Some(Duration::from_secs(60 * DAY)));
        for bad in [
            "",
            "D",
            "0 D",
            "1 X",
            "-1 D",
            "1.5 D",
            "99999999999999999999 Y",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(ib_duration(Duration::from_secs(1800)), "1800 S");
        assert_eq!(ib_duration(Duration::from_secs(DAY + 1)), "2 D");
        assert_eq!(
            parse_duration(&ib_duration(Duration::from_secs(400 * DAY))),
            Some(Duration::from_secs(2 * 365 * DAY))
        );
    }

    #[test]
    fn longer_bars_allow_longer_requests() {
        let mut last = Duration::ZERO;
        for size in BarSize::all() {
            assert!(size.max_duration() >= last, "{size:?}");
            assert!(size.max_duration().as_secs() >= size.seconds());
            last = size.max_duration();
        }
    }
}
