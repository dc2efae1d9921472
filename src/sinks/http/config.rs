//! The `[sinks.<id>]` table of an `http` sink: plain data, checked by
//! [`HttpSinkConfig::validate`] (every problem at once), turned into a running
//! [`HttpSink`] by [`HttpSinkConfig::build`].

use std::time::Duration;

use serde::Deserialize;

use super::sink::HttpSink;
use crate::component::{BuildContext, Sink, REJECTED};
use crate::config::{ByteSize, ConfigDuration, FieldError};

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
        crate::sinks::install_crypto_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(self.concurrency.max(1))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(Box::new(HttpSink::new(
            cx.id,
            client,
            self.clone(),
            cx.health(),
        )))
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
            shard: None,
        };
        assert!(config("uri = \"http://h\"").build(&cx).is_ok());
    }
}
