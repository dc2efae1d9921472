//! Running one sink: the plain struct behind its [`ComponentActor`](super::actor::ComponentActor).
//!
//! Like the transform actor it is a thin shell around a plain [`SinkRunner`].
//! A batch is acknowledged when the sink's write succeeded. A failed write or
//! a panic is a crash: the sink is restarted (rebuilt) after the backoff and
//! the batch written again; if that fails too, the events are written one at a
//! time and those that still fail go to the sink's `rejected` output with
//! reason `poison` (a panic) or `write_failed` (an error), and the batch's
//! acknowledgement records `Rejected`.
//!
//! After a successful write the sink is handed the batch's acknowledgement
//! ([`Sink::hold_ack`]: a sink that only buffered keeps it until its data is
//! written) and asked for the events it refused ([`Sink::take_rejected`]),
//! which go to `rejected`. A sink with a `tick_interval` is ticked between
//! batches (the `redis` sink flushes its sums on the tick).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;

use super::actor::Runner;
use super::edge::{emit, Fanout, Inbox};
use super::supervisor::{panic_message, Supervised};
use crate::ack::{Ack, BatchStatus};
use crate::component::{EndCause, Outputs, Sink};
use crate::event::Event;

/// A sink with its `rejected` output and supervision.
pub struct SinkRunner {
    pub supervised: Supervised<Box<dyn Sink>>,
    pub outputs: Outputs,
    pub fanout: Fanout,
    pub inbox: Inbox,
}

/// Why one write attempt did not succeed.
struct WriteFailure {
    reason: &'static str,
    error_type: &'static str,
    message: String,
}

impl Runner for SinkRunner {
    fn telemetry(&self) -> &crate::telemetry::ComponentTelemetry {
        &self.supervised.telemetry
    }

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Writes one batch, retrying and isolating failures as described above.
    async fn handle_batch(&mut self, events: Vec<Event>, ack: Ack) {
        if self.supervised.is_failed() {
            ack.update(BatchStatus::Failed);
            self.supervised.telemetry.events_discarded(events.len());
            return;
        }
        self.supervised.telemetry.events_received(events.len());
        let started = Instant::now();
        Event::prefetch(&events);
        let mut attempts = 0;
        loop {
            let Err(failure) = self.write(&events).await else {
                let rejected = self.settle(&ack);
                self.supervised
                    .telemetry
                    .events_sent(0, events.len() - rejected);
                break;
            };
            self.supervised
                .telemetry
                .error(failure.error_type, &failure.message);
            if !self.supervised.recover(&failure.message).await {
                ack.update(BatchStatus::Failed);
                self.supervised.telemetry.events_discarded(events.len());
                return;
            }
            attempts += 1;
            if attempts >= 2 {
                // Even if the sink gives up part-way, the events it already
                // rejected are sent on to whoever reads `rejected`.
                self.isolate(events, &ack).await;
                break;
            }
        }
        self.supervised.telemetry.processing_time(started.elapsed());
        emit(
            &mut self.outputs,
            &mut self.fanout,
            &mut self.supervised.telemetry,
            &ack,
        )
        .await;
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        self.supervised.instance.tick_interval()
    }

    /// The sink's time-driven work (a periodic flush); it reports its own
    /// trouble (a buffering sink keeps retrying), so nothing here can crash.
    async fn tick(&mut self) {
        if self.supervised.is_failed() {
            return;
        }
        let sink = &mut self.supervised.instance;
        if let Err(payload) = AssertUnwindSafe(sink.tick()).catch_unwind().await {
            let message = format!("panicked in tick: {}", panic_message(payload.as_ref()));
            self.supervised.telemetry.error("panic", &message);
            self.supervised.recover(&message).await;
        }
    }

    /// All inputs ended: flush, then tell readers of `rejected` we are done.
    async fn finish(&mut self, cause: EndCause) {
        if !self.supervised.is_failed() {
            let sink = &mut self.supervised.instance;
            match AssertUnwindSafe(sink.flush()).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    let message = format!("flush at end of input failed: {}", err.message);
                    self.supervised.telemetry.error(err.kind, &message);
                    self.supervised.fail(message);
                }
                Err(payload) => {
                    let message = format!(
                        "panicked while flushing: {}",
                        panic_message(payload.as_ref())
                    );
                    self.supervised.telemetry.error("panic", &message);
                    self.supervised.fail(message);
                }
            }
        }
        self.fanout.finish(cause).await;
        self.supervised.finished();
    }
}

impl SinkRunner {
    /// After a successful write: hands the sink the batch's acknowledgement
    /// (a buffering sink keeps it until its data is written) and sends the
    /// events it refused to `rejected`. Returns how many it refused.
    fn settle(&mut self, ack: &Ack) -> usize {
        let sink = &mut self.supervised.instance;
        sink.hold_ack(ack.clone());
        let rejected = sink.take_rejected();
        if !rejected.is_empty() {
            ack.update(BatchStatus::Rejected);
        }
        let count = rejected.len();
        for r in rejected {
            self.outputs.reject(r.event, r.reason, r.message);
        }
        count
    }

    /// One write attempt, with panics caught, reported as one sink request.
    async fn write(&mut self, events: &[Event]) -> Result<(), WriteFailure> {
        let sink = &mut self.supervised.instance;
        let started = Instant::now();
        let outcome = AssertUnwindSafe(sink.write(events)).catch_unwind().await;
        self.supervised
            .telemetry
            .sink_request(matches!(outcome, Ok(Ok(()))), started.elapsed());
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(WriteFailure {
                reason: "write_failed",
                error_type: err.kind,
                message: format!("write failed: {}", err.message),
            }),
            Err(payload) => Err(WriteFailure {
                reason: "poison",
                error_type: "panic",
                message: format!(
                    "panicked while writing: {}",
                    panic_message(payload.as_ref())
                ),
            }),
        }
    }

    /// Writes events one at a time after a batch failed twice; the ones that
    /// still fail are rejected. Stops early, failing the rest of the batch, if
    /// the sink fails for good.
    async fn isolate(&mut self, events: Vec<Event>, ack: &Ack) {
        let total = events.len();
        for (done, event) in events.into_iter().enumerate() {
            match self.write(std::slice::from_ref(&event)).await {
                Ok(()) => {
                    let rejected = self.settle(ack);
                    self.supervised.telemetry.events_sent(0, 1 - rejected);
                }
                Err(failure) => {
                    self.supervised
                        .telemetry
                        .error(failure.error_type, &failure.message);
                    ack.update(BatchStatus::Rejected);
                    self.outputs
                        .reject(event, failure.reason, failure.message.clone());
                    if !self.supervised.recover(&failure.message).await {
                        ack.update(BatchStatus::Failed);
                        self.supervised.telemetry.events_discarded(total - done - 1);
                        return;
                    }
                }
            }
        }
    }
}
