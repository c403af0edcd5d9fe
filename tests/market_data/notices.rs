//! IB's notices as streams see them: what goes stale, what resumes, and which notices
//! cost a new market-data request (only those after which IB no longer holds the
//! subscriptions).

use std::collections::HashSet;
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;

use crate::harness::*;

const THREE: [&str; 3] = ["AAPL", "MSFT", "SPY"];

/// Long enough for a second, duplicate request to reach the simulator if one were sent.
const SETTLE: Duration = Duration::from_millis(1000);

const LOST: (i32, &str) = (
    1100,
    "Connectivity between IB and Trader Workstation has been lost.",
);
const RESTORED_DATA_LOST: (i32, &str) = (
    1101,
    "Connectivity between IB and TWS has been restored - data lost.",
);
const RESTORED_DATA_KEPT: (i32, &str) = (
    1102,
    "Connectivity between IB and TWS has been restored - data maintained.",
);
const FARM_DOWN: (i32, &str) = (2103, "Market data farm connection is broken:usfarm");
const FARM_OK: (i32, &str) = (2104, "Market data farm connection is OK:usfarm");
const COMPETING: (i32, &str) = (10197, "No market data during competing live session");

fn inject(h: &Harness, (code, message): (i32, &str)) {
    assert_eq!(h.sim.control().inject_error(code, message, None), 1);
}

/// Opens a stream of the three stocks and reads until every one has a quote.
async fn three_quoted(h: &Harness) -> QuoteStream {
    all_quoting(&mut h.client().await, &THREE).await
}

/// Reads until every instrument has sent a fresh (not stale) quote after resuming.
async fn until_fresh_again(s: &mut QuoteStream) {
    let mut resumed = HashSet::new();
    let mut fresh = HashSet::new();
    read_until(s, |m| {
        if status_of(m).is_some_and(|st| st.kind == pb::InstrumentStatusKind::Resumed as i32) {
            resumed.insert(m.index);
        }
        if quote_of(m).is_some_and(|q| !q.stale) && resumed.contains(&m.index) {
            fresh.insert(m.index);
        }
        fresh.len() == THREE.len()
    })
    .await;
}

/// Waits for the simulator to have seen `expected` market-data requests, then a while
/// longer, and checks no more came.
async fn requests_settle_at(h: &Harness, expected: u64, after: &str) {
    wait_for_stats(&h.sim, after, |_| h.market_data_requests() >= expected).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(h.market_data_requests(), expected, "{after}");
}

#[tokio::test]
async fn instruments_are_requested_again_only_when_ib_dropped_them() {
    let h = start().await;
    let mut s = three_quoted(&h).await;
    let n = THREE.len() as u64;
    assert_eq!(h.market_data_requests(), n);

    // 1102: IB kept the subscriptions; they only go stale while IB is away.
    inject(&h, LOST);
    until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 3).await;
    inject(&h, RESTORED_DATA_KEPT);
    until_status_from(&mut s, pb::InstrumentStatusKind::Resumed, 3).await;
    requests_settle_at(&h, n, "nothing requested after 1102").await;

    // A farm blip: IB resumes the subscriptions by itself.
    inject(&h, FARM_DOWN);
    until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 3).await;
    inject(&h, FARM_OK);
    until_status_from(&mut s, pb::InstrumentStatusKind::Resumed, 3).await;
    requests_settle_at(&h, n, "nothing requested after a farm blip").await;

    // 1101: IB dropped every subscription; each is requested again, once.
    inject(&h, LOST);
    until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 3).await;
    inject(&h, RESTORED_DATA_LOST);
    until_fresh_again(&mut s).await;
    requests_settle_at(&h, 2 * n, "each requested once after 1101").await;

    // A new socket: a new TWS session without subscriptions; each requested once.
    assert_eq!(h.sim.control().drop_connections(), 1);
    until_fresh_again(&mut s).await;
    requests_settle_at(&h, 3 * n, "each requested once after a reconnect").await;
    assert_eq!(h.sim.control().stats().active_market_data_subscriptions, 3);
}

/// IB reports a competing session: the status says so and every stream goes stale.
async fn competing(h: &Harness, s: &mut QuoteStream) {
    inject(h, COMPETING);
    until_status_from(s, pb::InstrumentStatusKind::Stale, 3).await;
    assert!(h.session_status().competing_session);
}

#[tokio::test]
async fn a_competing_session_marks_streams_stale_while_it_lasts() {
    let h = start().await;
    let mut s = three_quoted(&h).await;
    let n = THREE.len() as u64;

    // IB sends a session that lost to a competing one no data; the simulator goes on
    // ticking, so its next ticks are what a session sees when the competition ends:
    // fresh data, with no notice.
    competing(&h, &mut s).await;
    until_fresh_again(&mut s).await;

    // The session's status follows IB's notices: a market-data farm reporting OK, or IB
    // reporting its connectivity back with the data kept.
    for ender in [FARM_OK, RESTORED_DATA_KEPT] {
        competing(&h, &mut s).await;
        inject(&h, ender);
        wait_for(
            || !h.session_status().competing_session,
            &format!("{} ends the competing session", ender.0),
        )
        .await;
        until_fresh_again(&mut s).await;
    }
    requests_settle_at(&h, n, "a competing session costs no request").await;

    // Ended by a new session.
    competing(&h, &mut s).await;
    h.sim.control().drop_connections();
    until_fresh_again(&mut s).await;
    assert!(!h.session_status().competing_session);
}

#[tokio::test]
async fn a_new_session_forgets_what_the_old_one_reported() {
    let h = start().await;
    let mut s = three_quoted(&h).await;
    inject(&h, FARM_DOWN);
    inject(&h, LOST);
    until_status_from(&mut s, pb::InstrumentStatusKind::Stale, 3).await;
    let status = h.session_status();
    assert!(status.ib_connectivity_lost);
    assert!(status.farms.get("usfarm").is_some_and(|f| !f.ok));
    let generation = status.generation;

    // The connection drops before IB reports anything back.
    assert_eq!(h.sim.control().drop_connections(), 1);
    until_fresh_again(&mut s).await;
    let status = h.session_status();
    assert!(status.generation > generation);
    assert!(!status.ib_connectivity_lost);
    assert!(
        status.farms.get("usfarm").is_none_or(|f| f.ok),
        "farms as the new session reports them: {:?}",
        status.farms
    );
}
