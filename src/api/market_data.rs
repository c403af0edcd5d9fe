//! `MarketDataService`: thin handlers that validate, delegate to the fan-out and the
//! contract cache, and convert.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tonic::{Request, Response, Status};

use super::auth::identity_of;
use super::context::ServerContext;
use super::limits::StreamLimiter;
use super::market_data_convert::{
    chain_to_pb, data_policy_from_pb, details_to_pb, instrument_to_spec, quote_to_pb, spec_to_pb,
    symbol_match_to_pb,
};
use super::market_data_store::StoreContracts;
use super::market_data_stream::{StreamGuard, chain_stream, quote_stream};
use crate::fanout::contracts::{ContractStore, Contracts};
use crate::fanout::tick::apply;
use crate::fanout::{
    Chains, ContractSpec, Fanout, FanoutError, FanoutSettings, GreeksParams, IbSource,
    MarketDataSource, OptionExtras, Quote, SourceError,
};
use crate::metrics::Metrics;
use crate::proto::ibstream::v1 as pb;
use crate::proto::ibstream::v1::market_data_service_server::{
    MarketDataService, MarketDataServiceServer,
};
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

/// Limits and parameters of the market-data service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketDataSettings {
    pub fanout: FanoutSettings,
    /// Bounds IB look-ups and one-off snapshots.
    pub request_timeout: Duration,
    pub greeks: GreeksParams,
    pub max_instruments_per_request: usize,
    pub max_streams_per_key: usize,
    /// Messages per second to IB (the profile's rate), reported by `ListSubscriptions`.
    pub message_rate: u32,
}

impl Default for MarketDataSettings {
    fn default() -> Self {
        MarketDataSettings {
            fanout: FanoutSettings::default(),
            request_timeout: Duration::from_secs(10),
            greeks: GreeksParams {
                risk_free_rate: 0.04,
                dividend_yield: 0.0,
            },
            max_instruments_per_request: 500,
            max_streams_per_key: 64,
            message_rate: 50,
        }
    }
}

/// Shared state of the handlers. Cheap to clone.
#[derive(Clone)]
pub struct MarketData {
    pub(crate) fanout: Fanout,
    pub(crate) contracts: Arc<Contracts>,
    pub(crate) chains: Arc<Chains>,
    pub(crate) metrics: Arc<Metrics>,
    settings: Arc<Mutex<MarketDataSettings>>,
    /// Streams per key and the server's shutdown, when run inside the server.
    streams: Option<(StreamLimiter, CancellationToken)>,
}

/// The service as the server registers it: over the session's link, with the store's
/// contract cache, the configuration and the active profile's limits (read again each
/// time a new session comes up, so a changed profile applies from its next connect).
pub async fn service(ctx: &ServerContext) -> anyhow::Result<MarketDataServiceServer<MarketData>> {
    let profile = ctx
        .store
        .active_profile()
        .await
        .context("cannot read the active profile")?;
    let settings = MarketDataSettings::from_config(&ctx.config, &profile);
    let source = IbSource::new(&ctx.session);
    let store: Arc<dyn ContractStore> = Arc::new(StoreContracts(ctx.store.clone()));
    let mut api = MarketData::new(source.clone(), Some(store), settings, ctx.metrics.clone());
    api.streams = Some((ctx.streams.clone(), ctx.shutdown.clone()));
    tokio::spawn(follow_profile(api.clone(), ctx.clone()));
    Ok(api.into_service())
}

/// Applies the active profile's limits whenever a new session comes up.
async fn follow_profile(api: MarketData, ctx: ServerContext) {
    let mut link = ctx.link.clone();
    let mut generation = None;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            changed = link.changed() => if changed.is_err() { return },
        }
        let current = link.borrow_and_update().as_ref().map(|l| l.generation);
        if current.is_none() || current == generation {
            continue;
        }
        generation = current;
        match ctx.store.active_profile().await {
            Ok(profile) => {
                let settings = MarketDataSettings::from_config(&ctx.config, &profile);
                api.update_settings(settings);
            }
            Err(e) => tracing::warn!(error = %e, "market-data limits not refreshed"),
        }
    }
}

impl std::fmt::Debug for MarketData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketData").finish_non_exhaustive()
    }
}

impl MarketData {
    /// The service over a market-data source (the session's `IbSource` in production).
    pub fn new(
        source: Arc<dyn MarketDataSource>,
        store: Option<Arc<dyn ContractStore>>,
        settings: MarketDataSettings,
        metrics: Arc<Metrics>,
    ) -> MarketData {
        let fanout = Fanout::new(source.clone(), settings.fanout, metrics.clone());
        let contracts = Arc::new(Contracts::new(source, store, settings.request_timeout));
        let chains = Arc::new(Chains {
            fanout: fanout.clone(),
            contracts: contracts.clone(),
            greeks: settings.greeks,
            deadline: settings.request_timeout,
        });
        MarketData {
            fanout,
            contracts,
            chains,
            metrics,
            settings: Arc::new(Mutex::new(settings)),
            streams: None,
        }
    }

    /// A permit for one more stream of the caller's key (inside the server), and the
    /// server's shutdown signal.
    fn stream_guard<T>(&self, request: &Request<T>) -> Result<StreamGuard, Status> {
        match &self.streams {
            Some((limiter, shutdown)) => Ok(StreamGuard {
                _permit: Some(limiter.acquire(&identity_of(request))?),
                shutdown: Some(shutdown.clone()),
            }),
            None => Ok(StreamGuard {
                _permit: None,
                shutdown: None,
            }),
        }
    }

    pub fn settings(&self) -> MarketDataSettings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies changed limits (e.g. a new active profile).
    pub fn update_settings(&self, settings: MarketDataSettings) {
        self.fanout.update_settings(settings.fanout);
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    pub fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    /// The tonic service.
    pub fn into_service(self) -> MarketDataServiceServer<MarketData> {
        MarketDataServiceServer::new(self)
    }

    /// Validates the instruments of a request (count, then each field).
    pub(crate) fn specs(
        &self,
        instruments: &[pb::Instrument],
    ) -> Result<Vec<ContractSpec>, FanoutError> {
        let max = self.settings().max_instruments_per_request;
        if instruments.is_empty() {
            return Err(FanoutError::invalid(
                "instruments",
                "at least one instrument is required",
            ));
        }
        if max > 0 && instruments.len() > max {
            return Err(FanoutError::invalid(
                "instruments",
                format!(
                    "{} instruments requested, at most {max} per request",
                    instruments.len()
                ),
            ));
        }
        instruments
            .iter()
            .enumerate()
            .map(|(i, inst)| instrument_to_spec(inst, &format!("instruments[{i}]")))
            .collect()
    }

    /// One snapshot: the cached value if a feed holds one, else a one-off request.
    async fn snapshot(
        &self,
        contract: &ContractSpec,
        allow_delayed: bool,
    ) -> Result<Quote, FanoutError> {
        if let Some(view) = self.fanout.cached(contract.con_id)
            && view.quote.has_data()
        {
            return Ok(view.quote.clone());
        }
        let settings = self.settings();
        let deadline = settings.request_timeout;
        let source = self.fanout.source();
        let mut asked = settings.fanout.data_type;
        let ticks = match source.snapshot(contract, asked, deadline).await {
            Err(SourceError::NoPermission(_)) if allow_delayed && !asked.is_delayed() => {
                asked = asked.delayed();
                source.snapshot(contract, asked, deadline).await?
            }
            other => other?,
        };
        let mut quote = Quote::empty(contract.con_id, &contract.symbol, asked);
        let mut extras = OptionExtras::default();
        for t in &ticks {
            apply(&mut quote, &mut extras, t);
        }
        if !quote.has_data() {
            return Err(FanoutError::Deadline(deadline));
        }
        quote.sequence = 1;
        quote.received_at = SystemTime::now();
        Ok(quote)
    }
}

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MarketDataService for MarketData {
    type StreamQuotesStream = BoxedStream<pb::StreamQuotesResponse>;
    type StreamOptionChainStream = BoxedStream<pb::StreamOptionChainResponse>;

    async fn stream_quotes(
        &self,
        request: Request<pb::StreamQuotesRequest>,
    ) -> Result<Response<Self::StreamQuotesStream>, Status> {
        let guard = self.stream_guard(&request)?;
        let req = request.into_inner();
        let specs = self.specs(&req.instruments)?;
        let allow = self
            .fanout
            .allows_delayed(data_policy_from_pb(req.data_policy)?);
        let stream = quote_stream(self.clone(), req.instruments, specs, allow);
        Ok(Response::new(guard.wrap(stream)))
    }

    async fn get_quotes(
        &self,
        request: Request<pb::GetQuotesRequest>,
    ) -> Result<Response<pb::GetQuotesResponse>, Status> {
        let req = request.into_inner();
        let specs = self.specs(&req.instruments)?;
        let allow = self
            .fanout
            .allows_delayed(data_policy_from_pb(req.data_policy)?);
        let quotes =
            futures::future::join_all(specs.iter().enumerate().map(|(i, spec)| async move {
                let at = |e: FanoutError| prefix(e, &format!("instruments[{i}]"));
                let details = self.contracts.resolve(spec).await.map_err(at)?;
                self.snapshot(&details.contract, allow).await.map_err(at)
            }))
            .await;
        let quotes = quotes.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::GetQuotesResponse {
            quotes: quotes.iter().map(quote_to_pb).collect(),
        }))
    }

    async fn resolve_contract(
        &self,
        request: Request<pb::ResolveContractRequest>,
    ) -> Result<Response<pb::ContractDetails>, Status> {
        let instrument = request
            .into_inner()
            .instrument
            .ok_or_else(|| FanoutError::invalid("instrument", "required"))?;
        let spec = instrument_to_spec(&instrument, "instrument")?;
        let details = self.contracts.resolve(&spec).await?;
        Ok(Response::new(details_to_pb(&details)))
    }

    async fn search_symbols(
        &self,
        request: Request<pb::SearchSymbolsRequest>,
    ) -> Result<Response<pb::SearchSymbolsResponse>, Status> {
        let pattern = request.into_inner().pattern.trim().to_owned();
        if pattern.is_empty() || pattern.len() > 64 {
            return Err(FanoutError::invalid("pattern", "must be 1 to 64 characters").into());
        }
        let found = self.contracts.search(&pattern).await?;
        Ok(Response::new(pb::SearchSymbolsResponse {
            matches: found.iter().map(symbol_match_to_pb).collect(),
        }))
    }

    async fn list_subscriptions(
        &self,
        _request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let settings = self.settings();
        let usage = self.fanout.line_usage();
        let subscriptions = self
            .fanout
            .list()
            .iter()
            .map(|s| pb::Subscription {
                instrument: Some(spec_to_pb(&s.contract)),
                stream_count: u32::try_from(s.readers).unwrap_or(u32::MAX),
                lingering: s.lingering,
                stale: s.view.quote.stale,
                market_data_type: s.view.quote.market_data_type.map_or(
                    pb::MarketDataType::Unspecified,
                    super::convert::market_data_type,
                ) as i32,
                sequence: s.view.quote.sequence,
            })
            .collect();
        let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions,
            limits: Some(pb::Limits {
                lines_in_use: to_u32(usage.in_use),
                line_budget: to_u32(usage.budget),
                message_rate: settings.message_rate,
                max_streams_per_key: to_u32(settings.max_streams_per_key),
                max_instruments_per_request: to_u32(settings.max_instruments_per_request),
                streams_open: u32::try_from(self.metrics.streams_open.get().max(0))
                    .unwrap_or(u32::MAX),
            }),
        }))
    }

    async fn get_option_chain(
        &self,
        request: Request<pb::GetOptionChainRequest>,
    ) -> Result<Response<pb::OptionChain>, Status> {
        let underlying = request
            .into_inner()
            .underlying
            .ok_or_else(|| FanoutError::invalid("underlying", "required"))?;
        let spec = instrument_to_spec(&underlying, "underlying")?;
        let details = self.contracts.resolve(&spec).await?;
        let params = self.contracts.option_params(&details).await?;
        Ok(Response::new(chain_to_pb(&details.contract, &params)))
    }

    async fn stream_option_chain(
        &self,
        request: Request<pb::StreamOptionChainRequest>,
    ) -> Result<Response<Self::StreamOptionChainStream>, Status> {
        let guard = self.stream_guard(&request)?;
        let req = request.into_inner();
        let chain = super::market_data_stream::chain_request(self, &req)?;
        let events = self.chains.open(chain).await?;
        Ok(Response::new(
            guard.wrap(chain_stream(self.metrics.clone(), events)),
        ))
    }
}

/// Names the request element an error is about.
fn prefix(e: FanoutError, at: &str) -> FanoutError {
    match e {
        FanoutError::InvalidArgument { .. } => e.in_field(at),
        FanoutError::NotFound(m) => FanoutError::NotFound(format!("{at}: {m}")),
        FanoutError::NoPermission(m) => FanoutError::NoPermission(format!("{at}: {m}")),
        other => other,
    }
}
