//! Shutdown: streams end with a status, health turns NOT_SERVING, the gateway sees the
//! session close; unary calls have a deadline that streams do not.

use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use tonic::Code;

use crate::harness::{self, Harness, Setup, wait_state};

#[tokio::test]
async fn shutdown_ends_streams_and_closes_the_session() {
    let h = Harness::start_with(Setup::connecting()).await;
    let mut client = h.client().await;
    let mut watch = harness::watch_status(&mut client).await;
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

#[tokio::test]
async fn unary_calls_have_a_deadline_that_streams_do_not() {
    let h = Harness::start_with(Setup {
        unary_timeout: Duration::from_millis(300),
        ..Setup::default()
    })
    .await;
    let mut client = h.client().await;
    let mut watch = harness::watch_status(&mut client).await;
    let opened = tokio::time::Instant::now();
    wait_state(&mut watch, pb::ConnectionState::Disconnected).await;

    // A gateway that accepts and never answers: the connect outlives the deadline.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut profile = h.store.active_profile().await.unwrap();
    let sim_port = profile.port;
    profile.port = silent.local_addr().unwrap().port();
    h.store.save_profile(&profile).await.unwrap();
    let err = client.connect(pb::ConnectRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}", err.message());
    assert!(err.message().contains("300ms"), "{}", err.message());

    // The session goes on in the background; point it back at the simulator and the
    // stream, open far longer than the deadline, sees it connect.
    profile.port = sim_port;
    h.store.save_profile(&profile).await.unwrap();
    wait_state(&mut watch, pb::ConnectionState::Connected).await;
    assert!(opened.elapsed() > Duration::from_millis(900));
    drop(silent);
    h.shutdown().await;
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let h = Harness::start_with(Setup {
        max_request_bytes: 1024,
        ..Setup::default()
    })
    .await;
    let mut client = h.client().await;
    let err = client
        .set_credentials(pb::SetCredentialsRequest {
            profile: None,
            username: "u".into(),
            password: "p".repeat(4096),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    assert!(err.message().contains("1024"), "{}", err.message());
    // Small requests still pass.
    client.get_status(pb::GetStatusRequest {}).await.unwrap();
    h.shutdown().await;
}
