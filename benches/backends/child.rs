//! A child process whose stdout lines arrive on a channel (a thread reads them, so the
//! child never blocks on a full pipe) and whose stdin takes lines.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;

/// A running child; dropping it kills it.
pub struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Piped {
    /// Starts `command` with stdout (and stdin when `input`) piped, stderr inherited.
    pub fn start(mut command: Command, input: bool) -> Piped {
        let stdin = if input { Stdio::piped() } else { Stdio::null() };
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the child process starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Piped {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child prints, within `wait`.
    pub async fn line(&mut self, wait: Duration) -> String {
        tokio::time::timeout(wait, self.lines.recv())
            .await
            .expect("the child process answers in time")
            .expect("the child process is running")
    }

    /// Lines from now on are read and dropped.
    pub fn ignore_output(&mut self) {
        let (_, closed) = mpsc::unbounded_channel();
        let mut lines = std::mem::replace(&mut self.lines, closed);
        tokio::spawn(async move { while lines.recv().await.is_some() {} });
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the child's stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("the child process reads its input");
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
