//! TWS framing: a big-endian `u32` length, then a big-endian `i32` message id (protobuf
//! messages carry their logical id + 200), then the protobuf payload.
//!
//! Tick frames are encoded once per instrument update and shared by every subscriber: the
//! request id is protobuf tag 1, the first field of every tick message, so a frame splits
//! into a per-subscription header (length, id, tag 1) and a shared tail ([`TailFrame`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Offset added to a logical message id when the payload is protobuf.
pub const PROTOBUF_OFFSET: i32 = 200;

/// Largest request body the simulator accepts. Client requests are a few hundred bytes;
/// anything larger is a broken or hostile peer, and the connection is closed.
pub const MAX_INBOUND_FRAME: usize = 64 * 1024;

/// Smallest valid body: the 4-byte message id.
const MIN_FRAME: usize = 4;

/// Logical ids of the requests the simulator understands (client → gateway).
pub mod inbound {
    pub const REQ_MKT_DATA: i32 = 1;
    pub const CANCEL_MKT_DATA: i32 = 2;
    pub const REQ_IDS: i32 = 8;
    pub const REQ_CONTRACT_DATA: i32 = 9;
    pub const REQ_MANAGED_ACCTS: i32 = 17;
    pub const REQ_CURRENT_TIME: i32 = 49;
    pub const REQ_MARKET_DATA_TYPE: i32 = 59;
    pub const START_API: i32 = 71;
    pub const REQ_SEC_DEF_OPT_PARAMS: i32 = 78;
    pub const REQ_MATCHING_SYMBOLS: i32 = 81;
    pub const REQ_CURRENT_TIME_IN_MILLIS: i32 = 105;
    pub const CANCEL_CONTRACT_DATA: i32 = 106;
    pub const REQ_HISTORICAL_DATA: i32 = 20;
    pub const CANCEL_HISTORICAL_DATA: i32 = 25;
    pub const REQ_REAL_TIME_BARS: i32 = 50;
    pub const CANCEL_REAL_TIME_BARS: i32 = 51;
    pub const REQ_HEAD_TIMESTAMP: i32 = 87;
    pub const CANCEL_HEAD_TIMESTAMP: i32 = 90;
}

/// Logical ids of the messages the simulator sends (gateway → client).
pub mod outbound {
    pub const TICK_PRICE: i32 = 1;
    pub const TICK_SIZE: i32 = 2;
    pub const ERROR: i32 = 4;
    pub const NEXT_VALID_ID: i32 = 9;
    pub const CONTRACT_DATA: i32 = 10;
    pub const MANAGED_ACCTS: i32 = 15;
    pub const TICK_OPTION_COMPUTATION: i32 = 21;
    pub const TICK_GENERIC: i32 = 45;
    pub const TICK_STRING: i32 = 46;
    pub const CURRENT_TIME: i32 = 49;
    pub const CONTRACT_DATA_END: i32 = 52;
    pub const TICK_SNAPSHOT_END: i32 = 57;
    pub const MARKET_DATA_TYPE: i32 = 58;
    pub const SEC_DEF_OPT_PARAM: i32 = 75;
    pub const SEC_DEF_OPT_PARAM_END: i32 = 76;
    pub const SYMBOL_SAMPLES: i32 = 79;
    pub const TICK_REQ_PARAMS: i32 = 81;
    pub const CURRENT_TIME_IN_MILLIS: i32 = 109;
    pub const HISTORICAL_DATA: i32 = 17;
    pub const REAL_TIME_BARS: i32 = 50;
    pub const HEAD_TIMESTAMP: i32 = 88;
    pub const HISTORICAL_DATA_END: i32 = 108;
}

/// Why an inbound frame could not be read; each ends the connection it came from.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed in the middle of a frame.
    #[error("connection closed or failed mid-frame: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix is outside what the protocol allows.
    #[error("frame length {0} outside {MIN_FRAME}..={1}")]
    BadLength(usize, usize),
}

/// A complete frame for a protobuf message.
pub fn encode<M: Message>(logical_id: i32, msg: &M) -> Bytes {
    let len = msg.encoded_len();
    let mut buf = BytesMut::with_capacity(8 + len);
    buf.put_u32((4 + len) as u32);
    buf.put_i32(logical_id + PROTOBUF_OFFSET);
    // Encoding into a buffer sized from encoded_len cannot run out of room.
    msg.encode_raw(&mut buf);
    buf.freeze()
}

/// A request-scoped message encoded without its request id, shareable between subscribers.
#[derive(Debug, Clone)]
pub struct TailFrame {
    /// Logical message id.
    pub logical_id: i32,
    /// Protobuf fields after tag 1.
    pub tail: Bytes,
}

impl TailFrame {
    /// Encodes `msg`, whose tag 1 (the request id) must be unset.
    pub fn encode<M: Message>(logical_id: i32, msg: &M) -> Self {
        Self {
            logical_id,
            tail: Bytes::from(msg.encode_to_vec()),
        }
    }

    /// Appends the whole frame for `req_id` to `buf`.
    pub fn write_for(&self, req_id: i32, buf: &mut BytesMut) {
        // int32 is encoded as a sign-extended 64-bit varint.
        let id_value = req_id as i64 as u64;
        let id_len = 1 + prost::encoding::encoded_len_varint(id_value);
        buf.reserve(8 + id_len + self.tail.len());
        buf.put_u32((4 + id_len + self.tail.len()) as u32);
        buf.put_i32(self.logical_id + PROTOBUF_OFFSET);
        buf.put_u8(0x08); // field 1, wire type varint
        prost::encoding::encode_varint(id_value, buf);
        buf.put_slice(&self.tail);
    }
}

/// One inbound frame: the message id (as on the wire) and the payload after it.
#[derive(Debug)]
pub struct InboundFrame {
    /// Message id as sent, protobuf ids still carrying the +200 offset.
    pub wire_id: i32,
    /// Payload after the id.
    pub payload: Bytes,
}

/// Reads one length-prefixed body of at most `max` bytes. `Ok(None)` is a clean end of
/// stream between frames.
pub async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<BytesMut>, FrameError> {
    let mut len_buf = [0u8; 4];
    let first = reader.read(&mut len_buf).await?;
    if first == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut len_buf[first..]).await?;
    let len = u32::from_be_bytes(len_buf) as usize;
    if !(MIN_FRAME..=max).contains(&len) {
        return Err(FrameError::BadLength(len, max));
    }
    let mut body = BytesMut::zeroed(len);
    reader.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Reads one post-handshake frame.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<InboundFrame>, FrameError> {
    let Some(mut body) = read_body(reader, MAX_INBOUND_FRAME).await? else {
        return Ok(None);
    };
    // read_body enforces MIN_FRAME, the id's four bytes; the check keeps that local.
    let wire_id = body
        .try_get_i32()
        .map_err(|_| FrameError::BadLength(body.len(), MAX_INBOUND_FRAME))?;
    Ok(Some(InboundFrame {
        wire_id,
        payload: body.freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tws;

    #[test]
    fn tail_frame_matches_a_full_encoding() {
        let full = tws::TickPrice {
            req_id: Some(1_500_000_000),
            tick_type: Some(1),
            price: Some(189.5),
            size: Some("100".into()),
            attr_mask: Some(0),
        };
        let tail = TailFrame::encode(
            outbound::TICK_PRICE,
            &tws::TickPrice {
                req_id: None,
                ..full.clone()
            },
        );
        let mut buf = BytesMut::new();
        tail.write_for(1_500_000_000, &mut buf);
        assert_eq!(&buf[..], &encode(outbound::TICK_PRICE, &full)[..]);
        // The byte-level example of the wire reference: length 0x1C, id 0xC9.
        assert_eq!(&buf[..8], &[0, 0, 0, 0x1C, 0, 0, 0, 0xC9]);
    }

    #[test]
    fn negative_request_ids_use_ten_byte_varints() {
        let tail = TailFrame::encode(outbound::ERROR, &tws::ErrorMessage::default());
        let mut buf = BytesMut::new();
        tail.write_for(-1, &mut buf);
        assert_eq!(buf.len(), 8 + 1 + 10);
    }

    const REQ: i32 = 1_500_000_000;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn frames_match_the_byte_level_reference() {
        // Byte strings of the wire reference's walkthrough (tws-protocol.md §5).
        let accounts = tws::ManagedAccounts {
            accounts_list: Some("DU1234567".into()),
        };
        assert_eq!(
            &encode(outbound::MANAGED_ACCTS, &accounts)[..],
            &hex("00 00 00 0F 00 00 00 D7 0A 09 44 55 31 32 33 34 35 36 37")[..]
        );
        let next = tws::NextValidId { order_id: Some(1) };
        assert_eq!(
            &encode(outbound::NEXT_VALID_ID, &next)[..],
            &hex("00 00 00 06 00 00 00 D1 08 01")[..]
        );
        let size = tws::TickSize {
            req_id: Some(REQ),
            tick_type: Some(0),
            size: Some("300".into()),
        };
        assert_eq!(
            &encode(outbound::TICK_SIZE, &size)[..],
            &hex("00 00 00 11 00 00 00 CA 08 80 DE A0 CB 05 10 00 1A 03 33 30 30")[..]
        );
        let kind = tws::MarketDataType {
            req_id: Some(REQ),
            market_data_type: Some(1),
        };
        assert_eq!(
            &encode(outbound::MARKET_DATA_TYPE, &kind)[..],
            &hex("00 00 00 0C 00 00 01 02 08 80 DE A0 CB 05 10 01")[..]
        );
        let end = tws::TickSnapshotEnd { req_id: Some(REQ) };
        assert_eq!(
            &encode(outbound::TICK_SNAPSHOT_END, &end)[..],
            &hex("00 00 00 0A 00 00 01 01 08 80 DE A0 CB 05")[..]
        );
        let time = tws::CurrentTime {
            current_time: Some(1_735_828_200),
        };
        assert_eq!(
            &encode(outbound::CURRENT_TIME, &time)[..],
            &hex("00 00 00 0A 00 00 00 F9 08 E8 C5 DA BB 06")[..]
        );
        let notice = tws::ErrorMessage {
            id: Some(-1),
            error_code: Some(2104),
            error_msg: Some("Market data farm connection is OK:usfarm".into()),
            ..Default::default()
        };
        let mut want =
            hex("00 00 00 3C 00 00 00 CC 08 FF FF FF FF FF FF FF FF FF 01 18 B8 10 22 28");
        want.extend_from_slice(b"Market data farm connection is OK:usfarm");
        assert_eq!(&encode(outbound::ERROR, &notice)[..], &want[..]);
    }

    #[tokio::test]
    async fn rejects_oversized_and_undersized_lengths() {
        let mut oversized: &[u8] = &[0x7f, 0, 0, 0, 1, 2, 3, 4];
        assert!(matches!(
            read_frame(&mut oversized).await,
            Err(FrameError::BadLength(..))
        ));
        let mut undersized: &[u8] = &[0, 0, 0, 2, 1, 2];
        assert!(matches!(
            read_frame(&mut undersized).await,
            Err(FrameError::BadLength(..))
        ));
        let mut truncated: &[u8] = &[0, 0, 0, 8, 0, 0, 0, 0xC9];
        assert!(matches!(
            read_frame(&mut truncated).await,
            Err(FrameError::Io(_))
        ));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty).await.unwrap().is_none());
    }
}
