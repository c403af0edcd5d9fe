//! The drill's verdicts on its observations, as pure functions so they can be proven
//! able to fail on made-up observations: fresh data after each recovery, message rate,
//! errors the gateway sent on its own, leaks of subscriptions and tasks, memory, panics.

use std::collections::HashMap;

use super::clients::SLOW_READER_DELAY;
use super::journal::{FaultLog, Reading, StreamLog, Violation};

/// Every stream read promptly gets fresh (non-stale) data for each of its instruments
/// within this many seconds after it opens and after each recovery of the gateway.
pub const FRESH_BOUND: f64 = 10.0;
/// A stream whose API key is revoked ends with UNAUTHENTICATED within this many seconds
/// (the server trusts a verified key for 3 s).
pub const REVOCATION_BOUND: f64 = 5.0;
/// Resident memory at the end may exceed the value after warm-up by at most this much.
pub const MEMORY_GROWTH_LIMIT_KB: u64 = 64 * 1024;
/// Tokio tasks alive at the end may exceed the idle count by at most this many (a
/// metrics scrape and a key-use update can be in flight).
pub const TASK_SLACK: i64 = 3;
/// Error codes the gateway sends when the server misbehaves: pacing violated (100),
/// line limit exceeded (101), client id in use (326).
pub const SERVER_FAULT_CODES: [i32; 3] = [100, 101, 326];

/// Slack between the drill's clock and the server's wall-clock stamps.
const CLOCK_SLACK: f64 = 0.05;

/// Result of the freshness check.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Freshness {
    /// Longest time from a recovery of the gateway to fresh data on every instrument
    /// of a stream.
    pub worst_recovery: Option<f64>,
    /// Longest time from opening a stream to data on every instrument.
    pub worst_first_data: Option<f64>,
    /// Windows checked: (stream opened or gateway recovered) × stream.
    pub windows: u64,
    pub violations: Vec<Violation>,
}

/// One moment after which fresh data is due.
struct Window<'a> {
    at: f64,
    /// The fault that ended at `at`, or none for the opening of the stream.
    after: Option<&'a FaultLog>,
}

/// Checks that every stream being read got fresh data for each instrument it expects
/// within `bound` after it opened and after each gateway recovery it lived through (a
/// slow reader [`SLOW_READER_DELAY`] later: what it had not read yet comes first). Windows disturbed by another fault, or reaching past the stream's end or
/// past `observed_until`, are not judged.
pub fn freshness(
    streams: &[StreamLog],
    faults: &[FaultLog],
    observed_until: f64,
    bound: f64,
) -> Freshness {
    let mut out = Freshness::default();
    for stream in streams.iter().filter(|s| s.reading != Reading::Neglected) {
        let bound = match stream.reading {
            Reading::Slow => bound + SLOW_READER_DELAY,
            _ => bound,
        };
        let open = Window {
            at: stream.opened,
            after: None,
        };
        let recoveries = faults
            .iter()
            .filter(|f| f.gateway && f.end > stream.opened)
            .map(|f| Window {
                at: f.end,
                after: Some(f),
            });
        for window in std::iter::once(open).chain(recoveries) {
            let until = window.at + bound;
            let judged = until <= observed_until
                && stream.closed.is_none_or(|c| until <= c)
                && !faults
                    .iter()
                    .any(|f| f.gateway && f.start <= until && f.end > window.at);
            if !judged {
                continue;
            }
            out.windows += 1;
            judge(stream, &window, bound, &mut out);
        }
    }
    out
}

fn judge(stream: &StreamLog, window: &Window<'_>, bound: f64, out: &mut Freshness) {
    let until = window.at + bound;
    let mut missing = Vec::new();
    let mut worst: f64 = 0.0;
    for (key, member) in &stream.members {
        let expected_from = match window.after {
            Some(_) => window.at,
            // A chain's window arrives shortly after the open.
            None => window.at + bound / 2.0,
        };
        if member.since > expected_from || member.until.is_some_and(|u| u <= until) {
            continue;
        }
        let first = stream.fresh.get(key).and_then(|times| {
            times.iter().find(|&&(client, server)| {
                client >= window.at
                    && client <= until
                    && (window.after.is_none() || server >= window.at - CLOCK_SLACK)
            })
        });
        match first {
            Some(&(client, _)) => worst = worst.max(client - window.at),
            None => missing.push(match stream.last_stale.get(key) {
                Some(t) if *t >= window.at => {
                    format!(
                        "{} (stale values until +{:.1}s)",
                        member.name,
                        t - window.at
                    )
                }
                _ => member.name.clone(),
            }),
        }
    }
    let slot = match window.after {
        Some(_) => &mut out.worst_recovery,
        None => &mut out.worst_first_data,
    };
    if missing.is_empty() {
        *slot = Some(slot.map_or(worst, |w: f64| w.max(worst)));
        return;
    }
    *slot = Some(slot.map_or(bound, |w: f64| w.max(bound)));
    let what = match window.after {
        Some(f) => format!(
            "the gateway recovered from {} (injected at {:.1}s)",
            f.kind, f.start
        ),
        None => "the stream opened".to_owned(),
    };
    out.violations.push(Violation {
        at: window.at,
        check: "fresh-data",
        detail: format!(
            "stream {} ({}, read {}): no fresh data for {} of {} instrument(s) [{}] within {bound:.0}s after {what}",
            stream.id,
            stream.label,
            stream.reading.describe(),
            missing.len(),
            stream.members.len(),
            missing.join(",")
        ),
    });
}

/// A session loss is explained by a gateway fault that started before it and ended at
/// most this many seconds earlier (the server notices a stall by its heartbeat).
pub const LOSS_SLACK: f64 = 5.0;

/// Session losses no injected gateway fault explains: the gateway closed the session
/// on its own, or the server dropped it.
pub fn unexplained_losses(losses: &[f64], faults: &[FaultLog]) -> Vec<Violation> {
    losses
        .iter()
        .filter(|&&t| {
            !faults
                .iter()
                .any(|f| f.gateway && f.start - CLOCK_SLACK <= t && t <= f.end + LOSS_SLACK)
        })
        .map(|&t| Violation {
            at: t,
            check: "session",
            detail: "the IB session was lost with no fault injected (the gateway closed it, or the server dropped it)".into(),
        })
        .collect()
}

/// The gateway's peak inbound rate against the configured one.
pub fn message_rate(peak: u32, limit: u32) -> Option<String> {
    (peak > limit).then(|| format!("the gateway saw {peak} messages in one second (limit {limit})"))
}

/// Errors in `SERVER_FAULT_CODES` the gateway sent beyond those the drill injected.
pub fn unexplained_errors(
    sent: &HashMap<i32, u64>,
    injected: &HashMap<i32, u64>,
) -> Vec<(i32, u64)> {
    SERVER_FAULT_CODES
        .iter()
        .filter_map(|code| {
            let extra = sent
                .get(code)
                .copied()
                .unwrap_or(0)
                .saturating_sub(injected.get(code).copied().unwrap_or(0));
            (extra > 0).then_some((*code, extra))
        })
        .collect()
}

/// Resident memory at the end against the value after warm-up.
pub fn memory(warm_kb: u64, end_kb: u64) -> Option<String> {
    (end_kb > warm_kb + MEMORY_GROWTH_LIMIT_KB).then(|| {
        format!(
            "resident memory grew from {} to {} (limit +{})",
            mib(warm_kb),
            mib(end_kb),
            mib(MEMORY_GROWTH_LIMIT_KB)
        )
    })
}

/// Tasks alive at the end against the idle count.
pub fn tasks(idle: i64, end: i64) -> Option<String> {
    (end > idle + TASK_SLACK).then(|| {
        format!(
            "{end} tokio tasks alive after every client left, {idle} when idle (slack {TASK_SLACK})"
        )
    })
}

/// The gateway's live subscriptions against the instruments the server holds.
pub fn subscriptions(at_gateway: u32, held_by_server: usize) -> Option<String> {
    (at_gateway as usize != held_by_server).then(|| {
        format!(
            "the gateway has {at_gateway} live subscriptions, the server holds {held_by_server} instruments"
        )
    })
}

/// Lines of a child's output that report a panic.
pub fn panics(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.contains("panicked at"))
        .map(str::to_owned)
        .collect()
}

/// Formats kibibytes as MiB.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &str, start: f64, end: f64) -> FaultLog {
        FaultLog {
            kind: kind.into(),
            start,
            end,
            gateway: true,
        }
    }

    fn stream(opened: f64, closed: Option<f64>) -> StreamLog {
        let mut s = StreamLog::new(1, "quotes AAPL,MSFT".into(), Reading::Prompt, opened);
        s.closed = closed;
        s.expect(0, "AAPL", opened);
        s.expect(1, "MSFT", opened);
        s
    }

    #[test]
    fn data_after_every_recovery_passes_and_measures_the_worst() {
        let mut s = stream(0.0, None);
        for t in [1.0, 2.0, 22.0, 23.0] {
            s.fresh(0, t, t);
            s.fresh(1, t + 0.5, t + 0.5);
        }
        let f = freshness(&[s], &[fault("drop", 19.0, 20.0)], 60.0, 10.0);
        assert!(f.violations.is_empty(), "{:?}", f.violations);
        assert_eq!(f.windows, 2);
        assert_eq!(f.worst_recovery, Some(2.5));
        assert_eq!(f.worst_first_data, Some(1.5));
    }

    #[test]
    fn a_stream_left_stale_after_a_recovery_fails() {
        let mut s = stream(0.0, None);
        s.fresh(0, 1.0, 1.0);
        s.fresh(1, 1.0, 1.0);
        // MSFT resumes, AAPL never does.
        s.fresh(1, 21.0, 21.0);
        let f = freshness(
            &[s],
            &[fault("notice 1100 then drop", 19.0, 20.0)],
            60.0,
            10.0,
        );
        assert_eq!(f.violations.len(), 1);
        assert_eq!(f.violations[0].at, 20.0);
        assert!(
            f.violations[0].detail.contains("[AAPL]"),
            "{:?}",
            f.violations
        );
        assert_eq!(f.worst_recovery, Some(10.0));
    }

    #[test]
    fn a_violation_says_when_stale_values_kept_coming() {
        let mut s = stream(0.0, None);
        s.fresh(0, 1.0, 1.0);
        s.fresh(1, 1.0, 1.0);
        s.fresh(1, 21.0, 21.0);
        s.stale(0, 23.0);
        let f = freshness(&[s], &[fault("drop", 20.0, 20.0)], 60.0, 10.0);
        assert!(
            f.violations[0]
                .detail
                .contains("[AAPL (stale values until +3.0s)]"),
            "{:?}",
            f.violations
        );
    }

    #[test]
    fn old_values_delivered_after_a_recovery_are_not_fresh() {
        let mut s = stream(0.0, None);
        s.fresh(0, 1.0, 1.0);
        s.fresh(1, 1.0, 1.0);
        // Received by the client after the recovery, but stamped by the server before.
        s.fresh(0, 21.0, 18.0);
        s.fresh(1, 21.0, 21.0);
        let f = freshness(&[s], &[fault("stall", 17.0, 20.0)], 60.0, 10.0);
        assert_eq!(f.violations.len(), 1, "{:?}", f.violations);
    }

    #[test]
    fn disturbed_or_unfinished_windows_and_neglected_streams_are_not_judged() {
        let s = stream(0.0, Some(25.0));
        let faults = [fault("drop", 5.0, 5.0), fault("stall", 12.0, 16.0)];
        // Open window disturbed by the drop, the drop's window by the stall, the
        // stall's window outlives the stream.
        let f = freshness(std::slice::from_ref(&s), &faults, 60.0, 10.0);
        assert_eq!((f.windows, f.violations.len()), (0, 0));
        let mut neglected = stream(0.0, None);
        neglected.reading = Reading::Neglected;
        let f = freshness(&[neglected], &[], 60.0, 10.0);
        assert_eq!(f.windows, 0);
    }

    #[test]
    fn instruments_that_failed_are_not_expected() {
        let mut s = stream(0.0, None);
        s.forget(1, 0.5);
        s.fresh(0, 1.0, 1.0);
        let f = freshness(&[s], &[], 60.0, 10.0);
        assert!(f.violations.is_empty(), "{:?}", f.violations);
    }

    #[test]
    fn session_losses_outside_faults_are_violations() {
        let faults = [fault("drop", 10.0, 10.0), fault("stall", 20.0, 24.0)];
        let v = unexplained_losses(&[10.01, 27.0, 40.0], &faults);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].at, 40.0);
    }

    #[test]
    fn rate_errors_memory_tasks_subscriptions_and_panics_can_fail() {
        assert!(message_rate(50, 50).is_none());
        assert!(message_rate(51, 50).is_some());
        let sent = HashMap::from([(100, 2), (101, 1), (2104, 9)]);
        let injected = HashMap::from([(100, 2)]);
        assert_eq!(unexplained_errors(&sent, &injected), vec![(101, 1)]);
        assert!(memory(100_000, 100_000 + MEMORY_GROWTH_LIMIT_KB).is_none());
        assert!(memory(100_000, 100_001 + MEMORY_GROWTH_LIMIT_KB).is_some());
        assert!(tasks(40, 40 + TASK_SLACK).is_none());
        assert!(tasks(40, 41 + TASK_SLACK).is_some());
        assert!(subscriptions(3, 3).is_none());
        assert!(subscriptions(4, 3).is_some());
        let out = "ok\nthread 'x' panicked at src/a.rs:1:2:\nboom\n";
        assert_eq!(panics(out).len(), 1);
    }
}
