//! Option market data: computations consistent with Black-Scholes on the simulator's prices.

use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{OptionComputation, OptionRight};
use ibapi::market_data::realtime::TickTypes;
use ibapi::prelude::*;
use ibstream::greeks::{self, OptionInputs, OptionKind};
use ibstream::sim::model::{RISK_FREE_RATE, time_to_expiry};

use crate::common::*;

fn expiry_date(yyyymmdd: &str) -> time::Date {
    let n: u32 = yyyymmdd.parse().unwrap();
    let month = time::Month::try_from((n / 100 % 100) as u8).unwrap();
    time::Date::from_calendar_date((n / 10_000) as i32, month, (n % 100) as u8).unwrap()
}

fn inputs(c: &OptionComputation, kind: OptionKind, strike: f64, t: f64) -> OptionInputs {
    let spot = c.underlying_price.unwrap();
    // pvDividend = S·(1 − e^(−qT)) gives the yield back.
    let q = -(1.0 - c.present_value_dividend.unwrap() / spot).ln() / t;
    OptionInputs {
        kind,
        spot,
        strike,
        time: t,
        rate: RISK_FREE_RATE,
        dividend_yield: q,
    }
}

#[tokio::test]
async fn option_computations_match_black_scholes() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut chain = client
        .option_chain("AAPL", SecurityType::Stock, 265598)
        .subscribe()
        .await
        .unwrap();
    let chain = chain.collect_to_end_within(WAIT).await.unwrap();
    let expiry = chain[0].expirations[1].clone();
    let spot = sim.control().spot("AAPL").unwrap();
    let listed = client
        .contract_details(&Contract::option("AAPL", &expiry, 0.0, OptionRight::Call))
        .await
        .unwrap();
    let strike = listed
        .iter()
        .map(|d| d.contract.strike)
        .min_by(|a, b| (a - spot).abs().total_cmp(&(b - spot).abs()))
        .unwrap();
    let contract = Contract::option("AAPL", &expiry, strike, OptionRight::Call);

    let mut sub = client
        .market_data(&contract)
        .generic_ticks(&["100", "101", "104", "106"])
        .subscribe()
        .await
        .unwrap();
    let ticks = ticks_until(&mut sub, |seen| {
        let has = |tt: TickType| {
            seen.iter()
                .any(|t| matches!(t, TickTypes::OptionComputation(c) if c.field == tt))
        };
        let generic = |tt: TickType| {
            seen.iter()
                .any(|t| matches!(t, TickTypes::Generic(g) if g.tick_type == tt))
        };
        let size = |tt: TickType| {
            seen.iter()
                .any(|t| matches!(t, TickTypes::Size(s) if s.tick_type == tt))
        };
        has(TickType::ModelOption)
            && has(TickType::BidOption)
            && has(TickType::AskOption)
            && generic(TickType::OptionHistoricalVol)
            && generic(TickType::OptionImpliedVol)
            && size(TickType::OptionCallOpenInterest)
            && size(TickType::OptionCallVolume)
    })
    .await;

    let t = time_to_expiry(expiry_date(&expiry), time::OffsetDateTime::now_utc());
    for tick in &ticks {
        let TickTypes::OptionComputation(c) = tick else {
            continue;
        };
        let inp = inputs(c, OptionKind::Call, strike, t);
        let price = c.option_price.unwrap();
        let Some(iv) = c.implied_volatility else {
            // A quote outside the no-arbitrage bounds carries no IV and no Greeks.
            assert!(greeks::implied_volatility(&inp, price).is_none());
            continue;
        };
        let g = greeks::greeks(&inp, iv).unwrap();
        assert!(
            (g.price - price).abs() < 1e-4 * price.max(1.0),
            "{:?}: BS price {} vs {price}",
            c.field,
            g.price
        );
        assert!(
            (g.delta - c.delta.unwrap()).abs() < 1e-4,
            "{:?} delta",
            c.field
        );
        assert!(
            (g.gamma - c.gamma.unwrap()).abs() < 1e-5,
            "{:?} gamma",
            c.field
        );
        assert!(
            (g.vega - c.vega.unwrap()).abs() < 1e-4,
            "{:?} vega",
            c.field
        );
        assert!(
            (g.theta - c.theta.unwrap()).abs() < 1e-4,
            "{:?} theta",
            c.field
        );
        assert!(c.delta.unwrap() > 0.0 && c.delta.unwrap() < 1.0);
        assert!((c.underlying_price.unwrap() / spot - 1.0).abs() < 0.05);
    }
    // The bid and ask bracket the model, and the quoted prices are the option's ticks.
    let comp = |tt: TickType| {
        ticks.iter().rev().find_map(|t| match t {
            TickTypes::OptionComputation(c) if c.field == tt => Some(c.clone()),
            _ => None,
        })
    };
    let (bid, ask, model) = (
        comp(TickType::BidOption).unwrap(),
        comp(TickType::AskOption).unwrap(),
        comp(TickType::ModelOption).unwrap(),
    );
    assert!(bid.option_price.unwrap() <= model.option_price.unwrap());
    assert!(ask.option_price.unwrap() >= model.option_price.unwrap());
    assert!(bid.implied_volatility.unwrap() < ask.implied_volatility.unwrap());
    sim.shutdown().await;
}
