//! The one table the bench prints: every figure beside the raw tonic one where there is
//! one, in markdown.

use std::time::Duration;

use crate::cold::ColdStart;
use crate::footprint::{Idle, SlowReader};
use crate::job::{Percentiles, Report};
use crate::plan::{Plan, thousands};
use crate::throughput::{EndToEnd, SyntheticShape, Window};

/// Everything measured (by the phases that ran).
#[derive(Default)]
pub struct Results {
    pub idle: Option<Idle>,
    pub shapes: Vec<SyntheticShape>,
    pub slow: Option<SlowReader>,
    pub chain: Option<Report>,
    pub e2e: Vec<EndToEnd>,
    pub cold: Option<ColdStart>,
}

struct Row {
    measure: String,
    ibstream: String,
    raw: String,
    ratio: String,
    notes: String,
}

const NONE: &str = "—";

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        NONE.into()
    }
}

fn latency(p: &Percentiles) -> String {
    format!(
        "{} / {} / {}",
        thousands(p.p50),
        thousands(p.p99),
        thousands(p.p999)
    )
}

fn cores(w: &Window, names: &[&str]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(&w.cpu)
        .map(|(n, c)| format!("{n} {c:.2}"))
        .collect();
    format!("CPU cores: {}", parts.join(", "))
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn kib(bytes: f64) -> String {
    format!("{:.1}", bytes / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

impl Row {
    /// A figure with nothing raw to compare with.
    fn alone(measure: String, ibstream: String, notes: String) -> Row {
        Row {
            measure,
            ibstream,
            raw: NONE.into(),
            ratio: NONE.into(),
            notes,
        }
    }
}

impl Results {
    fn rows(&self, plan: &Plan) -> Vec<Row> {
        let mut rows = Vec::new();
        self.synthetic_rows(&mut rows);
        self.e2e_rows(&mut rows);
        if let Some(c) = &self.cold {
            cold_rows(c, plan, &mut rows);
        }
        self.footprint_rows(plan, &mut rows);
        if let Some(a) = self.shapes.first() {
            let per = |w: &Window| w.allocations as f64 / w.report.quotes.max(1) as f64;
            rows.push(Row {
                measure: format!(
                    "Allocations per delivered quote, synthetic, {}, saturated",
                    a.shape.label()
                ),
                ibstream: format!("{:.2}", per(&a.ibstream)),
                raw: format!("{:.2}", per(&a.raw)),
                ratio: ratio(per(&a.ibstream), per(&a.raw)),
                notes: format!(
                    "allocation calls in the server process (source included) over the window ÷ quotes the clients received ({} ÷ {})",
                    thousands(a.ibstream.allocations as f64),
                    thousands(a.ibstream.report.quotes as f64)
                ),
            });
        }
        rows
    }

    fn synthetic_rows(&self, rows: &mut Vec<Row>) {
        for s in &self.shapes {
            rows.push(Row {
                measure: format!(
                    "Throughput, synthetic source, {} (quotes/s)",
                    s.shape.label()
                ),
                ibstream: thousands(s.ibstream.rate()),
                raw: thousands(s.raw.rate()),
                ratio: ratio(s.ibstream.rate(), s.raw.rate()),
                notes: format!(
                    "{:.0} vs {:.0} bytes/quote; source {} ticks/s; {}; raw: {}",
                    s.ibstream.report.message_bytes,
                    s.raw.report.message_bytes,
                    thousands(s.ticks_in),
                    cores(&s.ibstream, &["server", "clients", "source thread"]),
                    cores(&s.raw, &["server", "clients"]),
                ),
            });
        }
        for s in &self.shapes {
            let got = s.ibstream_half.rate();
            rows.push(Row {
                measure: format!(
                    "Latency p50 / p99 / p99.9 (µs), synthetic, {}, at {} quotes/s ({:.0}% of saturation)",
                    s.shape.label(),
                    thousands(got),
                    100.0 * got / s.ibstream.rate().max(1.0)
                ),
                ibstream: latency(&s.ibstream_half.report.latency),
                raw: latency(&s.raw_half.report.latency),
                ratio: ratio(
                    s.ibstream_half.report.latency.p50,
                    s.raw_half.report.latency.p50,
                ) + " (p50)",
                notes: format!(
                    "aimed at {}: each instrument steps every {:.2} ms; raw paced to {} quotes/s, each stream every ms",
                    thousands(s.half_rate),
                    s.tick.as_secs_f64() * 1e3,
                    thousands(s.raw_half.rate())
                ),
            });
        }
    }

    fn e2e_rows(&self, rows: &mut Vec<Row>) {
        for e in &self.e2e {
            let raw = self
                .shapes
                .iter()
                .find(|s| s.shape.label() == e.shape.label())
                .map(|s| s.raw.rate());
            rows.push(Row {
                measure: format!(
                    "Throughput, simulator process (1 ms ticks), {} (quotes/s)",
                    e.shape.label()
                ),
                ibstream: thousands(e.saturated.rate()),
                raw: raw.map_or(NONE.into(), thousands),
                ratio: raw.map_or(NONE.into(), |r| ratio(e.saturated.rate(), r)),
                notes: format!(
                    "{:.0} bytes/quote; {}; {}/{} streams had every quote before the window; while subscribing and measuring the simulator saw {} reqContractDetails, {} reqMktData, {} session connections, {} pacing errors (100)",
                    e.saturated.report.message_bytes,
                    cores(&e.saturated, &["ibstream", "clients", "simulator"]),
                    e.ready,
                    e.shape.subscribers,
                    e.sim.contract_details,
                    e.sim.market_data,
                    e.sim.connections,
                    e.sim.pacing_errors,
                ),
            });
        }
        for e in &self.e2e {
            let got = e.half.rate();
            rows.push(Row::alone(
                format!(
                    "Latency p50 / p99 / p99.9 (µs), simulator, {}, at {} quotes/s ({:.0}% of saturation)",
                    e.shape.label(),
                    thousands(got),
                    100.0 * got / e.saturated.rate().max(1.0)
                ),
                latency(&e.half.report.latency),
                format!(
                    "simulator steps every {:.1} ms; {}",
                    e.tick.as_secs_f64() * 1e3,
                    cores(&e.half, &["ibstream", "clients", "simulator"])
                ),
            ));
        }
    }

    fn footprint_rows(&self, plan: &Plan, rows: &mut Vec<Row>) {
        if let Some(i) = &self.idle {
            rows.push(Row {
                measure: format!(
                    "Memory per idle stream, {} streams × {} instruments, each on its own connection (RSS KiB)",
                    thousands(plan.idle_streams as f64),
                    plan.idle_instruments
                ),
                ibstream: kib(i.ibstream.rss),
                raw: kib(i.raw.rss),
                ratio: ratio(i.ibstream.rss, i.raw.rss),
                notes: format!(
                    "live heap per stream: ibstream {} KiB, raw {} KiB",
                    kib(i.ibstream.heap),
                    kib(i.raw.heap)
                ),
            });
        }
        if let Some(s) = &self.slow {
            let late_growth = s.peak_late.saturating_sub(s.peak_early);
            let bounded = late_growth <= (s.before / 50).max(4 << 20);
            rows.push(Row::alone(
                format!(
                    "RSS while 1 of {} subscribers ({} instruments, saturated) reads nothing for {} s (MiB)",
                    plan.shapes[0].subscribers,
                    plan.shapes[0].instruments,
                    plan.slow_for.as_secs_f64()
                ),
                format!("{} → peak {}", mib(s.before), mib(s.peak)),
                format!(
                    "{}: peak {} MiB in the first third, {} MiB after; the others got {} quotes/s meanwhile",
                    if bounded { "bounded" } else { "STILL GROWING" },
                    mib(s.peak_early),
                    mib(s.peak_late),
                    thousands(s.others.rate())
                ),
            ));
        }
        if let Some(ch) = &self.chain {
            rows.push(Row::alone(
                format!(
                    "Option-chain snapshot from cache, {} options, StreamOptionChain → SnapshotComplete, p50 / p99 (ms)",
                    thousands(plan.chain_options() as f64)
                ),
                format!("{:.1} / {:.1}", ch.times_ms.p50, ch.times_ms.p99),
                format!(
                    "{} snapshots one after another while a holder keeps the window live; max {:.1} ms",
                    ch.times_ms.samples, ch.times_ms.max
                ),
            ));
        }
        if let Some(i) = &self.idle {
            rows.push(Row::alone(
                format!(
                    "Shutdown with {} open streams, signal → server and session ended (ms)",
                    thousands(plan.idle_streams as f64)
                ),
                ms(i.shutdown),
                format!(
                    "{} streams ended UNAVAILABLE, {} otherwise",
                    i.ended.unavailable,
                    i.ended.ended - i.ended.unavailable
                ),
            ));
        }
    }

    /// The table, markdown.
    pub fn table(&self, plan: &Plan) -> String {
        let mut out = String::from(
            "| measure | ibstream | raw tonic | ibstream / raw | notes |\n|---|---:|---:|---:|---|\n",
        );
        for r in self.rows(plan) {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.measure, r.ibstream, r.raw, r.ratio, r.notes
            ));
        }
        out
    }
}

fn cold_rows(c: &ColdStart, plan: &Plan, rows: &mut Vec<Row>) {
    rows.push(Row::alone(
        format!(
            "Cold start: {} clients × {} stocks at once, fresh server and simulator, until every stream has a quote of each (ms)",
            plan.cold_clients, c.symbols
        ),
        format!("{:.0}", c.report.seconds * 1e3),
        format!(
            "median stream {:.0} ms; {}/{} streams complete",
            c.report.times_ms.p50, c.report.ready, plan.cold_clients
        ),
    ));
    rows.push(Row::alone(
        "Cold start: reqContractDetails the simulator counted".into(),
        c.contract_details.to_string(),
        format!(
            "reqMktData {}; {} symbols × {} clients asked",
            c.market_data, c.symbols, plan.cold_clients
        ),
    ));
}
