//! Errors the session reports to its callers.

use super::connector::ConnectFailure;

/// Why a session request did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server is shutting down; the session takes no more requests.
    #[error("the IB session is shutting down")]
    Stopped,
    /// The connection attempt failed; the session keeps retrying in the background.
    #[error("{0}")]
    ConnectFailed(ConnectFailure),
    /// The active profile could not be read.
    #[error("cannot read the active profile: {0}")]
    Profile(String),
    /// A disconnect request overtook the connect.
    #[error("the connect was cancelled by a disconnect request")]
    Cancelled,
    /// The request needs a live session and there is none.
    #[error("not connected to IB")]
    NotConnected,
}
