//! The one lifetime of every server stream (`StreamQuotes`, `StreamOptionChain`,
//! `WatchStatus`): a permit per key and per connection, the `ibstream_streams_open` gauge, the end with
//! `UNAVAILABLE` when the server shuts down, and the end with `UNAUTHENTICATED` once the
//! caller's key is revoked (checked once per period and key, for all its streams, by
//! [`super::revocation`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Request, Status};

use super::auth::{Identity, KeyRejection, KeyVerifier, identity_of};
use super::limits::{StreamLimiter, StreamPermit};
use super::revocation::RevocationWatch;
use super::status::shutting_down;
use crate::metrics::Metrics;

/// A boxed server stream, as every streaming handler returns it.
pub type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// How often the keys of open streams are checked (once per key, however many streams
/// hold it). The auth layer trusts a verified key for a few seconds too, so a revoked
/// key stops everywhere in that time.
pub const KEY_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Admits server streams; shared by every streaming service. Cheap to clone.
#[derive(Clone)]
pub struct StreamGate {
    limiter: StreamLimiter,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    /// `None` outside a server: no keys, nothing to re-check.
    keys: Option<RevocationWatch>,
}

impl std::fmt::Debug for StreamGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamGate")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl StreamGate {
    /// Streams limited by `limiter`, ended by `shutdown`, counted in `metrics`, their
    /// keys re-checked with `keys`.
    pub fn new(
        limiter: StreamLimiter,
        shutdown: CancellationToken,
        metrics: Arc<Metrics>,
        keys: Arc<dyn KeyVerifier>,
    ) -> StreamGate {
        let keys = RevocationWatch::new(keys, KEY_RECHECK_INTERVAL, shutdown.clone());
        StreamGate {
            limiter,
            shutdown,
            metrics,
            keys: Some(keys),
        }
    }

    /// Streams outside a server (a service run on its own): no limit per key, no
    /// shutdown but the caller's, no keys to re-check; still counted in `metrics`.
    pub fn standalone(metrics: Arc<Metrics>) -> StreamGate {
        StreamGate {
            limiter: StreamLimiter::new(0),
            shutdown: CancellationToken::new(),
            metrics,
            keys: None,
        }
    }

    /// Takes a permit for one more stream of the caller of `request` (its key and its
    /// connection each count), before the handler
    /// does any work for it; the stream is then counted as open until it is dropped.
    pub fn admit<T>(&self, request: &Request<T>) -> Result<StreamGuard, Status> {
        let identity = identity_of(request);
        let permit = self.limiter.acquire(&identity, request.remote_addr())?;
        self.metrics.streams_open.inc();
        Ok(StreamGuard {
            gate: self.clone(),
            identity,
            _permit: permit,
        })
    }

    /// The server's shutdown signal.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The watch over the keys open streams hold; `None` outside a server.
    pub fn revocation(&self) -> Option<&RevocationWatch> {
        self.keys.as_ref()
    }
}

/// One admitted stream: holds its permit and its place in the gauge.
pub struct StreamGuard {
    gate: StreamGate,
    identity: Identity,
    _permit: StreamPermit,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.gate.metrics.streams_open.dec();
    }
}

impl StreamGuard {
    /// `data` until it ends, the client leaves, the server shuts down (a last
    /// `UNAVAILABLE`) or the key is revoked (a last `UNAUTHENTICATED`).
    pub fn wrap<T: Send + 'static>(self, data: BoxedStream<T>) -> BoxedStream<T> {
        // The anonymous caller of a server without keys has nothing to revoke.
        let refusal = match &self.gate.keys {
            Some(keys) if self.identity != Identity::anonymous() => {
                let mut key = keys.follow(&self.identity.key_id);
                let refused: BoxFuture<'static, KeyRejection> =
                    Box::pin(async move { key.refused().await });
                Some(refused)
            }
            _ => None,
        };
        Box::pin(Guarded {
            shutdown: Box::pin(self.gate.shutdown.clone().cancelled_owned()),
            refusal,
            data: Some(data),
            guard: self,
        })
    }
}

/// A stream with its lifetime's ends. A plain `Stream` rather than a combinator: it is
/// polled once per message of every stream, and moves nothing per poll.
struct Guarded<T> {
    data: Option<BoxedStream<T>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    refusal: Option<BoxFuture<'static, KeyRejection>>,
    guard: StreamGuard,
}

impl<T> Stream for Guarded<T> {
    type Item = Result<T, Status>;

    /// Shutdown wins over a refused key, and both over data.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.data.is_none() {
            return Poll::Ready(None);
        }
        if this.shutdown.as_mut().poll(cx).is_ready() {
            this.data = None;
            return Poll::Ready(Some(Err(shutting_down())));
        }
        if let Some(refusal) = &mut this.refusal
            && let Poll::Ready(rejection) = refusal.as_mut().poll(cx)
        {
            tracing::info!(
                key_id = this.guard.identity.key_id.as_str(),
                "stream ended: its API key no longer stands"
            );
            this.data = None;
            return Poll::Ready(Some(Err(rejection.into())));
        }
        let item = this.data.as_mut().map(|d| d.poll_next_unpin(cx));
        match item {
            Some(Poll::Ready(None)) | None => {
                this.data = None;
                Poll::Ready(None)
            }
            Some(other) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::revocation::testing::Counting;
    use tokio::time::Instant;

    fn request_of(key_id: &str) -> Request<()> {
        let mut request = Request::new(());
        request.extensions_mut().insert(Identity {
            key_id: key_id.into(),
            name: key_id.into(),
            admin: false,
        });
        request
    }

    fn gate(keys: Arc<Counting>, max_per_key: usize) -> (StreamGate, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let gate = StreamGate::new(
            StreamLimiter::new(max_per_key),
            CancellationToken::new(),
            metrics.clone(),
            keys,
        );
        (gate, metrics)
    }

    fn endless() -> BoxedStream<u32> {
        Box::pin(futures::stream::repeat(1).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(n)
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_key_ends_its_stream_unauthenticated_and_frees_its_place() {
        let keys = Arc::new(Counting::default());
        let (gate, metrics) = gate(keys.clone(), 1);
        let mut stream = gate.admit(&request_of("k")).unwrap().wrap(endless());
        assert_eq!(metrics.streams_open.get(), 1);
        assert!(gate.admit(&request_of("k")).is_err(), "one stream per key");
        for _ in 0..20 {
            assert!(stream.next().await.unwrap().is_ok());
        }
        keys.revoke();
        let ended = loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => break status,
                None => panic!("the stream ended without a status"),
            }
        };
        assert_eq!(ended.code(), tonic::Code::Unauthenticated);
        assert!(stream.next().await.is_none());
        drop(stream);
        assert_eq!(metrics.streams_open.get(), 0);
        assert!(gate.admit(&request_of("k")).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_a_stream_unavailable() {
        let keys = Arc::new(Counting::default());
        let (gate, _) = gate(keys, 0);
        let mut stream = gate.admit(&Request::new(())).unwrap().wrap(endless());
        assert!(stream.next().await.unwrap().is_ok());
        gate.shutdown().cancel();
        let ended = stream.next().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn streams_of_one_key_share_one_check_per_period_and_all_end_when_it_is_revoked() {
        const STREAMS: usize = 20;
        let keys = Arc::new(Counting::default());
        let (gate, metrics) = gate(keys.clone(), 0);
        let streams = (0..STREAMS).map(|_| gate.admit(&request_of("k")).unwrap().wrap(endless()));
        let mut all = futures::stream::select_all(streams);
        let periods = 5;
        let until = Instant::now() + KEY_RECHECK_INTERVAL * periods + KEY_RECHECK_INTERVAL / 2;
        while Instant::now() < until {
            assert!(all.next().await.unwrap().is_ok());
        }
        assert_eq!(
            keys.queries(),
            periods as usize,
            "one query per period for the key"
        );
        keys.revoke();
        let revoked = Instant::now();
        let mut ended = 0;
        while let Some(item) = all.next().await {
            if let Err(status) = item {
                assert_eq!(status.code(), tonic::Code::Unauthenticated);
                ended += 1;
            }
        }
        assert_eq!(ended, STREAMS, "every stream of the key ended");
        assert!(
            revoked.elapsed() <= KEY_RECHECK_INTERVAL,
            "{:?}",
            revoked.elapsed()
        );
        assert_eq!(keys.queries(), periods as usize + 1);
        assert_eq!(metrics.streams_open.get(), 0);
        tokio::task::yield_now().await;
        let watch = gate.revocation().unwrap();
        assert_eq!(
            watch.keys_watched(),
            0,
            "the key's checker ended with its streams"
        );
    }
}
