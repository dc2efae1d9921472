//! What the `segment_http` tests share: a topology around the source, a
//! client that speaks the way Segment's libraries do, raw-socket requests for
//! what a well-behaved client cannot send, and reading the events back.
//!
//! Used by `ingest.rs` and `ingest_sdk.rs`, each with
//! `mod common; mod segment_http;`.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// The write key every test topology accepts.
pub const KEY: &str = "test-write-key";
/// The bearer token every test topology accepts.
pub const TOKEN: &str = "test-webhook-token";

/// A `[sources.segment]` table listening on `port`, with `extra` lines.
pub fn source_on(port: u16, extra: &str) -> String {
    format!(
        "[sources.segment]\ntype = \"segment_http\"\nlisten = \"127.0.0.1:{port}\"\n\
         write_keys = [\"{KEY}\"]\nbearer_tokens = [\"{TOKEN}\"]\n{extra}\n"
    )
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// The `Authorization` value the official libraries send.
pub fn key_auth() -> String {
    basic(KEY, "")
}

/// An answer: status, headers we look at, and the JSON body (Null if none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

/// A blocking client for one source.
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("build an HTTP client"),
        }
    }

    /// POSTs `body` to `path` with `headers`.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .body(body.into())
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        answer(response)
    }

    /// POSTs JSON with the write key as Basic auth, like the libraries.
    pub fn send(&self, path: &str, body: &Value) -> Answer {
        let auth = key_auth();
        self.post(
            path,
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            body.to_string(),
        )
    }

    /// A request with another method.
    pub fn request(&self, method: reqwest::Method, path: &str) -> Answer {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", key_auth())
            .send()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        answer(response)
    }
}

fn answer(response: reqwest::blocking::Response) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        retry_after,
    }
}

/// Sends raw bytes on a new connection and reads the answer's status line
/// (waiting at most `timeout`); `None` if the server closed without answering.
pub fn raw_status(port: u16, bytes: &[u8], timeout: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("set timeout");
    // The server may answer (413) and close before everything is written.
    let _ = stream.write_all(bytes);
    read_status(&mut stream)
}

/// Reads until the end of the status line; `None` at EOF before it.
pub fn read_status(stream: &mut TcpStream) -> Option<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return None,
            Err(_) => return None,
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A track event with `messageId` `id` and a timestamp, as the libraries send it.
pub fn track(id: &str) -> Value {
    serde_json::json!({
        "type": "track",
        "event": "Product Viewed",
        "messageId": id,
        "anonymousId": "anon-1",
        "timestamp": "2024-03-01T10:00:00.000Z",
        "properties": {"sku": "A-1"},
    })
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// `messageId`s of events, in order.
pub fn message_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["messageId"]
                .as_str()
                .unwrap_or_else(|| panic!("no messageId in {e}"))
                .to_owned()
        })
        .collect()
}

/// Raises this process's soft open-files limit to its hard limit (children
/// inherit it); returns the new limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read a plain struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}
