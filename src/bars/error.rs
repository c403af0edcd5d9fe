//! Why a bar request could not be served, mapped to gRPC codes in `api::status`.

use std::time::Duration;

use crate::fanout::FanoutError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BarsError {
    /// IB's historical pacing window is full; the same request may go after `retry_after`.
    #[error(
        "IB's historical-data pacing window is full; retry in {:.1} s or ask with wait_for_pacing",
        retry_after.as_secs_f64()
    )]
    PacingFull { retry_after: Duration },
    /// IB, the session or a request field (see [`FanoutError`]).
    #[error(transparent)]
    Source(#[from] FanoutError),
    /// The bar cache failed.
    #[error("bar cache: {0}")]
    Store(String),
}

impl crate::fanout::lookups::LookupError for BarsError {
    fn is_not_found(&self) -> bool {
        matches!(self, BarsError::Source(FanoutError::NotFound(_)))
    }

    fn unavailable() -> Self {
        BarsError::Source(FanoutError::Unavailable)
    }
}

impl BarsError {
    /// An `INVALID_ARGUMENT` naming the offending field.
    pub fn invalid(field: &str, reason: impl Into<String>) -> BarsError {
        BarsError::Source(FanoutError::invalid(field, reason))
    }
}

impl From<StoreError> for BarsError {
    fn from(e: StoreError) -> Self {
        // The store's error may carry connection details; the log keeps them.
        tracing::warn!(error = ?e, "bar cache unavailable");
        BarsError::Store("the database is unavailable".into())
    }
}
