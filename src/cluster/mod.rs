//! ibstream as a cluster over NATS: the nodes elect one leader, which alone holds the IB
//! session (see `lease`), and share its market data over the bus.
//!
//! - [`lease`]: leadership, one lease in a JetStream key-value bucket; [`node`]: the
//!   election loop, holding the IB session only while the lease is good.
//! - [`relay`]: the leader's side of the data plane: holds instruments for the other
//!   nodes, publishes their values, answers look-ups.
//! - [`bus_source`]: the other nodes' side, a [`crate::fanout::MarketDataSource`] over
//!   the bus, so their fan-outs serve streams as if they held the session.
//! - [`wire`]: the messages on the bus; [`subjects`]: where they travel.
//! - [`role_source`]: a node's market-data source, its session or the bus as its role
//!   changes; [`members`]: who is in the cluster and what the leader's session is doing;
//!   [`admin`]: session commands forwarded to the leader; [`handle`]: what the services
//!   see of all this.
//!
//! The leader runs a [`Relay`] over its own fan-out (whose source is the IB session) for
//! as long as its lease holds, with the lease's term; every other node builds its fan-out
//! over a [`BusSource`]. A node that becomes leader drops its bus fan-out and starts a
//! relay; one that loses the lease drops its relay (its holds go with it) and follows.

pub mod admin;
pub mod bus_source;
pub mod handle;
pub mod history;
pub mod lease;
pub mod live_relay;
pub mod members;
pub mod node;
pub mod relay;
pub mod role_source;
pub mod subjects;
pub mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use admin::{ForwardError, SessionOp};
pub use bus_source::{BusSource, BusSourceConfig};
pub use handle::ClusterHandle;
pub use history::HistoryPort;
pub use lease::{Lease, LeaseConfig, LeaseError, Role};
pub use node::{Leadership, run as run_node};
pub use relay::{Relay, RelayConfig};
pub use role_source::{RoleHistory, RoleSource, Side};
pub use subjects::{InvalidClusterName, Subjects};

/// The longest a look-up may keep the leader busy, whatever the asking node says.
pub const MAX_LOOKUP_DEADLINE: Duration = Duration::from_secs(120);

/// Locks plain data of the cluster's parts: a panic elsewhere leaves nothing
/// half-updated worth refusing.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `name` can name a node: a short token of letters, digits, '-', '_' and '.'.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    ClusterName(#[from] InvalidClusterName),
    #[error("the bus refused a subscription: {0}")]
    Bus(String),
}
