//! The server under test as a child process (`ibstream demo` on loopback ports with a
//! data directory of the drill's), its API keys through `ibstream keys`, and what the
//! drill reads from outside: resident memory, the tasks gauge of `/metrics`, its output.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the demo may take to print its `ready` line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `ibstream keys …` run may take.
const KEYS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a scrape of `/metrics` may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Variables that would point `ibstream keys` at another database than the demo's.
const DATABASE_VARIABLES: [&str; 4] = [
    "DATABASE_URL",
    "IBSTREAM_DATABASE_URL",
    "IBSTREAM_DATA_DIR",
    "IBSTREAM_CONFIG",
];

/// Why the child or a keys command failed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cannot run {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not finish within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("the demo printed no {0:?} line")]
    Banner(&'static str),
}

/// The running `ibstream demo`; killed when dropped, whatever the exit path.
#[derive(Debug)]
pub struct ServerChild {
    child: std::process::Child,
    /// The server's gRPC address.
    pub grpc: SocketAddr,
    /// The simulator's control plane.
    pub control: SocketAddr,
    /// The metrics endpoint.
    pub metrics: SocketAddr,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl ServerChild {
    /// Starts `exe demo` with its database in `data_dir` and its output in `logs`, and
    /// waits (bounded) for its banner.
    pub async fn start(
        exe: &Path,
        data_dir: &Path,
        logs: &Path,
        seed: u64,
    ) -> Result<ServerChild, ChildError> {
        let stdout = logs.join("server.stdout.log");
        let stderr = logs.join("server.stderr.log");
        let spawn_err = |source| ChildError::Spawn {
            what: "ibstream demo".into(),
            source,
        };
        let mut cmd = Command::new(exe);
        cmd.arg("demo")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--sim-listen", "127.0.0.1:0"])
            .args(["--sim-control", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--seed", &seed.to_string()])
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).map_err(spawn_err)?)
            .stderr(File::create(&stderr).map_err(spawn_err)?);
        for var in DATABASE_VARIABLES {
            cmd.env_remove(var);
        }
        let child = cmd.spawn().map_err(spawn_err)?;
        let mut running = ServerChild {
            child,
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            control: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
        };
        let banner = running.wait_ready().await?;
        running.grpc = banner_addr(&banner, "grpc: ")?;
        running.control = banner_addr(&banner, "sim-control: ")?;
        running.metrics = banner
            .lines()
            .find_map(|l| l.strip_prefix("metrics: http://"))
            .and_then(|l| l.trim_end_matches("/metrics").parse().ok())
            .ok_or(ChildError::Banner("metrics: "))?;
        Ok(running)
    }

    async fn wait_ready(&mut self) -> Result<String, ChildError> {
        let started = Instant::now();
        loop {
            let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            if out.lines().any(|l| l.starts_with("ready")) {
                return Ok(out);
            }
            if let Some(status) = self.exited() {
                return Err(ChildError::Failed {
                    what: "ibstream demo".into(),
                    status: status.to_string(),
                    stderr: tail(&std::fs::read_to_string(&self.stderr).unwrap_or_default()),
                });
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(ChildError::Timeout {
                    what: "ibstream demo start-up".into(),
                    timeout: READY_TIMEOUT,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The exit status, once the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The child's resident memory in KiB (VmRSS of /proc/PID/status).
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// The `ibstream_tasks_alive` gauge of the child's `/metrics`.
    pub async fn tasks_alive(&self) -> Option<i64> {
        let text = tokio::time::timeout(SCRAPE_TIMEOUT, scrape(self.metrics))
            .await
            .ok()?
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("ibstream_tasks_alive "))?
            .trim()
            .parse()
            .ok()
    }

    /// Everything the child wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        let mut text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&self.stderr).unwrap_or_default());
        text
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn banner_addr(banner: &str, prefix: &'static str) -> Result<SocketAddr, ChildError> {
    banner
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|a| a.trim().parse().ok())
        .ok_or(ChildError::Banner(prefix))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = Vec::new();
    socket.read_to_end(&mut body).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// An API key: its id (to revoke it) and its secret (to send).
#[derive(Clone)]
pub struct ApiKey {
    pub id: String,
    pub token: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey").field("id", &self.id).finish()
    }
}

/// Creates a read key in the database of `data_dir` with `exe keys create`.
pub async fn create_key(exe: &Path, data_dir: &Path, name: &str) -> Result<ApiKey, ChildError> {
    let (stdout, stderr) = keys(
        exe,
        data_dir,
        &["create", "--scope", "read", "--name", name],
    )
    .await?;
    // stderr: "created read key <id> (<name>); …"; stdout: the secret alone.
    let id = stderr
        .split_whitespace()
        .skip_while(|w| *w != "key")
        .nth(1)
        .map(|w| w.trim_end_matches(';').to_owned());
    match (id, stdout.lines().next()) {
        (Some(id), Some(token)) if !token.trim().is_empty() => Ok(ApiKey {
            id,
            token: token.trim().to_owned(),
        }),
        _ => Err(ChildError::Failed {
            what: "ibstream keys create".into(),
            status: "unexpected output".into(),
            stderr,
        }),
    }
}

/// Revokes a key with `exe keys revoke`.
pub async fn revoke_key(exe: &Path, data_dir: &Path, id: &str) -> Result<(), ChildError> {
    keys(exe, data_dir, &["revoke", id]).await.map(|_| ())
}

async fn keys(exe: &Path, data_dir: &Path, args: &[&str]) -> Result<(String, String), ChildError> {
    let what = format!(
        "ibstream keys {}",
        args.first().copied().unwrap_or_default()
    );
    let mut cmd = Command::new(exe);
    cmd.arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in DATABASE_VARIABLES {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().map_err(|source| ChildError::Spawn {
        what: what.clone(),
        source,
    })?;
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > KEYS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ChildError::Timeout {
                what,
                timeout: KEYS_TIMEOUT,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    // The outputs are a few lines: they fit in the pipes while the command runs.
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    if !status.success() {
        return Err(ChildError::Failed {
            what,
            status: status.to_string(),
            stderr,
        });
    }
    Ok((stdout, stderr))
}
