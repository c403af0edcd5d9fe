//! Option chains: parameters, windows with Greeks, shared lines, the line budget.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use ibstream::greeks::{OptionInputs, OptionKind, greeks};
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::stream_option_chain_response::Event;
use tonic::Code;

use crate::harness::*;

/// The simulator prices options with this rate and SPY's dividend yield.
const SIM_RATE: f64 = 0.045;
const SPY_YIELD: f64 = 0.012;

fn window_request(expirations: u32, strikes: u32) -> pb::StreamOptionChainRequest {
    pb::StreamOptionChainRequest {
        underlying: Some(stock("SPY")),
        expiration_count: expirations,
        strike_count: strikes,
        rights: pb::Rights::Both as i32,
        ..Default::default()
    }
}

struct Snapshot {
    window: pb::ChainWindow,
    options: Vec<pb::OptionQuote>,
}

async fn read_snapshot(s: &mut tonic::Streaming<pb::StreamOptionChainResponse>) -> Snapshot {
    tokio::time::timeout(WAIT, async {
        let mut window = None;
        let mut options = Vec::new();
        loop {
            let m = s.message().await.unwrap().unwrap();
            match m.event.unwrap() {
                Event::Window(w) => window = Some(w),
                Event::Options(o) => {
                    assert!(window.is_some(), "the window comes first");
                    options.extend(o.options);
                }
                Event::SnapshotComplete(c) => {
                    let window = window.unwrap();
                    assert_eq!(c.options as usize, window.options.len());
                    return Snapshot { window, options };
                }
                Event::Underlying(_) => {}
                Event::Status(st) => panic!("unexpected status {st:?}"),
            }
        }
    })
    .await
    .expect("snapshot within the deadline")
}

fn years_to(expiry: &str) -> f64 {
    ibstream::fanout::greeks_calc::years_to_expiry(expiry, SystemTime::now()).unwrap()
}

#[tokio::test]
async fn a_chain_window_streams_with_greeks_that_agree_with_the_model() {
    let mut s = settings();
    s.greeks.dividend_yield = SPY_YIELD;
    let h = start_with(|_| {}, s).await;
    let mut client = h.client().await;
    let chain = client
        .get_option_chain(pb::GetOptionChainRequest {
            underlying: Some(stock("SPY")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(chain.expirations.len() >= 8, "{:?}", chain.expirations);
    assert_eq!(chain.trading_classes, vec!["SPY".to_string()]);
    assert_eq!(chain.multiplier, "100");
    assert!(chain.exchanges.contains(&"SMART".to_string()));

    let mut s = client
        .stream_option_chain(window_request(2, 10))
        .await
        .unwrap()
        .into_inner();
    let snap = read_snapshot(&mut s).await;
    assert_eq!(snap.window.options.len(), 40);
    let expiries: HashSet<_> = snap
        .window
        .options
        .iter()
        .map(|o| o.expiry.clone())
        .collect();
    assert_eq!(expiries.len(), 2);
    assert!(expiries.iter().all(|e| chain.expirations[..2].contains(e)));
    let center = snap.window.center_price.unwrap();
    assert_eq!(snap.options.len(), 40);
    let mut model_greeks = 0;
    for o in &snap.options {
        let inst = o.option.as_ref().unwrap();
        assert!(inst.con_id > 0);
        let q = o.quote.as_ref().unwrap();
        let g = o.greeks.as_ref().expect("greeks");
        // IB's model, or computed here when the model tick has not arrived yet.
        assert_ne!(g.source, pb::GreeksSource::Unspecified as i32);
        model_greeks += usize::from(g.source == pb::GreeksSource::IbModel as i32);
        let iv = g.implied_volatility.unwrap();
        let spot = g.underlying_price.unwrap();
        assert!((spot / center - 1.0).abs() < 0.05);
        let inputs = OptionInputs {
            kind: if inst.right == pb::OptionRight::Call as i32 {
                OptionKind::Call
            } else {
                OptionKind::Put
            },
            spot,
            strike: inst.strike.unwrap(),
            time: years_to(&inst.expiry),
            rate: SIM_RATE,
            dividend_yield: SPY_YIELD,
        };
        let model = greeks(&inputs, iv).unwrap();
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * (1.0 + b.abs());
        assert!(
            close(g.delta.unwrap(), model.delta, 1e-3),
            "delta {g:?} vs {model:?}"
        );
        assert!(
            close(g.gamma.unwrap(), model.gamma, 1e-2),
            "gamma {g:?} vs {model:?}"
        );
        assert!(
            close(g.vega.unwrap(), model.vega, 1e-2),
            "vega {g:?} vs {model:?}"
        );
        assert!(
            close(g.theta.unwrap(), model.theta, 1e-2),
            "theta {g:?} vs {model:?}"
        );
        assert!(
            close(g.option_price.unwrap(), model.price, 1e-2),
            "price {g:?} vs {model:?}"
        );
        // The model price lies within the quoted market.
        let (bid, ask) = (q.bid.unwrap(), q.ask.unwrap());
        assert!(bid <= ask && bid <= model.price + 0.05 && model.price <= ask + 0.05);
    }
    assert!(model_greeks > 0, "IB's model Greeks are passed through");
    // Changes follow the snapshot, with open interest and volume (generic ticks 100/101).
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Options(o)) = s.message().await.unwrap().unwrap().event
                && o.options
                    .iter()
                    .any(|o| o.open_interest.is_some() && o.option_volume.is_some())
            {
                return;
            }
        }
    })
    .await
    .expect("open interest within the deadline");
}

#[tokio::test]
async fn overlapping_chains_share_lines_and_a_window_beyond_the_budget_is_refused() {
    let mut s = settings();
    s.fanout.line_budget = 60;
    let h = start_with(|_| {}, s).await;
    let mut client = h.client().await;
    let mut a = client
        .stream_option_chain(window_request(2, 10))
        .await
        .unwrap()
        .into_inner();
    read_snapshot(&mut a).await;
    let mut b = client
        .stream_option_chain(window_request(1, 10))
        .await
        .unwrap()
        .into_inner();
    let snap = read_snapshot(&mut b).await;
    assert_eq!(snap.window.options.len(), 20);
    // 40 options and the underlying; the second window is inside the first.
    wait_for_stats(&h.sim, "41 subscriptions", |st| {
        st.active_market_data_subscriptions == 41
    })
    .await;
    let limits = client
        .list_subscriptions(pb::ListSubscriptionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    assert_eq!((limits.lines_in_use, limits.line_budget), (41, 60));

    let err = client
        .stream_option_chain(window_request(3, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("41 of 60 lines in use"),
        "{}",
        err.message()
    );

    let err = client
        .stream_option_chain(pb::StreamOptionChainRequest {
            expirations: vec!["20200117".into()],
            ..window_request(1, 4)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("expirations[0]"),
        "{}",
        err.message()
    );
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(50)).await;
}
