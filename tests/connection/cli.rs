//! `ibstream serve` as a process: JSON logs, serving, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use tonic::transport::Channel;

/// The listening address from the "gRPC server listening" log line.
fn listening_addr(line: &str) -> Option<String> {
    if !line.contains("gRPC server listening") {
        return None;
    }
    let start = line.find("127.0.0.1:")?;
    let addr: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    Some(addr)
}

#[cfg(unix)]
#[tokio::test]
async fn serve_logs_json_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ibstream"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("IBSTREAM_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ibstream starts");
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a log line");
        lines.push(line.clone());
        if let Some(addr) = listening_addr(&line) {
            break addr;
        }
    };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = ConnectionServiceClient::new(channel)
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.profile, "default");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    lines.extend(rx.try_iter());
    let ours: Vec<_> = lines.iter().filter(|l| l.contains("ibstream")).collect();
    assert!(!ours.is_empty());
    for line in &ours {
        assert!(
            line.starts_with('{') && line.contains("\"level\""),
            "not JSON: {line}"
        );
    }
    assert!(lines.iter().any(|l| l.contains("SIGTERM received")));
    assert!(lines.iter().any(|l| l.contains("shut down")));
}
