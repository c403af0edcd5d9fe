//! Concurrent streams per API key: every server-streaming RPC holds a permit for as long
//! as its stream lives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::auth::Identity;

/// Shared by every streaming service; clones share the counts.
#[derive(Debug, Clone)]
pub struct StreamLimiter {
    /// Streams one key may hold at once; 0 means no limit.
    max_per_key: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// A key already holds the most streams allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key_id} already has {open} open streams, the most allowed per key; close one first")]
pub struct StreamLimitReached {
    pub key_id: String,
    pub open: usize,
}

/// Held by an open stream; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamPermit {
    key_id: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamLimiter {
    pub fn new(max_per_key: usize) -> StreamLimiter {
        StreamLimiter {
            max_per_key,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A permit for one more stream of `identity`, or how many it holds already.
    pub fn acquire(&self, identity: &Identity) -> Result<StreamPermit, StreamLimitReached> {
        let mut open = lock(&self.open);
        let count = open.entry(identity.key_id.clone()).or_insert(0);
        if self.max_per_key > 0 && *count >= self.max_per_key {
            return Err(StreamLimitReached {
                key_id: identity.key_id.clone(),
                open: *count,
            });
        }
        *count += 1;
        Ok(StreamPermit {
            key_id: identity.key_id.clone(),
            open: self.open.clone(),
        })
    }

    /// Streams `key_id` holds now.
    pub fn open_streams(&self, key_id: &str) -> usize {
        lock(&self.open).get(key_id).copied().unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.key_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key_id);
            }
        }
    }
}

fn lock(m: &Mutex<HashMap<String, usize>>) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_per_key_and_freed_on_drop() {
        let limiter = StreamLimiter::new(2);
        let a = Identity {
            key_id: "a".into(),
            name: "a".into(),
            admin: false,
        };
        let b = Identity {
            key_id: "b".into(),
            ..a.clone()
        };
        let p1 = limiter.acquire(&a).unwrap();
        let _p2 = limiter.acquire(&a).unwrap();
        let err = limiter.acquire(&a).unwrap_err();
        assert_eq!(err.open, 2);
        assert!(limiter.acquire(&b).is_ok());
        drop(p1);
        assert_eq!(limiter.open_streams("a"), 1);
        assert!(limiter.acquire(&a).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = StreamLimiter::new(0);
        let permits: Vec<_> = (0..100)
            .map(|_| limiter.acquire(&Identity::anonymous()).unwrap())
            .collect();
        assert_eq!(limiter.open_streams("anonymous"), 100);
        drop(permits);
        assert_eq!(limiter.open_streams("anonymous"), 0);
    }
}
