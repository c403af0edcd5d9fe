//! The data of the `WatchStatus` stream: the current status first, then every change
//! (its lifetime, shutdown and revocation included, comes from [`super::lifetime`]).

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::convert;
use super::lifetime::BoxedStream;
use super::status::shutting_down;
use crate::ib::{MessagePacer, SessionStatus};
use crate::metrics::Metrics;
use crate::proto::ibstream::v1 as pb;

/// Every status of the session from now on, rendered with the live counters; when the
/// session itself is gone, one last `UNAVAILABLE`.
pub fn status_stream(
    status: watch::Receiver<SessionStatus>,
    metrics: Arc<Metrics>,
    pacer: MessagePacer,
) -> BoxedStream<pb::ConnectionStatus> {
    let statuses = WatchStream::new(status)
        .map(move |status| Ok(convert::connection_status(&status, &metrics, &pacer)));
    let gone = futures::stream::once(async { Err(shutting_down()) });
    Box::pin(statuses.chain(gone))
}

/// In a cluster: the status the node serves (the leader's session) now, then again on
/// every change of this node's session, its role, the leader or the leader's session.
pub fn cluster_status_stream(
    changes: BoxStream<'static, ()>,
    session: watch::Receiver<SessionStatus>,
    current: impl Fn() -> pb::ConnectionStatus + Send + 'static,
) -> BoxedStream<pb::ConnectionStatus> {
    let session = WatchStream::from_changes(session).map(|_| ());
    let ticks = futures::stream::once(async {}).chain(futures::stream::select(changes, session));
    let statuses = ticks.map(move |()| Ok(current()));
    let gone = futures::stream::once(async { Err(shutting_down()) });
    Box::pin(statuses.chain(gone))
}
