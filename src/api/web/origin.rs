//! Which web pages may call the API. A browser names the page's origin on every
//! cross-origin call and on every POST; a page of the server's own origin (the console)
//! may call, so may the configured `web.allowed_origins`, and every other origin is
//! refused with 403 before anything runs. Refusing outright, rather than only leaving
//! out CORS headers, also stops requests a browser sends without asking first.
//!
//! The console's own origin counts only when the browser reached the server by IP
//! address or as `localhost`. A host name has to be listed: otherwise a site whose
//! name an attacker re-points at 127.0.0.1 (DNS rebinding) would be "the same origin"
//! and could drive a key-less loopback server with admin rights.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode};
use tonic::body::Body;
use tower::Service;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::api::middleware::{Middleware, MiddlewareFuture};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// Checks one configured origin: `scheme://host[:port]`, http or https, nothing after.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let uri: http::Uri = origin
        .parse()
        .map_err(|e| format!("{origin:?} is not an origin: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !origin.ends_with('/');
    if !scheme_ok || uri.authority().is_none() || !bare {
        return Err(format!(
            "{origin:?} is not an origin: expected scheme://host[:port], e.g. https://dash.example.com"
        ));
    }
    Ok(())
}

/// The origins that may call, besides the server's own.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Arc<[String]>,
}

impl OriginPolicy {
    /// A policy allowing `origins` (checked by [`check_origin`] when the config loaded).
    pub fn new(origins: &[String]) -> OriginPolicy {
        OriginPolicy {
            allowed: origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request from `origin` to `host` may proceed: the same origin (its
    /// authority is the host the request was sent to, an IP address or `localhost`) or
    /// a configured one.
    pub fn admits(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let same = origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((_, authority), host)| {
                authority.eq_ignore_ascii_case(host) && addressed_directly(host)
            });
        same || self.allowed.contains(&origin)
    }

    /// The CORS answers for configured origins: gRPC-web's request headers may be sent,
    /// its status trailers-in-headers may be read.
    pub fn cors(&self) -> CorsLayer {
        let origins: Vec<HeaderValue> = self
            .allowed
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                http::HeaderName::from_static("grpc-status"),
                http::HeaderName::from_static("grpc-message"),
                http::HeaderName::from_static("grpc-status-details-bin"),
            ])
            .max_age(PREFLIGHT_MAX_AGE)
    }
}

/// Whether `host` (a Host header: `name[:port]`, `[v6][:port]`) is an IP address or
/// `localhost`, names no DNS can re-point.
fn addressed_directly(host: &str) -> bool {
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority.host();
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok()
}

/// Refuses requests whose `Origin` the policy does not admit.
#[derive(Debug, Clone)]
pub struct OriginGuard {
    policy: OriginPolicy,
}

impl OriginGuard {
    pub fn new(policy: OriginPolicy) -> OriginGuard {
        OriginGuard { policy }
    }

    fn admits(&self, request: &http::Request<Body>) -> bool {
        let Some(origin) = request.headers().get(http::header::ORIGIN) else {
            // Not from a web page (gRPC clients, curl): nothing to guard against.
            return true;
        };
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        origin
            .to_str()
            .is_ok_and(|origin| self.policy.admits(origin, host))
    }
}

impl<S> Middleware<S> for OriginGuard
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn call(&self, inner: &mut S, request: http::Request<Body>) -> MiddlewareFuture<S::Error> {
        if self.admits(&request) {
            return Box::pin(inner.call(request));
        }
        tracing::info!(
            origin = ?request.headers().get(http::header::ORIGIN),
            path = request.uri().path(),
            "cross-origin request refused"
        );
        let mut response = http::Response::new(Body::new(http_body_util::Full::new(
            bytes::Bytes::from_static(
                b"this origin may not call the API (see web.allowed_origins)\n",
            ),
        )));
        *response.status_mut() = StatusCode::FORBIDDEN;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Box::pin(async move { Ok(response) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert!(check_origin("https://dash.example.com").is_ok());
        assert!(check_origin("http://127.0.0.1:8080").is_ok());
        for bad in [
            "dash.example.com",
            "ftp://example.com",
            "https://example.com/",
            "https://example.com/path",
            "",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_origin_and_configured_origins_are_admitted() {
        let policy = OriginPolicy::new(&["https://Dash.example.com".to_owned()]);
        assert!(policy.admits("http://127.0.0.1:5000", Some("127.0.0.1:5000")));
        assert!(policy.admits("https://dash.example.com", Some("127.0.0.1:5000")));
        assert!(!policy.admits("http://127.0.0.1:5001", Some("127.0.0.1:5000")));
        assert!(!policy.admits("https://evil.example", Some("127.0.0.1:5000")));
        assert!(!policy.admits("null", Some("127.0.0.1:5000")));
        assert!(!policy.admits("http://127.0.0.1:5000", None));
        assert!(policy.admits("http://localhost:5000", Some("localhost:5000")));
        assert!(policy.admits("http://[::1]:5000", Some("[::1]:5000")));
    }

    #[test]
    fn a_host_name_must_be_listed_even_as_the_same_origin() {
        // A rebound name reaches a loopback server with itself as Host and Origin.
        let policy = OriginPolicy::new(&["http://console.internal:5000".to_owned()]);
        assert!(!policy.admits("http://evil.example:5000", Some("evil.example:5000")));
        assert!(policy.admits(
            "http://console.internal:5000",
            Some("console.internal:5000")
        ));
    }
}
