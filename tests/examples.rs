//! The polyglot examples under `examples/` against `ibstream demo` on ephemeral ports,
//! as a user runs them: Python (client code generated at run time with grpc_tools) and
//! Node (@grpc/grpc-js with @grpc/proto-loader). Without python3/grpc_tools or
//! node/node_modules the tests warn loudly and skip, except under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "cli/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Demo, Output, repo, run, tool_available};

/// Runs one example script with the demo's address first (bounded).
fn example(program: &str, dir: &Path, script: &str, demo: &Demo, args: &[&str]) -> Output {
    run(
        Command::new(program)
            .current_dir(dir)
            .arg(script)
            .arg(&demo.grpc)
            .args(args)
            .env_remove("IBSTREAM_API_KEY")
            .env_remove("IBSTREAM_PROTO_DIR"),
        Duration::from_secs(90),
    )
}

/// Lines starting with `prefix`.
fn lines_with<'a>(out: &'a Output, prefix: &str) -> Vec<&'a str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// The number after `name=` in a line.
fn number(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

/// Asserts `count` quote lines of `symbols` with bid ≤ ask, both positive.
fn assert_quotes(out: &Output, symbols: &[&str], count: usize) {
    assert!(out.status.success(), "{}", out.describe());
    let quotes: Vec<&str> = out.stdout.lines().filter(|l| l.contains(" bid=")).collect();
    assert_eq!(quotes.len(), count, "{}", out.describe());
    for line in &quotes {
        let bid = number(line, "bid").unwrap_or_else(|| panic!("no bid in {line:?}"));
        let ask = number(line, "ask").unwrap_or_else(|| panic!("no ask in {line:?}"));
        assert!(bid > 0.0 && ask >= bid, "{line}");
    }
    for symbol in symbols {
        assert!(
            quotes.iter().any(|l| l.starts_with(&format!("{symbol} "))),
            "no {symbol} quote\n{}",
            out.describe()
        );
    }
}

/// Asserts at least `count` option lines, each with a quote and Greeks in range.
fn assert_chain(out: &Output, count: usize) {
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stdout.lines().any(|l| l.starts_with("window options=")),
        "{}",
        out.describe()
    );
    // Options that change together arrive in one batch, so a batch may overshoot.
    let options = lines_with(out, "SPY 2");
    assert!(options.len() >= count, "{}", out.describe());
    for line in options {
        let delta = number(line, "delta").unwrap_or_else(|| panic!("no delta in {line:?}"));
        let iv = number(line, "iv").unwrap_or_else(|| panic!("no iv in {line:?}"));
        assert!((-1.0..=1.0).contains(&delta) && delta != 0.0, "{line}");
        assert!(iv > 0.0 && iv < 5.0, "{line}");
        for greek in ["gamma", "vega", "theta"] {
            assert!(number(line, greek).is_some(), "no {greek} in {line:?}");
        }
    }
}

fn python_ready(dir: &Path) -> bool {
    tool_available(
        "python3",
        &["-c", "import grpc, grpc_tools.protoc"],
        "python3 with grpcio and grpcio-tools (pip install -r examples/python/requirements.txt)",
        Some(dir),
    )
}

fn node_ready(dir: &Path) -> bool {
    tool_available(
        "node",
        &[
            "-e",
            "require('@grpc/grpc-js'); require('@grpc/proto-loader')",
        ],
        "node with examples/node/node_modules (cd examples/node && npm install)",
        Some(dir),
    )
}

#[test]
fn python_examples_stream_quotes_and_a_chain_with_greeks() {
    let dir = repo().join("examples/python");
    if !python_ready(&dir) {
        return;
    }
    let demo = Demo::start();
    let quotes = example(
        "python3",
        &dir,
        "stream_quotes.py",
        &demo,
        &["AAPL", "MSFT", "--updates", "6"],
    );
    assert_quotes(&quotes, &["AAPL", "MSFT"], 6);
    let chain = example(
        "python3",
        &dir,
        "stream_chain.py",
        &demo,
        &["SPY", "--strikes", "2", "--updates", "4"],
    );
    assert_chain(&chain, 4);
}

#[test]
fn python_example_loads_bars_into_a_dataframe() {
    let dir = repo().join("examples/python");
    if !python_ready(&dir)
        || !tool_available(
            "python3",
            &["-c", "import pandas"],
            "python3 with pandas (pip install -r examples/python/requirements.txt)",
            Some(&dir),
        )
    {
        return;
    }
    let demo = Demo::start();
    let args = ["AAPL", "--size", "1m", "--duration", "1800 S"];
    let out = example("python3", &dir, "bars_dataframe.py", &demo, &args);
    assert!(out.status.success(), "{}", out.describe());
    let summary = lines_with(&out, "bars=");
    assert_eq!(summary.len(), 1, "{}", out.describe());
    let line = summary[0];
    // Whole minutes of the last half hour: 29, or 30 on a whole minute.
    let bars = number(line, "bars").unwrap();
    assert!((29.0..=30.0).contains(&bars), "{line}");
    assert!(line.contains("from_cache=False"), "{line}");
    let (high, low) = (number(line, "high").unwrap(), number(line, "low").unwrap());
    assert!(low > 0.0 && high >= low, "{line}");
    assert!(
        out.stdout.contains("open") && out.stdout.contains("close"),
        "{}",
        out.describe()
    );
}

#[test]
fn python_example_fails_when_data_is_missing() {
    let dir = repo().join("examples/python");
    if !python_ready(&dir) {
        return;
    }
    let demo = Demo::start();
    let out = example(
        "python3",
        &dir,
        "stream_quotes.py",
        &demo,
        &["NOSUCHSYM", "--updates", "1"],
    );
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("NOSUCHSYM refused"),
        "{}",
        out.describe()
    );
}

#[test]
fn node_examples_stream_quotes_and_a_chain_with_greeks() {
    let dir = repo().join("examples/node");
    if !node_ready(&dir) {
        return;
    }
    let demo = Demo::start();
    let quotes = example(
        "node",
        &dir,
        "stream_quotes.js",
        &demo,
        &["AAPL", "MSFT", "--updates", "6"],
    );
    assert_quotes(&quotes, &["AAPL", "MSFT"], 6);
    let chain = example(
        "node",
        &dir,
        "stream_chain.js",
        &demo,
        &["SPY", "--strikes", "2", "--updates", "4"],
    );
    assert_chain(&chain, 4);
}

#[test]
fn node_example_fails_when_the_stream_ends_early() {
    let dir = repo().join("examples/node");
    if !node_ready(&dir) {
        return;
    }
    let demo = Demo::start();
    // More updates than a one-second deadline allows.
    let out = example(
        "node",
        &dir,
        "stream_quotes.js",
        &demo,
        &["AAPL", "--updates", "100000", "--timeout", "1"],
    );
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("StreamQuotes failed: 4:"),
        "{}",
        out.describe()
    );
}
