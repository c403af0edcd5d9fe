//! Historical bars through ibstream against the simulated gateway: cached across a
//! restart, shared and paced so that many clients never break IB's pacing rules, and
//! bad requests refused naming the field.

use futures::future::join_all;
use ibstream::ib::historical_pacer::HistoricalRules;
use ibstream::proto::ibstream::v1 as pb;

use crate::harness::{self, Harness, WAIT, stock};

const SYMBOLS: [&str; 5] = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"];

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn minute_bars(symbol: &str, end: i64) -> pb::GetHistoricalBarsRequest {
    pb::GetHistoricalBarsRequest {
        instrument: Some(stock(symbol)),
        bar_size: "1m".into(),
        duration: "1800 S".into(),
        end: Some(ts(end)),
        wait_for_pacing: true,
        ..Default::default()
    }
}

fn historical_requests(h: &Harness) -> u64 {
    h.sim.control().stats().historical_requests
}

/// An hour ago, on a whole minute: before the simulator started, so the seeded path.
fn an_hour_ago() -> i64 {
    (now() - 3600).div_euclid(60) * 60
}

#[tokio::test]
async fn a_repeated_request_after_a_restart_is_served_from_the_cache() {
    let mut h = harness::start().await;
    let mut client = h.client().await;
    let end = an_hour_ago();
    let first = client
        .get_historical_bars(minute_bars("AAPL", end))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.from_cache);
    assert_eq!(first.bars.len(), 30, "thirty whole minutes");
    for (i, bar) in first.bars.iter().enumerate() {
        let t = bar.time.as_ref().unwrap().seconds;
        assert_eq!(t, end - 1800 + 60 * i as i64, "bars in order, one a minute");
        assert!(bar.low <= bar.open.min(bar.close) && bar.high >= bar.open.max(bar.close));
        assert!(bar.volume > 0.0);
    }
    assert_eq!(historical_requests(&h), 1);

    let again = client
        .get_historical_bars(minute_bars("AAPL", end))
        .await
        .unwrap()
        .into_inner();
    assert!(again.from_cache);
    assert_eq!(again.bars, first.bars);

    h.restart().await;
    let mut client = h.client().await;
    let after = client
        .get_historical_bars(minute_bars("AAPL", end))
        .await
        .unwrap()
        .into_inner();
    assert!(after.from_cache, "the store answers after a restart");
    assert_eq!(after.bars, first.bars);
    assert_eq!(historical_requests(&h), 1, "IB was not asked again");

    // A part of the cached window is served from it too.
    let mut inner = minute_bars("AAPL", end - 600);
    inner.duration = "600 S".into();
    let part = client
        .get_historical_bars(inner)
        .await
        .unwrap()
        .into_inner();
    assert!(part.from_cache);
    assert_eq!(part.bars[..], first.bars[10..20]);
    assert_eq!(historical_requests(&h), 1);
}

#[tokio::test]
async fn two_hundred_requests_from_twenty_clients_never_break_ibs_pacing() {
    // IB's rules with every window shrunk alike on both sides: 15 s → 150 ms,
    // 2 s → 20 ms, 10 min → 6 s; the counts (6 per contract, 60 in all) are IB's.
    const SCALE: f64 = 0.01;
    let mut settings = harness::settings();
    settings.historical_pacing_scale = SCALE;
    let h = harness::start_with(
        |c| c.historical_rules = HistoricalRules::scaled(SCALE),
        settings,
    )
    .await;
    let base = an_hour_ago();
    // 70 distinct requests (14 per contract), each asked by two or three of the 200.
    let distinct = 70;
    let clients = join_all((0..20).map(|_| h.client())).await;
    let started = tokio::time::Instant::now();
    let calls = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| async move {
            let mut answers = Vec::new();
            for i in 0..10 {
                let n = (c * 10 + i) % distinct;
                let req = minute_bars(SYMBOLS[n % SYMBOLS.len()], base - 60 * n as i64);
                answers.push(client.get_historical_bars(req).await);
            }
            answers
        });
    let answers = tokio::time::timeout(WAIT * 3, join_all(calls))
        .await
        .expect("every request is answered");
    let took = started.elapsed();
    for answer in answers.into_iter().flatten() {
        let bars = answer.expect("paced, not refused").into_inner().bars;
        assert_eq!(bars.len(), 30);
    }
    let stats = h.sim.control().stats();
    assert_eq!(stats.historical_pacing_violations, 0, "no error 162");
    assert_eq!(stats.errors_sent.get(&162), None);
    assert_eq!(
        stats.historical_requests, distinct as u64,
        "one IB request each"
    );
    // The rules allow 60 in a window: the 61st waits a full window at least, and the
    // pacer adds no more than its margin on top (checked on a paused clock in the
    // pacer's own tests).
    let rules = HistoricalRules::scaled(SCALE);
    assert!(
        took >= rules.window,
        "{took:?}: the ten-minute rule was kept"
    );
}

#[tokio::test]
async fn a_full_window_is_refused_with_when_to_retry() {
    let h = harness::start().await;
    let mut client = h.client().await;
    let mut req = minute_bars("MSFT", an_hour_ago());
    req.wait_for_pacing = false;
    for i in 0..6 {
        let mut r = req.clone();
        r.end = Some(ts(an_hour_ago() - 60 * i));
        client.get_historical_bars(r).await.unwrap();
    }
    // A seventh request for one contract within two seconds.
    req.end = Some(ts(an_hour_ago() - 600));
    let refused = client.get_historical_bars(req).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("retry in"),
        "{}",
        refused.message()
    );
    let pushback: u64 = refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("pushback metadata");
    assert!(pushback > 0 && pushback <= 2_500, "{pushback} ms");
    assert_eq!(h.sim.control().stats().historical_pacing_violations, 0);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let h = harness::start().await;
    let mut client = h.client().await;
    let base = minute_bars("AAPL", an_hour_ago());
    let cases: Vec<(&str, pb::GetHistoricalBarsRequest)> = vec![
        (
            "bar_size",
            pb::GetHistoricalBarsRequest {
                bar_size: "7m".into(),
                ..base.clone()
            },
        ),
        (
            "duration",
            pb::GetHistoricalBarsRequest {
                duration: "2 D".into(),
                ..base.clone()
            },
        ),
        (
            "duration",
            pb::GetHistoricalBarsRequest {
                duration: "soon".into(),
                ..base.clone()
            },
        ),
        (
            "end",
            pb::GetHistoricalBarsRequest {
                end: Some(ts(now() + 3600)),
                ..base.clone()
            },
        ),
        (
            "start",
            pb::GetHistoricalBarsRequest {
                duration: String::new(),
                start: Some(ts(an_hour_ago() + 60)),
                ..base.clone()
            },
        ),
        (
            "what_to_show",
            pb::GetHistoricalBarsRequest {
                what_to_show: 99,
                ..base.clone()
            },
        ),
        (
            "instrument",
            pb::GetHistoricalBarsRequest {
                instrument: None,
                ..base.clone()
            },
        ),
    ];
    for (field, req) in cases {
        let status = client.get_historical_bars(req).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{field}: {status:?}"
        );
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    assert_eq!(historical_requests(&h), 0, "nothing reached IB");
}

#[tokio::test]
async fn head_timestamp_is_asked_once() {
    let h = harness::start().await;
    let mut client = h.client().await;
    let req = pb::GetHeadTimestampRequest {
        instrument: Some(stock("SPY")),
        wait_for_pacing: true,
        ..Default::default()
    };
    let head = client
        .get_head_timestamp(req.clone())
        .await
        .unwrap()
        .into_inner();
    let head = head.head_timestamp.unwrap().seconds;
    assert!(head < now() - 365 * 86_400, "years of data");
    let again = client.get_head_timestamp(req).await.unwrap().into_inner();
    assert_eq!(again.head_timestamp.unwrap().seconds, head);
    assert_eq!(historical_requests(&h), 1);
}

type BarStream = tonic::Streaming<pb::StreamBarsResponse>;

async fn stream_bars(h: &Harness, size: &str, history_bars: u32) -> BarStream {
    let mut client = h.client().await;
    client
        .stream_bars(pb::StreamBarsRequest {
            instrument: Some(stock("AAPL")),
            bar_size: size.into(),
            history_bars,
            ..Default::default()
        })
        .await
        .expect("stream opens")
        .into_inner()
}

async fn next_event(s: &mut BarStream) -> pb::stream_bars_response::Event {
    tokio::time::timeout(WAIT, s.message())
        .await
        .expect("an event in time")
        .expect("stream healthy")
        .expect("stream open")
        .event
        .expect("an event")
}

/// The next whole bar, skipping forming bars; statuses other than `allowed` fail.
async fn next_bar(s: &mut BarStream, statuses: &mut Vec<i32>) -> pb::Bar {
    use pb::stream_bars_response::Event;
    loop {
        match next_event(s).await {
            Event::Bar(b) => return b,
            Event::Forming(_) => {}
            Event::Status(st) => statuses.push(st.kind),
        }
    }
}

fn start(b: &pb::Bar) -> i64 {
    b.time.as_ref().unwrap().seconds
}

#[tokio::test]
async fn live_bars_agree_with_the_quotes_and_share_one_ib_subscription() {
    use pb::stream_quotes_response::Event as Q;
    let h = harness::start().await;
    let mut quotes_client = h.client().await;
    let mut quotes = harness::stream(
        &mut quotes_client,
        vec![stock("AAPL")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    let mut fives = stream_bars(&h, "5s", 3).await;
    let mut others = vec![
        stream_bars(&h, "5s", 0).await,
        stream_bars(&h, "5s", 0).await,
    ];
    let mut fifteens = stream_bars(&h, "15s", 0).await;
    let mut statuses = Vec::new();
    // The history first: three whole bars before the current period, in order.
    let history: Vec<pb::Bar> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(next_bar(&mut fives, &mut statuses).await);
        }
        v
    };
    assert_eq!(start(&history[1]), start(&history[0]) + 5);
    assert_eq!(start(&history[2]), start(&history[1]) + 5);
    // The first trade of each second, as the quote stream shows it: IB sends a trade's
    // price before its time, so a quote whose time just changed carries the first trade
    // of the new second (later trades of a second may show the time before theirs).
    let trades = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i64, f64)>::new()));
    let seen = trades.clone();
    let reader = tokio::spawn(async move {
        let mut stamped = None;
        while let Ok(Some(m)) = quotes.message().await {
            if let Some(Q::Quote(q)) = m.event
                && let (Some(last), Some(t)) = (q.last, q.last_trade_time)
            {
                // The snapshot's trade predates the stream: only changes count.
                if stamped.is_some_and(|s| s != t.seconds) {
                    seen.lock().unwrap().push((t.seconds, last));
                }
                stamped = Some(t.seconds);
            }
        }
    });
    let mut live = Vec::new();
    while live.len() < 4 {
        let bar = next_bar(&mut fives, &mut statuses).await;
        if start(&bar) > start(&history[2]) {
            live.push(bar);
        }
    }
    // A whole 15-second bar is the 5-second bars of its period.
    let fifteen = next_bar(&mut fifteens, &mut statuses).await;
    let mut parts = Vec::new();
    while parts.len() < 3 {
        let bar = next_bar(&mut fives, &mut statuses).await;
        if start(&bar) >= start(&fifteen) {
            parts.push(bar);
        }
        if start(&bar) + 5 >= start(&fifteen) + 15 {
            break;
        }
    }
    let all: Vec<pb::Bar> = live.iter().chain(parts.iter()).cloned().collect();
    let inside: Vec<&pb::Bar> = all
        .iter()
        .filter(|b| start(b) >= start(&fifteen) && start(b) < start(&fifteen) + 15)
        .collect();
    if inside.len() == 3 {
        assert_eq!(fifteen.open, inside[0].open);
        assert_eq!(fifteen.close, inside[2].close);
        let high = inside.iter().map(|b| b.high).fold(f64::MIN, f64::max);
        let low = inside.iter().map(|b| b.low).fold(f64::MAX, f64::min);
        assert_eq!((fifteen.high, fifteen.low), (high, low));
        assert_eq!(fifteen.volume, inside.iter().map(|b| b.volume).sum::<f64>());
    }
    reader.abort();
    let trades = trades.lock().unwrap().clone();
    // A quote may show a trade before its time (IB sends the price first, and a reader
    // may skip the update between): each trade the quotes show lies in the range of the
    // bar of its second or of a later one. (The simulator's own tests compare real-time
    // bars with the trades exactly, tick by tick.)
    let mut checked = 0;
    for (t, p) in &trades {
        let from_here: Vec<&pb::Bar> = live.iter().filter(|b| start(b) + 5 > *t).collect();
        if from_here.len() < live.len() && !from_here.is_empty() {
            assert!(
                from_here.iter().any(|b| b.low <= *p && *p <= b.high),
                "trade {p} at {t} in none of {from_here:?}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "the quote stream saw trades in the bars' periods"
    );
    // Three 5-second streams and a 15-second one: one IB subscription.
    let stats = h.sim.control().stats();
    assert_eq!(stats.requests_by_type.get("RequestRealTimeBars"), Some(&1));
    let mut client = h.client().await;
    let limits = client
        .list_subscriptions(pb::ListSubscriptionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    assert_eq!(
        limits.lines_in_use, 2,
        "the quote and the real-time bars hold a line each"
    );
    for other in &mut others {
        next_bar(other, &mut statuses).await;
    }
    assert!(
        statuses
            .iter()
            .all(|k| *k == pb::InstrumentStatusKind::Subscribed as i32)
    );
}

#[tokio::test]
async fn bars_resume_after_a_dropped_connection_with_no_hole() {
    let h = harness::start().await;
    let mut bars = stream_bars(&h, "5s", 0).await;
    let mut statuses = Vec::new();
    let mut seen = vec![next_bar(&mut bars, &mut statuses).await];
    assert_eq!(h.sim.control().drop_connections(), 1);
    while seen.len() < 5 || !statuses.contains(&(pb::InstrumentStatusKind::Resumed as i32)) {
        seen.push(next_bar(&mut bars, &mut statuses).await);
        assert!(seen.len() < 40, "resumed in time");
    }
    let kinds: Vec<i32> = statuses.clone();
    let stale = kinds
        .iter()
        .position(|k| *k == pb::InstrumentStatusKind::Stale as i32);
    let resumed = kinds
        .iter()
        .position(|k| *k == pb::InstrumentStatusKind::Resumed as i32);
    assert!(stale.is_some() && stale < resumed, "{kinds:?}");
    for pair in seen.windows(2) {
        assert_eq!(
            start(&pair[1]),
            start(&pair[0]) + 5,
            "no hole, no repeat: {seen:?}"
        );
    }
    assert_eq!(h.sim.control().stats().historical_pacing_violations, 0);
}
