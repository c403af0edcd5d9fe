//! Fan-out behaviour against a scripted source.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::fake::FakeSource;
use super::*;
use crate::fanout::tick::{PriceField, Tick};
use crate::metrics::Metrics;

fn stock(con_id: i64, symbol: &str) -> Arc<ContractSpec> {
    Arc::new(ContractSpec {
        con_id,
        symbol: symbol.into(),
        sec_type: SecType::Stock,
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..ContractSpec::default()
    })
}

fn option(con_id: i64) -> Arc<ContractSpec> {
    Arc::new(ContractSpec {
        con_id,
        symbol: "SPY".into(),
        sec_type: SecType::Option,
        expiry: "20991217".into(),
        strike: Some(500.0),
        right: Some(Right::Call),
        ..ContractSpec::default()
    })
}

fn fanout(source: &Arc<FakeSource>, settings: FanoutSettings) -> (Fanout, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let source: Arc<dyn MarketDataSource> = source.clone();
    (Fanout::new(source, settings, metrics.clone()), metrics)
}

/// Subscribes `reader` to one instrument the way a client stream does: the same
/// delayed-fallback choice for the fan-out and for the reader's slot.
fn watch(fanout: &Fanout, reader: &mut Reader, contract: &Arc<ContractSpec>, delayed_ok: bool) {
    let feed = fanout
        .acquire(std::slice::from_ref(contract), delayed_ok)
        .unwrap()
        .remove(0);
    reader.add(feed, delayed_ok);
}

/// A default fan-out with one reader on stock 1 that has already seen `first`,
/// so what follows in a test is the only thing left in the reader.
async fn watching_one_stock(first: Tick) -> (Arc<FakeSource>, Fanout, Reader) {
    let source = FakeSource::new();
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let mut reader = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut reader, &stock(1, "A"), false);
    settle().await;
    source.tick(1, first);
    let _ = next_update(&mut reader).await;
    (source, fanout, reader)
}

/// Lets spawned feed tasks run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// The reader's next event, bounded so a missing one fails the test instead of hanging it.
async fn next_event(reader: &mut Reader) -> ReaderEvent {
    tokio::time::timeout(Duration::from_secs(5), reader.next())
        .await
        .expect("reader event in time")
        .expect("reader open")
}

async fn next_update(reader: &mut Reader) -> (usize, Arc<FeedView>, u64) {
    loop {
        let event = next_event(reader).await;
        if let ReaderEvent::Update {
            slot,
            view,
            skipped,
        } = event
        {
            return (slot, view, skipped);
        }
    }
}

async fn next_status(reader: &mut Reader) -> (usize, StatusKind) {
    loop {
        let event = next_event(reader).await;
        if let ReaderEvent::Status { slot, kind } = event
            && kind != StatusKind::Subscribed
        {
            return (slot, kind);
        }
    }
}

#[tokio::test]
async fn many_readers_share_one_subscription_per_instrument() {
    let source = FakeSource::new();
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let contracts: Vec<_> = (1..=5).map(|i| stock(i, &format!("S{i}"))).collect();
    let mut readers = Vec::new();
    for _ in 0..20 {
        let mut r = Reader::new(metrics.clone(), false);
        for f in fanout.acquire(&contracts, false).unwrap() {
            r.add(f, false);
        }
        readers.push(r);
    }
    settle().await;
    assert_eq!(source.counts(), (5, 5));
    assert_eq!(metrics.lines_in_use.get(), 5);
    assert!(fanout.list().iter().all(|s| s.readers == 20));
    assert!(source.tick(3, Tick::Price(PriceField::Bid, 10.0)));
    for r in &mut readers {
        let (slot, view, _) = next_update(r).await;
        assert_eq!(slot, 2);
        assert_eq!(view.quote.bid, Some(10.0));
    }
}

#[tokio::test]
async fn a_late_reader_gets_the_cached_value_at_once() {
    let source = FakeSource::new();
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let aapl = stock(1, "AAPL");
    let mut first = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut first, &aapl, false);
    settle().await;
    source.tick(1, Tick::Price(PriceField::Bid, 189.5));
    source.tick(1, Tick::Price(PriceField::Ask, 189.6));
    let _ = next_update(&mut first).await;
    settle().await;
    let mut late = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut late, &aapl, false);
    let (_, view, _) = next_update(&mut late).await;
    assert_eq!((view.quote.bid, view.quote.ask), (Some(189.5), Some(189.6)));
    assert_eq!(source.counts(), (1, 1));
}

#[tokio::test]
async fn the_last_reader_leaving_releases_after_the_linger() {
    let source = FakeSource::new();
    let settings = FanoutSettings {
        linger: Duration::from_millis(400),
        ..FanoutSettings::default()
    };
    let (fanout, metrics) = fanout(&source, settings);
    let held = fanout.acquire(&[stock(1, "A")], false).unwrap();
    settle().await;
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(source.counts(), (1, 1), "still held during the linger");
    // Coming back within the linger reuses the subscription.
    let again = fanout.acquire(&[stock(1, "A")], false).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(source.counts(), (1, 1));
    drop(again);
    tokio::time::sleep(Duration::from_millis(800)).await;
    settle().await;
    assert_eq!(source.counts(), (1, 0), "cancelled after the linger");
    assert_eq!(metrics.lines_in_use.get(), 0);
}

#[tokio::test]
async fn a_slow_reader_sees_the_newest_value_and_the_gap() {
    let source = FakeSource::new();
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let mut fast = Reader::new(metrics.clone(), false);
    let mut slow = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut fast, &stock(1, "A"), false);
    watch(&fanout, &mut slow, &stock(1, "A"), false);
    settle().await;
    source.tick(1, Tick::Price(PriceField::Last, 1.0));
    let (_, first, _) = next_update(&mut slow).await;
    let mut fast_seen = 0;
    for i in 2..=1000 {
        source.tick(1, Tick::Price(PriceField::Last, i as f64));
        settle().await;
        while let Some(Some(ReaderEvent::Update { .. })) =
            futures::FutureExt::now_or_never(fast.next())
        {
            fast_seen += 1;
        }
    }
    let (_, newest, skipped) = next_update(&mut slow).await;
    assert_eq!(newest.quote.last, Some(1000.0));
    assert_eq!(skipped, newest.quote.sequence - first.quote.sequence - 1);
    assert!(skipped > 0);
    assert!(fast_seen > 100, "the fast reader kept up: {fast_seen}");
    assert!(metrics.conflated.get() >= skipped);
}

#[tokio::test]
async fn the_line_budget_is_enforced_before_ib_is_asked() {
    let source = FakeSource::new();
    let settings = FanoutSettings {
        line_budget: 3,
        linger: Duration::from_secs(60),
        ..FanoutSettings::default()
    };
    let (fanout, _) = fanout(&source, settings);
    let held = fanout
        .acquire(&[stock(1, "A"), stock(2, "B")], false)
        .unwrap();
    let err = fanout
        .acquire(&[stock(3, "C"), stock(4, "D")], false)
        .unwrap_err();
    assert_eq!(
        err,
        FanoutError::LineBudget {
            in_use: 2,
            budget: 3,
            free: 1,
            requested: 2
        }
    );
    assert!(err.to_string().contains("2 of 3 lines in use, 1 free"));
    settle().await;
    assert_eq!(source.counts().0, 2, "IB was not asked");
    // Lingering instruments give their lines up to new ones.
    drop(held);
    let fresh = fanout
        .acquire(&[stock(3, "C"), stock(4, "D"), stock(5, "E")], false)
        .unwrap();
    assert_eq!(fresh.len(), 3);
    assert_eq!(fanout.line_usage().in_use, 3);
}

#[tokio::test]
async fn streams_go_stale_and_resume_in_a_new_session() {
    let (source, _fanout, mut reader) = watching_one_stock(Tick::Price(PriceField::Bid, 5.0)).await;

    source.end_all(SourceError::LinkDown);
    source.set_link(None);
    assert_eq!(next_status(&mut reader).await.1, StatusKind::Stale);
    let (_, stale, _) = next_update(&mut reader).await;
    assert!(stale.quote.stale);

    source.set_link(Some(2));
    settle().await;
    assert_eq!(source.last_sub_type(1), Some((2, MarketDataType::Live)));
    source.tick(1, Tick::Price(PriceField::Bid, 6.0));
    assert!(matches!(
        next_status(&mut reader).await.1,
        StatusKind::Resumed { gap: Some(_) }
    ));
    let (_, fresh, _) = next_update(&mut reader).await;
    assert!(!fresh.quote.stale);
    assert_eq!(fresh.quote.bid, Some(6.0));
}

#[tokio::test]
async fn a_reader_that_missed_the_stale_value_still_hears_of_the_outage() {
    let (source, _fanout, mut reader) = watching_one_stock(Tick::Price(PriceField::Bid, 5.0)).await;
    // The whole episode passes before the reader looks again: the watch keeps only the
    // newest value, which is fresh.
    source.end_all(SourceError::LinkDown);
    source.set_link(None);
    settle().await;
    source.set_link(Some(2));
    settle().await;
    source.tick(1, Tick::Price(PriceField::Bid, 6.0));
    settle().await;
    assert_eq!(next_status(&mut reader).await.1, StatusKind::Stale);
    assert!(matches!(
        next_status(&mut reader).await.1,
        StatusKind::Resumed { gap: Some(_) }
    ));
    let (_, fresh, _) = next_update(&mut reader).await;
    assert_eq!(fresh.quote.bid, Some(6.0));
}

#[tokio::test]
async fn refused_live_data_falls_back_to_delayed_only_for_readers_that_allow_it() {
    let source = FakeSource::new();
    source.no_live.lock().unwrap().insert(7);
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let mut strict = Reader::new(metrics.clone(), false);
    let mut lenient = Reader::new(metrics.clone(), false);
    let c = stock(7, "NOPERM");
    watch(&fanout, &mut strict, &c, false);
    watch(&fanout, &mut lenient, &c, true);
    settle().await;
    assert_eq!(source.last_sub_type(7), Some((1, MarketDataType::Delayed)));
    assert_eq!(
        next_status(&mut lenient).await.1,
        StatusKind::DelayedFallback
    );
    match next_status(&mut strict).await.1 {
        StatusKind::Failed(FanoutError::NoPermission(_)) => {}
        other => panic!("expected no permission, got {other:?}"),
    }
    source.tick(7, Tick::DataType(MarketDataType::Delayed));
    source.tick(7, Tick::Price(PriceField::Last, 3.0));
    let (_, view, _) = next_update(&mut lenient).await;
    assert_eq!(view.quote.market_data_type, Some(MarketDataType::Delayed));
    assert_eq!(view.quote.requested_type, MarketDataType::Delayed);
}

#[tokio::test]
async fn without_fallback_no_permission_fails_the_instrument_and_frees_the_line() {
    let source = FakeSource::new();
    source.no_live.lock().unwrap().insert(7);
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let mut reader = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut reader, &stock(7, "X"), false);
    watch(&fanout, &mut reader, &stock(8, "Y"), false);
    match next_status(&mut reader).await {
        (0, StatusKind::Failed(FanoutError::NoPermission(_))) => {}
        other => panic!("{other:?}"),
    }
    // The other instrument goes on.
    source.tick(8, Tick::Price(PriceField::Last, 1.0));
    let (slot, _, _) = next_update(&mut reader).await;
    assert_eq!(slot, 1);
    assert_eq!(reader.active(), 1);
    assert_eq!(fanout.line_usage().in_use, 1);
}

#[tokio::test]
async fn a_farm_going_down_marks_only_its_instruments_stale() {
    let source = FakeSource::new();
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let mut reader = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut reader, &stock(1, "A"), false);
    watch(&fanout, &mut reader, &option(2), false);
    settle().await;
    source.tick(1, Tick::Price(PriceField::Last, 1.0));
    source.tick(2, Tick::Price(PriceField::Last, 2.0));
    let _ = next_update(&mut reader).await;
    let _ = next_update(&mut reader).await;
    source.farm(DataNotice::Farm {
        farm: FarmKind::Options,
        up: false,
    });
    assert_eq!(next_status(&mut reader).await, (1, StatusKind::Stale));
    settle().await;
    assert!(!fanout.cached(1).unwrap().quote.stale);
    assert!(fanout.cached(2).unwrap().quote.stale);
    source.farm(DataNotice::Farm {
        farm: FarmKind::Options,
        up: true,
    });
    assert!(matches!(
        next_status(&mut reader).await,
        (1, StatusKind::Resumed { .. })
    ));
}

#[tokio::test]
async fn ib_losing_connectivity_marks_everything_stale_and_data_lost_resubscribes() {
    let (source, _fanout, mut reader) =
        watching_one_stock(Tick::Price(PriceField::Last, 1.0)).await;
    source.farm(DataNotice::ConnectivityLost);
    assert_eq!(next_status(&mut reader).await, (0, StatusKind::Stale));
    source.farm(DataNotice::ConnectivityRestored { data_lost: true });
    settle().await;
    assert_eq!(
        source.counts(),
        (2, 1),
        "requested again, the old request cancelled"
    );
    source.tick(1, Tick::Price(PriceField::Last, 2.0));
    assert!(matches!(
        next_status(&mut reader).await,
        (0, StatusKind::Resumed { .. })
    ));
}

#[tokio::test]
async fn greeks_are_computed_here_when_ib_sends_none() {
    use crate::fanout::greeks_calc::option_greeks;
    use crate::fanout::tick::OptionComputation;
    let source = FakeSource::new();
    let (fanout, metrics) = fanout(&source, FanoutSettings::default());
    let expiry = {
        let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(60);
        format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let mut c = (*option(9)).clone();
    c.expiry = expiry.clone();
    let contract = Arc::new(c);
    let mut reader = Reader::new(metrics.clone(), false);
    watch(&fanout, &mut reader, &contract, false);
    settle().await;
    source.tick(9, Tick::Price(PriceField::Bid, 30.0));
    source.tick(9, Tick::Price(PriceField::Ask, 32.0));
    // IB's model with sentinels only: nothing usable.
    source.tick(
        9,
        Tick::OptionModel(OptionComputation {
            implied_volatility: Some(-1.0),
            delta: Some(-2.0),
            gamma: Some(-2.0),
            vega: Some(-2.0),
            theta: Some(-2.0),
            underlying_price: Some(-1.0),
            option_price: Some(-1.0),
        }),
    );
    let mut view = next_update(&mut reader).await.1;
    while view.quote.ask.is_none() || view.extras.model.is_none() {
        view = next_update(&mut reader).await.1;
    }
    let params = GreeksParams {
        risk_free_rate: 0.04,
        dividend_yield: 0.01,
    };
    let now = std::time::SystemTime::now();
    let g = option_greeks(&contract, &view, Some(520.0), &params, now).expect("computed greeks");
    assert_eq!(g.source, GreeksSource::Computed);
    let (iv, delta) = (g.implied_volatility.unwrap(), g.delta.unwrap());
    assert!(iv > 0.0 && iv < 5.0, "iv {iv}");
    assert!(delta > 0.0 && delta < 1.0, "call delta {delta}");
    assert!(g.gamma.unwrap() > 0.0 && g.vega.unwrap() > 0.0);
    assert_eq!(g.option_price, Some(31.0));
    // The model price at the implied volatility is the mid price.
    let inputs = crate::greeks::OptionInputs {
        kind: crate::greeks::OptionKind::Call,
        spot: 520.0,
        strike: 500.0,
        time: crate::fanout::greeks_calc::years_to_expiry(&expiry, now).unwrap(),
        rate: 0.04,
        dividend_yield: 0.01,
    };
    let price = crate::greeks::price(&inputs, iv).unwrap();
    assert!((price - 31.0).abs() < 1e-6, "{price}");

    // A complete model from IB is passed through untouched.
    source.tick(
        9,
        Tick::OptionModel(OptionComputation {
            implied_volatility: Some(0.2),
            delta: Some(0.6),
            gamma: Some(0.01),
            vega: Some(0.5),
            theta: Some(-0.02),
            underlying_price: Some(520.0),
            option_price: Some(121.0),
        }),
    );
    let view = next_update(&mut reader).await.1;
    let g = option_greeks(&contract, &view, Some(520.0), &params, now).unwrap();
    assert_eq!(g.source, GreeksSource::IbModel);
    assert_eq!(g.delta, Some(0.6));
}

#[tokio::test]
async fn a_stale_mark_from_the_source_holds_until_the_next_tick() {
    let source = FakeSource::new();
    let (fanout, _) = fanout(&source, FanoutSettings::default());
    let feed = fanout.acquire(&[stock(1, "A")], false).unwrap().remove(0);
    let mut rx = feed.watch();
    settle().await;
    let wait = |rx: &mut tokio::sync::watch::Receiver<Arc<FeedView>>, status: FeedStatus| {
        let mut rx = rx.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| v.status == status))
                .await
                .expect("status in time")
                .expect("feed open")
                .clone()
        }
    };
    assert!(source.tick(1, Tick::Price(PriceField::Bid, 1.0)));
    wait(&mut rx, FeedStatus::Live).await;
    // Values and the stale mark in one batch: the values are kept, marked old.
    assert!(source.tick(1, Tick::Price(PriceField::Bid, 2.0)));
    assert!(source.event(1, SourceEvent::Stale));
    let view = wait(&mut rx, FeedStatus::Stale).await;
    assert!(view.quote.stale);
    assert_eq!(view.quote.bid, Some(2.0));
    assert!(source.tick(1, Tick::Price(PriceField::Bid, 3.0)));
    let view = wait(&mut rx, FeedStatus::Live).await;
    assert!(!view.quote.stale);
    assert_eq!(view.quote.bid, Some(3.0));
    assert_eq!(view.resumes, 1);
}
