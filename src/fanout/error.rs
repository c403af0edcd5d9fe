//! Errors of the fan-out and the contract look-ups, mapped to gRPC codes in `api::status`.

use std::time::Duration;

use super::source::SourceError;

/// Why a market-data request could not be served.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error(
        "{0}; live market data is not permitted for this instrument: ask with data_policy DATA_POLICY_LIVE_OR_DELAYED or switch the profile's market_data_type to delayed"
    )]
    NoPermission(String),
    #[error(
        "market-data line budget exhausted: {in_use} of {budget} lines in use, {free} free, {requested} more needed"
    )]
    LineBudget {
        in_use: usize,
        budget: usize,
        free: usize,
        requested: usize,
    },
    #[error("IB refused the request, its market-data line limit was reached: {0}")]
    IbLineLimit(String),
    #[error("IB did not answer within {0:?}")]
    Deadline(Duration),
    #[error("no session with IB; the request can be retried once the session is back")]
    Unavailable,
    #[error("IB error {code}: {message}")]
    Ib { code: i32, message: String },
}

impl FanoutError {
    /// An `INVALID_ARGUMENT` naming the offending field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> FanoutError {
        FanoutError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field of an `InvalidArgument` with the path of its parent message.
    pub fn in_field(self, parent: &str) -> FanoutError {
        match self {
            FanoutError::InvalidArgument { field, reason } => FanoutError::InvalidArgument {
                field: format!("{parent}.{field}"),
                reason,
            },
            other => other,
        }
    }
}

impl From<SourceError> for FanoutError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::LinkDown => FanoutError::Unavailable,
            SourceError::NotFound(m) => FanoutError::NotFound(m),
            SourceError::NoPermission(m) => FanoutError::NoPermission(m),
            SourceError::LineLimit(m) => FanoutError::IbLineLimit(m),
            SourceError::Deadline(d) => FanoutError::Deadline(d),
            SourceError::Ib { code, message } => FanoutError::Ib { code, message },
        }
    }
}
