//! Streams survive dropped sessions and gateway restarts.

use std::collections::HashSet;
use std::time::Duration;

use ibstream::fanout::feed::silence::SILENCE_FLOOR;
use ibstream::ib::health::STALL_DETECTION_BOUND;
use ibstream::ib::{ConnectionState, RECOVERY_BOUND, SessionSettings};
use ibstream::proto::ibstream::v1 as pb;
use tokio::time::Instant;

use crate::harness::*;

const THREE: [&str; 3] = ["AAPL", "MSFT", "SPY"];

/// Reads until every instrument went stale and then resumed with fresh quotes.
async fn stale_then_fresh(s: &mut QuoteStream) {
    stale_then_fresh_of(s, THREE.len()).await;
}

/// Reads until `count` instruments went stale and then resumed with fresh quotes.
async fn stale_then_fresh_of(s: &mut QuoteStream, count: usize) {
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
        fresh.len() == count
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

/// Reads until the stream reported a resume and then a fresh quote.
async fn resumed_then_fresh(s: &mut QuoteStream) {
    let mut resumed = false;
    read_until(s, |m| {
        resumed |=
            status_of(m).is_some_and(|st| st.kind == pb::InstrumentStatusKind::Resumed as i32);
        resumed && quote_of(m).is_some_and(|q| !q.stale)
    })
    .await;
}

/// With the default session settings, a 20 s gateway restart (refusing every
/// connection) costs stale data only until the gateway takes clients again and then
/// at most [`RECOVERY_BOUND`]: the session's wait (backoff, an open circuit's
/// cool-down) ends when the port accepts again.
#[tokio::test]
async fn fresh_quotes_follow_a_20_s_gateway_restart_within_the_recovery_bound() {
    let h = start_with_session(|_| {}, settings(), SessionSettings::default()).await;
    let mut client = h.client().await;
    let mut s = quoting(&mut client, &["AAPL"]).await;
    let outage = Duration::from_secs(20);
    h.sim.control().set_availability(outage);
    let back = Instant::now() + outage;
    h.sim.control().drop_connections();
    let mut stale = false;
    let fresh_at = tokio::time::timeout(outage + WAIT, async {
        loop {
            let m = s
                .message()
                .await
                .expect("stream healthy")
                .expect("stream open");
            stale |=
                status_of(&m).is_some_and(|st| st.kind == pb::InstrumentStatusKind::Stale as i32);
            if stale && quote_of(&m).is_some_and(|q| !q.stale) {
                return Instant::now();
            }
        }
    })
    .await
    .expect("fresh quotes after the restart");
    let stats = h.sim.control().stats();
    assert!(
        stats.connections_refused >= 3,
        "attempts were refused during the restart: {stats:?}"
    );
    assert!(fresh_at >= back, "fresh quotes while the gateway refused");
    let recovery = fresh_at - back;
    println!(
        "first fresh quote {recovery:?} after the gateway took clients again (bound {RECOVERY_BOUND:?})"
    );
    assert!(
        recovery <= RECOVERY_BOUND,
        "fresh quotes {recovery:?} after the gateway came back"
    );
}

/// With the default health settings a gateway that stalls (socket open, nothing sent)
/// is noticed within [`STALL_DETECTION_BOUND`] and quotes resume after the stall.
#[tokio::test]
async fn a_stalled_gateway_is_noticed_within_seconds_and_quotes_resume() {
    let h = start_with_session(|_| {}, settings(), SessionSettings::default()).await;
    let mut client = h.client().await;
    let mut s = quoting(&mut client, &["AAPL"]).await;
    let mut status = h
        .server
        .as_ref()
        .expect("server running")
        .context()
        .session
        .watch_status();
    assert_eq!(status.borrow().state, ConnectionState::Connected);
    h.sim.control().stall(Duration::from_secs(6));
    let stalled = Instant::now();
    tokio::time::timeout(
        WAIT,
        status.wait_for(|st| st.state != ConnectionState::Connected),
    )
    .await
    .expect("the stall noticed")
    .expect("session running");
    let noticed = stalled.elapsed();
    println!("stall noticed after {noticed:?} (bound {STALL_DETECTION_BOUND:?})");
    // The bound plus a second for the scheduling of a busy test machine.
    assert!(
        noticed <= STALL_DETECTION_BOUND + Duration::from_secs(1),
        "a stall went unnoticed for {noticed:?}"
    );
    stale_then_fresh_of(&mut s, 1).await;
}

/// An instrument whose data stops while the session is fine goes stale within its
/// silence bound, and fresh again with its next update.
#[tokio::test]
async fn an_instrument_whose_data_stops_goes_stale_and_fresh_again() {
    let h = start().await;
    let mut client = h.client().await;
    let mut s = quoting(&mut client, &["AAPL"]).await;
    // A couple of seconds of quotes teach the feed its pace (50 ms: the floor rules).
    read_until(&mut s, |m| quote_of(m).is_some_and(|q| q.sequence >= 20)).await;
    h.sim.control().set_tick_interval(Duration::from_secs(3600));
    let stopped = Instant::now();
    until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 1).await;
    let after = stopped.elapsed();
    println!("stale {after:?} after the data stopped (floor {SILENCE_FLOOR:?})");
    assert!(
        after >= SILENCE_FLOOR - Duration::from_millis(200),
        "stale after {after:?}, before a pause of the floor"
    );
    assert!(
        after <= SILENCE_FLOOR + Duration::from_secs(2),
        "stale only after {after:?}"
    );
    assert_eq!(h.session_status().state, ConnectionState::Connected);
    h.sim.control().set_tick_interval(Duration::from_millis(50));
    resumed_then_fresh(&mut s).await;
}

/// A farm the gateway reports broken right after `ibapi` re-established the session
/// (as a gateway restarting with a farm down does) keeps the farm's instruments stale in
/// the new session until the farm is reported OK. Inside the session that notice races
/// the reconnect's own completion, so this goes through several reconnects.
#[tokio::test]
async fn a_farm_reported_broken_as_the_session_comes_back_keeps_its_instruments_stale() {
    let h = start().await;
    let mut client = h.client().await;
    let mut s = quoting(&mut client, &["AAPL"]).await;
    h.sim.control().set_farm_broken_at_start("usfarm", true);
    for round in 0..4 {
        let requests = h.market_data_requests();
        assert_eq!(h.sim.control().drop_connections(), 1);
        until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 1).await;
        wait_for_stats(&h.sim, "AAPL requested in the new session", |st| {
            st.requests_by_type
                .get("RequestMarketData")
                .is_some_and(|n| *n > requests)
        })
        .await;
        // The simulator ticks every 50 ms, yet nothing fresh comes while the farm is down.
        let fresh = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                let m = next(&mut s).await;
                let resumed = status_of(&m)
                    .is_some_and(|st| st.kind == pb::InstrumentStatusKind::Resumed as i32);
                if resumed || quote_of(&m).is_some_and(|q| !q.stale) {
                    return m;
                }
            }
        })
        .await;
        assert!(
            fresh.is_err(),
            "round {round}: fresh data with the farm broken: {fresh:?}"
        );
        h.sim
            .control()
            .inject_error(2104, "Market data farm connection is OK:usfarm", None);
        resumed_then_fresh(&mut s).await;
    }
}

/// A stall long enough for the session to give up on the link and reconnect while the
/// gateway still stalls. The session closes its old socket first, and the gateway frees
/// a client id as soon as the socket holding it closes (as TWS's reader does), so no
/// attempt meets error 326; once the stall ends quotes are fresh again. Ticks every
/// 2 ms fill the gateway's queue for the stalled socket within a second, so the
/// heartbeat's answer waits behind it when the session leaves.
#[tokio::test]
async fn reconnecting_during_a_stall_never_meets_client_id_in_use() {
    let h = start_with(
        |sim| sim.tick_interval = Duration::from_millis(2),
        settings(),
    )
    .await;
    let mut client = h.client().await;
    let mut s = all_quoting(&mut client, &THREE).await;
    let handshakes =
        |st: &ibstream::sim::SimStats| st.requests_by_type.get("StartApi").copied().unwrap_or(0);
    let before = handshakes(&h.sim.control().stats());
    h.sim.control().stall(Duration::from_secs(120));
    // The session notices the stall, closes its socket and tries again at once.
    wait_for_stats(&h.sim, "a reconnect attempt during the stall", |st| {
        handshakes(st) > before
    })
    .await;
    let during = h.sim.control().stats();
    assert_eq!(
        during.errors_sent.get(&326),
        None,
        "the gateway answered 326 during the stall: {during:?}"
    );
    h.sim.control().stall(Duration::ZERO);
    stale_then_fresh(&mut s).await;
    let after = h.sim.control().stats();
    assert_eq!(
        after.errors_sent.get(&326),
        None,
        "the gateway answered 326 after the stall: {after:?}"
    );
    assert_eq!(after.connections, 1, "{after:?}");
    assert_eq!(after.active_market_data_subscriptions, 3, "{after:?}");
}
