//! Timestamps are stored as unix milliseconds in `BIGINT` columns: the one integer
//! type SQLite and PostgreSQL agree on, and ordering works the same on both.

use time::OffsetDateTime;

use super::StoreError;

/// The current time as stored.
pub(crate) fn now_millis() -> i64 {
    to_millis(OffsetDateTime::now_utc())
}

/// `at` truncated to milliseconds.
pub(crate) fn to_millis(at: OffsetDateTime) -> i64 {
    // i128 nanoseconds / 1e6 fits i64 for every date `time` can represent.
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A stored timestamp back as a UTC time.
pub(crate) fn from_millis(what: &'static str, millis: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|err| StoreError::corrupt(what, err))
}

/// `at` as stored and read back: what a caller sees after a round trip.
pub(crate) fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(to_millis(at)) * 1_000_000).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_truncates_below_a_millisecond() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let stored = to_millis(at);
        assert_eq!(stored, 1_700_000_000_123);
        assert_eq!(
            from_millis("t", stored).unwrap().unix_timestamp_nanos(),
            1_700_000_000_123_000_000
        );
        assert_eq!(truncate(at), from_millis("t", stored).unwrap());
    }
}
