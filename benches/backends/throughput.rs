//! Delivered quotes per second and added latency, per shape: ibstream over the synthetic
//! source and over the simulator in its own process, beside the raw tonic ceiling.

use std::time::Duration;

use crate::fleet::ClientProcess;
use crate::job::{Inst, Report};
use crate::memory::{Cpu, CpuMeter, allocations};
use crate::plan::{Plan, Shape};
use crate::progress;
use crate::raw::{self, Pace};
use crate::servers;
use crate::sim::{self, SimProcess};
use crate::synthetic::Synthetic;

/// One measured window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub report: Report,
    /// Allocation calls in the bench (server) process during the window.
    pub allocations: u64,
    /// CPU of the bench process, the client process and the simulator (if any), cores.
    pub cpu: Vec<f64>,
}

impl Window {
    /// Quotes received per second by all subscribers.
    pub fn rate(&self) -> f64 {
        self.report.quotes as f64 / self.report.seconds.max(1e-9)
    }
}

/// Opens a window on `client`'s streams for `length`, counting the CPU of this process,
/// the client process and `also`.
pub async fn measure(client: &mut ClientProcess, length: Duration, also: &[Cpu]) -> Window {
    let mut who = vec![Cpu::Process(std::process::id()), Cpu::Process(client.pid())];
    who.extend_from_slice(also);
    progress(&format!("    window of {length:?} opens"));
    let cpu = CpuMeter::start(&who);
    let before = allocations();
    client.send("start").await;
    tokio::time::sleep(length).await;
    client.send("stop").await;
    let allocations = allocations() - before;
    let cpu = cpu.shares();
    Window {
        report: client.report().await,
        allocations,
        cpu,
    }
}

/// A client process streaming `instruments` to each of `shape.subscribers`, warmed up.
async fn clients(url: &str, shape: Shape, instruments: &[Inst], plan: &Plan) -> ClientProcess {
    let client = ClientProcess::streams(url, shape.subscribers, instruments).await;
    tokio::time::sleep(plan.warmup).await;
    client
}

/// The figures of one shape over the synthetic source.
#[derive(Debug, Clone)]
pub struct SyntheticShape {
    pub shape: Shape,
    pub raw: Window,
    pub ibstream: Window,
    /// Ticks the source produced per second while ibstream was saturated.
    pub ticks_in: f64,
    /// Half of ibstream's saturated rate, and the tick interval that aims at it.
    pub half_rate: f64,
    pub tick: Duration,
    pub ibstream_half: Window,
    pub raw_half: Window,
}

/// The synthetic source's instruments.
pub fn synthetic_instruments(n: usize) -> Vec<Inst> {
    (0..n).map(|i| Inst::stock(&format!("S{i}"))).collect()
}

/// The synthetic source's step interval when ibstream is saturated: every instrument
/// offers a thousand new values a second to each of its subscribers, more than any
/// shape here delivers (the same interval as the simulator's in the end-to-end run).
pub const SATURATING_TICK: Duration = Duration::from_millis(1);

/// ibstream over a synthetic source stepping every instrument every `tick`: one window
/// (CPU: this process, the clients, the source's own thread), and the ticks the source
/// produced per second.
async fn ibstream_window(shape: Shape, tick: Duration, plan: &Plan) -> (Window, f64) {
    let source = Synthetic::realistic(tick);
    let server = servers::synthetic(source.clone()).await;
    let instruments = synthetic_instruments(shape.instruments);
    let mut client = clients(&server.url, shape, &instruments, plan).await;
    let ticks_before = server.metrics().updates_in.get();
    let also: Vec<Cpu> = source.thread_id().map(Cpu::Thread).into_iter().collect();
    let window = measure(&mut client, plan.window, &also).await;
    let ticks = server.metrics().updates_in.get() - ticks_before;
    client.stop().await;
    source.stop();
    server.handle.shutdown().await.expect("clean shutdown");
    let ticks_in = ticks as f64 / window.report.seconds.max(1e-9);
    (window, ticks_in)
}

async fn raw_window(shape: Shape, pace: Pace, plan: &Plan) -> Window {
    let server = raw::start(pace).await;
    let instruments = synthetic_instruments(shape.instruments);
    let mut client = clients(&server.url, shape, &instruments, plan).await;
    let window = measure(&mut client, plan.window, &[]).await;
    client.stop().await;
    window
}

/// Saturation, then latency at half of ibstream's saturated rate, of both servers.
pub async fn synthetic_shape(shape: Shape, plan: &Plan) -> SyntheticShape {
    progress("  raw, flat out");
    let raw = raw_window(shape, Pace::FlatOut, plan).await;
    progress("  ibstream, saturated");
    let (ibstream, ticks_in) = ibstream_window(shape, SATURATING_TICK, plan).await;
    let half_rate = ibstream.rate() / 2.0;
    // Every tick of an instrument is a message to each of its subscribers.
    let tick = Duration::from_secs_f64(shape.fan() / half_rate.max(1.0));
    progress("  ibstream, half rate");
    let (ibstream_half, _) = ibstream_window(shape, tick, plan).await;
    progress("  raw, half rate");
    let per_stream = half_rate / shape.subscribers as f64;
    let raw_half = raw_window(shape, Pace::PerSecond(per_stream), plan).await;
    SyntheticShape {
        shape,
        raw,
        ibstream,
        ticks_in,
        half_rate,
        tick,
        ibstream_half,
        raw_half,
    }
}

/// The figures of one shape over the simulator.
#[derive(Debug, Clone)]
pub struct EndToEnd {
    pub shape: Shape,
    /// Streams that had a quote of every instrument before the windows opened.
    pub ready: usize,
    pub saturated: Window,
    /// The simulator's tick interval of the latency window, and that window.
    pub tick: Duration,
    pub half: Window,
    /// What the simulator saw during the shape (subscribing included).
    pub sim: SimDelta,
}

/// Counts of the simulator over a span.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimDelta {
    /// Connections accepted: 1 is the session's first; more are reconnections.
    pub connections: u64,
    pub contract_details: u64,
    pub market_data: u64,
    /// Error 100: more messages a second than the gateway takes.
    pub pacing_errors: u64,
}

impl SimDelta {
    async fn now(sim: &mut SimProcess) -> SimDelta {
        let s = sim.stats().await;
        let of = |k: &str| s.requests_by_type.get(k).copied().unwrap_or(0);
        SimDelta {
            connections: s.connections_accepted,
            contract_details: of("RequestContractData"),
            market_data: of("RequestMarketData"),
            pacing_errors: s.errors_sent.get(&100).copied().unwrap_or(0),
        }
    }

    fn since(self, before: SimDelta) -> SimDelta {
        SimDelta {
            connections: self.connections - before.connections,
            contract_details: self.contract_details - before.contract_details,
            market_data: self.market_data - before.market_data,
            pacing_errors: self.pacing_errors - before.pacing_errors,
        }
    }
}

/// Lines both the simulator and ibstream allow in the end-to-end run: the largest shape
/// plus what a previous shape leaves lingering.
const E2E_LINES: u32 = 2_000;
/// The simulator's tick interval at saturation.
const E2E_TICK: Duration = Duration::from_millis(1);
/// How long the streams of a shape may take to have a quote of every instrument: at
/// IB's 50 messages a second, 500 new instruments take about 20 s (a look-up and a
/// subscription each). The windows open after it whatever the count.
const E2E_READY: Duration = Duration::from_secs(60);

/// Every shape against one simulator process (1 ms ticks) and one ibstream server
/// started as `ibstream serve` starts: saturated, then with the simulator slowed until
/// the delivered rate is about half.
pub async fn end_to_end(plan: &Plan) -> Vec<EndToEnd> {
    let mut sim = SimProcess::start(E2E_TICK, E2E_LINES).await;
    let server = servers::against_gateway(sim.gateway.port(), E2E_LINES).await;
    let mut out = Vec::new();
    for &shape in &plan.shapes {
        sim.set_tick_interval(E2E_TICK).await;
        let before = SimDelta::now(&mut sim).await;
        let instruments = sim::instruments(shape.instruments);
        progress(&format!("  {}: subscribing", shape.label()));
        if shape.subscribers > 1 {
            // One stream resolves every instrument first: the windows measure streaming,
            // the cold-start phase measures look-ups.
            let (warm, _) =
                ClientProcess::streams_within(&server.url, 1, &instruments, E2E_READY).await;
            warm.stop().await;
        }
        let (mut client, ready) =
            ClientProcess::streams_within(&server.url, shape.subscribers, &instruments, E2E_READY)
                .await;
        tokio::time::sleep(plan.warmup).await;
        let also = [Cpu::Process(sim.pid())];
        progress(&format!("  {}: saturated", shape.label()));
        let saturated = measure(&mut client, plan.window, &also).await;
        // Quotes the clients had not read yet would reach the next windows late: those
        // open on fresh connections.
        client.stop().await;
        let (tick, mut client) = half_rate_tick(
            &mut sim,
            (&server.url, &instruments),
            shape,
            &saturated,
            plan,
        )
        .await;
        progress(&format!("  {}: latency at {tick:?} ticks", shape.label()));
        let mut half = measure(&mut client, plan.window, &also).await;
        let sat = saturated.rate().max(1.0);
        let mut tick = tick;
        if !(0.4..=0.6).contains(&(half.rate() / sat)) && half.rate() > 0.0 {
            // Quotes per step change with the pace: once more, from this window.
            tick = Duration::from_secs_f64(tick.as_secs_f64() * half.rate() / (sat / 2.0))
                .max(E2E_TICK);
            sim.set_tick_interval(tick).await;
            tokio::time::sleep(plan.warmup).await;
            progress(&format!("  {}: latency at {tick:?} ticks", shape.label()));
            half = measure(&mut client, plan.window, &also).await;
        }
        client.stop().await;
        out.push(EndToEnd {
            shape,
            ready,
            saturated,
            tick,
            half,
            sim: SimDelta::now(&mut sim).await.since(before),
        });
    }
    server.handle.shutdown().await.expect("clean shutdown");
    sim.stop().await;
    out
}

/// Sets the simulator's tick interval so the delivered rate is about half the saturated
/// one, and returns it with fresh clients streaming at that rate. The simulator is no
/// step counter (one step may reach a client as several quotes, and at 1 ms it may not
/// keep up), so a short window at a rate far below saturation tells the quotes one step
/// makes, and the interval follows from it.
async fn half_rate_tick(
    sim: &mut SimProcess,
    (url, instruments): (&str, &[Inst]),
    shape: Shape,
    saturated: &Window,
    plan: &Plan,
) -> (Duration, ClientProcess) {
    let sat = saturated.rate().max(1.0);
    let slow = Duration::from_secs_f64(4.0 * shape.fan() / sat).max(E2E_TICK * 4);
    sim.set_tick_interval(slow).await;
    let (mut client, _) =
        ClientProcess::streams_within(url, shape.subscribers, instruments, E2E_READY).await;
    tokio::time::sleep(plan.warmup).await;
    let probe = measure(&mut client, plan.window / 2, &[]).await;
    let tick = Duration::from_secs_f64(slow.as_secs_f64() * probe.rate() / (sat / 2.0))
        .clamp(E2E_TICK, slow);
    sim.set_tick_interval(tick).await;
    tokio::time::sleep(plan.warmup).await;
    (tick, client)
}
