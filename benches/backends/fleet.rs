//! The bench's side of a client process: starts this same binary in client mode with a
//! job, sends it commands and reads its reports.

use std::process::Command;
use std::time::Duration;

use crate::child::Piped;
use crate::job::{CLIENT_ENV, END, Inst, Job, READY, Report, Work};

/// Bound of every wait for a client process: its own waits are shorter.
const WAIT: Duration = Duration::from_secs(200);

/// A running client process; dropping it kills it.
pub struct ClientProcess {
    child: Piped,
}

impl ClientProcess {
    /// Starts a client process on `job` and waits until it is set up; also the number
    /// of its streams that were ready.
    pub async fn start(job: &Job) -> (ClientProcess, usize) {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut command = Command::new(exe);
        command.env(CLIENT_ENV, toml::to_string(job).expect("job"));
        let mut client = ClientProcess {
            child: Piped::start(command, true),
        };
        let line = client.child.line(WAIT + WAIT).await;
        let ready = line
            .strip_prefix(READY)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("client process said {line:?} instead of ready"));
        (client, ready)
    }

    /// Streams of `instruments`, one per subscriber, each on its own connection; every
    /// one must have had a quote of every instrument.
    pub async fn streams(url: &str, subscribers: usize, instruments: &[Inst]) -> ClientProcess {
        let (client, ready) =
            ClientProcess::streams_within(url, subscribers, instruments, WAIT).await;
        assert_eq!(
            ready, subscribers,
            "every stream has a quote of every instrument"
        );
        client
    }

    /// Streams of `instruments`, one per subscriber, each on its own connection, and how
    /// many had a quote of every instrument within `within`.
    pub async fn streams_within(
        url: &str,
        subscribers: usize,
        instruments: &[Inst],
        within: Duration,
    ) -> (ClientProcess, usize) {
        let job = Job {
            url: url.to_owned(),
            work: Work::Streams {
                subscribers,
                instruments: instruments.to_vec(),
                ready_within: within.as_secs_f64(),
            },
        };
        ClientProcess::start(&job).await
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub async fn send(&mut self, command: &str) {
        self.child.send(command);
    }

    /// Sends `command` and reads the report it answers with.
    pub async fn ask(&mut self, command: &str) -> Report {
        self.send(command).await;
        self.report().await
    }

    /// Reads the report the last command answers with.
    pub async fn report(&mut self) -> Report {
        let mut text = String::new();
        loop {
            let line = self.child.line(WAIT).await;
            if line == END {
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        toml::from_str(&text).expect("a readable report")
    }

    /// Ends the process.
    pub async fn stop(self) {
        drop(self.child);
    }
}
