//! Starts a simulated gateway, a store in a temporary directory and the ibstream server
//! (session, `MarketDataService`) on ephemeral loopback ports, and hands out real gRPC
//! clients.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ibstream::api::ServerHandle;
use ibstream::api::market_data::MarketDataSettings;
use ibstream::config::Config;
use ibstream::ib::SessionSettings;
use ibstream::ib::backoff::Backoff;
use ibstream::ib::health::HealthSettings;
use ibstream::metrics::Metrics;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use ibstream::sim::{SimConfig, SimHandle, Simulator};
use ibstream::store::Store;
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::support::{self, store_for};

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Harness {
    pub sim: SimHandle,
    pub server: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    store: Store,
    settings: MarketDataSettings,
    session: SessionSettings,
    _dir: TempDir,
}

/// Settings for tests: short linger, generous budget.
pub fn settings() -> MarketDataSettings {
    let mut s = MarketDataSettings::default();
    s.fanout.linger = Duration::from_millis(500);
    s.request_timeout = Duration::from_secs(10);
    s.greeks.risk_free_rate = 0.045;
    s
}

/// Session timings short enough for tests.
fn fast_session() -> SessionSettings {
    SessionSettings {
        health: HealthSettings {
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(1000),
            max_missed: 3,
        },
        backoff: Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(500),
        },
        circuit_cooldown: Duration::from_secs(1),
        library_reconnect_attempts: 2,
        link_poll_interval: Duration::from_millis(50),
    }
}

pub async fn start() -> Harness {
    start_with(|_| {}, settings()).await
}

/// The simulator adjusted by `adjust`; the server configured from `settings` (limits go
/// to the active profile, the rest to the configuration).
pub async fn start_with(
    adjust: impl FnOnce(&mut SimConfig),
    settings: MarketDataSettings,
) -> Harness {
    start_with_session(adjust, settings, fast_session()).await
}

/// As [`start_with`], with the session's own timings given (e.g. the defaults, to
/// check what they promise).
pub async fn start_with_session(
    adjust: impl FnOnce(&mut SimConfig),
    settings: MarketDataSettings,
    session: SessionSettings,
) -> Harness {
    let mut config = SimConfig {
        tick_interval: Duration::from_millis(50),
        ..SimConfig::default()
    };
    adjust(&mut config);
    let sim = Simulator::start(config).await.expect("simulator starts");
    let (dir, store, mut profile) = store_for(&sim, 21).await;
    profile.connect_on_start = true;
    profile.line_budget = settings.fanout.line_budget as u32;
    profile.message_rate = settings.message_rate;
    profile.allow_delayed_fallback = settings.fanout.allow_delayed_fallback;
    profile.market_data_type = settings.fanout.data_type;
    store.save_profile(&profile).await.expect("profile saved");

    let server = start_server(&store, &settings, session).await;
    let addr = server.addr();
    let metrics = server.metrics();
    let h = Harness {
        sim,
        server: Some(server),
        addr,
        metrics,
        store,
        settings,
        session,
        _dir: dir,
    };
    wait_for_stats(&h.sim, "the session connected", |s| s.connections == 1).await;
    h
}

async fn start_server(
    store: &Store,
    settings: &MarketDataSettings,
    session: SessionSettings,
) -> ServerHandle {
    let mut config = Config::default();
    config.server.max_instruments_per_request = settings.max_instruments_per_request as u32;
    config.server.max_streams_per_key = settings.max_streams_per_key as u32;
    config.market_data.linger = settings.fanout.linger;
    config.market_data.request_timeout = settings.request_timeout;
    config.market_data.risk_free_rate = settings.greeks.risk_free_rate;
    config.market_data.dividend_yield = settings.greeks.dividend_yield;
    config.market_data.historical_pacing_scale = settings.historical_pacing_scale;
    support::start_server(store, "market data tests", config, session).await
}

impl Harness {
    /// Stops the server and starts a new one on the same store (a restart).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        wait_for_stats(&self.sim, "the old session closed", |s| s.connections == 0).await;
        let server = start_server(&self.store, &self.settings, self.session).await;
        self.addr = server.addr();
        self.metrics = server.metrics();
        self.server = Some(server);
        wait_for_stats(&self.sim, "the new session connected", |s| {
            s.connections == 1
        })
        .await;
    }

    /// The session's current status.
    pub fn session_status(&self) -> ibstream::ib::SessionStatus {
        self.server
            .as_ref()
            .expect("server running")
            .context()
            .session
            .status()
    }

    /// `reqMktData` requests the simulator received so far.
    pub fn market_data_requests(&self) -> u64 {
        self.sim
            .control()
            .stats()
            .requests_by_type
            .get("RequestMarketData")
            .copied()
            .unwrap_or(0)
    }

    /// A gRPC client with a small flow-control window, so a client that stops reading
    /// stops the server quickly (as a slow client on a real network does).
    pub async fn client(&self) -> MarketDataServiceClient<Channel> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .initial_stream_window_size(Some(65_535))
            .initial_connection_window_size(Some(65_535))
            .connect()
            .await
            .expect("gRPC connects");
        MarketDataServiceClient::new(channel)
    }
}

pub fn stock(symbol: &str) -> pb::Instrument {
    pb::Instrument {
        symbol: symbol.into(),
        sec_type: pb::SecurityType::Stock as i32,
        ..Default::default()
    }
}

pub fn option(symbol: &str, expiry: &str, strike: f64, right: pb::OptionRight) -> pb::Instrument {
    pb::Instrument {
        symbol: symbol.into(),
        sec_type: pb::SecurityType::Option as i32,
        expiry: expiry.into(),
        strike: Some(strike),
        right: right as i32,
        ..Default::default()
    }
}

pub type QuoteStream = tonic::Streaming<pb::StreamQuotesResponse>;

/// Opens a quote stream.
pub async fn stream(
    client: &mut MarketDataServiceClient<Channel>,
    instruments: Vec<pb::Instrument>,
    policy: pb::DataPolicy,
) -> QuoteStream {
    client
        .stream_quotes(pb::StreamQuotesRequest {
            instruments,
            data_policy: policy as i32,
        })
        .await
        .expect("stream opens")
        .into_inner()
}

/// Opens a default-policy stream of these stocks and reads up to its first quote, so
/// the caller knows the subscriptions behind it are live.
pub async fn quoting(
    client: &mut MarketDataServiceClient<Channel>,
    symbols: &[&str],
) -> QuoteStream {
    quoted_by(client, symbols, 1).await
}

/// Opens a default-policy stream of these stocks and reads until every one has had a
/// quote.
pub async fn all_quoting(
    client: &mut MarketDataServiceClient<Channel>,
    symbols: &[&str],
) -> QuoteStream {
    quoted_by(client, symbols, symbols.len()).await
}

/// Opens a default-policy stream of these stocks and reads until `count` of them have
/// had a quote.
async fn quoted_by(
    client: &mut MarketDataServiceClient<Channel>,
    symbols: &[&str],
    count: usize,
) -> QuoteStream {
    let mut s = stream(
        client,
        symbols.iter().map(|s| stock(s)).collect(),
        pb::DataPolicy::Unspecified,
    )
    .await;
    until_quoted(&mut s, count).await;
    s
}

/// The next message of a stream within [`WAIT`].
pub async fn next(stream: &mut QuoteStream) -> pb::StreamQuotesResponse {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message within the deadline")
        .expect("stream healthy")
        .expect("stream open")
}

/// Reads until `done` says enough, within [`WAIT`]; returns what was read.
pub async fn read_until(
    stream: &mut QuoteStream,
    mut done: impl FnMut(&pb::StreamQuotesResponse) -> bool,
) -> Vec<pb::StreamQuotesResponse> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let m = stream
                .message()
                .await
                .expect("stream healthy")
                .expect("stream open");
            let stop = done(&m);
            seen.push(m);
            if stop {
                return;
            }
        }
    })
    .await
    .expect("condition reached within the deadline");
    seen
}

pub fn quote_of(m: &pb::StreamQuotesResponse) -> Option<&pb::Quote> {
    match &m.event {
        Some(pb::stream_quotes_response::Event::Quote(q)) => Some(q),
        _ => None,
    }
}

pub fn status_of(m: &pb::StreamQuotesResponse) -> Option<&pb::InstrumentStatus> {
    match &m.event {
        Some(pb::stream_quotes_response::Event::Status(s)) => Some(s),
        _ => None,
    }
}

/// Reads until `count` different instruments have sent a message that `counts`.
pub async fn until_from(
    stream: &mut QuoteStream,
    count: usize,
    counts: impl Fn(&pb::StreamQuotesResponse) -> bool,
) {
    let mut seen = std::collections::HashSet::new();
    read_until(stream, |m| {
        if counts(m) {
            seen.insert(m.index);
        }
        seen.len() == count
    })
    .await;
}

/// Reads until `count` different instruments have had a quote.
pub async fn until_quoted(stream: &mut QuoteStream, count: usize) {
    until_from(stream, count, |m| quote_of(m).is_some()).await;
}

/// Reads until `count` different instruments have reported a status of `kind`.
pub async fn until_status_from(
    stream: &mut QuoteStream,
    kind: pb::InstrumentStatusKind,
    count: usize,
) {
    until_from(stream, count, |m| {
        status_of(m).is_some_and(|st| st.kind == kind as i32)
    })
    .await;
}

/// Waits (within [`WAIT`]) until `check` holds.
pub async fn wait_for(check: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds for the simulator's statistics.
pub async fn wait_for_stats(
    sim: &SimHandle,
    what: &str,
    check: impl Fn(&ibstream::sim::SimStats) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = sim.control().stats();
        if check(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached, stats {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The option chain of `symbol`'s stock.
pub async fn option_chain(
    client: &mut MarketDataServiceClient<Channel>,
    symbol: &str,
) -> pb::OptionChain {
    client
        .get_option_chain(pb::GetOptionChainRequest {
            underlying: Some(stock(symbol)),
        })
        .await
        .expect("the chain of a known symbol")
        .into_inner()
}

/// Opens `count` quote streams on `client`, then one more: the streams and how the
/// extra one was refused.
pub async fn streams_past(
    client: &mut MarketDataServiceClient<Channel>,
    count: usize,
) -> (Vec<QuoteStream>, tonic::Status) {
    let mut open = Vec::new();
    for _ in 0..count {
        open.push(stream(client, vec![stock("AAPL")], pb::DataPolicy::Unspecified).await);
    }
    let refused = client
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: vec![stock("AAPL")],
            data_policy: 0,
        })
        .await
        .expect_err("one stream past the limit is refused");
    (open, refused)
}

/// Reads until an instrument reports a status of `kind`; returns that status.
pub async fn first_status(
    stream: &mut QuoteStream,
    kind: pb::InstrumentStatusKind,
) -> pb::InstrumentStatus {
    let seen = read_until(stream, |m| {
        status_of(m).is_some_and(|st| st.kind == kind as i32)
    })
    .await;
    seen.last()
        .and_then(status_of)
        .cloned()
        .expect("the status read last")
}

/// Lines in use and the line budget, as `ListSubscriptions` reports them.
pub async fn line_usage(client: &mut MarketDataServiceClient<Channel>) -> (u32, u32) {
    let limits = client
        .list_subscriptions(pb::ListSubscriptionsRequest {})
        .await
        .expect("ListSubscriptions answers")
        .into_inner()
        .limits
        .expect("limits are reported");
    (limits.lines_in_use, limits.line_budget)
}
