//! Reading a `hash_counter` sink's counts back, live, for
//! `GET /v1/counts/{userId}`.
//!
//! The key is built with the sink's own key template from an event holding
//! only `userId`, so the endpoint reads exactly the hash the sink writes.
//! User ids are bounded ([`MAX_USER_ID_BYTES`]) and may not hold control
//! characters; the key travels as one RESP bulk string (`HGETALL <key>`), so
//! an id can neither inject a command nor widen the read to other keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::config::{Mode, RedisSinkConfig};
use super::template::Template;
use super::{writer, RedisSinkError};
use crate::event::Event;

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

/// Why a user id is refused before Redis is asked.
pub fn check_user_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the user id is empty".into());
    }
    if id.len() > MAX_USER_ID_BYTES {
        return Err(format!(
            "the user id is {} bytes, more than {MAX_USER_ID_BYTES}",
            id.len()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("the user id contains control characters".into());
    }
    Ok(())
}

/// Problems that make a sink unusable for the counts endpoint.
pub fn check_sink(config: &RedisSinkConfig) -> Result<(), String> {
    if config.mode != Mode::HashCounter {
        return Err("it is not a hash_counter sink".into());
    }
    let template = Template::parse(&config.key)?;
    if template.fields() != ["userId"] {
        return Err(format!(
            "its key \"{}\" must have exactly one placeholder, {{userId}}",
            config.key
        ));
    }
    Ok(())
}

/// Reads counts of one sink's hashes.
pub struct CountsReader {
    key: Template,
    client: redis::Client,
    timeout: Duration,
    conn: OnceCell<ConnectionManager>,
}

impl CountsReader {
    pub fn new(config: &RedisSinkConfig) -> Result<Arc<Self>, RedisSinkError> {
        check_sink(config).map_err(RedisSinkError::Template)?;
        let ca = match &config.tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| RedisSinkError::CaFile {
                path: path.display().to_string(),
                error: e.to_string(),
            })?),
            None => None,
        };
        Ok(Arc::new(CountsReader {
            key: Template::parse(&config.key).map_err(RedisSinkError::Template)?,
            client: writer::client(&config.url, ca)?,
            timeout: config.request_timeout.0,
            conn: OnceCell::new(),
        }))
    }

    /// The Redis key holding `user_id`'s counts.
    pub fn key_of(&self, user_id: &str) -> String {
        let mut fields = Map::new();
        fields.insert("userId".into(), Value::String(user_id.to_owned()));
        let mut key = String::new();
        // Never fails: missing fields render empty when not rejecting.
        let _ = self.key.render(&Event::from_map(fields), false, &mut key);
        key
    }

    /// `user_id`'s counts by event name; `None` when it has none.
    pub async fn counts(
        &self,
        user_id: &str,
    ) -> Result<Option<BTreeMap<String, i64>>, RedisSinkError> {
        let mut conn = self
            .conn
            .get_or_try_init(|| async { writer::connect(self.client.clone(), self.timeout) })
            .await?
            .clone();
        let counts: BTreeMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.key_of(user_id))
            .query_async(&mut conn)
            .await?;
        Ok((!counts.is_empty()).then_some(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_bounded() {
        assert!(check_user_id("u-1@example.com").is_ok());
        assert!(check_user_id("").is_err());
        assert!(check_user_id(&"x".repeat(MAX_USER_ID_BYTES + 1)).is_err());
        assert!(check_user_id("a\r\nFLUSHALL").is_err());
    }
}
