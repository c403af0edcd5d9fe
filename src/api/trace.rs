//! One tracing span per RPC, and a log line when it is answered.

use tokio::time::Instant;
use tonic::body::Body;
use tower::Service;
use tracing::Instrument;

use super::middleware::{Middleware, MiddlewareFuture};

/// Wraps every request in an `rpc` span carrying the method path.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcTrace;

impl<S> Middleware<S> for RpcTrace
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    fn call(&self, inner: &mut S, request: http::Request<Body>) -> MiddlewareFuture<S::Error> {
        let span = tracing::info_span!("rpc", method = %request.uri().path());
        let started = Instant::now();
        let future = inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
                let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                match &result {
                    // A trailers-only answer (every error) carries grpc-status in the
                    // headers; a success carries it in the trailers, after the body.
                    Ok(response) => {
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("0");
                        tracing::debug!(grpc_status = code, elapsed_ms, "rpc answered");
                    }
                    Err(err) => tracing::warn!(error = %err, elapsed_ms, "rpc failed"),
                }
                result
            }
            .instrument(span),
        )
    }
}
