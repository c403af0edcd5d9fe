//! Shared by `tests/cli.rs` and `tests/examples.rs`: the `ibstream demo` child process
//! on ephemeral ports (killed when dropped, also when a test fails), commands with a
//! bounded run time, and the check for external tools.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the demo may take to announce itself (start, unlock, connect).
const DEMO_START: Duration = Duration::from_secs(60);

/// The `ibstream` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ibstream")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `ibstream demo`, killed on drop.
pub struct Demo {
    child: Child,
    /// host:port of the gRPC server.
    pub grpc: String,
    /// http://host:port/ of the web console.
    pub web: String,
    /// host:port of the simulated gateway.
    pub gateway: String,
    /// host:port of the simulator's control plane.
    pub sim_control: String,
    /// http://host:port/metrics
    pub metrics: String,
    /// Everything the demo printed on stdout up to and including the ready line.
    pub banner: Vec<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Demo {
    /// Starts the demo with every port 0 and waits (bounded) for its ready line.
    pub fn start() -> Demo {
        Demo::start_with(&[])
    }

    /// [`Demo::start`] with more flags.
    pub fn start_with(extra: &[&str]) -> Demo {
        let mut child = Command::new(binary())
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--sim-listen",
                "127.0.0.1:0",
                "--sim-control",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ibstream demo");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let err_sink = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut all = err_sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let out_pipe = child.stdout.take().unwrap();
        let out_sink = stdout.clone();
        thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                let ready = line.starts_with("ready");
                out_sink.lock().unwrap().push(line);
                if ready {
                    let _ = ready_tx.send(());
                }
            }
        });
        let mut demo = Demo {
            child,
            grpc: String::new(),
            web: String::new(),
            gateway: String::new(),
            sim_control: String::new(),
            metrics: String::new(),
            banner: Vec::new(),
            stdout,
            stderr,
        };
        if ready_rx.recv_timeout(DEMO_START).is_err() {
            panic!(
                "the demo did not print its ready line within {DEMO_START:?}\nstdout:\n{}\nstderr:\n{}",
                demo.stdout().join("\n"),
                demo.stderr()
            );
        }
        demo.banner = demo.stdout();
        let field = |name: &str| -> String {
            let prefix = format!("{name}: ");
            demo.banner
                .iter()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no `{name}:` line in\n{}", demo.banner.join("\n")))
                .to_owned()
        };
        demo.grpc = field("grpc");
        demo.web = field("web");
        demo.gateway = field("gateway");
        demo.sim_control = field("sim-control");
        demo.metrics = field("metrics");
        demo
    }

    /// The server URL for `--server`.
    pub fn server_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Lines printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The log so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A child process whose stdout lines arrive on a channel as it prints them; killed on
/// drop.
pub struct Lines {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Lines {
    /// Starts `cmd` with stdout piped line by line (stderr discarded).
    pub fn spawn(cmd: &mut Command) -> Lines {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let pipe = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines { child, lines }
    }

    /// Reads lines until one satisfies `pred` (returned) or `limit` passes (panics with
    /// what was read).
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "no matching line within {limit:?}; read:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a bounded command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion, killing it (and failing) after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Everything `pipe` yields until it closes, read on a thread of its own.
pub fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// A client of the simulator's control plane at `control` (host:port), and the runtime
/// to call it on from a synchronous test.
pub fn sim_control(
    control: &str,
) -> (
    tokio::runtime::Runtime,
    ibstream::proto::ibsim::v1::simulator_control_client::SimulatorControlClient<
        tonic::transport::Channel,
    >,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let channel = runtime.block_on(async {
        tonic::transport::Endpoint::from_shared(format!("http://{control}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to sim-control")
    });
    let client =
        ibstream::proto::ibsim::v1::simulator_control_client::SimulatorControlClient::new(channel);
    (runtime, client)
}

/// Whether CI demands every optional tool.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether `program args…` runs successfully. When it does not: a loud warning and
/// `false` (the caller skips), or a failure under `CI=true`.
pub fn tool_available(program: &str, args: &[&str], what: &str, cwd: Option<&Path>) -> bool {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let ok = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let message = format!(
            "{what} is not available ({program} {}): install it (see .ci/run) to run this test",
            args.join(" ")
        );
        assert!(!in_ci(), "CI=true: {message}");
        // Straight to the process's stderr: the test harness captures `eprintln!` of
        // passing tests, and a skip must not go unnoticed.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED: {message} !!!!!!!!\n"
        );
    }
    ok
}
