//! Contract and contract-details messages as a real gateway fills them.

use time::{Date, Duration, Weekday};

use super::catalog::Kind;
use super::universe::{Instrument, SecType, Universe, yyyymmdd};
use crate::greeks::OptionKind;
use crate::proto::tws;

const ORDER_TYPES: &str = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,CONDORDER,DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,PEGMID,POSTATSONLY,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF";
const FX_ORDER_TYPES: &str = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,CASHQTY,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,REL,RELPCTOFS,SCALE,SCALERST,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF";

/// The `Contract` sub-message for an instrument reported on `exchange`.
pub fn contract(inst: &Instrument, exchange: &str) -> tws::Contract {
    let mut c = tws::Contract {
        con_id: Some(inst.con_id),
        symbol: Some(inst.symbol.clone()),
        sec_type: Some(inst.sec_type.code().into()),
        exchange: Some(exchange.into()),
        primary_exch: (!inst.primary_exchange.is_empty()).then(|| inst.primary_exchange.clone()),
        currency: Some(inst.currency.clone()),
        local_symbol: Some(inst.local_symbol.clone()),
        trading_class: Some(inst.trading_class.clone()),
        ..Default::default()
    };
    if let Some(t) = &inst.option {
        let expiry = yyyymmdd(t.expiry);
        c.last_trade_date_or_contract_month = Some(expiry.clone());
        c.last_trade_date = Some(expiry);
        c.strike = Some(t.strike);
        c.right = Some(
            if t.right == OptionKind::Call {
                "C"
            } else {
                "P"
            }
            .into(),
        );
        c.multiplier = Some(t.multiplier);
    }
    c
}

/// Market rule ids, one per valid exchange.
fn market_rules(inst: &Instrument) -> String {
    let rule = match (inst.sec_type, inst.entry.kind) {
        (SecType::Option, Kind::Index) => "110",
        (SecType::Option, _) => "32",
        (SecType::Cash, _) => "239",
        (SecType::Index, _) => "109",
        _ if inst.currency == "CAD" => "1065",
        _ => "26",
    };
    vec![rule; inst.valid_exchanges.split(',').count()].join(",")
}

/// Session hours for the next week in IB's `YYYYMMDD:HHMM-YYYYMMDD:HHMM;…` form.
fn session_hours(today: Date, open: &str, close: &str, overnight: bool) -> String {
    (0..7)
        .filter_map(|d| today.checked_add(Duration::days(d)))
        .map(|day| {
            let d = yyyymmdd(day);
            if matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
                format!("{d}:CLOSED")
            } else if overnight {
                let prev = day
                    .previous_day()
                    .map(yyyymmdd)
                    .unwrap_or_else(|| d.clone());
                format!("{prev}:{open}-{d}:{close}")
            } else {
                format!("{d}:{open}-{d}:{close}")
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The `ContractDetails` sub-message.
pub fn details(universe: &Universe, inst: &Instrument) -> tws::ContractDetails {
    let today = universe.today();
    let fx = inst.sec_type == SecType::Cash;
    let (trading, liquid) = match inst.sec_type {
        SecType::Stock => (
            session_hours(today, "0400", "2000", false),
            session_hours(today, "0930", "1600", false),
        ),
        SecType::Cash => (
            session_hours(today, "1715", "1700", true),
            session_hours(today, "1715", "1700", true),
        ),
        _ => (
            session_hours(today, "0930", "1615", false),
            session_hours(today, "0930", "1615", false),
        ),
    };
    let mut d = tws::ContractDetails {
        market_name: Some(match inst.sec_type {
            SecType::Stock if inst.currency == "USD" => "NMS".into(),
            _ => inst.trading_class.clone(),
        }),
        min_tick: Some(if fx { "0.00005".into() } else { "0.01".into() }),
        order_types: Some(if fx { FX_ORDER_TYPES } else { ORDER_TYPES }.into()),
        valid_exchanges: Some(inst.valid_exchanges.into()),
        price_magnifier: Some(1),
        long_name: Some(inst.long_name.clone()),
        industry: Some(inst.entry.industry.into()),
        category: Some(inst.entry.category.into()),
        subcategory: Some(inst.entry.subcategory.into()),
        time_zone_id: Some(
            if inst.currency == "CAD" {
                "America/Toronto"
            } else {
                "US/Eastern"
            }
            .into(),
        ),
        trading_hours: Some(trading),
        liquid_hours: Some(liquid),
        agg_group: Some(1),
        market_rule_ids: Some(market_rules(inst)),
        min_size: Some(if fx { "0.01".into() } else { "1".into() }),
        size_increment: Some(if fx { "0.01".into() } else { "1".into() }),
        suggested_size_increment: Some(if inst.sec_type == SecType::Stock {
            "100".into()
        } else {
            "1".into()
        }),
        ..Default::default()
    };
    if inst.sec_type == SecType::Stock {
        d.stock_type = Some(if inst.is_etf() { "ETF" } else { "COMMON" }.into());
    }
    if let Some(t) = &inst.option {
        let under = universe.get(t.underlying);
        let expiry = yyyymmdd(t.expiry);
        d.under_con_id = Some(under.con_id);
        d.contract_month = expiry.get(..6).map(str::to_string);
        d.under_symbol = Some(under.symbol.clone());
        d.under_sec_type = Some(under.sec_type.code().into());
        d.real_expiration_date = Some(expiry);
        d.ev_multiplier = None;
        d.settlement_method = Some(
            if under.entry.kind == Kind::Index && t.monthly && inst.trading_class == "SPX" {
                "A".into()
            } else {
                "P".into()
            },
        );
    }
    d
}

/// A `ContractDescription` for symbol search.
pub fn description(universe: &Universe, inst: &Instrument) -> tws::ContractDescription {
    let optionable = !universe
        .chain(universe.by_con_id(inst.con_id).unwrap_or(usize::MAX))
        .is_empty();
    let derivatives: &[&str] = match (inst.sec_type, optionable) {
        (SecType::Index, _) => &["OPT", "FUT"],
        (SecType::Cash, _) => &["CFD"],
        (_, true) => &["CFD", "OPT", "IOPT", "WAR", "BAG"],
        (_, false) => &["CFD"],
    };
    tws::ContractDescription {
        contract: Some(tws::Contract {
            con_id: Some(inst.con_id),
            symbol: Some(inst.symbol.clone()),
            sec_type: Some(inst.sec_type.code().into()),
            primary_exch: Some(inst.primary_exchange.clone()),
            currency: Some(inst.currency.clone()),
            description: Some(inst.long_name.clone()),
            ..Default::default()
        }),
        derivative_sec_types: derivatives.iter().map(|s| s.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn hours_close_on_weekends() {
        let h = session_hours(date!(2026 - 11 - 27), "0930", "1600", false);
        let parts: Vec<_> = h.split(';').collect();
        assert_eq!(parts[0], "20261127:0930-20261127:1600");
        assert_eq!(parts[1], "20261128:CLOSED");
        assert_eq!(parts.len(), 7);
    }

    #[test]
    fn market_rules_match_exchange_count() {
        let u = Universe::build(date!(2026 - 11 - 24));
        let aapl = u.get(u.underlying_by_symbol("AAPL").unwrap());
        let rules = market_rules(aapl);
        assert_eq!(
            rules.split(',').count(),
            aapl.valid_exchanges.split(',').count()
        );
        let d = details(&u, aapl);
        assert_eq!(d.stock_type.as_deref(), Some("COMMON"));
        let spy = u.get(u.underlying_by_symbol("SPY").unwrap());
        assert_eq!(details(&u, spy).stock_type.as_deref(), Some("ETF"));
    }
}
