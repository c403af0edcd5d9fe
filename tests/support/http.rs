//! A plain HTTP/1.1 GET over a socket, for the metrics endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// GET `url` (http://host:port/path) over a plain socket; returns the whole response.
pub fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("URL with a path");
    let mut stream = TcpStream::connect(host).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    response
}
