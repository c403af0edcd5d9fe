//! One tracing span per RPC, and a log line when it is answered.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::time::Instant;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

/// Wraps every request in an `rpc` span carrying the method path.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcTraceLayer;

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> RpcTrace<S> {
        RpcTrace { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcTrace<S> {
    inner: S,
}

impl<S> Service<http::Request<Body>> for RpcTrace<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let span = tracing::info_span!("rpc", method = %request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
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
