//! What the gateway sends, as `ibapi` hands it over: ticks (with IB's sentinels, NaN,
//! infinities, absurd sizes and odd strings), contract details, option chains and symbol
//! matches. The bytes script a sequence of such items for one option contract; the
//! conversions must not panic, and no NaN, infinity or sentinel may reach the proto
//! quote or Greeks served to clients.

use std::time::{Duration, SystemTime};

use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{Contract, ContractDescription, Currency, Exchange, OptionChain, Symbol};
use ibapi::market_data::MarketDataType;
use ibapi::market_data::realtime::{
    TickGeneric, TickPrice, TickPriceSize, TickSize, TickString, TickTypes,
};
use ibstream::api::market_data::convert::{
    chain_to_pb, details_to_pb, greeks_to_pb, quote_to_pb, symbol_match_to_pb,
};
use ibstream::fanout::greeks_calc::{GreeksParams, option_greeks};
use ibstream::fanout::ib_convert::{
    chain_from_ib, details_from_ib, symbol_match_from_ib, ticks_from_ib,
};
use ibstream::fanout::tick::apply;
use ibstream::fanout::{ContractSpec, FeedStatus, FeedView, OptionExtras, Quote, Right, SecType};
use ibstream::greeks::{OptionInputs, OptionKind, greeks, implied_volatility, price};
use ibstream::proto::ibstream::v1 as pb;

use super::input::Input;

/// Largest magnitude a served number may have; IB's "unset" markers are far above it.
const MAX_SERVED: f64 = 1e12;
/// Protobuf's Timestamp range: 0001-01-01 to 9999-12-31.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;
/// Items one input may script; enough to set every field several times.
const MAX_ITEMS: usize = 64;

/// Runs the script in `bytes`.
pub fn check(bytes: &[u8]) {
    let mut input = Input::new(bytes);
    let contract = option_contract(&mut input);
    let mut view = FeedView {
        quote: Quote::empty(
            contract.con_id,
            &contract.symbol,
            ibstream::market_data_type::MarketDataType::Live,
        ),
        extras: OptionExtras::default(),
        status: FeedStatus::Live,
        fallback: false,
        resumes: 0,
        last_gap: None,
        encoded: Default::default(),
    };
    let mut ticks = Vec::new();
    for _ in 0..MAX_ITEMS {
        if input.is_empty() {
            break;
        }
        match input.byte() % 10 {
            0 => contract_details(&mut input),
            1 => option_chain(&mut input, &contract),
            2 => symbol_match(&mut input),
            3 => black_scholes(&mut input),
            _ => {
                ticks_from_ib(tick_item(&mut input), &mut ticks);
                for tick in ticks.drain(..) {
                    apply(&mut view.quote, &mut view.extras, &tick);
                }
            }
        }
    }
    served_quote(&quote_to_pb(&view.quote));
    let underlying = input.opt_f64();
    let params = GreeksParams {
        // Within the ranges the configuration accepts.
        risk_free_rate: (input.byte() as f64 / 127.5) - 1.0,
        dividend_yield: input.byte() as f64 / 255.0,
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(input.i32().unsigned_abs()));
    if let Some(g) = option_greeks(&contract, &view, underlying, &params, now) {
        served_greeks(&greeks_to_pb(&g));
    }
    if let Some(model) = view.extras.model {
        served_greeks(&greeks_to_pb(&model));
    }
}

fn option_contract(input: &mut Input) -> ContractSpec {
    let expiry = match input.byte() % 4 {
        0 => "20300117".to_owned(),
        1 => "19991231".to_owned(),
        2 => String::new(),
        _ => input.string(),
    };
    ContractSpec {
        con_id: input.i64(),
        symbol: input.string(),
        sec_type: SecType::Option,
        expiry,
        strike: input.opt_f64(),
        right: match input.byte() % 3 {
            0 => Some(Right::Call),
            1 => Some(Right::Put),
            _ => None,
        },
        ..ContractSpec::default()
    }
}

fn tick_type(input: &mut Input) -> TickType {
    // Tick ids run from 0 to about 105; the rest map to TickType::Unknown.
    TickType::from(i32::from(input.byte() % 110))
}

fn tick_item(input: &mut Input) -> TickTypes {
    match input.byte() % 8 {
        0 => TickTypes::Price(TickPrice {
            tick_type: tick_type(input),
            price: input.f64(),
            ..TickPrice::default()
        }),
        1 => TickTypes::PriceSize(TickPriceSize {
            price_tick_type: tick_type(input),
            price: input.f64(),
            size_tick_type: tick_type(input),
            size: input.f64(),
            ..TickPriceSize::default()
        }),
        2 => TickTypes::Size(TickSize {
            tick_type: tick_type(input),
            size: input.f64(),
        }),
        3 => TickTypes::String(TickString {
            tick_type: tick_type(input),
            value: match input.byte() % 3 {
                0 => input.i64().to_string(),
                _ => input.string(),
            },
        }),
        4 => TickTypes::Generic(TickGeneric {
            tick_type: tick_type(input),
            value: input.f64(),
        }),
        5 => TickTypes::MarketDataType(match input.byte() % 5 {
            0 => MarketDataType::Unknown,
            1 => MarketDataType::Realtime,
            2 => MarketDataType::Frozen,
            3 => MarketDataType::Delayed,
            _ => MarketDataType::DelayedFrozen,
        }),
        6 => TickTypes::SnapshotEnd,
        _ => TickTypes::OptionComputation(ibapi::contracts::OptionComputation {
            field: if input.bool() {
                TickType::ModelOption
            } else {
                tick_type(input)
            },
            tick_attribute: None,
            implied_volatility: input.opt_f64(),
            delta: input.opt_f64(),
            option_price: input.opt_f64(),
            present_value_dividend: input.opt_f64(),
            gamma: input.opt_f64(),
            vega: input.opt_f64(),
            theta: input.opt_f64(),
            underlying_price: input.opt_f64(),
        }),
    }
}

fn ib_contract(input: &mut Input) -> Contract {
    Contract {
        contract_id: input.i32(),
        symbol: Symbol::new(input.string()),
        exchange: Exchange::new(input.string()),
        currency: Currency::new(input.string()),
        last_trade_date_or_contract_month: input.string(),
        strike: input.f64(),
        multiplier: input.string(),
        local_symbol: input.string(),
        trading_class: input.string(),
        description: input.string(),
        ..Contract::default()
    }
}

fn contract_details(input: &mut Input) {
    let details = ibapi::contracts::ContractDetails {
        contract: ib_contract(input),
        long_name: input.string(),
        min_tick: input.f64(),
        time_zone_id: input.string(),
        trading_hours: input.strings(4),
        under_contract_id: input.i32(),
        ..Default::default()
    };
    let pb = details_to_pb(&details_from_ib(&details));
    if let Some(strike) = pb.instrument.and_then(|i| i.strike) {
        assert!(strike.is_finite() && strike > 0.0, "served strike {strike}");
    }
}

fn option_chain(input: &mut Input, underlying: &ContractSpec) {
    let n = input.byte() % 16;
    let chain = OptionChain {
        underlying_contract_id: input.i32(),
        trading_class: input.string(),
        multiplier: input.string(),
        exchange: input.string(),
        expirations: input.strings(8),
        strikes: (0..n).map(|_| input.f64()).collect(),
    };
    let params = chain_from_ib(&chain);
    let pb = chain_to_pb(underlying, &[params]);
    for strike in pb
        .strikes
        .iter()
        .chain(pb.params.iter().flat_map(|p| &p.strikes))
    {
        assert!(
            strike.is_finite() && *strike > 0.0,
            "served strike {strike}"
        );
    }
    assert!(
        pb.strikes.windows(2).all(|w| w[0] < w[1]),
        "strikes sorted and distinct"
    );
}

fn symbol_match(input: &mut Input) {
    let description = ContractDescription {
        contract: ib_contract(input),
        derivative_security_types: input.strings(4),
    };
    symbol_match_to_pb(&symbol_match_from_ib(&description));
}

/// The pricing model on its own: whatever the inputs, an answer is a finite number.
fn black_scholes(input: &mut Input) {
    let inputs = OptionInputs {
        kind: if input.bool() {
            OptionKind::Call
        } else {
            OptionKind::Put
        },
        spot: input.f64(),
        strike: input.f64(),
        time: input.f64(),
        rate: input.f64(),
        dividend_yield: input.f64(),
    };
    let vol = input.f64();
    if let Some(p) = price(&inputs, vol) {
        assert!(p.is_finite(), "price {p} for {inputs:?} at {vol}");
    }
    if let Some(g) = greeks(&inputs, vol) {
        for v in [g.price, g.delta, g.gamma, g.vega, g.theta] {
            assert!(v.is_finite(), "Greeks {g:?} for {inputs:?} at {vol}");
        }
    }
    let target = input.f64();
    if let Some(iv) = implied_volatility(&inputs, target) {
        assert!(
            iv.is_finite() && iv > 0.0,
            "implied volatility {iv} for {inputs:?}"
        );
    }
}

fn served(name: &str, v: Option<f64>) {
    if let Some(v) = v {
        assert!(
            v.is_finite() && v.abs() < MAX_SERVED,
            "{name} = {v} reached a served message"
        );
    }
}

fn served_non_negative(name: &str, v: Option<f64>) {
    served(name, v);
    if let Some(v) = v {
        assert!(
            v >= 0.0,
            "{name} = {v} (IB's no-value marker) reached a quote"
        );
    }
}

fn served_quote(q: &pb::Quote) {
    let fields = [
        ("bid", q.bid),
        ("ask", q.ask),
        ("last", q.last),
        ("bid_size", q.bid_size),
        ("ask_size", q.ask_size),
        ("last_size", q.last_size),
        ("volume", q.volume),
        ("open", q.open),
        ("high", q.high),
        ("low", q.low),
        ("close", q.close),
    ];
    for (name, v) in fields {
        served_non_negative(name, v);
    }
    if let Some(t) = &q.last_trade_time {
        assert!(
            TIMESTAMP_SECONDS.contains(&t.seconds),
            "last_trade_time {} seconds is outside the Timestamp range",
            t.seconds
        );
    }
}

fn served_greeks(g: &pb::Greeks) {
    served_non_negative("implied_volatility", g.implied_volatility);
    served("delta", g.delta);
    served("gamma", g.gamma);
    served("vega", g.vega);
    served("theta", g.theta);
    served_non_negative("underlying_price", g.underlying_price);
    served_non_negative("option_price", g.option_price);
    if let Some(d) = g.delta {
        assert!((-1.0..=1.0).contains(&d), "delta {d}");
    }
    if g.source == pb::GreeksSource::IbModel as i32 {
        for (name, v) in [("gamma", g.gamma), ("vega", g.vega), ("theta", g.theta)] {
            assert_ne!(
                v,
                Some(-2.0),
                "{name} = -2 (IB's unset Greek) reached a served message"
            );
        }
    }
}
