//! One client socket: handshake, client-id registration, the writer task and the read loop.
//! Whatever goes wrong here (bad frames, a vanished peer) ends this connection only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use prost::Message;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::cmd::{self, RequestKind};
use super::frame;
use super::handshake::{self, HandshakeError};
use super::inbound::{self, Inbound};
use super::session::Session;
use super::state::{ConnectionEntry, Outbox, Outgoing, Shared, lock};
use crate::proto::tws;

/// A client that connects and says nothing is dropped after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued for one connection before producers wait (or skip, for ticks).
const OUTBOX_CAPACITY: usize = 1024;
/// Bytes gathered before a socket write.
const WRITE_BATCH: usize = 64 * 1024;

/// Serves one accepted socket to the end.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    if shared.refusing() {
        shared
            .counters
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        info!(%peer, "connection refused: gateway unavailable (restart window)");
        return;
    }
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let handshake = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake_and_start(&shared, &mut reader, &mut writer),
    );
    let outcome = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        outcome = handshake => outcome,
    };
    let client_id = match outcome {
        Ok(Ok(id)) => id,
        Ok(Err(reason)) => {
            shared
                .counters
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            info!(%peer, %reason, "connection closed during handshake");
            let _ = writer.shutdown().await;
            return;
        }
        Err(_) => {
            info!(%peer, "connection closed: no handshake within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    let registration = Registration::new(&shared, client_id);
    let connection = registration.id;
    info!(%peer, client_id, connection, "client connected");
    run(shared.clone(), reader, writer, registration).await;
    info!(%peer, client_id, connection, "client disconnected");
}

/// Why the start of a session failed.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("first message was wire id {0}, not StartApi")]
    NotStartApi(i32),
    #[error("client id {0} is already in use")]
    ClientIdInUse(i32),
    #[error("socket closed before StartApi")]
    Closed,
    #[error("undecodable StartApi: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("write failed: {0}")]
    Write(#[from] std::io::Error),
}

/// Handshake, StartApi and client-id check; returns the client id, registered.
async fn handshake_and_start(
    shared: &Shared,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
) -> Result<i32, StartError> {
    let range = handshake::read_hello(reader).await?;
    let version = handshake::negotiate(range, shared.server_version)?;
    writer
        .write_all(&handshake::reply(version, OffsetDateTime::now_utc()))
        .await?;
    let start = frame::read_frame(reader)
        .await
        .map_err(HandshakeError::from)?
        .ok_or(StartError::Closed)?;
    if RequestKind::from_wire_id(start.wire_id) != Some(RequestKind::StartApi) {
        return Err(StartError::NotStartApi(start.wire_id));
    }
    shared.count_request(RequestKind::StartApi.name());
    let client_id = tws::StartApiRequest::decode(start.payload)?
        .client_id
        .unwrap_or(0);
    if !lock(&shared.client_ids).insert(client_id) {
        // StartApi has been read in full, so closing now sends FIN and the 326 arrives.
        let msg =
            "Unable to connect as the client id is already in use. Retry with a unique client id.";
        writer.write_all(&shared.error_frame(-1, 326, msg)).await?;
        return Err(StartError::ClientIdInUse(client_id));
    }
    Ok(client_id)
}

/// A live connection's place in the shared registry; unregisters on drop.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
    client_id: i32,
    drop_token: CancellationToken,
}

impl Registration {
    fn new(shared: &Arc<Shared>, client_id: i32) -> Self {
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        Registration {
            shared: shared.clone(),
            id,
            client_id,
            drop_token: shared.shutdown.child_token(),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.shared.connections).remove(&self.id);
        lock(&self.shared.client_ids).remove(&self.client_id);
        self.shared
            .counters
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run(
    shared: Arc<Shared>,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    reg: Registration,
) {
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let outbox = Outbox::new(tx, shared.clone());
    lock(&shared.connections).insert(
        reg.id,
        ConnectionEntry {
            outbox: outbox.clone(),
            drop: reg.drop_token.clone(),
        },
    );
    let writer_task = tokio::spawn(write_loop(
        shared.clone(),
        rx,
        writer,
        reg.drop_token.clone(),
    ));
    let mut reader = inbound::Reader::start(reader);
    let broken = lock(&shared.broken_farms).clone();
    let welcomed = cmd::gateway::welcome(&outbox, &shared.accounts, &broken).await;
    let mut session = Session::new(shared.clone(), outbox);
    if welcomed {
        loop {
            let next = tokio::select! {
                _ = reg.drop_token.cancelled() => break,
                next = reader.next() => next,
            };
            match next {
                Inbound::Frame(frame, arrived, _read_ahead) => {
                    // A reply waiting for room behind a stalled writer must not keep a
                    // connection the client has left, nor its client id.
                    let alive = tokio::select! {
                        biased;
                        alive = session.handle(frame, arrived) => alive,
                        _ = reader.done() => false,
                        _ = reg.drop_token.cancelled() => false,
                    };
                    if !alive {
                        break;
                    }
                }
                Inbound::Closed => {
                    debug!(connection = reg.id, "peer closed the connection");
                    break;
                }
                Inbound::Failed(e) => {
                    warn!(connection = reg.id, error = %e, "closing connection after a bad frame");
                    break;
                }
            }
        }
    }
    // Stop subscriptions first so their forwarders release the outbox, and free the
    // client id before the writer drains what is queued (e.g. a last error 100): that
    // waits out a stall, and the client may be back on a new socket meanwhile.
    drop(session);
    drop(reader);
    drop(reg);
    let _ = writer_task.await;
}

async fn write_loop(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Outgoing>,
    mut writer: OwnedWriteHalf,
    drop_token: CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(WRITE_BATCH);
    loop {
        let item = tokio::select! {
            _ = drop_token.cancelled() => return,
            item = rx.recv() => item,
        };
        let Some(item) = item else { break };
        append(&mut buf, item);
        while buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(item) => append(&mut buf, item),
                Err(_) => break,
            }
        }
        if let Some(until) = shared.stalled_until() {
            tokio::select! {
                _ = drop_token.cancelled() => return,
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        let written = tokio::select! {
            _ = drop_token.cancelled() => return,
            w = writer.write_all(&buf) => w,
        };
        if let Err(e) = written {
            debug!(error = %e, "client write failed");
            return;
        }
        buf.clear();
    }
    let _ = writer.shutdown().await;
}

fn append(buf: &mut BytesMut, item: Outgoing) {
    match item {
        Outgoing::Frame(frame) => buf.extend_from_slice(&frame),
        Outgoing::Ticks {
            req_id,
            update,
            delayed,
            generics,
        } => {
            for tick in update.frames(delayed) {
                if generics.admits(tick.gate) {
                    tick.frame.write_for(req_id, buf);
                }
            }
        }
    }
}
