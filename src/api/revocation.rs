//! Whether the API keys that open streams hold still stand: one check of a key per
//! period, shared by every stream that holds it.
//!
//! Each stream asking the store for itself cost one query per stream per period, so a
//! client with a few hundred streams on one key made the store answer the same question
//! a few hundred times a second. Here a key held by any stream has one checker task; it
//! asks the store every period and publishes the answer, and every stream of the key
//! follows it. The checker ends, and forgets the key, when the last stream leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::auth::{KeyRejection, KeyVerifier};

/// What the last check of a key said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Standing {
    /// Not refused so far (a store that cannot answer refuses nothing).
    Stands,
    Refused(KeyRejection),
}

type Checkers = HashMap<String, Arc<watch::Sender<Standing>>>;

/// The keys open streams hold, each checked once per period. Cheap to clone.
#[derive(Clone)]
pub struct RevocationWatch {
    verifier: Arc<dyn KeyVerifier>,
    period: Duration,
    /// Ends every checker with the server.
    shutdown: CancellationToken,
    /// Keys with a checker, and where it publishes.
    checkers: Arc<Mutex<Checkers>>,
}

impl std::fmt::Debug for RevocationWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationWatch")
            .field("period", &self.period)
            .field("keys", &self.keys_watched())
            .finish_non_exhaustive()
    }
}

/// One stream's view of its key; dropping it lets the key's checker end.
#[derive(Debug)]
pub struct KeyFollower {
    standing: watch::Receiver<Standing>,
}

impl KeyFollower {
    /// Resolves once the key is refused (revoked, gone); never while it stands.
    pub async fn refused(&mut self) -> KeyRejection {
        let refused = self
            .standing
            .wait_for(|s| matches!(s, Standing::Refused(_)))
            .await
            .map(|s| s.clone());
        match refused {
            Ok(Standing::Refused(rejection)) => rejection,
            // The checker is gone only with the runtime: nothing more will be said.
            _ => std::future::pending().await,
        }
    }
}

impl RevocationWatch {
    /// Checks keys with `verifier` every `period` until `shutdown`.
    pub fn new(
        verifier: Arc<dyn KeyVerifier>,
        period: Duration,
        shutdown: CancellationToken,
    ) -> RevocationWatch {
        RevocationWatch {
            verifier,
            period,
            shutdown,
            checkers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Follows `key_id`, starting its checker if no stream holds the key yet. The first
    /// check comes within one period.
    pub fn follow(&self, key_id: &str) -> KeyFollower {
        let mut checkers = self.lock();
        if let Some(checker) = checkers.get(key_id) {
            return KeyFollower {
                standing: checker.subscribe(),
            };
        }
        let (tx, standing) = watch::channel(Standing::Stands);
        let tx = Arc::new(tx);
        checkers.insert(key_id.to_owned(), tx.clone());
        tokio::spawn(self.clone().check(key_id.to_owned(), tx));
        KeyFollower { standing }
    }

    /// How many keys have a checker (one per key some stream holds).
    pub fn keys_watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Checkers> {
        self.checkers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks about `key_id` every period and publishes the answer, while any stream
    /// follows it.
    async fn check(self, key_id: String, tx: Arc<watch::Sender<Standing>>) {
        let start = tokio::time::Instant::now() + self.period;
        let mut every = tokio::time::interval_at(start, self.period);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tx.closed() => {
                    // A stream may have followed the key since: forget it only while
                    // none does, under the lock `follow` takes.
                    let mut checkers = self.lock();
                    if tx.receiver_count() == 0 {
                        checkers.remove(&key_id);
                        return;
                    }
                    continue;
                }
                _ = every.tick() => {}
            }
            match self.verifier.still_valid(&key_id).await {
                // A store that cannot answer ends nothing; the next period asks again.
                Ok(()) | Err(KeyRejection::Unavailable) => {}
                Err(rejection) => {
                    tx.send_replace(Standing::Refused(rejection));
                }
            }
        }
        self.lock().remove(&key_id);
    }
}

/// A key verifier for tests that counts the questions it is asked.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use futures::future::BoxFuture;

    use crate::api::auth::{Identity, KeyRejection, KeyVerifier};

    /// Every key stands until [`Counting::revoke`]; `still_valid` calls are counted.
    #[derive(Default)]
    pub(crate) struct Counting {
        revoked: AtomicBool,
        queries: AtomicUsize,
    }

    impl Counting {
        pub(crate) fn revoke(&self) {
            self.revoked.store(true, Ordering::SeqCst);
        }

        /// `still_valid` calls so far.
        pub(crate) fn queries(&self) -> usize {
            self.queries.load(Ordering::SeqCst)
        }
    }

    impl KeyVerifier for Counting {
        fn keys_required(&self) -> BoxFuture<'_, bool> {
            Box::pin(async { true })
        }
        fn verify<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Identity, KeyRejection>> {
            Box::pin(async { Err(KeyRejection::Invalid) })
        }
        fn still_valid<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), KeyRejection>> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            let revoked = self.revoked.load(Ordering::SeqCst);
            Box::pin(async move {
                match revoked {
                    true => Err(KeyRejection::Revoked),
                    false => Ok(()),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Counting;
    use super::*;

    const PERIOD: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn followers_of_one_key_share_one_check_per_period() {
        let verifier = Arc::new(Counting::default());
        let watch = RevocationWatch::new(verifier.clone(), PERIOD, CancellationToken::new());
        let mut followers: Vec<_> = (0..50).map(|_| watch.follow("k")).collect();
        let other = watch.follow("other");
        assert_eq!(watch.keys_watched(), 2);
        tokio::time::sleep(PERIOD * 10 + PERIOD / 2).await;
        // Ten periods, two keys: ten checks each, whatever the number of followers.
        assert_eq!(verifier.queries(), 20);
        drop(other);
        verifier.revoke();
        let revoked_at = tokio::time::Instant::now();
        for follower in &mut followers {
            assert_eq!(follower.refused().await, KeyRejection::Revoked);
        }
        assert!(revoked_at.elapsed() <= PERIOD, "{:?}", revoked_at.elapsed());
        drop(followers);
        tokio::task::yield_now().await;
        assert_eq!(watch.keys_watched(), 0, "checkers end with their followers");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_followed_again_after_its_checker_ended_is_checked_again() {
        let verifier = Arc::new(Counting::default());
        let watch = RevocationWatch::new(verifier.clone(), PERIOD, CancellationToken::new());
        drop(watch.follow("k"));
        tokio::time::sleep(PERIOD * 3).await;
        assert_eq!(watch.keys_watched(), 0);
        assert_eq!(verifier.queries(), 0);
        let mut again = watch.follow("k");
        verifier.revoke();
        assert_eq!(again.refused().await, KeyRejection::Revoked);
        assert_eq!(verifier.queries(), 1);
    }
}
