//! The subscribers' process: the bench runs itself again with [`CLIENT_ENV`] set (to the
//! instruments), so the subscribers' CPU is not the nodes'. Every subscriber has its own
//! HTTP/2 connection. Commands come on stdin, one answer line each on stdout:
//!
//! - `probe URL`: one stream on the leader whose quotes tell when the leader received
//!   each value (matched by content, since a follower stamps its own `received_at`).
//! - `open ROLE COUNT URL`: `COUNT` subscribers on one node, answered once each has a
//!   fresh quote of every instrument. ROLE is `solo`, `leader` or `follower`.
//! - `measure SECS`: delivered quotes and added latency over a window of `SECS`.
//! - `arm`, then `await URL KILLED_AT_NS`: when every stream not on `URL` (the killed
//!   node) had a fresh quote again for every instrument after going stale.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use pb::stream_quotes_response::Event;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

/// Set (to the instruments, `S:SYMBOL` or `O:CONID`, comma-separated) in the client process.
pub const CLIENT_ENV: &str = "IBSTREAM_CLUSTER_BENCH_CLIENT";
/// Bound of every wait: a stuck phase fails instead of hanging the bench.
const WAIT: Duration = Duration::from_secs(120);
/// How long the streams may take to be fresh again after a kill before the run counts
/// as failed: many times the lease's time to live.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);
/// After a window, how long quotes the probe has not seen yet may still arrive.
const PROBE_GRACE: Duration = Duration::from_secs(1);

/// Runs the client process and exits.
pub fn run(spec: &str) {
    let instruments: Vec<pb::Instrument> = spec.split(',').map(instrument).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve(Arc::new(instruments)));
    // Streams still open are the nodes' to see closed, not this process's to drain.
    std::process::exit(0);
}

fn instrument(spec: &str) -> pb::Instrument {
    match spec.split_once(':') {
        Some(("S", symbol)) => pb::Instrument {
            symbol: symbol.to_owned(),
            sec_type: pb::SecurityType::Stock as i32,
            ..Default::default()
        },
        Some(("O", con_id)) => pb::Instrument {
            con_id: con_id.parse().expect("a conId"),
            sec_type: pb::SecurityType::Option as i32,
            ..Default::default()
        },
        _ => panic!("not an instrument: {spec}"),
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn stamp_ns(at: &prost_types::Timestamp) -> i64 {
    at.seconds * 1_000_000_000 + i64::from(at.nanos)
}

/// A value's identity across nodes: everything the quote says of the market, none of
/// what the node adds (sequence, its own receipt time).
fn content(q: &pb::Quote) -> u64 {
    let mut h = DefaultHasher::new();
    q.con_id.hash(&mut h);
    for v in [
        q.bid,
        q.ask,
        q.last,
        q.bid_size,
        q.ask_size,
        q.last_size,
        q.volume,
        q.open,
        q.high,
        q.low,
        q.close,
    ] {
        v.map(f64::to_bits).hash(&mut h);
    }
    q.last_trade_time.map(|t| (t.seconds, t.nanos)).hash(&mut h);
    h.finish()
}

/// Where one instrument of one stream stands.
#[derive(Default, Clone, Copy)]
struct Freshness {
    fresh: bool,
    went_stale: bool,
    recovered_ns: Option<i64>,
    /// The newest fresh quote: tells a stale mark lost from a stream that stopped.
    last_fresh_ns: i64,
}

/// One subscriber.
struct Sub {
    url: String,
    role: String,
    quotes: AtomicU64,
    /// Content, client receipt and the node's own `received_at`, in the window.
    samples: Mutex<Vec<(u64, i64, i64)>>,
    state: Mutex<Vec<Freshness>>,
}

/// What every subscriber shares.
#[derive(Default)]
struct Shared {
    measuring: AtomicBool,
    subs: Mutex<Vec<Arc<Sub>>>,
    /// Content → when the leader received it:
    /// every receipt of the content, oldest first: a value can recur (an option's quote
    /// returning to the same prices), and a client's copy is of the latest before it.
    probe: Mutex<HashMap<u64, Vec<i64>>>,
}

async fn serve(instruments: Arc<Vec<pb::Instrument>>) {
    let shared = Arc::new(Shared::default());
    let mut lines = commands();
    while let Some(line) = lines.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["probe", url] => {
                probe(url, &instruments, &shared).await;
                "ready".to_owned()
            }
            ["open", role, count, url] => {
                open(url, role, count.parse().unwrap(), &instruments, &shared).await
            }
            ["measure", secs] => measure(secs.parse().unwrap(), &shared).await,
            ["arm"] => {
                for sub in shared.subs.lock().unwrap().iter() {
                    let mut state = sub.state.lock().unwrap();
                    state.iter_mut().for_each(|f| {
                        f.went_stale = false;
                        f.recovered_ns = None;
                    });
                }
                "armed".to_owned()
            }
            ["await", url, killed_at] => recovered(url, killed_at.parse().unwrap(), &shared).await,
            _ => panic!("unknown command: {line}"),
        };
        println!("{answer}");
    }
}

/// Lines of stdin, read on a thread of their own; the process exits when the bench
/// closes it (or dies).
fn commands() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    rx
}

async fn connect(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("the node accepts a connection")
}

async fn stream(
    url: &str,
    instruments: &[pb::Instrument],
) -> tonic::Streaming<pb::StreamQuotesResponse> {
    let mut client = MarketDataServiceClient::new(connect(url).await);
    client
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: instruments.to_vec(),
            data_policy: 0,
        })
        .await
        .expect("the stream opens")
        .into_inner()
}

async fn probe(url: &str, instruments: &[pb::Instrument], shared: &Arc<Shared>) {
    let mut stream = stream(url, instruments).await;
    let shared = shared.clone();
    tokio::spawn(async move {
        while let Ok(Some(msg)) = stream.message().await {
            if let Some(Event::Quote(q)) = msg.event
                && let Some(at) = &q.received_at
            {
                let mut seen = shared.probe.lock().unwrap();
                seen.entry(content(&q)).or_default().push(stamp_ns(at));
            }
        }
    });
}

async fn open(
    url: &str,
    role: &str,
    count: usize,
    instruments: &Arc<Vec<pb::Instrument>>,
    shared: &Arc<Shared>,
) -> String {
    let started = std::time::Instant::now();
    let streams: Vec<_> = futures::stream::iter(0..count)
        .map(|_| stream(url, instruments))
        .buffer_unordered(32)
        .collect()
        .await;
    let mut opened = Vec::new();
    for mut stream in streams {
        let sub = Arc::new(Sub {
            url: url.to_owned(),
            role: role.to_owned(),
            quotes: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
            state: Mutex::new(vec![Freshness::default(); instruments.len()]),
        });
        opened.push(sub.clone());
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = stream.message().await {
                receive(&sub, &shared, msg);
            }
        });
    }
    shared.subs.lock().unwrap().extend(opened.iter().cloned());
    let all_fresh = || {
        opened
            .iter()
            .all(|s| s.state.lock().unwrap().iter().all(|f| f.fresh))
    };
    while !all_fresh() {
        if started.elapsed() > WAIT {
            return "notready".to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    format!("ready {:.3}", started.elapsed().as_secs_f64())
}

fn receive(sub: &Sub, shared: &Shared, msg: pb::StreamQuotesResponse) {
    let at = now_ns();
    let i = msg.index as usize;
    match msg.event {
        Some(Event::Quote(q)) => {
            if shared.measuring.load(Ordering::Relaxed) {
                sub.quotes.fetch_add(1, Ordering::Relaxed);
                let own = q.received_at.as_ref().map_or(at, stamp_ns);
                sub.samples.lock().unwrap().push((content(&q), at, own));
            }
            let mut state = sub.state.lock().unwrap();
            let Some(f) = state.get_mut(i) else { return };
            if q.stale {
                f.fresh = false;
                f.went_stale = true;
                f.recovered_ns = None;
            } else {
                if f.went_stale && f.recovered_ns.is_none() {
                    f.recovered_ns = Some(at);
                }
                f.fresh = true;
                f.last_fresh_ns = at;
            }
        }
        Some(Event::Status(s)) if s.kind == pb::InstrumentStatusKind::Stale as i32 => {
            let mut state = sub.state.lock().unwrap();
            if let Some(f) = state.get_mut(i) {
                f.fresh = false;
                f.went_stale = true;
                f.recovered_ns = None;
            }
        }
        _ => {}
    }
}

/// Percentiles 50 and 99 of `us`, microseconds (0 without samples).
fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    if us.is_empty() {
        return (0.0, 0.0);
    }
    us.sort_by(f64::total_cmp);
    let at = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize];
    (at(0.50), at(0.99))
}

async fn measure(secs: f64, shared: &Arc<Shared>) -> String {
    let subs = shared.subs.lock().unwrap().clone();
    for sub in &subs {
        sub.quotes.store(0, Ordering::Relaxed);
        sub.samples.lock().unwrap().clear();
    }
    shared.measuring.store(true, Ordering::Relaxed);
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let window = started.elapsed().as_secs_f64();
    tokio::time::sleep(PROBE_GRACE).await;
    let probe = shared.probe.lock().unwrap();
    let (mut all, mut followers) = (Vec::new(), Vec::new());
    let (mut quotes, mut follower_quotes, mut unmatched) = (0, 0, 0u64);
    for sub in &subs {
        let n = sub.quotes.load(Ordering::Relaxed);
        quotes += n;
        let follower = sub.role == "follower";
        if follower {
            follower_quotes += n;
        }
        for &(key, at, own) in sub.samples.lock().unwrap().iter() {
            // A plain node's own stamp is its receipt; in a cluster the leader's is.
            let from = if sub.role == "solo" {
                Some(own)
            } else {
                probe
                    .get(&key)
                    .and_then(|times| times.iter().rev().find(|&&t| t <= at).copied())
            };
            let Some(from) = from else {
                unmatched += 1;
                continue;
            };
            let us = (at - from).max(0) as f64 / 1e3;
            all.push(us);
            if follower {
                followers.push(us);
            }
        }
    }
    let samples = all.len();
    let (p50, p99) = percentiles(all);
    let (fp50, fp99) = percentiles(followers);
    format!(
        "report quotes={quotes} follower_quotes={follower_quotes} secs={window:.3} \
         p50={p50:.0} p99={p99:.0} fp50={fp50:.0} fp99={fp99:.0} samples={samples} \
         unmatched={unmatched}"
    )
}

async fn recovered(killed_url: &str, killed_at: i64, shared: &Arc<Shared>) -> String {
    let survivors: Vec<Arc<Sub>> = {
        let mut subs = shared.subs.lock().unwrap();
        // The killed node's streams are gone for good.
        subs.retain(|s| s.url != killed_url);
        subs.clone()
    };
    let started = std::time::Instant::now();
    loop {
        let mut latest = killed_at;
        let mut missing = 0;
        // What stays missing, for the report: never marked stale, or stale and not
        // fresh again; by node and by instrument.
        let (mut never_stale, mut urls, mut indexes) = (0, BTreeSet::new(), BTreeSet::new());
        let mut last_fresh = i64::MIN;
        for sub in &survivors {
            for (i, f) in sub.state.lock().unwrap().iter().enumerate() {
                match f.recovered_ns {
                    Some(at) => latest = latest.max(at),
                    None => {
                        missing += 1;
                        never_stale += usize::from(!f.went_stale);
                        urls.insert(sub.url.clone());
                        indexes.insert(i);
                        last_fresh = last_fresh.max(f.last_fresh_ns);
                    }
                }
            }
        }
        if missing == 0 {
            return format!("recovered {:.3}", (latest - killed_at) as f64 / 1e9);
        }
        if started.elapsed() > FAILOVER_WAIT {
            return format!(
                "timeout {missing} stream-instruments not fresh ({never_stale} never marked \
                 stale, newest fresh quote {:.1} s after the kill) on {urls:?}, instruments \
                 {indexes:?}",
                (last_fresh - killed_at) as f64 / 1e9
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
