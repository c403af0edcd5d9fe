//! Assembles and runs the gRPC server: services, reflection, health, auth, limits, TLS,
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server as TonicServer, ServerTlsConfig};

use super::auth::{AuthLayer, Authenticator, KeyVerifier};
use super::context::ServerContext;
use super::deadline::UnaryDeadlineLayer;
use super::health::spawn_health_follower;
use super::limits::StreamLimiter;
use super::store_backend::{StoreBackend, StoreKeys, session_profile};
use super::trace::RpcTraceLayer;
use crate::config::{Config, ServerConfig};
use crate::crypto::MasterKey;
use crate::ib::{Session, SessionSettings};
use crate::metrics::Metrics;
use crate::store::Store;

/// How long in-flight calls may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the server is started with.
pub struct ServerOptions {
    /// The effective configuration (`server.*` is used here).
    pub config: Config,
    pub store: Store,
    /// Unlocked master key of `store` (see [`crate::crypto::unlock`]).
    pub master_key: MasterKey,
    /// Timings of the session's machinery.
    pub session: SessionSettings,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions").finish_non_exhaustive()
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    ctx: ServerContext,
    serve: JoinHandle<Result<(), tonic::transport::Error>>,
    session_task: JoinHandle<()>,
    health_task: JoinHandle<()>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The gRPC server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `settings.listen` (or uses `listener`), starts the session and serves until
    /// [`ServerHandle::shutdown`].
    pub async fn start(
        options: ServerOptions,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<ServerHandle> {
        let settings = options.config.server.clone();
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?,
        };
        let addr = listener.local_addr().context("listener has no address")?;
        let keys = Arc::new(StoreKeys::new(options.store.clone()));
        check_exposure(&settings, addr, keys.keys_required().await)?;
        let tls = load_tls(&settings)?;
        let active = options
            .store
            .active_profile()
            .await
            .context("cannot read the active profile")?;

        let metrics = Arc::new(Metrics::default());
        let backend = Arc::new(StoreBackend::new(options.store.clone()));
        let (session, session_task) = Session::start(
            backend,
            options.session,
            metrics.clone(),
            Some(&session_profile(&active)),
        );
        let shutdown = CancellationToken::new();
        let ctx = ServerContext {
            config: Arc::new(options.config),
            store: options.store,
            master_key: Arc::new(options.master_key),
            link: session.link(),
            session,
            metrics,
            streams: StreamLimiter::new(settings.max_streams_per_key as usize),
            shutdown: shutdown.clone(),
        };

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let health_task = spawn_health_follower(
            health_reporter,
            ctx.session.watch_status(),
            shutdown.clone(),
        );
        let reflection_v1 = reflection()
            .build_v1()
            .context("building the reflection service")?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .context("building the reflection service")?;

        let market_data = super::market_data::service(&ctx).await?;
        let mut builder = TonicServer::builder()
            .http2_keepalive_interval(Some(settings.keepalive_interval))
            .http2_keepalive_timeout(Some(settings.keepalive_timeout));
        let tls_enabled = tls.is_some();
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls)
                .context("invalid TLS configuration")?;
        }
        let router = builder
            .layer(RpcTraceLayer)
            .layer(AuthLayer::new(Authenticator::new(keys)))
            .layer(UnaryDeadlineLayer::new(settings.unary_timeout))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            // The public API. Each ibstream service registers here.
            .add_service(super::connection::service(&ctx))
            .add_service(market_data);

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let signal = shutdown.clone();
        let serve = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, signal.cancelled_owned())
                .await
        });
        tracing::info!(%addr, tls = tls_enabled, "gRPC server listening");

        if active.connect_on_start {
            let session = ctx.session.clone();
            tokio::spawn(async move {
                if let Err(err) = session.connect().await {
                    tracing::warn!(error = %err, "connect on start failed; retrying in the background");
                }
            });
        }
        Ok(ServerHandle {
            addr,
            ctx,
            serve,
            session_task,
            health_task,
        })
    }
}

/// The gRPC services the server registers, as reflection lists them. A service added
/// to the router is added here too (health reports on the same names).
pub const SERVED_SERVICES: &[&str] = &[
    "ibstream.v1.ConnectionService",
    "ibstream.v1.MarketDataService",
];

/// Reflection over ibstream's descriptors, listing what is served (the descriptor set
/// also holds the simulator's control service, which this server does not serve).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in SERVED_SERVICES {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Refuses to expose an unauthenticated server beyond loopback.
fn check_exposure(
    settings: &ServerConfig,
    addr: SocketAddr,
    keys_required: bool,
) -> anyhow::Result<()> {
    if keys_required {
        return Ok(());
    }
    if addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "NO API KEYS EXIST: every local caller has full admin access. Create one with `ibstream keys create`."
        );
        return Ok(());
    }
    if settings.insecure_no_auth {
        tracing::warn!(
            %addr,
            "INSECURE: serving a non-loopback address without API keys (--insecure-no-auth); anyone who can reach it has full admin access"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {addr} without API keys: create a key with `ibstream keys create`, listen on a loopback address, or pass --insecure-no-auth"
    )
}

/// TLS when both a certificate and a key are configured.
fn load_tls(settings: &ServerConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (cert, key) = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return Ok(None),
        _ => anyhow::bail!("TLS needs both server.tls_cert and server.tls_key"),
    };
    let cert = std::fs::read(cert)
        .with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
    let key =
        std::fs::read(key).with_context(|| format!("cannot read TLS key {}", key.display()))?;
    let identity = tonic::transport::Identity::from_pem(cert, key);
    Ok(Some(ServerTlsConfig::new().identity(identity)))
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters and gauges every layer updates.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.metrics.clone()
    }

    /// The IB session.
    pub fn session(&self) -> &Session {
        &self.ctx.session
    }

    /// What the services share (link, store, limits …).
    pub fn context(&self) -> &ServerContext {
        &self.ctx
    }

    /// Ends every stream with `UNAVAILABLE`, reports NOT_SERVING, lets in-flight calls
    /// finish, then closes the IB session cleanly.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        self.ctx.shutdown.cancel();
        let _ = self.health_task.await;
        let mut serve = self.serve;
        let served = match tokio::time::timeout(DRAIN_TIMEOUT, &mut serve).await {
            Ok(joined) => joined
                .context("server task failed")?
                .context("gRPC server failed"),
            Err(_) => {
                tracing::warn!("in-flight calls did not finish in time; closing them");
                serve.abort();
                Ok(())
            }
        };
        self.ctx.session.shutdown().await;
        let _ = self.session_task.await;
        tracing::info!("shut down");
        served
    }

    /// Runs until `signal` resolves, then shuts down.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        signal.await;
        self.shutdown().await
    }
}
