//! The web console on the gRPC port: gRPC-web over HTTP/1, the embedded assets, and
//! which origins may call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

// Only `start_server` is used here.
#[allow(dead_code)]
#[path = "support/server.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ibstream::api::ServerHandle;
use ibstream::config::Config;
use ibstream::ib::SessionSettings;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::store::Store;
use prost::Message;
use tempfile::TempDir;

const SECRET: &str = "web console test secret";
/// Upper bound for one HTTP exchange.
const EXCHANGE: Duration = Duration::from_secs(20);
const ALLOWED: &str = "https://dash.example.com";

/// A server with no session wanted, allowing [`ALLOWED`] besides its own origin.
async fn server() -> (TempDir, ServerHandle) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_data_dir(dir.path()).await.unwrap();
    let mut config = Config::default();
    config.web.allowed_origins = vec![ALLOWED.to_owned()];
    let server = support::start_server(&store, SECRET, config, SessionSettings::default()).await;
    (dir, server)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

/// One HTTP/1.1 request on a fresh connection.
async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Reply {
    tokio::time::timeout(EXCHANGE, async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    })
    .await
    .expect("the server answers in time")
}

fn get(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(header::HOST, addr.to_string())
        .body(Full::default())
        .unwrap()
}

/// A gRPC-web call of `method`, as a browser sends it.
fn grpc_web(addr: SocketAddr, method: &str) -> http::request::Builder {
    Request::post(format!("/ibstream.v1.ConnectionService/{method}"))
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
}

fn frame(message: &impl Message) -> Full<Bytes> {
    let payload = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&payload);
    Full::new(Bytes::from(body))
}

/// The frames of a gRPC-web response body: (flag, payload).
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "trailing bytes in a gRPC-web body");
    out
}

#[tokio::test]
async fn grpc_web_over_http1_reaches_the_api() {
    let (_dir, server) = server().await;
    let addr = server.addr();
    let request = pb::GetAccessRequest {};
    let reply = send(
        addr,
        grpc_web(addr, "GetAccess").body(frame(&request)).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/grpc-web+proto"
    );
    let frames = frames(&reply.body);
    assert_eq!(frames.len(), 2, "a message and the trailers: {frames:?}");
    let access = pb::Access::decode(frames[0].1.as_slice()).unwrap();
    // No keys in the store: the local caller is an anonymous admin.
    assert_eq!(access.scope(), pb::AccessScope::Admin);
    assert!(!access.keys_required);
    assert_eq!(frames[1].0, 0x80, "trailer frame");
    let trailers = String::from_utf8(frames[1].1.clone()).unwrap();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // A refused call keeps its status in the trailers, readable by the browser.
    let bad = pb::ListEventsRequest { page_size: -1 };
    let reply = send(
        addr,
        grpc_web(addr, "ListEvents").body(frame(&bad)).unwrap(),
    )
    .await;
    let text = format!(
        "{:?} {:?}",
        reply.headers,
        String::from_utf8_lossy(&reply.body)
    );
    assert!(text.contains("grpc-status") && text.contains('3'), "{text}");
    assert!(text.contains("page_size"), "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn assets_are_served_with_their_content_types() {
    let (_dir, server) = server().await;
    let addr = server.addr();
    let index = send(addr, get(addr, "/")).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(
        index.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(index.headers[header::CACHE_CONTROL], "no-cache");
    let page = String::from_utf8(index.body.to_vec()).unwrap();
    assert!(page.contains("/assets/console.js"), "{page}");
    assert!(page.contains("/assets/console.css"), "{page}");

    let script = send(addr, get(addr, "/assets/console.js")).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
            || script.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/javascript"),
        "{:?}",
        script.headers
    );
    assert!(script.body.len() > 1000, "the bundle is embedded");
    let style = send(addr, get(addr, "/assets/console.css")).await;
    assert_eq!(
        style.headers[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );

    // Revalidation: the same bundle answers 304 without a body.
    let tag = script.headers[header::ETAG].clone();
    let mut again = get(addr, "/assets/console.js");
    again.headers_mut().insert(header::IF_NONE_MATCH, tag);
    let again = send(addr, again).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let (_dir, server) = server().await;
    let addr = server.addr();
    for path in [
        "/nope",
        "/assets/missing.js",
        "/ibstream.v1.ConnectionService/GetAccess",
    ] {
        let reply = send(addr, get(addr, path)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let post = Request::builder()
        .method(Method::DELETE)
        .uri("/")
        .header(header::HOST, addr.to_string())
        .body(Full::default())
        .unwrap();
    assert_eq!(
        send(addr, post).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn foreign_origins_are_refused_and_configured_ones_allowed() {
    let (_dir, server) = server().await;
    let addr = server.addr();
    let request = pb::GetAccessRequest {};
    let call = |origin: &str| {
        grpc_web(addr, "GetAccess")
            .header(header::ORIGIN, origin)
            .body(frame(&request))
            .unwrap()
    };
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/ibstream.v1.ConnectionService/GetAccess")
            .header(header::HOST, addr.to_string())
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type,x-grpc-web",
            )
            .body(Full::default())
            .unwrap()
    };

    // A foreign page: refused before anything runs, preflight or not.
    let foreign = "https://evil.example";
    let refused = send(addr, call(foreign)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        !refused
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
    let refused = send(addr, preflight(foreign)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Another port of the same host is another origin.
    let neighbour = format!("http://127.0.0.1:{}", addr.port().wrapping_add(1).max(1));
    assert_eq!(
        send(addr, call(&neighbour)).await.status,
        StatusCode::FORBIDDEN
    );

    // A name re-pointed at the server (DNS rebinding) is not the console's origin,
    // though Host and Origin agree.
    let rebound = grpc_web(addr, "GetAccess")
        .header(header::HOST, format!("evil.example:{}", addr.port()))
        .header(
            header::ORIGIN,
            format!("http://evil.example:{}", addr.port()),
        )
        .body(frame(&request))
        .unwrap();
    assert_eq!(send(addr, rebound).await.status, StatusCode::FORBIDDEN);

    // The configured origin: its preflight is answered, its call allowed and readable.
    let allowed = send(addr, preflight(ALLOWED)).await;
    assert!(allowed.status.is_success(), "{}", allowed.status);
    assert_eq!(
        allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED
    );
    let allow_headers = allowed.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allow_headers.contains("authorization"), "{allow_headers}");
    let answered = send(addr, call(ALLOWED)).await;
    assert_eq!(answered.status, StatusCode::OK);
    assert_eq!(
        answered.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED
    );
    let exposed = answered.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("grpc-status"), "{exposed}");

    // The console's own origin needs no configuration.
    let own = send(addr, call(&format!("http://{addr}"))).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(frames(&own.body).len(), 2);
    server.shutdown().await.unwrap();
}
