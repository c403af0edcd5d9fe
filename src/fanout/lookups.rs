//! A cache of one kind of IB look-up that asks IB at most once for a key at a time.
//!
//! When fifty services start together and each resolves the same twenty-five symbols,
//! IB must see twenty-five look-ups, not 1,250: a look-up already in flight is joined,
//! not repeated. Answers are kept; IB's "no such contract" is kept for
//! [`NOT_FOUND_TTL`] (it may list the contract later in the day). The look-up runs as
//! a task of its own, so a caller that gives up (a client that hangs up) neither
//! cancels it for the others nor throws its answer away.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::error::FanoutError;

/// How long an answer "IB knows no such contract" is believed without asking IB again.
/// Long enough that a client repeating hundreds of unknown symbols costs no IB requests
/// (each would be a request and a cancel against the message budget); short because IB
/// lists new contracts during the day (new expiries, new listings).
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(60);

/// What a look-up's error says about keeping it.
pub trait LookupError: Clone + Send + Sync + 'static {
    /// IB knows no such thing: kept for [`NOT_FOUND_TTL`].
    fn is_not_found(&self) -> bool;
    /// The answer when the look-up's task ended without one (the runtime shut down).
    fn unavailable() -> Self;
}

impl LookupError for FanoutError {
    fn is_not_found(&self) -> bool {
        matches!(self, FanoutError::NotFound(_))
    }

    fn unavailable() -> Self {
        FanoutError::Unavailable
    }
}

type Pending<V, E> = Shared<BoxFuture<'static, Result<V, E>>>;

enum Entry<V, E> {
    Known(V),
    Missing { until: Instant, error: E },
    InFlight(Pending<V, E>),
}

/// Answers by key, with at most one look-up in flight per key.
pub struct Lookups<K, V, E = FanoutError> {
    entries: Mutex<HashMap<K, Entry<V, E>>>,
}

impl<K, V, E> Default for Lookups<K, V, E> {
    fn default() -> Self {
        Lookups {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

enum Found<V, E> {
    Now(Result<V, E>),
    Later(Pending<V, E>),
}

impl<K, V, E> Lookups<K, V, E>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: LookupError,
{
    /// The answer for `key`: kept, joined while in flight, or looked up by `fetch`.
    pub async fn get_or_fetch<F>(
        self: &Arc<Self>,
        key: &K,
        fetch: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
    {
        let found = {
            let mut entries = self.lock();
            match entries.get(key) {
                Some(Entry::Known(v)) => Found::Now(Ok(v.clone())),
                Some(Entry::Missing { until, error }) if Instant::now() < *until => {
                    Found::Now(Err(error.clone()))
                }
                Some(Entry::InFlight(pending)) => Found::Later(pending.clone()),
                _ => {
                    let pending = self.start(key.clone(), fetch());
                    entries.insert(key.clone(), Entry::InFlight(pending.clone()));
                    Found::Later(pending)
                }
            }
        };
        match found {
            Found::Now(answer) => answer,
            Found::Later(pending) => pending.await,
        }
    }

    /// The kept answer for `key`, without asking IB.
    pub fn known(&self, key: &K) -> Option<V> {
        match self.lock().get(key) {
            Some(Entry::Known(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps `value` as the answer for `key` (learnt from another look-up).
    pub fn insert(&self, key: K, value: V) {
        self.lock().insert(key, Entry::Known(value));
    }

    /// Forgets the kept answer for `key` (a look-up in flight stays): for answers kept
    /// elsewhere, where only the single flight is wanted.
    pub fn forget(&self, key: &K) {
        let mut entries = self.lock();
        if matches!(entries.get(key), Some(Entry::Known(_))) {
            entries.remove(key);
        }
    }

    /// Look-ups in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| matches!(e, Entry::InFlight(_)))
            .count()
    }

    /// Runs `fetch` as a task; its answer replaces the in-flight entry when it ends.
    fn start<F>(self: &Arc<Self>, key: K, fetch: F) -> Pending<V, E>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
    {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let answer = fetch.await;
            this.settle(key, &answer);
            answer
        });
        async move {
            // The task ends early only when the runtime shuts down: no session to ask.
            task.await.unwrap_or_else(|_| Err(E::unavailable()))
        }
        .boxed()
        .shared()
    }

    fn settle(&self, key: K, answer: &Result<V, E>) {
        let mut entries = self.lock();
        match answer {
            Ok(v) => {
                entries.insert(key, Entry::Known(v.clone()));
            }
            Err(error) if error.is_not_found() => {
                let now = Instant::now();
                // Expired answers go as new ones come, so the map holds no more misses
                // than the unknown keys asked for within one TTL.
                entries.retain(|_, e| !matches!(e, Entry::Missing { until, .. } if *until <= now));
                entries.insert(
                    key,
                    Entry::Missing {
                        until: now + NOT_FOUND_TTL,
                        error: error.clone(),
                    },
                );
            }
            // Anything else (no session, a timeout) is asked again by the next caller.
            Err(_) => {
                entries.remove(&key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V, E>>> {
        // Entries are whole values, valid even if a holder panicked.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counted(
        calls: &Arc<AtomicUsize>,
        answer: Result<u32, FanoutError>,
    ) -> impl Future<Output = Result<u32, FanoutError>> + Send + 'static {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            answer
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_asks_share_one_fetch_and_its_answer() {
        let lookups = Arc::new(Lookups::<String, u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let key = "AAPL".to_owned();
        let asks = (0..50).map(|_| lookups.get_or_fetch(&key, || counted(&calls, Ok(7))));
        let answers = futures::future::join_all(asks).await;
        assert!(answers.iter().all(|a| a == &Ok(7)), "{answers:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            lookups.get_or_fetch(&key, || counted(&calls, Ok(8))).await,
            Ok(7)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "kept, not asked again");
        assert_eq!(lookups.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_does_not_cancel_the_look_up() {
        let lookups = Arc::new(Lookups::<String, u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let key = "MSFT".to_owned();
        let abandoned = lookups.get_or_fetch(&key, || counted(&calls, Ok(3)));
        assert!(
            tokio::time::timeout(Duration::from_millis(10), abandoned)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(lookups.known(&key), Some(3), "the answer was kept");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_is_kept_for_a_while_and_other_failures_not_at_all() {
        let lookups = Arc::new(Lookups::<String, u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let unknown = "NOSUCH".to_owned();
        let missing = || Err(FanoutError::NotFound("no such symbol".into()));
        for _ in 0..3 {
            let answer = lookups
                .get_or_fetch(&unknown, || counted(&calls, missing()))
                .await;
            assert!(matches!(answer, Err(FanoutError::NotFound(_))));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(NOT_FOUND_TTL).await;
        let _ = lookups
            .get_or_fetch(&unknown, || counted(&calls, missing()))
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again once expired");

        let flaky = "FLAKY".to_owned();
        let down = || Err(FanoutError::Unavailable);
        let _ = lookups
            .get_or_fetch(&flaky, || counted(&calls, down()))
            .await;
        let _ = lookups
            .get_or_fetch(&flaky, || counted(&calls, Ok(1)))
            .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "a failed look-up is not kept"
        );
    }
}
