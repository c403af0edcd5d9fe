//! What every service of the server shares.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::limits::StreamLimiter;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::ib::{LinkWatch, Session};
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state handed to each service when the server is assembled. Cheap to clone.
#[derive(Clone)]
pub struct ServerContext {
    /// The effective configuration.
    pub config: Arc<Config>,
    pub store: Store,
    /// Seals and opens stored credentials.
    pub master_key: Arc<MasterKey>,
    /// The IB session: status, connect/disconnect, message pacing.
    pub session: Session,
    /// The live `ibapi` client, `None` while there is none.
    pub link: LinkWatch,
    pub metrics: Arc<Metrics>,
    /// Concurrent streams per API key; every server stream takes a permit
    /// ([`StreamLimiter::acquire`] with the request's [`super::auth::identity_of`]).
    pub streams: StreamLimiter,
    /// Fires when the server starts shutting down: streams end with `UNAVAILABLE`.
    pub shutdown: CancellationToken,
}

impl ServerContext {
    /// Largest request message a service decodes (`server.max_request_bytes`).
    pub fn max_request_bytes(&self) -> usize {
        self.config.server.max_request_bytes
    }
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext").finish_non_exhaustive()
    }
}
