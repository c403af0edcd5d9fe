//! `ibstream demo` itself: its address lines, its metrics endpoint, its shutdown.

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::http::http_get;
use crate::support::{Demo, run};

#[test]
fn demo_prints_each_address_on_its_own_line() {
    let demo = Demo::start();
    for addr in [&demo.grpc, &demo.gateway, &demo.sim_control] {
        let parsed: std::net::SocketAddr = addr.parse().expect("host:port");
        assert!(parsed.ip().is_loopback(), "{addr}");
        assert_ne!(
            parsed.port(),
            0,
            "{addr}: port 0 must be replaced by the bound port"
        );
    }
    assert!(
        demo.metrics.starts_with("http://127.0.0.1:"),
        "{}",
        demo.metrics
    );
    assert!(demo.metrics.ends_with("/metrics"), "{}", demo.metrics);
    // The console is served on the gRPC port.
    assert_eq!(demo.web, format!("http://{}/", demo.grpc));
    let page = http_get(&demo.web);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("/assets/console.js"), "{page}");
    let banner = demo.banner.join("\n");
    assert!(banner.contains("session: CONNECTED"), "{banner}");
    assert!(banner.contains("No API keys"), "{banner}");
    assert!(banner.contains("throwaway"), "{banner}");
    // The simulator's control plane answers on the printed address.
    TcpStream::connect(&demo.sim_control).expect("sim-control accepts connections");
}

#[test]
fn metrics_endpoint_serves_every_series() {
    let demo = Demo::start();
    let response = http_get(&demo.metrics);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Every series the registry renders, by sample name, from the registry itself.
    let names: Vec<String> = ibstream::metrics::Metrics::default()
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            response.lines().any(|l| l.starts_with(&format!("{name} "))),
            "missing {name} in\n{response}"
        );
    }
    // The demo's session is up, and the gauge says so (3 = connected).
    assert!(
        response.lines().any(|l| l == "ibstream_connection_state 3"),
        "{response}"
    );
}

#[cfg(unix)]
#[test]
fn demo_stops_cleanly_on_sigterm() {
    let mut demo = Demo::start();
    let out = run(
        Command::new("kill").args(["-TERM", &demo.pid().to_string()]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", out.describe());
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the demo did not stop after SIGTERM\n{}", demo.stderr()));
    assert!(status.success(), "{status:?}\n{}", demo.stderr());
    assert!(demo.stdout().iter().any(|l| l == "stopping"));
    // Its ports are released.
    assert!(
        TcpStream::connect(&demo.grpc).is_err(),
        "gRPC port still open"
    );
}

#[cfg(unix)]
#[test]
fn demo_reopens_a_kept_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-data");
    let path = path.to_str().unwrap();
    for run_number in 1..=2 {
        let mut demo = Demo::start_with(&["--data-dir", path]);
        let banner = demo.banner.join("\n");
        assert!(
            banner.contains(&format!("data-dir: {path}\n")),
            "run {run_number}: {banner}"
        );
        assert!(
            banner.contains("session: CONNECTED"),
            "run {run_number}: {banner}"
        );
        let stop = run(
            Command::new("kill").args(["-TERM", &demo.pid().to_string()]),
            Duration::from_secs(10),
        );
        assert!(stop.status.success(), "{}", stop.describe());
        let status = demo.wait_exit(Duration::from_secs(30)).expect("demo stops");
        assert!(status.success(), "run {run_number}: {}", demo.stderr());
    }
    // The database and its key file stay for the next run.
    assert!(dir.path().join("demo-data/master.key").exists());
    assert!(dir.path().join("demo-data/ibstream.sqlite").exists());
}
