//! sluice: a stateful, actor-based dataflow engine for product-analytics events.
//!
//! A `topology.toml` declares sources, transforms and sinks wired by `inputs`;
//! [`topology::run`] starts one actix actor per component, with bounded,
//! backpressured edges, supervised restarts and end-to-end acknowledgements.
//!
//! # Layout
//!
//! * [`config`] — the topology file: raw structs, env substitution, validation
//!   with every error reported at once, the graph (`sluice graph`).
//! * [`component`] — what a component sees: the `Transform`, `Sink` and
//!   `Source` traits, `Outputs`, the restart-surviving `StateStore`.
//! * [`sources`], [`transforms`], [`sinks`] — one file per component type,
//!   named after its `type` string.
//! * [`topology`] — actors, edges, supervision, shutdown: turns a `Config`
//!   into a running pipeline.
//! * [`telemetry`] — every metric and log line a component emits.
//! * [`api`] — `/health`, `/ready`, `/metrics`, `/topology`, `/v1/counts/{userId}`.
//! * [`auth`] — Basic/Bearer credentials of the data endpoints.
//! * [`top`] — `sluice top`, a terminal view of a running instance's API.
//! * [`ack`], [`event`], [`shutdown`] — the small types everything shares.
//! * [`gen`] — deterministic synthetic Segment events (`sluice gen`).
//! * [`cli`] — the command line; `main.rs` only calls it.

pub mod ack;
pub mod api;
pub mod auth;
pub mod cli;
pub mod component;
pub mod config;
pub mod event;
pub mod gen;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod telemetry;
pub mod top;
pub mod topology;
pub mod transforms;
