//! The `WatchStatus` stream: the current status first, then every change, ending with
//! `UNAVAILABLE` when the server shuts down.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert;
use super::limits::StreamPermit;
use crate::ib::{MessagePacer, SessionStatus};
use crate::metrics::Metrics;
use crate::proto::ibstream::v1 as pb;
use std::sync::Arc;

/// A boxed server stream of statuses.
pub type StatusStream = Pin<Box<dyn Stream<Item = Result<pb::ConnectionStatus, Status>> + Send>>;

struct Watcher {
    status: watch::Receiver<SessionStatus>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    pacer: MessagePacer,
    first: bool,
    done: bool,
    /// Frees the caller's stream slot when the stream is dropped.
    _permit: StreamPermit,
}

impl Watcher {
    fn render(&mut self) -> pb::ConnectionStatus {
        let status = self.status.borrow_and_update().clone();
        convert::connection_status(&status, &self.metrics, &self.pacer)
    }
}

/// Streams `status` until the client leaves or `shutdown` fires.
pub fn status_stream(
    status: watch::Receiver<SessionStatus>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    pacer: MessagePacer,
    permit: StreamPermit,
) -> StatusStream {
    let watcher = Watcher {
        status,
        shutdown,
        metrics,
        pacer,
        first: true,
        done: false,
        _permit: permit,
    };
    Box::pin(futures::stream::unfold(watcher, |mut w| async move {
        if w.done {
            return None;
        }
        if std::mem::take(&mut w.first) {
            let current = w.render();
            return Some((Ok(current), w));
        }
        let ending = Status::unavailable("server shutting down");
        tokio::select! {
            biased;
            _ = w.shutdown.cancelled() => {
                w.done = true;
                Some((Err(ending), w))
            }
            changed = w.status.changed() => match changed {
                Ok(()) => {
                    let current = w.render();
                    Some((Ok(current), w))
                }
                Err(_) => {
                    w.done = true;
                    Some((Err(ending), w))
                }
            },
        }
    }))
}
