//! What travels between the nodes of a cluster (`proto/ibstream/cluster/v1/bus.proto`),
//! converted from and to the fan-out's domain. Anything may be published on the bus, so
//! decoding never panics: bytes that are not a message, or a message naming a kind this
//! node does not know, are a [`WireError`].

use std::time::Duration;

use prost::Message;

use crate::bars::source::HistoryAsk;
use crate::bars::spec::{BarSize, WhatToShow};
use crate::fanout::tick::{OptionComputation, PriceField, SizeField, Tick};
use crate::fanout::{
    ChainParams, ContractDetails, ContractSpec, DataNotice, FarmKind, FeedStatus, FeedView,
    MarketDataType, OptionExtras, Quote, Right, SecType, SourceError, SourceEvent, SymbolMatch,
};
use crate::proto::ibstream::cluster::v1 as pb;
use crate::store::StoredBar;

pub use pb::{
    ChainList, DetailsList, InterestReply, InterestRequest, Link, LookupReply, LookupRequest,
    Renewal, SnapshotQuery, SymbolList,
};

/// Why a message from the bus was not understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("undecodable message: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} has the unknown value {value}")]
    Unknown { field: &'static str, value: i32 },
    #[error("{field} has the unknown value {value:?}")]
    UnknownText { field: &'static str, value: String },
}

/// Decodes one message of the bus.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, WireError> {
    Ok(M::decode(bytes)?)
}

fn unknown(field: &'static str, value: i32) -> WireError {
    WireError::Unknown { field, value }
}

pub fn sec_type_to_pb(t: SecType) -> pb::SecType {
    match t {
        SecType::Stock => pb::SecType::Stock,
        SecType::Option => pb::SecType::Option,
        SecType::Index => pb::SecType::Index,
        SecType::Future => pb::SecType::Future,
        SecType::FutureOption => pb::SecType::FutureOption,
        SecType::Forex => pb::SecType::Forex,
        SecType::Crypto => pb::SecType::Crypto,
        SecType::Cfd => pb::SecType::Cfd,
        SecType::Bond => pb::SecType::Bond,
    }
}

fn sec_type_from_pb(v: i32) -> Result<SecType, WireError> {
    Ok(
        match pb::SecType::try_from(v).map_err(|_| unknown("sec_type", v))? {
            pb::SecType::Unspecified => return Err(unknown("sec_type", v)),
            pb::SecType::Stock => SecType::Stock,
            pb::SecType::Option => SecType::Option,
            pb::SecType::Index => SecType::Index,
            pb::SecType::Future => SecType::Future,
            pb::SecType::FutureOption => SecType::FutureOption,
            pb::SecType::Forex => SecType::Forex,
            pb::SecType::Crypto => SecType::Crypto,
            pb::SecType::Cfd => SecType::Cfd,
            pb::SecType::Bond => SecType::Bond,
        },
    )
}

pub fn data_type_to_pb(t: MarketDataType) -> pb::DataType {
    match t {
        MarketDataType::Live => pb::DataType::Live,
        MarketDataType::Frozen => pb::DataType::Frozen,
        MarketDataType::Delayed => pb::DataType::Delayed,
        MarketDataType::DelayedFrozen => pb::DataType::DelayedFrozen,
    }
}

/// The type, or `None` for "unspecified".
pub fn data_type_from_pb(v: i32) -> Result<Option<MarketDataType>, WireError> {
    Ok(
        match pb::DataType::try_from(v).map_err(|_| unknown("data_type", v))? {
            pb::DataType::Unspecified => None,
            pb::DataType::Live => Some(MarketDataType::Live),
            pb::DataType::Frozen => Some(MarketDataType::Frozen),
            pb::DataType::Delayed => Some(MarketDataType::Delayed),
            pb::DataType::DelayedFrozen => Some(MarketDataType::DelayedFrozen),
        },
    )
}

pub fn contract_to_pb(c: &ContractSpec) -> pb::Contract {
    pb::Contract {
        con_id: c.con_id,
        symbol: c.symbol.clone(),
        sec_type: sec_type_to_pb(c.sec_type).into(),
        exchange: c.exchange.clone(),
        primary_exchange: c.primary_exchange.clone(),
        currency: c.currency.clone(),
        expiry: c.expiry.clone(),
        strike: c.strike,
        right: match c.right {
            None => pb::Right::Unspecified,
            Some(Right::Call) => pb::Right::Call,
            Some(Right::Put) => pb::Right::Put,
        }
        .into(),
        multiplier: c.multiplier.clone(),
        trading_class: c.trading_class.clone(),
        local_symbol: c.local_symbol.clone(),
    }
}

pub fn contract_from_pb(c: &pb::Contract) -> Result<ContractSpec, WireError> {
    Ok(ContractSpec {
        con_id: c.con_id,
        symbol: c.symbol.clone(),
        sec_type: sec_type_from_pb(c.sec_type)?,
        exchange: c.exchange.clone(),
        primary_exchange: c.primary_exchange.clone(),
        currency: c.currency.clone(),
        expiry: c.expiry.clone(),
        strike: c.strike,
        right: match pb::Right::try_from(c.right).map_err(|_| unknown("right", c.right))? {
            pb::Right::Unspecified => None,
            pb::Right::Call => Some(Right::Call),
            pb::Right::Put => Some(Right::Put),
        },
        multiplier: c.multiplier.clone(),
        trading_class: c.trading_class.clone(),
        local_symbol: c.local_symbol.clone(),
    })
}

fn required<'a, T>(v: &'a Option<T>, field: &'static str) -> Result<&'a T, WireError> {
    v.as_ref().ok_or(WireError::Missing(field))
}

pub fn error_to_pb(e: &SourceError) -> pb::Error {
    use pb::error::Kind;
    let (kind, message, code, deadline_ms) = match e {
        SourceError::LinkDown => (Kind::LinkDown, String::new(), 0, 0),
        SourceError::NotFound(m) => (Kind::NotFound, m.clone(), 0, 0),
        SourceError::NoPermission(m) => (Kind::NoPermission, m.clone(), 0, 0),
        SourceError::LineLimit(m) => (Kind::LineLimit, m.clone(), 0, 0),
        SourceError::Deadline(d) => (
            Kind::Deadline,
            String::new(),
            0,
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        ),
        SourceError::Ib { code, message } => (Kind::Ib, message.clone(), *code, 0),
    };
    pb::Error {
        kind: kind.into(),
        message,
        code,
        deadline_ms,
    }
}

pub fn error_from_pb(e: &pb::Error) -> Result<SourceError, WireError> {
    use pb::error::Kind;
    let message = e.message.clone();
    Ok(
        match Kind::try_from(e.kind).map_err(|_| unknown("error.kind", e.kind))? {
            Kind::Unspecified => return Err(unknown("error.kind", e.kind)),
            Kind::LinkDown => SourceError::LinkDown,
            Kind::NotFound => SourceError::NotFound(message),
            Kind::NoPermission => SourceError::NoPermission(message),
            Kind::LineLimit => SourceError::LineLimit(message),
            Kind::Deadline => SourceError::Deadline(Duration::from_millis(e.deadline_ms)),
            Kind::Ib => SourceError::Ib {
                code: e.code,
                message,
            },
        },
    )
}

/// An instrument's value as the leader publishes it.
pub fn value_to_pb(term: u64, view: &FeedView) -> pb::FeedValue {
    use pb::feed_value::Status;
    let (status, error) = match &view.status {
        FeedStatus::Pending => (Status::Pending, None),
        FeedStatus::Live => (Status::Live, None),
        FeedStatus::Stale => (Status::Stale, None),
        FeedStatus::Failed(e) => (Status::Failed, Some(error_to_pb(e))),
    };
    let mut value = quote_to_pb(term, &view.quote, &view.extras);
    value.status = status.into();
    value.error = error;
    value
}

/// A quote (and its option extras) with the status its `stale` mark gives.
pub fn quote_to_pb(term: u64, q: &Quote, extras: &OptionExtras) -> pb::FeedValue {
    use pb::feed_value::Status;
    pb::FeedValue {
        term,
        con_id: q.con_id,
        sequence: q.sequence,
        status: if q.stale { Status::Stale } else { Status::Live }.into(),
        error: None,
        bid: q.bid,
        ask: q.ask,
        last: q.last,
        bid_size: q.bid_size,
        ask_size: q.ask_size,
        last_size: q.last_size,
        volume: q.volume,
        open: q.open,
        high: q.high,
        low: q.low,
        close: q.close,
        last_trade_time: q.last_trade_time,
        market_data_type: q
            .market_data_type
            .map_or(pb::DataType::Unspecified, data_type_to_pb)
            .into(),
        model: extras.model.map(|g| pb::Greeks {
            implied_volatility: g.implied_volatility,
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            underlying_price: g.underlying_price,
            option_price: g.option_price,
        }),
        open_interest: extras.open_interest,
        option_volume: extras.option_volume,
        implied_volatility: extras.implied_volatility,
    }
}

/// The ticks that bring a quote to the value's fields: every field is sent, an absent
/// one as IB's "no value" sentinel, so a field the leader cleared is cleared here too.
/// The follower folds them as it would IB's, which strips whatever is not a sane value.
pub fn value_ticks(v: &pb::FeedValue) -> Result<Vec<Tick>, WireError> {
    const NONE: f64 = -1.0;
    let mut ticks = vec![
        Tick::Price(PriceField::Bid, v.bid.unwrap_or(NONE)),
        Tick::Price(PriceField::Ask, v.ask.unwrap_or(NONE)),
        Tick::Price(PriceField::Last, v.last.unwrap_or(NONE)),
        Tick::Price(PriceField::High, v.high.unwrap_or(NONE)),
        Tick::Price(PriceField::Low, v.low.unwrap_or(NONE)),
        Tick::Price(PriceField::Close, v.close.unwrap_or(NONE)),
        Tick::Price(PriceField::Open, v.open.unwrap_or(NONE)),
        Tick::Size(SizeField::Bid, v.bid_size.unwrap_or(NONE)),
        Tick::Size(SizeField::Ask, v.ask_size.unwrap_or(NONE)),
        Tick::Size(SizeField::Last, v.last_size.unwrap_or(NONE)),
        Tick::Size(SizeField::Volume, v.volume.unwrap_or(NONE)),
        Tick::LastTradeTime(v.last_trade_time.unwrap_or(0)),
        Tick::OpenInterest(v.open_interest.unwrap_or(NONE)),
        Tick::OptionVolume(v.option_volume.unwrap_or(NONE)),
        Tick::ImpliedVolatility(v.implied_volatility.unwrap_or(NONE)),
    ];
    if let Some(t) = data_type_from_pb(v.market_data_type)? {
        ticks.push(Tick::DataType(t));
    }
    if let Some(g) = &v.model {
        ticks.push(Tick::OptionModel(OptionComputation {
            implied_volatility: g.implied_volatility,
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            underlying_price: g.underlying_price,
            option_price: g.option_price,
        }));
    }
    Ok(ticks)
}

/// What a follower's feed folds for one value from the leader: nothing while the leader
/// waits for data, the ticks while it is live, the ticks and a stale mark while its values
/// are old, the end of the subscription when it failed.
pub fn value_events(v: &pb::FeedValue) -> Result<Vec<SourceEvent>, WireError> {
    use pb::feed_value::Status;
    let status = Status::try_from(v.status).map_err(|_| unknown("status", v.status))?;
    Ok(match status {
        Status::Unspecified => return Err(unknown("status", v.status)),
        Status::Pending => Vec::new(),
        Status::Live | Status::Stale => {
            let mut events: Vec<_> = value_ticks(v)?.into_iter().map(SourceEvent::Tick).collect();
            if status == Status::Stale {
                events.push(SourceEvent::Stale);
            }
            events
        }
        Status::Failed => vec![SourceEvent::Ended(error_from_pb(required(
            &v.error, "error",
        )?)?)],
    })
}

fn farm_to_pb(f: FarmKind) -> pb::notice::Farm {
    match f {
        FarmKind::Equities => pb::notice::Farm::Equities,
        FarmKind::Options => pb::notice::Farm::Options,
        FarmKind::Forex => pb::notice::Farm::Forex,
        FarmKind::Futures => pb::notice::Farm::Futures,
    }
}

pub fn notice_to_pb(term: u64, generation: u64, n: DataNotice) -> pb::Notice {
    use pb::notice::Kind;
    let mut out = pb::Notice {
        term,
        generation,
        ..Default::default()
    };
    match n {
        DataNotice::Farm { farm, up } => {
            out.kind = Kind::Farm.into();
            out.farm = farm_to_pb(farm).into();
            out.up = up;
        }
        DataNotice::ConnectivityLost => out.kind = Kind::ConnectivityLost.into(),
        DataNotice::ConnectivityRestored { data_lost } => {
            out.kind = Kind::ConnectivityRestored.into();
            out.data_lost = data_lost;
        }
        DataNotice::CompetingSession => out.kind = Kind::CompetingSession.into(),
    }
    out
}

pub fn notice_from_pb(n: &pb::Notice) -> Result<DataNotice, WireError> {
    use pb::notice::{Farm, Kind};
    Ok(
        match Kind::try_from(n.kind).map_err(|_| unknown("notice.kind", n.kind))? {
            Kind::Unspecified => return Err(unknown("notice.kind", n.kind)),
            Kind::Farm => DataNotice::Farm {
                farm: match Farm::try_from(n.farm).map_err(|_| unknown("notice.farm", n.farm))? {
                    Farm::Unspecified => return Err(unknown("notice.farm", n.farm)),
                    Farm::Equities => FarmKind::Equities,
                    Farm::Options => FarmKind::Options,
                    Farm::Forex => FarmKind::Forex,
                    Farm::Futures => FarmKind::Futures,
                },
                up: n.up,
            },
            Kind::ConnectivityLost => DataNotice::ConnectivityLost,
            Kind::ConnectivityRestored => DataNotice::ConnectivityRestored {
                data_lost: n.data_lost,
            },
            Kind::CompetingSession => DataNotice::CompetingSession,
        },
    )
}

pub fn details_to_pb(d: &ContractDetails) -> pb::ContractDetails {
    pb::ContractDetails {
        contract: Some(contract_to_pb(&d.contract)),
        long_name: d.long_name.clone(),
        market_name: d.market_name.clone(),
        min_tick: d.min_tick,
        valid_exchanges: d.valid_exchanges.clone(),
        order_types: d.order_types.clone(),
        time_zone: d.time_zone.clone(),
        trading_hours: d.trading_hours.clone(),
        liquid_hours: d.liquid_hours.clone(),
        under_con_id: d.under_con_id,
        under_symbol: d.under_symbol.clone(),
        industry: d.industry.clone(),
        category: d.category.clone(),
        subcategory: d.subcategory.clone(),
    }
}

pub fn details_from_pb(d: &pb::ContractDetails) -> Result<ContractDetails, WireError> {
    Ok(ContractDetails {
        contract: contract_from_pb(required(&d.contract, "details.contract")?)?,
        long_name: d.long_name.clone(),
        market_name: d.market_name.clone(),
        min_tick: d.min_tick,
        valid_exchanges: d.valid_exchanges.clone(),
        order_types: d.order_types.clone(),
        time_zone: d.time_zone.clone(),
        trading_hours: d.trading_hours.clone(),
        liquid_hours: d.liquid_hours.clone(),
        under_con_id: d.under_con_id,
        under_symbol: d.under_symbol.clone(),
        industry: d.industry.clone(),
        category: d.category.clone(),
        subcategory: d.subcategory.clone(),
    })
}

pub fn symbol_to_pb(m: &SymbolMatch) -> pb::SymbolMatch {
    pb::SymbolMatch {
        contract: Some(contract_to_pb(&m.contract)),
        derivative_sec_types: m.derivative_sec_types.clone(),
        description: m.description.clone(),
    }
}

pub fn symbol_from_pb(m: &pb::SymbolMatch) -> Result<SymbolMatch, WireError> {
    Ok(SymbolMatch {
        contract: contract_from_pb(required(&m.contract, "match.contract")?)?,
        derivative_sec_types: m.derivative_sec_types.clone(),
        description: m.description.clone(),
    })
}

pub fn chain_to_pb(c: &ChainParams) -> pb::ChainParams {
    pb::ChainParams {
        exchange: c.exchange.clone(),
        underlying_con_id: c.underlying_con_id,
        trading_class: c.trading_class.clone(),
        multiplier: c.multiplier.clone(),
        expirations: c.expirations.clone(),
        strikes: c.strikes.clone(),
    }
}

pub fn chain_from_pb(c: &pb::ChainParams) -> ChainParams {
    ChainParams {
        exchange: c.exchange.clone(),
        underlying_con_id: c.underlying_con_id,
        trading_class: c.trading_class.clone(),
        multiplier: c.multiplier.clone(),
        expirations: c.expirations.clone(),
        strikes: c.strikes.clone(),
    }
}

pub fn history_to_pb(ask: &HistoryAsk) -> pb::HistoryQuery {
    pb::HistoryQuery {
        contract: Some(contract_to_pb(&ask.contract)),
        bar_size: ask.size.ib_text().to_owned(),
        what_to_show: ask.what.ib_text().to_owned(),
        regular_hours: ask.regular_hours,
        start: ask.start,
        end: ask.end,
    }
}

pub fn what_from_pb(text: &str) -> Result<WhatToShow, WireError> {
    WhatToShow::parse(text).ok_or_else(|| WireError::UnknownText {
        field: "what_to_show",
        value: text.chars().take(32).collect(),
    })
}

pub fn history_from_pb(q: &pb::HistoryQuery) -> Result<HistoryAsk, WireError> {
    let contract = q.contract.as_ref().ok_or(WireError::Missing("contract"))?;
    Ok(HistoryAsk {
        contract: contract_from_pb(contract)?,
        size: BarSize::parse(&q.bar_size).ok_or_else(|| WireError::UnknownText {
            field: "bar_size",
            value: q.bar_size.chars().take(32).collect(),
        })?,
        what: what_from_pb(&q.what_to_show)?,
        regular_hours: q.regular_hours,
        start: q.start,
        end: q.end,
    })
}

pub fn head_to_pb(contract: &ContractSpec, what: WhatToShow, regular_hours: bool) -> pb::HeadQuery {
    pb::HeadQuery {
        contract: Some(contract_to_pb(contract)),
        what_to_show: what.ib_text().to_owned(),
        regular_hours,
    }
}

pub fn head_from_pb(q: &pb::HeadQuery) -> Result<(ContractSpec, WhatToShow, bool), WireError> {
    let contract = q.contract.as_ref().ok_or(WireError::Missing("contract"))?;
    Ok((
        contract_from_pb(contract)?,
        what_from_pb(&q.what_to_show)?,
        q.regular_hours,
    ))
}

pub fn bar_to_pb(b: &StoredBar) -> pb::Bar {
    pb::Bar {
        time: b.time,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
        wap: b.wap,
        count: b.count,
    }
}

pub fn bar_from_pb(b: &pb::Bar) -> StoredBar {
    StoredBar {
        time: b.time,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
        wap: b.wap,
        count: b.count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_bytes_are_errors() {
        for bytes in [&b"\xff\xff\xff\xff"[..], b"\x0a\xff", b"garbage on the bus"] {
            assert!(decode::<pb::FeedValue>(bytes).is_err(), "{bytes:?}");
        }
        // Decodable, but naming a status no node knows.
        let v = pb::FeedValue {
            status: 99,
            ..Default::default()
        };
        assert_eq!(value_events(&v), Err(unknown("status", 99)));
        let failed = pb::FeedValue {
            status: pb::feed_value::Status::Failed.into(),
            ..Default::default()
        };
        assert_eq!(value_events(&failed), Err(WireError::Missing("error")));
    }

    #[test]
    fn errors_and_contracts_survive_the_trip() {
        for e in [
            SourceError::LinkDown,
            SourceError::NotFound("x".into()),
            SourceError::NoPermission("y".into()),
            SourceError::LineLimit("z".into()),
            SourceError::Deadline(Duration::from_millis(1500)),
            SourceError::Ib {
                code: 322,
                message: "m".into(),
            },
        ] {
            assert_eq!(error_from_pb(&error_to_pb(&e)), Ok(e));
        }
        let c = ContractSpec {
            con_id: 7,
            symbol: "SPY".into(),
            sec_type: SecType::Option,
            strike: Some(500.0),
            right: Some(Right::Put),
            expiry: "20270115".into(),
            ..ContractSpec::default()
        };
        assert_eq!(contract_from_pb(&contract_to_pb(&c)), Ok(c));
    }

    #[test]
    fn a_value_folds_back_to_the_same_quote() {
        let mut q = Quote::empty(5, "AAPL", MarketDataType::Live);
        q.bid = Some(0.0);
        q.ask = Some(10.5);
        q.volume = Some(1000.0);
        q.last_trade_time = Some(1_700_000_000);
        q.market_data_type = Some(MarketDataType::Delayed);
        let v = quote_to_pb(3, &q, &OptionExtras::default());
        // A follower that had other values sees them replaced, cleared fields included.
        let mut mine = Quote::empty(5, "AAPL", MarketDataType::Live);
        mine.last = Some(99.0);
        let mut extras = OptionExtras {
            open_interest: Some(4.0),
            ..OptionExtras::default()
        };
        for t in value_ticks(&v).unwrap() {
            crate::fanout::tick::apply(&mut mine, &mut extras, &t);
        }
        mine.sequence = q.sequence;
        assert_eq!(mine, q);
        assert_eq!(extras, OptionExtras::default());
    }

    #[test]
    fn history_requests_round_trip_and_unknown_texts_are_refused() {
        use crate::bars::spec::{BarSize, WhatToShow};
        let ask = HistoryAsk {
            contract: ContractSpec {
                con_id: 265598,
                symbol: "AAPL".into(),
                sec_type: SecType::Stock,
                ..ContractSpec::default()
            },
            size: BarSize::parse("5 mins").unwrap(),
            what: WhatToShow::Midpoint,
            regular_hours: true,
            start: 100,
            end: 400,
        };
        let back = history_from_pb(&history_to_pb(&ask)).unwrap();
        assert_eq!(back.contract.con_id, 265598);
        assert_eq!(
            (back.size, back.what, back.regular_hours),
            (ask.size, ask.what, true)
        );
        assert_eq!((back.start, back.end), (100, 400));
        let mut bad = history_to_pb(&ask);
        bad.bar_size = "7 fortnights".into();
        assert!(matches!(
            history_from_pb(&bad),
            Err(WireError::UnknownText {
                field: "bar_size",
                ..
            })
        ));
        let mut bad = history_to_pb(&ask);
        bad.what_to_show = "x".repeat(10_000);
        match history_from_pb(&bad) {
            Err(WireError::UnknownText { value, .. }) => assert!(value.len() <= 32, "echo bounded"),
            other => panic!("{other:?}"),
        }
        bad.contract = None;
        assert!(matches!(
            history_from_pb(&bad),
            Err(WireError::Missing("contract"))
        ));
    }
}
