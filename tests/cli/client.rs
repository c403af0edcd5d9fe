//! The terminal client (`quotes`, `chain`, `status`) against the demo, piped: stdout is
//! not a terminal, so every update is one plain line without escape codes.

use std::process::Command;
use std::time::Duration;

use ibstream::proto::ibsim::v1 as sim;

use crate::support::{Demo, Lines, Output, binary, run, sim_control};

/// Runs `ibstream <args…> --server <demo>` (bounded).
fn client(demo: &Demo, args: &[&str]) -> Output {
    run(
        Command::new(binary())
            .args(args)
            .args(["--server", &demo.server_url()])
            .env_remove("IBSTREAM_API_KEY"),
        Duration::from_secs(60),
    )
}

/// The number after `name=` in a plain line, if it is a number.
fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim_end_matches('%').parse().ok())
}

#[test]
fn quotes_piped_prints_plain_lines_with_prices() {
    let demo = Demo::start();
    let out = client(&demo, &["quotes", "AAPL", "--count", "3"]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        !out.stdout.contains('\x1b'),
        "escape codes in piped output: {:?}",
        out.stdout
    );
    let quotes: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("AAPL bid="))
        .collect();
    assert_eq!(quotes.len(), 3, "{}", out.describe());
    for line in quotes {
        let bid = field(line, "bid").unwrap_or_else(|| panic!("no bid in {line:?}"));
        let ask = field(line, "ask").unwrap_or_else(|| panic!("no ask in {line:?}"));
        assert!(bid > 0.0 && ask >= bid, "{line}");
        assert!(
            field(line, "chg").is_some(),
            "no change vs close in {line:?}"
        );
        assert!(!line.ends_with("STALE"), "{line}");
    }
    assert!(
        out.stdout.contains("AAPL status=subscribed"),
        "{}",
        out.describe()
    );
}

#[test]
fn chain_piped_prints_options_with_greeks() {
    let demo = Demo::start();
    let out = client(&demo, &["chain", "SPY", "--strikes", "2", "--count", "4"]);
    assert!(out.status.success(), "{}", out.describe());
    let options: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("SPY 2") && l.contains(" delta="))
        .collect();
    // Options that change together arrive in one batch, so the last may overshoot.
    assert!(options.len() >= 4, "{}", out.describe());
    for line in options {
        let delta = field(line, "delta").unwrap_or_else(|| panic!("no delta in {line:?}"));
        assert!((-1.0..=1.0).contains(&delta), "{line}");
        assert!(field(line, "iv").is_some_and(|iv| iv > 0.0), "{line}");
        assert!(field(line, "bid").is_some(), "{line}");
    }
    assert!(
        out.stdout.contains("SPY window options=4"),
        "{}",
        out.describe()
    );
}

#[test]
fn status_prints_connected() {
    let demo = Demo::start();
    let out = client(&demo, &["status"]);
    assert!(out.status.success(), "{}", out.describe());
    let state = out
        .stdout
        .lines()
        .find(|l| l.starts_with("state:"))
        .unwrap_or_default();
    assert!(state.contains("CONNECTED"), "{}", out.describe());
    assert!(
        out.stdout.contains("gateway API version: 226"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains(&demo.gateway), "{}", out.describe());
    let watched = client(&demo, &["status", "--watch", "--count", "1"]);
    assert!(watched.status.success(), "{}", watched.describe());
    assert!(
        watched.stdout.starts_with("state=CONNECTED version=226"),
        "{}",
        watched.describe()
    );
}

#[test]
fn unknown_symbol_exits_with_the_servers_reason() {
    let demo = Demo::start();
    let out = client(&demo, &["quotes", "NOSUCHSYM", "--count", "1"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("NOSUCHSYM: not found"),
        "{}",
        out.describe()
    );
}

#[test]
fn unreachable_server_exits_with_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for args in [&["status"][..], &["quotes", "AAPL"], &["chain", "SPY"]] {
        let out = run(
            Command::new(binary())
                .args(args)
                .args(["--server", &format!("http://127.0.0.1:{port}")]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(1), "{}", out.describe());
        assert!(
            out.stderr.contains("cannot reach the ibstream server"),
            "{}",
            out.describe()
        );
    }
}

/// Drops the gateway's connections and refuses new ones for `refuse`, through the
/// simulator's control plane.
fn gateway_outage(control: &str, refuse: Duration) {
    let (runtime, mut client) = sim_control(control);
    runtime.block_on(async {
        client
            .set_availability(sim::SetAvailabilityRequest {
                refuse_for: Some(refuse.try_into().unwrap()),
            })
            .await
            .expect("SetAvailability");
        client
            .drop_connections(sim::DropConnectionsRequest {})
            .await
            .expect("DropConnections");
    });
}

#[test]
fn quotes_turn_stale_while_the_gateway_is_down_and_fresh_after() {
    let demo = Demo::start();
    let quotes = Lines::spawn(
        Command::new(binary())
            .args(["quotes", "AAPL", "--duration", "60"])
            .args(["--server", &demo.server_url()]),
    );
    let wait = Duration::from_secs(30);
    let first = quotes.wait_for(wait, |l| l.starts_with("AAPL bid="));
    assert!(!first.ends_with(" STALE"), "{first}");
    gateway_outage(&demo.sim_control, Duration::from_secs(2));
    let stale = quotes.wait_for(wait, |l| l.starts_with("AAPL ") && l.ends_with(" STALE"));
    assert!(
        stale.contains(" bid="),
        "the last prices stay visible: {stale}"
    );
    // The session reconnects after the refusal ends and quotes flow fresh again.
    quotes.wait_for(wait, |l| {
        l.starts_with("AAPL bid=") && !l.ends_with(" STALE")
    });
}

#[test]
fn api_key_is_required_once_keys_exist_and_accepted_from_flag_or_env() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let created = run(
        Command::new(binary()).args(["keys", "create", "--scope", "read", "--data-dir", data]),
        Duration::from_secs(60),
    );
    assert!(created.status.success(), "{}", created.describe());
    let key = created.stdout.trim().to_owned();
    let demo = Demo::start_with(&["--data-dir", data]);
    assert!(
        demo.banner.join("\n").contains("API keys exist"),
        "{:?}",
        demo.banner
    );

    let refused = client(&demo, &["status"]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.describe());
    assert!(
        refused.stderr.contains("Unauthenticated"),
        "{}",
        refused.describe()
    );
    assert!(
        refused.stderr.contains("--api-key"),
        "{}",
        refused.describe()
    );
    assert!(!refused.stderr.contains(&key));

    let with_flag = client(&demo, &["status", "--api-key", &key]);
    assert!(with_flag.status.success(), "{}", with_flag.describe());
    assert!(
        with_flag.stdout.contains("CONNECTED"),
        "{}",
        with_flag.describe()
    );

    let with_env = run(
        Command::new(binary())
            .args([
                "quotes",
                "AAPL",
                "--count",
                "1",
                "--server",
                &demo.server_url(),
            ])
            .env("IBSTREAM_API_KEY", &key),
        Duration::from_secs(60),
    );
    assert!(with_env.status.success(), "{}", with_env.describe());
    assert!(
        with_env.stdout.contains("AAPL bid="),
        "{}",
        with_env.describe()
    );
}

#[test]
fn bars_piped_prints_one_line_per_bar_and_follows_live_bars() {
    let demo = Demo::start();
    let out = client(
        &demo,
        &["bars", "AAPL", "--size", "1m", "--duration", "30m"],
    );
    // "30m" is not a duration (minutes read as months would be ambiguous): refused.
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("duration"), "{}", out.describe());

    let out = client(
        &demo,
        &["bars", "AAPL", "--size", "1m", "--duration", "1800 S"],
    );
    assert!(out.status.success(), "{}", out.describe());
    let bars: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("AAPL bar "))
        .collect();
    // Whole minutes of the last half hour: 29, or 30 on a whole minute.
    assert!((29..=30).contains(&bars.len()), "{}", out.describe());
    for line in &bars {
        let (low, high) = (field(line, "low").unwrap(), field(line, "high").unwrap());
        let close = field(line, "close").unwrap();
        assert!(low <= close && close <= high, "{line}");
    }

    let out = client(
        &demo,
        &[
            "bars",
            "AAPL",
            "--size",
            "5s",
            "--duration",
            "15 S",
            "--follow",
            "--count",
            "4",
        ],
    );
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stdout.contains("AAPL status=subscribed"),
        "{}",
        out.describe()
    );
    let bars: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("AAPL bar "))
        .collect();
    assert_eq!(
        bars.len(),
        4,
        "three from history, one live: {}",
        out.describe()
    );
}
