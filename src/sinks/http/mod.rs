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
//!
//! While a request is being retried the sink is marked degraded (`/ready`
//! answers 503 and names it under `degraded_components`, with the last
//! failure); the next answer that is not a retryable failure clears it.
//!
//! # Layout
//! * [`config`] — the `[sinks.<id>]` table, validation, build.
//! * [`sink`] — splitting batches into requests, sending them with retries.

pub mod config;
pub mod sink;

pub use config::{Encoding, HttpAuth, HttpSinkConfig};
pub use sink::HttpSink;
