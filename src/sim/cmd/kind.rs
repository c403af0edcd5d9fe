//! The kinds of request the simulator serves, told apart by message id.

use crate::sim::frame::{PROTOBUF_OFFSET, inbound};

/// A request the simulator understands, by its logical message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    MarketData,
    CancelMarketData,
    Ids,
    ContractData,
    ManagedAccounts,
    CurrentTime,
    MarketDataType,
    StartApi,
    SecDefOptParams,
    MatchingSymbols,
    CurrentTimeInMillis,
    CancelContractData,
    HistoricalData,
    CancelHistoricalData,
    RealTimeBars,
    CancelRealTimeBars,
    HeadTimestamp,
    CancelHeadTimestamp,
}

impl RequestKind {
    /// The kind a wire message id names; `None` for ids the simulator does not serve,
    /// text-era ids (no protobuf offset) and ids no offset can be taken from.
    pub(crate) fn from_wire_id(wire_id: i32) -> Option<Self> {
        let kind = match wire_id.checked_sub(PROTOBUF_OFFSET)? {
            inbound::REQ_MKT_DATA => Self::MarketData,
            inbound::CANCEL_MKT_DATA => Self::CancelMarketData,
            inbound::REQ_IDS => Self::Ids,
            inbound::REQ_CONTRACT_DATA => Self::ContractData,
            inbound::REQ_MANAGED_ACCTS => Self::ManagedAccounts,
            inbound::REQ_CURRENT_TIME => Self::CurrentTime,
            inbound::REQ_MARKET_DATA_TYPE => Self::MarketDataType,
            inbound::START_API => Self::StartApi,
            inbound::REQ_SEC_DEF_OPT_PARAMS => Self::SecDefOptParams,
            inbound::REQ_MATCHING_SYMBOLS => Self::MatchingSymbols,
            inbound::REQ_CURRENT_TIME_IN_MILLIS => Self::CurrentTimeInMillis,
            inbound::CANCEL_CONTRACT_DATA => Self::CancelContractData,
            inbound::REQ_HISTORICAL_DATA => Self::HistoricalData,
            inbound::CANCEL_HISTORICAL_DATA => Self::CancelHistoricalData,
            inbound::REQ_REAL_TIME_BARS => Self::RealTimeBars,
            inbound::CANCEL_REAL_TIME_BARS => Self::CancelRealTimeBars,
            inbound::REQ_HEAD_TIMESTAMP => Self::HeadTimestamp,
            inbound::CANCEL_HEAD_TIMESTAMP => Self::CancelHeadTimestamp,
            _ => return None,
        };
        Some(kind)
    }

    /// Name in the statistics (ibapi's `OutgoingMessages` names).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::MarketData => "RequestMarketData",
            Self::CancelMarketData => "CancelMarketData",
            Self::Ids => "RequestIds",
            Self::ContractData => "RequestContractData",
            Self::ManagedAccounts => "RequestManagedAccounts",
            Self::CurrentTime => "RequestCurrentTime",
            Self::MarketDataType => "RequestMarketDataType",
            Self::StartApi => "StartApi",
            Self::SecDefOptParams => "RequestSecurityDefinitionOptionalParameters",
            Self::MatchingSymbols => "RequestMatchingSymbols",
            Self::CurrentTimeInMillis => "RequestCurrentTimeInMillis",
            Self::CancelContractData => "CancelContractData",
            Self::HistoricalData => "RequestHistoricalData",
            Self::CancelHistoricalData => "CancelHistoricalData",
            Self::RealTimeBars => "RequestRealTimeBars",
            Self::CancelRealTimeBars => "CancelRealTimeBars",
            Self::HeadTimestamp => "RequestHeadTimestamp",
            Self::CancelHeadTimestamp => "CancelHeadTimestamp",
        }
    }

    /// Whether tag 1 of the request is a request id (errors about it are reported on it).
    pub(crate) fn has_request_id(self) -> bool {
        matches!(
            self,
            Self::MarketData
                | Self::CancelMarketData
                | Self::ContractData
                | Self::CancelContractData
                | Self::SecDefOptParams
                | Self::MatchingSymbols
                | Self::HistoricalData
                | Self::CancelHistoricalData
                | Self::RealTimeBars
                | Self::CancelRealTimeBars
                | Self::HeadTimestamp
                | Self::CancelHeadTimestamp
        )
    }
}

/// Statistics name of requests the simulator does not serve.
pub(crate) const UNKNOWN_NAME: &str = "Unknown";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_carry_the_protobuf_offset() {
        assert_eq!(
            RequestKind::from_wire_id(inbound::REQ_CURRENT_TIME + PROTOBUF_OFFSET),
            Some(RequestKind::CurrentTime)
        );
        // A text-era id is not the protobuf request of the same number.
        assert_eq!(RequestKind::from_wire_id(inbound::REQ_CURRENT_TIME), None);
    }

    #[test]
    fn ids_at_the_ends_of_i32_are_unknown() {
        for wire_id in [i32::MIN, i32::MIN + PROTOBUF_OFFSET - 1, -1, 0, i32::MAX] {
            assert_eq!(RequestKind::from_wire_id(wire_id), None, "{wire_id}");
        }
    }
}
