//! Shutdown: streams end with a status, health turns NOT_SERVING, the gateway sees the
//! session close; unary calls have a deadline that streams do not.

use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use tonic::Code;

use crate::harness::{self, Harness, Setup, wait_state};

#[tokio::test]
async fn shutdown_ends_streams_and_closes_the_session() {
    let h = Harness::start_with(Setup {
        connect_on_start: true,
        ..Setup::default()
    })
    .await;
    let mut client = h.client().await;
    let mut watch = client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    wait_state(&mut watch, pb::ConnectionState::Connected).await;
    assert_eq!(h.sim.control().stats().connections, 1);

    let mut h = h;
    let server = h.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(20), server.shutdown())
        .await
        .expect("shutdown in time")
        .expect("clean shutdown");

    let ended = tokio::time::timeout(harness::WAIT, async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("stream ends");
    assert_eq!(ended.code(), Code::Unavailable);
    assert!(
        ended.message().contains("shutting down"),
        "{}",
        ended.message()
    );
    harness::eventually("gateway sees the session close", || async {
        h.sim.control().stats().connections == 0
    })
    .await;
    h.shutdown().await;
}
