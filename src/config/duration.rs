//! Humane durations for configuration and flags: `"250ms"`, `"5s"`, `"1m30s"`, `"1h 30m"`,
//! `"2days"` (humantime's syntax); a bare number is seconds and may have a fraction.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a duration such as `"250ms"`, `"10s"`, `"1m30s"` or `"2h"`; a bare number
/// (`"5"`, `"0.5"`) means seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

/// Formats `d` the way [`parse`] reads it back (`"1m 30s"`, `"250ms"`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// serde adapter: `#[serde(deserialize_with = "duration::deserialize")]`, accepting a
/// humane string or a number of seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(f64),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Text(text) => parse(&text).map_err(serde::de::Error::custom),
        Raw::Seconds(s) => seconds_to_duration(s, &s.to_string()).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humane_durations() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse(" 2min ").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2days").unwrap(), Duration::from_secs(2 * 86_400));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "s", "5x", "-1s", "1.2.3s", "ms5", "5 parsecs"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(10),
            Duration::ZERO,
            Duration::from_secs(5400),
        ] {
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }

    #[test]
    fn whole_numbers_with_a_unit_are_exact() {
        // Found by fuzzing: through f64 this was 249111111.111000001s.
        let d = parse("249111111111ms").unwrap();
        assert_eq!(d, Duration::from_millis(249_111_111_111));
        assert_eq!(parse(&format(d)).unwrap(), d);
        assert_eq!(parse("3h").unwrap(), Duration::from_secs(10_800));
        assert!(parse("18446744073709551615h").is_err());
    }
}
