//! Running one transform: the plain struct behind its [`ComponentActor`](super::actor::ComponentActor).
//!
//! The actor is thin: it takes a batch off its mailbox, releases the mailbox
//! slot, and hands the batch to its [`TransformRunner`] — a plain struct that
//! runs the transform under `catch_unwind`, restarts it through its
//! [`Supervised`] wrapper, and sends the results on. The runner is moved into
//! an atomic future for the duration of a batch, so the actor processes one
//! batch at a time and takes nothing new while it waits for room downstream.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::actor::Runner;
use super::edge::{emit, Fanout, Inbox};
use super::supervisor::{panic_message, Supervised};
use crate::ack::{Ack, BatchStatus};
use crate::component::{EndCause, Outputs, Transform, Verdict};
use crate::event::Event;

/// A transform with its outputs and supervision: everything but the mailbox.
pub struct TransformRunner {
    pub supervised: Supervised<Box<dyn Transform>>,
    pub outputs: Outputs,
    pub fanout: Fanout,
    pub inbox: Inbox,
}

impl Runner for TransformRunner {
    fn telemetry(&self) -> &crate::telemetry::ComponentTelemetry {
        &self.supervised.telemetry
    }

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Runs one batch through the transform and sends the results on.
    async fn handle_batch(&mut self, mut events: Vec<Event>, ack: Ack) {
        if self.supervised.is_failed() {
            ack.update(BatchStatus::Failed);
            self.supervised.telemetry.events_discarded(events.len());
            return;
        }
        self.supervised.telemetry.events_received(events.len());
        self.outputs.begin(ack.clone());
        let started = Instant::now();
        Event::prefetch(&events);
        let mut next = 0;
        // The index of the event that crashed the transform once already.
        let mut retrying: Option<usize> = None;
        loop {
            let transform = &mut self.supervised.instance;
            let outputs = &mut self.outputs;
            let run = catch_unwind(AssertUnwindSafe(|| {
                run_events(transform.as_mut(), &mut events, &mut next, outputs)
            }));
            let Err(payload) = run else { break };
            let message = format!("panicked on an event: {}", panic_message(payload.as_ref()));
            self.supervised.telemetry.error("panic", &message);
            let poisoned = retrying == Some(next);
            if !self.supervised.recover(&message).await {
                ack.update(BatchStatus::Failed);
                self.supervised
                    .telemetry
                    .events_discarded(events.len() - next);
                break;
            }
            if poisoned {
                let event = std::mem::take(&mut events[next]);
                self.outputs.reject(
                    event,
                    "poison",
                    format!("crashed the component twice: {message}"),
                );
                next += 1;
                retrying = None;
            } else {
                retrying = Some(next);
            }
        }
        self.supervised.telemetry.processing_time(started.elapsed());
        drop(ack);
        self.send().await;
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        self.supervised.instance.tick_interval()
    }

    /// Lets the transform do its time-driven work, and sends what it emitted.
    async fn tick(&mut self) {
        if self.supervised.is_failed() {
            return;
        }
        let transform = &mut self.supervised.instance;
        let outputs = &mut self.outputs;
        let now = std::time::SystemTime::now();
        let run = catch_unwind(AssertUnwindSafe(|| transform.tick(now, outputs)));
        if let Err(payload) = run {
            let message = format!(
                "panicked on a timer tick: {}",
                panic_message(payload.as_ref())
            );
            self.supervised.telemetry.error("panic", &message);
            if !self.supervised.recover(&message).await {
                return;
            }
        }
        self.send().await;
    }

    /// All inputs ended: lets the transform emit what it holds, then tells
    /// downstream that this component is done.
    async fn finish(&mut self, cause: EndCause) {
        if !self.supervised.is_failed() {
            let transform = &mut self.supervised.instance;
            let outputs = &mut self.outputs;
            let run = catch_unwind(AssertUnwindSafe(|| transform.finish(cause, outputs)));
            if let Err(payload) = run {
                let message = format!(
                    "panicked while finishing: {}",
                    panic_message(payload.as_ref())
                );
                self.supervised.telemetry.error("panic", &message);
            }
            self.send().await;
        }
        self.fanout.finish(cause).await;
        self.supervised.finished();
    }
}

impl TransformRunner {
    /// Sends what the transform emitted, acknowledged on behalf of every batch
    /// whose events are in it.
    async fn send(&mut self) {
        let ack = self.outputs.take_ack();
        emit(
            &mut self.outputs,
            &mut self.fanout,
            &mut self.supervised.telemetry,
            &ack,
        )
        .await;
    }
}

/// Applies the transform to `events[*next..]`, moving each event to where its
/// verdict sends it. `*next` always points at the event being processed, so
/// after a panic it names the culprit and everything before it is done.
fn run_events(
    transform: &mut dyn Transform,
    events: &mut [Event],
    next: &mut usize,
    out: &mut Outputs,
) {
    while *next < events.len() {
        let i = *next;
        match transform.transform(&mut events[i], out) {
            Verdict::Emit(port) => out.push(port, std::mem::take(&mut events[i])),
            Verdict::Reject { reason, message } => {
                out.reject(std::mem::take(&mut events[i]), reason, message)
            }
            Verdict::Held => {}
        }
        *next = i + 1;
    }
}
