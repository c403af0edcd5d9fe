//! Humane durations for configuration: `"250ms"`, `"5s"`, `"1m30s"`, `"1.5h"`; a bare
//! number is seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a duration such as `"250ms"`, `"10s"`, `"1m30s"` or `"2h"`. Units: `ms`, `s`,
/// `m`, `h`; a bare number means seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: number without a unit"))?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale_ms: u64 = match unit.trim() {
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        let too_long = || format!("{text:?} is too long");
        let part = match number.parse::<u64>() {
            // Whole numbers stay exact: through f64, "249111111111ms" lands a nanosecond off.
            Ok(n) => Duration::from_millis(n.checked_mul(scale_ms).ok_or_else(too_long)?),
            Err(_) => {
                let value: f64 = number
                    .parse()
                    .map_err(|_| format!("{text:?}: {number:?} is not a number"))?;
                seconds_to_duration(value * scale_ms as f64 / 1000.0, text)?
            }
        };
        total = total.checked_add(part).ok_or_else(too_long)?;
        rest = tail.trim_start();
    }
    Ok(total)
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

/// Formats `d` the way [`parse`] reads it back (milliseconds precision).
pub fn format(d: Duration) -> String {
    let millis = d.as_millis();
    if !millis.is_multiple_of(1000) {
        format!("{millis}ms")
    } else {
        format!("{}s", millis / 1000)
    }
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
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse(" 2 min ").unwrap(), Duration::from_secs(120));
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
