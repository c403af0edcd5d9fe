//! Requests as typed commands, and their handlers. Each inbound frame is parsed once, by
//! [`Command::from_frame`], into one variant; the session dispatches it in one place, and
//! every handler takes only what it needs (the shared state, the connection's outbox, the
//! session's market-data state), never the session itself.
//!
//! Modules:
//! - `kind`: the request kinds by message id, their statistics names.
//! - `market_data`: `reqMktData` (validation, permissions, snapshots, streaming lines),
//!   `cancelMktData`, `reqMarketDataType`.
//! - `reference`: contract details, option chain parameters, symbol search.
//! - `gateway`: managed accounts, next order id, current time, the welcome burst.
//! - `invalid`: what becomes of unknown and undecodable requests.

pub(crate) mod gateway;
pub(crate) mod historical;
pub(crate) mod invalid;
mod kind;
pub(crate) mod market_data;
pub(crate) mod reference;

use bytes::Bytes;
use prost::Message;

use super::frame::InboundFrame;
use crate::proto::tws;

pub(crate) use invalid::Invalid;
pub(crate) use kind::RequestKind;
pub(crate) use market_data::{DataType, Lines};

/// One client request, decoded.
#[derive(Debug)]
pub(crate) enum Command {
    /// `reqMktData`.
    MarketData(tws::MarketDataRequest),
    /// `cancelMktData` of a ticker id.
    CancelMarketData { req_id: i32 },
    /// `reqMarketDataType` (the requested type, valid or not).
    MarketDataType(Option<i32>),
    /// `reqContractDetails`.
    ContractDetails(tws::ContractDataRequest),
    /// `cancelContractData`: contract details are answered at once, so nothing to stop.
    CancelContractDetails { req_id: i32 },
    /// `reqSecDefOptParams`.
    OptionParams(tws::SecDefOptParamsRequest),
    /// `reqMatchingSymbols`.
    SymbolSearch(tws::MatchingSymbolsRequest),
    /// `reqCurrentTime`.
    CurrentTime,
    /// `reqCurrentTimeInMillis`.
    CurrentTimeInMillis,
    /// `reqManagedAccts`.
    ManagedAccounts,
    /// `reqIds`.
    Ids,
    /// A StartApi after the one that opened the session.
    StartApi,
    /// `reqHistoricalData`.
    HistoricalData(tws::HistoricalDataRequest),
    /// `reqHeadTimestamp`.
    HeadTimestamp(tws::HeadTimestampRequest),
    /// `reqRealTimeBars`.
    RealTimeBars(tws::RealTimeBarsRequest),
    /// `cancelRealTimeBars`.
    CancelRealTimeBars { req_id: i32 },
    /// `cancelHistoricalData`, `cancelHeadTimestamp`: answered at once, nothing to stop.
    CancelHistorical { kind: RequestKind, req_id: i32 },
    /// A request the simulator does not serve or cannot decode.
    Invalid(Invalid),
}

/// A request id as sent, −1 when absent (as IB reports errors on no request).
fn id_or_none(req_id: Option<i32>) -> i32 {
    req_id.unwrap_or(-1)
}

/// The request id at tag 1 of a payload, whatever else it holds.
fn envelope_req_id(payload: Bytes) -> i32 {
    id_or_none(
        tws::RequestIdEnvelope::decode(payload)
            .ok()
            .and_then(|e| e.req_id),
    )
}

impl Command {
    /// Decodes one post-handshake frame. Requests without fields worth reading (current
    /// time, accounts, StartApi) are not decoded, so a broken payload does not matter there.
    pub(crate) fn from_frame(frame: InboundFrame) -> Command {
        let Some(kind) = RequestKind::from_wire_id(frame.wire_id) else {
            return Command::Invalid(Invalid::Unsupported {
                wire_id: frame.wire_id,
            });
        };
        let payload = frame.payload;
        let decoded = Self::decode(kind, payload.clone());
        decoded.unwrap_or_else(|error| {
            Command::Invalid(Invalid::Malformed {
                kind,
                req_id: if kind.has_request_id() {
                    envelope_req_id(payload)
                } else {
                    -1
                },
                error,
            })
        })
    }

    fn decode(kind: RequestKind, payload: Bytes) -> Result<Command, prost::DecodeError> {
        Ok(match kind {
            RequestKind::MarketData => Command::MarketData(Message::decode(payload)?),
            RequestKind::CancelMarketData => Command::CancelMarketData {
                req_id: id_or_none(tws::CancelMarketData::decode(payload)?.req_id),
            },
            RequestKind::MarketDataType => Command::MarketDataType(
                tws::MarketDataTypeRequest::decode(payload)?.market_data_type,
            ),
            RequestKind::ContractData => Command::ContractDetails(Message::decode(payload)?),
            RequestKind::CancelContractData => Command::CancelContractDetails {
                req_id: id_or_none(tws::CancelContractData::decode(payload)?.req_id),
            },
            RequestKind::SecDefOptParams => Command::OptionParams(Message::decode(payload)?),
            RequestKind::MatchingSymbols => Command::SymbolSearch(Message::decode(payload)?),
            RequestKind::Ids => {
                tws::IdsRequest::decode(payload)?;
                Command::Ids
            }
            RequestKind::HistoricalData => Command::HistoricalData(Message::decode(payload)?),
            RequestKind::HeadTimestamp => Command::HeadTimestamp(Message::decode(payload)?),
            RequestKind::RealTimeBars => Command::RealTimeBars(Message::decode(payload)?),
            RequestKind::CancelRealTimeBars => Command::CancelRealTimeBars {
                req_id: id_or_none(tws::CancelByRequestId::decode(payload)?.req_id),
            },
            RequestKind::CancelHistoricalData | RequestKind::CancelHeadTimestamp => {
                Command::CancelHistorical {
                    kind,
                    req_id: id_or_none(tws::CancelByRequestId::decode(payload)?.req_id),
                }
            }
            RequestKind::CurrentTime => Command::CurrentTime,
            RequestKind::CurrentTimeInMillis => Command::CurrentTimeInMillis,
            RequestKind::ManagedAccounts => Command::ManagedAccounts,
            RequestKind::StartApi => Command::StartApi,
        })
    }

    /// The kind of request, `None` for one the simulator does not serve.
    pub(crate) fn kind(&self) -> Option<RequestKind> {
        Some(match self {
            Command::MarketData(_) => RequestKind::MarketData,
            Command::CancelMarketData { .. } => RequestKind::CancelMarketData,
            Command::MarketDataType(_) => RequestKind::MarketDataType,
            Command::ContractDetails(_) => RequestKind::ContractData,
            Command::CancelContractDetails { .. } => RequestKind::CancelContractData,
            Command::OptionParams(_) => RequestKind::SecDefOptParams,
            Command::SymbolSearch(_) => RequestKind::MatchingSymbols,
            Command::CurrentTime => RequestKind::CurrentTime,
            Command::CurrentTimeInMillis => RequestKind::CurrentTimeInMillis,
            Command::ManagedAccounts => RequestKind::ManagedAccounts,
            Command::Ids => RequestKind::Ids,
            Command::StartApi => RequestKind::StartApi,
            Command::HistoricalData(_) => RequestKind::HistoricalData,
            Command::HeadTimestamp(_) => RequestKind::HeadTimestamp,
            Command::RealTimeBars(_) => RequestKind::RealTimeBars,
            Command::CancelRealTimeBars { .. } => RequestKind::CancelRealTimeBars,
            Command::CancelHistorical { kind, .. } => *kind,
            Command::Invalid(invalid) => return invalid.kind(),
        })
    }

    /// Name in the statistics.
    pub(crate) fn name(&self) -> &'static str {
        self.kind().map_or(kind::UNKNOWN_NAME, RequestKind::name)
    }

    /// The request id errors about this request are reported on (−1: none).
    pub(crate) fn req_id(&self) -> i32 {
        match self {
            Command::MarketData(req) => id_or_none(req.req_id),
            Command::ContractDetails(req) => id_or_none(req.req_id),
            Command::OptionParams(req) => id_or_none(req.req_id),
            Command::SymbolSearch(req) => id_or_none(req.req_id),
            Command::HistoricalData(req) => id_or_none(req.req_id),
            Command::HeadTimestamp(req) => id_or_none(req.req_id),
            Command::RealTimeBars(req) => id_or_none(req.req_id),
            Command::CancelRealTimeBars { req_id } | Command::CancelHistorical { req_id, .. } => {
                *req_id
            }
            Command::CancelMarketData { req_id }
            | Command::CancelContractDetails { req_id }
            | Command::Invalid(Invalid::Malformed { req_id, .. }) => *req_id,
            Command::MarketDataType(_)
            | Command::CurrentTime
            | Command::CurrentTimeInMillis
            | Command::ManagedAccounts
            | Command::Ids
            | Command::StartApi
            | Command::Invalid(Invalid::Unsupported { .. }) => -1,
        }
    }
}

#[cfg(test)]
mod tests;
