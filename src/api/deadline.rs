//! A server-side deadline for unary calls.
//!
//! The deadline covers the handler's future, which for a server stream resolves as soon
//! as the stream is handed back: streams are never cut, only slow unary answers (and
//! slow stream set-ups) are. Expiry answers `DEADLINE_EXCEEDED`, naming the limit.

use std::time::Duration;

use tonic::body::Body;
use tower::Service;

use super::middleware::{Middleware, MiddlewareFuture};

/// Answers `DEADLINE_EXCEEDED` when a call's handler takes longer than the limit.
#[derive(Debug, Clone, Copy)]
pub struct UnaryDeadline {
    limit: Duration,
}

impl UnaryDeadline {
    pub fn new(limit: Duration) -> UnaryDeadline {
        UnaryDeadline { limit }
    }
}

impl<S> Middleware<S> for UnaryDeadline
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    fn call(&self, inner: &mut S, request: http::Request<Body>) -> MiddlewareFuture<S::Error> {
        let limit = self.limit;
        let path = request.uri().path().to_owned();
        let future = inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, future).await {
                Ok(result) => result,
                Err(_) => Ok(super::status::deadline_exceeded(&path, limit).into_http()),
            }
        })
    }
}
