//! Chain windows against a scripted source: snapshot first, then re-centring.

use std::sync::Arc;
use std::time::Duration;

use super::chain::{ChainEvent, ChainRequest, Chains};
use super::chain_window::StrikeSelection;
use super::contracts::Contracts;
use super::fake::FakeSource;
use super::greeks_calc::GreeksParams;
use super::registry::{Fanout, FanoutSettings};
use super::source::MarketDataSource;
use super::tick::{PriceField, Tick};
use super::types::{ChainParams, ContractDetails, ContractSpec, Right, SecType};
use crate::metrics::Metrics;

/// An expiry two months out, so option prices have time value.
fn expiry() -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(60);
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

fn listed(strike: f64) -> ContractDetails {
    ContractDetails {
        contract: ContractSpec {
            con_id: 1000 + strike as i64,
            symbol: "XYZ".into(),
            sec_type: SecType::Option,
            expiry: expiry(),
            strike: Some(strike),
            right: Some(Right::Call),
            trading_class: "XYZ".into(),
            ..ContractSpec::default()
        },
        ..ContractDetails::default()
    }
}

fn setup() -> (Arc<FakeSource>, Chains) {
    let source = FakeSource::new();
    source.details.lock().unwrap().insert(
        "XYZ".into(),
        ContractDetails {
            contract: ContractSpec {
                con_id: 1,
                symbol: "XYZ".into(),
                ..ContractSpec::default()
            },
            ..ContractDetails::default()
        },
    );
    source
        .listings
        .lock()
        .unwrap()
        .insert(expiry(), (90..=110).map(|k| listed(f64::from(k))).collect());
    *source.chain.lock().unwrap() = vec![ChainParams {
        exchange: "SMART".into(),
        underlying_con_id: 1,
        trading_class: "XYZ".into(),
        multiplier: "100".into(),
        expirations: vec![expiry()],
        strikes: (80..=120).map(f64::from).collect(),
    }];
    let dyn_source: Arc<dyn MarketDataSource> = source.clone();
    let metrics = Arc::new(Metrics::default());
    let settings = FanoutSettings {
        linger: Duration::ZERO,
        ..FanoutSettings::default()
    };
    let fanout = Fanout::new(dyn_source.clone(), settings, metrics);
    let contracts = Arc::new(Contracts::new(dyn_source, None, Duration::from_secs(5)));
    let chains = Chains {
        fanout,
        contracts,
        greeks: GreeksParams {
            risk_free_rate: 0.04,
            dividend_yield: 0.0,
        },
        deadline: Duration::from_secs(5),
    };
    (source, chains)
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<ChainEvent>) -> ChainEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event in time")
        .expect("stream open")
}

fn strikes(options: &[Arc<ContractSpec>]) -> Vec<f64> {
    options.iter().filter_map(|c| c.strike).collect()
}

/// Opens a window of three calls around the money on XYZ, centred on the underlying's
/// first price (100.2).
async fn three_calls_around_the_money(
    source: &FakeSource,
    chains: Chains,
) -> (Chains, tokio::sync::mpsc::Receiver<ChainEvent>) {
    let request = ChainRequest {
        underlying: ContractSpec {
            symbol: "XYZ".into(),
            ..ContractSpec::default()
        },
        expirations: vec![expiry()],
        expiration_count: 1,
        strikes: StrikeSelection::AroundMoney { count: 3 },
        rights: vec![Right::Call],
        trading_class: String::new(),
        allow_delayed: false,
    };
    let open = tokio::spawn(async move {
        let rx = chains.open(request).await;
        (chains, rx)
    });
    settle().await;
    source.tick(1, Tick::Price(PriceField::Last, 100.2));
    let (chains, rx) = open.await.unwrap();
    (chains, rx.expect("window opens"))
}

#[tokio::test]
async fn a_window_around_the_money_snapshots_then_follows_the_underlying() {
    let (source, chains) = setup();
    let (chains, mut rx) = three_calls_around_the_money(&source, chains).await;
    let ChainEvent::Window { options, .. } = next(&mut rx).await else {
        panic!("the window comes first");
    };
    assert_eq!(strikes(&options), vec![99.0, 100.0, 101.0]);
    settle().await;
    for k in [99, 100, 101] {
        source.tick(1000 + k, Tick::Price(PriceField::Bid, 3.0));
        source.tick(1000 + k, Tick::Price(PriceField::Ask, 3.4));
    }
    let mut snapshot = 0;
    loop {
        match next(&mut rx).await {
            ChainEvent::Option { view, greeks, .. } => {
                assert!(view.quote.bid.is_some() && view.quote.ask.is_some());
                assert!(greeks.is_some(), "computed from the mid and the underlying");
                snapshot += 1;
            }
            ChainEvent::SnapshotComplete { options } => {
                assert_eq!((options, snapshot), (3, 3));
                break;
            }
            ChainEvent::Underlying(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The underlying moves five strikes: new strikes taken, old ones released.
    source.tick(1, Tick::Price(PriceField::Last, 105.1));
    let (options, removed) = loop {
        if let ChainEvent::Window {
            options, removed, ..
        } = next(&mut rx).await
        {
            break (options, removed);
        }
    };
    assert_eq!(strikes(&options), vec![104.0, 105.0, 106.0]);
    let mut removed = removed;
    removed.sort_unstable();
    assert_eq!(removed, vec![1099, 1100, 1101]);
    settle().await;
    let usage = chains.fanout.line_usage();
    assert_eq!(usage.in_use, 4, "three options and the underlying");
    drop(rx);
    settle().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        chains.fanout.line_usage().in_use,
        0,
        "a closed stream releases its window"
    );
}

/// A chain client that reads slowly is conflated like a quote client: after it has
/// fallen behind, the newest value reaches it after at most a few queued events, not
/// after a backlog of old ones (a slow reader saw data tens of seconds old).
#[tokio::test]
async fn a_slow_chain_reader_gets_the_newest_value_after_a_short_queue() {
    let (source, chains) = setup();
    let (_chains, mut rx) = three_calls_around_the_money(&source, chains).await;
    settle().await;
    for k in [99, 100, 101] {
        source.tick(1000 + k, Tick::Price(PriceField::Bid, 3.0));
        source.tick(1000 + k, Tick::Price(PriceField::Ask, 3.4));
    }
    while !matches!(next(&mut rx).await, ChainEvent::SnapshotComplete { .. }) {}
    // From here the client reads nothing while the options tick many times.
    for i in 0..400i32 {
        let k = 99 + i64::from(i % 3);
        source.tick(
            1000 + k,
            Tick::Price(PriceField::Bid, 3.0 + f64::from(i) / 1000.0),
        );
        settle().await;
    }
    source.tick(1100, Tick::Price(PriceField::Bid, 9.99));
    settle().await;
    let mut read = 0;
    loop {
        read += 1;
        if let ChainEvent::Option { view, .. } = next(&mut rx).await
            && view.quote.bid == Some(9.99)
        {
            break;
        }
    }
    // What was queued before the newest value: a handful.
    assert!(read <= 8, "the newest value came after {read} older events");
}

#[tokio::test(start_paused = true)]
async fn opening_a_window_answers_within_the_deadline_in_all() {
    let (source, chains) = setup();
    let request = ChainRequest {
        underlying: ContractSpec {
            symbol: "XYZ".into(),
            ..ContractSpec::default()
        },
        expirations: vec![expiry()],
        expiration_count: 1,
        strikes: StrikeSelection::AroundMoney { count: 3 },
        rights: vec![Right::Call],
        trading_class: String::new(),
        allow_delayed: false,
    };
    let started = tokio::time::Instant::now();
    let open = tokio::spawn(async move { chains.open(request).await.map(|_| ()) });
    settle().await;
    // The underlying is resolved; its price comes just before the deadline, and then the
    // listings are not answered (a gateway going away in between).
    source.unanswered.lock().unwrap().insert("XYZ".into());
    tokio::time::sleep(Duration::from_millis(4900)).await;
    source.tick(1, Tick::Price(PriceField::Last, 100.2));
    let answered = open.await.unwrap();
    assert!(
        matches!(answered, Err(super::error::FanoutError::Deadline(_))),
        "{answered:?}"
    );
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(5), "answered after {took:?}");
}
