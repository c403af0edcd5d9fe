//! Fan-out errors as gRPC codes. (`tonic::Status` conversion of [`FanoutError`].)

use tonic::{Code, Status};

use crate::fanout::FanoutError;

/// The gRPC code a fan-out error maps to.
pub fn fanout_code(err: &FanoutError) -> Code {
    match err {
        FanoutError::InvalidArgument { .. } => Code::InvalidArgument,
        FanoutError::NotFound(_) => Code::NotFound,
        FanoutError::NoPermission(_) => Code::FailedPrecondition,
        FanoutError::LineBudget { .. } | FanoutError::IbLineLimit(_) => Code::ResourceExhausted,
        FanoutError::Deadline(_) => Code::DeadlineExceeded,
        FanoutError::Unavailable | FanoutError::Ib { .. } => Code::Unavailable,
    }
}

impl From<FanoutError> for Status {
    fn from(err: FanoutError) -> Status {
        Status::new(fanout_code(&err), err.to_string())
    }
}
