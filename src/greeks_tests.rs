// Reference values are quoted with every published digit.
#![allow(clippy::excessive_precision)]

use super::*;

fn inputs(kind: OptionKind, spot: f64, strike: f64, time: f64, rate: f64, q: f64) -> OptionInputs {
    OptionInputs {
        kind,
        spot,
        strike,
        time,
        rate,
        dividend_yield: q,
    }
}

#[test]
fn erfc_matches_reference_values() {
    // Reference values from high-precision tables.
    let cases = [
        (0.0, 1.0),
        (0.3, 0.671_373_240_540_872_6),
        (1.0, 0.157_299_207_050_285_13),
        (2.0, 0.004_677_734_981_047_266),
        (5.0, 1.537_459_794_428_034_9e-12),
        (-1.0, 1.842_700_792_949_714_9),
    ];
    for (x, want) in cases {
        let got = erfc(x);
        assert!(
            ((got - want) / want).abs() < 1e-13,
            "erfc({x}) = {got}, want {want}"
        );
    }
}

#[test]
fn norm_cdf_is_symmetric_and_accurate() {
    assert!((norm_cdf(0.0) - 0.5).abs() < 1e-15);
    assert!((norm_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-13);
    for x in [-3.0, -1.2, 0.4, 2.5] {
        assert!((norm_cdf(x) + norm_cdf(-x) - 1.0).abs() < 1e-14);
    }
}

#[test]
fn hull_example_call_and_put_prices() {
    // Hull, Options Futures and Other Derivatives, Example 15.6: call 4.76, put 0.81.
    let call = price(&inputs(OptionKind::Call, 42.0, 40.0, 0.5, 0.10, 0.0), 0.2).unwrap();
    let put = price(&inputs(OptionKind::Put, 42.0, 40.0, 0.5, 0.10, 0.0), 0.2).unwrap();
    assert!((call - 4.76).abs() < 0.005, "call {call}");
    assert!((put - 0.81).abs() < 0.005, "put {put}");
}

#[test]
fn hull_example_greeks_in_ib_units() {
    // Hull's running Greek-letter example: S=49, K=50, r=5 %, σ=20 %, T=20 weeks.
    // Delta 0.522, gamma 0.066, vega 12.1 per unit vol, theta −4.31 per year.
    let g = greeks(
        &inputs(OptionKind::Call, 49.0, 50.0, 0.3846, 0.05, 0.0),
        0.2,
    )
    .unwrap();
    assert!((g.price - 2.40).abs() < 0.01, "price {}", g.price);
    assert!((g.delta - 0.522).abs() < 0.001, "delta {}", g.delta);
    assert!((g.gamma - 0.066).abs() < 0.001, "gamma {}", g.gamma);
    assert!((g.vega - 0.121).abs() < 0.001, "vega per point {}", g.vega);
    assert!(
        (g.theta - (-4.31 / 365.0)).abs() < 0.0002,
        "theta per day {}",
        g.theta
    );
}

#[test]
fn put_call_parity_holds_with_dividends() {
    for (s, k, t, r, q, vol) in [
        (100.0, 95.0, 0.25, 0.045, 0.012, 0.3),
        (5900.0, 6000.0, 0.08, 0.04, 0.013, 0.14),
        (22.0, 30.0, 1.5, 0.02, 0.0, 0.6),
    ] {
        let c = price(&inputs(OptionKind::Call, s, k, t, r, q), vol).unwrap();
        let p = price(&inputs(OptionKind::Put, s, k, t, r, q), vol).unwrap();
        let parity = s * (-q * t).exp() - k * (-r * t).exp();
        assert!(
            (c - p - parity).abs() < 1e-9 * s,
            "parity off for S={s} K={k}"
        );
    }
}

#[test]
fn greeks_match_finite_differences() {
    let base = inputs(OptionKind::Put, 230.0, 225.0, 0.2, 0.045, 0.005);
    let vol = 0.27;
    let g = greeks(&base, vol).unwrap();
    let h = 0.01;
    let bump = |s: f64| price(&OptionInputs { spot: s, ..base }, vol).unwrap();
    let delta = (bump(230.0 + h) - bump(230.0 - h)) / (2.0 * h);
    let gamma = (bump(230.0 + h) - 2.0 * g.price + bump(230.0 - h)) / (h * h);
    let vega = (price(&base, vol + 0.005).unwrap() - price(&base, vol - 0.005).unwrap()) / 1.0;
    let day = 1.0 / 365.0;
    let theta = price(
        &OptionInputs {
            time: 0.2 - day,
            ..base
        },
        vol,
    )
    .unwrap()
        - g.price;
    assert!((g.delta - delta).abs() < 1e-6);
    assert!((g.gamma - gamma).abs() < 1e-4);
    assert!((g.vega - vega).abs() < 1e-4);
    assert!((g.theta - theta).abs() < 1e-3);
}

#[test]
fn implied_volatility_round_trips() {
    for kind in [OptionKind::Call, OptionKind::Put] {
        for strike in [150.0, 200.0, 230.0, 260.0, 320.0] {
            for vol in [0.08, 0.25, 0.9] {
                let inp = inputs(kind, 230.0, strike, 0.3, 0.045, 0.005);
                let p = price(&inp, vol).unwrap();
                let (lo, hi) = inp.price_bounds();
                if p - lo < 1e-6 || hi - p < 1e-6 {
                    continue; // no information left in the price
                }
                let iv = implied_volatility(&inp, p).unwrap();
                assert!(
                    (iv - vol).abs() < 1e-6,
                    "{kind:?} K={strike} σ={vol}: got {iv}"
                );
            }
        }
    }
}

#[test]
fn implied_volatility_rejects_prices_outside_bounds() {
    let inp = inputs(OptionKind::Call, 42.0, 40.0, 0.5, 0.10, 0.0);
    let (lo, hi) = inp.price_bounds();
    assert_eq!(implied_volatility(&inp, lo - 0.01), None);
    assert_eq!(implied_volatility(&inp, lo), None);
    assert_eq!(implied_volatility(&inp, hi + 1.0), None);
    assert_eq!(implied_volatility(&inp, f64::NAN), None);
    assert!(implied_volatility(&inp, 4.76).is_some());
}

#[test]
fn invalid_inputs_give_none() {
    assert!(greeks(&inputs(OptionKind::Call, 0.0, 40.0, 0.5, 0.1, 0.0), 0.2).is_none());
    assert!(greeks(&inputs(OptionKind::Call, 42.0, 40.0, 0.0, 0.1, 0.0), 0.2).is_none());
    assert!(greeks(&inputs(OptionKind::Call, 42.0, 40.0, 0.5, 0.1, 0.0), 0.0).is_none());
}

#[test]
fn pv_dividend_follows_the_yield() {
    let inp = inputs(OptionKind::Call, 100.0, 100.0, 1.0, 0.05, 0.02);
    assert!((inp.pv_dividend() - 100.0 * (1.0 - (-0.02f64).exp())).abs() < 1e-12);
}

#[test]
fn underflowing_inputs_give_none_not_nan() {
    // Found by fuzzing: a spot near the smallest float and a tiny vol made gamma 0/0.
    let tiny_spot = inputs(
        OptionKind::Call,
        5.562901938655819e-307,
        105.0,
        0.5,
        0.04,
        0.0,
    );
    assert!(greeks(&tiny_spot, 1e-300).is_none());
    assert!(price(&tiny_spot, 1e-300).is_none());
    // Ordinary inputs still have their answer.
    let fine = inputs(OptionKind::Call, 100.0, 105.0, 0.5, 0.04, 0.0);
    assert!(greeks(&fine, 0.3).is_some());
}
