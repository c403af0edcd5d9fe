//! `MarketDataService`: thin handlers over parts built elsewhere (the fan-out, the
//! contract cache, the chains, the settings in force), validating and converting.
//!
//! - [`quote_stream`]: the quote stream, written from quotes encoded once.
//! - [`streams`]: the chain stream and the status events of both.
//! - [`convert`]: protobuf ⇄ fan-out domain, with the validation of request fields.

pub mod convert;
mod quote_stream;
pub mod streams;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::{Request, Response, Status};

use self::convert::{
    MAX_PATTERN_CHARS, bar_ask, bar_to_pb, chain_to_pb, data_policy_from_pb, details_to_pb,
    ib_text, instrument_to_spec, limits_to_pb, quote_to_pb, symbol_match_to_pb,
    what_to_show_from_pb,
};
use self::quote_stream::QuoteStream;
use self::streams::{bar_events, bar_stream, chain_request, chain_stream};
use super::lifetime::{BoxedStream, StreamGate};
use crate::bars::stream::StreamQuery;
use crate::bars::{BarQuery, Bars, LiveBars};
use crate::fanout::contracts::Contracts;
use crate::fanout::{
    Chains, ContractSpec, Fanout, FanoutError, FanoutSettings, GreeksParams, Quote,
};
use crate::metrics::Metrics;
use crate::proto::frames::QuotesFrame;
use crate::proto::ibstream::v1 as pb;
use crate::proto::ibstream::v1::market_data_service_server::{
    MarketDataService, MarketDataServiceServer,
};

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
    /// Multiplies the windows of IB's historical pacing rules (1: IB's own).
    pub historical_pacing_scale: f64,
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
            historical_pacing_scale: 1.0,
        }
    }
}

/// The settings in force, shared by the service and whoever follows the active
/// profile. Cheap to clone; clones share the value.
#[derive(Debug, Clone, Default)]
pub struct SettingsHandle(Arc<Mutex<MarketDataSettings>>);

impl SettingsHandle {
    pub fn new(settings: MarketDataSettings) -> SettingsHandle {
        SettingsHandle(Arc::new(Mutex::new(settings)))
    }

    /// The settings now.
    pub fn get(&self) -> MarketDataSettings {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the settings (the fan-out's own copy is the caller's to update).
    pub fn set(&self, settings: MarketDataSettings) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = settings;
    }
}

/// What the service is built from.
#[derive(Clone)]
pub struct MarketDataParts {
    pub fanout: Fanout,
    pub contracts: Arc<Contracts>,
    pub chains: Arc<Chains>,
    pub settings: SettingsHandle,
    pub metrics: Arc<Metrics>,
    /// Admits every server stream (permits, shutdown, revocation, gauge).
    pub streams: StreamGate,
    /// Historical bars and head timestamps (absent: answered UNAVAILABLE).
    pub bars: Option<Bars>,
    /// The shared real-time bar feeds (absent: StreamBars answered UNAVAILABLE).
    pub live_bars: Option<LiveBars>,
}

/// The service implementation. Cheap to clone.
#[derive(Clone)]
pub struct MarketData {
    parts: MarketDataParts,
}

impl std::fmt::Debug for MarketData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketData").finish_non_exhaustive()
    }
}

impl MarketData {
    /// The service over built parts.
    pub fn new(parts: MarketDataParts) -> MarketData {
        MarketData { parts }
    }

    /// The tonic service, ready to register.
    pub fn into_service(self) -> MarketDataServiceServer<MarketData> {
        MarketDataServiceServer::new(self)
    }

    /// The fan-out the service reads.
    pub fn fanout(&self) -> &Fanout {
        &self.parts.fanout
    }

    fn settings(&self) -> MarketDataSettings {
        self.parts.settings.get()
    }

    /// Validates the instruments of a request (count, then each field).
    fn specs(&self, instruments: &[pb::Instrument]) -> Result<Vec<ContractSpec>, FanoutError> {
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

    /// The contract of a request's required `instrument`.
    async fn resolve(
        &self,
        instrument: Option<&pb::Instrument>,
    ) -> Result<Arc<crate::fanout::ContractDetails>, FanoutError> {
        let instrument =
            instrument.ok_or_else(|| FanoutError::invalid("instrument", "required"))?;
        let spec = instrument_to_spec(instrument, "instrument")?;
        self.parts.contracts.resolve(&spec).await
    }

    fn bars(&self) -> Result<&Bars, FanoutError> {
        self.parts.bars.as_ref().ok_or(FanoutError::Unavailable)
    }

    /// Whether a request with this wire data policy may read delayed data.
    fn allows_delayed(&self, data_policy: i32) -> Result<bool, FanoutError> {
        Ok(self
            .parts
            .fanout
            .allows_delayed(data_policy_from_pb(data_policy)?))
    }

    /// One snapshot of each instrument, errors naming the instrument they are about.
    async fn quotes(&self, specs: &[ContractSpec], allow: bool) -> Result<Vec<Quote>, FanoutError> {
        let quotes = futures::future::join_all(specs.iter().enumerate().map(|(i, spec)| {
            let at = move |e: FanoutError| prefix(e, &format!("instruments[{i}]"));
            async move {
                let details = self.parts.contracts.resolve(spec).await.map_err(at)?;
                let deadline = self.settings().request_timeout;
                let fanout = &self.parts.fanout;
                fanout
                    .snapshot(&details.contract, allow, deadline)
                    .await
                    .map_err(at)
            }
        }))
        .await;
        quotes.into_iter().collect()
    }
}

#[tonic::async_trait]
impl MarketDataService for MarketData {
    type StreamQuotesStream = BoxedStream<QuotesFrame>;
    type StreamOptionChainStream = BoxedStream<pb::StreamOptionChainResponse>;
    type StreamBarsStream = BoxedStream<pb::StreamBarsResponse>;

    async fn stream_bars(
        &self,
        request: Request<pb::StreamBarsRequest>,
    ) -> Result<Response<Self::StreamBarsStream>, Status> {
        let guard = self.parts.streams.admit(&request)?;
        let req = request.into_inner();
        let what = what_to_show_from_pb(req.what_to_show)?;
        let query = StreamQuery::new(&req.bar_size, what, req.regular_hours, req.history_bars)?;
        let (bars, live) = match (&self.parts.bars, &self.parts.live_bars) {
            (Some(b), Some(l)) => (b.clone(), l),
            _ => return Err(FanoutError::Unavailable.into()),
        };
        let details = self.resolve(req.instrument.as_ref()).await?;
        let lease = live.open(&details.contract, query.what, query.regular_hours)?;
        let instrument = details_to_pb(&details).instrument.unwrap_or_default();
        let events = bar_events(bars, lease, details.contract.clone(), query);
        Ok(Response::new(guard.wrap(bar_stream(instrument, events))))
    }

    async fn get_historical_bars(
        &self,
        request: Request<pb::GetHistoricalBarsRequest>,
    ) -> Result<Response<pb::GetHistoricalBarsResponse>, Status> {
        let req = request.into_inner();
        let ask = bar_ask(&req)?;
        let details = self.resolve(req.instrument.as_ref()).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let query = BarQuery::new(details.contract.con_id, &ask, now)?;
        let answer = self
            .bars()?
            .get(&details.contract, &query, req.wait_for_pacing)
            .await?;
        Ok(Response::new(pb::GetHistoricalBarsResponse {
            instrument: Some(details_to_pb(&details).instrument.unwrap_or_default()),
            bars: answer.bars.iter().map(bar_to_pb).collect(),
            from_cache: answer.origin == crate::bars::BarOrigin::Cache,
        }))
    }

    async fn get_head_timestamp(
        &self,
        request: Request<pb::GetHeadTimestampRequest>,
    ) -> Result<Response<pb::GetHeadTimestampResponse>, Status> {
        let req = request.into_inner();
        let what = what_to_show_from_pb(req.what_to_show)?;
        let details = self.resolve(req.instrument.as_ref()).await?;
        let head = self
            .bars()?
            .head_timestamp(
                &details.contract,
                what,
                req.regular_hours,
                req.wait_for_pacing,
            )
            .await?;
        Ok(Response::new(pb::GetHeadTimestampResponse {
            head_timestamp: Some(prost_types::Timestamp {
                seconds: head,
                nanos: 0,
            }),
        }))
    }

    async fn stream_quotes(
        &self,
        request: Request<pb::StreamQuotesRequest>,
    ) -> Result<Response<Self::StreamQuotesStream>, Status> {
        let guard = self.parts.streams.admit(&request)?;
        let req = request.into_inner();
        let specs = self.specs(&req.instruments)?;
        let allow = self.allows_delayed(req.data_policy)?;
        let MarketDataParts {
            fanout,
            contracts,
            metrics,
            ..
        } = &self.parts;
        let requested = req.instruments;
        let stream = QuoteStream::new(fanout, contracts, metrics, requested, specs, allow);
        Ok(Response::new(guard.wrap(Box::pin(stream))))
    }

    async fn get_quotes(
        &self,
        request: Request<pb::GetQuotesRequest>,
    ) -> Result<Response<pb::GetQuotesResponse>, Status> {
        let req = request.into_inner();
        let specs = self.specs(&req.instruments)?;
        let quotes = self
            .quotes(&specs, self.allows_delayed(req.data_policy)?)
            .await?;
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
        let details = self.parts.contracts.resolve(&spec).await?;
        Ok(Response::new(details_to_pb(&details)))
    }

    async fn search_symbols(
        &self,
        request: Request<pb::SearchSymbolsRequest>,
    ) -> Result<Response<pb::SearchSymbolsResponse>, Status> {
        let pattern = ib_text("pattern", &request.into_inner().pattern, MAX_PATTERN_CHARS)?;
        if pattern.is_empty() {
            return Err(FanoutError::invalid("pattern", "required").into());
        }
        let found = self.parts.contracts.search(&pattern).await?;
        Ok(Response::new(pb::SearchSymbolsResponse {
            matches: found.iter().map(symbol_match_to_pb).collect(),
        }))
    }

    async fn list_subscriptions(
        &self,
        _request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let fanout = &self.parts.fanout;
        let streams_open = self.parts.metrics.streams_open.get();
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: fanout.list().iter().map(pb::Subscription::from).collect(),
            limits: Some(limits_to_pb(
                fanout.line_usage(),
                &self.settings(),
                streams_open,
            )),
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
        let details = self.parts.contracts.resolve(&spec).await?;
        let params = self.parts.contracts.option_params(&details).await?;
        Ok(Response::new(chain_to_pb(&details.contract, &params)))
    }

    async fn stream_option_chain(
        &self,
        request: Request<pb::StreamOptionChainRequest>,
    ) -> Result<Response<Self::StreamOptionChainStream>, Status> {
        let guard = self.parts.streams.admit(&request)?;
        let chain = chain_request(&request.into_inner(), &self.parts.fanout)?;
        let events = self.parts.chains.open(chain).await?;
        Ok(Response::new(
            guard.wrap(chain_stream(self.parts.metrics.clone(), events)),
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
