//! What a bar request costs: uncached (to the simulated gateway over the TWS protocol
//! through `ibapi`, then into the store), cached (the store, through the bar service),
//! and the raw baseline of reading the same rows straight from the store.
//!
//! `cargo bench --bench bars` (dependencies are optimised in every profile). `cargo
//! test --bench bars` runs it at a tiny size and checks that every request was answered
//! and the cached ones without the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

use std::sync::Arc;
use std::time::{Duration, Instant};

use ibstream::bars::spec::{BarSize, WhatToShow};
use ibstream::bars::{BarOrigin, BarQuery, Bars, IbHistory};
use ibstream::fanout::{ContractSpec, SecType};
use ibstream::ib::historical_pacer::{HistoricalPacer, HistoricalRules};
use ibstream::ib::{Link, MessagePacer};
use ibstream::metrics::Metrics;
use ibstream::sim::{SimConfig, Simulator};
use ibstream::store::Store;

/// Latency percentiles of a set of samples.
fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what:<58} n={:<5} p50 {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test` does not: then a tiny, fast run.
    let full = std::env::args().any(|a| a == "--bench");
    let n: i64 = if full { 200 } else { 5 };
    // The pacing rules shrunk alike on both sides, so the run measures the request,
    // not IB's ten-minute window.
    let rules = HistoricalRules::scaled(1e-4);
    let sim = Simulator::start(SimConfig {
        historical_rules: rules,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = ibapi::Client::connect(&sim.gateway_addr().to_string(), 1)
        .await
        .unwrap();
    let (_links_tx, links) = tokio::sync::watch::channel(Some(Link {
        generation: 1,
        client: Arc::new(client),
    }));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&ibstream::store::sqlite_url(&dir.path().join("bars.db")))
        .await
        .unwrap();
    // IB's (and the simulator's) 50 messages a second.
    let messages = MessagePacer::new(50, Arc::new(Metrics::default()));
    let bars = Bars::new(
        IbHistory::new(links, messages.clone()),
        Some(store.clone()),
        HistoricalPacer::new(rules, messages),
        Duration::from_secs(10),
    );
    let contract = ContractSpec {
        con_id: 265_598,
        symbol: "AAPL".into(),
        sec_type: SecType::Stock,
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..Default::default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let base = (now - 86_400).div_euclid(60) * 60;
    // Distinct windows of thirty one-minute bars, an hour apart.
    let query = |i: i64| BarQuery {
        con_id: contract.con_id,
        size: BarSize::Min1,
        what: WhatToShow::Trades,
        regular_hours: false,
        start: base - 3_600 * i - 1_800,
        end: base - 3_600 * i,
    };

    println!(
        "\nibstream bar requests (30 one-minute bars each; SQLite; simulated gateway): `cargo bench --bench bars`\n"
    );
    let mut uncached = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        let answer = bars.get(&contract, &query(i), true).await.unwrap();
        uncached.push(t.elapsed());
        assert_eq!(answer.origin, BarOrigin::Ib);
        assert_eq!(answer.bars.len(), 30);
    }
    let asked = sim.control().stats().historical_requests;
    assert_eq!(asked, n as u64, "one gateway request each");
    report(
        "uncached: pacer + gateway (ibapi, TWS protocol) + store",
        uncached,
    );

    let mut cached = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        let answer = bars.get(&contract, &query(i), false).await.unwrap();
        cached.push(t.elapsed());
        assert_eq!(answer.origin, BarOrigin::Cache);
        assert_eq!(answer.bars.len(), 30);
    }
    report("cached: bar service (coverage check + rows)", cached);

    let series = query(0).series();
    let mut raw = Vec::new();
    for i in 0..n {
        let q = query(i);
        let t = Instant::now();
        let rows = store.bars(&series, q.start, q.end).await.unwrap();
        raw.push(t.elapsed());
        assert_eq!(rows.len(), 30);
    }
    report("raw baseline: the same rows straight from the store", raw);
    assert_eq!(
        sim.control().stats().historical_requests,
        asked,
        "cached answers never asked the gateway"
    );
    assert_eq!(sim.control().stats().historical_pacing_violations, 0);
    sim.shutdown().await;
}
