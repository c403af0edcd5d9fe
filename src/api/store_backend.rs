//! The store behind the session (active profile, connection history) and behind the
//! auth layer (API keys).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::auth::{Identity, KeyRejection, KeyVerifier};
use crate::crypto::{Scope, parse_api_key_id};
use crate::ib::{
    ConnectionState, Endpoint, SessionBackend, SessionEvent, SessionEventKind, SessionProfile,
};
use crate::store::{NewConnectionEvent, Profile, Store};

/// The session's parameters from a stored profile.
pub fn session_profile(profile: &Profile) -> SessionProfile {
    SessionProfile {
        name: profile.name.clone(),
        endpoint: Endpoint {
            host: profile.host.clone(),
            port: profile.port,
            client_id: profile.client_id,
        },
        connection_timeout: profile.connection_timeout,
        retry_attempts: profile.retry_attempts,
        message_rate: profile.message_rate,
        market_data_type: profile.market_data_type,
    }
}

/// Event kinds as stored: a state change is stored under the state's name.
pub fn event_kind(event: &SessionEvent) -> String {
    match event.kind {
        SessionEventKind::StateChanged => event.state.as_str().to_owned(),
        SessionEventKind::Error => "error".to_owned(),
        SessionEventKind::Notice => "notice".to_owned(),
    }
}

/// The state a stored kind names, if it is a state change.
pub fn state_of_kind(kind: &str) -> Option<ConnectionState> {
    [
        ConnectionState::Disconnected,
        ConnectionState::Connecting,
        ConnectionState::Connected,
        ConnectionState::Reconnecting,
        ConnectionState::Failed,
    ]
    .into_iter()
    .find(|s| s.as_str() == kind)
}

/// [`SessionBackend`] over the store.
#[derive(Debug, Clone)]
pub struct StoreBackend {
    store: Store,
}

impl StoreBackend {
    pub fn new(store: Store) -> StoreBackend {
        StoreBackend { store }
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
}
