//! What many backends cost the server besides throughput: memory per idle stream, memory
//! while one subscriber stops reading, a chain snapshot from cache, and shutdown with
//! every stream open. All over the synthetic source, in the bench process.

use std::time::{Duration, Instant};

use crate::fleet::ClientProcess;
use crate::job::{ChainWindow, Job, Report, Work};
use crate::memory::{live_bytes, rss, trim};
use crate::plan::{Plan, Shape};
use crate::raw::{self, Pace};
use crate::servers;
use crate::synthetic::{self, Synthetic, UNDERLYING_PRICE};
use crate::throughput::{Window, measure, synthetic_instruments};

/// An instrument that ticks once an hour: streams on it are idle.
const IDLE_TICK: Duration = Duration::from_secs(3600);
/// Time for the server to settle after streams opened or closed.
const SETTLE: Duration = Duration::from_millis(500);

/// Resident and live heap bytes per idle stream.
#[derive(Debug, Clone, Default)]
pub struct PerStream {
    pub rss: f64,
    pub heap: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Idle {
    pub ibstream: PerStream,
    pub raw: PerStream,
    /// From the shutdown signal until the server's serve task (and the session) ended.
    pub shutdown: Duration,
    /// How the idle streams ended, as their client saw it.
    pub ended: Report,
}

/// Memory (resident and heap) before a client process opens `streams` idle streams on
/// `url` and after: per stream. The client process is returned, still streaming.
async fn per_stream(url: &str, plan: &Plan) -> (PerStream, ClientProcess) {
    trim();
    tokio::time::sleep(SETTLE).await;
    let (rss0, heap0) = (rss(), live_bytes());
    let instruments = synthetic_instruments(plan.idle_instruments);
    let client = ClientProcess::streams(url, plan.idle_streams, &instruments).await;
    tokio::time::sleep(SETTLE).await;
    let n = plan.idle_streams as f64;
    let cost = PerStream {
        rss: (rss() as f64 - rss0 as f64) / n,
        heap: (live_bytes() - heap0) as f64 / n,
    };
    (cost, client)
}

/// Idle streams on ibstream (then its shutdown with all of them open) and on the raw
/// server.
pub async fn idle(plan: &Plan) -> Idle {
    let source = Synthetic::realistic(IDLE_TICK);
    let server = servers::synthetic(source.clone()).await;
    let (ibstream, mut client) = per_stream(&server.url, plan).await;
    let t0 = Instant::now();
    server.handle.shutdown().await.expect("clean shutdown");
    let shutdown = t0.elapsed();
    let ended = client.ask("ended").await;
    client.stop().await;
    source.stop();

    let raw_server = raw::start(Pace::Idle).await;
    let (raw, client) = per_stream(&raw_server.url, plan).await;
    client.stop().await;
    Idle {
        ibstream,
        raw,
        shutdown,
        ended,
    }
}

#[derive(Debug, Clone, Default)]
pub struct SlowReader {
    pub before: u64,
    pub peak: u64,
    /// Peak over the first third of the pause, and over the rest.
    pub peak_early: u64,
    pub peak_late: u64,
    /// What the other subscribers received meanwhile.
    pub others: Window,
}

/// Shape `shape` saturated over the synthetic source; subscriber 0 stops reading for
/// `plan.slow_for` while resident memory is sampled.
pub async fn slow_reader(shape: Shape, plan: &Plan) -> SlowReader {
    let source = Synthetic::realistic(Duration::ZERO);
    let server = servers::synthetic(source.clone()).await;
    let instruments = synthetic_instruments(shape.instruments);
    let mut client = ClientProcess::streams(&server.url, shape.subscribers, &instruments).await;
    tokio::time::sleep(plan.warmup).await;
    // Pages earlier phases freed go back first, so growth from here on shows.
    trim();
    let before = rss();
    client.send("pause 0").await;
    let sampler = tokio::spawn(sample_rss(plan.slow_for));
    let others = measure(&mut client, plan.slow_for, &[]).await;
    let samples = sampler.await.expect("sampler");
    client.send("resume 0").await;
    client.stop().await;
    source.stop();
    server.handle.shutdown().await.expect("clean shutdown");
    let early = plan.slow_for / 3;
    let peak_of = |f: &dyn Fn(&Duration) -> bool| {
        samples
            .iter()
            .filter(|(at, _)| f(at))
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(before)
    };
    SlowReader {
        before,
        peak: peak_of(&|_| true),
        peak_early: peak_of(&|at| *at <= early),
        peak_late: peak_of(&|at| *at > early),
        others,
    }
}

/// Resident memory every 100 ms for `span`, with when it was read.
async fn sample_rss(span: Duration) -> Vec<(Duration, u64)> {
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while t0.elapsed() < span {
        samples.push((t0.elapsed(), rss()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples
}

/// Times of a chain window's snapshot once the cache is warm: a holder keeps the
/// window's lines live, then the same window is opened again and again.
pub async fn chain_snapshot(plan: &Plan) -> Report {
    let source = Synthetic::realistic(Duration::from_secs(1));
    let server = servers::synthetic(source.clone()).await;
    let side = plan.chain_strikes_each_side as f64;
    let job = Job {
        url: server.url.clone(),
        work: Work::Chain {
            window: ChainWindow {
                underlying: "CHAIN".into(),
                expirations: synthetic::expirations()[..plan.chain_expirations].to_vec(),
                min_strike: UNDERLYING_PRICE - side,
                max_strike: UNDERLYING_PRICE + side - 1.0,
            },
            repeat: plan.chain_repeat,
        },
    };
    let (mut client, _) = ClientProcess::start(&job).await;
    let report = client.ask("go").await;
    client.stop().await;
    source.stop();
    server.handle.shutdown().await.expect("clean shutdown");
    report
}
