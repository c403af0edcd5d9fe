//! What the drill observed, in seconds since its start: faults, streams with the times
//! each instrument got fresh data, revocations, violations found while running. Written
//! by the fault, client and monitor tasks; read by the checks at the end.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

/// Server-side receive times closer than this to the last recorded one are not kept:
/// the checks need the first fresh value after a moment, not every value.
const FRESH_SPACING: f64 = 0.2;

/// Seconds since the drill started, on the monotonic clock and on the wall clock (the
/// server stamps quotes with wall time).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_wall: SystemTime,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
            start_wall: SystemTime::now(),
        }
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// A server timestamp in seconds since the start (negative when earlier).
    pub fn from_timestamp(&self, ts: &prost_types::Timestamp) -> f64 {
        let start = match self.start_wall.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(_) => 0.0,
        };
        ts.seconds as f64 + f64::from(ts.nanos) / 1e9 - start
    }
}

/// A check that failed, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Seconds since the start.
    pub at: f64,
    /// Short name of the check.
    pub check: &'static str,
    pub detail: String,
}

/// One injected fault (or episode of faults) and when the gateway was healthy again.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultLog {
    /// Kind, as counted in the summary (`drop`, `refuse`, `notice 1100`, …).
    pub kind: String,
    pub start: f64,
    /// When the gateway was healthy again (the end of the refusal, the restoring notice).
    pub end: f64,
    /// Whether it disturbs the gateway for every stream (a recovery follows); key
    /// revocations and permission changes do not.
    pub gateway: bool,
}

/// How a stream was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Read as fast as messages come.
    Prompt,
    /// A pause after every message.
    Slow,
    /// Held open and not read at all: no freshness is expected of it.
    Neglected,
}

impl Reading {
    /// How a report names it.
    pub fn describe(self) -> &'static str {
        match self {
            Reading::Prompt => "promptly",
            Reading::Slow => "slowly",
            Reading::Neglected => "never",
        }
    }
}

/// One stream a client opened, as far as the checks need it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamLog {
    pub id: u64,
    /// `quotes AAPL,MSFT` or `chain SPY`, for messages.
    pub label: String,
    pub reading: Reading,
    pub opened: f64,
    /// When the client stopped reading it (closed, vanished, or ended by the server).
    pub closed: Option<f64>,
    /// Per instrument key (request index, or option con id): (client receive time,
    /// server receive time) of non-stale values, thinned by [`FRESH_SPACING`].
    pub fresh: HashMap<u64, Vec<(f64, f64)>>,
    /// Per instrument key, when the client last received a value marked stale.
    pub last_stale: HashMap<u64, f64>,
    /// Keys data is expected for, with their names, and since when (a chain's window
    /// changes as it re-centres).
    pub members: BTreeMap<u64, Membership>,
}

/// When an instrument belonged to a stream's expectations.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub name: String,
    pub since: f64,
    /// Left the window, or failed (not found, no permission, line limit).
    pub until: Option<f64>,
}

impl StreamLog {
    /// A stream opened at `opened`.
    pub fn new(id: u64, label: String, reading: Reading, opened: f64) -> StreamLog {
        StreamLog {
            id,
            label,
            reading,
            opened,
            closed: None,
            fresh: HashMap::new(),
            last_stale: HashMap::new(),
            members: BTreeMap::new(),
        }
    }

    /// Expects data for `key` from `at` on (no change if already expected).
    pub fn expect(&mut self, key: u64, name: &str, at: f64) {
        match self.members.get_mut(&key) {
            Some(m) if m.until.is_none() => {}
            _ => {
                self.members.insert(
                    key,
                    Membership {
                        name: name.to_owned(),
                        since: at,
                        until: None,
                    },
                );
            }
        }
    }

    /// Stops expecting data for `key` from `at` on.
    pub fn forget(&mut self, key: u64, at: f64) {
        if let Some(m) = self.members.get_mut(&key)
            && m.until.is_none()
        {
            m.until = Some(at);
        }
    }

    /// Records a non-stale value of `key` received at `client` (server time `server`).
    pub fn fresh(&mut self, key: u64, client: f64, server: f64) {
        let times = self.fresh.entry(key).or_default();
        if times
            .last()
            .is_none_or(|&(_, last)| server >= last + FRESH_SPACING)
        {
            times.push((client, server));
        }
    }
}

impl StreamLog {
    /// Records a value marked stale, received at `client`.
    pub fn stale(&mut self, key: u64, client: f64) {
        self.last_stale.insert(key, client);
    }
}

/// Everything observed, behind one lock (writers are few and brief).
#[derive(Debug, Default)]
pub struct Observations {
    pub faults: Vec<FaultLog>,
    pub streams: Vec<StreamLog>,
    pub violations: Vec<Violation>,
    /// Streams whose key was revoked: how long until they ended with UNAUTHENTICATED.
    pub revocation_latencies: Vec<f64>,
    /// Open calls refused, by gRPC code name.
    pub refused: BTreeMap<String, u64>,
    /// Messages received on every stream.
    pub updates: u64,
    /// Quiet-period subscription comparisons made.
    pub subscription_checks: u64,
    /// Errors the drill injected, by code, counted as the gateway counts them.
    pub injected: HashMap<i32, u64>,
    /// When the server's session was seen lost (left CONNECTED or re-established).
    pub session_losses: Vec<f64>,
    /// The gateway's peak inbound messages per second.
    pub peak_rate: u32,
}

/// Shared handle on the observations.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Observations>>);

impl Journal {
    /// Locks the observations (a panicked writer leaves them readable).
    pub fn lock(&self) -> MutexGuard<'_, Observations> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a failed check.
    pub fn violation(&self, at: f64, check: &'static str, detail: impl Into<String>) {
        self.lock().violations.push(Violation {
            at,
            check,
            detail: detail.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_values_are_thinned_by_server_time() {
        let mut s = StreamLog::new(1, "q".into(), Reading::Prompt, 0.0);
        s.fresh(0, 1.0, 1.0);
        s.fresh(0, 1.05, 1.05);
        s.fresh(0, 1.3, 1.3);
        assert_eq!(s.fresh[&0], vec![(1.0, 1.0), (1.3, 1.3)]);
    }

    #[test]
    fn a_key_expected_again_after_leaving_starts_anew() {
        let mut s = StreamLog::new(1, "c".into(), Reading::Prompt, 0.0);
        s.expect(7, "X", 1.0);
        s.expect(7, "X", 2.0);
        assert_eq!(s.members[&7].since, 1.0);
        s.forget(7, 3.0);
        s.expect(7, "X", 4.0);
        assert_eq!((s.members[&7].since, s.members[&7].until), (4.0, None));
    }
}
