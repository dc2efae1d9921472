//! `sessionize`: per-machine, event-time sessions with lateness, summaries and
//! bounded state.
//!
//! A session is unique per machine (`key`, falling back to `fallback_key`). An
//! event starts a new session when it is its machine's first, when it comes more
//! than `timeout` after the machine's previous event (exactly `timeout`
//! continues), when it is an open event (`type = "track"` and `event` in
//! `open_events`), when it comes more than `max_duration` after the session's
//! start (0 = no cap), or, with `split_daily`, when it is at or after the first
//! local midnight following the session's start. Within a machine, events are
//! ordered by time, then by `messageId` bytes.
//!
//! Contract:
//! * **Watermark.** The greatest event time seen minus `allowed_lateness`. It
//!   also advances with the wall clock while no event raises that maximum, as
//!   Bytewax's `EventClock` does: `max - allowed_lateness + (now - the first
//!   tick after the maximum was last raised)`. The advance is relative, never a
//!   jump to the wall clock, so a replay of old data is not all late. It never
//!   moves back.
//! * **Buffering.** An event waits until the watermark passes its time (its
//!   session is then final), and leaves on `""` tagged with
//!   `session = {id, seq, start}`: `id` a UUIDv5 over machine, start and first
//!   `messageId` (deterministic across runs, replays and restarts), `seq` its
//!   1-based position, `start` RFC 3339 UTC with milliseconds. So for any input
//!   in which no event is later than `allowed_lateness`, the sessions equal a
//!   batch computation's, whatever the arrival order and batch sizes.
//! * **Late.** An event older than the watermark on arrival goes to `late`
//!   unchanged except for `late_reason = "before_watermark"`.
//! * **Pass-through** (`allowed_lateness = "0s"`): events are tagged on arrival,
//!   in arrival order. An event older than its machine's last tagged event goes
//!   to `late` (`late_reason = "out_of_order"`), and one that would continue a
//!   session already closed by the watermark goes to `late`
//!   (`"session_closed"`); an equal time passes.
//! * **Summaries** on `summaries`, once a session can no longer change: the
//!   watermark passed its last event time plus `timeout` (`end_reason =
//!   "timeout"`), the machine's next session started (the reason it started:
//!   `timeout`, `open_event`, `max_duration`, `daily_split`, in that priority),
//!   more than `max_open_sessions` were open (the one whose last event is
//!   oldest closes, `evicted`), or the input ended (`end_of_input` at the end of
//!   a replay, `shutdown` otherwise; every buffered event leaves first).
//!   Fields: `session_id`, `key`, `user_id` (last non-empty `userId`, or null),
//!   `start`, `end`, `duration_ms`, `event_count`, `first_event`, `last_event`
//!   (the `event` field, else the `type`), `end_reason`.
//! * **Rejected:** `no_key`, `bad_timestamp` (not an RFC 3339 string),
//!   `future_timestamp` (more than `max_future` ahead of the wall clock, so one
//!   bad clock cannot drag the watermark forward), `duplicate` (the same
//!   `messageId` at the same time already waiting, or just tagged in
//!   pass-through mode: it is never counted twice).
//! * **State** lives in the [`StateStore`](crate::component::StateStore) under
//!   `(id, "sessions")` and survives restarts of the component; it can be
//!   snapshotted and restored ([`SessionState::snapshot`]). An event that
//!   arrives for a machine whose session was evicted starts a new session.
//! * **Bounds:** `max_open_sessions` open sessions, and `max_buffered_events`
//!   waiting events and `max_buffered_bytes` of them (an estimate of their
//!   heap: strings, keys, ~64 bytes a field) per component, divided among
//!   shards; past either of the latter the watermark moves just past the
//!   oldest waiting event until the buffer fits.
//! * **Shards:** the work is split over `shards` actors (default: one per
//!   arbiter thread) by a hash of the machine key, so one actor sees all of a
//!   machine's events in order. Each shard keeps its own watermark.
//!
//! Outputs: `""`, `summaries`, `late`, `rejected`.
//!
//! # Layout
//! * `mod.rs` — the config: fields, validation, build, partitioning.
//! * `state.rs` — [`SessionState`], the plain state struct and its rules.
//! * `transform.rs` — [`Sessionize`], the `Transform` over the state.
//! * `tests.rs` — boundary, lateness, eviction, snapshot and property tests.

mod state;
mod transform;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::component::{BuildContext, Partitioner, Transform, REJECTED};
use crate::config::units::{ByteSize, ConfigDuration};
use crate::config::FieldError;
use crate::event::{Event, FieldPath};

pub use state::{
    format_ms, next_midnight, Arrival, RestoreError, Rules, SessionSink, SessionState, END_REASONS,
    LATE_BEFORE_WATERMARK, LATE_OUT_OF_ORDER, LATE_REASON_FIELD, LATE_SESSION_CLOSED,
    SESSION_FIELD, SESSION_ID_NAMESPACE,
};
pub use transform::Sessionize;

/// The output of session summaries.
pub const SUMMARIES: &str = "summaries";
/// The output of late events.
pub const LATE: &str = "late";

/// `[transforms.<id>]` with `type = "sessionize"`.
///
/// The field paths are boxed to keep every transform's config small (the
/// config enum is as large as its largest member).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionizeConfig {
    /// The field naming the machine; default `context.device.id`.
    #[serde(default = "default_key")]
    pub key: Box<FieldPath>,
    /// Used when `key` is absent or empty; default `anonymousId`.
    #[serde(default = "default_fallback_key")]
    pub fallback_key: Box<FieldPath>,
    /// The event time, RFC 3339 with any offset; default `timestamp`.
    #[serde(default = "default_time_field")]
    pub time_field: Box<FieldPath>,
    /// The event id, which orders events of equal time and seeds session ids;
    /// default `messageId`.
    #[serde(default = "default_id_field")]
    pub id_field: Box<FieldPath>,
    /// A gap longer than this between a machine's consecutive events starts a
    /// new session; default `30m`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Track events whose `event` is one of these start a new session.
    #[serde(default)]
    pub open_events: Vec<String>,
    /// A session is cut when an event comes more than this after its start;
    /// `0s` (the default) = no cap.
    #[serde(default)]
    pub max_duration: ConfigDuration,
    /// How far behind the latest event time an event may arrive and still be
    /// sessionized exactly; default `2m`. `0s` tags events on arrival.
    #[serde(default = "default_allowed_lateness")]
    pub allowed_lateness: ConfigDuration,
    /// An IANA time zone (`Europe/Berlin`): sessions also end at local midnight.
    #[serde(default)]
    pub split_daily: Option<String>,
    /// Open sessions kept at most; beyond it the longest-idle one closes early
    /// (`evicted`). Default 2,000,000.
    #[serde(default = "default_max_open_sessions")]
    pub max_open_sessions: usize,
    /// Events waiting for the watermark kept at most; beyond it the oldest
    /// leaves early. Default 1,000,000.
    #[serde(default = "default_max_buffered_events")]
    pub max_buffered_events: usize,
    /// Estimated heap bytes of the events waiting for the watermark kept at
    /// most (an event counts its strings, keys and about 64 bytes per field);
    /// beyond it the oldest leave early, as with `max_buffered_events`.
    /// Default `512MiB`.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: ByteSize,
    /// Timestamps further than this ahead of the wall clock are rejected
    /// (`future_timestamp`); default `1d`.
    #[serde(default = "default_max_future")]
    pub max_future: ConfigDuration,
    /// Actors to split the work over by machine; default one per arbiter
    /// thread (`engine.threads`, else the number of cores).
    #[serde(default)]
    pub shards: Option<usize>,
}

fn path(text: &str) -> FieldPath {
    // Only called with literal defaults, which are valid paths.
    FieldPath::parse(text).expect("a default field path is valid")
}

fn default_key() -> Box<FieldPath> {
    Box::new(path("context.device.id"))
}

fn default_fallback_key() -> Box<FieldPath> {
    Box::new(path("anonymousId"))
}

fn default_time_field() -> Box<FieldPath> {
    Box::new(path("timestamp"))
}

fn default_id_field() -> Box<FieldPath> {
    Box::new(path("messageId"))
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30 * 60))
}

fn default_allowed_lateness() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(120))
}

fn default_max_open_sessions() -> usize {
    2_000_000
}

fn default_max_buffered_events() -> usize {
    1_000_000
}

fn default_max_buffered_bytes() -> ByteSize {
    ByteSize(512 * 1024 * 1024)
}

fn default_max_future() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(86_400))
}

/// Milliseconds of a duration, saturating (no config holds 292 million years).
fn millis(d: ConfigDuration) -> i64 {
    i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX)
}

impl SessionizeConfig {
    /// `""` for tagged events, `summaries`, `late`, then `rejected`.
    pub fn outputs(&self) -> Vec<String> {
        vec![
            String::new(),
            SUMMARIES.to_owned(),
            LATE.to_owned(),
            REJECTED.to_owned(),
        ]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.timeout.0.is_zero() {
            errors.push(FieldError::new(
                "timeout",
                "timeout 0s would end a session at every event; use a duration such as \"30m\"",
            ));
        }
        if let Some(zone) = &self.split_daily {
            if zone.parse::<chrono_tz::Tz>().is_err() {
                errors.push(FieldError::new(
                    "split_daily",
                    format!("split_daily \"{zone}\" is not an IANA time zone name (try \"Europe/Berlin\")"),
                ));
            }
        }
        if self.max_open_sessions == 0 {
            errors.push(FieldError::new(
                "max_open_sessions",
                "max_open_sessions 0 would evict every session at its first event; use at least 1",
            ));
        }
        if self.max_buffered_events == 0 {
            errors.push(FieldError::new(
                "max_buffered_events",
                "max_buffered_events 0 leaves no room to wait for late events; use at least 1, or allowed_lateness = \"0s\"",
            ));
        }
        if self.max_buffered_bytes.0 == 0 {
            errors.push(FieldError::new(
                "max_buffered_bytes",
                "max_buffered_bytes 0 leaves no room to wait for late events; use a size such as \"512MiB\", or allowed_lateness = \"0s\"",
            ));
        }
        if self.shards == Some(0) {
            errors.push(FieldError::new(
                "shards",
                "shards 0 leaves no actor to do the work; use at least 1",
            ));
        }
        for (i, name) in self.open_events.iter().enumerate() {
            if name.is_empty() {
                errors.push(FieldError::new(
                    format!("open_events[{i}]"),
                    "open event name \"\" can never match a track event; remove it",
                ));
            }
        }
        errors
    }

    /// The number of shards, given the arbiter threads.
    fn shard_count(&self, cores: usize) -> usize {
        self.shards.unwrap_or(cores).max(1)
    }

    /// With more than one shard: how many, and which one an event belongs to
    /// (by a hash of its machine key).
    pub fn partitioning(&self, cores: usize) -> Option<(usize, Partitioner)> {
        let shards = self.shard_count(cores);
        if shards <= 1 {
            return None;
        }
        let key = (*self.key).clone();
        let fallback = (*self.fallback_key).clone();
        let partitioner: Partitioner = Arc::new(move |event: &Event| {
            // No key: it is rejected on whichever shard gets it (shard 0).
            key_hash(event, &key)
                .or_else(|| key_hash(event, &fallback))
                .unwrap_or_default()
        });
        Some((shards, partitioner))
    }

    /// The pre-parsed rules of one shard.
    pub fn rules(&self, shards: usize) -> Result<Rules, String> {
        let split_daily = match &self.split_daily {
            Some(zone) => Some(
                zone.parse::<chrono_tz::Tz>()
                    .map_err(|_| format!("split_daily \"{zone}\" is not an IANA time zone name"))?,
            ),
            None => None,
        };
        let shards = shards.max(1);
        let mut rules = Rules::new(
            (*self.key).clone(),
            (*self.fallback_key).clone(),
            (*self.time_field).clone(),
            (*self.id_field).clone(),
        );
        rules.timeout_ms = millis(self.timeout);
        rules.max_duration_ms = millis(self.max_duration);
        rules.lateness_ms = millis(self.allowed_lateness);
        rules.max_future_ms = millis(self.max_future);
        rules.open_events = self.open_events.iter().cloned().collect();
        rules.split_daily = split_daily;
        rules.max_open_sessions = self.max_open_sessions.div_ceil(shards).max(1);
        rules.max_buffered_events = self.max_buffered_events.div_ceil(shards).max(1);
        rules.max_buffered_bytes = self.max_buffered_bytes.0.div_ceil(shards as u64).max(1);
        Ok(rules)
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> {
        if let Some(error) = self.validate().into_iter().next() {
            return Err(format!("sessionize {}: {}", cx.id, error.message));
        }
        let cores = cx
            .engine
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let rules = self
            .rules(self.shard_count(cores))
            .map_err(|e| format!("sessionize {}: {e}", cx.id))?;
        let state = cx.state.get_or_insert(cx.id, "sessions", || {
            Mutex::new(SessionState::new(rules.clone()))
        });
        // A reload may change the rules of state kept from an earlier build.
        state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_rules(rules);
        Ok(Box::new(Sessionize::new(cx.id, cx.shard, state)))
    }
}

/// xxh3 of the machine key at `path` (a non-empty string or a number's text).
fn key_hash(event: &Event, path: &FieldPath) -> Option<u64> {
    if let Some(key) = event.get_str(path) {
        return (!key.is_empty()).then(|| xxh3_64(key.as_bytes()));
    }
    match event.get(path) {
        Some(Value::String(s)) if !s.is_empty() => Some(xxh3_64(s.as_bytes())),
        Some(Value::Number(n)) => Some(xxh3_64(n.to_string().as_bytes())),
        _ => None,
    }
}
