//! Concurrent streams per API key and per connection: every server-streaming RPC holds a
//! permit for as long as its stream lives. A caller with a key is held to the limit per
//! key and per connection; the anonymous caller of a server without keys per connection
//! only, so one client's unread streams never lock the others out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::auth::Identity;

/// Shared by every streaming service; clones share the counts.
#[derive(Debug, Clone)]
pub struct StreamLimiter {
    /// Streams one key, or one connection, may hold at once; 0 means no limit.
    max_per_key: usize,
    open: Arc<Mutex<HashMap<Quota, usize>>>,
}

/// What one count of open streams is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Quota {
    /// An API key, by id.
    Key(String),
    /// An HTTP/2 connection, by the client's address and port.
    Connection(SocketAddr),
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quota::Key(id) => write!(f, "key {id}"),
            Quota::Connection(addr) => write!(f, "connection {addr}"),
        }
    }
}

/// A key or a connection already holds the most streams allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{quota} already has {open} open streams, the most allowed; close one first")]
pub struct StreamLimitReached {
    pub quota: Quota,
    pub open: usize,
}

/// Held by an open stream; dropping it frees its slots.
#[derive(Debug)]
pub struct StreamPermit {
    quotas: Vec<Quota>,
    open: Arc<Mutex<HashMap<Quota, usize>>>,
}

impl StreamLimiter {
    pub fn new(max_per_key: usize) -> StreamLimiter {
        StreamLimiter {
            max_per_key,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The counts a stream of `identity` over `connection` is held to: its key's unless
    /// it is anonymous, and its connection's (the anonymous caller falls back to the one
    /// shared count only where the connection is unknown).
    fn quotas(identity: &Identity, connection: Option<SocketAddr>) -> Vec<Quota> {
        let anonymous = *identity == Identity::anonymous();
        let key = (!anonymous || connection.is_none()).then(|| Quota::Key(identity.key_id.clone()));
        key.into_iter()
            .chain(connection.map(Quota::Connection))
            .collect()
    }

    /// A permit for one more stream of `identity` over `connection`, or which count is
    /// full.
    pub fn acquire(
        &self,
        identity: &Identity,
        connection: Option<SocketAddr>,
    ) -> Result<StreamPermit, StreamLimitReached> {
        let quotas = StreamLimiter::quotas(identity, connection);
        let mut open = lock(&self.open);
        if self.max_per_key > 0 {
            for quota in &quotas {
                let count = open.get(quota).copied().unwrap_or(0);
                if count >= self.max_per_key {
                    return Err(StreamLimitReached {
                        quota: quota.clone(),
                        open: count,
                    });
                }
            }
        }
        for quota in &quotas {
            *open.entry(quota.clone()).or_insert(0) += 1;
        }
        Ok(StreamPermit {
            quotas,
            open: self.open.clone(),
        })
    }

    /// Streams counted for `quota` now.
    pub fn open_streams(&self, quota: &Quota) -> usize {
        lock(&self.open).get(quota).copied().unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        for quota in &self.quotas {
            if let Some(count) = open.get_mut(quota) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(quota);
                }
            }
        }
    }
}

fn lock(m: &Mutex<HashMap<Quota, usize>>) -> std::sync::MutexGuard<'_, HashMap<Quota, usize>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Identity {
        Identity {
            key_id: id.into(),
            name: id.into(),
            admin: false,
        }
    }

    fn conn(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn permits_are_counted_per_key_and_freed_on_drop() {
        let limiter = StreamLimiter::new(2);
        let (a, b) = (key("a"), key("b"));
        let p1 = limiter.acquire(&a, conn(1)).unwrap();
        let _p2 = limiter.acquire(&a, conn(2)).unwrap();
        let err = limiter.acquire(&a, conn(3)).unwrap_err();
        assert_eq!((err.quota, err.open), (Quota::Key("a".into()), 2));
        assert!(limiter.acquire(&b, conn(3)).is_ok());
        drop(p1);
        assert_eq!(limiter.open_streams(&Quota::Key("a".into())), 1);
        assert_eq!(
            limiter.open_streams(&Quota::Connection(conn(1).unwrap())),
            0
        );
        assert!(limiter.acquire(&a, None).is_ok());
    }

    #[test]
    fn anonymous_callers_are_counted_per_connection() {
        let limiter = StreamLimiter::new(2);
        let anonymous = Identity::anonymous();
        let _held: Vec<_> = (0..2)
            .map(|_| limiter.acquire(&anonymous, conn(1)).unwrap())
            .collect();
        let err = limiter.acquire(&anonymous, conn(1)).unwrap_err();
        assert_eq!(err.quota, Quota::Connection(conn(1).unwrap()));
        assert!(err.to_string().contains("connection 127.0.0.1:1"), "{err}");
        assert!(limiter.acquire(&anonymous, conn(2)).is_ok());
        // A key is held to its connection's count too.
        assert!(limiter.acquire(&key("k"), conn(1)).is_err());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = StreamLimiter::new(0);
        let permits: Vec<_> = (0..100)
            .map(|_| limiter.acquire(&Identity::anonymous(), None).unwrap())
            .collect();
        let shared = Quota::Key("anonymous".into());
        assert_eq!(limiter.open_streams(&shared), 100);
        drop(permits);
        assert_eq!(limiter.open_streams(&shared), 0);
    }
}
