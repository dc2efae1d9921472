//! The one actix actor type that runs transforms and sinks.
//!
//! [`ComponentActor`] is deliberately thin: it takes a batch off its mailbox,
//! releases the batch's inbox slot, and moves its [`Runner`] into an atomic
//! future that processes the batch and waits for room downstream. While that
//! future runs the actor takes no other message, so a component handles one
//! batch at a time and a slow consumer holds its producer back. When every
//! upstream has sent [`EndOfInput`], the runner finishes (flushes, tells its own
//! readers) and the actor stops.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::edge::Inbox;
use super::messages::{Deliver, EndOfInput, Tick};
use crate::ack::{Ack, BatchStatus};
use crate::component::EndCause;
use crate::event::Event;
use crate::telemetry::{ComponentTelemetry, RunState};

/// A component's processing, separate from its mailbox.
pub trait Runner: Unpin + 'static {
    fn telemetry(&self) -> &ComponentTelemetry;
    fn inbox(&self) -> &Inbox;
    /// Processes one batch and sends its results on.
    fn handle_batch(&mut self, events: Vec<Event>, ack: Ack) -> impl Future<Output = ()>;
    /// All upstreams ended: flush and tell downstream.
    fn finish(&mut self, cause: EndCause) -> impl Future<Output = ()>;
    /// How often to run [`Runner::tick`], if ever.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }
    /// Time-driven work, run between batches.
    fn tick(&mut self) -> impl Future<Output = ()> {
        async {}
    }
}

/// The actix actor around a [`Runner`].
pub struct ComponentActor<R: Runner> {
    runner: Option<R>,
    upstreams: usize,
    ended: HashSet<Arc<str>>,
    /// Shutdown if any upstream ended because of shutdown.
    cause: EndCause,
    /// A `Tick` is queued: do not queue another.
    tick_queued: bool,
}

impl<R: Runner> ComponentActor<R> {
    /// `upstreams`: how many distinct components feed this one.
    pub fn new(runner: R, upstreams: usize) -> Self {
        ComponentActor {
            runner: Some(runner),
            upstreams,
            ended: HashSet::new(),
            cause: EndCause::EndOfInput,
            tick_queued: false,
        }
    }
}

impl<R: Runner> Actor for ComponentActor<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(runner) = &self.runner {
            // The inbox semaphore is the real bound; actix's own limit sits
            // above it so control messages always fit.
            ctx.set_mailbox_capacity(runner.inbox().capacity + 64);
            runner.telemetry().state(RunState::Running);
            if let Some(every) = runner.tick_interval() {
                ctx.run_interval(every, |act, ctx| {
                    if !act.tick_queued {
                        act.tick_queued = true;
                        ctx.notify(Tick);
                    }
                });
            }
        }
    }
}

impl<R: Runner> Handler<Deliver> for ComponentActor<R> {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Deliver, _ctx: &mut Self::Context) -> Self::Result {
        let Deliver {
            events,
            ack,
            permit,
        } = msg;
        drop(permit);
        let Some(mut runner) = self.runner.take() else {
            // Atomic responses run one at a time, so the runner is home
            // whenever a message arrives; fail the batch rather than lose it.
            ack.update(BatchStatus::Failed);
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        runner.telemetry().mailbox_depth(runner.inbox().depth());
        AtomicResponse::new(Box::pin(
            async move {
                runner.handle_batch(events, ack).await;
                runner
            }
            .into_actor(self)
            .map(|runner, act, _ctx| act.runner = Some(runner)),
        ))
    }
}

impl<R: Runner> Handler<EndOfInput> for ComponentActor<R> {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: EndOfInput, _ctx: &mut Self::Context) -> Self::Result {
        self.ended.insert(msg.from);
        if msg.cause == EndCause::Shutdown {
            self.cause = EndCause::Shutdown;
        }
        if self.ended.len() < self.upstreams {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let Some(mut runner) = self.runner.take() else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let cause = self.cause;
        AtomicResponse::new(Box::pin(
            async move {
                runner.finish(cause).await;
            }
            .into_actor(self)
            .map(|_, _act, ctx| ctx.stop()),
        ))
    }
}

impl<R: Runner> Handler<Tick> for ComponentActor<R> {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        self.tick_queued = false;
        // No runner: it finished (or is mid-batch, which atomic handling rules out).
        let Some(mut runner) = self.runner.take() else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        AtomicResponse::new(Box::pin(
            async move {
                runner.tick().await;
                runner
            }
            .into_actor(self)
            .map(|runner, act, _ctx| act.runner = Some(runner)),
        ))
    }
}
