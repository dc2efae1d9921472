//! The running `redis` sink: renders each event's counter, sums it into the
//! current generation, and hands generations to the flush task (see
//! [`super`] for the contract).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::Client;
use tokio::task::JoinHandle;

use super::pending::Pending;
use super::template::Template;
use super::writer::{self, Flush, FlushContext};
use crate::ack::Ack;
use crate::component::{Sink, SinkError, SinkRejection};
use crate::event::Event;

/// How often to ping Redis while it is idle and not known to be reachable.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What a flush told the caller: figures for benchmarks and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Transactions handed to Redis.
    pub flushes: u64,
    /// Commands inside them (MULTI, EXEC and the marker included).
    pub commands: u64,
}

/// The sink.
pub struct RedisSink {
    pub(super) key: Template,
    pub(super) field: Option<Template>,
    pub(super) reject_missing: bool,
    pub(super) max_pending_keys: usize,
    pub(super) flush_interval: Duration,
    pub(super) client: Client,
    pub(super) request_timeout: Duration,
    pub(super) cx: Arc<FlushContext>,
    /// Created on first use, inside the sink's runtime.
    pub(super) conn: Option<ConnectionManager>,
    pub(super) pending: Pending,
    pub(super) in_flight: Option<JoinHandle<()>>,
    pub(super) rejected: Vec<SinkRejection>,
    /// Reused rendering buffer: `key ++ field`.
    pub(super) buf: String,
    pub(super) last_probe: Option<Instant>,
    pub(super) stats: FlushStats,
}

impl RedisSink {
    /// Figures so far.
    pub fn stats(&self) -> FlushStats {
        self.stats
    }

    fn conn(&mut self) -> Result<ConnectionManager, SinkError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let conn = writer::connect(self.client.clone(), self.request_timeout)
            .map_err(|e| SinkError::new("redis_config", e.to_string()))?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Sums one event, or sets it aside for `rejected`.
    fn add(&mut self, event: &Event) {
        self.buf.clear();
        let rendered = self
            .key
            .render(event, self.reject_missing, &mut self.buf)
            .and_then(|()| {
                let key_len = self.buf.len();
                match &self.field {
                    Some(field) => field
                        .render(event, self.reject_missing, &mut self.buf)
                        .map(|()| key_len),
                    None => Ok(key_len),
                }
            });
        match rendered {
            Ok(key_len) => self.pending.add(&self.buf, key_len, self.field.is_some()),
            Err(missing) => self.rejected.push(SinkRejection {
                event: event.clone(),
                reason: "missing_field",
                message: format!(
                    "field {} is missing or null, and missing = \"reject\"",
                    missing.0
                ),
            }),
        }
    }

    /// True while a flush is being written.
    fn busy(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Waits for the flush in flight, if any. Cancel-safe: the handle is
    /// let go only once the task is done.
    async fn wait_in_flight(&mut self) {
        if let Some(handle) = self.in_flight.as_mut() {
            let outcome = handle.await;
            self.in_flight = None;
            if let Err(err) = outcome {
                // The task's held acknowledgements were dropped with it and
                // recorded Failed; the counts of that generation are lost.
                crate::telemetry::sink_background_error(
                    &self.cx.component_id,
                    &format!("redis flush task ended abnormally: {err}"),
                );
            }
        }
    }

    /// Hands the current generation to a new flush task. Call only when no
    /// flush is in flight (flushes are written one at a time).
    fn hand_over(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let flush = Flush::new(pending, &self.cx);
        if flush.keys == 0 {
            // Only acknowledgements to settle: the previous flush is done.
            self.in_flight = Some(tokio::spawn(writer::run(
                self.conn()?,
                flush,
                self.cx.clone(),
            )));
            return Ok(());
        }
        self.stats.flushes += 1;
        self.stats.commands += flush.commands as u64;
        let conn = self.conn()?;
        self.in_flight = Some(tokio::spawn(writer::run(conn, flush, self.cx.clone())));
        Ok(())
    }

    /// The periodic work: start a flush when none is in flight; ping an idle
    /// Redis that is not known to be reachable.
    async fn on_tick(&mut self) -> Result<(), SinkError> {
        if self.busy() {
            return Ok(());
        }
        self.wait_in_flight().await;
        if !self.pending.is_empty() {
            return self.hand_over();
        }
        let unknown = self.last_probe.is_none() || self.cx.health.degraded().is_some();
        if unknown && self.last_probe.is_none_or(|t| t.elapsed() >= PROBE_EVERY) {
            self.last_probe = Some(Instant::now());
            let conn = self.conn()?;
            self.in_flight = Some(tokio::spawn(writer::probe(conn, self.cx.clone())));
        }
        Ok(())
    }

    /// Writes everything summed so far and waits until Redis applied it.
    pub async fn flush_all(&mut self) -> Result<(), SinkError> {
        self.wait_in_flight().await;
        self.hand_over()?;
        self.wait_in_flight().await;
        Ok(())
    }
}

impl Sink for RedisSink {
    fn write<'a>(&'a mut self, events: &'a [Event]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for event in events {
                self.add(event);
            }
            if self.pending.keys() >= self.max_pending_keys {
                // The bound: wait for the flush in flight (however long
                // Redis takes to come back), then hand this generation over.
                // Meanwhile no batch is taken, so upstream backs up.
                self.wait_in_flight().await;
                self.hand_over()?;
            }
            Ok(())
        })
    }

    fn hold_ack(&mut self, ack: Ack) {
        self.pending.acks.push(ack);
    }

    fn take_rejected(&mut self) -> Vec<SinkRejection> {
        std::mem::take(&mut self.rejected)
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(self.flush_all())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.flush_interval)
    }

    fn tick(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(err) = self.on_tick().await {
                crate::telemetry::sink_background_error(
                    &self.cx.component_id,
                    &format!("redis flush not started: {err}"),
                );
            }
        })
    }
}
