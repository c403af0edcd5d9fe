//! In-process control of a running simulator: the same operations the gRPC control plane
//! offers, for tests and embedding.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::config::MAX_DURATION;
use super::state::{Shared, lock};

/// The end of a window of `length` from now; `None` for an empty one. Lengths are clamped
/// to [`MAX_DURATION`], which any clock can add to now (one that could not would get no
/// window rather than a panic).
fn window_end(length: Duration) -> Option<Instant> {
    if length.is_zero() {
        return None;
    }
    Instant::now().checked_add(length.min(MAX_DURATION))
}

/// A point-in-time copy of the simulator's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimStats {
    /// Client connections open now (past the handshake).
    pub connections: u32,
    /// `reqMktData` requests received.
    pub market_data_requests: u64,
    /// Streaming market-data subscriptions live now.
    pub active_market_data_subscriptions: u32,
    /// Highest inbound message count of any connection within any one-second window.
    pub peak_messages_per_second: u32,
    /// Requests received, by message name (e.g. `RequestMarketData`).
    pub requests_by_type: HashMap<String, u64>,
    /// Error messages sent, by error code.
    pub errors_sent: HashMap<i32, u64>,
    /// Connections that completed the handshake.
    pub connections_accepted: u64,
    /// Connections refused (unavailable, version mismatch, client id in use).
    pub connections_refused: u64,
    /// Instruments with a running producer.
    pub active_instruments: u32,
    /// Historical requests served (bars and head timestamps).
    pub historical_requests: u64,
    /// Historical requests refused with error 162 for breaking IB's pacing rules.
    pub historical_pacing_violations: u64,
}

/// Handle on a running simulator's knobs and faults.
#[derive(Debug, Clone)]
pub struct SimControl {
    shared: Arc<Shared>,
}

impl SimControl {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Current statistics.
    pub fn stats(&self) -> SimStats {
        let c = &self.shared.counters;
        SimStats {
            connections: c.connections.load(Ordering::Relaxed),
            market_data_requests: c.market_data_requests.load(Ordering::Relaxed),
            active_market_data_subscriptions: c.active_subscriptions.load(Ordering::Relaxed).max(0)
                as u32,
            peak_messages_per_second: c.peak_messages_per_second.load(Ordering::Relaxed),
            requests_by_type: lock(&c.requests_by_type)
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors_sent: lock(&c.errors_sent).clone(),
            connections_accepted: c.connections_accepted.load(Ordering::Relaxed),
            connections_refused: c.connections_refused.load(Ordering::Relaxed),
            active_instruments: self.shared.feeds.active() as u32,
            historical_requests: c.historical_requests.load(Ordering::Relaxed),
            historical_pacing_violations: c.historical_pacing_violations.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the cumulative counters; current values (connections, live subscriptions)
    /// stay as they are.
    pub fn reset_stats(&self) {
        let c = &self.shared.counters;
        c.market_data_requests.store(0, Ordering::Relaxed);
        c.peak_messages_per_second.store(0, Ordering::Relaxed);
        c.connections_accepted.store(0, Ordering::Relaxed);
        c.connections_refused.store(0, Ordering::Relaxed);
        lock(&c.requests_by_type).clear();
        lock(&c.errors_sent).clear();
        c.historical_requests.store(0, Ordering::Relaxed);
        c.historical_pacing_violations.store(0, Ordering::Relaxed);
    }

    /// Closes every client socket at once; returns how many.
    pub fn drop_connections(&self) -> usize {
        let conns = lock(&self.shared.connections);
        for entry in conns.values() {
            entry.drop.cancel();
        }
        info!(count = conns.len(), "dropping every client connection");
        conns.len()
    }

    /// Refuses new connections for `refuse_for` (accepted sockets are closed before the
    /// handshake reply), as during the nightly restart. Zero accepts again at once; more
    /// than [`MAX_DURATION`] refuses for that long.
    pub fn set_availability(&self, refuse_for: Duration) {
        *lock(&self.shared.refuse_until) = window_end(refuse_for);
        info!(?refuse_for, "refusing new connections");
    }

    /// Stops sending to every client for `duration` (at most [`MAX_DURATION`]) without
    /// closing the sockets; what was queued meanwhile is sent afterwards.
    pub fn stall(&self, duration: Duration) {
        *lock(&self.shared.stall_until) = window_end(duration);
        info!(?duration, "stalling every connection");
    }

    /// Sends an error to every connected client (on `request_id`, or −1 as a notice);
    /// returns how many connections it was queued to.
    pub fn inject_error(&self, code: i32, message: &str, request_id: Option<i32>) -> usize {
        let conns = lock(&self.shared.connections);
        let frame = |s: &Shared| s.error_frame(request_id.unwrap_or(-1), code, message);
        conns
            .values()
            .filter(|entry| entry.outbox.try_frame(frame(&self.shared)))
            .count()
    }

    /// Changes the model step interval of every instrument, within 100 µs (a shorter one
    /// would only spin) and [`MAX_DURATION`] (a longer one the clock cannot add).
    pub fn set_tick_interval(&self, interval: Duration) {
        let interval = interval.clamp(Duration::from_micros(100), MAX_DURATION);
        self.shared.tick_interval.send_replace(interval);
    }

    /// Changes the per-connection market-data line budget (checked on new requests).
    pub fn set_line_limit(&self, limit: u32) {
        self.shared.line_limit.store(limit, Ordering::Relaxed);
    }

    /// Grants (`true`) or revokes the live market-data subscription of a symbol.
    pub fn set_live_permission(&self, symbol: &str, live: bool) {
        let mut set = lock(&self.shared.no_live);
        if live {
            set.remove(&symbol.to_ascii_uppercase());
        } else {
            set.insert(symbol.to_ascii_uppercase());
        }
    }

    /// Reports `farm` (`usfarm`, `ushmds`, `secdefnj`) broken (`true`) or OK in the
    /// notices every new session gets after its handshake, as a gateway restarting with
    /// a farm down does. Connected clients hear nothing: use `inject_error` for that.
    pub fn set_farm_broken_at_start(&self, farm: &str, broken: bool) {
        let mut set = lock(&self.shared.broken_farms);
        if broken {
            set.insert(farm.to_owned());
        } else {
            set.remove(farm);
        }
    }

    /// Current model price of an underlying (stocks, ETFs, SPX, EUR.USD by base symbol).
    pub fn spot(&self, symbol: &str) -> Option<f64> {
        let index = self.shared.universe.underlying_by_symbol(symbol)?;
        self.shared.market.spot(index)
    }
}
