//! A server-side deadline for unary calls.
//!
//! The deadline covers the handler's future, which for a server stream resolves as soon
//! as the stream is handed back: streams are never cut, only slow unary answers (and
//! slow stream set-ups) are. Expiry answers `DEADLINE_EXCEEDED`, naming the limit.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::body::Body;
use tower::{Layer, Service};

#[derive(Debug, Clone, Copy)]
pub struct UnaryDeadlineLayer {
    limit: Duration,
}

impl UnaryDeadlineLayer {
    pub fn new(limit: Duration) -> UnaryDeadlineLayer {
        UnaryDeadlineLayer { limit }
    }
}

impl<S> Layer<S> for UnaryDeadlineLayer {
    type Service = UnaryDeadline<S>;

    fn layer(&self, inner: S) -> UnaryDeadline<S> {
        UnaryDeadline {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Debug, Clone)]
pub struct UnaryDeadline<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<http::Request<Body>> for UnaryDeadline<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let limit = self.limit;
        let path = request.uri().path().to_owned();
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, future).await {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "{path} took longer than the server's {limit:?} limit for unary calls"
                ))
                .into_http()),
            }
        })
    }
}
