//! The one place where domain errors become `tonic::Status`: each with the code a client
//! can act on and a message that names what was wrong, never a secret.

use tonic::Status;

use crate::crypto::CryptoError;
use crate::ib::{ConnectFailure, ConnectFailureKind, SessionError};
use crate::store::{StoreError, ValidationError};

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

impl From<ValidationError> for Status {
    fn from(err: ValidationError) -> Status {
        Status::invalid_argument(err.to_string())
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        match err {
            StoreError::NotFound { .. } => Status::not_found(err.to_string()),
            StoreError::Conflict(_) => Status::failed_precondition(err.to_string()),
            StoreError::Invalid(invalid) => invalid.into(),
            StoreError::Corrupt { .. } => {
                tracing::error!(error = %err, "stored data is corrupt");
                Status::internal(err.to_string())
            }
            other => {
                // The source may carry connection details; it goes to the log only.
                tracing::error!(error = ?other, "database failure");
                Status::unavailable("the database is unavailable; try again")
            }
        }
    }
}

impl From<CryptoError> for Status {
    fn from(err: CryptoError) -> Status {
        match err {
            CryptoError::Store(store) => store.into(),
            other => {
                tracing::error!(error = %other, "credential sealing failed");
                Status::internal("credentials could not be sealed or opened with the master key")
            }
        }
    }
}

/// The gRPC code a market-data error maps to (also carried in per-instrument status
/// events of streams).
pub fn fanout_code(err: &crate::fanout::FanoutError) -> tonic::Code {
    use crate::fanout::FanoutError as E;
    use tonic::Code;
    match err {
        E::InvalidArgument { .. } => Code::InvalidArgument,
        E::NotFound(_) => Code::NotFound,
        E::NoPermission(_) => Code::FailedPrecondition,
        E::LineBudget { .. } | E::IbLineLimit(_) => Code::ResourceExhausted,
        E::Deadline(_) => Code::DeadlineExceeded,
        E::Unavailable | E::Ib { .. } => Code::Unavailable,
    }
}

impl From<crate::fanout::FanoutError> for Status {
    fn from(err: crate::fanout::FanoutError) -> Status {
        Status::new(fanout_code(&err), err.to_string())
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

    #[test]
    fn store_errors_map_to_actionable_codes() {
        let missing = Status::from(StoreError::NotFound {
            what: "profile",
            name: "paper".into(),
        });
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert!(missing.message().contains("paper"));
        let bad = Status::from(StoreError::Invalid(ValidationError::new(
            "port",
            "must be between 1 and 65535",
        )));
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert!(bad.message().contains("port"));
        assert_eq!(
            Status::from(StoreError::Conflict("active".into())).code(),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            Status::from(CryptoError::WrongKey).code(),
            tonic::Code::Internal
        );
    }
}
