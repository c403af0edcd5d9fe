//! Costs of the store and crypto paths the server takes: master-key derivation at
//! start-up, API-key verification per request, and the store's queries on SQLite and
//! (when reachable) PostgreSQL.
//!
//! `cargo bench --bench store` (or `--profile dev` to reuse the dev build; dependencies
//! are optimised in both). `IBSTREAM_BENCH_PG=postgres://…/db` names a PostgreSQL
//! maintenance database; a scratch database is created there and dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

use std::time::{Duration, Instant};

use ibstream::crypto::{self, MasterKey, MasterKeySource, MasterSecret, Scope};
use ibstream::store::{NewApiKey, NewConnectionEvent, Profile, Store};
use sea_orm::{ConnectionTrait, Database};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn report(what: &str, n: u32, elapsed: Duration) {
    let per = elapsed / n;
    let rate = f64::from(n) / elapsed.as_secs_f64();
    println!("{what:<44} n={n:<6} {per:>12.1?}/op  {rate:>10.0} ops/s");
}

async fn timed<F, Fut>(what: &str, n: u32, mut f: F)
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for i in 0..n {
        f(i).await;
    }
    report(what, n, start.elapsed());
}

fn crypto_costs() {
    let start = Instant::now();
    let n = 5;
    for _ in 0..n {
        MasterKey::derive(b"bench master secret", b"0123456789abcdef").expect("derive");
    }
    report(
        "master key derive (argon2id 19 MiB, t=2)",
        n,
        start.elapsed(),
    );

    let key = MasterKey::derive(b"bench", b"0123456789abcdef").expect("derive");
    let start = Instant::now();
    let n = 20_000;
    for _ in 0..n {
        let sealed = key.seal(b"a password of ordinary length").expect("seal");
        key.open(&sealed).expect("open");
    }
    report("seal + open 29 bytes (AES-256-GCM)", n, start.elapsed());

    let generated = crypto::generate_api_key();
    let start = Instant::now();
    let n = 200;
    for _ in 0..n {
        assert!(crypto::verify_api_key(&generated.secret, &generated.hash));
    }
    report("API key verify (argon2id 4 MiB, t=1)", n, start.elapsed());
}

async fn store_costs(label: &str, url: &str) {
    println!("-- {label}");
    let start = Instant::now();
    let store = Store::open(url).await.expect("open");
    report("open + migrate + seed (first time)", 1, start.elapsed());
    let secret = MasterSecret::load(&MasterKeySource::Secret("bench".into())).expect("secret");
    let start = Instant::now();
    ibstream::store::unlock(&store, &secret)
        .await
        .expect("unlock");
    report(
        "unlock, first start (derive + store check)",
        1,
        start.elapsed(),
    );
    let start = Instant::now();
    ibstream::store::unlock(&store, &secret)
        .await
        .expect("unlock");
    report("unlock, later start (derive + verify)", 1, start.elapsed());

    timed("record_event", 1000, |i| {
        let store = store.clone();
        async move {
            let event = NewConnectionEvent::now("connected", format!("bench {i}"));
            store.record_event(&event).await.expect("record");
        }
    })
    .await;
    timed("recent_events(100)", 200, |_| {
        let store = store.clone();
        async move {
            assert_eq!(store.recent_events(100).await.expect("events").len(), 100);
        }
    })
    .await;
    timed("put_contract (1 KiB payload)", 1000, |i| {
        let store = store.clone();
        async move {
            let key = format!("STK:SYM{i}:SMART:USD");
            store
                .put_contract(&key, i64::from(i), &[7u8; 1024])
                .await
                .expect("put");
        }
    })
    .await;
    timed("contract_by_key", 1000, |i| {
        let store = store.clone();
        async move {
            let key = format!("STK:SYM{i}:SMART:USD");
            assert!(store.contract_by_key(&key).await.expect("get").is_some());
        }
    })
    .await;
    timed("contract_by_con_id", 1000, |i| {
        let store = store.clone();
        async move {
            assert!(
                store
                    .contract_by_con_id(i64::from(i))
                    .await
                    .expect("get")
                    .is_some()
            );
        }
    })
    .await;
    store
        .save_profile(&Profile::named("other"))
        .await
        .expect("save");
    timed("activate_profile (alternating)", 200, |i| {
        let store = store.clone();
        async move {
            let name = if i % 2 == 0 { "other" } else { "default" };
            store.activate_profile(name).await.expect("activate");
        }
    })
    .await;
    timed("active_profile", 1000, |_| {
        let store = store.clone();
        async move {
            store.active_profile().await.expect("active");
        }
    })
    .await;
    let generated = crypto::generate_api_key();
    store
        .insert_api_key(&NewApiKey::from_generated(&generated, None, Scope::Read))
        .await
        .expect("insert key");
    timed("authenticate (lookup + verify)", 200, |_| {
        let store = store.clone();
        let token = generated.secret.clone();
        async move {
            assert!(store.authenticate(&token).await.expect("auth").is_some());
        }
    })
    .await;
    store.close().await.expect("close");
}

#[tokio::main]
async fn main() {
    crypto_costs();

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = ibstream::store::sqlite_url(&dir.path().join("bench.sqlite"));
    store_costs("SQLite (temporary file, WAL)", &sqlite).await;

    let admin_url = std::env::var("IBSTREAM_BENCH_PG").unwrap_or_else(|_| DEFAULT_PG.into());
    let Ok(admin) = Database::connect(admin_url.as_str()).await else {
        println!("-- PostgreSQL at {admin_url} unreachable; skipped");
        return;
    };
    let name = format!("ibstream_bench_{}", std::process::id());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create bench database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    store_costs("PostgreSQL (local)", &format!("{base}/{name}")).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop bench database");
}
