//! What the integration suites share to stand ibstream up against a simulated gateway:
//! a store in a temporary directory pointed at the gateway, and the server on an
//! ephemeral loopback port.

use ibstream::api::ServerHandle;
use ibstream::app::{App, ServerOptions};
use ibstream::config::Config;
use ibstream::crypto::{MasterKeySource, MasterSecret};
use ibstream::ib::SessionSettings;
use ibstream::sim::SimHandle;
use ibstream::store::{Profile, Store};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// A store in a fresh temporary directory and its active profile aimed at `sim` as
/// `client_id`; the caller finishes the profile for its suite and saves it.
pub async fn store_for(sim: &SimHandle, client_id: i32) -> (TempDir, Store, Profile) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in_data_dir(dir.path())
        .await
        .expect("store opens");
    let mut profile = store.active_profile().await.expect("default profile");
    profile.host = "127.0.0.1".into();
    profile.port = sim.gateway_addr().port();
    profile.client_id = client_id;
    (dir, store, profile)
}

/// Unlocks `store` with `secret` and starts the server from `config`, listening on an
/// ephemeral loopback port whatever `config` says.
pub async fn start_server(
    store: &Store,
    secret: &str,
    mut config: Config,
    session: SessionSettings,
) -> ServerHandle {
    let secret = MasterSecret::load(&MasterKeySource::Secret(secret.into())).expect("secret");
    let master_key = ibstream::store::unlock(store, &secret)
        .await
        .expect("store unlocks");
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    App::start(
        ServerOptions {
            config,
            store: store.clone(),
            master_key,
            session,
        },
        Some(listener),
    )
    .await
    .expect("server starts")
}
