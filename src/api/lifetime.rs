//! The one lifetime of every server stream (`StreamQuotes`, `StreamOptionChain`,
//! `WatchStatus`): a permit per key and per connection, the `ibstream_streams_open` gauge, the end with
//! `UNAVAILABLE` when the server shuts down, and the end with `UNAUTHENTICATED` once the
//! caller's key is revoked.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use super::auth::{Identity, KeyRejection, KeyVerifier, identity_of};
use super::limits::{StreamLimiter, StreamPermit};
use super::status::shutting_down;
use crate::metrics::Metrics;

/// A boxed server stream, as every streaming handler returns it.
pub type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// How often an open stream asks whether its key still stands. The auth layer trusts a
/// verified key for a few seconds too, so a revoked key stops everywhere in that time.
pub const KEY_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Admits server streams; shared by every streaming service. Cheap to clone.
#[derive(Clone)]
pub struct StreamGate {
    limiter: StreamLimiter,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    /// `None` outside a server: no keys, nothing to re-check.
    keys: Option<Arc<dyn KeyVerifier>>,
    recheck: Duration,
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
        StreamGate {
            limiter,
            shutdown,
            metrics,
            keys: Some(keys),
            recheck: KEY_RECHECK_INTERVAL,
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
            recheck: KEY_RECHECK_INTERVAL,
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

/// Why a wrapped stream ends before its data does.
enum Ending {
    Shutdown,
    Revoked(KeyRejection),
}

impl StreamGuard {
    /// `data` until it ends, the client leaves, the server shuts down (a last
    /// `UNAVAILABLE`) or the key is revoked (a last `UNAUTHENTICATED`).
    pub fn wrap<T: Send + 'static>(self, data: BoxedStream<T>) -> BoxedStream<T> {
        // The anonymous caller of a server without keys has nothing to revoke.
        let revocable = self.gate.keys.is_some() && self.identity != Identity::anonymous();
        let recheck = revocable.then(|| {
            let start = tokio::time::Instant::now() + self.gate.recheck;
            let mut every = tokio::time::interval_at(start, self.gate.recheck);
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            every
        });
        let state = Some((data, self, recheck));
        Box::pin(futures::stream::unfold(state, |state| async move {
            let (mut data, guard, mut recheck) = state?;
            match guard.next_or_end(&mut data, &mut recheck).await {
                Ok(Some(item)) => Some((item, Some((data, guard, recheck)))),
                Ok(None) => None,
                Err(Ending::Shutdown) => Some((Err(shutting_down()), None)),
                Err(Ending::Revoked(rejection)) => {
                    tracing::info!(
                        key_id = guard.identity.key_id.as_str(),
                        "stream ended: its API key no longer stands"
                    );
                    Some((Err(rejection.into()), None))
                }
            }
        }))
    }

    /// The next item of `data`, unless the stream must end first. Shutdown wins over
    /// data; the key is checked on its interval's ticks, between items.
    async fn next_or_end<T>(
        &self,
        data: &mut BoxedStream<T>,
        recheck: &mut Option<Interval>,
    ) -> Result<Option<Result<T, Status>>, Ending> {
        loop {
            tokio::select! {
                biased;
                _ = self.gate.shutdown.cancelled() => return Err(Ending::Shutdown),
                _ = tick(recheck) => self.check_key().await?,
                item = data.next() => return Ok(item),
            }
        }
    }

    async fn check_key(&self) -> Result<(), Ending> {
        let Some(keys) = &self.gate.keys else {
            return Ok(());
        };
        match keys.still_valid(&self.identity.key_id).await {
            Ok(()) => Ok(()),
            // A store that cannot answer does not end streams; the next tick asks again.
            Err(KeyRejection::Unavailable) => Ok(()),
            Err(rejection) => Err(Ending::Revoked(rejection)),
        }
    }
}

/// The next tick of `interval`, never when there is none.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Revocable(AtomicBool);

    impl KeyVerifier for Revocable {
        fn keys_required(&self) -> BoxFuture<'_, bool> {
            Box::pin(async { true })
        }
        fn verify<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Identity, KeyRejection>> {
            Box::pin(async { Err(KeyRejection::Invalid) })
        }
        fn still_valid<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), KeyRejection>> {
            let revoked = self.0.load(Ordering::SeqCst);
            Box::pin(async move {
                match revoked {
                    true => Err(KeyRejection::Revoked),
                    false => Ok(()),
                }
            })
        }
    }

    fn request_of(key_id: &str) -> Request<()> {
        let mut request = Request::new(());
        request.extensions_mut().insert(Identity {
            key_id: key_id.into(),
            name: key_id.into(),
            admin: false,
        });
        request
    }

    fn gate(keys: Arc<Revocable>, max_per_key: usize) -> (StreamGate, Arc<Metrics>) {
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
        let keys = Arc::new(Revocable(AtomicBool::new(false)));
        let (gate, metrics) = gate(keys.clone(), 1);
        let mut stream = gate.admit(&request_of("k")).unwrap().wrap(endless());
        assert_eq!(metrics.streams_open.get(), 1);
        assert!(gate.admit(&request_of("k")).is_err(), "one stream per key");
        for _ in 0..20 {
            assert!(stream.next().await.unwrap().is_ok());
        }
        keys.0.store(true, Ordering::SeqCst);
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
        let keys = Arc::new(Revocable(AtomicBool::new(false)));
        let (gate, _) = gate(keys, 0);
        let mut stream = gate.admit(&Request::new(())).unwrap().wrap(endless());
        assert!(stream.next().await.unwrap().is_ok());
        gate.shutdown().cancel();
        let ended = stream.next().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none());
    }
}
