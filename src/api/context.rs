//! What `ConnectionService` is built from, assembled by [`crate::app`].

use std::sync::Arc;

use super::lifetime::StreamGate;
use crate::cluster::ClusterHandle;
use crate::crypto::MasterKey;
use crate::ib::{LinkWatch, Session};
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state handed to the connection service. Cheap to clone.
#[derive(Clone)]
pub struct ServerContext {
    pub store: Store,
    /// Seals and opens stored credentials.
    pub master_key: Arc<MasterKey>,
    /// The IB session: status, connect/disconnect, message pacing.
    pub session: Session,
    /// The live `ibapi` client, `None` while there is none.
    pub link: LinkWatch,
    pub metrics: Arc<Metrics>,
    /// Admits every server stream (permits, shutdown, revocation, gauge).
    pub streams: StreamGate,
    /// Largest request message a service decodes (`server.max_request_bytes`).
    pub max_request_bytes: usize,
    /// The cluster this server is a node of, if any.
    pub cluster: Option<ClusterHandle>,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext").finish_non_exhaustive()
    }
}
