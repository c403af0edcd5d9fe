//! The seeded schedule of faults: which, when and for how long. Pure, so a seed names
//! one drill and a failure can be replayed.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Notices the drill sends alone, with the text the gateway would use.
const NOTICES: [(i32, &str); 14] = [
    (
        1100,
        "Connectivity between IB and Trader Workstation has been lost.",
    ),
    (
        1101,
        "Connectivity between IB and TWS has been restored- data lost.",
    ),
    (
        1102,
        "Connectivity between IB and TWS has been restored- data maintained.",
    ),
    (2103, "Market data farm connection is broken:usfarm"),
    (2104, "Market data farm connection is OK:usfarm"),
    (2105, "HMDS data farm connection is broken:ushmds"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2157, "Sec-def data farm connection is broken:secdefil"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
    (10197, "No market data during competing live session"),
    (100, "Max rate of messages per second has been exceeded."),
    (101, "Max number of tickers has been reached."),
    (354, "Requested market data is not subscribed."),
    (
        326,
        "Unable to connect as the client id is already in use. Retry with a unique client id.",
    ),
];

/// The text of a notice code the drill sends.
pub fn notice_text(code: i32) -> &'static str {
    NOTICES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("", |(_, text)| text)
}

/// The notice that ends what `code` started (farm broken → farm OK, link lost →
/// restored), if any.
fn restoring(code: i32, rng: &mut ChaCha8Rng) -> Option<i32> {
    match code {
        1100 => Some(if rng.random_bool(0.5) { 1101 } else { 1102 }),
        2103 => Some(2104),
        2105 => Some(2106),
        2157 => Some(2158),
        _ => None,
    }
}

/// Symbols whose live permission the drill takes away for a while.
const PERMISSION_SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "SPY", "TSLA"];

/// One disturbance.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Close every gateway socket.
    Drop,
    /// Close every socket and refuse new ones for a while (a nightly restart).
    Refuse(Duration),
    /// Send nothing for a while without closing.
    Stall(Duration),
    /// A notice, and after a while the notice that restores what it broke.
    Notice {
        code: i32,
        restore: Option<(Duration, i32)>,
    },
    /// A notice, then after a moment every socket closed.
    NoticeThenDrop { code: i32, after: Duration },
    /// Model steps at another interval.
    TickInterval(Duration),
    /// Another line limit (never below the server's budget).
    LineLimit(u32),
    /// No live permission for a symbol for a while.
    LivePermission {
        symbol: &'static str,
        off_for: Duration,
    },
    /// Revoke a client's key (the client gets a new one).
    Revoke { client: usize },
}

impl Action {
    /// The kind, as counted in the summary.
    pub fn kind(&self) -> String {
        match self {
            Action::Drop => "drop".into(),
            Action::Refuse(_) => "refuse connections".into(),
            Action::Stall(_) => "stall".into(),
            Action::Notice { code, .. } => format!("notice {code}"),
            Action::NoticeThenDrop { code, .. } => format!("notice {code} then drop"),
            Action::TickInterval(_) => "tick interval".into(),
            Action::LineLimit(_) => "line limit".into(),
            Action::LivePermission { .. } => "live permission".into(),
            Action::Revoke { .. } => "key revocation".into(),
        }
    }

    /// How long the episode lasts (the executor waits it out).
    pub fn span(&self) -> Duration {
        match self {
            Action::Refuse(d) | Action::Stall(d) => *d,
            Action::Notice {
                restore: Some((d, _)),
                ..
            } => *d,
            Action::NoticeThenDrop { after, .. } => *after,
            Action::LivePermission { off_for, .. } => *off_for,
            _ => Duration::ZERO,
        }
    }

    /// Whether it disturbs the gateway for every stream, so a recovery follows.
    pub fn disturbs_gateway(&self) -> bool {
        !matches!(
            self,
            Action::LineLimit(_) | Action::LivePermission { .. } | Action::Revoke { .. }
        )
    }
}

/// One planned step, in seconds since the drill started.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at: f64,
    pub action: Action,
    /// The gap after this step is long enough for a quiet-period check.
    pub quiet_after: bool,
}

/// What the plan must respect.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// First fault at or after this time.
    pub start: f64,
    /// Every episode ends by this time.
    pub end: f64,
    pub clients: usize,
    /// The server's line budget: the line limit never goes below it.
    pub line_budget: u32,
    /// A quiet gap is at least this long (the linger plus time to compare).
    pub quiet_gap: f64,
}

/// The faults of a drill with `seed`.
pub fn plan(seed: u64, bounds: Bounds) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let mut t = bounds.start;
    loop {
        let action = pick(&mut rng, &bounds);
        let span = action.span().as_secs_f64();
        if t + span > bounds.end {
            break;
        }
        let quiet_after = rng.random_bool(0.3);
        let gap = if quiet_after {
            bounds.quiet_gap + rng.random_range(0.0..2.0)
        } else {
            rng.random_range(1.0..4.0)
        };
        steps.push(Step {
            at: t,
            action,
            quiet_after,
        });
        t += span + gap;
    }
    steps
}

fn secs(rng: &mut ChaCha8Rng, low: f64, high: f64) -> Duration {
    Duration::from_millis((rng.random_range(low..high) * 1000.0) as u64)
}

fn pick(rng: &mut ChaCha8Rng, bounds: &Bounds) -> Action {
    match rng.random_range(0..100) {
        0..12 => Action::Drop,
        12..20 => Action::Refuse(secs(rng, 2.0, 20.0)),
        20..28 => Action::Stall(secs(rng, 1.0, 8.0)),
        28..58 => {
            let code = NOTICES[rng.random_range(0..NOTICES.len())].0;
            let restore = restoring(code, rng).map(|r| (secs(rng, 1.0, 6.0), r));
            Action::Notice { code, restore }
        }
        58..70 => Action::NoticeThenDrop {
            code: [1100, 2103, 2105, 2157, 10197][rng.random_range(0..5)],
            after: secs(rng, 0.2, 2.0),
        },
        70..78 => Action::TickInterval(Duration::from_millis(rng.random_range(50..1000))),
        78..84 => Action::LineLimit(bounds.line_budget + rng.random_range(0..=50)),
        84..90 => Action::LivePermission {
            symbol: PERMISSION_SYMBOLS[rng.random_range(0..PERMISSION_SYMBOLS.len())],
            off_for: secs(rng, 2.0, 8.0),
        },
        _ if bounds.clients > 0 => Action::Revoke {
            client: rng.random_range(0..bounds.clients),
        },
        _ => Action::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            start: 3.0,
            end: 300.0,
            clients: 4,
            line_budget: 100,
            quiet_gap: 8.0,
        }
    }

    #[test]
    fn a_seed_names_one_plan() {
        assert_eq!(plan(42, bounds()), plan(42, bounds()));
        assert_ne!(plan(42, bounds()), plan(43, bounds()));
    }

    #[test]
    fn plans_stay_within_their_bounds() {
        for seed in 0..50 {
            let steps = plan(seed, bounds());
            assert!(!steps.is_empty());
            for (i, s) in steps.iter().enumerate() {
                assert!(s.at >= 3.0 && s.at + s.action.span().as_secs_f64() <= 300.0);
                if let Action::LineLimit(n) = s.action {
                    assert!((100..=150).contains(&n));
                }
                if let Action::Refuse(d) = s.action {
                    assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(20));
                }
                if let Some(next) = steps.get(i + 1) {
                    let gap = next.at - s.at - s.action.span().as_secs_f64();
                    assert!(
                        gap >= 1.0 && (!s.quiet_after || gap >= 8.0),
                        "{s:?} {next:?}"
                    );
                }
            }
        }
    }
}
