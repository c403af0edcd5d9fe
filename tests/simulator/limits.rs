//! The inbound message rate: error 100 and disconnection of a client that keeps going over.

use std::time::Duration;

use ibapi::prelude::*;
use ibstream::proto::tws;

use crate::common::*;
use crate::raw::{self, Raw};

#[tokio::test]
async fn requests_over_the_rate_get_error_100() {
    let sim = start_with(|c| c.disconnect_after_violations = None).await;
    let mut raw = Raw::connect(sim.gateway_addr(), 9).await;
    let burst: Vec<u8> = (0..80)
        .flat_map(|_| raw::encode(raw::REQ_CURRENT_TIME, &tws::EmptyRequest {}))
        .collect();
    raw.send_bytes(&burst).await;
    let frames = raw.frames_for(Duration::from_millis(500)).await;
    let times = frames.iter().filter(|f| f.id == raw::CURRENT_TIME).count();
    let errors: Vec<_> = frames
        .iter()
        .filter(|f| f.id == raw::ERROR)
        .map(raw::error)
        .filter(|e| !matches!(e.error_code, Some(2104 | 2106 | 2158)))
        .collect();
    // 50 of the burst fit in the one-second window, the other 30 are rejected.
    assert_eq!(times, 50);
    assert_eq!(errors.len(), 30);
    assert!(
        errors
            .iter()
            .all(|e| e.error_code == Some(100) && e.id == Some(-1))
    );
    let stats = sim.control().stats();
    assert!(stats.peak_messages_per_second >= 80);
    assert_eq!(stats.requests_by_type["RequestCurrentTime"], 80);
    sim.shutdown().await;
}

#[tokio::test]
async fn ibapi_without_a_rate_limiter_gets_100_on_its_request_ids() {
    // ibapi's client has no rate limiter unless one is configured.
    let sim = start_with(|c| c.disconnect_after_violations = None).await;
    let client = connect(&sim, 1).await;
    let aapl = Contract::stock("AAPL").build();
    let requests = (0..70).map(|_| client.contract_details(&aapl));
    let results = tokio::time::timeout(WAIT, futures::future::join_all(requests))
        .await
        .unwrap();
    let rejected: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!rejected.is_empty());
    assert!(rejected.iter().all(|e| notice_code(e) == 100));
    assert!(results.iter().filter(|r| r.is_ok()).count() >= 40);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_that_keeps_exceeding_the_rate_is_disconnected() {
    let sim = start_with(|c| c.max_messages_per_second = 10).await;
    let mut raw = Raw::connect(sim.gateway_addr(), 9).await;
    let burst: Vec<u8> = (0..15)
        .flat_map(|_| raw::encode(raw::REQ_CURRENT_TIME, &tws::EmptyRequest {}))
        .collect();
    for _ in 0..3 {
        raw.send_bytes(&burst).await;
        tokio::time::sleep(Duration::from_millis(1050)).await;
    }
    let frames = raw.until_closed().await;
    let hundreds = frames
        .iter()
        .filter(|f| f.id == raw::ERROR && raw::error(f).error_code == Some(100))
        .count();
    assert!(hundreds >= 3, "error 100 before the disconnect");
    eventually("the connection to close", || {
        sim.control().stats().connections == 0
    })
    .await;
    // Other clients are unaffected.
    let client = connect(&sim, 1).await;
    assert!(client.server_time().await.is_ok());
    sim.shutdown().await;
}

/// A client within the rate whose requests pile up behind a stalled gateway is not over
/// the rate when the gateway handles the backlog at once: TWS counts requests as they
/// arrive. Ticks fill the connection's queue during the stall, so the handling of the
/// requests really waits.
#[tokio::test]
async fn requests_handled_late_count_when_they_arrived() {
    let sim = start_with(|c| c.disconnect_after_violations = None).await;
    sim.control().set_tick_interval(Duration::from_millis(1));
    let client = std::sync::Arc::new(connect(&sim, 1).await);
    let _subs = [
        streaming_stock(&client, "AAPL").await,
        streaming_stock(&client, "MSFT").await,
        streaming_stock(&client, "NVDA").await,
    ];
    sim.control().reset_stats();
    sim.control().stall(Duration::from_millis(2500));
    // 80 requests at 40 a second, all during the stall.
    let requests = (0..80u64).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(25 * i)).await;
            client.server_time().await
        })
    });
    let answers = tokio::time::timeout(WAIT, futures::future::join_all(requests))
        .await
        .unwrap();
    assert!(answers.iter().all(|a| matches!(a, Ok(Ok(_)))));
    let stats = sim.control().stats();
    assert_eq!(stats.errors_sent.get(&100), None, "{stats:?}");
    assert!(stats.peak_messages_per_second <= 45, "{stats:?}");
    sim.shutdown().await;
}
