//! Migrations, the seeded default profile, and the one-active-profile invariant.

use std::time::Duration;

use ibstream::migrations::Migrator;
use ibstream::store::{MarketDataType, Profile, StoreError};
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::MigratorTrait;

use crate::backend::TestDb;

on_both_backends! {
    migrations_apply_once_and_reapply_as_no_op => migrations_apply_once;
    servers_starting_at_once_on_a_new_database_all_open_it => opened_at_once;
    default_profile_is_seeded => default_profile_is_seeded;
    saving_and_activating_keep_exactly_one_active => exactly_one_active;
    concurrent_activations_leave_exactly_one_active => concurrent_activations;
    deleting_the_active_profile_is_refused => delete_refuses_active;
    validation_names_the_field_and_saves_nothing => validation_names_the_field;
}

async fn active_count(db: &TestDb) -> i64 {
    let rows = db
        .query("SELECT COUNT(*) AS n FROM settings_profiles WHERE active")
        .await;
    rows[0].try_get::<i64>("", "n").expect("count")
}

/// Nodes of a cluster start together on one new database: each opens it, and one
/// default profile results.
async fn opened_at_once(db: &TestDb) {
    let opening: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { ibstream::store::Store::open(&url).await })
        })
        .collect();
    for open in opening {
        let store = open
            .await
            .unwrap()
            .expect("every starter opens the database");
        store.close().await.unwrap();
    }
    let rows = db
        .query("SELECT COUNT(*) AS n FROM settings_profiles")
        .await;
    assert_eq!(rows[0].try_get::<i64>("", "n").unwrap(), 1);
    assert_eq!(active_count(db).await, 1);
}

async fn migrations_apply_once(db: &TestDb) {
    let store = db.open().await;
    store.close().await.unwrap();
    // Opening again runs the migrator again: nothing pending, nothing re-seeded.
    let store = db.open().await;
    assert_eq!(store.list_profiles().await.unwrap().len(), 1);
    let expected_backend = if db.url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(store.backend(), expected_backend);
    store.ping().await.unwrap();
    let raw = db.raw().await;
    assert!(
        Migrator::get_pending_migrations(&raw)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(&raw, None)
        .await
        .expect("re-running migrations is a no-op");
    assert_eq!(
        Migrator::get_applied_migrations(&raw).await.unwrap().len(),
        2,
        "the tables, then the bar cache"
    );
    let tables = [
        "settings_profiles",
        "profile_credentials",
        "api_keys",
        "connection_events",
        "contract_cache",
        "key_check",
        "bar_cache",
        "bar_coverage",
    ];
    for table in tables {
        let rows = db
            .query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await;
        assert_eq!(rows.len(), 1, "{table} exists");
    }
    store.close().await.unwrap();

    // Rolling back removes every table; applying again gives a working store.
    Migrator::down(&raw, None).await.expect("roll back");
    assert!(
        Migrator::get_applied_migrations(&raw)
            .await
            .unwrap()
            .is_empty()
    );
    for table in tables {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let gone = raw
            .query_all_raw(Statement::from_string(raw.get_database_backend(), sql))
            .await;
        assert!(gone.is_err(), "{table} survived the rollback");
    }
    let _ = raw.close().await;
    let store = db.open().await;
    assert_eq!(store.active_profile().await.unwrap().name, "default");
}

async fn default_profile_is_seeded(db: &TestDb) {
    let store = db.open().await;
    let active = store.active_profile().await.unwrap();
    let expected = Profile::default();
    assert_eq!(active.name, "default");
    assert_eq!((active.host.as_str(), active.port), ("127.0.0.1", 4002));
    assert_eq!(active.client_id, 1);
    assert!(active.active && active.connect_on_start && active.allow_delayed_fallback);
    assert_eq!(active.connection_timeout, Duration::from_secs(10));
    assert_eq!(active.retry_attempts, 5);
    assert_eq!(active.market_data_type, MarketDataType::Live);
    assert_eq!(
        (active.message_rate, active.line_budget),
        (expected.message_rate, expected.line_budget)
    );
    assert_eq!((active.message_rate, active.line_budget), (50, 100));
    assert_eq!(store.profile("default").await.unwrap(), active);
    assert!(matches!(
        store.profile("nope").await,
        Err(StoreError::NotFound {
            what: "profile",
            ..
        })
    ));
}

async fn exactly_one_active(db: &TestDb) {
    let store = db.open().await;
    let paper = Profile {
        port: 4004,
        account: Some("DU123".into()),
        market_data_type: MarketDataType::DelayedFrozen,
        ..Profile::named("paper")
    };
    let saved = store.save_profile(&paper).await.unwrap();
    assert!(!saved.active);
    assert_eq!(saved.market_data_type, MarketDataType::DelayedFrozen);
    assert_eq!(store.active_profile().await.unwrap().name, "default");

    // Saving a profile as active takes the flag from the other one.
    let live = Profile {
        active: true,
        port: 4001,
        ..Profile::named("live")
    };
    store.save_profile(&live).await.unwrap();
    assert_eq!(store.active_profile().await.unwrap().name, "live");
    assert!(!store.profile("default").await.unwrap().active);
    assert_eq!(active_count(db).await, 1);

    let activated = store.activate_profile("paper").await.unwrap();
    assert!(activated.active);
    let names: Vec<(String, bool)> = store
        .list_profiles()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.active))
        .collect();
    assert_eq!(
        names,
        [
            ("default".to_owned(), false),
            ("live".to_owned(), false),
            ("paper".to_owned(), true)
        ]
    );
    assert_eq!(active_count(db).await, 1);

    // Updating by name keeps created_at, moves updated_at, keeps it active.
    let before = store.profile("paper").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let updated = store
        .save_profile(&Profile {
            port: 4010,
            ..before.clone()
        })
        .await
        .unwrap();
    assert_eq!(updated.port, 4010);
    assert_eq!(updated.created_at, before.created_at);
    assert!(updated.updated_at > before.updated_at);
    assert!(updated.active);

    // Clearing the flag of the active profile would leave none active.
    let err = store
        .save_profile(&Profile {
            active: false,
            ..updated
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(matches!(
        store.activate_profile("missing").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.active_profile().await.unwrap().name, "paper");
    assert_eq!(active_count(db).await, 1);
}

async fn concurrent_activations(db: &TestDb) {
    let store = db.open().await;
    for name in ["a", "b", "c"] {
        store.save_profile(&Profile::named(name)).await.unwrap();
    }
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = ["a", "b", "c", "default"][i % 4];
                // Racing activations queue up; none fails and none breaks the invariant.
                let activated = store.activate_profile(name).await;
                assert!(
                    activated.as_ref().is_ok_and(|p| p.active),
                    "activate {name}: {activated:?}"
                );
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("activation finished")
            .unwrap();
    }
    assert_eq!(active_count(db).await, 1);
    let active: Vec<_> = store
        .list_profiles()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(store.active_profile().await.unwrap().name, active[0].name);
}

async fn delete_refuses_active(db: &TestDb) {
    let store = db.open().await;
    let err = store.delete_profile("default").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    assert!(
        err.to_string().contains("activate another profile"),
        "{err}"
    );
    store.save_profile(&Profile::named("spare")).await.unwrap();
    store.delete_profile("spare").await.unwrap();
    assert!(matches!(
        store.profile("spare").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_profile("spare").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.list_profiles().await.unwrap().len(), 1);
}

async fn validation_names_the_field(db: &TestDb) {
    let store = db.open().await;
    let cases: [(&str, Profile); 4] = [
        (
            "port",
            Profile {
                port: 0,
                ..Profile::named("bad")
            },
        ),
        (
            "host",
            Profile {
                host: "two words".into(),
                ..Profile::named("bad")
            },
        ),
        (
            "message_rate",
            Profile {
                message_rate: 51,
                ..Profile::named("bad")
            },
        ),
        (
            "client_id",
            Profile {
                client_id: -5,
                ..Profile::named("bad")
            },
        ),
    ];
    for (field, profile) in cases {
        match store.save_profile(&profile).await {
            Err(StoreError::Invalid(err)) => {
                assert_eq!(err.field, field);
                assert!(err.to_string().contains(field), "{err}");
            }
            other => panic!("{field}: expected a validation error, got {other:?}"),
        }
    }
    assert!(matches!(
        store.profile("bad").await,
        Err(StoreError::NotFound { .. })
    ));
}
