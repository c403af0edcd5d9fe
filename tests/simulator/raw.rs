//! A bare TWS API client over a raw socket, for what `ibapi` cannot be made to do:
//! other version ranges, request floods, garbage.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ibstream::proto::tws;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::WAIT;

/// Logical ids used by the tests.
pub const REQ_CURRENT_TIME: i32 = 49;
pub const START_API: i32 = 71;
pub const CURRENT_TIME: i32 = 49;
pub const ERROR: i32 = 4;
pub const NEXT_VALID_ID: i32 = 9;
pub const MANAGED_ACCOUNTS: i32 = 15;

/// One raw connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

/// An inbound frame: logical id (protobuf offset removed) and payload.
#[derive(Debug)]
pub struct Frame {
    pub id: i32,
    pub payload: Bytes,
}

impl Raw {
    /// Opens a socket.
    pub async fn open(addr: SocketAddr) -> Self {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
        }
    }

    /// Sends `API\0` and a version announcement.
    pub async fn hello(&mut self, versions: &str) {
        let mut out = BytesMut::new();
        out.put_slice(b"API\0");
        out.put_u32(versions.len() as u32);
        out.put_slice(versions.as_bytes());
        self.stream.write_all(&out).await.unwrap();
    }

    /// Reads the handshake reply; `None` if the server closed instead.
    pub async fn handshake_reply(&mut self) -> Option<String> {
        let body = self.read_body().await?;
        Some(String::from_utf8_lossy(&body).into_owned())
    }

    /// Handshake and StartApi, then waits for NextValidId and ManagedAccounts.
    pub async fn connect(addr: SocketAddr, client_id: i32) -> Self {
        let mut raw = Raw::open(addr).await;
        raw.hello("v213..226").await;
        raw.handshake_reply().await.expect("handshake reply");
        raw.send(
            START_API,
            &tws::StartApiRequest {
                client_id: Some(client_id),
                optional_capabilities: None,
            },
        )
        .await;
        let (mut id, mut accounts) = (false, false);
        while !(id && accounts) {
            let f = raw.frame().await.expect("welcome frames");
            id |= f.id == NEXT_VALID_ID;
            accounts |= f.id == MANAGED_ACCOUNTS;
        }
        raw
    }

    /// Sends a protobuf request.
    pub async fn send<M: Message>(&mut self, logical_id: i32, msg: &M) {
        let _ = self.stream.write_all(&encode(logical_id, msg)).await;
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(k)) => self.buf.extend_from_slice(&chunk[..k]),
                Err(_) => panic!("no data within {WAIT:?}"),
            }
        }
        true
    }

    async fn read_body(&mut self) -> Option<Bytes> {
        if !self.fill(4).await {
            return None;
        }
        let len = (&self.buf[..4]).get_u32() as usize;
        if !self.fill(4 + len).await {
            return None;
        }
        self.buf.advance(4);
        Some(self.buf.split_to(len).freeze())
    }

    /// The next frame; `None` once the server closed the socket.
    pub async fn frame(&mut self) -> Option<Frame> {
        let mut body = self.read_body().await?;
        let wire = body.get_i32();
        Some(Frame {
            id: wire - 200,
            payload: body,
        })
    }

    /// Frames until the server closes the socket (bounded by [`WAIT`]).
    pub async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.frame().await {
            frames.push(f);
        }
        frames
    }

    /// Frames arriving within `quiet` of each other.
    pub async fn frames_for(&mut self, quiet: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(Some(f)) = tokio::time::timeout(quiet, self.frame()).await {
            frames.push(f);
        }
        frames
    }
}

/// A complete request frame: requests are framed exactly as the gateway frames its own
/// messages (length, logical id + 200, protobuf payload).
pub use ibstream::sim::frame::encode;

/// Decodes an error frame.
pub fn error(f: &Frame) -> tws::ErrorMessage {
    assert_eq!(f.id, ERROR);
    tws::ErrorMessage::decode(f.payload.clone()).unwrap()
}
