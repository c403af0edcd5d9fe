//! Connection history and the contract cache.

use std::time::Duration;

use ibstream::store::NewConnectionEvent;
use time::OffsetDateTime;

use crate::backend::TestDb;

on_both_backends! {
    events_are_listed_newest_first => events_newest_first;
    contract_cache_round_trips_and_survives_reopening => contract_cache;
}

async fn events_newest_first(db: &TestDb) {
    let store = db.open().await;
    assert!(store.recent_events(10).await.unwrap().is_empty());
    let base = OffsetDateTime::now_utc() - Duration::from_secs(60);
    let kinds = ["connecting", "connected", "error", "reconnecting"];
    for (i, kind) in kinds.iter().enumerate() {
        let mut event =
            NewConnectionEvent::now(*kind, format!("event {i}")).with_profile("default");
        event.at = base + Duration::from_secs(i as u64);
        if *kind == "error" {
            event = event.with_code(1100);
        }
        store.record_event(&event).await.unwrap();
    }
    // Two events in the same millisecond keep their recording order.
    let same = base + Duration::from_secs(10);
    for kind in ["disconnected", "connecting"] {
        let mut event = NewConnectionEvent::now(kind, "same instant");
        event.at = same;
        store.record_event(&event).await.unwrap();
    }

    let events = store.recent_events(10).await.unwrap();
    let order: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        order,
        [
            "connecting",
            "disconnected",
            "reconnecting",
            "error",
            "connected",
            "connecting"
        ]
    );
    assert!(events.windows(2).all(|w| w[0].at >= w[1].at));
    let error = &events[3];
    assert_eq!(
        (error.code, error.profile.as_deref()),
        (Some(1100), Some("default"))
    );
    assert_eq!(error.message, "event 2");
    assert_eq!(events[0].profile, None);

    let two = store.recent_events(2).await.unwrap();
    assert_eq!(two, events[..2]);

    let pruned = store
        .prune_events(base + Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert_eq!(store.recent_events(10).await.unwrap().len(), 4);

    // Retention keeps the newest, including one of two events in the same millisecond.
    assert_eq!(store.retain_recent_events(10).await.unwrap(), 0);
    assert_eq!(store.retain_recent_events(1).await.unwrap(), 3);
    let left = store.recent_events(10).await.unwrap();
    assert_eq!(left, events[..1]);
    assert_eq!(store.retain_recent_events(0).await.unwrap(), 1);
    assert!(store.recent_events(10).await.unwrap().is_empty());
}

async fn contract_cache(db: &TestDb) {
    let store = db.open().await;
    let aapl: Vec<u8> = (0..=255).collect();
    store
        .put_contract("STK:AAPL:SMART:USD", 265598, &aapl)
        .await
        .unwrap();
    store
        .put_contract("OPT:AAPL:20261218:200:C", 777, b"call")
        .await
        .unwrap();
    assert_eq!(
        store.contract_by_key("STK:AAPL:SMART:USD").await.unwrap(),
        Some(aapl.clone())
    );
    assert_eq!(
        store.contract_by_con_id(265598).await.unwrap(),
        Some(aapl.clone())
    );
    assert_eq!(
        store.contract_by_con_id(777).await.unwrap().as_deref(),
        Some(&b"call"[..])
    );
    assert_eq!(
        store.contract_by_key("STK:MSFT:SMART:USD").await.unwrap(),
        None
    );
    assert_eq!(store.contract_by_con_id(1).await.unwrap(), None);

    // Replacing a key updates its payload and con_id.
    store
        .put_contract("OPT:AAPL:20261218:200:C", 778, b"call v2")
        .await
        .unwrap();
    assert_eq!(store.contract_by_con_id(777).await.unwrap(), None);
    assert_eq!(
        store.contract_by_con_id(778).await.unwrap().as_deref(),
        Some(&b"call v2"[..])
    );
    store.close().await.unwrap();

    let reopened = db.open().await;
    assert_eq!(
        reopened
            .contract_by_key("STK:AAPL:SMART:USD")
            .await
            .unwrap(),
        Some(aapl)
    );
    assert_eq!(
        reopened
            .contract_by_key("OPT:AAPL:20261218:200:C")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"call v2"[..])
    );
}
