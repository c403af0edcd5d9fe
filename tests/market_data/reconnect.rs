//! Streams survive dropped sessions and gateway restarts.

use std::collections::HashSet;
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;

use crate::harness::*;

const THREE: [&str; 3] = ["AAPL", "MSFT", "SPY"];

/// Reads until every instrument went stale and then resumed with fresh quotes.
async fn stale_then_fresh(s: &mut QuoteStream) {
    let mut stale = HashSet::new();
    let mut resumed = HashSet::new();
    let mut fresh = HashSet::new();
    read_until(s, |m| {
        if let Some(st) = status_of(m) {
            if st.kind == pb::InstrumentStatusKind::Stale as i32 {
                stale.insert(m.index);
            }
            if st.kind == pb::InstrumentStatusKind::Resumed as i32 {
                assert!(stale.contains(&m.index), "resumed before stale");
                assert!(st.gap.is_some());
                resumed.insert(m.index);
            }
        }
        if let Some(q) = quote_of(m) {
            if q.stale {
                assert!(
                    stale.contains(&m.index),
                    "a stale quote follows the stale status"
                );
            } else if resumed.contains(&m.index) {
                fresh.insert(m.index);
            }
        }
        fresh.len() == THREE.len()
    })
    .await;
}

#[tokio::test]
async fn streams_resume_after_the_connection_drops() {
    let h = start().await;
    let mut client = h.client().await;
    let mut s = all_quoting(&mut client, &THREE).await;
    assert_eq!(h.sim.control().stats().market_data_requests, 3);
    assert_eq!(h.sim.control().drop_connections(), 1);
    stale_then_fresh(&mut s).await;
    let stats = h.sim.control().stats();
    assert_eq!(
        stats.market_data_requests, 6,
        "every instrument requested again: {stats:?}"
    );
    assert_eq!(stats.active_market_data_subscriptions, 3);
}

#[tokio::test]
async fn streams_resume_after_a_gateway_restart() {
    let h = start().await;
    let mut client = h.client().await;
    let mut s = all_quoting(&mut client, &THREE).await;
    h.sim.control().set_availability(Duration::from_secs(4));
    h.sim.control().drop_connections();
    stale_then_fresh(&mut s).await;
    let stats = h.sim.control().stats();
    assert!(
        stats.connections_refused >= 1,
        "the restart refused reconnects: {stats:?}"
    );
    assert_eq!(stats.active_market_data_subscriptions, 3);
    assert_eq!(stats.market_data_requests, 6);
}

#[tokio::test]
async fn a_farm_going_down_marks_only_its_instruments_stale() {
    let h = start().await;
    let mut client = h.client().await;
    let mut s = quoting(&mut client, &["AAPL", "MSFT"]).await;
    // The options farm going down does not touch stocks: their quotes go on, fresh.
    h.sim
        .control()
        .inject_error(2103, "Market data farm connection is broken:usopt", None);
    let mut fresh_after = 0;
    read_until(&mut s, |m| {
        assert!(
            status_of(m).is_none_or(|st| st.kind != pb::InstrumentStatusKind::Stale as i32),
            "a stock went stale with the options farm"
        );
        if quote_of(m).is_some_and(|q| !q.stale) {
            fresh_after += 1;
        }
        fresh_after == 10
    })
    .await;
    h.sim
        .control()
        .inject_error(2103, "Market data farm connection is broken:usfarm", None);
    until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 2).await;
    h.sim
        .control()
        .inject_error(2104, "Market data farm connection is OK:usfarm", None);
    until_status_from(&mut s, pb::InstrumentStatusKind::Resumed, 2).await;
}
