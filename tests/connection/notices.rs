//! IB notices turned into status: data farms, a competing session, IB connectivity.

use ibstream::proto::ibstream::v1 as pb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{self, Harness, Setup, wait_for, wait_state};

fn farm<'a>(status: &'a pb::ConnectionStatus, name: &str) -> Option<&'a pb::DataFarm> {
    status.data_farms.iter().find(|f| f.name == name)
}

#[tokio::test]
async fn notices_become_status() {
    let h = Harness::start_with(Setup::connecting()).await;
    let mut client = h.client().await;
    let mut watch = harness::watch_status(&mut client).await;
    let (up, _) = wait_state(&mut watch, pb::ConnectionState::Connected).await;
    let control = h.sim.control();

    control.inject_error(2104, "Market data farm connection is OK:testfarm", None);
    wait_for(&mut watch, "testfarm OK", |s| {
        farm(s, "testfarm").is_some_and(|f| f.ok)
    })
    .await;
    control.inject_error(2103, "Market data farm connection is broken:testfarm", None);
    let (down, _) = wait_for(&mut watch, "testfarm down", |s| {
        farm(s, "testfarm").is_some_and(|f| !f.ok)
    })
    .await;
    assert_eq!(farm(&down, "testfarm").unwrap().code, 2103);

    control.inject_error(10197, "No market data during competing live session", None);
    let (competing, _) = wait_for(&mut watch, "competing session", |s| s.competing_session).await;
    assert_eq!(
        competing.last_error.as_ref().and_then(|e| e.code),
        Some(10197)
    );

    // IB's own link lost: the session stays, health says NOT_SERVING until restored.
    let health = HealthClient::new(h.channel().await);
    control.inject_error(
        1100,
        "Connectivity between IB and Trader Workstation has been lost.",
        None,
    );
    let (lost, _) = wait_for(&mut watch, "connectivity lost", |s| s.ib_connectivity_lost).await;
    assert_eq!(harness::state_of(&lost), pb::ConnectionState::Connected);
    harness::health_becomes(&health, "health NOT_SERVING", ServingStatus::NotServing).await;
    // Restored with data lost: the same session goes on (the market-data layer renews
    // its subscriptions from the notice), so the generation stays.
    control.inject_error(
        1101,
        "Connectivity between IB and TWS has been restored - data lost.",
        None,
    );
    let (restored, _) = wait_for(&mut watch, "connectivity restored", |s| {
        !s.ib_connectivity_lost
    })
    .await;
    assert_eq!(restored.generation, up.generation);
    let link = h.server().context().link.borrow().clone().expect("link");
    assert_eq!(link.generation, up.generation);
    assert!(!restored.competing_session, "restored connectivity ends it");
    harness::health_becomes(&health, "health SERVING", ServingStatus::Serving).await;

    harness::eventually("notices in the history", || {
        let mut c = client.clone();
        async move {
            let events = harness::recent_events(&mut c, 100).await;
            [2103, 10197, 1100, 1101].iter().all(|code| {
                events.iter().any(|e| {
                    e.code == Some(*code) && e.kind == pb::ConnectionEventKind::Notice as i32
                })
            })
        }
    })
    .await;
    h.shutdown().await;
}
