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
