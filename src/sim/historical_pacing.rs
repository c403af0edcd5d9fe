//! IB's historical-data pacing, as the gateway enforces it on one connection: the rules
//! of [`HistoricalRules`] read by the same [`HistoryLog`] ibstream schedules with. A
//! request that breaks them gets error 162 and is not served (nor counted as sent).

use tokio::time::Instant;

use crate::ib::historical_pacer::{HistoricalRules, HistoryLog, PacingKey};

/// IB's message for a pacing violation (error 162).
pub(crate) const VIOLATION: &str =
    "Historical Market Data Service error message:Historical data request pacing violation";

/// The historical requests of one connection.
#[derive(Debug, Default)]
pub(crate) struct HistoricalPacing {
    log: HistoryLog,
    /// When the request being handled arrived: the rules count arrivals, not handling.
    arrived: Option<Instant>,
}

impl HistoricalPacing {
    /// Notes when the next request arrived.
    pub(crate) fn arrived(&mut self, at: Instant) {
        self.arrived = Some(at);
    }

    /// When the request being handled arrived (now if unknown).
    pub(crate) fn arrival(&self) -> Instant {
        self.arrived.unwrap_or_else(Instant::now)
    }

    /// Whether a request with `key` arriving at `now` keeps the rules; if so, it counts.
    pub(crate) fn admit(&mut self, rules: &HistoricalRules, key: PacingKey, now: Instant) -> bool {
        if self.log.earliest(rules, &key, now) > now {
            return false;
        }
        self.log.record(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(r: &str, g: &str) -> PacingKey {
        PacingKey {
            request: r.into(),
            group: g.into(),
        }
    }

    #[test]
    fn each_rule_is_a_violation() {
        let rules = HistoricalRules::IB;
        let t0 = Instant::now();
        let mut p = HistoricalPacing::default();
        assert!(p.admit(&rules, key("a", "g"), t0));
        assert!(!p.admit(&rules, key("a", "g"), t0 + Duration::from_secs(14)));
        assert!(p.admit(&rules, key("a", "g"), t0 + Duration::from_secs(15)));
        let mut p = HistoricalPacing::default();
        for i in 0..6 {
            assert!(p.admit(&rules, key(&i.to_string(), "g"), t0));
        }
        assert!(!p.admit(&rules, key("7", "g"), t0 + Duration::from_millis(1_999)));
        assert!(p.admit(&rules, key("7", "g"), t0 + Duration::from_secs(2)));
        let mut p = HistoricalPacing::default();
        for i in 0..60 {
            assert!(p.admit(&rules, key(&i.to_string(), &i.to_string()), t0));
        }
        let late = t0 + Duration::from_secs(599);
        assert!(!p.admit(&rules, key("x", "x"), late));
        assert!(p.admit(&rules, key("x", "x"), t0 + Duration::from_secs(600)));
    }
}
