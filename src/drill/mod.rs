//! `ibstream drill`: a chaos drill, bounded in time. It runs the server and the
//! simulated gateway as a child process (`ibstream demo`), injects seeded faults through
//! the simulator's control plane while clients stream, and checks the guarantees of
//! the design from outside: fresh data after every recovery, no leaked subscriptions
//! or tasks, the gateway's message rate, no errors the server caused, bounded memory,
//! no panic, revoked keys ending their streams.
//!
//! Modules:
//! - [`child`]: the child process, API keys through `ibstream keys`, memory, metrics.
//! - [`plan`]: the seeded schedule of faults.
//! - [`faults`]: carries out the plan through the simulator's control plane.
//! - [`requests`]: what clients ask for, hostile fields included.
//! - [`clients`]: the streaming clients.
//! - [`monitor`]: session state, gateway statistics, quiet-period subscription check.
//! - [`journal`]: what was observed, and when.
//! - [`checks`]: the verdicts, as pure functions.
//! - [`report`]: the summary.

pub mod checks;
pub mod child;
pub mod clients;
pub mod faults;
pub mod journal;
pub mod monitor;
pub mod plan;
pub mod report;
pub mod requests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use self::child::ServerChild;
use self::clients::KeyState;
use self::faults::{ClientKey, Injector};
use self::journal::{Clock, Journal};
use self::monitor::Monitor;
use self::report::Summary;
use crate::proto::ibsim::v1::simulator_control_client::SimulatorControlClient;
use crate::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use crate::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;

/// The linger of `ibstream demo` (the configuration default): how long the server
/// keeps an instrument after its last stream left.
pub const SERVER_LINGER: f64 = 5.0;
/// Clients stream this long before the first fault; memory is measured after it.
const WARM_UP: f64 = 5.0;
/// How long the session may take to come up at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long clients get to finish after the drill stops them.
const CLIENT_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one call of the drill's own (statistics, subscriptions, control) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the last client left leaks are waited out.
const SETTLE: f64 = SERVER_LINGER + 5.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `ibstream` binary to run as the child.
    pub exe: PathBuf,
    /// How long faults are injected and clients stream.
    pub duration: Duration,
    pub seed: u64,
    pub clients: usize,
}

/// Runs the drill; the summary says which checks failed. Errors are failures to run
/// the drill at all. The child is killed on every path out.
pub async fn run(options: &Options) -> anyhow::Result<Summary> {
    let dir = tempfile::Builder::new()
        .prefix("ibstream-drill-")
        .tempdir()
        .context("cannot create the drill's directory")?;
    let data_dir = dir.path().join("data");
    let mut summary = {
        let monitor_key = child::create_key(&options.exe, &data_dir, "drill-monitor").await?;
        let mut keys = Vec::new();
        for client in 0..options.clients {
            let name = format!("drill-client-{client}");
            keys.push(child::create_key(&options.exe, &data_dir, &name).await?);
        }
        let mut server =
            ServerChild::start(&options.exe, &data_dir, dir.path(), options.seed).await?;
        drill(options, &mut server, &data_dir, monitor_key.token, keys).await?
    };
    if !summary.passed() {
        summary.kept = Some(dir.keep().display().to_string());
    }
    Ok(summary)
}

/// A channel for the drill's own calls; a call waits at most [`CALL_TIMEOUT`] for its
/// response (a stream's messages are not bounded by it).
fn channel(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(CALL_TIMEOUT)
        .connect_lazy())
}

async fn drill(
    options: &Options,
    server: &mut ServerChild,
    data_dir: &Path,
    monitor_token: String,
    keys: Vec<child::ApiKey>,
) -> anyhow::Result<Summary> {
    let clock = Clock::start();
    let journal = Journal::default();
    let gate = Arc::new(RwLock::new(()));
    let grpc = channel(server.grpc)?;
    let mut monitor = Monitor {
        control: SimulatorControlClient::new(channel(server.control)?),
        market: MarketDataServiceClient::new(grpc.clone()),
        connection: ConnectionServiceClient::new(grpc),
        token: monitor_token,
        clock,
        journal: journal.clone(),
        gate: gate.clone(),
        rate_limit: 0,
    };
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
        while !monitor.connected().await {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    anyhow::ensure!(connected.is_ok(), "the server's session did not come up");
    let limits = monitor.held().await?.limits.unwrap_or_default();
    monitor.rate_limit = limits.message_rate;
    let tasks_idle = server.tasks_alive().await;

    let stop = CancellationToken::new();
    let shared = clients::Shared {
        grpc: server.grpc,
        clock,
        journal: journal.clone(),
        gate: gate.clone(),
        stop: stop.clone(),
        stream_ids: Arc::new(AtomicU64::new(0)),
    };
    let mut client_keys = Vec::new();
    let mut client_tasks = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let (state, rx) = watch::channel(KeyState {
            token: key.token.clone(),
            ..KeyState::default()
        });
        client_keys.push(ClientKey { state, key });
        let seed = options.seed.wrapping_add(1 + i as u64);
        client_tasks.push(tokio::spawn(clients::run(shared.clone(), rx, seed)));
    }
    let watchers = [
        tokio::spawn(monitor.clone().watch_gateway(stop.clone())),
        tokio::spawn(monitor.clone().watch_session(stop.clone())),
    ];

    let start = clock.now() + WARM_UP;
    let end = start + options.duration.as_secs_f64();
    let steps = plan::plan(
        options.seed,
        plan::Bounds {
            start,
            // The last recovery leaves room for its freshness window.
            end: end - checks::FRESH_BOUND - 1.0,
            clients: options.clients,
            line_budget: limits.line_budget,
            quiet_gap: faults::quiet_delay(SERVER_LINGER) + 4.0,
        },
    );
    tokio::time::sleep(Duration::from_secs_f64(WARM_UP)).await;
    let memory_warm = server.rss_kb();
    let mut injector = Injector {
        control: monitor.control.clone(),
        clock,
        journal: journal.clone(),
        exe: options.exe.clone(),
        data_dir: data_dir.to_owned(),
        keys: client_keys,
        linger: SERVER_LINGER,
    };
    let deadline = stop.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64((end - clock.now()).max(0.0))).await;
        deadline.cancel();
    });
    injector.run(&steps, &mut monitor, &stop).await;
    stop.cancelled().await;
    let observed_until = clock.now();
    timer.abort();
    for task in client_tasks {
        if tokio::time::timeout(CLIENT_STOP_TIMEOUT, task)
            .await
            .is_err()
        {
            journal.violation(clock.now(), "client", "a client did not stop in time");
        }
    }
    for w in watchers {
        let _ = tokio::time::timeout(CLIENT_STOP_TIMEOUT, w).await;
    }

    let held_at_end = settle(&mut monitor, clock).await;
    let tasks_end = settle_tasks(server, tasks_idle).await;
    let memory_end = server.rss_kb();
    if let Ok(stats) = monitor.stats().await {
        monitor.judge_stats(&stats, &mut true, &mut Default::default());
    }
    let final_stats = monitor.stats().await.ok();
    Ok(conclude(Conclusion {
        options,
        server,
        journal: &journal,
        observed_until,
        tasks: (tasks_idle, tasks_end),
        memory: (memory_warm, memory_end),
        held_at_end,
        rate_limit: monitor.rate_limit,
        final_stats,
    }))
}

/// Waits (bounded) until neither the server nor the gateway holds any instrument.
async fn settle(monitor: &mut Monitor, clock: Clock) -> Option<(usize, u32)> {
    let until = clock.now() + SETTLE;
    let mut last = None;
    while clock.now() < until {
        if let (Ok(held), Ok(stats)) = (monitor.held().await, monitor.stats().await) {
            let pair = (
                held.subscriptions.len(),
                stats.active_market_data_subscriptions,
            );
            last = Some(pair);
            if pair == (0, 0) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

/// Waits (bounded) until the tasks gauge is back within the slack of its idle value.
async fn settle_tasks(server: &ServerChild, idle: Option<i64>) -> Option<i64> {
    let mut last = None;
    for _ in 0..20 {
        last = server.tasks_alive().await;
        if let (Some(idle), Some(now)) = (idle, last)
            && checks::tasks(idle, now).is_none()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

/// What the end of the drill judges.
struct Conclusion<'a> {
    options: &'a Options,
    server: &'a mut ServerChild,
    journal: &'a Journal,
    observed_until: f64,
    tasks: (Option<i64>, Option<i64>),
    memory: (Option<u64>, Option<u64>),
    held_at_end: Option<(usize, u32)>,
    rate_limit: u32,
    final_stats: Option<crate::proto::ibsim::v1::Stats>,
}

fn conclude(c: Conclusion<'_>) -> Summary {
    let obs = c.journal.lock();
    let fresh = checks::freshness(
        &obs.streams,
        &obs.faults,
        c.observed_until,
        checks::FRESH_BOUND,
    );
    let mut violations = obs.violations.clone();
    violations.extend(fresh.violations.iter().cloned());
    violations.extend(checks::unexplained_losses(&obs.session_losses, &obs.faults));
    let end = c.observed_until;
    let mut fail = |check: &'static str, detail: Option<String>| {
        if let Some(detail) = detail {
            violations.push(journal::Violation {
                at: end,
                check,
                detail,
            });
        }
    };
    match c.held_at_end {
        Some((0, 0)) => {}
        Some((server, gateway)) => fail(
            "leak",
            Some(format!(
                "{SETTLE:.0}s after every client left, the server holds {server} instruments and the gateway {gateway} subscriptions"
            )),
        ),
        None => fail(
            "leak",
            Some("cannot read the subscriptions at the end".into()),
        ),
    }
    match c.tasks {
        (Some(idle), Some(now)) => fail("tasks", checks::tasks(idle, now)),
        _ => fail(
            "tasks",
            Some("cannot read ibstream_tasks_alive from /metrics".into()),
        ),
    }
    match c.memory {
        (Some(warm), Some(now)) => fail("memory", checks::memory(warm, now)),
        _ => fail("memory", Some("cannot read the child's VmRSS".into())),
    }
    if c.final_stats.is_none() {
        fail(
            "sim-control",
            Some("cannot read the gateway's statistics at the end".into()),
        );
    }
    if let Some(status) = c.server.exited() {
        fail("child", Some(format!("the server exited early: {status}")));
    }
    for line in checks::panics(&c.server.output()) {
        fail("panic", Some(line));
    }
    violations.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut faults = std::collections::BTreeMap::new();
    for f in &obs.faults {
        *faults.entry(f.kind.clone()).or_default() += 1;
    }
    Summary {
        duration_secs: c.options.duration.as_secs_f64(),
        seed: c.options.seed,
        clients: c.options.clients,
        faults,
        streams_opened: obs.streams.len(),
        updates: obs.updates,
        refused: obs.refused.clone(),
        windows: fresh.windows,
        worst_recovery: fresh.worst_recovery,
        worst_first_data: fresh.worst_first_data,
        worst_revocation: obs.revocation_latencies.iter().copied().reduce(f64::max),
        revocations_seen: obs.revocation_latencies.len(),
        subscription_checks: obs.subscription_checks,
        held_at_end: c.held_at_end,
        tasks: c.tasks,
        peak_rate: obs.peak_rate,
        rate_limit: c.rate_limit,
        memory_kb: c.memory,
        session_losses: obs.session_losses.len(),
        violations,
        kept: None,
    }
}
