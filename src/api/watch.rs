//! The data of the `WatchStatus` stream: the current status first, then every change
//! (its lifetime, shutdown and revocation included, comes from [`super::lifetime`]).

use std::sync::Arc;

use futures::StreamExt;
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
