//! What every service of the server shares.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::limits::StreamLimiter;
use crate::ib::{LinkWatch, Session, SessionBackend};
use crate::metrics::Metrics;

/// Shared state handed to each service when the server is assembled. Cheap to clone.
#[derive(Clone)]
pub struct ServerContext {
    /// The IB session: status, connect/disconnect, message pacing.
    pub session: Session,
    /// The live `ibapi` client, `None` while there is none.
    pub link: LinkWatch,
    pub metrics: Arc<Metrics>,
    /// Concurrent streams per API key; every server stream takes a permit.
    pub streams: StreamLimiter,
    /// Fires when the server starts shutting down: streams end with `UNAVAILABLE`.
    pub shutdown: CancellationToken,
    /// Largest request message a service decodes.
    pub max_request_bytes: usize,
    /// Where the session reads the active profile from.
    pub backend: Arc<dyn SessionBackend>,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext").finish_non_exhaustive()
    }
}
