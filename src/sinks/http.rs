//! `http` sink: POSTs events to an HTTP endpoint, one per request or in
//! batches, with bounded, backed-off retries.
//!
//! ```toml
//! [sinks.drain]
//! type = "http"
//! inputs = ["by_event.forwardable"]
//! uri = "${PUB_SUB_URL}/events/segment_drain"
//! auth = { strategy = "bearer", token = "${PUB_SUB_AUTH_TOKEN}" }  # or { strategy = "basic", user = "u", password = "p" }
//! encoding = "json"          # one event per request; "json_array" or "ndjson" batch up to max_events / max_bytes
//! concurrency = 16           # requests in flight at once
//! timeout = "10s"            # per attempt
//! success_codes = [200, 201]
//! max_retries = 8            # attempts after the first
//! ```
//!
//! Contract: `write` splits the engine's batch into requests (one per event,
//! or batches of at most `max_events` events and about `max_bytes` bytes —
//! a request never spans two engine batches), sends up to `concurrency` at a
//! time, and returns when every request has finished; so a slow endpoint
//! holds the sink, and backpressure reaches the sources, with memory bounded
//! by one batch. Each request independently:
//!
//! * an answer in `success_codes` delivers its events;
//! * 429, 408, any 5xx, a timeout or a connection error is retried after an
//!   exponential backoff with jitter (`retry_initial_backoff` doubling to
//!   `retry_max_backoff`), or after the `Retry-After` the answer gave (seconds
//!   or an HTTP date, at most 5 minutes), up to `max_retries` times; then its
//!   events are rejected with reason `retries_exhausted`;
//! * any other status is final: its events go to `rejected` with reason
//!   `http_status`, the message holding the status and the first KiB of the
//!   answer's body.
//!
//! Only the requests that failed are retried, never the batch, so an event
//! reaches an endpoint that never fails exactly once. The batch is
//! acknowledged when `write` returns: `Rejected` if any event was rejected.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use serde::Deserialize;

use crate::component::{BuildContext, Sink, SinkError, SinkRejection, REJECTED};
use crate::config::{ByteSize, ConfigDuration, FieldError};
use crate::event::Event;

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How much of a refusing answer's body is kept in the rejection.
const BODY_KEPT: usize = 1024;

/// How events are put in request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One event per request, as a JSON object.
    #[default]
    Json,
    /// A JSON array of events per request.
    JsonArray,
    /// Newline-delimited events per request.
    Ndjson,
}

/// `auth = { strategy = "bearer", token = "..." }` or `{ strategy = "basic", user, password }`.
#[derive(Clone, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    Bearer { token: String },
    Basic { user: String, password: String },
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::Bearer { .. } => f.write_str("Bearer(<redacted>)"),
            HttpAuth::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

/// `[sinks.<id>]` with `type = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// The endpoint events are POSTed to (`http://` or `https://`).
    pub uri: String,
    /// Credentials sent with every request.
    pub auth: Option<HttpAuth>,
    /// `json` (one event per request), `json_array` or `ndjson`.
    #[serde(default)]
    pub encoding: Encoding,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Time allowed for one attempt, answer included.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Statuses that mean delivered.
    #[serde(default = "default_success_codes")]
    pub success_codes: Vec<u16>,
    /// Most events in one batched request.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// A batched request is closed once its body reaches this size.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Retries of one request after its first attempt.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Wait before the first retry; doubles per retry.
    #[serde(default = "default_initial_backoff")]
    pub retry_initial_backoff: ConfigDuration,
    /// Longest wait between retries (without a `Retry-After`).
    #[serde(default = "default_max_backoff")]
    pub retry_max_backoff: ConfigDuration,
}

fn default_concurrency() -> usize {
    16
}
fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(10))
}
fn default_success_codes() -> Vec<u16> {
    vec![200, 201]
}
fn default_max_events() -> usize {
    1000
}
fn default_max_bytes() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_max_retries() -> u32 {
    8
}
fn default_initial_backoff() -> ConfigDuration {
    ConfigDuration(Duration::from_millis(100))
}
fn default_max_backoff() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(10))
}

impl HttpSinkConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![REJECTED.to_string()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match reqwest::Url::parse(&self.uri) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => errors.push(FieldError::new(
                "uri",
                format!(
                    "uri \"{}\" is not http:// or https:// (scheme \"{}\")",
                    self.uri,
                    url.scheme()
                ),
            )),
            Err(err) => errors.push(FieldError::new(
                "uri",
                format!("uri \"{}\" is not a URL: {err}", self.uri),
            )),
        }
        if self.concurrency == 0 {
            errors.push(FieldError::new(
                "concurrency",
                "concurrency is 0; at least one request must be allowed (try 16)",
            ));
        }
        if self.timeout.0.is_zero() {
            errors.push(FieldError::new("timeout", "timeout is 0 (try \"10s\")"));
        }
        if self.success_codes.is_empty() {
            errors.push(FieldError::new(
                "success_codes",
                "success_codes is empty, so nothing could ever be delivered (try [200, 201])",
            ));
        }
        for (i, code) in self.success_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                errors.push(FieldError::new(
                    format!("success_codes[{i}]"),
                    format!("{code} is not an HTTP status code"),
                ));
            }
        }
        if self.max_events == 0 {
            errors.push(FieldError::new("max_events", "max_events is 0 (try 1000)"));
        }
        if self.max_bytes.0 == 0 {
            errors.push(FieldError::new(
                "max_bytes",
                "max_bytes is 0 (try \"1MiB\")",
            ));
        }
        if self.retry_initial_backoff > self.retry_max_backoff {
            errors.push(FieldError::new(
                "retry_initial_backoff",
                format!(
                    "retry_initial_backoff {} is longer than retry_max_backoff {}",
                    self.retry_initial_backoff, self.retry_max_backoff
                ),
            ));
        }
        errors
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Sink>, String> {
        super::redis::install_crypto_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(self.concurrency.max(1))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(Box::new(HttpSink {
            id: cx.id.to_owned(),
            client,
            config: self.clone(),
            rejected: Vec::new(),
        }))
    }
}

/// The running sink.
pub struct HttpSink {
    id: String,
    client: reqwest::Client,
    config: HttpSinkConfig,
    rejected: Vec<SinkRejection>,
}

/// One request: its body and the events in it (indices into the batch).
struct Request {
    body: Vec<u8>,
    events: std::ops::Range<usize>,
}

/// Why a request was given up on.
#[derive(Debug)]
struct Refusal {
    reason: &'static str,
    message: String,
}

impl HttpSink {
    /// Splits `events` into request bodies.
    fn requests(&self, events: &[Event]) -> Vec<Request> {
        let mut requests = Vec::new();
        let mut body = Vec::new();
        let mut start = 0;
        let config = &self.config;
        for (i, event) in events.iter().enumerate() {
            match config.encoding {
                Encoding::Json => {
                    let mut body = Vec::with_capacity(256);
                    event.write_json_line(&mut body);
                    body.pop();
                    requests.push(Request {
                        body,
                        events: i..i + 1,
                    });
                    continue;
                }
                Encoding::Ndjson => event.write_json_line(&mut body),
                Encoding::JsonArray => {
                    body.push(if i == start { b'[' } else { b',' });
                    event.write_json_line(&mut body);
                    body.pop();
                }
            }
            let full =
                i + 1 - start >= config.max_events || body.len() as u64 >= config.max_bytes.0;
            if full || i + 1 == events.len() {
                if config.encoding == Encoding::JsonArray {
                    body.push(b']');
                }
                requests.push(Request {
                    body: std::mem::take(&mut body),
                    events: start..i + 1,
                });
                start = i + 1;
            }
        }
        requests
    }

    /// Sends one request until it is delivered, refused, or out of retries.
    async fn send(&self, body: Vec<u8>) -> Result<(), Refusal> {
        let config = &self.config;
        let content_type = match config.encoding {
            Encoding::Json | Encoding::JsonArray => "application/json",
            Encoding::Ndjson => "application/x-ndjson",
        };
        let mut attempt: u32 = 0;
        loop {
            let mut request = self
                .client
                .post(&config.uri)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .timeout(config.timeout.0)
                .body(body.clone());
            request = match &config.auth {
                Some(HttpAuth::Bearer { token }) => request.bearer_auth(token),
                Some(HttpAuth::Basic { user, password }) => {
                    request.basic_auth(user, Some(password))
                }
                None => request,
            };
            let (why, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if config.success_codes.contains(&status.as_u16()) {
                        return Ok(());
                    }
                    let retryable = status.as_u16() == 429
                        || status.as_u16() == 408
                        || status.is_server_error();
                    let retry_after = retry_after(response.headers());
                    if !retryable {
                        let body = first_bytes(response, BODY_KEPT).await;
                        return Err(Refusal {
                            reason: "http_status",
                            message: format!("{} answered {status}: {body}", config.uri),
                        });
                    }
                    (format!("{} answered {status}", config.uri), retry_after)
                }
                Err(err) => (format!("request to {} failed: {err}", config.uri), None),
            };
            if attempt >= config.max_retries {
                return Err(Refusal {
                    reason: "retries_exhausted",
                    message: format!("gave up after {} attempts; last: {why}", attempt + 1),
                });
            }
            crate::telemetry::destination_failing(&self.id, &why, attempt == 0, attempt);
            let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter: between half and all of
    /// `initial × 2^attempt`, at most `retry_max_backoff`.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .config
            .retry_initial_backoff
            .0
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.retry_max_backoff.0);
        full.mul_f64(0.5 + 0.5 * super::redis::writer::jitter())
    }
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Up to `limit` bytes of the body, as text.
async fn first_bytes(mut response: reqwest::Response, limit: usize) -> String {
    let mut kept = Vec::new();
    while kept.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                kept.extend_from_slice(&chunk[..chunk.len().min(limit - kept.len())])
            }
            // The body ended or broke: what was read is all there is to show.
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

impl Sink for HttpSink {
    fn write<'a>(&'a mut self, events: &'a [Event]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let requests = self.requests(events);
            let this = &*self;
            let outcomes: Vec<(std::ops::Range<usize>, Result<(), Refusal>)> =
                stream::iter(requests)
                    .map(|r| async move { (r.events, this.send(r.body).await) })
                    .buffer_unordered(self.config.concurrency.max(1))
                    .collect()
                    .await;
            for (range, outcome) in outcomes {
                if let Err(refusal) = outcome {
                    for event in &events[range] {
                        self.rejected.push(SinkRejection {
                            event: event.clone(),
                            reason: refusal.reason,
                            message: refusal.message.clone(),
                        });
                    }
                }
            }
            Ok(())
        })
    }

    fn take_rejected(&mut self) -> Vec<SinkRejection> {
        std::mem::take(&mut self.rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StateStore;
    use crate::config::{from_table, EngineConfig};

    fn config(text: &str) -> HttpSinkConfig {
        from_table(toml::from_str(text).unwrap()).unwrap()
    }

    fn sink(text: &str) -> HttpSink {
        let config = config(text);
        HttpSink {
            id: "h".into(),
            client: reqwest::Client::new(),
            config,
            rejected: Vec::new(),
        }
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::from_json(&format!("{{\"n\":{i}}}")).unwrap())
            .collect()
    }

    #[test]
    fn bodies_by_encoding() {
        let s = sink("uri = \"http://h/x\"");
        let r = s.requests(&events(2));
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].body, b"{\"n\":1}");
        let s = sink("uri = \"http://h/x\"\nencoding = \"json_array\"\nmax_events = 2");
        let r = s.requests(&events(5));
        let bodies: Vec<_> = r
            .iter()
            .map(|r| String::from_utf8(r.body.clone()).unwrap())
            .collect();
        assert_eq!(
            bodies,
            vec![
                "[{\"n\":0},{\"n\":1}]",
                "[{\"n\":2},{\"n\":3}]",
                "[{\"n\":4}]"
            ]
        );
        assert_eq!(r[2].events, 4..5);
        let s = sink("uri = \"http://h/x\"\nencoding = \"ndjson\"\nmax_bytes = \"10B\"");
        let r = s.requests(&events(3));
        assert_eq!(r.len(), 2, "a body closes once it reaches max_bytes");
        assert_eq!(r[0].body, b"{\"n\":0}\n{\"n\":1}\n");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "100000".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn validation_reports_everything() {
        let c = config("uri = \"ftp://h\"\nconcurrency = 0\nsuccess_codes = [700]\nmax_events = 0\nretry_initial_backoff = \"1m\"");
        let fields: Vec<_> = c.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![
                "uri",
                "concurrency",
                "success_codes[0]",
                "max_events",
                "retry_initial_backoff"
            ]
        );
        let c = config("uri = \"https://h/x\"\nauth = { strategy = \"bearer\", token = \"t\" }");
        assert!(c.validate().is_empty());
        assert!(!format!("{c:?}").contains("\"t\""));
        let bad: Result<HttpSinkConfig, _> = from_table(
            toml::from_str("uri = \"http://h\"\nauth = { strategy = \"digest\" }").unwrap(),
        );
        assert!(bad.is_err());
        let state = StateStore::default();
        let engine = EngineConfig::default();
        let cx = BuildContext {
            id: "h",
            engine: &engine,
            state: &state,
        };
        assert!(config("uri = \"http://h\"").build(&cx).is_ok());
    }
}
