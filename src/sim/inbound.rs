//! The reading side of one connection. A task reads frames ahead of their handling, as
//! TWS's reader thread does, so a socket the client closes is seen at once, even while
//! the request before the close waits for room in a stalled writer's queue. Without
//! that, a client that gave up on a stalled gateway and reconnected met its own old
//! connection still holding the client id (error 326) until the stall ended.
//!
//! What is read and not yet handled is bounded in bytes: past [`READ_AHEAD_BYTES`] the
//! reader waits for the handler, and the socket's own buffers push back on the client.

use std::sync::Arc;

use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frame::{self, FrameError, InboundFrame};

/// Bytes of requests read ahead of their handling, per connection. A client within the
/// message rate sends a few kilobytes a second, so this covers minutes of a stall.
pub(crate) const READ_AHEAD_BYTES: usize = 1024 * 1024;

/// What the reader found next.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A frame, when it arrived, and its share of the read-ahead budget until it is
    /// handled.
    Frame(InboundFrame, Instant, OwnedSemaphorePermit),
    /// The client closed the socket.
    Closed,
    /// The socket failed or sent a frame the protocol does not allow.
    Failed(FrameError),
}

/// Frames read ahead from one socket; dropping it stops the reader.
pub(crate) struct Reader {
    frames: mpsc::UnboundedReceiver<Inbound>,
    /// Cancelled once the socket is done: closed by the client, failed or misframed.
    done: CancellationToken,
    task: JoinHandle<()>,
}

impl Reader {
    /// Starts reading `half`.
    pub(crate) fn start(half: OwnedReadHalf) -> Reader {
        let (tx, frames) = mpsc::unbounded_channel();
        let done = CancellationToken::new();
        let task = tokio::spawn(read(half, tx, done.clone()));
        Reader { frames, done, task }
    }

    /// The next frame, or how reading ended.
    pub(crate) async fn next(&mut self) -> Inbound {
        // The reader always sends how it ended before it drops the sender.
        self.frames.recv().await.unwrap_or(Inbound::Closed)
    }

    /// Resolves once the socket is done; frames read before may still be queued.
    pub(crate) async fn done(&self) {
        self.done.cancelled().await;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read(
    mut half: OwnedReadHalf,
    tx: mpsc::UnboundedSender<Inbound>,
    done: CancellationToken,
) {
    let budget = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let end = loop {
        let frame = match frame::read_frame(&mut half).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Inbound::Closed,
            Err(e) => break Inbound::Failed(e),
        };
        // TWS counts a request against the message rate when its reader thread takes it
        // off the socket, not when it gets round to handling it.
        let arrived = Instant::now();
        // Never more than the whole budget, so one frame can always be admitted.
        let cost = (frame.payload.len() + 8).min(READ_AHEAD_BYTES);
        let Ok(permit) = budget.clone().acquire_many_owned(cost as u32).await else {
            return;
        };
        if tx.send(Inbound::Frame(frame, arrived, permit)).is_err() {
            return;
        }
    };
    done.cancel();
    let _ = tx.send(end);
}
