//! Historical bars, head timestamps and real-time bars through the unmodified `ibapi`
//! client: the frames parse, the bars follow the seeded walk, live and historical bars
//! agree, IB's validation and pacing errors come as IB sends them.

use ibapi::market_data::TradingHours;
use ibapi::market_data::historical::{BarSize, BarTimestamp, Duration as IbDuration, WhatToShow};
use ibapi::market_data::realtime::WhatToShow as RealtimeWhat;
use ibapi::prelude::*;
use time::OffsetDateTime;

use crate::common::*;

fn an_hour_ago() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc().unix_timestamp() - 3600;
    OffsetDateTime::from_unix_timestamp(t - t.rem_euclid(60)).unwrap()
}

fn code_of(e: &ibapi::Error) -> i32 {
    match e {
        ibapi::Error::Notice(n) => n.code,
        other => panic!("not an IB error: {other:?}"),
    }
}

async fn minute_bars(
    client: &Client,
    end: OffsetDateTime,
) -> Result<ibapi::market_data::historical::HistoricalData, ibapi::Error> {
    let contract = Contract::stock("AAPL").build();
    client
        .historical_data(&contract, BarSize::Min)
        .what_to_show(WhatToShow::Trades)
        .duration(IbDuration::seconds(1800))
        .ending(end)
        .fetch()
        .await
}

#[tokio::test]
async fn historical_bars_parse_and_repeat_for_every_client() {
    let sim = start().await;
    let (a, b) = (connect(&sim, 1).await, connect(&sim, 2).await);
    let end = an_hour_ago();
    let first = minute_bars(&a, end).await.unwrap();
    assert_eq!(first.bars.len(), 30);
    assert_eq!(first.end, end);
    for (i, bar) in first.bars.iter().enumerate() {
        let BarTimestamp::DateTime(t) = bar.date else {
            panic!("{:?}", bar.date)
        };
        assert_eq!(t, end - time::Duration::minutes(30 - i as i64));
        assert!(
            bar.low <= bar.open
                && bar.open <= bar.high
                && bar.low <= bar.close
                && bar.close <= bar.high
        );
        assert!(bar.volume > 0.0 && bar.count > 0);
        assert!(
            (bar.close / 230.0 - 1.0).abs() < 0.2,
            "near AAPL's price: {}",
            bar.close
        );
    }
    // Another connection (its own pacing) sees the same bars.
    let second = minute_bars(&b, end).await.unwrap();
    assert_eq!(first.bars, second.bars);
    assert_eq!(sim.control().stats().historical_requests, 2);

    // Daily bars are dated.
    let contract = Contract::stock("SPY").build();
    let daily = a
        .historical_data(&contract, BarSize::Day)
        .what_to_show(WhatToShow::MidPoint)
        .duration(IbDuration::days(10))
        .fetch()
        .await
        .unwrap();
    assert!(daily.bars.len() >= 9, "{}", daily.bars.len());
    assert!(
        daily
            .bars
            .iter()
            .all(|b| b.date.is_date() && b.volume < 0.0)
    );
}

#[tokio::test]
async fn an_identical_request_within_fifteen_seconds_is_a_pacing_violation() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let end = an_hour_ago();
    minute_bars(&client, end).await.unwrap();
    let refused = minute_bars(&client, end).await.unwrap_err();
    assert_eq!(code_of(&refused), 162);
    let stats = sim.control().stats();
    assert_eq!(stats.historical_pacing_violations, 1);
    assert_eq!(stats.historical_requests, 1);
}

#[tokio::test]
async fn bad_requests_get_ibs_errors() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let aapl = Contract::stock("AAPL").build();
    // Longer than IB serves for one-second bars.
    let too_long = client
        .historical_data(&aapl, BarSize::Sec)
        .duration(IbDuration::days(1))
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(code_of(&too_long), 162);
    let unknown = Contract::stock("NOSUCHSYM").build();
    let missing = client
        .head_timestamp(&unknown, WhatToShow::Trades, TradingHours::Extended)
        .await
        .unwrap_err();
    assert_eq!(code_of(&missing), 200);
    let fx = Contract::forex("EUR", "USD").build();
    let no_trades = client
        .head_timestamp(&fx, WhatToShow::Trades, TradingHours::Extended)
        .await
        .unwrap_err();
    assert_eq!(code_of(&no_trades), 162);
    assert_eq!(sim.control().stats().historical_pacing_violations, 0);
    // The session is still healthy.
    minute_bars(&client, an_hour_ago()).await.unwrap();
}

#[tokio::test]
async fn head_timestamp_lies_years_back() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let head = client
        .head_timestamp(
            &Contract::stock("MSFT").build(),
            WhatToShow::Trades,
            TradingHours::Regular,
        )
        .await
        .unwrap();
    assert!(head < OffsetDateTime::now_utc() - time::Duration::days(365));
}

#[tokio::test]
async fn realtime_bars_come_every_five_seconds_and_agree_with_history() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let aapl = Contract::stock("AAPL").build();
    let mut sub = client
        .realtime_bars(&aapl)
        .what_to_show(RealtimeWhat::Trades)
        .trading_hours(TradingHours::Extended)
        .subscribe()
        .await
        .unwrap();
    let first: ibapi::market_data::realtime::Bar = next_data(&mut sub).await;
    let second: ibapi::market_data::realtime::Bar = next_data(&mut sub).await;
    assert_eq!(second.date - first.date, time::Duration::seconds(5));
    assert_eq!(first.date.unix_timestamp() % 5, 0);
    let history = client
        .historical_data(&aapl, BarSize::Sec5)
        .what_to_show(WhatToShow::Trades)
        .duration(IbDuration::seconds(10))
        .ending(second.date + time::Duration::seconds(5))
        .fetch()
        .await
        .unwrap();
    // History from before the start of a watched instrument (a record exists).
    let before = minute_bars(&client, an_hour_ago()).await.unwrap();
    assert_eq!(before.bars.len(), 30);
    let live = [first, second];
    assert_eq!(history.bars.len(), 2);
    for (h, l) in history.bars.iter().zip(live.iter()) {
        assert_eq!(h.date, BarTimestamp::DateTime(l.date));
        assert_eq!(
            (h.open, h.high, h.low, h.close),
            (l.open, l.high, l.low, l.close)
        );
        assert_eq!((h.volume, h.count), (l.volume, l.count));
    }
}

#[tokio::test]
async fn hostile_bar_requests_get_errors_and_the_connection_goes_on() {
    use crate::raw::{self, Raw};
    use ibstream::proto::tws;
    let sim = start().await;
    let mut hostile = Raw::connect(sim.gateway_addr(), 2).await;
    let aapl = || {
        Some(tws::Contract {
            symbol: Some("AAPL".into()),
            sec_type: Some("STK".into()),
            exchange: Some("SMART".into()),
            currency: Some("USD".into()),
            ..Default::default()
        })
    };
    let history = |req_id: i32, end: &str, size: &str, duration: &str, what: &str| {
        tws::HistoricalDataRequest {
            req_id: Some(req_id),
            contract: aapl(),
            end_date_time: Some(end.into()),
            bar_size_setting: Some(size.into()),
            duration: Some(duration.into()),
            what_to_show: Some(what.into()),
            format_date: Some(2),
            ..Default::default()
        }
    };
    let requests = [
        history(1, "00000101 00:00:00 UTC", "1 day", "20 Y", "TRADES"),
        history(2, "99991231 23:59:59", "1 min", "1 D", "TRADES"),
        history(3, "yesterday", "1 min", "1 D", "TRADES"),
        history(4, "", "1 min", "2147483647 Y", "TRADES"),
        history(5, "", "", "1 D", "TRADES"),
        history(6, "", "1 min", "1 D", ""),
        history(7, "", "1 secs", "1 D", "MIDPOINT"),
        tws::HistoricalDataRequest {
            keep_up_to_date: Some(true),
            ..history(8, "", "1 min", "1800 S", "TRADES")
        },
        tws::HistoricalDataRequest {
            contract: Some(tws::Contract {
                con_id: Some(i32::MAX),
                ..Default::default()
            }),
            ..history(9, "", "1 min", "1800 S", "TRADES")
        },
    ];
    for r in &requests {
        hostile.send(20, r).await;
    }
    hostile
        .send(
            87,
            &tws::HeadTimestampRequest {
                req_id: Some(10),
                ..Default::default()
            },
        )
        .await;
    hostile
        .send(
            50,
            &tws::RealTimeBarsRequest {
                req_id: Some(11),
                contract: aapl(),
                bar_size: Some(i32::MIN),
                what_to_show: Some("BID_ASK".into()),
                ..Default::default()
            },
        )
        .await;
    // Not protobuf at all.
    for id in [20i32, 50, 87, 25, 51, 90] {
        let mut frame = (4u32 + 3).to_be_bytes().to_vec();
        frame.extend_from_slice(&(id + 200).to_be_bytes());
        frame.extend_from_slice(&[0xff, 0xff, 0xff]);
        hostile.send_bytes(&frame).await;
    }
    hostile
        .send(raw::REQ_CURRENT_TIME, &tws::EmptyRequest {})
        .await;
    let frames = hostile
        .frames_for(std::time::Duration::from_millis(500))
        .await;
    assert!(
        frames.iter().any(|f| f.id == raw::CURRENT_TIME),
        "the connection keeps serving"
    );
    let errors: Vec<i32> = frames
        .iter()
        .filter(|f| f.id == raw::ERROR)
        .map(|f| raw::error(f).id.unwrap_or(-1))
        .collect();
    // An end in the future is now (as IB takes it): request 2 gets bars.
    assert!(
        frames.iter().any(|f| f.id == 17),
        "request 2 answered with bars"
    );
    for id in (1..=11).filter(|id| *id != 2) {
        assert!(
            errors.contains(&id),
            "no error for request {id}: {errors:?}"
        );
    }
    assert_eq!(sim.control().stats().connections, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn realtime_bars_are_the_trades_of_their_five_seconds() {
    use ibapi::contracts::tick_types::TickType;
    use ibapi::market_data::realtime::TickTypes;
    let sim = start().await;
    let client = std::sync::Arc::new(connect(&sim, 1).await);
    let aapl = Contract::stock("AAPL").build();
    let mut ticks = client.market_data(&aapl).subscribe().await.unwrap();
    // Trades as the ticks tell them: the price (LAST), then its time (LAST_TIMESTAMP).
    let trades = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i64, f64)>::new()));
    let seen = trades.clone();
    let reader = tokio::spawn(async move {
        let mut price = None;
        let mut first = true;
        while let Some(Ok(item)) = ticks.next().await {
            match item {
                SubscriptionItem::Data(TickTypes::PriceSize(p))
                    if p.price_tick_type == TickType::Last =>
                {
                    price = Some(p.price);
                }
                SubscriptionItem::Data(TickTypes::String(s))
                    if s.tick_type == TickType::LastTimestamp =>
                {
                    // The snapshot's last trade predates the subscription.
                    if let (Some(p), false) = (price.take(), first) {
                        seen.lock().unwrap().push((s.value.parse().unwrap(), p));
                    }
                    first = false;
                }
                _ => {}
            }
        }
    });
    let mut bars = client
        .realtime_bars(&aapl)
        .what_to_show(RealtimeWhat::Trades)
        .trading_hours(TradingHours::Extended)
        .subscribe()
        .await
        .unwrap();
    let mut live = Vec::new();
    for _ in 0..3 {
        let bar: ibapi::market_data::realtime::Bar = next_data(&mut bars).await;
        live.push(bar);
    }
    // The ticks of the last bar's seconds came before it on the same socket.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    reader.abort();
    let trades = trades.lock().unwrap().clone();
    // The first bar may have begun before the tick subscription.
    for bar in &live[1..] {
        let t = bar.date.unix_timestamp();
        let prices: Vec<f64> = trades
            .iter()
            .filter(|(s, _)| *s >= t && *s < t + 5)
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(
            prices.len() as i32,
            bar.count,
            "one trade per count: {bar:?} {prices:?}"
        );
        if let (Some(first), Some(last)) = (prices.first(), prices.last()) {
            let high = prices.iter().copied().fold(f64::MIN, f64::max);
            let low = prices.iter().copied().fold(f64::MAX, f64::min);
            assert_eq!(
                (bar.open, bar.high, bar.low, bar.close),
                (*first, high, low, *last),
                "{bar:?} {prices:?}"
            );
        }
    }
}
