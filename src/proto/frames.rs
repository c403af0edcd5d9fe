//! Server-stream responses whose bulk was encoded before the stream took it.
//!
//! A quote update goes to every stream watching the instrument. Encoding it once
//! ([`encode_quote`]) and writing those bytes into each stream's response keeps the
//! per-stream cost to a copy: protobuf encodes a sub-message field as its bytes with a
//! length, so a `StreamQuotesResponse` can be written from a `Quote` already encoded
//! plus the stream's own `index`. Receivers decode ordinary `StreamQuotesResponse`s.

use bytes::{BufMut, Bytes};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::ibstream::v1 as pb;

/// `StreamQuotesResponse.quote` and `.index` (see `proto/ibstream/v1/market_data.proto`).
const QUOTE_FIELD: u32 = 1;
const INDEX_FIELD: u32 = 3;

/// One response of `StreamQuotes`.
// A frame lives only between a stream and its encoder, never in bulk; boxing the rare
// message would cost an allocation for each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum QuotesFrame {
    /// A quote already encoded (a `Quote` message) for the instrument at `index`.
    Quote { quote: Bytes, index: u32 },
    /// Any other response (status events), encoded when sent.
    Message(pb::StreamQuotesResponse),
}

/// A `Quote`'s bytes, to share among the streams that send it.
pub fn encode_quote(quote: &pb::Quote) -> Bytes {
    Bytes::from(quote.encode_to_vec())
}

/// A message a server stream writes itself into the response body.
pub trait Frame: Send + 'static {
    fn write_to(self, buf: &mut impl BufMut);
}

impl Frame for QuotesFrame {
    fn write_to(self, buf: &mut impl BufMut) {
        match self {
            QuotesFrame::Quote { quote, index } => {
                encode_key(QUOTE_FIELD, WireType::LengthDelimited, buf);
                encode_varint(quote.len() as u64, buf);
                buf.put_slice(&quote);
                // proto3 leaves a zero scalar out, as prost does.
                if index != 0 {
                    encode_key(INDEX_FIELD, WireType::Varint, buf);
                    encode_varint(u64::from(index), buf);
                }
            }
            // Writing into a `BufMut` that grows cannot run out of room.
            QuotesFrame::Message(m) => m.encode_raw(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote() -> pb::Quote {
        pb::Quote {
            con_id: 265598,
            symbol: "AAPL".into(),
            bid: Some(189.5),
            ask: Some(189.52),
            last: Some(189.51),
            bid_size: Some(300.0),
            sequence: 4711,
            received_at: Some(prost_types::Timestamp {
                seconds: 1_790_000_000,
                nanos: 5,
            }),
            ..pb::Quote::default()
        }
    }

    fn written(frame: QuotesFrame) -> Vec<u8> {
        let mut buf = Vec::new();
        frame.write_to(&mut buf);
        buf
    }

    #[test]
    fn a_frame_is_the_bytes_of_the_message_it_stands_for() {
        for index in [0, 1, 300, u32::MAX] {
            let message = pb::StreamQuotesResponse {
                index,
                event: Some(pb::stream_quotes_response::Event::Quote(quote())),
            };
            let frame = QuotesFrame::Quote {
                quote: encode_quote(&quote()),
                index,
            };
            let bytes = written(frame);
            assert_eq!(bytes, message.encode_to_vec(), "index {index}");
            assert_eq!(
                pb::StreamQuotesResponse::decode(&bytes[..]).unwrap(),
                message
            );
        }
    }

    #[test]
    fn a_message_frame_is_encoded_as_prost_does() {
        let message = pb::StreamQuotesResponse {
            index: 2,
            event: Some(pb::stream_quotes_response::Event::Status(
                pb::InstrumentStatus {
                    index: 2,
                    message: "stale".into(),
                    ..pb::InstrumentStatus::default()
                },
            )),
        };
        assert_eq!(
            written(QuotesFrame::Message(message.clone())),
            message.encode_to_vec()
        );
    }
}
