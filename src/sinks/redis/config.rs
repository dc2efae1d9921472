//! The `[sinks.<id>]` table of a `redis` sink: plain data, checked by
//! [`RedisSinkConfig::validate`] (every problem at once), turned into a
//! running [`RedisSink`] by [`RedisSinkConfig::build`].

use std::path::PathBuf;
use std::sync::Arc;

use redis::IntoConnectionInfo;
use serde::Deserialize;

use super::pending::Pending;
use super::sink::{FlushStats, RedisSink};
use super::template::Template;
use super::writer::{self, FlushContext};
use super::RedisSinkError;
use crate::component::{BuildContext, Sink, REJECTED};
use crate::config::{ConfigDuration, FieldError};

/// What the sink does with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `INCRBY key n`.
    Counter,
    /// `HINCRBY key field n`.
    HashCounter,
}

/// What a template field that the event lacks does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Renders as the empty string (`cart::checkoutnow`).
    #[default]
    Empty,
    /// Sends the event to `rejected`, uncounted.
    Reject,
}

/// `[sinks.<id>]` with `type = "redis"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSinkConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    pub url: String,
    /// `counter` (INCRBY) or `hash_counter` (HINCRBY).
    pub mode: Mode,
    /// Key template: text with `{field.path}` placeholders.
    pub key: String,
    /// Hash field template; required by `hash_counter`, refused by `counter`.
    pub field: Option<String>,
    /// `empty` (the default) or `reject`: what a missing template field does.
    #[serde(default)]
    pub missing: Missing,
    /// How often the sums are written.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: ConfigDuration,
    /// `EXPIRE` every written key after this long; unset keeps keys forever.
    pub ttl: Option<ConfigDuration>,
    /// Distinct counters held in memory before the sink stops taking input.
    #[serde(default = "default_max_pending_keys")]
    pub max_pending_keys: usize,
    /// Time allowed to connect or to answer one request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: ConfigDuration,
    /// PEM file of the CA to trust for `rediss://` instead of the system roots.
    pub tls_ca_file: Option<PathBuf>,
}

fn default_flush_interval() -> ConfigDuration {
    ConfigDuration(std::time::Duration::from_secs(1))
}

fn default_max_pending_keys() -> usize {
    100_000
}

fn default_request_timeout() -> ConfigDuration {
    ConfigDuration(std::time::Duration::from_secs(5))
}

/// `url` with any password replaced, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl RedisSinkConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![REJECTED.to_string()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let scheme_ok = self.url.starts_with("redis://") || self.url.starts_with("rediss://");
        if !scheme_ok {
            errors.push(FieldError::new(
                "url",
                format!(
                    "url \"{}\" is not a redis:// or rediss:// URL (try \"redis://127.0.0.1:6379\")",
                    redacted(&self.url)
                ),
            ));
        } else if let Err(err) = self.url.as_str().into_connection_info() {
            errors.push(FieldError::new(
                "url",
                format!("url \"{}\" is invalid: {err}", redacted(&self.url)),
            ));
        }
        if self.tls_ca_file.is_some() && !self.url.starts_with("rediss://") {
            errors.push(FieldError::new(
                "tls_ca_file",
                "tls_ca_file is set but the url is not rediss://, so TLS is not used",
            ));
        }
        if let Err(err) = Template::parse(&self.key) {
            errors.push(FieldError::new("key", format!("key {err}")));
        }
        match (self.mode, &self.field) {
            (Mode::HashCounter, None) => errors.push(FieldError::new(
                "field",
                "mode \"hash_counter\" needs a field template (try field = \"{event}\")",
            )),
            (Mode::Counter, Some(field)) => errors.push(FieldError::new(
                "field",
                format!(
                    "field \"{field}\" is only used by mode \"hash_counter\"; mode \"counter\" increments the key itself"
                ),
            )),
            (_, Some(field)) => {
                if let Err(err) = Template::parse(field) {
                    errors.push(FieldError::new("field", format!("field {err}")));
                }
            }
            _ => {}
        }
        if self.flush_interval.0.is_zero() {
            errors.push(FieldError::new(
                "flush_interval",
                "flush_interval is 0; counts must be written periodically (try \"1s\")",
            ));
        }
        if let Some(ttl) = self.ttl {
            if ttl.0.as_secs() == 0 {
                errors.push(FieldError::new(
                    "ttl",
                    format!("ttl {ttl} is under one second, Redis's EXPIRE unit (try \"30d\")"),
                ));
            }
        }
        if self.max_pending_keys == 0 {
            errors.push(FieldError::new(
                "max_pending_keys",
                "max_pending_keys is 0, but counts must be held somewhere (try 100000)",
            ));
        }
        if self.request_timeout.0.is_zero() {
            errors.push(FieldError::new(
                "request_timeout",
                "request_timeout is 0 (try \"5s\")",
            ));
        }
        errors
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Sink>, String> {
        Ok(Box::new(self.build_sink(cx).map_err(|e| e.to_string())?))
    }

    /// The concrete sink, for benchmarks and tests that read its figures.
    pub fn build_sink(&self, cx: &BuildContext<'_>) -> Result<RedisSink, RedisSinkError> {
        let key = Template::parse(&self.key).map_err(RedisSinkError::Template)?;
        let field = match &self.field {
            Some(f) => Some(Template::parse(f).map_err(RedisSinkError::Template)?),
            None => None,
        };
        let hashed = self.mode == Mode::HashCounter;
        let ca = match &self.tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| RedisSinkError::CaFile {
                path: path.display().to_string(),
                error: e.to_string(),
            })?),
            None => None,
        };
        let client = writer::client(&self.url, ca)?;
        let flush_cx =
            FlushContext::new(cx.id, cx.health(), self.ttl.map(|t| t.0.as_secs()), hashed);
        Ok(RedisSink {
            key,
            field: if hashed { field } else { None },
            reject_missing: self.missing == Missing::Reject,
            max_pending_keys: self.max_pending_keys.max(1),
            flush_interval: self.flush_interval.0,
            client,
            request_timeout: self.request_timeout.0,
            cx: Arc::new(flush_cx),
            conn: None,
            pending: Pending::default(),
            in_flight: None,
            rejected: Vec::new(),
            buf: String::with_capacity(256),
            last_probe: None,
            stats: FlushStats::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_table;

    fn config(text: &str) -> RedisSinkConfig {
        from_table(toml::from_str(text).unwrap()).unwrap()
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn good_configs_pass() {
        let c = config("url = \"redis://u:p@127.0.0.1:6379/2\"\nmode = \"counter\"\nkey = \"{a}:{b.c}\"\nttl = \"30d\"");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let c = config("url = \"rediss://h:1\"\nmode = \"hash_counter\"\nkey = \"counts:{userId}\"\nfield = \"{event}\"\nmissing = \"reject\"");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.outputs(), vec!["rejected"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let c = config(
            "url = \"http://x\"\nmode = \"hash_counter\"\nkey = \"a{b\"\nflush_interval = \"0s\"\nttl = \"10ms\"\nmax_pending_keys = 0\ntls_ca_file = \"ca.pem\"",
        );
        assert_eq!(
            fields(c.validate()),
            vec![
                "url",
                "tls_ca_file",
                "key",
                "field",
                "flush_interval",
                "ttl",
                "max_pending_keys"
            ]
        );
        let c = config("url = \"redis://h\"\nmode = \"counter\"\nkey = \"k\"\nfield = \"{event}\"");
        assert_eq!(fields(c.validate()), vec!["field"]);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redacted("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
        let c = config("url = \"ftp://u:secret@h\"\nmode = \"counter\"\nkey = \"k\"");
        assert!(!c.validate()[0].message.contains("secret"));
    }
}
