//! The drill's summary: what it did, what it measured, and every violated check with
//! when it happened.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::checks::{FRESH_BOUND, MEMORY_GROWTH_LIMIT_KB, REVOCATION_BOUND, TASK_SLACK, mib};
use super::clients::SLOW_READER_DELAY;
use super::journal::Violation;

/// Everything the summary shows.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub duration_secs: f64,
    pub seed: u64,
    pub clients: usize,
    pub faults: BTreeMap<String, u64>,
    pub streams_opened: usize,
    pub updates: u64,
    pub refused: BTreeMap<String, u64>,
    pub windows: u64,
    pub worst_recovery: Option<f64>,
    pub worst_first_data: Option<f64>,
    pub worst_revocation: Option<f64>,
    pub revocations_seen: usize,
    pub subscription_checks: u64,
    /// Instruments the server and the gateway still held after every client left.
    pub held_at_end: Option<(usize, u32)>,
    pub tasks: (Option<i64>, Option<i64>),
    pub peak_rate: u32,
    pub rate_limit: u32,
    pub memory_kb: (Option<u64>, Option<u64>),
    pub session_losses: usize,
    pub violations: Vec<Violation>,
    /// Where the server's output and the database were kept.
    pub kept: Option<String>,
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.2}s"))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

impl Summary {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The summary as text.
    pub fn render(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("duration".into(), format!("{:.1}s", self.duration_secs)),
            ("seed".into(), self.seed.to_string()),
            ("clients".into(), self.clients.to_string()),
        ];
        let total: u64 = self.faults.values().sum();
        rows.push(("faults".into(), total.to_string()));
        for (kind, n) in &self.faults {
            rows.push((format!("  {kind}"), n.to_string()));
        }
        rows.push(("streams opened".into(), self.streams_opened.to_string()));
        rows.push(("updates received".into(), self.updates.to_string()));
        for (code, n) in &self.refused {
            rows.push((format!("  calls {code}"), n.to_string()));
        }
        rows.push(("freshness windows judged".into(), self.windows.to_string()));
        rows.push((
            format!(
                "worst recovery (bound {FRESH_BOUND:.0}s, slow readers +{SLOW_READER_DELAY:.1}s)"
            ),
            secs(self.worst_recovery),
        ));
        rows.push((
            "worst time to first data".into(),
            secs(self.worst_first_data),
        ));
        rows.push((
            format!("revoked streams ended (bound {REVOCATION_BOUND:.0}s)"),
            format!(
                "{} (worst {})",
                self.revocations_seen,
                secs(self.worst_revocation)
            ),
        ));
        rows.push((
            "quiet-period subscription checks".into(),
            self.subscription_checks.to_string(),
        ));
        rows.push((
            "leaked subscriptions (server/gateway)".into(),
            self.held_at_end
                .map_or("-".into(), |(s, g)| format!("{s}/{g}")),
        ));
        rows.push((
            format!("tasks idle -> end (slack {TASK_SLACK})"),
            format!("{} -> {}", opt(self.tasks.0), opt(self.tasks.1)),
        ));
        rows.push((
            "peak message rate".into(),
            format!("{}/s (limit {}/s)", self.peak_rate, self.rate_limit),
        ));
        rows.push((
            format!(
                "memory warm-up -> end (limit +{})",
                mib(MEMORY_GROWTH_LIMIT_KB)
            ),
            format!(
                "{} -> {}",
                self.memory_kb.0.map_or("-".into(), mib),
                self.memory_kb.1.map_or("-".into(), mib)
            ),
        ));
        rows.push(("session losses".into(), self.session_losses.to_string()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::from("drill summary\n");
        for (k, v) in rows {
            let _ = writeln!(out, "  {k:<width$}  {v}");
        }
        if self.passed() {
            out.push_str("result: PASS (every check held)\n");
        } else {
            let _ = writeln!(
                out,
                "result: FAIL ({} violated check(s))",
                self.violations.len()
            );
            for v in &self.violations {
                let _ = writeln!(out, "  at {:>7.2}s  {:<15} {}", v.at, v.check, v.detail);
            }
            let _ = writeln!(
                out,
                "replay: ibstream drill --seed {} --duration {:.0}s --clients {}",
                self.seed, self.duration_secs, self.clients
            );
        }
        if let Some(dir) = &self.kept {
            let _ = writeln!(out, "server output and database kept in {dir}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_drill_lists_each_violation_and_how_to_replay_it() {
        let summary = Summary {
            seed: 9,
            duration_secs: 30.0,
            clients: 2,
            violations: vec![Violation {
                at: 12.5,
                check: "fresh-data",
                detail: "stream 3 stale".into(),
            }],
            ..Summary::default()
        };
        let text = summary.render();
        assert!(
            text.contains("result: FAIL (1 violated check(s))"),
            "{text}"
        );
        assert!(text.contains("12.50s  fresh-data"), "{text}");
        assert!(text.contains("--seed 9"), "{text}");
        assert!(Summary::default().render().contains("result: PASS"));
    }
}
