//! The tower plumbing every server middleware shares (auth, deadline, trace).
//!
//! Each of them is a setting cloned into a service that wraps the next one and is ready
//! when the next one is; only what happens to a request differs. That part is a
//! [`Middleware`]; the layer and the wrapping service around it are written once here so
//! the three cannot drift apart (for instance in how readiness is passed through).

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tower::{Layer, Service};

/// What a middleware answers with: the next service's response or error, boxed because
/// each middleware's future is an `async` block.
pub type MiddlewareFuture<E> = BoxFuture<'static, Result<http::Response<Body>, E>>;

/// What one middleware does to a request on its way to the next service `S`.
pub trait Middleware<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    /// Handles one request; `inner` has been polled ready.
    fn call(&self, inner: &mut S, request: http::Request<Body>) -> MiddlewareFuture<S::Error>;
}

/// The tower layer that puts middleware `M` in front of a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct MiddlewareLayer<M> {
    middleware: M,
}

impl<M> MiddlewareLayer<M> {
    /// A layer applying `middleware` to every request.
    pub fn new(middleware: M) -> MiddlewareLayer<M> {
        MiddlewareLayer { middleware }
    }
}

impl<S, M: Clone> Layer<S> for MiddlewareLayer<M> {
    type Service = Wrapped<S, M>;

    fn layer(&self, inner: S) -> Wrapped<S, M> {
        Wrapped {
            inner,
            middleware: self.middleware.clone(),
        }
    }
}

/// Service `S` with middleware `M` in front of it.
#[derive(Debug, Clone)]
pub struct Wrapped<S, M> {
    inner: S,
    middleware: M,
}

impl<S, M> Service<http::Request<Body>> for Wrapped<S, M>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    M: Middleware<S>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = MiddlewareFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.middleware.call(&mut self.inner, request)
    }
}
