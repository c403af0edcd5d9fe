//! Starts the simulator, a store in a temporary directory and the server on ephemeral
//! loopback ports; builds authenticated clients; waits for statuses with deadlines.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ibstream::api::ServerHandle;
use ibstream::config::Config;
use ibstream::crypto::{self, Scope};
use ibstream::ib::SessionSettings;
use ibstream::ib::backoff::Backoff;
use ibstream::ib::health::HealthSettings;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use ibstream::sim::{SimConfig, SimHandle, Simulator};
use ibstream::store::{NewApiKey, Store};
use tempfile::TempDir;
use tonic::Streaming;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{self, store_for};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing_subscriber::util::SubscriberInitExt;

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);

/// The master secret the test servers unlock their store with.
pub const MASTER_SECRET: &str = "correct horse battery staple";

/// Timings short enough for tests: health checks every 200 ms, two misses lose the
/// link, retries within 50–400 ms, a 1 s circuit cool-down.
pub fn fast_session() -> SessionSettings {
    SessionSettings {
        health: HealthSettings {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
            max_missed: 2,
        },
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(400),
        },
        circuit_cooldown: Duration::from_secs(1),
        library_reconnect_attempts: 2,
        link_poll_interval: Duration::from_millis(50),
    }
}

/// What a test wants different from the defaults.
pub struct Setup {
    pub connect_on_start: bool,
    pub retry_attempts: u32,
    pub session: SessionSettings,
    pub max_streams_per_key: u32,
    pub max_request_bytes: usize,
    pub unary_timeout: Duration,
    /// PEM certificate chain and key: serve over TLS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub sim: SimConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            connect_on_start: false,
            retry_attempts: 5,
            session: fast_session(),
            max_streams_per_key: 100,
            max_request_bytes: 4 * 1024 * 1024,
            unary_timeout: Duration::from_secs(20),
            tls: None,
            sim: SimConfig {
                tick_interval: Duration::from_millis(50),
                ..SimConfig::default()
            },
        }
    }
}

impl Setup {
    /// The defaults, with the session connecting as soon as the server starts.
    pub fn connecting() -> Setup {
        Setup {
            connect_on_start: true,
            ..Setup::default()
        }
    }
}

/// A running simulator, store and server.
pub struct Harness {
    pub sim: SimHandle,
    pub server: Option<ServerHandle>,
    pub store: Store,
    pub dir: TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> Harness {
        capture_logs();
        let sim = Simulator::start(setup.sim.clone())
            .await
            .expect("simulator starts");
        let (dir, store, mut profile) = store_for(&sim, 11).await;
        profile.connect_on_start = setup.connect_on_start;
        profile.retry_attempts = setup.retry_attempts;
        profile.connection_timeout = Duration::from_secs(2);
        store.save_profile(&profile).await.expect("profile saved");
        let server = start_server(&store, &setup).await;
        Harness {
            sim,
            server: Some(server),
            store,
            dir,
        }
    }

    pub fn server(&self) -> &ServerHandle {
        self.server.as_ref().expect("server running")
    }

    pub fn addr(&self) -> String {
        format!("http://{}", self.server().addr())
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.addr())
            .expect("valid uri")
            .connect()
            .await
            .expect("channel connects")
    }

    /// A client without a key.
    pub async fn client(&self) -> ConnectionServiceClient<Channel> {
        ConnectionServiceClient::new(self.channel().await)
    }

    /// A client sending `authorization: Bearer <token>`.
    pub async fn client_with_key(
        &self,
        token: &str,
    ) -> ConnectionServiceClient<InterceptedService<Channel, Bearer>> {
        ConnectionServiceClient::with_interceptor(self.channel().await, Bearer(token.to_owned()))
    }

    /// Creates an API key in the store; returns its id and token.
    pub async fn create_key(&self, scope: Scope) -> (String, String) {
        let key = crypto::generate_api_key();
        let record = self
            .store
            .insert_api_key(&NewApiKey::from_generated(
                &key,
                Some(format!("{scope}-key")),
                scope,
            ))
            .await
            .expect("key stored");
        (record.id, key.secret.to_string())
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        self.sim.shutdown().await;
    }
}

async fn start_server(store: &Store, setup: &Setup) -> ServerHandle {
    let mut config = Config::default();
    config.server.max_streams_per_key = setup.max_streams_per_key;
    config.server.unary_timeout = setup.unary_timeout;
    config.server.max_request_bytes = setup.max_request_bytes;
    if let Some((cert, key)) = &setup.tls {
        config.server.tls_cert = Some(cert.clone());
        config.server.tls_key = Some(key.clone());
    }
    support::start_server(store, MASTER_SECRET, config, setup.session).await
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct Bearer(pub String);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let value = format!("Bearer {}", self.0).parse().expect("ascii token");
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

pub fn state_of(status: &pb::ConnectionStatus) -> pb::ConnectionState {
    pb::ConnectionState::try_from(status.state).unwrap_or(pb::ConnectionState::Unspecified)
}

/// The status stream of a client without a key.
pub async fn watch_status(
    client: &mut ConnectionServiceClient<Channel>,
) -> Streaming<pb::ConnectionStatus> {
    client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// The newest `page_size` entries of the connection history.
pub async fn recent_events(
    client: &mut ConnectionServiceClient<Channel>,
    page_size: i32,
) -> Vec<pb::ConnectionEvent> {
    client
        .list_events(pb::ListEventsRequest { page_size })
        .await
        .unwrap()
        .into_inner()
        .events
}

/// Polls the connection history until an event's message contains `needle`.
pub async fn eventually_logged(
    client: &ConnectionServiceClient<Channel>,
    what: &str,
    needle: &str,
) {
    eventually(what, || {
        let mut c = client.clone();
        async move {
            let events = recent_events(&mut c, 200).await;
            events.iter().any(|e| e.message.contains(needle))
        }
    })
    .await;
}

/// The first message of a server stream, which every answer of the call must open with.
pub async fn first_message<T>(response: Result<tonic::Response<Streaming<T>>, tonic::Status>) -> T {
    let mut answers = response.unwrap().into_inner();
    answers.message().await.unwrap().expect("an answer")
}

/// Polls the server's overall health until it reports `want`, within [`WAIT`].
pub async fn health_becomes(health: &HealthClient<Channel>, what: &str, want: ServingStatus) {
    eventually(what, || {
        let mut health = health.clone();
        async move {
            let r = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .unwrap();
            r.into_inner().status == want as i32
        }
    })
    .await;
}

/// Reads the stream until a status satisfies `want`; returns it and every status seen.
pub async fn wait_for(
    stream: &mut Streaming<pb::ConnectionStatus>,
    what: &str,
    mut want: impl FnMut(&pb::ConnectionStatus) -> bool,
) -> (pb::ConnectionStatus, Vec<pb::ConnectionStatus>) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let status = stream
                .message()
                .await
                .expect("stream healthy")
                .expect("stream open");
            seen.push(status.clone());
            if want(&status) {
                return status;
            }
        }
    })
    .await;
    match found {
        Ok(status) => (status, seen),
        Err(_) => panic!(
            "timed out waiting for {what}; saw states {:?}",
            seen.iter().map(state_of).collect::<Vec<_>>()
        ),
    }
}

/// Waits for a status in `state`.
pub async fn wait_state(
    stream: &mut Streaming<pb::ConnectionStatus>,
    state: pb::ConnectionState,
) -> (pb::ConnectionStatus, Vec<pb::ConnectionStatus>) {
    wait_for(stream, &format!("{state:?}"), |s| state_of(s) == state).await
}

/// Polls `check` every 50 ms until it is true, within [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything any test in this binary logged, at every level.
pub fn captured_logs() -> String {
    let buffer = LOGS.get_or_init(Default::default);
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Installs (once) a subscriber writing every event, debug and up, to a buffer.
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let buffer = LOGS.get_or_init(Default::default).clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || BufferWriter(buffer.clone()))
            .finish();
        // Also bridges the `log` records of the IB client library.
        let _ = subscriber.try_init();
    });
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
