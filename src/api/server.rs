//! Runs the gRPC server over parts [`crate::app`] assembled: services, reflection,
//! health, auth, deadlines, TLS, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server as TonicServer, ServerTlsConfig};

use super::auth::{Authenticator, Authorize, KeyVerifier};
use super::context::ServerContext;
use super::deadline::UnaryDeadline;
use super::health::{link_serves, session_serves, spawn_health_follower};
use super::market_data::{MarketData, MarketDataParts};
use super::middleware::MiddlewareLayer;
use super::missing_message::MissingMessage;
use super::trace::RpcTrace;
use super::web::{ConsoleAssets, OriginGuard, OriginPolicy};
use crate::config::{ServerConfig, WebConfig};
use crate::ib::Session;
use crate::metrics::Metrics;

/// How long a cluster node may take to step down and hand its lease back at shutdown.
const CLUSTER_RESIGN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long in-flight calls may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the services are built from, assembled by [`crate::app`].
pub struct ServerParts {
    /// What `ConnectionService` shares.
    pub context: ServerContext,
    /// What `MarketDataService` is built from.
    pub market_data: MarketDataParts,
    /// Checks the API keys of every call.
    pub keys: Arc<dyn KeyVerifier>,
    /// Fires when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// The session's task, awaited once the session is shut down.
    pub session_task: JoinHandle<()>,
}

impl std::fmt::Debug for ServerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerParts").finish_non_exhaustive()
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    ctx: ServerContext,
    shutdown: CancellationToken,
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

/// The gRPC server, bound but not serving yet.
pub struct Server {
    settings: ServerConfig,
    origins: OriginPolicy,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<ServerTlsConfig>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `settings.listen` (or uses `listener`), refuses to expose a server without
    /// keys beyond loopback (`keys_required`), and loads TLS.
    pub async fn bind(
        settings: &ServerConfig,
        listener: Option<TcpListener>,
        keys_required: bool,
    ) -> anyhow::Result<Server> {
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?,
        };
        let addr = listener.local_addr().context("listener has no address")?;
        check_exposure(settings, addr, keys_required)?;
        let tls = load_tls(settings)?;
        Ok(Server {
            settings: settings.clone(),
            origins: OriginPolicy::default(),
            listener,
            addr,
            tls,
        })
    }

    /// Lets web pages of `web.allowed_origins` call the API besides the console's own.
    pub fn web(mut self, web: &WebConfig) -> Server {
        self.origins = OriginPolicy::new(&web.allowed_origins);
        self
    }

    /// Serves the services built from `parts` until [`ServerHandle::shutdown`].
    pub fn serve(self, parts: ServerParts) -> anyhow::Result<ServerHandle> {
        let Server {
            settings,
            origins,
            listener,
            addr,
            tls,
        } = self;
        let shutdown = parts.shutdown;
        let ctx = parts.context;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let health_task = match &ctx.cluster {
            None => spawn_health_follower(
                health_reporter,
                SERVED_SERVICES,
                ctx.session.watch_status(),
                session_serves,
                shutdown.clone(),
            ),
            Some(_) => spawn_health_follower(
                health_reporter,
                SERVED_SERVICES,
                parts.market_data.fanout.source().link_state(),
                link_serves,
                shutdown.clone(),
            ),
        };
        let reflection_v1 = reflection()
            .build_v1()
            .context("building the reflection service")?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .context("building the reflection service")?;

        let mut builder = TonicServer::builder()
            // Browsers reach the API through gRPC-web over HTTP/1.
            .accept_http1(true)
            .http2_keepalive_interval(Some(settings.keepalive_interval))
            .http2_keepalive_timeout(Some(settings.keepalive_timeout));
        let tls_enabled = tls.is_some();
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls)
                .context("invalid TLS configuration")?;
        }
        let router = builder
            // Outermost first: foreign origins are refused before anything else runs,
            // configured ones get CORS answers, non-gRPC requests are the console's.
            .layer(MiddlewareLayer::new(OriginGuard::new(origins.clone())))
            .layer(origins.cors())
            .layer(MiddlewareLayer::new(ConsoleAssets))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(MiddlewareLayer::new(RpcTrace))
            .layer(MiddlewareLayer::new(Authorize::new(Authenticator::new(
                parts.keys,
            ))))
            .layer(MiddlewareLayer::new(UnaryDeadline::new(
                settings.unary_timeout,
            )))
            .layer(MiddlewareLayer::new(MissingMessage))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            // The public API. Each ibstream service registers here.
            .add_service(super::connection::service(&ctx))
            .add_service(MarketData::new(parts.market_data).into_service());

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let signal = shutdown.clone();
        let serve = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, signal.cancelled_owned())
                .await
        });
        tracing::info!(%addr, tls = tls_enabled, "gRPC server listening");
        Ok(ServerHandle {
            addr,
            ctx,
            shutdown,
            serve,
            session_task: parts.session_task,
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
        self.shutdown.cancel();
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
        if let Some(cluster) = &self.ctx.cluster {
            cluster.stopped(CLUSTER_RESIGN_LIMIT).await;
        }
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
