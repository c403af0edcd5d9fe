//! The one place where domain errors become `tonic::Status`: each with the code a client
//! can act on and a message that names what was wrong, never a secret. Invalid request
//! fields, whoever finds them, read `field: reason`.

use tonic::Status;

use super::auth::{AuthError, KeyRejection};
use super::limits::StreamLimitReached;
use crate::bars::BarsError;
use crate::cluster::ForwardError;
use crate::crypto::CryptoError;
use crate::fanout::FanoutError;
use crate::ib::{ConnectFailure, ConnectFailureKind, SessionError};
use crate::store::{StoreError, ValidationError};

/// A request field that failed validation, and why: the validation error of the API's
/// own request checks (the store's [`ValidationError`] and the fan-out's
/// `InvalidArgument` become the same `INVALID_ARGUMENT` message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field's path in the request (`instruments[2].strike`, `update_mask`).
    pub field: String,
    /// What is wrong, in words a caller can act on.
    pub reason: String,
}

/// Most characters of client input an error message repeats: enough to recognise it,
/// never enough to blow the message (a gRPC status travels in a header) past its limit.
pub const QUOTE_MAX_CHARS: usize = 48;

/// Client input as an error message quotes it: in quotes and escaped, cut to
/// [`QUOTE_MAX_CHARS`] characters with the length of the whole said after it. Every
/// message that repeats what a client sent goes through here.
pub fn quoted(input: &str) -> String {
    let total = input.chars().count();
    if total <= QUOTE_MAX_CHARS {
        return format!("{input:?}");
    }
    let head: String = input.chars().take(QUOTE_MAX_CHARS).collect();
    format!("{head:?}… ({total} characters)")
}

/// An invalid request field.
pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> InvalidField {
    InvalidField {
        field: field.into(),
        reason: reason.to_string(),
    }
}

impl From<InvalidField> for Status {
    fn from(err: InvalidField) -> Status {
        Status::invalid_argument(err.to_string())
    }
}

/// How every server stream ends when the server shuts down.
pub fn shutting_down() -> Status {
    Status::unavailable("server shutting down")
}

impl From<SessionError> for Status {
    fn from(err: SessionError) -> Status {
        match err {
            SessionError::Stopped => shutting_down(),
            SessionError::NotConnected => {
                Status::unavailable("not connected to IB; call Connect or wait for the reconnect")
            }
            SessionError::Cancelled => Status::aborted(err.to_string()),
            SessionError::Profile(_) => Status::failed_precondition(err.to_string()),
            SessionError::ConnectFailed(failure) => failure.into(),
        }
    }
}

impl From<ForwardError> for Status {
    fn from(err: ForwardError) -> Status {
        match err {
            ForwardError::NoLeader | ForwardError::Unanswered(_) => {
                Status::unavailable(err.to_string())
            }
            // The leader's own answer, passed on as it gave it.
            ForwardError::Refused { code, message } => {
                Status::new(tonic::Code::from_i32(code), message)
            }
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
        invalid(err.field, err.reason).into()
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        match err {
            StoreError::NotFound { what, name } => {
                Status::not_found(format!("{what} {} not found", quoted(&name)))
            }
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
        tracing::error!(error = %err, "credential sealing failed");
        Status::internal("credentials could not be sealed or opened with the master key")
    }
}

/// The gRPC code a market-data error maps to (also carried in per-instrument status
/// events of streams).
pub fn fanout_code(err: &FanoutError) -> tonic::Code {
    use FanoutError as E;
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

impl From<FanoutError> for Status {
    fn from(err: FanoutError) -> Status {
        match err {
            FanoutError::InvalidArgument { field, reason } => invalid(field, reason).into(),
            other => Status::new(fanout_code(&other), other.to_string()),
        }
    }
}

impl From<BarsError> for Status {
    fn from(err: BarsError) -> Status {
        match err {
            BarsError::PacingFull { retry_after } => {
                let mut status = Status::resource_exhausted(err.to_string());
                // gRPC's own server pushback header: retrying clients honour it.
                if let Ok(ms) = retry_after.as_millis().to_string().parse() {
                    status.metadata_mut().insert("grpc-retry-pushback-ms", ms);
                }
                status
            }
            BarsError::Source(e) => e.into(),
            BarsError::Store(_) => Status::unavailable(err.to_string()),
        }
    }
}

impl From<KeyRejection> for Status {
    fn from(rejection: KeyRejection) -> Status {
        match rejection {
            KeyRejection::Unavailable => Status::unavailable(rejection.to_string()),
            KeyRejection::Invalid | KeyRejection::Revoked => {
                Status::unauthenticated(rejection.to_string())
            }
        }
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Status {
        match err {
            AuthError::Rejected(rejection) => rejection.into(),
            AuthError::NeedsAdmin { .. } => Status::permission_denied(err.to_string()),
            AuthError::MissingKey | AuthError::MalformedHeader => {
                Status::unauthenticated(err.to_string())
            }
        }
    }
}

impl From<StreamLimitReached> for Status {
    fn from(err: StreamLimitReached) -> Status {
        Status::resource_exhausted(err.to_string())
    }
}

/// A unary call to `path` that ran past the server's `limit`.
pub fn deadline_exceeded(path: &str, limit: std::time::Duration) -> Status {
    Status::deadline_exceeded(format!(
        "{path} took longer than the server's {limit:?} limit for unary calls"
    ))
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
        assert_eq!(bad.message(), "port: must be between 1 and 65535");
        assert_eq!(
            Status::from(StoreError::Conflict("active".into())).code(),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            Status::from(CryptoError::WrongKey).code(),
            tonic::Code::Internal
        );
    }

    #[test]
    fn quoted_input_is_cut_to_a_bounded_length() {
        assert_eq!(quoted("paper"), "\"paper\"");
        let long = "x".repeat(10_000);
        let q = quoted(&long);
        assert!(q.len() < 100, "{q}");
        assert!(q.ends_with("(10000 characters)"), "{q}");
        let missing = Status::from(StoreError::NotFound {
            what: "profile",
            name: long,
        });
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert!(missing.message().len() < 120, "{}", missing.message());
    }

    #[test]
    fn invalid_fields_read_field_colon_reason_whoever_found_them() {
        let api = Status::from(invalid("page_size", "must be at most 1000"));
        let store = Status::from(ValidationError::new("page_size", "must be at most 1000"));
        let fanout = Status::from(FanoutError::invalid("page_size", "must be at most 1000"));
        for status in [api, store, fanout] {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert_eq!(status.message(), "page_size: must be at most 1000");
        }
    }
}
