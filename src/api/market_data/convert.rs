//! Conversions between the public `ibstream.v1` market-data messages and the fan-out's
//! domain types, with the validation of request fields (errors name the field).

use std::time::{Duration, SystemTime};

use super::MarketDataSettings;
use crate::api::convert::market_data_type;
use crate::bars::spec::WhatToShow;
use crate::bars::{BarAsk, BarsError};
use crate::fanout::{
    ChainParams, ContractDetails, ContractSpec, DataPolicy, FanoutError, Greeks, GreeksSource,
    LineUsage, Quote, Right, SecType, SubscriptionInfo, SymbolMatch,
};
use crate::proto::ibstream::v1 as pb;
use crate::store::StoredBar;

/// Most characters of a symbol (IB's longest are well under this).
pub const MAX_SYMBOL_CHARS: usize = 32;
/// Most characters of an exchange, primary exchange or trading class: IB's codes are
/// short words (`SMART`, `IDEALPRO`, `SPXW`).
pub const MAX_CODE_CHARS: usize = 32;
/// Most characters of a multiplier (a number such as `100`).
pub const MAX_MULTIPLIER_CHARS: usize = 16;
/// Most characters of a local symbol (an OCC option symbol has 21).
pub const MAX_LOCAL_SYMBOL_CHARS: usize = 64;
/// Most characters of a `SearchSymbols` pattern.
pub const MAX_PATTERN_CHARS: usize = 64;

/// Reads a text field that goes to IB: trimmed, at most `max` printable ASCII characters
/// (spaces inside allowed). Every client string bound for the gateway passes here: an
/// oversized or control-character value would make a frame the gateway refuses, and it
/// answers by closing the one session every client shares.
pub fn ib_text(field: &str, value: &str, max: usize) -> Result<String, FanoutError> {
    let value = value.trim();
    if value.len() > max || !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(FanoutError::invalid(
            field,
            format!("must be at most {max} printable ASCII characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Reads a requested instrument; `field` is its path in the request (e.g.
/// `instruments[2]`), used to name invalid fields.
pub fn instrument_to_spec(i: &pb::Instrument, field: &str) -> Result<ContractSpec, FanoutError> {
    let invalid =
        |name: &str, reason: &str| FanoutError::invalid(format!("{field}.{name}"), reason);
    let text =
        |name: &str, value: &str, max: usize| ib_text(&format!("{field}.{name}"), value, max);
    let upper = |name: &str, value: &str, max: usize| {
        text(name, value, max).map(|v| v.to_ascii_uppercase())
    };
    if i.con_id < 0 {
        return Err(invalid("con_id", "must be positive"));
    }
    let sec_type =
        sec_type_from_pb(i.sec_type).ok_or_else(|| invalid("sec_type", "unknown security type"))?;
    let right = match pb::OptionRight::try_from(i.right) {
        Ok(pb::OptionRight::Unspecified) => None,
        Ok(pb::OptionRight::Call) => Some(Right::Call),
        Ok(pb::OptionRight::Put) => Some(Right::Put),
        Err(_) => return Err(invalid("right", "unknown option right")),
    };
    let symbol = upper("symbol", &i.symbol, MAX_SYMBOL_CHARS)?;
    if i.con_id == 0 && symbol.is_empty() {
        return Err(invalid("symbol", "required unless con_id is set"));
    }
    if let Some(strike) = i.strike
        && !(strike.is_finite() && strike > 0.0)
    {
        return Err(invalid("strike", "must be a positive number"));
    }
    if !i.expiry.is_empty() && !valid_expiry(&i.expiry) {
        return Err(invalid(
            "expiry",
            "must be YYYYMMDD (or YYYYMM for futures)",
        ));
    }
    let derivative = matches!(sec_type, SecType::Option | SecType::FutureOption);
    if derivative && i.con_id == 0 {
        if i.expiry.is_empty() {
            return Err(invalid(
                "expiry",
                "required for options unless con_id is set",
            ));
        }
        if i.strike.is_none() {
            return Err(invalid(
                "strike",
                "required for options unless con_id is set",
            ));
        }
        if right.is_none() {
            return Err(invalid(
                "right",
                "required for options unless con_id is set",
            ));
        }
    }
    if !derivative && (i.strike.is_some() || right.is_some()) && i.con_id == 0 {
        let name = if i.strike.is_some() {
            "strike"
        } else {
            "right"
        };
        return Err(invalid(name, "only options have a strike and a right"));
    }
    if sec_type == SecType::Forex && i.con_id == 0 && symbol.len() != 3 {
        return Err(invalid(
            "symbol",
            "forex pairs take the base currency as symbol and the quote currency as currency (EUR + USD)",
        ));
    }
    let exchange = match upper("exchange", &i.exchange, MAX_CODE_CHARS)? {
        e if e.is_empty() && sec_type == SecType::Forex => "IDEALPRO".to_owned(),
        e if e.is_empty() => "SMART".to_owned(),
        e => e,
    };
    let currency = match i.currency.trim().to_ascii_uppercase() {
        c if c.is_empty() => "USD".to_owned(),
        c if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) => c,
        _ => return Err(invalid("currency", "must be a three-letter currency code")),
    };
    // Not sent to IB (the resolved contract's own is used), but bounded like the rest.
    text("local_symbol", &i.local_symbol, MAX_LOCAL_SYMBOL_CHARS)?;
    Ok(ContractSpec {
        con_id: i.con_id,
        symbol,
        sec_type,
        exchange,
        primary_exchange: upper("primary_exchange", &i.primary_exchange, MAX_CODE_CHARS)?,
        currency,
        expiry: i.expiry.clone(),
        strike: i.strike,
        right,
        multiplier: text("multiplier", &i.multiplier, MAX_MULTIPLIER_CHARS)?,
        trading_class: upper("trading_class", &i.trading_class, MAX_CODE_CHARS)?,
        local_symbol: String::new(),
    })
}

fn valid_expiry(s: &str) -> bool {
    let digits = s.chars().all(|c| c.is_ascii_digit());
    let month_ok = |m: &str| m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    match s.len() {
        8 => {
            digits
                && month_ok(&s[4..6])
                && s[6..8].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
        }
        6 => digits && month_ok(&s[4..6]),
        _ => false,
    }
}

fn sec_type_from_pb(v: i32) -> Option<SecType> {
    Some(match pb::SecurityType::try_from(v).ok()? {
        pb::SecurityType::Unspecified | pb::SecurityType::Stock => SecType::Stock,
        pb::SecurityType::Option => SecType::Option,
        pb::SecurityType::Index => SecType::Index,
        pb::SecurityType::Future => SecType::Future,
        pb::SecurityType::Forex => SecType::Forex,
        pb::SecurityType::FutureOption => SecType::FutureOption,
        pb::SecurityType::Crypto => SecType::Crypto,
        pb::SecurityType::Cfd => SecType::Cfd,
        pb::SecurityType::Bond => SecType::Bond,
    })
}

fn sec_type_to_pb(t: SecType) -> pb::SecurityType {
    match t {
        SecType::Stock => pb::SecurityType::Stock,
        SecType::Option => pb::SecurityType::Option,
        SecType::Index => pb::SecurityType::Index,
        SecType::Future => pb::SecurityType::Future,
        SecType::FutureOption => pb::SecurityType::FutureOption,
        SecType::Forex => pb::SecurityType::Forex,
        SecType::Crypto => pb::SecurityType::Crypto,
        SecType::Cfd => pb::SecurityType::Cfd,
        SecType::Bond => pb::SecurityType::Bond,
    }
}

pub fn data_policy_from_pb(v: i32) -> Result<DataPolicy, FanoutError> {
    match pb::DataPolicy::try_from(v) {
        Ok(pb::DataPolicy::Unspecified) => Ok(DataPolicy::ProfileDefault),
        Ok(pb::DataPolicy::LiveOnly) => Ok(DataPolicy::LiveOnly),
        Ok(pb::DataPolicy::LiveOrDelayed) => Ok(DataPolicy::LiveOrDelayed),
        Err(_) => Err(FanoutError::invalid("data_policy", "unknown data policy")),
    }
}

pub fn spec_to_pb(c: &ContractSpec) -> pb::Instrument {
    pb::Instrument {
        symbol: c.symbol.clone(),
        sec_type: sec_type_to_pb(c.sec_type) as i32,
        exchange: c.exchange.clone(),
        currency: c.currency.clone(),
        con_id: c.con_id,
        expiry: c.expiry.clone(),
        strike: c.strike,
        right: match c.right {
            None => pb::OptionRight::Unspecified,
            Some(Right::Call) => pb::OptionRight::Call,
            Some(Right::Put) => pb::OptionRight::Put,
        } as i32,
        multiplier: c.multiplier.clone(),
        trading_class: c.trading_class.clone(),
        primary_exchange: c.primary_exchange.clone(),
        local_symbol: c.local_symbol.clone(),
    }
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub fn quote_to_pb(q: &Quote) -> pb::Quote {
    pb::Quote {
        con_id: q.con_id,
        symbol: q.symbol.clone(),
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
        last_trade_time: q.last_trade_time.map(|s| prost_types::Timestamp {
            seconds: s,
            nanos: 0,
        }),
        market_data_type: q
            .market_data_type
            .map_or(pb::MarketDataType::Unspecified, market_data_type)
            as i32,
        requested_market_data_type: market_data_type(q.requested_type) as i32,
        sequence: q.sequence,
        received_at: (q.received_at > SystemTime::UNIX_EPOCH).then(|| timestamp(q.received_at)),
        stale: q.stale,
    }
}

pub fn greeks_to_pb(g: &Greeks) -> pb::Greeks {
    pb::Greeks {
        implied_volatility: g.implied_volatility,
        delta: g.delta,
        gamma: g.gamma,
        vega: g.vega,
        theta: g.theta,
        underlying_price: g.underlying_price,
        option_price: g.option_price,
        source: match g.source {
            GreeksSource::IbModel => pb::GreeksSource::IbModel,
            GreeksSource::Computed => pb::GreeksSource::Computed,
        } as i32,
    }
}

/// Builds `$target` from `$d` with the contract-details fields that both types name
/// alike copied across, so both directions of the conversion share one field list;
/// the caller gives the fields that differ.
macro_rules! details_with_common_fields {
    ($($target:ident)::+, $d:ident, { $($field:ident: $value:expr),* $(,)? }) => {
        $($target)::+ {
            $($field: $value,)*
            long_name: $d.long_name.clone(),
            market_name: $d.market_name.clone(),
            min_tick: $d.min_tick,
            valid_exchanges: $d.valid_exchanges.clone(),
            order_types: $d.order_types.clone(),
            time_zone: $d.time_zone.clone(),
            trading_hours: $d.trading_hours.clone(),
            liquid_hours: $d.liquid_hours.clone(),
            industry: $d.industry.clone(),
            category: $d.category.clone(),
            subcategory: $d.subcategory.clone(),
        }
    };
}

pub fn details_to_pb(d: &ContractDetails) -> pb::ContractDetails {
    details_with_common_fields!(pb::ContractDetails, d, {
        instrument: Some(spec_to_pb(&d.contract)),
        underlying_con_id: d.under_con_id,
        underlying_symbol: d.under_symbol.clone(),
    })
}

/// Reads contract details back from their stored form (the store's contract cache).
pub fn details_from_pb(d: &pb::ContractDetails) -> Option<ContractDetails> {
    let instrument = d.instrument.as_ref()?;
    let mut contract = instrument_to_spec(instrument, "instrument").ok()?;
    contract.local_symbol = instrument.local_symbol.clone();
    Some(details_with_common_fields!(ContractDetails, d, {
        contract: contract,
        under_con_id: d.underlying_con_id,
        under_symbol: d.underlying_symbol.clone(),
    }))
}

pub fn symbol_match_to_pb(m: &SymbolMatch) -> pb::SymbolMatch {
    pb::SymbolMatch {
        instrument: Some(spec_to_pb(&m.contract)),
        derivative_sec_types: m.derivative_sec_types.clone(),
        description: m.description.clone(),
    }
}

/// Merges per-exchange chain parameters into one answer.
pub fn chain_to_pb(underlying: &ContractSpec, params: &[ChainParams]) -> pb::OptionChain {
    let mut expirations: Vec<String> = params.iter().flat_map(|p| p.expirations.clone()).collect();
    expirations.sort();
    expirations.dedup();
    let mut strikes: Vec<f64> = params.iter().flat_map(|p| p.strikes.clone()).collect();
    strikes.sort_by(f64::total_cmp);
    strikes.dedup();
    let mut classes: Vec<String> = params.iter().map(|p| p.trading_class.clone()).collect();
    classes.sort();
    classes.dedup();
    let mut exchanges: Vec<String> = params.iter().map(|p| p.exchange.clone()).collect();
    exchanges.sort();
    exchanges.dedup();
    pb::OptionChain {
        underlying: Some(spec_to_pb(underlying)),
        expirations,
        strikes,
        trading_classes: classes,
        exchanges,
        multiplier: params
            .first()
            .map(|p| p.multiplier.clone())
            .unwrap_or_default(),
        params: params
            .iter()
            .map(|p| pb::OptionChainParams {
                exchange: p.exchange.clone(),
                trading_class: p.trading_class.clone(),
                multiplier: p.multiplier.clone(),
                expirations: p.expirations.clone(),
                strikes: p.strikes.clone(),
            })
            .collect(),
    }
}

/// A count on the wire, saturating.
fn count(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl From<&SubscriptionInfo> for pb::Subscription {
    fn from(s: &SubscriptionInfo) -> pb::Subscription {
        let quote = &s.view.quote;
        pb::Subscription {
            instrument: Some(spec_to_pb(&s.contract)),
            stream_count: count(s.readers),
            lingering: s.lingering,
            stale: quote.stale,
            market_data_type: quote
                .market_data_type
                .map_or(pb::MarketDataType::Unspecified, market_data_type)
                as i32,
            sequence: quote.sequence,
        }
    }
}

/// The limits `ListSubscriptions` reports: lines, the settings in force, open streams.
pub fn limits_to_pb(
    usage: LineUsage,
    settings: &MarketDataSettings,
    streams_open: i64,
) -> pb::Limits {
    pb::Limits {
        lines_in_use: count(usage.in_use),
        line_budget: count(usage.budget),
        message_rate: settings.message_rate,
        max_streams_per_key: count(settings.max_streams_per_key),
        max_instruments_per_request: count(settings.max_instruments_per_request),
        streams_open: u32::try_from(streams_open.max(0)).unwrap_or(u32::MAX),
    }
}

/// A bar request's fields, checked only for shape (the service checks the rest).
pub fn bar_ask(req: &pb::GetHistoricalBarsRequest) -> Result<BarAsk, BarsError> {
    let seconds = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.seconds);
    let what = what_to_show_from_pb(req.what_to_show)?;
    Ok(BarAsk {
        bar_size: ib_text("bar_size", &req.bar_size, 16)?,
        what_to_show: what.ib_text().to_owned(),
        duration: ib_text("duration", &req.duration, 16)?,
        start: seconds(&req.start),
        end: seconds(&req.end),
        regular_hours: req.regular_hours,
    })
}

/// The data type of a wire `WhatToShow` (unspecified: trades).
pub fn what_to_show_from_pb(value: i32) -> Result<WhatToShow, FanoutError> {
    use pb::WhatToShow as W;
    Ok(match W::try_from(value) {
        Ok(W::Unspecified | W::Trades) => WhatToShow::Trades,
        Ok(W::Midpoint) => WhatToShow::Midpoint,
        Ok(W::Bid) => WhatToShow::Bid,
        Ok(W::Ask) => WhatToShow::Ask,
        Ok(W::BidAsk) => WhatToShow::BidAsk,
        Ok(W::AdjustedLast) => WhatToShow::AdjustedLast,
        Ok(W::HistoricalVolatility) => WhatToShow::HistoricalVolatility,
        Ok(W::ImpliedVolatility) => WhatToShow::ImpliedVolatility,
        Err(_) => {
            return Err(FanoutError::invalid(
                "what_to_show",
                format!("unknown value {value}"),
            ));
        }
    })
}

pub fn bar_to_pb(b: &StoredBar) -> pb::Bar {
    pb::Bar {
        time: Some(prost_types::Timestamp {
            seconds: b.time,
            nanos: 0,
        }),
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

    fn option(strike: Option<f64>) -> pb::Instrument {
        pb::Instrument {
            symbol: "spy".into(),
            sec_type: pb::SecurityType::Option as i32,
            expiry: "20261218".into(),
            strike,
            right: pb::OptionRight::Call as i32,
            ..Default::default()
        }
    }

    #[test]
    fn invalid_fields_are_named_with_their_path() {
        let err = instrument_to_spec(&option(Some(-5.0)), "instruments[2]").unwrap_err();
        assert_eq!(
            err,
            FanoutError::invalid("instruments[2].strike", "must be a positive number")
        );
        let err = instrument_to_spec(&option(None), "instruments[0]").unwrap_err();
        assert!(
            matches!(err, FanoutError::InvalidArgument { field, .. } if field == "instruments[0].strike")
        );
        let mut bad = option(Some(1.0));
        bad.expiry = "2026-12-18".into();
        let err = instrument_to_spec(&bad, "underlying").unwrap_err();
        assert!(
            matches!(err, FanoutError::InvalidArgument { field, .. } if field == "underlying.expiry")
        );
        let stock = pb::Instrument::default();
        let err = instrument_to_spec(&stock, "instruments[1]").unwrap_err();
        assert!(
            matches!(err, FanoutError::InvalidArgument { field, .. } if field == "instruments[1].symbol")
        );
    }

    #[test]
    fn every_string_bound_for_ib_is_bounded_and_printable() {
        let long = "X".repeat(70_000);
        type Set = fn(&mut pb::Instrument, String);
        let fields: [(&str, Set); 6] = [
            ("symbol", |i, v| i.symbol = v),
            ("exchange", |i, v| i.exchange = v),
            ("primary_exchange", |i, v| i.primary_exchange = v),
            ("trading_class", |i, v| i.trading_class = v),
            ("multiplier", |i, v| i.multiplier = v),
            ("local_symbol", |i, v| i.local_symbol = v),
        ];
        for (name, set) in fields {
            for value in [long.clone(), "A\0B".to_owned(), "A\nB".to_owned()] {
                let mut bad = option(Some(500.0));
                bad.con_id = 12;
                set(&mut bad, value);
                let err = instrument_to_spec(&bad, "instruments[0]").unwrap_err();
                assert!(
                    matches!(&err, FanoutError::InvalidArgument { field, .. } if field == &format!("instruments[0].{name}")),
                    "{name}: {err:?}"
                );
            }
        }
        let mut fine = option(Some(500.0));
        fine.exchange = " cboe ".into();
        fine.trading_class = "SPY".into();
        let spec = instrument_to_spec(&fine, "i").unwrap();
        assert_eq!(
            (spec.exchange.as_str(), spec.trading_class.as_str()),
            ("CBOE", "SPY")
        );
    }

    #[test]
    fn defaults_fill_exchange_and_currency() {
        let spec = instrument_to_spec(&option(Some(500.0)), "i").unwrap();
        assert_eq!(
            (
                spec.symbol.as_str(),
                spec.exchange.as_str(),
                spec.currency.as_str()
            ),
            ("SPY", "SMART", "USD")
        );
        assert_eq!(spec.right, Some(Right::Call));
    }

    #[test]
    fn absent_values_stay_absent() {
        let q = Quote::empty(1, "A", crate::market_data_type::MarketDataType::Live);
        let p = quote_to_pb(&q);
        assert_eq!(
            (p.bid, p.ask, p.last, p.received_at),
            (None, None, None, None)
        );
        assert_eq!(p.market_data_type, pb::MarketDataType::Unspecified as i32);
    }
}
