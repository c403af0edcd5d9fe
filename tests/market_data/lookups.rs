//! Many look-ups at once stay within IB's message budget and do not starve the
//! subscriptions other clients already have.

use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use tokio::time::Instant;

use crate::harness::*;

/// Unknown symbols one client asks for in one stream (the per-request maximum).
const UNKNOWN: usize = 500;

/// Longest pause between another client's quotes that still counts as flowing: the
/// simulator ticks every 50 ms, so a pause of seconds means the subscription was
/// starved or lost.
const MAX_QUOTE_GAP: Duration = Duration::from_secs(2);

/// Client A streams NVDA; client B opens one stream of 500 unknown symbols. Every
/// look-up waits for the one pacer (its cancel too), so the gateway never sees more
/// than the profile's rate, never answers error 100 and never drops the session; A's
/// quotes keep coming while B's look-ups run.
#[tokio::test]
async fn five_hundred_unknown_symbols_neither_break_the_budget_nor_starve_a_stream() {
    let h = start().await;
    let rate = settings().message_rate;
    let mut a_client = h.client().await;
    let mut a = quoting(&mut a_client, &["NVDA"]).await;
    let accepted_before = h.sim.control().stats().connections_accepted;

    let mut b_client = h.client().await;
    let unknown = (0..UNKNOWN).map(|i| stock(&format!("NOSUCH{i}"))).collect();
    let mut b = stream(&mut b_client, unknown, pb::DataPolicy::Unspecified).await;
    let started = Instant::now();
    let b_done = tokio::spawn(async move {
        let mut not_found = 0;
        while not_found < UNKNOWN {
            let m = b
                .message()
                .await
                .expect("stream healthy")
                .expect("stream open");
            if status_of(&m).is_some_and(|st| st.kind == pb::InstrumentStatusKind::NotFound as i32)
            {
                not_found += 1;
            }
        }
    });

    // A's quotes while B's look-ups run.
    let mut last = Instant::now();
    let mut widest = Duration::ZERO;
    let mut quotes = 0u32;
    tokio::time::timeout(Duration::from_secs(120), async {
        while !b_done.is_finished() {
            let m = next(&mut a).await;
            if quote_of(&m).is_some_and(|q| !q.stale) {
                widest = widest.max(last.elapsed());
                last = Instant::now();
                quotes += 1;
            }
        }
    })
    .await
    .expect("B's look-ups finish");
    b_done.await.expect("B read every answer");
    let took = started.elapsed();

    let stats = h.sim.control().stats();
    println!(
        "{UNKNOWN} look-ups took {took:?}; peak {} msg/s (rate {rate}); A's widest quote gap {widest:?} over {quotes} quotes",
        stats.peak_messages_per_second
    );
    assert!(
        stats.peak_messages_per_second <= rate,
        "peak {} msg/s over the rate {rate}",
        stats.peak_messages_per_second
    );
    assert_eq!(
        stats.errors_sent.get(&100).copied().unwrap_or(0),
        0,
        "{stats:?}"
    );
    assert_eq!(
        stats.connections_accepted, accepted_before,
        "the session was dropped: {stats:?}"
    );
    assert_eq!(stats.connections, 1);
    assert!(
        widest <= MAX_QUOTE_GAP,
        "A's NVDA had no fresh quote for {widest:?}"
    );
}

/// Every stock and fund the simulator lists.
const WATCHLIST: [&str; 25] = [
    "AAPL", "AMD", "AMZN", "BAC", "DIA", "DIS", "GLD", "GOOGL", "INTC", "IWM", "JPM", "KO", "META",
    "MSFT", "NFLX", "NVDA", "PFE", "QQQ", "SHOP", "SPY", "TLT", "TSLA", "WMT", "XLF", "XOM",
];

/// Fifty services start together, each on its own connection, each streaming the same
/// twenty-five symbols none of which is cached: IB sees one look-up and one
/// subscription per symbol, not one per stream, and every stream gets all its quotes.
#[tokio::test]
async fn fifty_streams_starting_together_cost_one_look_up_per_symbol() {
    const STREAMS: usize = 50;
    let h = start().await;
    let mut clients = Vec::new();
    for _ in 0..STREAMS {
        clients.push(h.client().await);
    }
    let started = Instant::now();
    let opened = clients.into_iter().map(|mut client| async move {
        all_quoting(&mut client, &WATCHLIST).await;
    });
    futures::future::join_all(opened).await;
    let took = started.elapsed();

    let stats = h.sim.control().stats();
    let count = |name: &str| stats.requests_by_type.get(name).copied().unwrap_or(0);
    println!(
        "{STREAMS} streams × {} symbols all quoting after {took:?}",
        WATCHLIST.len()
    );
    assert_eq!(count("RequestContractData"), WATCHLIST.len() as u64);
    assert_eq!(count("RequestMarketData"), WATCHLIST.len() as u64);
}
