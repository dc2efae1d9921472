//! The running `http` sink: splits the engine's batch into request bodies by
//! encoding, sends up to `concurrency` at a time, each retried on its own
//! (see [`super`] for the contract).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};

use super::config::{Encoding, HttpAuth, HttpSinkConfig};
use crate::component::{ComponentHealth, Sink, SinkError, SinkRejection};
use crate::event::Event;

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How much of a refusing answer's body is kept in the rejection.
const BODY_KEPT: usize = 1024;

/// The running sink.
pub struct HttpSink {
    id: String,
    client: reqwest::Client,
    config: HttpSinkConfig,
    rejected: Vec<SinkRejection>,
    /// Degraded while requests are being retried (the destination fails or
    /// cannot be reached), healthy again at its next answer that is not a
    /// retryable failure; `/ready` shows it.
    health: Arc<ComponentHealth>,
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
    pub fn new(
        id: &str,
        client: reqwest::Client,
        config: HttpSinkConfig,
        health: Arc<ComponentHealth>,
    ) -> Self {
        HttpSink {
            id: id.to_owned(),
            client,
            config,
            rejected: Vec::new(),
            health,
        }
    }

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
                        self.health.set_healthy();
                        return Ok(());
                    }
                    let retryable = status.as_u16() == 429
                        || status.as_u16() == 408
                        || status.is_server_error();
                    let retry_after = retry_after(response.headers());
                    if !retryable {
                        // A refusal is an answer: the destination works.
                        self.health.set_healthy();
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
            self.health.set_degraded(why);
            let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter, from `retry_initial_backoff` up to
    /// `retry_max_backoff`.
    fn backoff(&self, attempt: u32) -> Duration {
        crate::sinks::retry::backoff(
            self.config.retry_initial_backoff.0,
            self.config.retry_max_backoff.0,
            attempt,
        )
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
    use crate::config::from_table;

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
            health: Arc::default(),
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
}
