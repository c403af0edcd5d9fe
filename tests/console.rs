//! The web console in a real browser: `ibstream demo` with a read key and an admin key
//! in its store, and web/tests/console.mjs driving headless Chromium through Playwright
//! over every page. Screenshots go to the target directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "cli/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ibstream::proto::ibsim::v1::DropConnectionsRequest;
use support::{Demo, binary, read_all, repo, run, sim_control, tool_available};

/// How long the whole browser run may take.
const BROWSER_RUN: Duration = Duration::from_secs(240);

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Creates an API key of `scope` in the demo's data directory; returns its token.
fn create_key(data_dir: &str, scope: &str) -> String {
    let out = run(
        Command::new(binary()).args([
            "keys",
            "create",
            "--scope",
            scope,
            "--name",
            &format!("console {scope}"),
            "--data-dir",
            data_dir,
        ]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.describe());
    out.stdout.trim().to_owned()
}

/// Asks the simulator to drop every gateway connection.
fn drop_connections(control: &str) {
    let (runtime, mut client) = sim_control(control);
    runtime
        .block_on(client.drop_connections(DropConnectionsRequest {}))
        .expect("DropConnections");
}

#[test]
fn console_pages_work_in_a_browser() {
    let web = repo().join("web");
    if !tool_available("node", &["--version"], "Node.js", None)
        || !tool_available(&chromium(), &["--version"], "Chromium", None)
        || !tool_available(
            "node",
            &["-e", "require.resolve('playwright-core')"],
            "web/node_modules (run `npm ci` in web/)",
            Some(&web),
        )
    {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("demo");
    let data_dir = data_dir.to_str().unwrap();
    let read_key = create_key(data_dir, "read");
    let admin_key = create_key(data_dir, "admin");
    let demo = Demo::start_with(&["--data-dir", data_dir]);
    assert!(
        demo.banner.join("\n").contains("API keys exist"),
        "{:?}",
        demo.banner
    );
    let shots: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");

    let mut browser = Command::new("node")
        .arg(web.join("tests/console.mjs"))
        .args(["--web", &demo.web, "--read-key", &read_key])
        .args([
            "--admin-key",
            &admin_key,
            "--shots",
            shots.to_str().unwrap(),
        ])
        .env("CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut to_browser = browser.stdin.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let out = browser.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let stderr = read_all(browser.stderr.take().unwrap());

    let deadline = Instant::now() + BROWSER_RUN;
    let mut seen = Vec::new();
    let status = loop {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            if line == "drop-connections" {
                drop_connections(&demo.sim_control);
                writeln!(to_browser, "dropped").unwrap();
            }
            seen.push(line);
            continue;
        }
        if let Some(status) = browser.try_wait().unwrap() {
            // What is still in the pipe.
            while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                seen.push(line);
            }
            break status;
        }
        if Instant::now() >= deadline {
            let _ = browser.kill();
            let _ = browser.wait();
            panic!(
                "the browser run did not finish within {BROWSER_RUN:?}\n{}\ndemo log:\n{}",
                seen.join("\n"),
                demo.stderr()
            );
        }
    };
    let stderr = stderr.join().unwrap();
    assert!(
        status.success(),
        "{}\n{stderr}\nscreenshots in {}\ndemo log:\n{}",
        seen.join("\n"),
        shots.display(),
        demo.stderr()
    );
    assert!(
        seen.iter().any(|l| l == "console: all steps passed"),
        "{}",
        seen.join("\n")
    );
    for page in ["status", "settings", "quotes", "chain", "subscriptions"] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
    eprintln!("{}\nscreenshots in {}", seen.join("\n"), shots.display());
}
