//! Streaming and snapshot market data, cancels, market-data types, permissions, line budget,
//! the shared producer and the seeded series.

use ibapi::contracts::tick_types::TickType;
use ibapi::market_data::MarketDataType;
use ibapi::market_data::realtime::TickTypes;
use ibapi::prelude::*;

use crate::common::*;

#[tokio::test]
async fn streams_stock_quotes_near_the_model_price() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let ticks = collect_bids(&client, &Contract::stock("AAPL").build(), 3).await;
    assert!(
        matches!(ticks[0], TickTypes::RequestParameters(_)),
        "TickReqParams first: {:?}",
        ticks[0]
    );
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::MarketDataType(MarketDataType::Realtime)))
    );
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::String(s) if s.tick_type == TickType::LastTimestamp))
    );
    assert!(ticks.iter().any(
        |t| matches!(t, TickTypes::Generic(g) if g.tick_type == TickType::Halted && g.value == 0.0)
    ));
    let spot = sim.control().spot("AAPL").unwrap();
    let bids = bids(&ticks);
    assert!(
        bids.iter().all(|(b, _)| (b / spot - 1.0).abs() < 0.02),
        "bids {bids:?} near spot {spot}"
    );
    assert!(
        bids.windows(2).all(|w| w[0] != w[1]),
        "each bid frame is a change: {bids:?}"
    );
    assert_eq!(sim.control().stats().active_market_data_subscriptions, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn index_and_fx_quote_like_the_real_thing() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let spx = client
        .market_data(&Contract::index("SPX"))
        .snapshot_once(WAIT)
        .await
        .unwrap();
    assert!(spx.iter().any(
        |t| matches!(t, TickTypes::Price(p) if p.tick_type == TickType::Last && p.price > 1000.0)
    ));
    assert!(bids(&spx).is_empty(), "an index has no bid");
    let eur = collect_bids(&client, &Contract::forex("EUR", "USD").build(), 2).await;
    assert!(
        bids(&eur)
            .iter()
            .all(|(p, size)| *p > 0.5 && *p < 2.0 && *size >= 1_000_000.0)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn snapshot_sends_current_values_then_snapshot_end() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut sub = client
        .market_data(&Contract::stock("MSFT").build())
        .snapshot()
        .subscribe()
        .await
        .unwrap();
    let ticks = ticks_until(&mut sub, |seen| {
        matches!(seen.last(), Some(TickTypes::SnapshotEnd))
    })
    .await;
    for wanted in [TickType::Bid, TickType::Ask, TickType::Last] {
        assert!(
            ticks
                .iter()
                .any(|t| matches!(t, TickTypes::PriceSize(p) if p.price_tick_type == wanted)),
            "{wanted:?}"
        );
    }
    for wanted in [
        TickType::Close,
        TickType::Open,
        TickType::High,
        TickType::Low,
    ] {
        assert!(
            ticks
                .iter()
                .any(|t| matches!(t, TickTypes::Price(p) if p.tick_type == wanted)),
            "{wanted:?}"
        );
    }
    assert!(ticks.iter().any(
        |t| matches!(t, TickTypes::Size(s) if s.tick_type == TickType::Volume && s.size > 0.0)
    ));
    let stats = sim.control().stats();
    assert_eq!(
        stats.active_market_data_subscriptions, 0,
        "a snapshot holds no line"
    );
    assert_eq!(stats.market_data_requests, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn cancels_release_subscriptions_and_unknown_cancels_are_harmless() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut subs = Vec::new();
    for symbol in ["AAPL", "MSFT", "NVDA"] {
        let sub = streaming_stock(&client, symbol).await;
        subs.push(sub);
    }
    assert_eq!(sim.control().stats().active_market_data_subscriptions, 3);
    assert_eq!(sim.control().stats().active_instruments, 3);
    subs.pop().unwrap().cancel().await;
    eventually("two subscriptions", || {
        sim.control().stats().active_market_data_subscriptions == 2
    })
    .await;
    // A rejected request is still cancelled by the client (§4.3); the gateway shrugs.
    let mut bad = subscribe_stock(&client, "NOSUCH").await;
    assert_eq!(notice_code(&first_error(&mut bad).await), 200);
    drop(bad);
    drop(subs);
    eventually("no subscriptions", || {
        sim.control().stats().active_market_data_subscriptions == 0
    })
    .await;
    eventually("no running producers", || {
        sim.control().stats().active_instruments == 0
    })
    .await;
    let stats = sim.control().stats();
    assert!(stats.requests_by_type["CancelMarketData"] >= 3);
    assert_eq!(stats.errors_sent[&200], 1);
    // Still serving after the stray cancel.
    assert!(client.server_time().await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn delayed_type_uses_delayed_tick_ids() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    switch_type(&client, MarketDataType::Delayed).await;
    let ticks = collect_bids(&client, &Contract::stock("MSFT").build(), 2).await;
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::MarketDataType(MarketDataType::Delayed)))
    );
    assert!(ticks.iter().any(
        |t| matches!(t, TickTypes::PriceSize(p) if p.price_tick_type == TickType::DelayedBid)
    ));
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::Price(p) if p.tick_type == TickType::DelayedClose))
    );
    assert!(ticks.iter().any(
        |t| matches!(t, TickTypes::String(s) if s.tick_type == TickType::DelayedLastTimestamp)
    ));
    let live = [
        TickType::Bid,
        TickType::Ask,
        TickType::Last,
        TickType::Close,
    ];
    assert!(!ticks.iter().any(|t| match t {
        TickTypes::PriceSize(p) => live.contains(&p.price_tick_type),
        TickTypes::Price(p) => live.contains(&p.tick_type),
        _ => false,
    }));
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_live_permission_gives_354_or_delayed_data_with_10167() {
    let sim = start_with(|c| c.no_live_permission = vec!["TSLA".into()]).await;
    let client = connect(&sim, 1).await;
    let tsla = Contract::stock("TSLA").build();
    let mut live = client.market_data(&tsla).subscribe().await.unwrap();
    assert_eq!(notice_code(&first_error(&mut live).await), 354);

    switch_type(&client, MarketDataType::Delayed).await;
    let mut delayed = client.market_data(&tsla).subscribe().await.unwrap();
    let notice = tokio::time::timeout(WAIT, async {
        loop {
            match delayed.next().await.unwrap().unwrap() {
                SubscriptionItem::Notice(n) => return n,
                SubscriptionItem::Data(_) => continue,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(notice.code, 10167);
    let ticks = ticks_until(&mut delayed, |seen| !bids(seen).is_empty()).await;
    assert!(ticks.iter().any(
        |t| matches!(t, TickTypes::PriceSize(p) if p.price_tick_type == TickType::DelayedBid)
    ));

    // Granting the subscription at run time makes live requests work.
    sim.control().set_live_permission("TSLA", true);
    switch_type(&client, MarketDataType::Realtime).await;
    let ticks = collect_bids(&client, &tsla, 1).await;
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::PriceSize(p) if p.price_tick_type == TickType::Bid))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn line_budget_rejects_one_more_with_101() {
    let sim = start_with(|c| c.line_limit = 3).await;
    let client = connect(&sim, 1).await;
    let mut subs = Vec::new();
    for symbol in ["AAPL", "MSFT", "NVDA"] {
        let sub = streaming_stock(&client, symbol).await;
        subs.push(sub);
    }
    let mut fourth = subscribe_stock(&client, "AMZN").await;
    assert_eq!(notice_code(&first_error(&mut fourth).await), 101);
    // Snapshots hold no line, so they still work at the limit.
    assert!(
        !client
            .market_data(&Contract::stock("AMZN").build())
            .snapshot_once(WAIT)
            .await
            .unwrap()
            .is_empty()
    );
    sim.control().set_line_limit(4);
    let _now_fits = streaming_stock(&client, "AMZN").await;
    assert_eq!(sim.control().stats().active_market_data_subscriptions, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn one_producer_feeds_every_subscriber_of_an_instrument() {
    let sim = start().await;
    let (a, b) = (connect(&sim, 1).await, connect(&sim, 2).await);
    let nvda = Contract::stock("NVDA").build();
    let mut sub_a = a.market_data(&nvda).subscribe().await.unwrap();
    let mut sub_b = b.market_data(&nvda).subscribe().await.unwrap();
    let from_b = ticks_until(&mut sub_b, |seen| bids(seen).len() >= 6).await;
    let from_a = ticks_until(&mut sub_a, |seen| bids(seen).len() >= 12).await;
    let stats = sim.control().stats();
    assert_eq!(
        (
            stats.active_market_data_subscriptions,
            stats.active_instruments
        ),
        (2, 1)
    );
    // Past b's opening values, b's updates are a window of a's: the same shared frames.
    let (ba, bb) = (bids(&from_a), bids(&from_b));
    let window = &bb[1..];
    assert!(
        ba.windows(window.len()).any(|w| w == window),
        "a: {ba:?}\nb: {bb:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_series() {
    async fn series(seed: u64) -> Vec<(f64, f64)> {
        let sim = start_with(|c| c.seed = seed).await;
        let client = connect(&sim, 1).await;
        let ticks = collect_bids(&client, &Contract::stock("META").build(), 8).await;
        sim.shutdown().await;
        bids(&ticks)[..8].to_vec()
    }
    let (first, again, other) = (series(42).await, series(42).await, series(43).await);
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[tokio::test]
async fn unknown_generic_tick_codes_are_rejected_with_321() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut sub = client
        .market_data(&Contract::stock("AAPL").build())
        .generic_ticks(&["100", "999"])
        .subscribe()
        .await
        .unwrap();
    assert_eq!(notice_code(&first_error(&mut sub).await), 321);
    sim.shutdown().await;
}

#[tokio::test]
async fn frozen_type_is_announced_with_live_tick_ids() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    switch_type(&client, MarketDataType::Frozen).await;
    let ticks = collect_bids(&client, &Contract::stock("XOM").build(), 1).await;
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::MarketDataType(MarketDataType::Frozen)))
    );
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::PriceSize(p) if p.price_tick_type == TickType::Bid))
    );
    sim.shutdown().await;
}
