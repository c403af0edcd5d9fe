//! Many backends at once: throughput, added latency, cold start, memory, chain snapshots,
//! shutdown and allocations of ibstream's server, each beside a raw tonic server in the
//! same run where there is one to compare with. Prints one markdown table.
//!
//! `cargo bench --bench backends` (about five minutes on two cores; `-- --quick` or
//! `IBSTREAM_BENCH_QUICK=1` for a shorter run; `IBSTREAM_BENCH_PHASES=idle,synthetic,
//! slow,chain,e2e,cold` and `IBSTREAM_BENCH_SHAPES=0,1,2` keep some phases and shapes).
//! `cargo test --bench backends` runs every phase at a tiny size and checks only that
//! everything was delivered.
//!
//! The server under test runs in this process, so its resident memory and allocations are
//! this process's. The subscribers run in another: this binary again, started with
//! `IBSTREAM_BENCH_CLIENT` set (see `backends/client.rs`), every subscriber on its own
//! HTTP/2 connection. The simulated gateway of the end-to-end phases runs in a third
//! (`ibstream sim`).
//!
//! - `plan`: sizes and durations; `job`: what a client process is asked and answers;
//!   `client`: the client process; `fleet`: starting and steering one.
//! - `servers`: ibstream over the synthetic source or against a gateway; `raw`: the bare
//!   tonic ceiling; `sim`: the simulator process; `fanout/synthetic.rs`: the source.
//! - `throughput`, `footprint`, `cold`: the phases; `memory`: what the process costs;
//!   `table`: the result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "backends/child.rs"]
mod child;
#[path = "backends/client.rs"]
mod client;
#[path = "backends/cold.rs"]
mod cold;
#[path = "backends/fleet.rs"]
mod fleet;
#[path = "backends/footprint.rs"]
mod footprint;
#[path = "backends/job.rs"]
mod job;
#[path = "backends/memory.rs"]
mod memory;
#[path = "backends/plan.rs"]
mod plan;
#[path = "backends/raw.rs"]
mod raw;
#[path = "backends/servers.rs"]
mod servers;
#[path = "backends/sim.rs"]
mod sim;
#[path = "fanout/synthetic.rs"]
mod synthetic;
#[path = "backends/table.rs"]
mod table;
#[path = "backends/throughput.rs"]
mod throughput;

use std::sync::OnceLock;
use std::time::Instant;

use plan::Plan;
use table::Results;

#[global_allocator]
static ALLOCATOR: memory::Counting = memory::Counting;

fn main() {
    if let Ok(job) = std::env::var(job::CLIENT_ENV) {
        return client::run(&job);
    }
    let plan = Plan::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(plan));
}

/// When the bench started.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Says on stderr what the bench is doing (stdout is the table's).
fn progress(what: &str) {
    let since = STARTED.get_or_init(Instant::now);
    eprintln!("[{:>5.1} s] {what}", since.elapsed().as_secs_f64());
}

/// Whether phase `name` runs: all do unless `IBSTREAM_BENCH_PHASES` lists some
/// (`idle,synthetic,slow,chain,e2e,cold`).
fn wants(name: &str) -> bool {
    std::env::var("IBSTREAM_BENCH_PHASES")
        .map_or(true, |list| list.split(',').any(|p| p.trim() == name))
}

async fn run(plan: Plan) {
    let t0 = *STARTED.get_or_init(Instant::now);
    let mut results = Results::default();
    if wants("idle") {
        progress("idle streams: memory, then shutdown");
        results.idle = Some(footprint::idle(&plan).await);
    }
    if wants("synthetic") {
        for &shape in &plan.shapes {
            progress(&format!("synthetic source, {}", shape.label()));
            results
                .shapes
                .push(throughput::synthetic_shape(shape, &plan).await);
        }
    }
    if wants("slow") {
        progress("one subscriber stops reading");
        results.slow = Some(footprint::slow_reader(plan.shapes[0], &plan).await);
    }
    if wants("chain") {
        progress("option-chain snapshots");
        results.chain = Some(footprint::chain_snapshot(&plan).await);
    }
    if wants("e2e") {
        progress("simulator process, every shape");
        results.e2e = throughput::end_to_end(&plan).await;
    }
    if wants("cold") {
        progress("cold start");
        results.cold = Some(cold::cold_start(&plan).await);
    }
    progress("done");
    println!(
        "\nibstream, many backends ({} run, {} cores, {:.0} s): `cargo bench --bench backends`\n",
        plan.name,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        t0.elapsed().as_secs_f64()
    );
    print!("{}", results.table(&plan));
    check_delivered(&results, &plan);
}

/// What every run checks, the tiny one included: each phase delivered what it asked for.
/// No figure is checked, only that there is one.
fn check_delivered(r: &Results, plan: &Plan) {
    for s in &r.shapes {
        for (what, w) in [
            ("raw saturated", &s.raw),
            ("ibstream saturated", &s.ibstream),
            ("ibstream at half rate", &s.ibstream_half),
            ("raw at half rate", &s.raw_half),
        ] {
            assert!(w.report.quotes > 0, "{}: {what} delivered", s.shape.label());
            assert!(w.report.latency.samples > 0, "{what}: latencies");
        }
    }
    for e in &r.e2e {
        assert!(
            e.saturated.report.quotes > 0,
            "{}: end to end",
            e.shape.label()
        );
        assert!(
            e.half.report.quotes > 0,
            "{}: end to end, slower",
            e.shape.label()
        );
    }
    if let Some(cold) = &r.cold {
        assert_eq!(
            cold.report.ready, plan.cold_clients,
            "every cold-start stream had a quote of every stock"
        );
        assert!(cold.contract_details > 0, "the simulator counted look-ups");
    }
    if let Some(idle) = &r.idle {
        assert_eq!(
            idle.ended.ended, plan.idle_streams,
            "shutdown ended every idle stream"
        );
    }
    if let Some(chain) = &r.chain {
        assert_eq!(
            chain.options,
            plan.chain_options(),
            "the chain snapshot holds the whole window"
        );
        assert_eq!(chain.times_ms.samples, plan.chain_repeat);
    }
    if let Some(slow) = &r.slow {
        assert!(slow.others.report.quotes > 0, "the others kept receiving");
    }
}
