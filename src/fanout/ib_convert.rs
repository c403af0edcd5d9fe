//! Conversions between `ibapi` types and the fan-out's domain types.

use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{Contract, Currency, Exchange, OptionRight, SecurityType, Symbol};
use ibapi::market_data::realtime::TickTypes;

use super::source::SourceError;
use super::tick::{OptionComputation, PriceField, SizeField, Tick};
use super::types::{ChainParams, ContractDetails, ContractSpec, Right, SecType, SymbolMatch};
use crate::ib::data_type;

pub fn sec_type_to_ib(t: SecType) -> SecurityType {
    match t {
        SecType::Stock => SecurityType::Stock,
        SecType::Option => SecurityType::Option,
        SecType::Index => SecurityType::Index,
        SecType::Future => SecurityType::Future,
        SecType::FutureOption => SecurityType::FuturesOption,
        SecType::Forex => SecurityType::ForexPair,
        SecType::Crypto => SecurityType::Crypto,
        SecType::Cfd => SecurityType::CFD,
        SecType::Bond => SecurityType::Bond,
    }
}

pub fn sec_type_from_ib(t: &SecurityType) -> SecType {
    match t {
        SecurityType::Option => SecType::Option,
        SecurityType::Index => SecType::Index,
        SecurityType::Future | SecurityType::ContinuousFuture => SecType::Future,
        SecurityType::FuturesOption => SecType::FutureOption,
        SecurityType::ForexPair => SecType::Forex,
        SecurityType::Crypto => SecType::Crypto,
        SecurityType::CFD => SecType::Cfd,
        SecurityType::Bond => SecType::Bond,
        _ => SecType::Stock,
    }
}

/// The `ibapi` contract for a request. A conId alone identifies a contract, but IB
/// still needs an exchange to route market data.
pub fn contract_to_ib(spec: &ContractSpec) -> Contract {
    let or_default = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_owned()
        } else {
            s.to_owned()
        }
    };
    Contract {
        contract_id: i32::try_from(spec.con_id).unwrap_or(0),
        symbol: Symbol::new(spec.symbol.clone()),
        security_type: sec_type_to_ib(spec.sec_type),
        last_trade_date_or_contract_month: spec.expiry.clone(),
        strike: spec.strike.unwrap_or(0.0),
        right: spec.right.map(|r| match r {
            Right::Call => OptionRight::Call,
            Right::Put => OptionRight::Put,
        }),
        multiplier: spec.multiplier.clone(),
        exchange: Exchange::new(or_default(&spec.exchange, "SMART")),
        currency: Currency::new(or_default(&spec.currency, "USD")),
        local_symbol: spec.local_symbol.clone(),
        primary_exchange: Exchange::new(spec.primary_exchange.clone()),
        trading_class: spec.trading_class.clone(),
        ..Contract::default()
    }
}

pub fn contract_from_ib(c: &Contract) -> ContractSpec {
    ContractSpec {
        con_id: i64::from(c.contract_id),
        symbol: c.symbol.to_string(),
        sec_type: sec_type_from_ib(&c.security_type),
        exchange: c.exchange.to_string(),
        primary_exchange: c.primary_exchange.to_string(),
        currency: c.currency.to_string(),
        expiry: c.last_trade_date_or_contract_month.clone(),
        strike: (c.strike > 0.0 && c.strike.is_finite()).then_some(c.strike),
        right: c.right.map(|r| match r {
            OptionRight::Call => Right::Call,
            OptionRight::Put => Right::Put,
        }),
        multiplier: c.multiplier.clone(),
        trading_class: c.trading_class.clone(),
        local_symbol: c.local_symbol.clone(),
    }
}

pub fn details_from_ib(d: &ibapi::contracts::ContractDetails) -> ContractDetails {
    ContractDetails {
        contract: contract_from_ib(&d.contract),
        long_name: d.long_name.clone(),
        market_name: d.market_name.clone(),
        min_tick: d.min_tick,
        valid_exchanges: d.valid_exchanges.clone(),
        order_types: d.order_types.clone(),
        time_zone: d.time_zone_id.clone(),
        trading_hours: d.trading_hours.clone(),
        liquid_hours: d.liquid_hours.clone(),
        under_con_id: i64::from(d.under_contract_id),
        under_symbol: d.under_symbol.clone(),
        industry: d.industry.clone(),
        category: d.category.clone(),
        subcategory: d.subcategory.clone(),
    }
}

pub fn symbol_match_from_ib(d: &ibapi::contracts::ContractDescription) -> SymbolMatch {
    SymbolMatch {
        contract: contract_from_ib(&d.contract),
        derivative_sec_types: d.derivative_security_types.clone(),
        description: d.contract.description.clone(),
    }
}

pub fn chain_from_ib(c: &ibapi::contracts::OptionChain) -> ChainParams {
    let mut strikes = c.strikes.clone();
    strikes.retain(|s| s.is_finite() && *s > 0.0);
    strikes.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut expirations = c.expirations.clone();
    expirations.sort();
    ChainParams {
        exchange: c.exchange.clone(),
        underlying_con_id: i64::from(c.underlying_contract_id),
        trading_class: c.trading_class.clone(),
        multiplier: c.multiplier.clone(),
        expirations,
        strikes,
    }
}

fn price_field(t: TickType) -> Option<PriceField> {
    Some(match t {
        TickType::Bid | TickType::DelayedBid => PriceField::Bid,
        TickType::Ask | TickType::DelayedAsk => PriceField::Ask,
        TickType::Last | TickType::DelayedLast => PriceField::Last,
        TickType::High | TickType::DelayedHigh => PriceField::High,
        TickType::Low | TickType::DelayedLow => PriceField::Low,
        TickType::Close | TickType::DelayedClose => PriceField::Close,
        TickType::Open | TickType::DelayedOpen => PriceField::Open,
        _ => return None,
    })
}

fn size_tick(t: TickType, v: f64) -> Option<Tick> {
    Some(match t {
        TickType::BidSize | TickType::DelayedBidSize => Tick::Size(SizeField::Bid, v),
        TickType::AskSize | TickType::DelayedAskSize => Tick::Size(SizeField::Ask, v),
        TickType::LastSize | TickType::DelayedLastSize => Tick::Size(SizeField::Last, v),
        TickType::Volume | TickType::DelayedVolume => Tick::Size(SizeField::Volume, v),
        TickType::OpenInterest
        | TickType::OptionCallOpenInterest
        | TickType::OptionPutOpenInterest => Tick::OpenInterest(v),
        TickType::OptionCallVolume | TickType::OptionPutVolume => Tick::OptionVolume(v),
        _ => return None,
    })
}

/// The domain ticks one `ibapi` item carries (a price with its size gives two).
pub fn ticks_from_ib(item: TickTypes, out: &mut Vec<Tick>) {
    match item {
        TickTypes::Price(p) => {
            if let Some(f) = price_field(p.tick_type) {
                out.push(Tick::Price(f, p.price));
            }
        }
        TickTypes::PriceSize(p) => {
            if let Some(f) = price_field(p.price_tick_type) {
                out.push(Tick::Price(f, p.price));
            }
            out.extend(size_tick(p.size_tick_type, p.size));
        }
        TickTypes::Size(s) => out.extend(size_tick(s.tick_type, s.size)),
        TickTypes::String(s) => {
            if matches!(
                s.tick_type,
                TickType::LastTimestamp | TickType::DelayedLastTimestamp
            ) && let Ok(t) = s.value.trim().parse::<i64>()
            {
                out.push(Tick::LastTradeTime(t));
            }
        }
        TickTypes::Generic(g) => {
            if g.tick_type == TickType::OptionImpliedVol {
                out.push(Tick::ImpliedVolatility(g.value));
            }
        }
        TickTypes::OptionComputation(c) => {
            if matches!(
                c.field,
                TickType::ModelOption | TickType::DelayedModelOption
            ) {
                out.push(Tick::OptionModel(OptionComputation {
                    implied_volatility: c.implied_volatility,
                    delta: c.delta,
                    gamma: c.gamma,
                    vega: c.vega,
                    theta: c.theta,
                    underlying_price: c.underlying_price,
                    option_price: c.option_price,
                }));
            }
        }
        TickTypes::MarketDataType(t) => out.extend(data_type::from_ibapi(t).map(Tick::DataType)),
        TickTypes::SnapshotEnd | TickTypes::RequestParameters(_) => {}
    }
}

/// Classifies an `ibapi` error ending a request.
pub fn error_from_ib(e: &ibapi::Error) -> SourceError {
    match e {
        ibapi::Error::Notice(n) => SourceError::from_ib(n.code, n.message.clone()),
        ibapi::Error::ConnectionReset
        | ibapi::Error::ConnectionFailed
        | ibapi::Error::Cancelled => SourceError::LinkDown,
        e if e.is_connection_lost() => SourceError::LinkDown,
        other => SourceError::Ib {
            code: -1,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibapi::market_data::realtime::{TickPriceSize, TickSize};

    #[test]
    fn delayed_and_live_ticks_fill_the_same_fields() {
        let mut out = Vec::new();
        ticks_from_ib(
            TickTypes::PriceSize(TickPriceSize {
                price_tick_type: TickType::DelayedBid,
                price: 10.0,
                size_tick_type: TickType::DelayedBidSize,
                size: 3.0,
                ..Default::default()
            }),
            &mut out,
        );
        ticks_from_ib(
            TickTypes::Size(TickSize {
                tick_type: TickType::OptionCallOpenInterest,
                size: 42.0,
            }),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                Tick::Price(PriceField::Bid, 10.0),
                Tick::Size(SizeField::Bid, 3.0),
                Tick::OpenInterest(42.0)
            ]
        );
    }

    #[test]
    fn contracts_round_trip() {
        let spec = ContractSpec {
            con_id: 42,
            symbol: "SPY".into(),
            sec_type: SecType::Option,
            exchange: "SMART".into(),
            currency: "USD".into(),
            expiry: "20260116".into(),
            strike: Some(500.0),
            right: Some(Right::Put),
            multiplier: "100".into(),
            trading_class: "SPY".into(),
            ..ContractSpec::default()
        };
        assert_eq!(contract_from_ib(&contract_to_ib(&spec)), spec);
    }

    #[test]
    fn notices_classify_by_code() {
        let notice = |code| {
            ibapi::Error::Notice(ibapi::Notice {
                request_id: Some(1),
                code,
                message: "m".into(),
                error_time: None,
                advanced_order_reject_json: String::new(),
            })
        };
        assert!(matches!(
            error_from_ib(&notice(200)),
            SourceError::NotFound(_)
        ));
        assert!(matches!(
            error_from_ib(&notice(354)),
            SourceError::NoPermission(_)
        ));
        assert!(matches!(
            error_from_ib(&notice(101)),
            SourceError::LineLimit(_)
        ));
        assert!(matches!(
            error_from_ib(&ibapi::Error::ConnectionReset),
            SourceError::LinkDown
        ));
    }
}
