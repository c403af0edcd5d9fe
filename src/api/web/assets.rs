//! The console's built bundle (`web/dist`), embedded in the binary so a fresh machine
//! serves it without Node. Every request that is not gRPC (or gRPC-web) is answered
//! here: GET and HEAD of an asset, 404 for a path that is none, 405 for other methods.

use http::{HeaderValue, Method, StatusCode, header};
use tonic::body::Body;
use tower::Service;

use crate::api::middleware::{Middleware, MiddlewareFuture};

/// The bundle as committed; `npm run build` in `web/` rebuilds it.
#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
struct Dist;

/// The page `/` serves.
const INDEX: &str = "index.html";

/// Answers non-gRPC requests with the console's assets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleAssets;

/// gRPC and gRPC-web requests go on to the services; everything else is the console's.
fn is_grpc(request: &http::Request<Body>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl<S> Middleware<S> for ConsoleAssets
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn call(&self, inner: &mut S, request: http::Request<Body>) -> MiddlewareFuture<S::Error> {
        if is_grpc(&request) {
            return Box::pin(inner.call(request));
        }
        let response = asset_response(&request);
        Box::pin(async move { Ok(response) })
    }
}

/// The answer to a non-gRPC request.
pub fn asset_response(request: &http::Request<Body>) -> http::Response<Body> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path().trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    let Some(file) = Dist::get(path) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let etag = etag(&file.metadata.sha256_hash());
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if head {
        (StatusCode::OK, Body::empty())
    } else {
        (StatusCode::OK, full(file.data.into_owned()))
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(kind) = HeaderValue::from_str(&content_type(file.metadata.mimetype())) {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, tag);
    }
    // Asset names carry no hash, so a browser revalidates each time (a 304 when the
    // binary serves the same bundle) and never runs a stale script after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    response
}

/// Text types say their charset; the bundle is UTF-8.
fn content_type(mime: &str) -> String {
    let text = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if text {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn etag(hash: &[u8; 32]) -> String {
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn full(bytes: Vec<u8>) -> Body {
    Body::new(http_body_util::Full::new(bytes::Bytes::from(bytes)))
}

fn plain(status: StatusCode, text: &'static str) -> http::Response<Body> {
    let mut response = http::Response::new(full(text.as_bytes().to_vec()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> http::Request<Body> {
        http::Request::get(path).body(Body::empty()).unwrap()
    }

    #[test]
    fn the_bundle_is_embedded_with_its_content_types() {
        let index = asset_response(&get("/"));
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(
            index.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let script = asset_response(&get("/assets/console.js"));
        assert_eq!(script.status(), StatusCode::OK);
        assert!(
            script.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        let style = asset_response(&get("/assets/console.css"));
        assert_eq!(
            style.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
    }

    #[test]
    fn a_known_etag_gets_not_modified() {
        let first = asset_response(&get("/"));
        let tag = first.headers()[header::ETAG].clone();
        let again = http::Request::get("/")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap();
        assert_eq!(asset_response(&again).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn unknown_paths_and_other_methods_are_refused() {
        assert_eq!(
            asset_response(&get("/nope.html")).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            asset_response(&get("/../Cargo.toml")).status(),
            StatusCode::NOT_FOUND
        );
        let post = http::Request::post("/").body(Body::empty()).unwrap();
        assert_eq!(
            asset_response(&post).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
