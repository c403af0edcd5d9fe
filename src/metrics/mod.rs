//! Counters and gauges shared by every layer, exported through `prometheus-client`.
//!
//! The same handles feed `GetStatus`, `ListSubscriptions` and `/metrics`; an update on
//! the hot path (a tick fanned out to streams) is one relaxed atomic add, as with plain
//! atomics, while the crate owns naming, types and the exposition format.
//!
//! - [`endpoint`]: the `/metrics` HTTP endpoint.

pub mod endpoint;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every series ibstream exports. One instance per server, shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    /// Numeric value of the session state (the `ConnectionState` enum of the public API).
    pub connection_state: Gauge,
    pub reconnects: Counter,
    /// Messages sent to the gateway (every one passes the session's pacer).
    pub ib_messages_sent: Counter,
    /// Total time messages waited in the pacer, in seconds.
    pub rate_limiter_delay: Counter<f64, AtomicU64>,
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
    /// Tokio tasks of the runtime rendering the metrics (the server's), read at each
    /// scrape, so a drill can see tasks left behind by streams that ended.
    tasks_alive: Gauge,
    /// 1 while this node leads its cluster (or runs alone), 0 while it follows.
    pub cluster_leader: Gauge,
    /// The cluster leader's term as this node knows it (0 outside a cluster).
    pub cluster_term: Gauge,
    /// The bus connection's own counters, read at each scrape.
    bus: std::sync::OnceLock<Arc<async_nats::Statistics>>,
    bus_messages_in: Counter,
    bus_messages_out: Counter,
    bus_bytes_in: Counter,
    bus_bytes_out: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            connection_state: Gauge::default(),
            reconnects: Counter::default(),
            ib_messages_sent: Counter::default(),
            rate_limiter_delay: Counter::default(),
            lines_in_use: Gauge::default(),
            line_budget: Gauge::default(),
            instruments_cached: Gauge::default(),
            streams_open: Gauge::default(),
            updates_in: Counter::default(),
            updates_out: Counter::default(),
            conflated: Counter::default(),
            tasks_alive: Gauge::default(),
            cluster_leader: Gauge::default(),
            cluster_term: Gauge::default(),
            bus: std::sync::OnceLock::new(),
            bus_messages_in: Counter::default(),
            bus_messages_out: Counter::default(),
            bus_bytes_in: Counter::default(),
            bus_bytes_out: Counter::default(),
            registry: Registry::with_prefix("ibstream"),
        };
        m.cluster_leader.set(1);
        let r = &mut m.registry;
        r.register(
            "connection_state",
            "IB session state (0 unspecified, 1 disconnected, 2 connecting, 3 connected, 4 reconnecting, 5 failed)",
            m.connection_state.clone(),
        );
        r.register(
            "reconnects",
            "Sessions re-established after a loss",
            m.reconnects.clone(),
        );
        r.register(
            "ib_messages_sent",
            "Messages sent to the gateway",
            m.ib_messages_sent.clone(),
        );
        r.register(
            "rate_limiter_delay_seconds",
            "Time messages waited for the message-rate limiter",
            m.rate_limiter_delay.clone(),
        );
        r.register(
            "lines_in_use",
            "Market-data lines held at IB",
            m.lines_in_use.clone(),
        );
        r.register(
            "line_budget",
            "Market-data lines ibstream may hold",
            m.line_budget.clone(),
        );
        r.register(
            "instruments_cached",
            "Instruments in the last-value cache",
            m.instruments_cached.clone(),
        );
        r.register("streams_open", "gRPC streams open", m.streams_open.clone());
        r.register(
            "updates_in",
            "Market-data updates received from IB",
            m.updates_in.clone(),
        );
        r.register(
            "updates_out",
            "Messages delivered to gRPC streams",
            m.updates_out.clone(),
        );
        r.register(
            "conflated_updates",
            "Updates replaced by a newer value before a slow stream read them",
            m.conflated.clone(),
        );
        r.register(
            "tasks_alive",
            "Tokio tasks alive in the server's runtime",
            m.tasks_alive.clone(),
        );
        r.register(
            "cluster_leader",
            "1 while this node holds the IB session for its cluster (or runs alone), 0 while it follows",
            m.cluster_leader.clone(),
        );
        r.register(
            "cluster_term",
            "The cluster leader's term as this node knows it",
            m.cluster_term.clone(),
        );
        r.register(
            "bus_messages_received",
            "Messages this node received from the cluster's NATS bus",
            m.bus_messages_in.clone(),
        );
        r.register(
            "bus_messages_sent",
            "Messages this node sent on the cluster's NATS bus",
            m.bus_messages_out.clone(),
        );
        r.register(
            "bus_bytes_received",
            "Payload bytes this node received from the cluster's NATS bus",
            m.bus_bytes_in.clone(),
        );
        r.register(
            "bus_bytes_sent",
            "Payload bytes this node sent on the cluster's NATS bus",
            m.bus_bytes_out.clone(),
        );
        m
    }
}

impl Metrics {
    /// Counts the traffic of the cluster's bus connection from now on.
    pub fn follow_bus(&self, statistics: Arc<async_nats::Statistics>) {
        let _ = self.bus.set(statistics);
    }

    /// Renders every series in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let alive = runtime.metrics().num_alive_tasks();
            self.tasks_alive
                .set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
        if let Some(bus) = self.bus.get() {
            use std::sync::atomic::Ordering::Relaxed;
            for (counter, total) in [
                (&self.bus_messages_in, &bus.in_messages),
                (&self.bus_messages_out, &bus.out_messages),
                (&self.bus_bytes_in, &bus.in_bytes),
                (&self.bus_bytes_out, &bus.out_bytes),
            ] {
                // The connection's counters only grow; the series catch up to them.
                counter.inc_by(total.load(Relaxed).saturating_sub(counter.get()));
            }
        }
        let mut out = String::with_capacity(2048);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
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
        m.updates_out.inc_by(3);
        m.rate_limiter_delay.inc_by(1.5);
        let text = m.render();
        assert!(text.contains("\nibstream_lines_in_use 7\n"));
        assert!(text.contains("\nibstream_updates_out_total 3\n"));
        assert!(text.contains("\nibstream_rate_limiter_delay_seconds_total 1.5\n"));
        assert_eq!(text.matches("# TYPE ").count(), 18);
        assert!(
            text.contains("\nibstream_cluster_leader 1\n"),
            "alone, a node leads"
        );
    }

    #[test]
    fn bus_traffic_follows_the_connections_counters() {
        use std::sync::atomic::Ordering::Relaxed;
        let m = Metrics::default();
        let stats = Arc::new(async_nats::Statistics::default());
        m.follow_bus(stats.clone());
        stats.out_messages.store(5, Relaxed);
        stats.in_bytes.store(1000, Relaxed);
        let text = m.render();
        assert!(
            text.contains("\nibstream_bus_messages_sent_total 5\n"),
            "{text}"
        );
        assert!(text.contains("\nibstream_bus_bytes_received_total 1000\n"));
        stats.out_messages.store(8, Relaxed);
        assert!(
            m.render()
                .contains("\nibstream_bus_messages_sent_total 8\n")
        );
    }
}
