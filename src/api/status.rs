//! The one place where domain errors become `tonic::Status`: each with the code a client
//! can act on and a message that names what was wrong, never a secret.

use tonic::Status;

use crate::ib::{ConnectFailure, ConnectFailureKind, SessionError};

impl From<SessionError> for Status {
    fn from(err: SessionError) -> Status {
        match err {
            SessionError::Stopped => Status::unavailable("server shutting down"),
            SessionError::NotConnected => {
                Status::unavailable("not connected to IB; call Connect or wait for the reconnect")
            }
            SessionError::Cancelled => Status::aborted(err.to_string()),
            SessionError::Profile(_) => Status::failed_precondition(err.to_string()),
            SessionError::ConnectFailed(failure) => failure.into(),
        }
    }
}

impl From<ConnectFailure> for Status {
    fn from(failure: ConnectFailure) -> Status {
        let message = format!("{}; retrying in the background", failure.message);
        match failure.kind {
            ConnectFailureKind::Refused
            | ConnectFailureKind::Timeout
            | ConnectFailureKind::Other => Status::unavailable(message),
            ConnectFailureKind::ClientIdInUse | ConnectFailureKind::VersionMismatch => {
                Status::failed_precondition(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_errors_map_to_actionable_codes() {
        assert_eq!(
            Status::from(SessionError::Stopped).code(),
            tonic::Code::Unavailable
        );
        assert_eq!(
            Status::from(SessionError::NotConnected).code(),
            tonic::Code::Unavailable
        );
        let in_use = ConnectFailure {
            kind: ConnectFailureKind::ClientIdInUse,
            message: "client id 3 is already in use".into(),
        };
        let status = Status::from(SessionError::ConnectFailed(in_use));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains("client id 3"));
    }
}
