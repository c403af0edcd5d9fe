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
