//! Fault injection: dropped connections, stalls, injected errors.

use std::time::Duration;

use ibapi::prelude::*;

use crate::common::*;

#[tokio::test]
async fn dropped_connections_reset_streams_and_the_client_reconnects() {
    let sim = start().await;
    let client = connect(&sim, 3).await;
    let mut sub = streaming_stock(&client, "AAPL").await;
    assert_eq!(sim.control().drop_connections(), 1);
    let err = first_error(&mut sub).await;
    assert!(matches!(err, ibapi::Error::ConnectionReset), "{err:?}");
    eventually("subscriptions released", || {
        sim.control().stats().active_market_data_subscriptions == 0
    })
    .await;
    // ibapi waits a second, reconnects with the same client id, and the id is free again.
    tokio::time::timeout(WAIT, client.wait_connected())
        .await
        .unwrap()
        .unwrap();
    let _again = streaming_stock(&client, "AAPL").await;
    assert_eq!(sim.control().stats().connections, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stall_pauses_delivery_without_closing() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut sub = streaming_stock(&client, "MSFT").await;
    sim.control().stall(Duration::from_millis(1500));
    // Whatever was already on the wire arrives at once; then nothing until the stall ends.
    drain_for(&mut sub, Duration::from_millis(200)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(800), next_data(&mut sub)).await;
    assert!(quiet.is_err(), "no ticks during the stall");
    next_data(&mut sub).await;
    assert!(client.is_connected());
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_errors_reach_notices_and_requests() {
    let sim = start().await;
    let (client, mut notices) = Client::builder()
        .address(sim.gateway_addr().to_string())
        .client_id(1)
        .connect_with_notice_stream()
        .await
        .unwrap();
    let mut sub = streaming_stock(&client, "AAPL").await;
    let lost = "Connectivity between IB and Trader Workstation has been lost.";
    assert_eq!(sim.control().inject_error(1100, lost, None), 1);
    let notice = tokio::time::timeout(WAIT, async {
        loop {
            let n = notices.next().await.unwrap();
            if n.code == 1100 {
                return n;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(notice.message, lost);
    assert!(notice.is_system_message());

    let req_id = sub.request_id().unwrap();
    sim.control().inject_error(
        10197,
        "No market data during competing live session",
        Some(req_id),
    );
    assert_eq!(notice_code(&first_error(&mut sub).await), 10197);
    assert_eq!(sim.control().stats().errors_sent[&10197], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_tick_interval_changes_while_running() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut sub = streaming_stock(&client, "KO").await;
    sim.control().set_tick_interval(Duration::from_secs(3600));
    drain_for(&mut sub, Duration::from_millis(200)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(600), next_data(&mut sub)).await;
    assert!(quiet.is_err(), "no steps with an hour between them");
    sim.control().set_tick_interval(Duration::from_millis(10));
    ticks_until(&mut sub, |seen| bids(seen).len() >= 3).await;
    sim.shutdown().await;
}
