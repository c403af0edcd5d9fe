//! Which market data IB sends (`reqMarketDataType`): the one type the store's profiles,
//! the session and the fan-out share. Conversions to the public proto and to `ibapi`
//! live at those edges (`api::convert`, `fanout::ib_convert`).

use std::fmt;
use std::str::FromStr;

/// Live, frozen, delayed or delayed-frozen data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MarketDataType {
    /// Real-time streaming data; needs a live subscription.
    #[default]
    Live,
    /// The last recorded values when the market is closed.
    Frozen,
    /// Delayed data, free for most instruments.
    Delayed,
    /// Delayed data, frozen when the market is closed.
    DelayedFrozen,
}

/// A name that is none of the four types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of live, frozen, delayed, delayed-frozen")]
pub struct UnknownMarketDataType(pub String);

impl MarketDataType {
    /// Every variant, in IB code order.
    pub const ALL: [MarketDataType; 4] = [
        MarketDataType::Live,
        MarketDataType::Frozen,
        MarketDataType::Delayed,
        MarketDataType::DelayedFrozen,
    ];

    /// IB's numeric code (1 live, 2 frozen, 3 delayed, 4 delayed-frozen).
    pub fn ib_code(self) -> i32 {
        match self {
            MarketDataType::Live => 1,
            MarketDataType::Frozen => 2,
            MarketDataType::Delayed => 3,
            MarketDataType::DelayedFrozen => 4,
        }
    }

    /// The variant for IB's numeric code.
    pub fn from_ib_code(code: i32) -> Option<MarketDataType> {
        MarketDataType::ALL
            .into_iter()
            .find(|t| t.ib_code() == code)
    }

    /// The lower-case name used in configuration and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            MarketDataType::Live => "live",
            MarketDataType::Frozen => "frozen",
            MarketDataType::Delayed => "delayed",
            MarketDataType::DelayedFrozen => "delayed-frozen",
        }
    }

    /// The delayed counterpart used when live data is not permitted.
    pub fn delayed(self) -> MarketDataType {
        match self {
            MarketDataType::Frozen | MarketDataType::DelayedFrozen => MarketDataType::DelayedFrozen,
            MarketDataType::Live | MarketDataType::Delayed => MarketDataType::Delayed,
        }
    }

    /// Whether this is one of the delayed types.
    pub fn is_delayed(self) -> bool {
        matches!(
            self,
            MarketDataType::Delayed | MarketDataType::DelayedFrozen
        )
    }
}

impl fmt::Display for MarketDataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MarketDataType {
    type Err = UnknownMarketDataType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        MarketDataType::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| UnknownMarketDataType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for t in MarketDataType::ALL {
            assert_eq!(MarketDataType::from_ib_code(t.ib_code()), Some(t));
            assert_eq!(t.to_string().parse::<MarketDataType>().unwrap(), t);
        }
        assert_eq!(
            "DELAYED_FROZEN".parse::<MarketDataType>().unwrap(),
            MarketDataType::DelayedFrozen
        );
        assert_eq!(MarketDataType::from_ib_code(0), None);
        assert!("x".parse::<MarketDataType>().is_err());
    }

    #[test]
    fn delayed_counterparts() {
        assert_eq!(MarketDataType::Live.delayed(), MarketDataType::Delayed);
        assert_eq!(
            MarketDataType::Frozen.delayed(),
            MarketDataType::DelayedFrozen
        );
        assert!(MarketDataType::Delayed.is_delayed());
        assert!(!MarketDataType::Frozen.is_delayed());
    }
}
