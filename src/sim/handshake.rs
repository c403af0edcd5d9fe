//! The text handshake: `API\0`, the client's version range, and the gateway's answer
//! (server version and connection time). Everything after it is protobuf.

use bytes::{BufMut, Bytes, BytesMut};
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::frame::{self, FrameError};

/// Oldest server version the simulator speaks: the first with protobuf for every message
/// it serves.
pub const MIN_SERVER_VERSION: i32 = 213;
/// Newest server version the simulator speaks.
pub const MAX_SERVER_VERSION: i32 = 226;

/// Longest version announcement accepted (`v213..226` plus connect options).
const MAX_VERSION_FRAME: usize = 256;

/// Why a handshake failed; the connection is closed with this reason logged.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer did not start with `API\0`.
    #[error("peer is not a TWS API client (no API\\0 prefix)")]
    NotApi,
    /// The version announcement could not be parsed.
    #[error("unreadable version announcement {0:?}")]
    BadVersion(String),
    /// The client's range and ours do not overlap.
    #[error(
        "client version range {client_min}..{client_max} does not overlap the supported {min}..{max}"
    )]
    NoOverlap {
        client_min: i32,
        client_max: i32,
        min: i32,
        max: i32,
    },
    /// The socket failed or sent a bad frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Reads `API\0` and the version range the client announces.
pub async fn read_hello<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<(i32, i32), HandshakeError> {
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .await
        .map_err(FrameError::from)?;
    if &magic != b"API\0" {
        return Err(HandshakeError::NotApi);
    }
    let body = frame::read_body(reader, MAX_VERSION_FRAME)
        .await?
        .ok_or_else(|| FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
    parse_versions(&String::from_utf8_lossy(&body))
}

/// Parses `vMIN..MAX` (optionally followed by connect options) or a single `vN`.
pub fn parse_versions(text: &str) -> Result<(i32, i32), HandshakeError> {
    let bad = || HandshakeError::BadVersion(text.to_string());
    let range = text
        .trim_end_matches('\0')
        .split_whitespace()
        .next()
        .ok_or_else(bad)?;
    let range = range.strip_prefix('v').ok_or_else(bad)?;
    let (min, max) = range.split_once("..").unwrap_or((range, range));
    let min: i32 = min.parse().map_err(|_| bad())?;
    let max: i32 = max.parse().map_err(|_| bad())?;
    if min > max {
        return Err(bad());
    }
    Ok((min, max))
}

/// Oldest version a simulator can be configured to announce (an outdated gateway).
pub const OLDEST_ANNOUNCED_VERSION: i32 = 100;

/// The highest version both sides speak, capped at `configured`. A gateway configured
/// below [`MIN_SERVER_VERSION`] plays an outdated gateway: it announces its own version
/// and leaves the refusal to the client, as a real old TWS does.
pub fn negotiate(client: (i32, i32), configured: i32) -> Result<i32, HandshakeError> {
    let max = configured.min(MAX_SERVER_VERSION);
    let no_overlap = || HandshakeError::NoOverlap {
        client_min: client.0,
        client_max: client.1,
        min: MIN_SERVER_VERSION,
        max,
    };
    if client.1 < MIN_SERVER_VERSION {
        return Err(no_overlap());
    }
    if max < MIN_SERVER_VERSION {
        return Ok(max);
    }
    let chosen = client.1.min(max);
    if chosen < client.0 {
        return Err(no_overlap());
    }
    Ok(chosen)
}

/// The handshake answer frame: server version and connection time, NUL-terminated text.
pub fn reply(version: i32, now: OffsetDateTime) -> Bytes {
    let fmt = format_description!("[year][month][day] [hour]:[minute]:[second]");
    let stamp = now.format(&fmt).unwrap_or_default();
    let text = format!("{version}\0{stamp} UTC\0");
    let mut buf = BytesMut::with_capacity(4 + text.len());
    buf.put_u32(text.len() as u32);
    buf.put_slice(text.as_bytes());
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_options() {
        assert_eq!(parse_versions("v213..226").unwrap(), (213, 226));
        assert_eq!(parse_versions("v100..176 +PACEAPI").unwrap(), (100, 176));
        assert_eq!(parse_versions("v220").unwrap(), (220, 220));
        assert!(parse_versions("213..226").is_err());
        assert!(parse_versions("v226..213").is_err());
    }

    #[test]
    fn negotiates_the_highest_common_version() {
        assert_eq!(negotiate((213, 226), 226).unwrap(), 226);
        assert_eq!(negotiate((213, 230), 226).unwrap(), 226);
        assert_eq!(negotiate((213, 226), 220).unwrap(), 220);
        assert_eq!(negotiate((100, 215), 226).unwrap(), 215);
        assert!(matches!(
            negotiate((100, 176), 226),
            Err(HandshakeError::NoOverlap { .. })
        ));
        assert!(negotiate((227, 240), 226).is_err());
        // An outdated gateway announces its version; the client refuses it.
        assert_eq!(negotiate((213, 226), 187).unwrap(), 187);
    }

    #[test]
    fn reply_is_one_text_frame() {
        let now = time::macros::datetime!(2025-01-02 09:30:00 UTC);
        let frame = reply(226, now);
        assert_eq!(&frame[4..], b"226\x0020250102 09:30:00 UTC\x00");
        assert_eq!(frame[3] as usize, frame.len() - 4);
    }
}
