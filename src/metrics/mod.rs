//! Counters and gauges shared by every layer, rendered in the Prometheus text format.
//!
//! Plain atomics rather than a metrics framework: the set is small and fixed, the hot
//! path (a tick fanned out to streams) must cost one relaxed add, and the same values
//! feed `GetStatus`, `ListSubscriptions` and `/metrics`.

use std::fmt::Write;
pub mod endpoint;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every series ibstream exports. One instance per server, shared as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Numeric value of the session state (the `ConnectionState` enum of the public API).
    pub connection_state: Gauge,
    pub reconnects: Counter,
    /// Messages ibstream asked `ibapi` to send to the gateway.
    pub ib_messages_sent: Counter,
    /// Total time requests waited in the rate limiter, in microseconds.
    pub rate_limiter_delay_micros: Counter,
    pub lines_in_use: Gauge,
    pub line_budget: Gauge,
    pub instruments_cached: Gauge,
    pub streams_open: Gauge,
    /// Ticks received from IB.
    pub updates_in: Counter,
    /// Messages written to gRPC streams.
    pub updates_out: Counter,
    /// Updates a slow stream never saw because a newer value replaced them.
    pub conflated: Counter,
}

impl Metrics {
    /// Renders every series in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let delay_secs = self.rate_limiter_delay_micros.get() as f64 / 1e6;
        // Tokio tasks of the runtime rendering this (the server's), so a drill can see
        // tasks left behind by streams that ended.
        let tasks_alive = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_alive_tasks().to_string())
            .unwrap_or_else(|_| "0".into());
        let series: [(&str, &str, &str, String); 12] = [
            (
                "ibstream_connection_state",
                "gauge",
                "IB session state (0 unspecified, 1 disconnected, 2 connecting, 3 connected, 4 reconnecting, 5 failed)",
                self.connection_state.get().to_string(),
            ),
            (
                "ibstream_reconnects_total",
                "counter",
                "Sessions re-established after a loss",
                self.reconnects.get().to_string(),
            ),
            (
                "ibstream_ib_messages_sent_total",
                "counter",
                "Messages sent to the gateway",
                self.ib_messages_sent.get().to_string(),
            ),
            (
                "ibstream_rate_limiter_delay_seconds_total",
                "counter",
                "Time requests waited for the message-rate limiter",
                delay_secs.to_string(),
            ),
            (
                "ibstream_lines_in_use",
                "gauge",
                "Market-data lines held at IB",
                self.lines_in_use.get().to_string(),
            ),
            (
                "ibstream_line_budget",
                "gauge",
                "Market-data lines ibstream may hold",
                self.line_budget.get().to_string(),
            ),
            (
                "ibstream_instruments_cached",
                "gauge",
                "Instruments in the last-value cache",
                self.instruments_cached.get().to_string(),
            ),
            (
                "ibstream_streams_open",
                "gauge",
                "gRPC streams open",
                self.streams_open.get().to_string(),
            ),
            (
                "ibstream_updates_in_total",
                "counter",
                "Market-data updates received from IB",
                self.updates_in.get().to_string(),
            ),
            (
                "ibstream_updates_out_total",
                "counter",
                "Messages delivered to gRPC streams",
                self.updates_out.get().to_string(),
            ),
            (
                "ibstream_conflated_updates_total",
                "counter",
                "Updates replaced by a newer value before a slow stream read them",
                self.conflated.get().to_string(),
            ),
            (
                "ibstream_tasks_alive",
                "gauge",
                "Tokio tasks alive in the server's runtime",
                tasks_alive,
            ),
        ];
        let mut out = String::with_capacity(2048);
        for (name, kind, help, value) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_series_with_its_value() {
        let m = Metrics::default();
        m.lines_in_use.set(7);
        m.updates_out.add(3);
        m.rate_limiter_delay_micros.add(1_500_000);
        let text = m.render();
        assert!(text.contains("\nibstream_lines_in_use 7\n"));
        assert!(text.contains("\nibstream_updates_out_total 3\n"));
        assert!(text.contains("\nibstream_rate_limiter_delay_seconds_total 1.5\n"));
        assert_eq!(text.matches("# TYPE ").count(), 12);
    }
}
