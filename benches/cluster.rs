//! ibstream as a cluster: three `ibstream serve --cluster` processes against one
//! simulated gateway, beside one plain `ibstream serve` in the same run. Delivered
//! updates and the latency a follower adds over the leader, then leader failovers.
//! Prints one markdown table.
//!
//! `cargo bench --bench cluster` (a few minutes on two cores). `cargo test --bench
//! cluster` runs every phase at a tiny size and checks only that each delivered.
//! Needs NATS with JetStream at 127.0.0.1:4222 (or `IBSTREAM_TEST_NATS`) and PostgreSQL
//! at 127.0.0.1:5432; without them it warns loudly and skips (fails under `CI=true`).
//!
//! The simulator runs in this process; the nodes are processes of their own; the
//! subscribers run in another (this binary again with `IBSTREAM_CLUSTER_BENCH_CLIENT`
//! set, see `cluster/client.rs`), each on its own HTTP/2 connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "../tests/cluster/agree.rs"]
mod agree;
#[path = "../tests/store/backend.rs"]
#[allow(dead_code)] // the SQLite half and the raw queries serve the store tests
mod backend;
#[path = "../tests/cluster/bus.rs"]
mod bus;
#[path = "backends/child.rs"]
#[allow(dead_code)] // the pid and the ignored output serve the backends bench
mod child;
#[path = "cluster/client.rs"]
mod client;
#[path = "cluster/rig.rs"]
mod rig;

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ibstream::sim::universe::{SecType, Universe};

use child::Piped;
use rig::{LEASE_TTL, Rig};

/// Sizes and durations of a run.
struct Plan {
    name: &'static str,
    instruments: usize,
    nodes: usize,
    per_node: usize,
    tick: Duration,
    warmup: Duration,
    window: Duration,
    failovers: usize,
}

impl Plan {
    fn from_args() -> Plan {
        // Without `--bench` this runs under `cargo test`: tiny, only checks delivery.
        if std::env::args().any(|a| a == "--bench") {
            Plan {
                name: "full",
                instruments: 100,
                nodes: 3,
                per_node: 50,
                tick: Duration::from_millis(100),
                warmup: Duration::from_secs(5),
                window: Duration::from_secs(15),
                failovers: 10,
            }
        } else {
            Plan {
                name: "tiny",
                instruments: 5,
                nodes: 3,
                per_node: 2,
                tick: Duration::from_millis(100),
                warmup: Duration::from_secs(1),
                window: Duration::from_secs(2),
                failovers: 1,
            }
        }
    }

    fn subscribers(&self) -> usize {
        self.nodes * self.per_node
    }
}

/// When the bench started.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Says on stderr what the bench is doing (stdout is the table's).
fn progress(what: &str) {
    let since = STARTED.get_or_init(Instant::now);
    eprintln!("[{:>6.1} s] {what}", since.elapsed().as_secs_f64());
}

fn main() {
    if let Ok(spec) = std::env::var(client::CLIENT_ENV) {
        return client::run(&spec);
    }
    let plan = Plan::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(plan));
}

/// `n` instruments the simulator knows: its stocks and ETFs, then listed options nearest
/// the money of its nearest expirations (it lists fewer underlyings than a run wants).
/// Each as the client names it (`S:SYMBOL`, `O:CONID`), and how many are stocks.
fn instruments(n: usize) -> (Vec<String>, usize) {
    let universe = Universe::build(time::OffsetDateTime::now_utc().date());
    let mut stocks: Vec<String> = universe
        .underlyings()
        .map(|i| universe.get(i))
        .filter(|inst| inst.sec_type == SecType::Stock)
        .map(|inst| inst.symbol.clone())
        .collect();
    stocks.dedup();
    let mut options: Vec<(time::Date, f64, i32)> = (0..universe.len())
        .map(|i| universe.get(i))
        .filter_map(|inst| {
            let terms = inst.option.as_ref()?;
            let spot = universe.get(terms.underlying).entry.price;
            Some((terms.expiry, (terms.strike / spot - 1.0).abs(), inst.con_id))
        })
        .collect();
    options.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut out: Vec<String> = stocks.iter().map(|s| format!("S:{s}")).collect();
    out.extend(options.iter().map(|o| format!("O:{}", o.2)));
    out.truncate(n);
    let stocks = stocks.len().min(n);
    (out, stocks)
}

/// The subscribers' process.
struct Clients(Piped);

impl Clients {
    fn start(instruments: &[String]) -> Clients {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command.env(client::CLIENT_ENV, instruments.join(","));
        Clients(Piped::start(command, true))
    }

    /// Sends `command` and returns the answer.
    async fn ask(&mut self, command: &str) -> String {
        self.0.send(command);
        self.0.line(Duration::from_secs(300)).await
    }

    /// Opens `count` subscribers on `url`; panics when they get no quote of everything.
    async fn open(&mut self, role: &str, count: usize, url: &str) {
        let answer = self.ask(&format!("open {role} {count} {url}")).await;
        assert!(
            answer.starts_with("ready"),
            "{count} {role} subscribers on {url}: {answer}"
        );
    }

    async fn measure(&mut self, window: Duration) -> Window {
        let answer = self.ask(&format!("measure {}", window.as_secs_f64())).await;
        let fields: HashMap<&str, f64> = answer
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        Window {
            quotes: fields["quotes"],
            follower_quotes: fields["follower_quotes"],
            secs: fields["secs"],
            p50_us: fields["p50"],
            p99_us: fields["p99"],
            follower_p50_us: fields["fp50"],
            follower_p99_us: fields["fp99"],
            samples: fields["samples"],
            unmatched: fields["unmatched"],
        }
    }
}

/// What one measured window saw.
struct Window {
    quotes: f64,
    follower_quotes: f64,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
    follower_p50_us: f64,
    follower_p99_us: f64,
    samples: f64,
    unmatched: f64,
}

/// One failover: the leader killed, a new one agreed on, every surviving stream fresh.
struct Failover {
    leader_after: Duration,
    fresh_after: Duration,
}

async fn run(plan: Plan) {
    let t0 = *STARTED.get_or_init(Instant::now);
    let (instruments, stocks) = instruments(plan.instruments);
    assert_eq!(
        instruments.len(),
        plan.instruments,
        "the simulator lists enough"
    );

    progress("one plain node");
    let Some(solo) = solo(&plan, &instruments).await else {
        return;
    };
    progress("three-node cluster");
    let Some((cluster, failovers, stuck, complaints)) = cluster(&plan, &instruments).await else {
        return;
    };
    progress("done");

    assert!(solo.quotes > 0.0, "the plain node delivered nothing");
    assert!(solo.samples > 0.0, "no latency of the plain node");
    assert!(cluster.quotes > 0.0, "the cluster delivered nothing");
    assert!(
        cluster.follower_quotes > 0.0,
        "the followers delivered nothing"
    );
    assert!(
        cluster.samples > 0.0,
        "no follower value matched the leader's"
    );
    assert!(
        !failovers.is_empty() && (plan.name == "full" || stuck.is_empty()),
        "failovers not fresh again: {stuck:?}"
    );

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nibstream cluster ({} run, {cores} cores, {:.0} s): `cargo bench --bench cluster`\n",
        plan.name,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "{} instruments ({stocks} stocks and ETFs, {} options) on every stream; {} nodes × {} \
         subscribers = {} subscribers, each its own HTTP/2 connection and one StreamQuotes \
         of all instruments; simulator tick {} ms (in the bench process); lease TTL {LEASE_TTL}; \
         warm-up {} s, window {} s; nodes and subscribers are separate processes on the \
         same {cores} cores.\n",
        plan.instruments,
        plan.instruments - stocks,
        plan.nodes,
        plan.per_node,
        plan.subscribers(),
        plan.tick.as_millis(),
        plan.warmup.as_secs(),
        plan.window.as_secs(),
    );
    println!("| Setup | Subscribers | Delivered updates/s | Added latency p50 | p99 | Samples |");
    println!("|---|---:|---:|---:|---:|---:|");
    let ms = |us: f64| format!("{:.2} ms", us / 1e3);
    println!(
        "| one plain node (receipt → client) | {} | {:.0} | {} | {} | {:.0} |",
        plan.subscribers(),
        solo.quotes / solo.secs,
        ms(solo.p50_us),
        ms(solo.p99_us),
        solo.samples
    );
    println!(
        "| {} nodes, all subscribers (leader receipt → client) | {} | {:.0} | {} | {} | {:.0} \
         ({:.0} unmatched) |",
        plan.nodes,
        plan.subscribers(),
        cluster.quotes / cluster.secs,
        ms(cluster.p50_us),
        ms(cluster.p99_us),
        cluster.samples,
        cluster.unmatched
    );
    println!(
        "| {} nodes, followers' subscribers only | {} | {:.0} | {} | {} | |",
        plan.nodes,
        plan.subscribers() - plan.per_node,
        cluster.follower_quotes / cluster.secs,
        ms(cluster.follower_p50_us),
        ms(cluster.follower_p99_us),
    );
    println!();
    println!(
        "| Failover: leader SIGKILLed, lease TTL {LEASE_TTL}, {} of {} runs fresh again | min | \
         median | max |",
        failovers.len(),
        plan.failovers
    );
    println!("|---|---:|---:|---:|");
    let stats = |mut v: Vec<Duration>| {
        v.sort();
        let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        format!(
            "{} | {} | {}",
            s(v[0]),
            s(v[v.len() / 2]),
            s(v[v.len() - 1])
        )
    };
    println!(
        "| survivors agree on a new connected leader | {} |",
        stats(failovers.iter().map(|f| f.leader_after).collect())
    );
    println!(
        "| every stream on the survivors fresh again, every instrument | {} |",
        stats(failovers.iter().map(|f| f.fresh_after).collect())
    );
    for line in &stuck {
        println!("\nNot fresh within 30 s of the kill, left out of the figures: {line}");
    }
    println!(
        "\nRuns per failover: {}; node log lines at WARN or ERROR over the cluster's life: {}.",
        failovers
            .iter()
            .map(|f| format!("{:.2}", f.fresh_after.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        complaints.len()
    );
    for line in complaints.iter().take(10) {
        eprintln!("  {line}");
    }
}

/// 150 subscribers (as many as the cluster's) on one plain node.
async fn solo(plan: &Plan, instruments: &[String]) -> Option<Window> {
    let rig = Rig::start(0, plan.tick).await?;
    let mut clients = Clients::start(instruments);
    clients
        .open("solo", plan.subscribers(), &rig.nodes[0].url)
        .await;
    tokio::time::sleep(plan.warmup).await;
    progress("  measuring");
    let window = clients.measure(plan.window).await;
    drop(clients);
    drop(rig);
    Some(window)
}

/// The cluster: its window with a probe on the leader, then the failovers.
async fn cluster(
    plan: &Plan,
    instruments: &[String],
) -> Option<(Window, Vec<Failover>, Vec<String>, Vec<String>)> {
    let mut rig = Rig::start(plan.nodes, plan.tick).await?;
    let leader = rig.wait_leader(|_| true).await;
    let mut clients = Clients::start(instruments);
    assert_eq!(
        clients
            .ask(&format!("probe {}", rig.node(&leader).url))
            .await,
        "ready"
    );
    for node in &rig.nodes {
        let role = if node.name == leader {
            "leader"
        } else {
            "follower"
        };
        progress(&format!("  {} subscribers on {}", plan.per_node, node.name));
        clients.open(role, plan.per_node, &node.url).await;
    }
    tokio::time::sleep(plan.warmup).await;
    progress("  measuring");
    let window = clients.measure(plan.window).await;

    let mut failovers = Vec::new();
    // Runs whose streams were not all fresh again in time: reported, not measured.
    let mut stuck = Vec::new();
    for run in 1..=plan.failovers {
        let leader = rig.wait_leader(|_| true).await;
        assert_eq!(clients.ask("arm").await, "armed");
        let url = rig.node(&leader).url.clone();
        progress(&format!(
            "  failover {run}: killing {leader} (pid {})",
            rig.node(&leader).pid()
        ));
        let killed = Instant::now();
        let killed_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        rig.kill(&leader);
        clients.0.send(&format!("await {url} {killed_ns}"));
        let successor = rig.wait_leader(|l| l != leader).await;
        let leader_after = killed.elapsed();
        let answer = clients.0.line(Duration::from_secs(300)).await;
        let fresh_after = match answer.split_once(' ') {
            Some(("recovered", secs)) => Some(Duration::from_secs_f64(secs.parse().unwrap())),
            _ => {
                progress(&format!("  failover {run}: {answer}"));
                stuck.push(format!("run {run}: {answer}"));
                None
            }
        };
        let Some(fresh_after) = fresh_after else {
            let node = rig.start_node(&leader).await;
            let url = node.url.clone();
            rig.nodes.push(node);
            rig.wait_leader(|_| true).await;
            clients.open("follower", plan.per_node, &url).await;
            continue;
        };
        progress(&format!(
            "  failover {run}: {successor} leads after {:.2} s, streams fresh after {:.2} s",
            leader_after.as_secs_f64(),
            fresh_after.as_secs_f64()
        ));
        failovers.push(Failover {
            leader_after,
            fresh_after,
        });
        // The killed node comes back as a follower, its subscribers with it.
        let node = rig.start_node(&leader).await;
        let url = node.url.clone();
        rig.nodes.push(node);
        rig.wait_leader(|_| true).await;
        clients.open("follower", plan.per_node, &url).await;
    }
    let complaints = rig.complaints();
    drop(clients);
    drop(rig);
    Some((window, failovers, stuck, complaints))
}
