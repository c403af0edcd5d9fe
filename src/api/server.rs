//! Assembles and runs the gRPC server: services, reflection, health, auth, limits, TLS,
//! graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
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
use super::health::spawn_health_follower;
use super::limits::StreamLimiter;
use super::trace::RpcTraceLayer;
use crate::ib::{Session, SessionBackend, SessionSettings};
use crate::metrics::Metrics;

/// How long in-flight calls may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Network-facing settings of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// Serve a non-loopback address without API keys.
    pub insecure_no_auth: bool,
    pub max_request_bytes: usize,
    /// Concurrent streams one API key may hold; 0: no limit.
    pub max_streams_per_key: usize,
    /// Bound on each unary call (streams are not cut).
    pub unary_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tls: None,
            insecure_no_auth: false,
            max_request_bytes: 4 * 1024 * 1024,
            max_streams_per_key: 64,
            unary_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the server is started with.
pub struct ServerOptions {
    pub settings: ServerSettings,
    pub session: SessionSettings,
    pub backend: Arc<dyn SessionBackend>,
    pub keys: Arc<dyn KeyVerifier>,
    /// Connect at start-up (the active profile's `connect_on_start`).
    pub connect_on_start: bool,
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
        let settings = options.settings.clone();
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?,
        };
        let addr = listener.local_addr().context("listener has no address")?;
        check_exposure(&settings, addr, options.keys.keys_required().await)?;
        let tls = load_tls(settings.tls.as_ref())?;

        let metrics = Arc::new(Metrics::default());
        let (session, session_task) =
            Session::start(options.backend.clone(), options.session, metrics.clone());
        let shutdown = CancellationToken::new();
        let ctx = ServerContext {
            link: session.link(),
            session,
            metrics,
            streams: StreamLimiter::new(settings.max_streams_per_key),
            shutdown: shutdown.clone(),
            max_request_bytes: settings.max_request_bytes,
            backend: options.backend,
        };

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let health_task = spawn_health_follower(
            health_reporter,
            ctx.session.watch_status(),
            shutdown.clone(),
        );
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the reflection service")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("building the reflection service")?;

        let mut builder = TonicServer::builder()
            .timeout(settings.unary_timeout)
            .http2_keepalive_interval(Some(settings.keepalive_interval))
            .http2_keepalive_timeout(Some(settings.keepalive_timeout));
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls)
                .context("invalid TLS configuration")?;
        }
        let router = builder
            .layer(RpcTraceLayer)
            .layer(AuthLayer::new(Authenticator::new(options.keys)))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            // The public API. Each ibstream service registers here.
            .add_service(super::connection::service(&ctx));

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let signal = shutdown.clone();
        let serve = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, signal.cancelled_owned())
                .await
        });
        tracing::info!(%addr, tls = settings.tls.is_some(), "gRPC server listening");

        if options.connect_on_start {
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

/// Refuses to expose an unauthenticated server beyond loopback.
fn check_exposure(
    settings: &ServerSettings,
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

fn load_tls(files: Option<&TlsFiles>) -> anyhow::Result<Option<ServerTlsConfig>> {
    let Some(files) = files else { return Ok(None) };
    let cert = std::fs::read(&files.cert)
        .with_context(|| format!("cannot read TLS certificate {}", files.cert.display()))?;
    let key = std::fs::read(&files.key)
        .with_context(|| format!("cannot read TLS key {}", files.key.display()))?;
    let identity = tonic::transport::Identity::from_pem(cert, key);
    Ok(Some(ServerTlsConfig::new().identity(identity)))
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.metrics.clone()
    }

    pub fn session(&self) -> &Session {
        &self.ctx.session
    }

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
