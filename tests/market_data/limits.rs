//! Line budget, message rate, request size.

use std::collections::HashSet;
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn instruments_beyond_the_line_budget_report_line_limit_and_leave_others_alone() {
    let mut s = settings();
    s.fanout.line_budget = 3;
    let h = start_with(|_| {}, s).await;
    let mut client = h.client().await;
    let mut held = quoting(&mut client, &["AAPL", "MSFT"]).await;
    let mut over = stream(
        &mut client,
        vec![stock("SPY"), stock("QQQ")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    // SPY takes the one free line; QQQ reports LINE_LIMIT, and IB is not asked for it.
    let refused = first_status(&mut over, pb::InstrumentStatusKind::LineLimit).await;
    assert_eq!(
        (refused.index, refused.code),
        (1, Code::ResourceExhausted as i32)
    );
    assert!(
        refused.message.contains("3 of 3 lines in use, 0 free"),
        "{}",
        refused.message
    );
    wait_for_stats(&h.sim, "SPY subscribed", |st| st.market_data_requests == 3).await;
    let stats = h.sim.control().stats();
    assert_eq!(stats.market_data_requests, 3, "IB was not asked for QQQ");
    // The first stream goes on.
    let before = read_until(&mut held, |m| quote_of(m).is_some()).await;
    assert!(!before.is_empty());

    let err = client
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: (0..600).map(|_| stock("AAPL")).collect(),
            data_policy: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("at most 500 per request"),
        "{}",
        err.message()
    );
}

/// Up to 300 listed options near the money of a few underlyings.
async fn three_hundred_options(h: &Harness) -> Vec<pb::Instrument> {
    let mut client = h.client().await;
    let mut out = Vec::new();
    for symbol in ["SPY", "QQQ", "AAPL", "MSFT"] {
        let chain = client
            .get_option_chain(pb::GetOptionChainRequest {
                underlying: Some(stock(symbol)),
            })
            .await
            .unwrap()
            .into_inner();
        let spot = h.sim.control().spot(symbol).unwrap();
        for expiry in chain.expirations.iter().take(4) {
            for strike in chain
                .strikes
                .iter()
                .filter(|k| (**k / spot - 1.0).abs() < 0.08)
            {
                for right in [pb::OptionRight::Call, pb::OptionRight::Put] {
                    if out.len() < 300 {
                        out.push(option(symbol, expiry, *strike, right));
                    }
                }
            }
        }
    }
    assert_eq!(out.len(), 300);
    out
}

#[tokio::test]
async fn three_hundred_instruments_at_once_stay_within_the_message_rate() {
    let mut s = settings();
    s.fanout.line_budget = 400;
    let h = start_with(
        |c| {
            c.line_limit = 400;
            c.tick_interval = Duration::from_millis(200);
        },
        s,
    )
    .await;
    let instruments = three_hundred_options(&h).await;
    let mut client = h.client().await;
    let mut s = stream(&mut client, instruments, pb::DataPolicy::Unspecified).await;
    let mut quoted = HashSet::new();
    tokio::time::timeout(Duration::from_secs(90), async {
        while quoted.len() < 300 {
            let m = s.message().await.unwrap().unwrap();
            if let Some(st) = status_of(&m) {
                assert!(
                    st.kind == pb::InstrumentStatusKind::Subscribed as i32,
                    "every option resolves and subscribes: {st:?}"
                );
            }
            if quote_of(&m).is_some() {
                quoted.insert(m.index);
            }
        }
    })
    .await
    .expect("300 quoted instruments");
    let stats = h.sim.control().stats();
    eprintln!(
        "300 instruments: {} requests, peak {} msg/s, errors {:?}",
        stats.market_data_requests, stats.peak_messages_per_second, stats.errors_sent
    );
    assert!(stats.market_data_requests >= 300, "{stats:?}");
    assert!(
        stats.peak_messages_per_second <= 50,
        "peak {} msg/s",
        stats.peak_messages_per_second
    );
    assert_eq!(
        stats.errors_sent.get(&100),
        None,
        "no pacing violation: {stats:?}"
    );
    // 300 requests at under 50/s wait seconds in the rate limiter, and the metric says so.
    let delayed = h.metrics.rate_limiter_delay.get();
    assert!(delayed > 1.0, "rate-limiter delay {delayed} s");
    // Releasing them all at once sends 300 cancels, paced as well.
    drop(s);
    all_cancelled_within(&h, 50).await;
}

/// Waits until every subscription is cancelled, checks the gateway never saw more than
/// `rate` messages in a second nor refused one for pacing, and returns its statistics.
async fn all_cancelled_within(h: &Harness, rate: u32) -> ibstream::sim::SimStats {
    wait_for_stats(&h.sim, "all cancelled", |st| {
        st.active_market_data_subscriptions == 0
    })
    .await;
    let stats = h.sim.control().stats();
    assert!(
        stats.peak_messages_per_second <= rate,
        "peak {} msg/s: {stats:?}",
        stats.peak_messages_per_second
    );
    assert_eq!(stats.errors_sent.get(&100), None, "no pacing violation");
    stats
}

#[tokio::test]
async fn streams_per_key_are_limited() {
    let h = start().await;
    let mut client = h.client().await;
    // The test server allows 64 streams per key (the default); anonymous callers share one.
    let mut open = Vec::new();
    for _ in 0..64 {
        open.push(
            stream(
                &mut client,
                vec![stock("AAPL")],
                pb::DataPolicy::Unspecified,
            )
            .await,
        );
    }
    let err = client
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: vec![stock("AAPL")],
            data_policy: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("open streams"), "{}", err.message());
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _again = quoting(&mut client, &["AAPL"]).await;
}

#[tokio::test]
async fn cancels_and_look_ups_wait_for_the_same_pacer() {
    // A gateway that enforces a budget of 10 messages a second, and a profile that
    // says so: every request, cancel, look-up and heartbeat must share it.
    const RATE: u32 = 10;
    let mut s = settings();
    s.message_rate = RATE;
    let h = start_with(|c| c.max_messages_per_second = RATE, s).await;
    let mut client = h.client().await;
    let symbols = ["AAPL", "MSFT", "SPY", "QQQ", "IWM", "NVDA"];
    let quotes = all_quoting(&mut client, &symbols).await;
    // Unknown symbols: each look-up is a request IB refuses, then a cancel; all at once.
    let look_ups = (0..6).map(|i| {
        let mut c = client.clone();
        async move {
            c.resolve_contract(pb::ResolveContractRequest {
                instrument: Some(stock(&format!("NOSUCH{i}"))),
            })
            .await
        }
    });
    for outcome in futures::future::join_all(look_ups).await {
        assert_eq!(outcome.unwrap_err().code(), tonic::Code::NotFound);
    }
    // Releasing every instrument at once sends its cancels after the linger.
    drop(quotes);
    let stats = all_cancelled_within(&h, RATE).await;
    assert_eq!(
        stats.requests_by_type.get("CancelContractData"),
        Some(&6),
        "each refused look-up was cancelled: {stats:?}"
    );
}
