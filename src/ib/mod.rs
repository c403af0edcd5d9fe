//! The one IB session: connect, health monitor, reconnect with backoff, circuit breaker, notices to status.

pub mod link;

pub use link::{Link, LinkWatch};
