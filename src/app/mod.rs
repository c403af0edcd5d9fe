//! Assembles the running server: the store-backed session, the IB source, the fan-out,
//! the contract cache and the market-data settings, handed to [`crate::api`] as built
//! parts. `ibstream serve` and `ibstream demo` start the server here.
//!
//! - [`store_backend`]: the store behind the session ([`StoreBackend`]) and behind the
//!   auth layer ([`StoreKeys`]).
//! - [`contracts_store`]: the fan-out's contract cache in the store.
//! - [`settings`]: the market-data settings from configuration and active profile, and
//!   following the profile as it changes.

pub mod cluster;
pub mod contracts_store;
pub mod settings;
pub mod store_backend;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::contracts_store::StoreContracts;
use self::settings::{SettingsFollower, follow_profile};
use self::store_backend::{StoreBackend, StoreKeys};
use crate::api::convert::session_profile;
use crate::api::market_data::{MarketDataParts, MarketDataSettings, SettingsHandle};
use crate::api::{KeyVerifier, Server, ServerContext, ServerHandle, ServerParts};
use crate::api::{StreamGate, StreamLimiter};
use crate::bars::{Bars, HistorySource, IbHistory, LiveBars};
use crate::cluster::{HistoryPort, RoleHistory};
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::fanout::contracts::{ContractStore, Contracts};
use crate::fanout::{Chains, Fanout, IbSource, MarketDataSource};
use crate::ib::historical_pacer::{HistoricalPacer, HistoricalRules};
use crate::ib::{Session, SessionSettings};
use crate::metrics::Metrics;
use crate::store::Store;

/// Everything the server is started with.
pub struct ServerOptions {
    /// The effective configuration.
    pub config: Config,
    pub store: Store,
    /// Unlocked master key of `store` (see [`crate::store::unlock`]).
    pub master_key: MasterKey,
    /// Timings of the session's machinery.
    pub session: SessionSettings,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions").finish_non_exhaustive()
    }
}

/// The assembled server, not serving yet.
pub struct App {
    parts: ServerParts,
    /// Whether the active profile asks to connect as soon as the server starts.
    connect_on_start: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("connect_on_start", &self.connect_on_start)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Binds the server's address (`listener` when given), then assembles and serves;
    /// the session connects at once when the active profile says so.
    pub async fn start(
        options: ServerOptions,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<ServerHandle> {
        let keys: Arc<dyn KeyVerifier> = Arc::new(StoreKeys::new(options.store.clone()));
        let server = Server::bind(&options.config.server, listener, keys.keys_required().await)
            .await?
            .web(&options.config.web);
        let app = App::build(options, keys).await?;
        let connect = app.connect_on_start;
        let handle = server.serve(app.parts)?;
        if connect {
            let session = handle.session().clone();
            tokio::spawn(async move {
                if let Err(err) = session.connect().await {
                    tracing::warn!(error = %err, "connect on start failed; retrying in the background");
                }
            });
        }
        Ok(handle)
    }

    /// Starts the session over the store and builds what the services need, `keys`
    /// checking API keys.
    pub async fn build(options: ServerOptions, keys: Arc<dyn KeyVerifier>) -> anyhow::Result<App> {
        let ServerOptions {
            config,
            store,
            master_key,
            session,
        } = options;
        let config = Arc::new(config);
        let active = store
            .active_profile()
            .await
            .context("cannot read the active profile")?;
        let metrics = Arc::new(Metrics::default());
        let backend = Arc::new(StoreBackend::new(store.clone()));
        let (session, session_task) = Session::start(
            backend,
            session,
            metrics.clone(),
            Some(&session_profile(&active)),
        );
        let shutdown = CancellationToken::new();
        let streams = StreamGate::new(
            StreamLimiter::new(config.server.max_streams_per_key as usize),
            shutdown.clone(),
            metrics.clone(),
            keys.clone(),
        );
        let settings = MarketDataSettings::from_config(&config, &active);
        let joined = match &config.cluster.url {
            Some(url) => Some(
                cluster::join(
                    &config.cluster,
                    url,
                    store.backend(),
                    &session,
                    settings.request_timeout,
                )
                .await?,
            ),
            None => None,
        };
        let source: Arc<dyn MarketDataSource> = match &joined {
            Some(joined) => Arc::new(joined.source.clone()),
            None => IbSource::new(&session),
        };
        let cache: Arc<dyn ContractStore> = Arc::new(StoreContracts(store.clone()));
        let mut market_data = market_data_parts(
            source.clone(),
            Some(cache),
            settings,
            metrics.clone(),
            streams.clone(),
        );
        let local_history = IbHistory::new(session.link(), session.pacer());
        let history_pacer = HistoricalPacer::new(
            HistoricalRules::scaled(settings.historical_pacing_scale),
            session.pacer(),
        );
        let history: Arc<dyn HistorySource> = match &joined {
            Some(joined) => Arc::new(RoleHistory {
                role: joined.source.clone(),
                local: local_history.clone(),
                bus: joined.bus.clone(),
            }),
            None => local_history.clone(),
        };
        let bars = Bars::new(
            history.clone(),
            Some(store.clone()),
            history_pacer.clone(),
            settings.request_timeout,
        );
        market_data.live_bars = Some(LiveBars::new(
            history,
            bars.clone(),
            market_data.fanout.clone(),
            settings.fanout.linger,
        ));
        market_data.bars = Some(bars);
        tokio::spawn(follow_profile(SettingsFollower {
            config: config.clone(),
            store: store.clone(),
            link: session.link(),
            settings: market_data.settings.clone(),
            fanout: market_data.fanout.clone(),
            shutdown: shutdown.clone(),
        }));
        // In a cluster the election decides when this node connects.
        let connect_on_start = active.connect_on_start && joined.is_none();
        let cluster = match joined {
            Some(joined) => Some(
                cluster::elect(cluster::Electing {
                    config: &config.cluster,
                    joined,
                    session: session.clone(),
                    fanout: market_data.fanout.clone(),
                    history: HistoryPort {
                        source: local_history,
                        pacer: history_pacer,
                        live: market_data.live_bars.clone(),
                    },
                    metrics: metrics.clone(),
                    shutdown: shutdown.clone(),
                })
                .await?,
            ),
            None => None,
        };
        let context = ServerContext {
            store,
            master_key: Arc::new(master_key),
            link: session.link(),
            session,
            metrics,
            streams,
            max_request_bytes: config.server.max_request_bytes,
            cluster,
        };
        Ok(App {
            parts: ServerParts {
                context,
                market_data,
                keys,
                shutdown,
                session_task,
            },
            connect_on_start,
        })
    }
}

/// The market-data service's parts over `source`: the fan-out, the contract cache
/// (memory, then `cache`), the chains and the settings handle.
pub fn market_data_parts(
    source: Arc<dyn MarketDataSource>,
    cache: Option<Arc<dyn ContractStore>>,
    settings: MarketDataSettings,
    metrics: Arc<Metrics>,
    streams: StreamGate,
) -> MarketDataParts {
    let fanout = Fanout::new(source.clone(), settings.fanout, metrics.clone());
    let contracts = Arc::new(Contracts::new(source, cache, settings.request_timeout));
    let chains = Arc::new(Chains {
        fanout: fanout.clone(),
        contracts: contracts.clone(),
        greeks: settings.greeks,
        deadline: settings.request_timeout,
    });
    MarketDataParts {
        fanout,
        contracts,
        chains,
        settings: SettingsHandle::new(settings),
        metrics,
        streams,
        bars: None,
        live_bars: None,
    }
}
