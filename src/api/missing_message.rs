//! A unary call whose body holds no message at all is the caller's mistake, but tonic
//! answers it `INTERNAL` ("Missing request message."), which blames the server. This
//! middleware turns exactly that answer into `INVALID_ARGUMENT`.

use tonic::body::Body;
use tower::Service;

use super::middleware::{Middleware, MiddlewareFuture};

/// What tonic sends, percent-encoded, when a unary request carries no message.
const TONIC_MISSING: &str = "Missing%20request%20message.";

#[derive(Debug, Clone, Copy, Default)]
pub struct MissingMessage;

impl<S> Middleware<S> for MissingMessage
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    fn call(&self, inner: &mut S, request: http::Request<Body>) -> MiddlewareFuture<S::Error> {
        let future = inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            if is_missing_message(&response) {
                return Ok(
                    tonic::Status::invalid_argument("the request carries no message").into_http(),
                );
            }
            Ok(response)
        })
    }
}

/// Whether `response` is tonic's trailers-only answer to a request without a message.
fn is_missing_message(response: &http::Response<Body>) -> bool {
    let headers = response.headers();
    headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13")
        && headers
            .get("grpc-message")
            .is_some_and(|v| v.as_bytes() == TONIC_MISSING.as_bytes())
}
