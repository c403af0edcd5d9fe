//! The store behind the session (active profile, connection history) and behind the
//! auth layer (API keys).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::api::auth::{Identity, KeyRejection, KeyVerifier};
use crate::api::convert::{event_kind, session_profile};
use crate::crypto::{Scope, parse_api_key_id};
use crate::ib::{SessionBackend, SessionEvent, SessionProfile};
use crate::store::{NewConnectionEvent, Store};

/// Connection events kept in the history; older ones are dropped so a server that runs
/// for months through nightly restarts and flapping farms keeps a bounded table.
pub const EVENT_HISTORY_LIMIT: u64 = 10_000;

/// How many events are recorded between two trims of the history: trimming costs a
/// query, recording is frequent only while something flaps.
const EVENTS_PER_TRIM: u64 = 100;

/// [`SessionBackend`] over the store.
#[derive(Debug, Clone)]
pub struct StoreBackend {
    store: Store,
    recorded: Arc<AtomicU64>,
    history_limit: u64,
}

impl StoreBackend {
    pub fn new(store: Store) -> StoreBackend {
        StoreBackend::with_history_limit(store, EVENT_HISTORY_LIMIT)
    }

    /// Keeps at most `history_limit` connection events.
    pub fn with_history_limit(store: Store, history_limit: u64) -> StoreBackend {
        StoreBackend {
            store,
            recorded: Arc::new(AtomicU64::new(0)),
            history_limit,
        }
    }

    async fn trim_history_now_and_then(&self) {
        if !self
            .recorded
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(EVENTS_PER_TRIM)
        {
            return;
        }
        if let Err(err) = self.store.retain_recent_events(self.history_limit).await {
            tracing::warn!(error = %err, "cannot trim the connection history");
        }
    }
}

impl SessionBackend for StoreBackend {
    fn active_profile(&self) -> BoxFuture<'_, Result<SessionProfile, String>> {
        Box::pin(async move {
            self.store
                .active_profile()
                .await
                .map(|p| session_profile(&p))
                .map_err(|e| e.to_string())
        })
    }

    fn record_event(&self, event: SessionEvent) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut row = NewConnectionEvent::now(event_kind(&event), event.message.clone());
            row.at = event.time;
            if !event.profile.is_empty() {
                row = row.with_profile(event.profile.clone());
            }
            if let Some(code) = event.code {
                row = row.with_code(code);
            }
            if let Err(err) = self.store.record_event(&row).await {
                tracing::warn!(error = %err, "cannot record a connection event");
            }
            self.trim_history_now_and_then().await;
        })
    }
}

/// How long "are there any keys" is trusted; creating the first key closes the server
/// to anonymous callers within this time.
const KEYS_PRESENT_TTL: Duration = Duration::from_secs(2);

/// [`KeyVerifier`] over the store's argon2id key hashes.
#[derive(Debug, Clone)]
pub struct StoreKeys {
    store: Store,
    present: Arc<Mutex<Option<(bool, Instant)>>>,
}

impl StoreKeys {
    pub fn new(store: Store) -> StoreKeys {
        StoreKeys {
            store,
            present: Arc::new(Mutex::new(None)),
        }
    }

    async fn rejection(&self, token: &str) -> KeyRejection {
        let Some(id) = parse_api_key_id(token) else {
            return KeyRejection::Invalid;
        };
        match self.store.api_key_by_id(id).await {
            Ok(Some(record)) if record.is_revoked() => KeyRejection::Revoked,
            Ok(_) => KeyRejection::Invalid,
            Err(_) => KeyRejection::Unavailable,
        }
    }
}

impl KeyVerifier for StoreKeys {
    fn keys_required(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let now = Instant::now();
            let cached = *self.present.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((present, at)) = cached
                && now.duration_since(at) < KEYS_PRESENT_TTL
            {
                return present;
            }
            // When the store cannot answer, fail closed: demand a key.
            let present = self.store.has_api_keys().await.unwrap_or(true);
            *self.present.lock().unwrap_or_else(|e| e.into_inner()) = Some((present, now));
            present
        })
    }

    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, KeyRejection>> {
        Box::pin(async move {
            match self.store.authenticate(token).await {
                Ok(Some(record)) => {
                    let store = self.store.clone();
                    let id = record.id.clone();
                    tokio::spawn(async move {
                        if let Err(err) = store.touch_api_key(&id).await {
                            tracing::debug!(error = %err, "cannot record API key use");
                        }
                    });
                    Ok(Identity {
                        name: record.name.clone().unwrap_or_else(|| record.id.clone()),
                        key_id: record.id,
                        admin: record.scope.allows(Scope::Admin),
                    })
                }
                Ok(None) => Err(self.rejection(token).await),
                Err(_) => Err(KeyRejection::Unavailable),
            }
        })
    }

    fn still_valid<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<(), KeyRejection>> {
        Box::pin(async move {
            match self.store.api_key_by_id(key_id).await {
                Ok(Some(record)) if !record.is_revoked() => Ok(()),
                Ok(Some(_)) => Err(KeyRejection::Revoked),
                Ok(None) => Err(KeyRejection::Invalid),
                Err(_) => Err(KeyRejection::Unavailable),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ib::{ConnectionState, SessionEventKind};

    fn event(n: usize) -> SessionEvent {
        SessionEvent {
            time: time::OffsetDateTime::now_utc(),
            kind: SessionEventKind::Error,
            state: ConnectionState::Reconnecting,
            profile: "default".to_owned(),
            code: None,
            message: format!("failure {n}"),
        }
    }

    #[tokio::test]
    async fn a_key_stands_until_it_is_revoked_or_gone() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let generated = crate::crypto::generate_api_key();
        let key = crate::store::NewApiKey::from_generated(&generated, None, Scope::Read);
        store.insert_api_key(&key).await.unwrap();
        let keys = StoreKeys::new(store.clone());
        assert_eq!(keys.still_valid(&key.id).await, Ok(()));
        store.revoke_api_key(&key.id).await.unwrap();
        assert_eq!(keys.still_valid(&key.id).await, Err(KeyRejection::Revoked));
        assert_eq!(keys.still_valid("nope").await, Err(KeyRejection::Invalid));
    }

    #[tokio::test]
    async fn the_history_is_trimmed_to_its_limit() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let backend = StoreBackend::with_history_limit(store.clone(), 5);
        // Trims run on the 1st, 101st and 201st event: after the 201st, five are left.
        for n in 0..=(2 * EVENTS_PER_TRIM as usize) {
            backend.record_event(event(n)).await;
        }
        let events = store.recent_events(1000).await.unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].message, "failure 200", "the newest are kept");
    }
}
