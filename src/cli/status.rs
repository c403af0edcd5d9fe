//! `ibstream status [--watch]`: the IB session as the server sees it, from `GetStatus`
//! or followed with `WatchStatus`.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::live::{self, Limits, Printed, View};
use super::remote::{Remote, RemoteArgs, RemoteError};
use crate::proto::ibstream::v1 as pb;

/// Show the IB session's state: connection, gateway API version, heartbeat round trip,
/// market-data lines, message rate.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow changes (WatchStatus) instead of printing once.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: exit after this many updates.
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Runs `ibstream status`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let remote = Remote::connect(&args.remote).await?;
    let mut client = remote.connection();
    if !args.watch {
        let status = client
            .get_status(pb::GetStatusRequest {})
            .await
            .map_err(|status| RemoteError::call("GetStatus", status))?
            .into_inner();
        for line in block(remote.server(), &status, None) {
            println!("{line}");
        }
        return Ok(());
    }
    let stream = client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .map_err(|status| RemoteError::call("WatchStatus", status))?
        .into_inner();
    let mut view = StatusView {
        server: remote.server().to_owned(),
        latest: None,
        rate: RateMeter::default(),
    };
    let limits = Limits {
        count: args.count,
        duration: None,
    };
    live::run(&mut view, stream, "WatchStatus", limits).await
}

/// The connection state in capitals, e.g. `CONNECTED`.
fn state_word(state: i32) -> String {
    pb::ConnectionState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("CONNECTION_STATE_")
                .to_owned()
        })
        .unwrap_or_else(|_| format!("STATE_{state}"))
}

fn circuit_word(state: i32) -> String {
    pb::CircuitState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("CIRCUIT_STATE_")
                .to_ascii_lowercase()
                .replace('_', "-")
        })
        .unwrap_or_else(|_| "-".into())
}

fn data_type_word(kind: i32) -> &'static str {
    super::quotes::data_type_word(kind)
}

fn millis(d: Option<&prost_types::Duration>) -> Option<f64> {
    let d = Duration::try_from(*d?).ok()?;
    Some(d.as_secs_f64() * 1000.0)
}

fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).ok()
}

/// Messages per second, from the change of `messages_sent` between two statuses.
#[derive(Debug, Default)]
struct RateMeter {
    last: Option<(Instant, u64)>,
    rate: Option<f64>,
}

impl RateMeter {
    fn observe_at(&mut self, now: Instant, sent: u64) -> Option<f64> {
        if let Some((then, before)) = self.last {
            let secs = now.duration_since(then).as_secs_f64();
            // Updates closer than this say little about a per-second rate.
            if secs >= 0.5 {
                self.rate = Some(sent.saturating_sub(before) as f64 / secs);
                self.last = Some((now, sent));
            }
        } else {
            self.last = Some((now, sent));
        }
        self.rate
    }
}

/// The status as `label: value` lines; `rate` is the measured message rate, if known.
fn block(server: &str, s: &pb::ConnectionStatus, rate: Option<f64>) -> Vec<String> {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let since = when(s.state_since.as_ref())
        .map(|t| format!(" since {t}"))
        .unwrap_or_default();
    rows.push(("state", format!("{}{since}", state_word(s.state))));
    rows.push(("ibstream server", server.to_owned()));
    rows.push((
        "gateway",
        format!(
            "{} (profile {}, client id {})",
            s.address, s.profile, s.client_id
        ),
    ));
    rows.push((
        "gateway API version",
        s.server_version
            .map_or_else(|| "-".into(), |v| v.to_string()),
    ));
    if !s.managed_accounts.is_empty() {
        rows.push(("accounts", s.managed_accounts.join(", ")));
    }
    let rtt =
        millis(s.heartbeat_rtt.as_ref()).map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
    let beat = when(s.last_heartbeat_time.as_ref())
        .map(|t| format!(" (last {t})"))
        .unwrap_or_default();
    rows.push(("heartbeat rtt", format!("{rtt}{beat}")));
    rows.push(("lines", format!("{} / {}", s.lines_in_use, s.line_budget)));
    let measured = rate.map(|r| format!("{r:.1}/s, ")).unwrap_or_default();
    let delay = millis(s.rate_limiter_delay.as_ref()).unwrap_or(0.0);
    rows.push((
        "message rate",
        format!(
            "{measured}limit {}/s, {} sent, limiter wait {delay:.0} ms",
            s.message_rate, s.messages_sent
        ),
    ));
    rows.push(("market data", data_type_word(s.market_data_type).to_owned()));
    rows.push(("circuit", circuit_word(s.circuit_state)));
    if s.reconnect_attempt > 0 {
        let next = when(s.next_retry_time.as_ref())
            .map(|t| format!(", next {t}"))
            .unwrap_or_default();
        rows.push((
            "reconnect attempt",
            format!("{}{next}", s.reconnect_attempt),
        ));
    }
    if !s.data_farms.is_empty() {
        let farms: Vec<String> = s
            .data_farms
            .iter()
            .map(|f| format!("{} {}", f.name, if f.ok { "ok" } else { "DOWN" }))
            .collect();
        rows.push(("data farms", farms.join(", ")));
    }
    if s.competing_session {
        rows.push((
            "warning",
            "a competing live session holds the login (10197)".into(),
        ));
    }
    if let Some(err) = &s.last_error {
        let code = err.code.map(|c| format!("[{c}] ")).unwrap_or_default();
        rows.push(("last error", format!("{code}{}", err.message)));
    }
    if let Some(c) = &s.cluster {
        rows.extend(cluster_rows(c));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    rows.into_iter()
        .map(|(k, v)| format!("{:<width$} {v}", format!("{k}:")))
        .collect()
}

/// The cluster's part: who leads in which term, and each node's load.
fn cluster_rows(c: &pb::ClusterStatus) -> Vec<(&'static str, String)> {
    let leader = if c.leader.is_empty() {
        "NO LEADER".to_owned()
    } else {
        format!("leader {} (term {})", c.leader, c.term)
    };
    let nodes: Vec<String> = c
        .nodes
        .iter()
        .map(|n| {
            let role = if n.leader { " [leader]" } else { "" };
            format!(
                "{}{role}: {} streams, {} instruments",
                n.name, n.streams, n.instruments
            )
        })
        .collect();
    vec![
        (
            "cluster",
            format!("{}, {leader}, answered by {}", c.name, c.node),
        ),
        ("nodes", nodes.join("; ")),
    ]
}

/// One plain line per status update.
fn status_line(s: &pb::ConnectionStatus, rate: Option<f64>) -> String {
    format!(
        "state={} version={} rtt_ms={} lines={}/{} sent={} rate={} circuit={} generation={}",
        state_word(s.state),
        s.server_version
            .map_or_else(|| "-".into(), |v| v.to_string()),
        millis(s.heartbeat_rtt.as_ref()).map_or_else(|| "-".into(), |ms| format!("{ms:.1}")),
        s.lines_in_use,
        s.line_budget,
        s.messages_sent,
        rate.map_or_else(|| "-".into(), |r| format!("{r:.1}/s")),
        circuit_word(s.circuit_state),
        s.generation,
    )
}

struct StatusView {
    server: String,
    latest: Option<pb::ConnectionStatus>,
    rate: RateMeter,
}

impl View for StatusView {
    type Message = pb::ConnectionStatus;

    fn apply(&mut self, status: pb::ConnectionStatus) -> Vec<Printed> {
        let rate = self.rate.observe_at(Instant::now(), status.messages_sent);
        let line = status_line(&status, rate);
        self.latest = Some(status);
        vec![Printed::Update(line)]
    }

    fn frame(&self, _ansi: bool) -> Vec<String> {
        let mut lines = vec![
            "ibstream status --watch — Ctrl-C to quit".to_owned(),
            String::new(),
        ];
        match &self.latest {
            Some(s) => lines.extend(block(&self.server, s, self.rate.rate)),
            None => lines.push("waiting for the first status…".into()),
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected() -> pb::ConnectionStatus {
        pb::ConnectionStatus {
            state: pb::ConnectionState::Connected as i32,
            address: "127.0.0.1:4002".into(),
            profile: "default".into(),
            client_id: 1,
            server_version: Some(226),
            heartbeat_rtt: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1_500_000,
            }),
            lines_in_use: 3,
            line_budget: 100,
            message_rate: 50,
            messages_sent: 42,
            circuit_state: pb::CircuitState::Closed as i32,
            ..Default::default()
        }
    }

    #[test]
    fn block_shows_state_version_rtt_lines_and_rate() {
        let text = block("http://127.0.0.1:50051", &connected(), Some(2.0)).join("\n");
        for expected in [
            "state:",
            "CONNECTED",
            "gateway API version: 226",
            "1.5 ms",
            "lines:               3 / 100",
            "2.0/s, limit 50/s, 42 sent",
            "circuit:             closed",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn block_names_the_clusters_leader_term_and_nodes() {
        let mut status = connected();
        status.cluster = Some(pb::ClusterStatus {
            name: "prod".into(),
            node: "n2".into(),
            leader: "n1".into(),
            term: 7,
            nodes: vec![
                pb::ClusterNode {
                    name: "n1".into(),
                    leader: true,
                    streams: 3,
                    instruments: 5,
                    last_seen: None,
                },
                pb::ClusterNode {
                    name: "n2".into(),
                    leader: false,
                    streams: 1,
                    instruments: 2,
                    last_seen: None,
                },
            ],
        });
        let text = block("http://127.0.0.1:50051", &status, None).join("\n");
        assert!(
            text.contains("prod, leader n1 (term 7), answered by n2"),
            "{text}"
        );
        assert!(
            text.contains("n1 [leader]: 3 streams, 5 instruments; n2: 1 streams, 2 instruments"),
            "{text}"
        );
    }

    #[test]
    fn plain_line_has_no_escapes() {
        let line = status_line(&connected(), None);
        assert_eq!(
            line,
            "state=CONNECTED version=226 rtt_ms=1.5 lines=3/100 sent=42 rate=- circuit=closed generation=0"
        );
    }

    #[test]
    fn rate_meter_measures_messages_per_second() {
        let mut meter = RateMeter::default();
        let t0 = Instant::now();
        assert_eq!(meter.observe_at(t0, 100), None);
        assert_eq!(meter.observe_at(t0 + Duration::from_millis(100), 110), None);
        let rate = meter.observe_at(t0 + Duration::from_secs(2), 120).unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
    }
}
