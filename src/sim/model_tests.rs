use std::sync::Arc;

use time::macros::{date, datetime};

use super::*;
use crate::sim::ticks::{Tick, tick_type};

fn market(seed: u64) -> Market {
    Market::new(Arc::new(Universe::build(date!(2026 - 11 - 24))), seed)
}

fn spot_series(m: &Market, symbol: &str, steps: usize) -> Vec<f64> {
    let index = m.universe().underlying_by_symbol(symbol).unwrap();
    let now = datetime!(2026-11-24 15:00 UTC);
    (0..steps)
        .filter_map(|_| m.step_underlying(index, now))
        .map(|u| u.spot)
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_walk() {
    let (a, b, c) = (market(7), market(7), market(8));
    assert_eq!(spot_series(&a, "AAPL", 50), spot_series(&b, "AAPL", 50));
    assert_ne!(spot_series(&a, "MSFT", 50), spot_series(&c, "MSFT", 50));
    // Stepping another instrument does not disturb this one.
    let _ = spot_series(&b, "TSLA", 10);
    assert_eq!(spot_series(&a, "AAPL", 20), spot_series(&b, "AAPL", 20));
}

#[test]
fn quotes_keep_bid_below_ask_and_prices_near_the_start() {
    let m = market(3);
    let index = m.universe().underlying_by_symbol("SPY").unwrap();
    let now = datetime!(2026-11-24 15:00 UTC);
    for _ in 0..500 {
        m.step_underlying(index, now);
    }
    let full = m.full_ticks(index, now);
    let price = |ty| {
        full.iter().find_map(|g| match g.tick {
            Tick::Price { ty: t, price, .. } if t == ty => Some(price),
            _ => None,
        })
    };
    let (bid, ask) = (
        price(tick_type::BID).unwrap(),
        price(tick_type::ASK).unwrap(),
    );
    assert!(bid < ask);
    assert!((bid / 590.0 - 1.0).abs() < 0.2);
}

#[test]
fn option_quotes_bracket_the_model_and_their_ivs() {
    let m = market(7);
    let u = m.universe();
    let aapl = u.underlying_by_symbol("AAPL").unwrap();
    let now = datetime!(2026-11-24 15:00 UTC);
    let expiry = &u.chain(aapl)[0].expiries[4];
    for (i, strike) in [expiry.strikes[2], 230.0, *expiry.strikes.last().unwrap()]
        .into_iter()
        .enumerate()
    {
        let query = crate::sim::universe::ContractQuery {
            symbol: "AAPL".into(),
            sec_type: "OPT".into(),
            expiry: crate::sim::universe::yyyymmdd(expiry.date),
            strike,
            right: if i % 2 == 0 { "P" } else { "C" }.into(),
            ..Default::default()
        };
        let index = u.resolve(&query)[0].index;
        let q = m.option_quote(index, 230.0, now).unwrap();
        assert!(
            q.bid <= q.model.price && q.model.price <= q.ask,
            "{strike}: {q:?}"
        );
        if let (Some(lo), Some(hi)) = (
            q.computation_at(q.bid).implied_vol,
            q.computation_at(q.ask).implied_vol,
        ) {
            assert!(lo <= q.model_vol && q.model_vol <= hi);
        }
        let model = q.model_computation();
        assert_eq!(model.opt_price, Some(q.model.price));
        assert!((model.pv_dividend - 230.0 * (1.0 - (-0.0045 * q.inputs.time).exp())).abs() < 1e-9);
    }
}

#[test]
fn smile_makes_low_strikes_richer() {
    let t = 0.25;
    let otm_put = smile_vol(0.25, Kind::Stock, 180.0, 230.0, t);
    let atm = smile_vol(0.25, Kind::Stock, 230.0, 230.0, t);
    let otm_call = smile_vol(0.25, Kind::Stock, 260.0, 230.0, t);
    assert!(otm_put > atm && atm > 0.0 && otm_call > 0.0);
    assert!((atm - 0.25).abs() < 1e-12);
}

#[test]
fn time_to_expiry_counts_to_the_close_and_never_reaches_zero() {
    let now = datetime!(2026-11-27 21:00 UTC);
    assert!(time_to_expiry(date!(2026 - 11 - 27), now) > 0.0);
    let day = time_to_expiry(date!(2026 - 11 - 28), now);
    assert!((day - 1.0 / 365.0).abs() < 1e-12);
}
