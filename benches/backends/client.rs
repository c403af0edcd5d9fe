//! The client process: the bench runs itself again with [`CLIENT_ENV`] set, so the
//! subscribers' CPU and memory are not the server's. Every subscriber has its own HTTP/2
//! connection (its own `Endpoint::connect`). Commands come on stdin; the process ends
//! when stdin closes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use pb::stream_option_chain_response::Event as ChainEvent;
use pb::stream_quotes_response::Event;
use prost::Message as _;
use tokio::sync::{Notify, mpsc, watch};
use tonic::transport::{Channel, Endpoint};

use crate::job::{END, Inst, Job, Percentiles, READY, Report, Work};

/// Bound of every wait of the client: a stuck phase fails instead of hanging the bench.
const WAIT: Duration = Duration::from_secs(180);
/// Connections opened at once.
const CONNECTING: usize = 64;
/// One quote message in this many is measured for its encoded length.
const SIZE_SAMPLE: u64 = 64;

/// Runs the client process for `job` (TOML) and exits.
pub fn run(job: &str) {
    let job: Job = toml::from_str(job).expect("a readable job");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let commands = commands();
        match job.work {
            Work::Streams {
                subscribers,
                instruments,
                ready_within,
            } => {
                let within = Duration::from_secs_f64(ready_within);
                streams(&job.url, (subscribers, within), &instruments, commands).await
            }
            Work::ColdStart {
                subscribers,
                instruments,
            } => cold_start(&job.url, subscribers, &instruments, commands).await,
            Work::Chain { window, repeat } => {
                chain(&job.url, &window.to_pb(), repeat, commands).await
            }
        }
    });
    // Streams still open are the server's to see closed, not this process's to drain.
    std::process::exit(0);
}

/// Lines of stdin; the process exits when the bench closes it.
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

fn answer(report: &Report) {
    println!("{}\n{END}", toml::to_string(report).expect("report"));
}

async fn connect(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("the server accepts a connection")
}

/// `n` connections, each its own HTTP/2 connection.
async fn connect_all(url: &str, n: usize) -> Vec<Channel> {
    futures::stream::iter(0..n)
        .map(|_| connect(url))
        .buffered(CONNECTING)
        .collect()
        .await
}

/// Microseconds from `at` (the server's stamp) to `now`; 0 when the clock says earlier.
fn micros_since(at: &prost_types::Timestamp, now: SystemTime) -> f64 {
    SystemTime::try_from(*at)
        .ok()
        .and_then(|at| now.duration_since(at).ok())
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// What one subscriber saw in the window.
#[derive(Default)]
struct Tally {
    quotes: u64,
    latencies_us: Vec<f32>,
    sized: u64,
    bytes: u64,
}

/// What every subscriber shares.
#[derive(Default)]
struct Shared {
    measuring: AtomicBool,
    ready: AtomicUsize,
    ended: AtomicUsize,
    unavailable: AtomicUsize,
    failed: AtomicUsize,
    changed: Notify,
}

impl Shared {
    fn end(&self, error: Option<&tonic::Status>) {
        match error.map(tonic::Status::code) {
            None => {}
            Some(tonic::Code::Unavailable) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.ended.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Waits (at most `bound`) until `done` holds.
    async fn wait(&self, bound: Duration, done: impl Fn(&Shared) -> bool) {
        let _ = tokio::time::timeout(bound, async {
            loop {
                let changed = self.changed.notified();
                if done(self) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
            }
        })
        .await;
    }
}

/// One subscriber: its stream, read until it ends; counted while the window is open.
struct Subscriber {
    channel: Channel,
    request: pb::StreamQuotesRequest,
    shared: Arc<Shared>,
    tally: Arc<Mutex<Tally>>,
    paused: watch::Receiver<bool>,
}

impl Subscriber {
    async fn run(mut self) {
        let mut client = MarketDataServiceClient::new(self.channel.clone());
        let mut stream = match client.stream_quotes(self.request.clone()).await {
            Ok(r) => r.into_inner(),
            Err(status) => return self.shared.end(Some(&status)),
        };
        let mut unquoted: Vec<bool> = vec![true; self.request.instruments.len()];
        let mut missing = unquoted.len();
        loop {
            if *self.paused.borrow() {
                let _ = self.paused.wait_for(|p| !*p).await;
            }
            let m = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return self.shared.end(None),
                Err(status) => return self.shared.end(Some(&status)),
            };
            let now = SystemTime::now();
            let Some(Event::Quote(q)) = &m.event else {
                continue;
            };
            if missing > 0
                && let Some(slot) = unquoted.get_mut(m.index as usize)
                && std::mem::take(slot)
            {
                missing -= 1;
                if missing == 0 {
                    self.shared.ready.fetch_add(1, Ordering::Relaxed);
                    self.shared.changed.notify_waiters();
                }
            }
            if self.shared.measuring.load(Ordering::Relaxed) {
                let mut t = self.tally.lock().expect("tally");
                t.quotes += 1;
                if let Some(at) = &q.received_at {
                    t.latencies_us.push(micros_since(at, now) as f32);
                }
                if t.quotes % SIZE_SAMPLE == 1 {
                    t.sized += 1;
                    t.bytes += m.encoded_len() as u64;
                }
            }
        }
    }
}

/// `subscribers` streams, ready within a bound.
async fn streams(
    url: &str,
    (subscribers, within): (usize, Duration),
    instruments: &[Inst],
    mut commands: mpsc::Receiver<String>,
) {
    let request = pb::StreamQuotesRequest {
        instruments: instruments.iter().map(Inst::to_pb).collect(),
        data_policy: 0,
    };
    let shared = Arc::new(Shared::default());
    let mut tallies = Vec::new();
    let mut pauses = Vec::new();
    for channel in connect_all(url, subscribers).await {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (pause, paused) = watch::channel(false);
        tallies.push(tally.clone());
        pauses.push(pause);
        tokio::spawn(
            Subscriber {
                channel,
                request: request.clone(),
                shared: shared.clone(),
                tally,
                paused,
            }
            .run(),
        );
    }
    shared
        .wait(within, |s| {
            s.ready.load(Ordering::Relaxed) + s.ended.load(Ordering::Relaxed) >= subscribers
        })
        .await;
    println!("{READY} {}", shared.ready.load(Ordering::Relaxed));
    let mut started = Instant::now();
    while let Some(command) = commands.recv().await {
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or("");
        let which: Option<usize> = words.next().and_then(|w| w.parse().ok());
        match verb {
            "start" => {
                for t in &tallies {
                    *t.lock().expect("tally") = Tally::default();
                }
                shared.measuring.store(true, Ordering::Relaxed);
                started = Instant::now();
            }
            "stop" => {
                shared.measuring.store(false, Ordering::Relaxed);
                let seconds = started.elapsed().as_secs_f64();
                answer(&window_report(&tallies, &shared, seconds));
            }
            "pause" | "resume" => {
                let pause = &pauses[which.expect("a stream number")];
                let _ = pause.send(verb == "pause");
            }
            "ended" => {
                let t0 = Instant::now();
                shared
                    .wait(WAIT, |s| s.ended.load(Ordering::Relaxed) >= subscribers)
                    .await;
                let mut report = window_report(&tallies, &shared, t0.elapsed().as_secs_f64());
                report.quotes = 0;
                answer(&report);
            }
            _ => {}
        }
    }
}

fn window_report(tallies: &[Arc<Mutex<Tally>>], shared: &Shared, seconds: f64) -> Report {
    let mut quotes = 0;
    let mut latencies = Vec::new();
    let (mut sized, mut bytes) = (0, 0);
    for t in tallies {
        let t = std::mem::take(&mut *t.lock().expect("tally"));
        quotes += t.quotes;
        sized += t.sized;
        bytes += t.bytes;
        latencies.extend(t.latencies_us.into_iter().map(f64::from));
    }
    Report {
        quotes,
        seconds,
        latency: Percentiles::of(latencies),
        message_bytes: bytes as f64 / sized.max(1) as f64,
        ready: shared.ready.load(Ordering::Relaxed),
        ended: shared.ended.load(Ordering::Relaxed),
        unavailable: shared.unavailable.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        ..Report::default()
    }
}

/// Waits for the command `verb`.
async fn until(commands: &mut mpsc::Receiver<String>, verb: &str) {
    while let Some(c) = commands.recv().await {
        if c.trim() == verb {
            return;
        }
    }
}

async fn cold_start(
    url: &str,
    subscribers: usize,
    instruments: &[Inst],
    mut commands: mpsc::Receiver<String>,
) {
    let request = pb::StreamQuotesRequest {
        instruments: instruments.iter().map(Inst::to_pb).collect(),
        data_policy: 0,
    };
    let channels = connect_all(url, subscribers).await;
    println!("{READY} {subscribers}");
    until(&mut commands, "go").await;
    let t0 = Instant::now();
    let opened = channels.into_iter().map(|channel| {
        let request = request.clone();
        tokio::spawn(async move {
            let mut client = MarketDataServiceClient::new(channel);
            let mut stream = client
                .stream_quotes(request.clone())
                .await
                .ok()?
                .into_inner();
            let mut unquoted = vec![true; request.instruments.len()];
            let mut missing = unquoted.len();
            let all = async {
                while missing > 0 {
                    let m = stream.message().await.ok()??;
                    if let Some(Event::Quote(_)) = m.event
                        && let Some(slot) = unquoted.get_mut(m.index as usize)
                        && std::mem::take(slot)
                    {
                        missing -= 1;
                    }
                }
                Some(t0.elapsed())
            };
            let took = tokio::time::timeout(WAIT, all).await.ok()??;
            // Held until every stream is done, as a backend would.
            Some((took, stream))
        })
    });
    let done: Vec<_> = futures::future::join_all(opened)
        .await
        .into_iter()
        .map(|r| r.ok().flatten())
        .collect();
    let times: Vec<f64> = done
        .iter()
        .flatten()
        .map(|(took, _)| took.as_secs_f64() * 1e3)
        .collect();
    let report = Report {
        ready: times.len(),
        failed: subscribers - times.len(),
        seconds: times.iter().copied().fold(0.0, f64::max) / 1e3,
        times_ms: Percentiles::of(times),
        ..Report::default()
    };
    answer(&report);
    until(&mut commands, "quit").await;
}

async fn chain(
    url: &str,
    request: &pb::StreamOptionChainRequest,
    repeat: usize,
    mut commands: mpsc::Receiver<String>,
) {
    let mut client = MarketDataServiceClient::new(connect(url).await);
    // The holder keeps the window's lines live, so every later snapshot is the cache's.
    let (mut holder, _) = snapshot(&mut client, request).await;
    tokio::spawn(async move { while let Ok(Some(_)) = holder.message().await {} });
    println!("{READY} 1");
    until(&mut commands, "go").await;
    let mut times = Vec::new();
    let mut options = 0;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let (_stream, n) = snapshot(&mut client, request).await;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        options = n;
    }
    answer(&Report {
        options,
        ready: times.len(),
        times_ms: Percentiles::of(times),
        ..Report::default()
    });
    until(&mut commands, "quit").await;
}

/// Opens a chain stream and reads it until its snapshot is complete: the stream, and
/// the options the snapshot held.
async fn snapshot(
    client: &mut MarketDataServiceClient<Channel>,
    request: &pb::StreamOptionChainRequest,
) -> (tonic::Streaming<pb::StreamOptionChainResponse>, usize) {
    let mut stream = client
        .stream_option_chain(request.clone())
        .await
        .expect("the chain opens")
        .into_inner();
    let complete = async {
        loop {
            let m = stream.message().await.expect("chain stream").expect("open");
            if let Some(ChainEvent::SnapshotComplete(c)) = m.event {
                return c.options as usize;
            }
        }
    };
    let options = tokio::time::timeout(WAIT, complete)
        .await
        .expect("a snapshot within the bound");
    (stream, options)
}
