//! Sharing, snapshots, linger and conflation.

use std::collections::HashSet;
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;

use crate::harness::*;

const FIVE: [&str; 5] = ["AAPL", "MSFT", "SPY", "QQQ", "NVDA"];

#[tokio::test]
async fn twenty_streams_on_five_instruments_cost_five_ib_subscriptions() {
    let h = start().await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut client = h.client().await;
        let instruments = FIVE.iter().map(|s| stock(s)).collect();
        streams.push(stream(&mut client, instruments, pb::DataPolicy::Unspecified).await);
    }
    for s in &mut streams {
        let mut seen = HashSet::new();
        read_until(s, |m| {
            if let Some(q) = quote_of(m) {
                assert!(q.bid.is_some() || q.last.is_some() || q.close.is_some());
                seen.insert(m.index);
            }
            seen.len() == 5
        })
        .await;
    }
    let stats = h.sim.control().stats();
    assert_eq!(stats.market_data_requests, 5, "{stats:?}");
    assert_eq!(stats.active_market_data_subscriptions, 5);
    let listed = h
        .client()
        .await
        .list_subscriptions(pb::ListSubscriptionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.subscriptions.len(), 5);
    assert!(listed.subscriptions.iter().all(|s| s.stream_count == 20));
    let limits = listed.limits.unwrap();
    assert_eq!((limits.lines_in_use, limits.line_budget), (5, 100));
    assert_eq!(limits.streams_open, 20);
}

#[tokio::test]
async fn a_stream_joining_a_cached_instrument_gets_its_quote_at_once() {
    let h = start().await;
    let mut client = h.client().await;
    let mut first = stream(
        &mut client,
        vec![stock("AAPL")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    let mut seq = 0;
    read_until(&mut first, |m| {
        seq = quote_of(m).map_or(seq, |q| q.sequence);
        seq >= 3
    })
    .await;
    let mut late = stream(
        &mut client,
        vec![stock("AAPL")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    let status = next(&mut late).await;
    assert_eq!(
        status_of(&status).unwrap().kind,
        pb::InstrumentStatusKind::Subscribed as i32
    );
    let snapshot = next(&mut late).await;
    let q = quote_of(&snapshot).expect("the cached quote comes first");
    assert!(q.sequence >= 3, "cached, not a fresh subscription: {q:?}");
    assert_eq!(q.symbol, "AAPL");
    assert!(q.con_id > 0 && q.received_at.is_some());
    assert_eq!(
        q.requested_market_data_type,
        pb::MarketDataType::Live as i32
    );
    assert_eq!(h.sim.control().stats().market_data_requests, 1);
}

#[tokio::test]
async fn the_ib_subscription_is_released_after_the_linger() {
    let h = start().await;
    let mut client = h.client().await;
    let s = quoting(&mut client, &["AAPL", "MSFT"]).await;
    wait_for_stats(&h.sim, "two live subscriptions", |st| {
        st.active_market_data_subscriptions == 2
    })
    .await;
    drop(s);
    // Back within the linger: no new request.
    let again = quoting(&mut client, &["AAPL"]).await;
    wait_for_stats(&h.sim, "MSFT released after the linger", |st| {
        st.active_market_data_subscriptions == 1
    })
    .await;
    assert_eq!(h.sim.control().stats().market_data_requests, 2);
    drop(again);
    wait_for_stats(&h.sim, "all released", |st| {
        st.active_market_data_subscriptions == 0
    })
    .await;
    assert_eq!(
        h.sim
            .control()
            .stats()
            .requests_by_type
            .get("CancelMarketData"),
        Some(&2)
    );
}

/// Messages read from `s` within `d`.
async fn count_for(s: &mut QuoteStream, d: Duration) -> u64 {
    let mut n = 0u64;
    let _ = tokio::time::timeout(d, async {
        while let Ok(Some(_)) = s.message().await {
            n += 1;
        }
    })
    .await;
    n
}

/// Messages a stalled client finds waiting when it reads again: what the flow-control
/// window (64 KiB) and tonic's write buffer hold, never the backlog of the stall.
const BACKLOG_BOUND: usize = 2_000;

#[tokio::test]
async fn a_stalled_client_is_conflated_and_others_keep_their_rate() {
    let h = start_with(|c| c.tick_interval = Duration::from_millis(2), settings()).await;
    let instruments: Vec<_> = FIVE.iter().map(|s| stock(s)).collect();
    let mut slow_client = h.client().await;
    let mut fast_client = h.client().await;
    let mut slow = stream(
        &mut slow_client,
        instruments.clone(),
        pb::DataPolicy::Unspecified,
    )
    .await;
    let mut fast = stream(&mut fast_client, instruments, pb::DataPolicy::Unspecified).await;
    read_until(&mut slow, |m| quote_of(m).is_some()).await;

    let before = count_for(&mut fast, Duration::from_secs(2)).await;
    let conflated_before = h.metrics.conflated.get();
    let updates_before = h.metrics.updates_in.get();
    // The slow client stops reading for 10 s; the fast one keeps reading.
    let during = count_for(&mut fast, Duration::from_secs(10)).await;
    let updates_during = h.metrics.updates_in.get() - updates_before;
    assert!(
        during * 2 >= before * 5 / 2,
        "the fast client kept its pace: {before} in 2 s before, {during} in 10 s during"
    );

    // What the slow client finds: a bounded backlog, then the newest values with gaps.
    let resumed_at = std::time::SystemTime::now();
    let mut backlog = 0u64;
    let mut skipped = 0u64;
    let mut last_seq = std::collections::HashMap::new();
    read_until(&mut slow, |m| {
        let Some(q) = quote_of(m) else { return false };
        let received = q
            .received_at
            .map(|t| std::time::SystemTime::try_from(t).unwrap());
        if received.is_some_and(|r| r < resumed_at) {
            backlog += 1;
        }
        if let Some(prev) = last_seq.insert(m.index, q.sequence) {
            skipped += q.sequence.saturating_sub(prev + 1);
        }
        received.is_some_and(|r| r > resumed_at) && last_seq.len() == FIVE.len()
    })
    .await;
    eprintln!(
        "stall: fast stream {before} msgs in 2 s before, {during} in 10 s during; slow stream backlog {backlog}, skipped {skipped}; {updates_during} ticks in"
    );
    assert!(
        backlog < BACKLOG_BOUND as u64,
        "backlog {backlog} after a 10 s stall ({updates_during} ticks meanwhile)"
    );
    assert!(
        skipped > 10 * backlog.max(100),
        "the sequence shows {skipped} skipped updates against a backlog of {backlog}"
    );
    assert!(h.metrics.conflated.get() - conflated_before >= skipped);
}

#[tokio::test]
async fn get_quotes_answers_from_a_snapshot_or_the_cache() {
    let h = start().await;
    let mut client = h.client().await;
    let ask = |client: &mut ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            client
                .get_quotes(pb::GetQuotesRequest {
                    instruments: vec![stock("AAPL"), stock("SPY")],
                    data_policy: 0,
                })
                .await
                .unwrap()
                .into_inner()
                .quotes
        }
    };
    // Nobody streams them: one-off snapshots, no line held afterwards.
    let quotes = ask(&mut client).await;
    assert_eq!(quotes.len(), 2);
    assert_eq!(
        (quotes[0].symbol.as_str(), quotes[1].symbol.as_str()),
        ("AAPL", "SPY")
    );
    assert!(
        quotes
            .iter()
            .all(|q| q.bid.is_some() && q.ask.is_some() && q.received_at.is_some())
    );
    let stats = h.sim.control().stats();
    assert_eq!(stats.market_data_requests, 2);
    assert_eq!(stats.active_market_data_subscriptions, 0);
    // Streamed: answered from the cache without asking IB.
    let mut s = stream(
        &mut client,
        vec![stock("AAPL"), stock("SPY")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    until_quoted(&mut s, 2).await;
    let requests = h.sim.control().stats().market_data_requests;
    let cached = ask(&mut client).await;
    assert_eq!(cached.len(), 2);
    assert_eq!(
        h.sim.control().stats().market_data_requests,
        requests,
        "served from the cache"
    );
}

#[tokio::test]
async fn streams_end_with_unavailable_when_the_server_shuts_down() {
    let mut h = start().await;
    let mut client = h.client().await;
    let mut s = quoting(&mut client, &["AAPL"]).await;
    let server = h.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match s.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(e) => return Some(e.code()),
            }
        }
    })
    .await
    .expect("the stream ends");
    assert_eq!(end, Some(tonic::Code::Unavailable));
    shutdown.await.unwrap().expect("clean shutdown");
}
