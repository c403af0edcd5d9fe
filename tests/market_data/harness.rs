//! Starts a simulated gateway, an `ibapi` session on it and the market-data service on an
//! ephemeral loopback port, and hands out real gRPC clients.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ibapi::{Client, RateLimiter};
use ibstream::api::market_data::{MarketData, MarketDataSettings};
use ibstream::fanout::{IbSource, MarketDataSource};
use ibstream::ib::Link;
use ibstream::metrics::Metrics;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use ibstream::sim::{SimConfig, SimHandle, Simulator};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Harness {
    pub sim: SimHandle,
    pub addr: SocketAddr,
    pub api: MarketData,
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Settings for tests: short linger, generous budget.
pub fn settings() -> MarketDataSettings {
    let mut s = MarketDataSettings::default();
    s.fanout.linger = Duration::from_millis(500);
    s.request_timeout = Duration::from_secs(10);
    s.greeks.risk_free_rate = 0.045;
    s
}

pub async fn start() -> Harness {
    start_with(|_| {}, settings()).await
}

pub async fn start_with(
    adjust: impl FnOnce(&mut SimConfig),
    settings: MarketDataSettings,
) -> Harness {
    let mut config = SimConfig {
        tick_interval: Duration::from_millis(50),
        ..SimConfig::default()
    };
    adjust(&mut config);
    let sim = Simulator::start(config).await.expect("simulator starts");
    let stop = CancellationToken::new();
    let metrics = Arc::new(Metrics::default());
    let links = follow_session(&sim, settings.message_rate, stop.clone()).await;
    let source: Arc<dyn MarketDataSource> =
        IbSource::new(links, settings.message_rate, metrics.clone());
    let api = MarketData::new(source, None, settings, metrics.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = api.clone().into_service();
    let shutdown = stop.clone();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
            .await;
    });
    Harness {
        sim,
        addr,
        api,
        metrics,
        stop,
    }
}

/// Connects an `ibapi` client that reconnects forever and publishes it as a [`Link`],
/// with a new generation after each reconnect (what the session does in the server).
async fn follow_session(
    sim: &SimHandle,
    rate: u32,
    stop: CancellationToken,
) -> watch::Receiver<Option<Link>> {
    let client = Client::builder()
        .address(sim.gateway_addr().to_string())
        .client_id(1)
        .reconnect_forever()
        .rate_limiter(RateLimiter::per_second(rate))
        .connect()
        .await
        .expect("ibapi connects to the simulator");
    let client = Arc::new(client);
    let (tx, rx) = watch::channel(Some(Link {
        generation: 1,
        client: client.clone(),
    }));
    tokio::spawn(async move {
        let mut generation = 1;
        let mut up = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            let connected = client.is_connected();
            if connected != up {
                up = connected;
                if up {
                    generation += 1;
                    tx.send_replace(Some(Link {
                        generation,
                        client: client.clone(),
                    }));
                } else {
                    tx.send_replace(None);
                }
            }
        }
    });
    rx
}

impl Harness {
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
