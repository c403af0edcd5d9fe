//! Costs of the connection API as a client sees them, against the simulated gateway on
//! loopback: unary latency without keys, with a verified (cached) key and with a key seen
//! for the first time (argon2id), TestConnection, and the time from a dropped gateway
//! connection back to CONNECTED, bridged by the IB client library or by the session's
//! own reconnect.
//!
//! `cargo bench --bench connection` (or `--profile dev` to reuse the dev build).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

use std::time::{Duration, Instant};

use ibstream::api::ServerHandle;
use ibstream::app::{App, ServerOptions};
use ibstream::config::Config;
use ibstream::crypto::{self, MasterKeySource, MasterSecret, Scope};
use ibstream::ib::SessionSettings;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use ibstream::sim::{SimConfig, SimHandle, Simulator};
use ibstream::store::{NewApiKey, Store};
use tonic::transport::Channel;

fn summary(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let pct = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)];
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "{what:<48} n={n:<5} mean {mean:>10.1?}  p50 {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}",
        pct(0.50),
        pct(0.99),
        samples[n - 1]
    );
}

struct Setup {
    sim: SimHandle,
    server: ServerHandle,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn start(session: SessionSettings) -> Setup {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in_data_dir(dir.path()).await.expect("store");
    let mut profile = store.active_profile().await.expect("profile");
    profile.port = sim.gateway_addr().port();
    profile.connect_on_start = false;
    store.save_profile(&profile).await.expect("save");
    let secret =
        MasterSecret::load(&MasterKeySource::Secret("bench secret".into())).expect("secret");
    let master_key = ibstream::store::unlock(&store, &secret)
        .await
        .expect("unlock");
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    let server = App::start(
        ServerOptions {
            config,
            store: store.clone(),
            master_key,
            session,
        },
        None,
    )
    .await
    .expect("server");
    Setup {
        sim,
        server,
        store,
        _dir: dir,
    }
}

async fn channel(setup: &Setup) -> Channel {
    Channel::from_shared(format!("http://{}", setup.server.addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn key(store: &Store, scope: Scope) -> String {
    let key = crypto::generate_api_key();
    store
        .insert_api_key(&NewApiKey::from_generated(&key, None, scope))
        .await
        .expect("key");
    key.secret.to_string()
}

fn with_key(
    channel: Channel,
    token: &str,
) -> ConnectionServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, impl tonic::service::Interceptor>,
> {
    let value: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("ascii");
    ConnectionServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", value.clone());
        Ok(r)
    })
}

async fn unary_latency() {
    let setup = start(SessionSettings::default()).await;
    let mut anonymous = ConnectionServiceClient::new(channel(&setup).await);
    // Warm-up: connection windows, allocator, the store's "any keys?" cache.
    for _ in 0..500 {
        anonymous
            .get_status(pb::GetStatusRequest {})
            .await
            .expect("status");
    }
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        anonymous
            .get_status(pb::GetStatusRequest {})
            .await
            .expect("status");
        samples.push(t.elapsed());
    }
    summary("GetStatus, no keys (loopback)", samples);

    let token = key(&setup.store, Scope::Admin).await;
    let mut keyed = with_key(channel(&setup).await, &token);
    keyed
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("first call");
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        keyed
            .get_status(pb::GetStatusRequest {})
            .await
            .expect("status");
        samples.push(t.elapsed());
    }
    summary("GetStatus, admin key (verified, cached)", samples);

    let mut samples = Vec::new();
    for _ in 0..20 {
        let token = key(&setup.store, Scope::Read).await;
        let mut fresh = with_key(channel(&setup).await, &token);
        let t = Instant::now();
        fresh
            .get_status(pb::GetStatusRequest {})
            .await
            .expect("status");
        samples.push(t.elapsed());
    }
    summary("GetStatus, first call of a new key (argon2id)", samples);

    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = keyed
            .test_connection(pb::TestConnectionRequest::default())
            .await
            .expect("test connection")
            .into_inner();
        assert!(matches!(
            r.result,
            Some(pb::test_connection_response::Result::Success(_))
        ));
        samples.push(t.elapsed());
    }
    summary("TestConnection (connect, handshake, time, close)", samples);
    setup.server.shutdown().await.expect("shutdown");
    setup.sim.shutdown().await;
}

async fn reconnect_time(what: &str, session: SessionSettings) {
    let setup = start(session).await;
    let mut client = ConnectionServiceClient::new(channel(&setup).await);
    client
        .connect(pb::ConnectRequest {})
        .await
        .expect("connect");
    let mut link = setup.server.context().link.clone();
    let mut samples = Vec::new();
    for _ in 0..5 {
        link.borrow_and_update();
        let t = Instant::now();
        setup.sim.control().drop_connections();
        // Down, then up again with a new generation.
        loop {
            link.changed().await.expect("session alive");
            if link.borrow_and_update().is_some() {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    summary(what, samples);
    setup.server.shutdown().await.expect("shutdown");
    setup.sim.shutdown().await;
}

#[tokio::main]
async fn main() {
    unary_latency().await;
    reconnect_time(
        "dropped connection → live link (IB client's reconnect)",
        SessionSettings::default(),
    )
    .await;
    reconnect_time(
        "dropped connection → live link (session's reconnect)",
        SessionSettings {
            library_reconnect_attempts: 0,
            ..SessionSettings::default()
        },
    )
    .await;
}
