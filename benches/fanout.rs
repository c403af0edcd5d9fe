//! Fan-out throughput, added latency, memory per subscription and time to first quote,
//! each beside a raw tonic streaming server measured in the same run.
//!
//! `cargo bench --bench fanout` (optionally `-- --quick`). Both servers run in this
//! process on loopback; the market-data source is synthetic so the numbers show what
//! ibstream adds, not what a gateway does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ibstream::api::StreamGate;
use ibstream::api::market_data::{MarketData, MarketDataSettings};
use ibstream::app::market_data_parts;
use ibstream::fanout::{ContractSpec, MarketDataSource};
use ibstream::metrics::Metrics;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use ibstream::proto::ibstream::v1::market_data_service_server::{
    MarketDataService, MarketDataServiceServer,
};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;

// ---------------------------------------------------------------------------------------
// Allocation counting: memory per subscription without RSS noise.

struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[path = "fanout/support.rs"]
mod support;
#[path = "fanout/synthetic.rs"]
mod synthetic;

use support::Baseline;
use synthetic::Synthetic;

// ---------------------------------------------------------------------------------------
// Harness.

async fn serve<S>(service: MarketDataServiceServer<S>) -> String
where
    S: MarketDataService,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Without TCP_NODELAY small writes wait for delayed ACKs (tens of milliseconds).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    format!("http://{addr}")
}

async fn client(url: &str) -> MarketDataServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    MarketDataServiceClient::new(channel)
}

fn ibstream_server(interval: Duration) -> (MarketDataServiceServer<MarketData>, MarketData) {
    let source: Arc<dyn MarketDataSource> = Synthetic::new(interval);
    let mut settings = MarketDataSettings::default();
    settings.fanout.line_budget = 100_000;
    settings.max_instruments_per_request = 100_000;
    let metrics = Arc::new(Metrics::default());
    let gate = StreamGate::standalone(metrics.clone());
    let api = MarketData::new(market_data_parts(source, None, settings, metrics, gate));
    (api.clone().into_service(), api)
}

fn instruments(prefix: &str, n: usize) -> Vec<pb::Instrument> {
    (0..n)
        .map(|i| pb::Instrument {
            symbol: format!("{prefix}{i}"),
            ..Default::default()
        })
        .collect()
}

/// What a set of readers saw.
#[derive(Default)]
struct Seen {
    quotes: u64,
    latencies_us: Vec<u64>,
}

/// `streams` clients each read `instruments` for `duration`.
async fn read_streams(url: &str, streams: usize, n: usize, duration: Duration) -> Seen {
    let mut tasks = Vec::new();
    let start = Instant::now() + Duration::from_millis(500);
    for _ in 0..streams {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut c = client(&url).await;
            let mut s = c
                .stream_quotes(pb::StreamQuotesRequest {
                    instruments: instruments("S", n),
                    data_policy: 0,
                })
                .await
                .expect("stream")
                .into_inner();
            let mut seen = Seen::default();
            let end = start + duration;
            loop {
                let m = tokio::select! {
                    m = s.message() => m,
                    _ = tokio::time::sleep_until(end.into()) => break,
                };
                let Ok(Some(m)) = m else { break };
                // The first half second warms up (snapshots, connection windows).
                if Instant::now() < start {
                    continue;
                }
                if let Some(pb::stream_quotes_response::Event::Quote(q)) = m.event {
                    seen.quotes += 1;
                    if let Some(at) = q.received_at
                        && let Ok(at) = SystemTime::try_from(at)
                        && let Ok(d) = SystemTime::now().duration_since(at)
                    {
                        seen.latencies_us.push(d.as_micros() as u64);
                    }
                }
            }
            seen
        }));
    }
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.expect("reader");
        all.quotes += s.quotes;
        all.latencies_us.extend(s.latencies_us);
    }
    all
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency_line(name: &str, mut l: Vec<u64>) -> String {
    l.sort_unstable();
    format!(
        "{name:<10} p50 {:>6} µs  p90 {:>6} µs  p99 {:>6} µs  max {:>7} µs  ({} samples)",
        percentile(&l, 0.5),
        percentile(&l, 0.9),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(0),
        l.len()
    )
}

async fn time_to_first_quote(url: &str, symbols: &[String]) -> Vec<u64> {
    let mut c = client(url).await;
    let mut out = Vec::new();
    for symbol in symbols {
        let t0 = Instant::now();
        let mut s = c
            .stream_quotes(pb::StreamQuotesRequest {
                instruments: vec![pb::Instrument {
                    symbol: symbol.clone(),
                    ..Default::default()
                }],
                data_policy: 0,
            })
            .await
            .expect("stream")
            .into_inner();
        loop {
            match s.message().await {
                Ok(Some(pb::StreamQuotesResponse {
                    event: Some(pb::stream_quotes_response::Event::Quote(_)),
                    ..
                })) => break,
                Ok(Some(_)) => continue,
                _ => panic!("stream ended before a quote"),
            }
        }
        out.push(t0.elapsed().as_micros() as u64);
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 2 } else { 5 };
    let duration = Duration::from_secs(secs);
    let (streams, n) = (8, 20);
    println!(
        "ibstream fan-out benchmark ({streams} streams x {n} instruments, {secs} s per phase)\n"
    );

    // 1. Delivered updates per second, sources ticking as fast as they are read.
    let (svc, api) = ibstream_server(Duration::ZERO);
    let url = serve(svc).await;
    let ticks_before = api.fanout().metrics().updates_in.get();
    let fan = read_streams(&url, streams, n, duration).await;
    let ticks = api.fanout().metrics().updates_in.get() - ticks_before;
    let conflated = api.fanout().metrics().conflated.get();
    drop(api);
    let base_url = serve(MarketDataServiceServer::new(Baseline {
        interval: Duration::ZERO,
    }))
    .await;
    let base = read_streams(&base_url, streams, n, duration).await;
    println!("delivered updates/s");
    println!(
        "  ibstream  {:>10.0}   (ticks folded into the cache: {:.0}/s; {conflated} values replaced before a slow reader saw them)",
        fan.quotes as f64 / secs as f64,
        ticks as f64 / (secs as f64 + 0.5)
    );
    println!(
        "  baseline  {:>10.0}   (every update queued to every stream)",
        base.quotes as f64 / secs as f64
    );

    // 2. Added latency at a realistic rate: every instrument ticks every 5 ms.
    let interval = Duration::from_millis(5);
    let (svc, _api2) = ibstream_server(interval);
    let url = serve(svc).await;
    let fan = read_streams(&url, streams, n, duration).await;
    let base_url = serve(MarketDataServiceServer::new(Baseline { interval })).await;
    let base = read_streams(&base_url, streams, n, duration).await;
    println!(
        "\nlatency, server receive -> client receive ({} updates/s per instrument)",
        1000 / interval.as_millis()
    );
    println!("  {}", latency_line("ibstream", fan.latencies_us));
    println!("  {}", latency_line("baseline", base.latencies_us));

    // 3. Time to first quote: a new instrument (resolve + subscribe), a cached one.
    let (svc, api) = ibstream_server(Duration::from_millis(50));
    let url = serve(svc).await;
    let cold: Vec<String> = (0..100).map(|i| format!("COLD{i}")).collect();
    let mut cold_t = time_to_first_quote(&url, &cold).await;
    let mut holder = client(&url).await;
    let _held = holder
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: instruments("WARM", 1),
            data_policy: 0,
        })
        .await
        .expect("stream");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let warm: Vec<String> = (0..100).map(|_| "WARM0".to_string()).collect();
    let mut warm_t = time_to_first_quote(&url, &warm).await;
    let base_url = serve(MarketDataServiceServer::new(Baseline {
        interval: Duration::from_millis(50),
    }))
    .await;
    let mut base_t = time_to_first_quote(&base_url, &cold).await;
    for v in [&mut cold_t, &mut warm_t, &mut base_t] {
        v.sort_unstable();
    }
    println!("\ntime to first quote (100 streams each)");
    for (name, v) in [("new", &cold_t), ("cached", &warm_t), ("baseline", &base_t)] {
        println!(
            "  {name:<9} p50 {:>6} µs  p99 {:>6} µs",
            percentile(v, 0.5),
            percentile(v, 0.99)
        );
    }
    drop(api);

    // 4. Memory per subscription: instruments held by the fan-out (feed task, watch
    //    channel, last value, registry entry), against one raw tonic stream each.
    let count = 2_000;
    let (_svc, api) = ibstream_server(Duration::from_secs(3600));
    let contracts: Vec<Arc<ContractSpec>> = (0..count)
        .map(|i| {
            Arc::new(ContractSpec {
                con_id: i + 1,
                symbol: format!("M{i}"),
                ..ContractSpec::default()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = live_bytes();
    let refs = api.fanout().acquire(&contracts, false).expect("lines");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fan_bytes = (live_bytes() - before) as f64 / count as f64;
    drop(refs);

    let base_url = serve(MarketDataServiceServer::new(Baseline {
        interval: Duration::from_secs(3600),
    }))
    .await;
    let mut c = client(&base_url).await;
    let raw_count = 200;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = live_bytes();
    let mut raw = HashMap::new();
    for i in 0..raw_count {
        let s = c
            .stream_quotes(pb::StreamQuotesRequest {
                instruments: instruments("R", 1),
                data_policy: 0,
            })
            .await
            .expect("stream")
            .into_inner();
        raw.insert(i, s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let raw_bytes = (live_bytes() - before) as f64 / raw_count as f64;
    println!("\nmemory per subscription (allocator-counted)");
    println!(
        "  ibstream  {fan_bytes:>8.0} bytes per instrument held (any number of streams share it)"
    );
    println!("  baseline  {raw_bytes:>8.0} bytes per raw tonic stream (client and server side)");
}
