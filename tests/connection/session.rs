//! The IB session through the API: connect, disconnect, reconnect, drops and refusals
//! survived, the circuit breaker, the health monitor and `grpc.health.v1`.

use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use pb::ConnectionState as S;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{self, Harness, Setup, state_of, wait_for, wait_state};

#[tokio::test]
async fn connect_disconnect_and_reconnect() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let initial = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&initial), S::Disconnected);
    assert!(!initial.session_wanted);
    // Before any attempt, the status shows where a session would go.
    assert_eq!(initial.profile, "default");
    assert_eq!(initial.address, h.sim.gateway_addr().to_string());
    let mut link = h.server().context().link.clone();
    assert!(link.borrow().is_none());

    let connected = client
        .connect(pb::ConnectRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&connected), S::Connected);
    assert!(connected.session_wanted);
    assert!(connected.server_version.unwrap() >= 213);
    assert_eq!(connected.managed_accounts, vec!["DU1234567".to_string()]);
    assert_eq!(connected.client_id, 11);
    assert_eq!(connected.address, h.sim.gateway_addr().to_string());
    assert_eq!(connected.circuit_state, pb::CircuitState::Closed as i32);
    assert!(
        connected.messages_sent >= 1,
        "the market data type request is counted"
    );
    assert_eq!(connected.message_rate, 50);
    let generation = connected.generation;
    let first_link = link.borrow_and_update().clone().expect("link published");
    assert_eq!(first_link.generation, generation);
    assert_eq!(h.sim.control().stats().connections, 1);
    // The profile's market data type was requested after connecting.
    let requests = h.sim.control().stats().requests_by_type;
    assert!(
        requests.get("RequestMarketDataType").copied().unwrap_or(0) >= 1,
        "{requests:?}"
    );

    // The health monitor reports a round trip.
    let mut watch = harness::watch_status(&mut client).await;
    wait_for(&mut watch, "a heartbeat", |s| s.heartbeat_rtt.is_some()).await;

    // Connect while connected changes nothing.
    let again = client
        .connect(pb::ConnectRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.generation, generation);

    let reconnected = client
        .reconnect(pb::ReconnectRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&reconnected), S::Connected);
    assert!(reconnected.generation > generation);
    let second_link = link.borrow_and_update().clone().expect("new link");
    assert_eq!(second_link.generation, reconnected.generation);
    harness::eventually("old socket closed", || async {
        h.sim.control().stats().connections == 1
    })
    .await;
    assert_eq!(h.sim.control().stats().connections_accepted, 2);

    let disconnected = client
        .disconnect(pb::DisconnectRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&disconnected), S::Disconnected);
    assert!(!disconnected.session_wanted);
    assert!(link.borrow_and_update().is_none());
    harness::eventually("socket closed", || async {
        h.sim.control().stats().connections == 0
    })
    .await;

    // Every change is in the history, newest first (written in the background).
    let state_events = |events: &[pb::ConnectionEvent]| -> Vec<S> {
        events
            .iter()
            .filter(|e| e.kind == pb::ConnectionEventKind::StateChanged as i32)
            .map(|e| pb::ConnectionState::try_from(e.state).unwrap())
            .collect()
    };
    let mut events = Vec::new();
    for _ in 0..200 {
        events = harness::recent_events(&mut client, 100).await;
        if state_events(&events).first() == Some(&S::Disconnected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = state_events(&events);
    assert_eq!(states.first(), Some(&S::Disconnected), "{states:?}");
    assert!(states.contains(&S::Connected) && states.contains(&S::Connecting));
    assert!(events.iter().all(|e| e.profile == "default"));
    let bad = client
        .list_events(pb::ListEventsRequest { page_size: -1 })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("page_size"));
    h.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_is_reestablished() {
    let h = Harness::start_with(Setup::connecting()).await;
    let mut client = h.client().await;
    let mut watch = harness::watch_status(&mut client).await;
    let (up, _) = wait_state(&mut watch, S::Connected).await;

    assert_eq!(h.sim.control().drop_connections(), 1);
    let (down, _) = wait_state(&mut watch, S::Reconnecting).await;
    // A short drop is bridged by the IB client library on the same client.
    let reason = down.last_error.expect("reason shown").message;
    assert!(reason.contains("IB client is reconnecting"), "{reason}");
    let (back, _) = wait_state(&mut watch, S::Connected).await;
    assert!(
        back.generation > up.generation,
        "a new generation after the drop"
    );
    let link = h
        .server()
        .context()
        .link
        .borrow()
        .clone()
        .expect("link back");
    assert_eq!(link.generation, back.generation);
    assert!(h.server().metrics().reconnects.get() >= 1);

    // The nightly restart: connections dropped and refused for several seconds.
    h.sim.control().set_availability(Duration::from_secs(4));
    h.sim.control().drop_connections();
    let (down, _) = wait_state(&mut watch, S::Reconnecting).await;
    assert!(down.generation == back.generation);
    let (again, seen) = wait_state(&mut watch, S::Connected).await;
    assert!(again.generation > back.generation);
    assert!(
        seen.iter().all(|s| state_of(s) != S::Disconnected),
        "never gave up"
    );
    assert!(h.sim.control().stats().connections_refused >= 1);
    // Longer than the library's own attempts: the session took over with a new client.
    harness::eventually_logged(
        &client,
        "the session's own reconnect in the history",
        "gave up reconnecting",
    )
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn the_circuit_opens_and_half_opens() {
    let h = Harness::start_with(Setup {
        retry_attempts: 2,
        ..Setup::connecting()
    })
    .await;
    let mut client = h.client().await;
    let mut watch = harness::watch_status(&mut client).await;
    wait_state(&mut watch, S::Connected).await;

    // Gone for a long while: ibapi gives up, then the session's own attempts fail until
    // the circuit opens.
    h.sim.control().set_availability(Duration::from_secs(600));
    h.sim.control().drop_connections();
    let (failed, _) = wait_state(&mut watch, S::Failed).await;
    assert_eq!(failed.circuit_state, pb::CircuitState::Open as i32);
    assert!(failed.next_retry_time.is_some());
    assert!(failed.reconnect_attempt >= 2);
    // The cool-down passes and a probe is let through (and fails: the circuit reopens).
    harness::eventually_logged(&client, "a half-open probe in the history", "half-open").await;

    // The gateway is back: the next probe closes the circuit.
    h.sim.control().set_availability(Duration::ZERO);
    let (up, _) = wait_state(&mut watch, S::Connected).await;
    assert_eq!(up.circuit_state, pb::CircuitState::Closed as i32);
    assert_eq!(up.reconnect_attempt, 0);

    let events = harness::recent_events(&mut client, 200).await;
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("circuit breaker opened"))
    );
    h.shutdown().await;
}

/// A circuit that opens at the first failed attempt and stays open for an hour.
fn one_failure_opens_for_an_hour() -> Setup {
    Setup {
        retry_attempts: 1,
        session: ibstream::ib::SessionSettings {
            circuit_cooldown: Duration::from_secs(3600),
            ..harness::fast_session()
        },
        ..Setup::default()
    }
}

/// A manual connect brings the session up with the circuit closed.
async fn manual_connect_closes_the_circuit(
    client: &mut pb::connection_service_client::ConnectionServiceClient<tonic::transport::Channel>,
) {
    let up = client
        .connect(pb::ConnectRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&up), S::Connected);
    assert_eq!(up.circuit_state, pb::CircuitState::Closed as i32);
}

#[tokio::test]
async fn a_manual_connect_resets_an_open_circuit() {
    let h = Harness::start_with(one_failure_opens_for_an_hour()).await;
    h.sim.control().set_availability(Duration::from_secs(600));
    let mut client = h.client().await;
    let err = client.connect(pb::ConnectRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("retrying"), "{}", err.message());
    let mut watch = harness::watch_status(&mut client).await;
    wait_state(&mut watch, S::Failed).await;
    h.sim.control().set_availability(Duration::ZERO);
    // With an hour of cool-down, the manual connect brings it back at once (the port
    // probe would too, within a second).
    manual_connect_closes_the_circuit(&mut client).await;
    h.shutdown().await;
}

/// The port probe only shortens waits after the gateway went away: a gateway that is up
/// and refuses the client id gives its port nothing to tell, so the open circuit waits
/// out its cool-down (here an hour) and only a manual connect brings the session back.
#[tokio::test]
async fn a_circuit_opened_by_a_client_id_in_use_waits_out_its_cool_down() {
    let h = Harness::start_with(one_failure_opens_for_an_hour()).await;
    let holder = ibapi::Client::connect(&h.sim.gateway_addr().to_string(), 11)
        .await
        .expect("another client takes the profile's client id");
    let mut client = h.client().await;
    let err = client.connect(pb::ConnectRequest {}).await.unwrap_err();
    assert!(err.message().contains("client id"), "{}", err.message());
    let mut watch = harness::watch_status(&mut client).await;
    wait_state(&mut watch, S::Failed).await;
    holder.disconnect().await;
    harness::eventually("the other client gone", || async {
        h.sim.control().stats().connections == 0
    })
    .await;
    // Several probe intervals: the port takes clients, yet no attempt is made.
    let refused = h.sim.control().stats().connections_refused;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = h.sim.control().stats();
    assert_eq!(
        (stats.connections, stats.connections_refused),
        (0, refused),
        "{stats:?}"
    );
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&status), S::Failed);
    manual_connect_closes_the_circuit(&mut client).await;
    h.shutdown().await;
}

async fn next_health(
    stream: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    want: ServingStatus,
) {
    tokio::time::timeout(harness::WAIT, async {
        loop {
            let r = stream.message().await.unwrap().unwrap();
            if r.status == want as i32 {
                return;
            }
        }
    })
    .await
    .expect("health status within the deadline")
}

#[tokio::test]
async fn a_silent_gateway_is_detected_and_health_follows_the_session() {
    let h = Harness::start().await;
    let mut health = HealthClient::new(h.channel().await);
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    let serving = |r: tonic_health::pb::HealthCheckResponse| r.status;
    assert_eq!(
        serving(health.check(check("")).await.unwrap().into_inner()),
        ServingStatus::NotServing as i32
    );
    let mut health_watch = health
        .watch(check("ibstream.v1.ConnectionService"))
        .await
        .unwrap()
        .into_inner();
    next_health(&mut health_watch, ServingStatus::NotServing).await;

    let mut client = h.client().await;
    client.connect(pb::ConnectRequest {}).await.unwrap();
    next_health(&mut health_watch, ServingStatus::Serving).await;
    assert_eq!(
        serving(health.check(check("")).await.unwrap().into_inner()),
        ServingStatus::Serving as i32
    );

    // The gateway keeps the socket open but stops answering: missed heartbeats.
    let mut watch = harness::watch_status(&mut client).await;
    wait_state(&mut watch, S::Connected).await;
    h.sim.control().stall(Duration::from_secs(3));
    let (lost, _) = wait_state(&mut watch, S::Reconnecting).await;
    let error = lost.last_error.expect("reason shown");
    assert!(
        error.message.contains("stopped answering"),
        "{}",
        error.message
    );
    next_health(&mut health_watch, ServingStatus::NotServing).await;
    wait_state(&mut watch, S::Connected).await;
    next_health(&mut health_watch, ServingStatus::Serving).await;

    client.disconnect(pb::DisconnectRequest {}).await.unwrap();
    next_health(&mut health_watch, ServingStatus::NotServing).await;
    h.shutdown().await;
}

#[tokio::test]
async fn disconnect_stops_the_retries() {
    let h = Harness::start().await;
    h.sim.control().set_availability(Duration::from_secs(600));
    let mut client = h.client().await;
    client.connect(pb::ConnectRequest {}).await.unwrap_err();
    let mut watch = harness::watch_status(&mut client).await;
    wait_for(&mut watch, "a retry", |s| s.reconnect_attempt >= 2).await;
    let stopped = client
        .disconnect(pb::DisconnectRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&stopped), S::Disconnected);
    assert!(!stopped.session_wanted);
    assert!(stopped.next_retry_time.is_none());
    // No attempt reaches the gateway any more.
    let refused = h.sim.control().stats().connections_refused;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(h.sim.control().stats().connections_refused, refused);
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&status), S::Disconnected);
    h.shutdown().await;
}
