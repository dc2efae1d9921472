//! `redis` sink: counts events into Redis, summed in memory and written in
//! one atomic pipeline per flush.
//!
//! ```toml
//! [sinks.impressions]
//! type = "redis"
//! inputs = ["enriched"]
//! url = "${REDIS_URL:-redis://127.0.0.1:6379}"  # redis:// or rediss:// (TLS); user:password@ for AUTH; /N for the db
//! mode = "counter"                               # INCRBY key n
//! key = "{date}:{properties.page}:{properties.section}:{properties.action}:impression_{properties.impression_id}"
//! flush_interval = "1s"                          # the default
//! ttl = "30d"                                    # optional: EXPIRE on every key written
//! missing = "empty"                              # or "reject": events lacking a key field go to `rejected`
//! max_pending_keys = 100000                      # the bound on sums held in memory
//!
//! [sinks.user_counts]
//! type = "redis"
//! inputs = ["enriched"]
//! url = "redis://127.0.0.1:6379"
//! mode = "hash_counter"                          # HINCRBY key field n
//! key = "counts:{userId}"
//! field = "{event}"
//! ```
//!
//! Contract:
//!
//! * **Templates.** `{a.b}` is the event's field: strings as they are, numbers
//!   and booleans as text. A missing or null field (or an object or array)
//!   renders empty — `cart::checkoutnow` — or, with `missing = "reject"`, the
//!   event goes to `rejected` (reason `missing_field`) and is not counted.
//! * **Pre-aggregation.** `write` only adds 1 to the in-memory sum of the
//!   event's key (and field). Every `flush_interval` the sums are handed to a
//!   background task that writes them as one pipelined transaction:
//!   `MULTI`, one `INCRBY`/`HINCRBY` per distinct key (and field), an `EXPIRE`
//!   per key when `ttl` is set, a `SET` of a flush marker, `EXEC`.
//! * **Acknowledgement.** The batch's acknowledgement is held with the sums
//!   and dropped (delivered) only once the `EXEC` containing them succeeded.
//!   If the sink is torn down with sums unwritten, their batches record
//!   `Failed`.
//! * **Redis down or slow.** The flush task retries with exponential backoff
//!   and jitter (100 ms doubling to 5 s) while the connection manager
//!   reconnects; meanwhile new events keep summing into the next generation.
//!   Only one flush is in flight at a time. When the next generation reaches
//!   `max_pending_keys` distinct keys, `write` waits for the flush in flight,
//!   so the sink stops taking input and backpressure reaches the sources.
//!   Memory is bounded by two generations of `max_pending_keys` keys. While
//!   Redis cannot be reached the component is marked degraded (`/ready` 503,
//!   `/topology`); the service starts whether Redis is up or not.
//! * **Exactness.** `MULTI`/`EXEC` makes a flush all-or-nothing, so a failed
//!   flush can be retried whole. The one ambiguous case — `EXEC` sent, the
//!   reply lost (the connection dropped, a timeout) — is settled by the flush
//!   marker `sluice:flush:<component>:<nonce>` written inside the transaction
//!   (kept one hour): before retrying after any failure the task asks whether
//!   the marker exists, and if it does the flush was applied and is not
//!   repeated. So no increment is lost and none is applied twice, provided
//!   Redis itself keeps what it acknowledged (persistence is Redis's job:
//!   `appendfsync always` for zero loss on a crash). The residual case: a
//!   transaction still queued inside a stalled server on a connection the
//!   client already gave up on, applied after the marker check of the retry.
//! * **Shutdown and end of input.** `flush` waits for the flush in flight and
//!   writes what is left, retrying until Redis answers; `engine.shutdown_timeout`
//!   bounds that wait on SIGTERM.
//! * **Values and keys.** Field values are used as they are: a `:` inside a
//!   value can make two different events share a counter key, as in the
//!   original Lambda. Keys are sent as RESP bulk strings, so no value can
//!   inject a command.
//!
//! The sink's `_default` sent counter counts events summed (not yet
//! necessarily written); a batch's acknowledgement says when they were.
//!
//! # Layout
//! * [`config`] — the `[sinks.<id>]` table, validation, build.
//! * [`template`] — key and field templates.
//! * [`pending`] — the in-memory sums and the acknowledgements they hold.
//! * [`writer`] — the connection and the flush task (MULTI/EXEC, marker, retries).
//! * [`sink`] — the [`crate::component::Sink`] tying them together.
//! * [`counts`] — reading a `hash_counter`'s hash back, for `GET /v1/counts/{userId}`.

pub mod config;
pub mod counts;
pub mod pending;
pub mod sink;
pub mod template;
pub mod writer;

pub use config::{Mode, RedisSinkConfig};

/// Why talking to Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisSinkError {
    #[error("the redis url is invalid: {0}")]
    Url(String),
    #[error("bad template: {0}")]
    Template(String),
    #[error("could not read the CA file {path}: {error}")]
    CaFile { path: String, error: String },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}
