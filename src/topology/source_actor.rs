//! The actor that runs one source.
//!
//! A source's `run` future is spawned on the actor's arbiter; it produces
//! batches into a bounded channel that the actor consumes as a stream. For each
//! batch the actor waits (`ctx.wait`) until the batch was handed downstream, so
//! it takes the next one only when there is room: a full channel then stops the
//! source. When the source's `run` ends and its sender is dropped, the stream
//! ends, the actor waits for every batch it sent to be handled and tells its
//! readers the input has ended. Sources are not restarted (that would re-read
//! their input); a source error or panic fails the component.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use futures::FutureExt;
use tokio::sync::mpsc;

use super::edge::{emit, Fanout};
use super::supervisor::{panic_message, report, ComponentEvent};
use crate::component::{EndCause, Source, SourceBatch, SourceContext};
use crate::shutdown::ShutdownSignal;
use crate::telemetry::{ComponentTelemetry, RunState};

/// The actix actor around a source.
pub struct SourceActor {
    id: Arc<str>,
    /// Home between batches; moved into the batch's future meanwhile.
    sending: Option<(Fanout, ComponentTelemetry)>,
    start: Option<(Box<dyn Source>, SourceContext, mpsc::Receiver<SourceBatch>)>,
    events: mpsc::Sender<ComponentEvent>,
    /// Tells readers whether the input ended or the service is stopping.
    shutdown: ShutdownSignal,
    failed: bool,
    /// The actor stops once both the batch stream and the source's `run`
    /// (which reports on the acknowledgements) have ended.
    stream_done: bool,
    run_done: bool,
}

impl SourceActor {
    pub fn new(
        id: Arc<str>,
        source: Box<dyn Source>,
        cx: SourceContext,
        rx: mpsc::Receiver<SourceBatch>,
        fanout: Fanout,
        telemetry: ComponentTelemetry,
        events: mpsc::Sender<ComponentEvent>,
    ) -> Self {
        let shutdown = cx.shutdown.clone();
        SourceActor {
            id,
            sending: Some((fanout, telemetry)),
            start: Some((source, cx, rx)),
            shutdown,
            events,
            failed: false,
            stream_done: false,
            run_done: false,
        }
    }

    fn stop_when_done(&mut self, ctx: &mut Context<Self>) {
        if self.stream_done && self.run_done {
            report(&self.events, ComponentEvent::Finished(self.id.clone()));
            ctx.stop();
        }
    }
}

/// The source's `run` ended with this outcome.
struct RunEnded(Result<(), String>);

impl Message for RunEnded {
    type Result = ();
}

impl Actor for SourceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some((source, cx, rx)) = self.start.take() else {
            return;
        };
        if let Some((_, telemetry)) = &self.sending {
            telemetry.state(RunState::Running);
        }
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        ctx.add_stream(batches);
        let run = AssertUnwindSafe(source.run(cx))
            .catch_unwind()
            .map(|outcome| match outcome {
                Ok(Ok(())) => RunEnded(Ok(())),
                Ok(Err(err)) => RunEnded(Err(err.to_string())),
                Err(payload) => RunEnded(Err(format!(
                    "panicked: {}",
                    panic_message(payload.as_ref())
                ))),
            });
        let addr = ctx.address();
        ctx.spawn(
            async move {
                // The actor outlives its source's run; if it is gone there
                // is nobody left to tell.
                let _ = addr.send(run.await).await;
            }
            .into_actor(self),
        );
    }
}

impl Handler<RunEnded> for SourceActor {
    type Result = ();

    fn handle(&mut self, msg: RunEnded, ctx: &mut Self::Context) {
        self.run_done = true;
        if let RunEnded(Err(reason)) = msg {
            self.failed = true;
            if let Some((_, telemetry)) = &mut self.sending {
                telemetry.error("source_failed", &reason);
                telemetry.failed(&reason);
            }
            report(
                &self.events,
                ComponentEvent::Failed(self.id.clone(), reason),
            );
        }
        self.stop_when_done(ctx);
    }
}

impl StreamHandler<SourceBatch> for SourceActor {
    fn handle(&mut self, batch: SourceBatch, ctx: &mut Self::Context) {
        let Some((mut fanout, mut telemetry)) = self.sending.take() else {
            // Batches are handled one at a time (`ctx.wait`), so the fanout
            // is always home; fail the batch rather than lose it silently.
            batch.ack.update(crate::ack::BatchStatus::Failed);
            return;
        };
        let SourceBatch { mut outputs, ack } = batch;
        telemetry.events_received(outputs.len());
        ctx.wait(
            async move {
                emit(&mut outputs, &mut fanout, &mut telemetry, &ack).await;
                (fanout, telemetry)
            }
            .into_actor(self)
            .map(|sending, act, _ctx| act.sending = Some(sending)),
        );
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        let Some((mut fanout, telemetry)) = self.sending.take() else {
            self.stream_done = true;
            self.stop_when_done(ctx);
            return;
        };
        let failed = self.failed;
        let cause = if self.shutdown.is_triggered() {
            EndCause::Shutdown
        } else {
            EndCause::EndOfInput
        };
        ctx.wait(
            async move {
                fanout.finish(cause).await;
                if !failed {
                    telemetry.state(RunState::Finished);
                }
            }
            .into_actor(self)
            .map(|_, act, ctx| {
                act.stream_done = true;
                act.stop_when_done(ctx);
            }),
        );
    }
}
