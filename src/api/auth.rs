//! API-key authentication and scope checks, as a tower layer in front of every service.
//!
//! Each gRPC method path maps to the access it needs ([`required_access`]); reflection
//! and health need none. A verified key is cached for a few seconds so argon2 is not
//! paid on every call, which also bounds how long a revoked key keeps working for new
//! calls; open streams re-check their key themselves ([`super::lifetime`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tonic::body::Body;
use tower::Service;

use super::middleware::{Middleware, MiddlewareFuture};

/// Who is calling, attached to every authenticated request's extensions. The stream
/// gate ([`super::lifetime`]) reads it for streams per key and to re-check the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The key's public id (`anonymous` when the server runs without keys).
    pub key_id: String,
    /// The key's label, for logs.
    pub name: String,
    /// Whether the key may use admin methods.
    pub admin: bool,
}

impl Identity {
    /// The caller of a server running without keys (loopback only, or explicitly
    /// insecure): full access, one shared stream budget.
    pub fn anonymous() -> Identity {
        Identity {
            key_id: "anonymous".to_owned(),
            name: "anonymous".to_owned(),
            admin: true,
        }
    }

    /// Whether this is the caller of a server without keys.
    pub fn is_anonymous(&self) -> bool {
        *self == Identity::anonymous()
    }
}

/// What a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (reflection, health).
    Public,
    /// A read or admin key.
    Read,
    /// An admin key.
    Admin,
}

/// Methods of `ConnectionService` a read key may call.
const CONNECTION_READ_METHODS: [&str; 4] = ["GetStatus", "WatchStatus", "ListEvents", "GetAccess"];

/// The access a gRPC method path (`/package.Service/Method`) needs. Unknown paths need
/// admin, so a service added later is closed until it is listed here.
pub fn required_access(path: &str) -> Access {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => Access::Public,
        "ibstream.v1.MarketDataService" => Access::Read,
        "ibstream.v1.ConnectionService" if CONNECTION_READ_METHODS.contains(&method) => {
            Access::Read
        }
        _ => Access::Admin,
    }
}

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejection {
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key has been revoked")]
    Revoked,
    /// The key store could not be asked.
    #[error("cannot verify the API key right now")]
    Unavailable,
}

/// Why a request was refused before it reached a service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `authorization: Bearer <key>`")]
    MissingKey,
    #[error("malformed authorization header: expected `Bearer <key>`")]
    MalformedHeader,
    #[error(transparent)]
    Rejected(#[from] KeyRejection),
    #[error("{path} needs an admin key; key {key_id} has read scope only")]
    NeedsAdmin { path: String, key_id: String },
}

/// Verifies bearer tokens (implemented over the store).
pub trait KeyVerifier: Send + Sync + 'static {
    /// Whether keys exist at all; without any, every caller is [`Identity::anonymous`].
    fn keys_required(&self) -> BoxFuture<'_, bool>;
    /// The identity a token belongs to.
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, KeyRejection>>;
    /// Whether the key `key_id` still stands (exists, not revoked). Asked every second or
    /// so for each key open streams hold ([`super::revocation`]), so it must be cheap: a
    /// look-up by id, no hash check.
    fn still_valid<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<(), KeyRejection>>;
}

/// How long a verified key is trusted without asking the store again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(3);
/// Cached keys at most; the cache is emptied when full.
const KEY_CACHE_CAPACITY: usize = 1024;

/// Shared state of the auth layer.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<dyn KeyVerifier>,
    cache: Arc<Mutex<HashMap<String, (Identity, Instant)>>>,
    ttl: Duration,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(verifier: Arc<dyn KeyVerifier>) -> Authenticator {
        Authenticator {
            verifier,
            cache: Arc::new(Mutex::new(HashMap::new())),
            ttl: KEY_CACHE_TTL,
        }
    }

    /// Decides a request from its path and `authorization` header.
    pub async fn authorize(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Option<Identity>, AuthError> {
        let access = required_access(path);
        if access == Access::Public {
            return Ok(None);
        }
        let identity = match authorization {
            None if !self.verifier.keys_required().await => Identity::anonymous(),
            None => return Err(AuthError::MissingKey),
            Some(header) => {
                let token = bearer_token(header).ok_or(AuthError::MalformedHeader)?;
                self.identify(token).await?
            }
        };
        if access == Access::Admin && !identity.admin {
            return Err(AuthError::NeedsAdmin {
                path: path.to_owned(),
                key_id: identity.key_id,
            });
        }
        Ok(Some(identity))
    }

    async fn identify(&self, token: &str) -> Result<Identity, KeyRejection> {
        let now = Instant::now();
        if let Some(identity) = self.cached(token, now) {
            return Ok(identity);
        }
        let identity = self.verifier.verify(token).await?;
        let mut cache = self.lock();
        if cache.len() >= KEY_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(token.to_owned(), (identity.clone(), now));
        Ok(identity)
    }

    /// Trusts verified keys for `ttl` instead of [`KEY_CACHE_TTL`].
    pub fn with_ttl(mut self, ttl: Duration) -> Authenticator {
        self.ttl = ttl;
        self
    }

    fn cached(&self, token: &str, now: Instant) -> Option<Identity> {
        let mut cache = self.lock();
        match cache.get(token) {
            Some((identity, at)) if now.duration_since(*at) < self.ttl => Some(identity.clone()),
            Some(_) => {
                cache.remove(token);
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Identity, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Rejects unauthenticated or under-scoped requests before they reach a service.
#[derive(Debug, Clone)]
pub struct Authorize {
    auth: Authenticator,
}

impl Authorize {
    pub fn new(auth: Authenticator) -> Authorize {
        Authorize { auth }
    }
}

impl<S> Middleware<S> for Authorize
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn call(&self, inner: &mut S, mut request: http::Request<Body>) -> MiddlewareFuture<S::Error> {
        // The clone that was polled ready serves this request; the fresh clone stays.
        let clone = inner.clone();
        let mut inner = std::mem::replace(inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match auth.authorize(&path, header.as_deref()).await {
                Ok(identity) => {
                    if let Some(identity) = identity {
                        tracing::debug!(key_id = identity.key_id.as_str(), "authorized");
                        request.extensions_mut().insert(identity);
                    }
                    inner.call(request).await
                }
                Err(refusal) => {
                    let status = tonic::Status::from(refusal);
                    tracing::info!(code = ?status.code(), reason = status.message(), "request refused");
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// The caller's identity inside a handler; `anonymous` only when the layer let the call
/// through without one (public methods).
pub fn identity_of<T>(request: &tonic::Request<T>) -> Identity {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(Identity::anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_map_to_access() {
        assert_eq!(
            required_access("/grpc.health.v1.Health/Check"),
            Access::Public
        );
        assert_eq!(
            required_access("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            Access::Public
        );
        assert_eq!(
            required_access("/ibstream.v1.ConnectionService/GetStatus"),
            Access::Read
        );
        assert_eq!(
            required_access("/ibstream.v1.ConnectionService/ListEvents"),
            Access::Read
        );
        assert_eq!(
            required_access("/ibstream.v1.ConnectionService/GetAccess"),
            Access::Read
        );
        assert_eq!(
            required_access("/ibstream.v1.ConnectionService/Connect"),
            Access::Admin
        );
        assert_eq!(
            required_access("/ibstream.v1.ConnectionService/GetSettings"),
            Access::Admin
        );
        assert_eq!(
            required_access("/ibstream.v1.MarketDataService/StreamQuotes"),
            Access::Read
        );
        assert_eq!(required_access("/other.Service/Method"), Access::Admin);
    }

    #[test]
    fn bearer_tokens_parse() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    struct OneKey {
        calls: Mutex<u32>,
        revoked: Mutex<bool>,
    }

    impl KeyVerifier for OneKey {
        fn keys_required(&self) -> BoxFuture<'_, bool> {
            Box::pin(async { true })
        }
        fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, KeyRejection>> {
            Box::pin(async move {
                *self.calls.lock().unwrap() += 1;
                if *self.revoked.lock().unwrap() {
                    return Err(KeyRejection::Revoked);
                }
                match token {
                    "read-key" => Ok(Identity {
                        key_id: "r".into(),
                        name: "reader".into(),
                        admin: false,
                    }),
                    _ => Err(KeyRejection::Invalid),
                }
            })
        }
        fn still_valid<'a>(&'a self, _key_id: &'a str) -> BoxFuture<'a, Result<(), KeyRejection>> {
            Box::pin(async move {
                match *self.revoked.lock().unwrap() {
                    true => Err(KeyRejection::Revoked),
                    false => Ok(()),
                }
            })
        }
    }

    #[tokio::test]
    async fn verified_keys_are_cached_until_the_ttl_passes() {
        let verifier = Arc::new(OneKey {
            calls: Mutex::new(0),
            revoked: Mutex::new(false),
        });
        let ttl = Duration::from_millis(20);
        let auth = Authenticator::new(verifier.clone()).with_ttl(ttl);
        let read = "/ibstream.v1.ConnectionService/GetStatus";
        assert!(auth.authorize(read, Some("Bearer read-key")).await.is_ok());
        assert!(auth.authorize(read, Some("Bearer read-key")).await.is_ok());
        assert_eq!(*verifier.calls.lock().unwrap(), 1);
        let denied = auth
            .authorize(
                "/ibstream.v1.ConnectionService/Connect",
                Some("Bearer read-key"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            tonic::Status::from(denied).code(),
            tonic::Code::PermissionDenied
        );
        *verifier.revoked.lock().unwrap() = true;
        tokio::time::sleep(ttl + Duration::from_millis(5)).await;
        let revoked = auth
            .authorize(read, Some("Bearer read-key"))
            .await
            .unwrap_err();
        assert_eq!(revoked, AuthError::Rejected(KeyRejection::Revoked));
        let missing = auth.authorize(read, None).await.unwrap_err();
        assert_eq!(
            tonic::Status::from(missing).code(),
            tonic::Code::Unauthenticated
        );
        assert!(
            auth.authorize("/grpc.health.v1.Health/Check", None)
                .await
                .is_ok()
        );
    }
}
