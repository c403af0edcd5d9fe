//! ibstream's server in the bench process: over the synthetic source ([`synthetic`]), or
//! as `ibstream serve` runs it against a gateway ([`against_gateway`]). Each has a store
//! of its own in a fresh temporary directory (an empty contract cache).

use std::sync::Arc;
use std::time::Duration;

use ibstream::api::ServerHandle;
use ibstream::api::market_data::MarketDataSettings;
use ibstream::api::{KeyVerifier, Server, ServerContext, ServerParts, StreamGate, StreamLimiter};
use ibstream::app::store_backend::{StoreBackend, StoreKeys};
use ibstream::app::{App, ServerOptions, market_data_parts};
use ibstream::config::Config;
use ibstream::crypto::{MasterKey, MasterKeySource, MasterSecret};
use ibstream::fanout::MarketDataSource;
use ibstream::ib::{ConnectionState, Session, SessionSettings};
use ibstream::metrics::Metrics;
use ibstream::store::Store;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running ibstream server and the directory of its store.
pub struct Ibstream {
    pub handle: ServerHandle,
    pub url: String,
    _dir: TempDir,
}

impl Ibstream {
    pub fn metrics(&self) -> Arc<Metrics> {
        self.handle.metrics()
    }
}

/// Lines the synthetic server may hold: the most a profile allows.
const SYNTHETIC_LINES: usize = 10_000;

/// The configuration both servers run with: the defaults, on an ephemeral port.
fn config() -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config
}

/// A store in a fresh temporary directory, unlocked.
async fn fresh_store() -> (TempDir, Store, MasterKey) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in_data_dir(dir.path())
        .await
        .expect("store opens");
    let secret = MasterSecret::load(&MasterKeySource::Secret("ibstream backends bench".into()))
        .expect("secret");
    let key = ibstream::store::unlock(&store, &secret)
        .await
        .expect("store unlocks");
    (dir, store, key)
}

/// ibstream's server over `source`, assembled as `App::build` assembles it (store,
/// session, stream gate, API-key layer, market-data parts, `Server::serve`) but with
/// `source` in place of the IB session's. The one place the bench builds ibstream's
/// services itself.
pub async fn synthetic(source: Arc<dyn MarketDataSource>) -> Ibstream {
    let (dir, store, master_key) = fresh_store().await;
    let config = config();
    let keys: Arc<dyn KeyVerifier> = Arc::new(StoreKeys::new(store.clone()));
    let listener = TcpListener::bind(config.server.listen).await.expect("bind");
    let server = Server::bind(&config.server, Some(listener), false)
        .await
        .expect("bound");
    let metrics = Arc::new(Metrics::default());
    let backend = Arc::new(StoreBackend::new(store.clone()));
    let (session, session_task) =
        Session::start(backend, SessionSettings::default(), metrics.clone(), None);
    let shutdown = CancellationToken::new();
    let limiter = StreamLimiter::new(config.server.max_streams_per_key as usize);
    let streams = StreamGate::new(limiter, shutdown.clone(), metrics.clone(), keys.clone());
    let mut settings = MarketDataSettings::default();
    settings.fanout.line_budget = SYNTHETIC_LINES;
    settings.max_instruments_per_request = config.server.max_instruments_per_request as usize;
    let market_data = market_data_parts(source, None, settings, metrics.clone(), streams.clone());
    let context = ServerContext {
        store,
        master_key: Arc::new(master_key),
        link: session.link(),
        session,
        metrics,
        streams,
        max_request_bytes: config.server.max_request_bytes,
        cluster: None,
    };
    let parts = ServerParts {
        context,
        market_data,
        keys,
        shutdown,
        session_task,
    };
    let handle = server.serve(parts).expect("serving");
    let url = format!("http://{}", handle.addr());
    Ibstream {
        handle,
        url,
        _dir: dir,
    }
}

/// ibstream's server as `ibstream serve` starts it (`App::start`), its active profile
/// aimed at the gateway on `port` with `line_budget` lines; returns once the session is
/// connected.
pub async fn against_gateway(port: u16, line_budget: u32) -> Ibstream {
    let (dir, store, master_key) = fresh_store().await;
    let mut profile = store.active_profile().await.expect("default profile");
    profile.host = "127.0.0.1".into();
    profile.port = port;
    profile.client_id = 7;
    profile.connect_on_start = true;
    profile.line_budget = line_budget;
    store.save_profile(&profile).await.expect("profile saved");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let options = ServerOptions {
        config: config(),
        store,
        master_key,
        session: SessionSettings::default(),
    };
    let handle = App::start(options, Some(listener))
        .await
        .expect("server starts");
    let connected = async {
        while handle.session().status().state != ConnectionState::Connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), connected)
        .await
        .expect("the session connects to the simulator");
    let url = format!("http://{}", handle.addr());
    Ibstream {
        handle,
        url,
        _dir: dir,
    }
}
