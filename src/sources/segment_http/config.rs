//! `[sources.<id>]` with `type = "segment_http"`: the raw config and its checks.
//!
//! Plain data, read with `deny_unknown_fields`; [`SegmentHttpConfig::validate`]
//! reports every problem at once, and [`SegmentHttpConfig::build`] binds the
//! listening socket (so a port already in use fails the start, and connections
//! are queued by the kernel from the moment `/ready` can answer 200).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use serde::Deserialize;

use super::SegmentHttpSource;
use crate::auth::Credentials;
use crate::component::{BuildContext, Source, REJECTED};
use crate::config::{ByteSize, ConfigDuration, FieldError};

/// When a request is answered 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledgements {
    /// 200 once the events are queued in the topology (fast; events queued at
    /// the moment of a crash are lost).
    #[default]
    Accepted,
    /// 200 only once every sink that received the events wrote them; 500 if
    /// one failed.
    Delivered,
}

/// `[sources.<id>]` with `type = "segment_http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentHttpConfig {
    /// Address to listen on, e.g. `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Accepted write keys: Basic auth user (empty password) or `writeKey` in
    /// the body. Empty strings are ignored (an unset `${VAR:-}`).
    #[serde(default)]
    pub write_keys: Vec<String>,
    /// Accepted `Authorization: Bearer` tokens, for webhook callers. Empty
    /// strings are ignored.
    #[serde(default)]
    pub bearer_tokens: Vec<String>,
    /// `accepted` (default) or `delivered`.
    #[serde(default)]
    pub acknowledgements: Acknowledgements,
    /// Largest single event, in bytes of JSON (default 32768). The body of a
    /// one-event endpoint over it is answered 413; an event of a batch over
    /// it, 400.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: ByteSize,
    /// Largest body of `/v1/batch`, `/v1/import` and `/v1/webhook`, after
    /// gunzip (default 512000); larger bodies are answered 413.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: ByteSize,
    /// Most events in one request (default 2500); more is answered 400.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// How long a request may wait for room downstream before 503 (default 5s).
    #[serde(default = "default_max_wait")]
    pub max_wait: ConfigDuration,
    /// Use the last `X-Forwarded-For` address as `context.ip` (behind a load
    /// balancer). Off by default: a client could claim any address.
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// Time a client has to send a request's body once its headers arrived
    /// (default 10s); slower bodies are answered 408 and the connection closed.
    /// Headers themselves must arrive within 5s of connecting.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: ConfigDuration,
    /// Most connections held open at once (default 10000); more wait in the
    /// kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// HTTP worker threads (default: half the cores, at least 1).
    #[serde(default)]
    pub workers: Option<usize>,
}

fn default_max_event_bytes() -> ByteSize {
    ByteSize(32 * 1024)
}

fn default_max_batch_bytes() -> ByteSize {
    ByteSize(512_000)
}

fn default_max_batch_events() -> usize {
    2500
}

fn default_max_wait() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(5))
}

fn default_read_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(10))
}

fn default_max_connections() -> usize {
    10_000
}

impl SegmentHttpConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![String::new(), REJECTED.to_owned()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.credentials().is_empty() {
            errors.push(FieldError::new(
                "write_keys",
                "no write key or bearer token is set (all are empty): every request would be \
                 refused; set write_keys = [\"...\"] or bearer_tokens = [\"...\"]",
            ));
        }
        if self.max_event_bytes.0 == 0 {
            errors.push(FieldError::new(
                "max_event_bytes",
                "max_event_bytes must be greater than 0",
            ));
        }
        if self.max_batch_bytes.0 < self.max_event_bytes.0 {
            errors.push(FieldError::new(
                "max_batch_bytes",
                format!(
                    "max_batch_bytes {} is smaller than max_event_bytes {}: a batch could not hold one event",
                    self.max_batch_bytes.0, self.max_event_bytes.0
                ),
            ));
        }
        if self.max_batch_events == 0 {
            errors.push(FieldError::new(
                "max_batch_events",
                "max_batch_events must be at least 1",
            ));
        }
        if self.max_wait.0.is_zero() {
            errors.push(FieldError::new(
                "max_wait",
                "max_wait must be greater than 0 (try \"5s\")",
            ));
        }
        if self.read_timeout.0.is_zero() {
            errors.push(FieldError::new(
                "read_timeout",
                "read_timeout must be greater than 0 (try \"10s\")",
            ));
        }
        if self.max_connections == 0 {
            errors.push(FieldError::new(
                "max_connections",
                "max_connections must be at least 1",
            ));
        }
        if self.workers == Some(0) {
            errors.push(FieldError::new("workers", "workers must be at least 1"));
        }
        errors
    }

    /// The accepted credentials, empty strings left out.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.write_keys, &self.bearer_tokens)
    }

    /// HTTP worker threads to run.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / 2).max(1)
        })
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Source>, String> {
        let listener = TcpListener::bind(self.listen)
            .map_err(|err| format!("cannot listen on {}: {err}", self.listen))?;
        // Half the shutdown budget for requests in flight, half for draining.
        let grace = cx.engine.shutdown_timeout.0 / 2;
        Ok(Box::new(SegmentHttpSource::new(
            self.clone(),
            listener,
            grace,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> SegmentHttpConfig {
        crate::config::from_table(toml.parse().unwrap()).unwrap()
    }

    #[test]
    fn defaults_match_segment_limits() {
        let c = config("listen = \"127.0.0.1:0\"\nwrite_keys = [\"k\"]");
        assert_eq!(c.max_event_bytes.0, 32 * 1024);
        assert_eq!(c.max_batch_bytes.0, 512_000);
        assert_eq!(c.max_batch_events, 2500);
        assert_eq!(c.acknowledgements, Acknowledgements::Accepted);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn every_problem_is_reported() {
        let c = config(
            "listen = \"127.0.0.1:0\"\nwrite_keys = [\"\"]\nbearer_tokens = [\"\"]\n\
             max_event_bytes = 100\nmax_batch_bytes = 10\nmax_batch_events = 0\nmax_wait = \"0s\"\nworkers = 0",
        );
        let fields: Vec<String> = c.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "write_keys",
                "max_batch_bytes",
                "max_batch_events",
                "max_wait",
                "workers"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = crate::config::from_table::<SegmentHttpConfig>(
            "listen = \"127.0.0.1:0\"\nwrite_key = \"k\""
                .parse()
                .unwrap(),
        )
        .unwrap_err();
        assert!(err.message.contains("unknown field"), "{}", err.message);
    }
}
