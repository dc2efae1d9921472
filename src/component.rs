//! What a component implementation sees of the engine.
//!
//! Components are plain structs behind three small traits — [`Transform`],
//! [`Sink`] and [`Source`] — so they can be unit-tested without a running actor
//! system. The actors in [`crate::topology`] own them, feed them batches, catch
//! their panics and restart them; components never see mailboxes or addresses.
//!
//! * A **transform** looks at one event at a time and answers with a [`Verdict`]:
//!   emit it on one of its outputs, reject it with a reason, or say it has taken
//!   the event into its own state ([`Verdict::Held`]) to emit later through
//!   [`Outputs::push`]. Because the event is lent (`&mut`), an event whose
//!   processing panicked is still there to retry.
//! * A **sink** writes a batch it is lent and reports success or an error; the
//!   engine acknowledges the batch on success — unless the sink keeps the
//!   acknowledgement ([`Sink::hold_ack`]) to settle it once buffered data is
//!   really written. It may refuse single events ([`Sink::take_rejected`]),
//!   which go to its `rejected` output.
//! * A **source** runs until its input ends or shutdown is signalled, pushing
//!   batches through a [`SourceSender`] that waits for room downstream.
//!
//! Outputs are numbered *ports*: the position of the output's name in the list
//! the component's config declares (`""` is the default output, addressed by the
//! bare component id; others are addressed as `id.name`).
//!
//! State that must outlive a restart of the component (a dedupe's remembered ids,
//! a sessionizer's open sessions) is taken from the [`StateStore`] at build time,
//! keyed by component id, so a rebuilt instance finds it again.

use std::any::Any;
use std::sync::Arc;

use dashmap::DashMap;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::ack::Ack;
use crate::config::EngineConfig;
use crate::event::Event;
use crate::shutdown::ShutdownSignal;

/// The name of the output every component that can reject events has.
pub const REJECTED: &str = "rejected";

/// Picks the shard of a keyed component for an event: all events with the
/// same key go to the same shard, so one actor sees all of a key's events, in
/// order, and owns its state.
pub type Partitioner = Arc<dyn Fn(&Event) -> u64 + Send + Sync>;

/// What a transform decided about one event.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Send the event on this port.
    Emit(usize),
    /// Send the event to the `rejected` output. `reason` is a bounded,
    /// machine-readable word (it becomes a metric label); `message` says why
    /// to a person.
    Reject {
        reason: &'static str,
        message: String,
    },
    /// The transform moved the event into its own state (with `std::mem::take`)
    /// and will emit it later through [`Outputs::push`].
    Held,
}

/// A component that looks at events one at a time.
pub trait Transform: Send + 'static {
    /// Decides about one event. Extra events (summaries, released buffered
    /// events) may be pushed to `out` at any time.
    fn transform(&mut self, event: &mut Event, out: &mut Outputs) -> Verdict;

    /// All input has ended: emit whatever is held. `cause` says whether the
    /// input was exhausted (a replay reached its end) or the service is
    /// shutting down.
    fn finish(&mut self, _cause: EndCause, _out: &mut Outputs) {}

    /// How often the engine should call [`Transform::tick`], if at all.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Called every `tick_interval` with the wall clock, whether or not
    /// events arrive: time-driven work (closing idle sessions) happens here.
    /// The clock is an argument so tests can drive it.
    fn tick(&mut self, _now: std::time::SystemTime, _out: &mut Outputs) {}
}

/// Why a component's input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// Every source reached the end of its input (a replay finished).
    EndOfInput,
    /// The service is shutting down (SIGTERM, or a component failed).
    Shutdown,
}

/// Why a sink could not write.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// Bounded error kind, used as the `error_type` metric label.
    pub kind: &'static str,
    /// What failed and why, for a person.
    pub message: String,
}

impl SinkError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        SinkError {
            kind,
            message: message.into(),
        }
    }
}

/// An event a sink refused for good (an HTTP 400, a key field missing), to
/// be sent to its `rejected` output.
#[derive(Debug)]
pub struct SinkRejection {
    pub event: Event,
    /// Bounded, machine-readable reason (a metric label).
    pub reason: &'static str,
    /// Why, for a person.
    pub message: String,
}

/// A component that writes events somewhere.
pub trait Sink: Send + 'static {
    /// Writes `events`. Success means they are handed to the destination (for
    /// files: written to the operating system), so the batch can be acknowledged.
    fn write<'a>(&'a mut self, events: &'a [Event]) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Flushes anything buffered; called at shutdown and end of input.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    /// Called after each successful [`Sink::write`] with that batch's
    /// acknowledgement. The default drops it, so the batch counts as
    /// delivered as soon as `write` returns. A sink whose `write` only
    /// buffers (the `redis` sink sums counts and writes them on a timer) keeps
    /// the handle until the data is really written, and records
    /// [`crate::ack::BatchStatus::Failed`] on it if that never happens.
    fn hold_ack(&mut self, _ack: Ack) {}

    /// Events the last [`Sink::write`] refused for good, each with its reason;
    /// the engine sends them to the sink's `rejected` output and records
    /// `Rejected` on the batch. Called after every successful write.
    fn take_rejected(&mut self) -> Vec<SinkRejection> {
        Vec::new()
    }

    /// How often the engine should call [`Sink::tick`], if at all.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Time-driven work (a periodic flush), run between batches.
    fn tick(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The name, in the [`StateStore`], of a component's [`ComponentHealth`].
pub const HEALTH_STATE: &str = "health";

/// Whether a running component can reach what it depends on. A sink whose
/// destination is unreachable (Redis down) marks itself degraded here while it
/// keeps buffering and retrying; `/ready` and `/topology` show it. Kept in the
/// [`StateStore`] under [`HEALTH_STATE`], so it outlives a restart of the
/// component and the topology can read it.
#[derive(Debug, Default)]
pub struct ComponentHealth {
    degraded: std::sync::Mutex<Option<String>>,
}

impl ComponentHealth {
    /// Marks the component degraded for `reason` (a sentence for a person).
    /// Returns true when it was healthy before.
    pub fn set_degraded(&self, reason: String) -> bool {
        let mut slot = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        slot.replace(reason).is_none()
    }

    /// Marks the component healthy again; returns true when it was degraded.
    pub fn set_healthy(&self) -> bool {
        let mut slot = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        slot.take().is_some()
    }

    /// Why the component is degraded, if it is.
    pub fn degraded(&self) -> Option<String> {
        self.degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Why a source stopped early.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A component that brings events in.
pub trait Source: Send + 'static {
    /// Reads input until it ends (`at_end = "stop"`) or `cx.shutdown` fires.
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture<'static, Result<(), SourceError>>;
}

/// What a running source is given.
pub struct SourceContext {
    pub id: Arc<str>,
    pub out: SourceSender,
    pub shutdown: ShutdownSignal,
    /// Events per batch (`engine.batch_size`).
    pub batch_size: usize,
    /// Whether the source can take input now; part of `/ready`.
    pub readiness: Readiness,
    /// The engine's threads, for CPU-heavy work a source splits up (the
    /// `file` source decodes on them).
    pub workers: Vec<actix::ArbiterHandle>,
}

/// A source's say in `/ready`: a source that serves clients (an HTTP listener)
/// reports not ready while it cannot take requests — before it listens, and
/// once shutdown has begun. Sources start ready.
#[derive(Clone)]
pub struct Readiness(Arc<crate::telemetry::ComponentStats>);

impl Readiness {
    pub fn new(stats: Arc<crate::telemetry::ComponentStats>) -> Self {
        Readiness(stats)
    }

    pub fn set(&self, ready: bool) {
        self.0.set_ready(ready);
    }
}

/// Why a timed hand-off failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendTimeoutError {
    #[error("downstream had no room within the allowed wait")]
    Timeout,
    #[error(transparent)]
    Closed(#[from] Closed),
}

/// One batch from a source, already split by port.
pub struct SourceBatch {
    pub outputs: Outputs,
    pub ack: Ack,
}

/// The source's side of the bounded hand-off to its actor.
#[derive(Clone)]
pub struct SourceSender {
    tx: mpsc::Sender<SourceBatch>,
    component_id: Arc<str>,
    ports: Arc<[String]>,
}

/// The topology went away: stop reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the topology is no longer accepting events")]
pub struct Closed;

impl SourceSender {
    pub fn new(
        tx: mpsc::Sender<SourceBatch>,
        component_id: Arc<str>,
        ports: Arc<[String]>,
    ) -> Self {
        SourceSender {
            tx,
            component_id,
            ports,
        }
    }

    /// An empty buffer with this source's ports.
    pub fn outputs(&self) -> Outputs {
        Outputs::new(self.component_id.clone(), self.ports.clone())
    }

    /// Hands a batch over, waiting for room.
    pub async fn send(&self, outputs: Outputs, ack: Ack) -> Result<(), Closed> {
        self.tx
            .send(SourceBatch { outputs, ack })
            .await
            .map_err(|_| Closed)
    }

    /// Hands a batch over, waiting at most `wait` for room. On failure the
    /// batch is dropped unsent (its acknowledgement completes untouched).
    pub async fn send_timeout(
        &self,
        outputs: Outputs,
        ack: Ack,
        wait: std::time::Duration,
    ) -> Result<(), SendTimeoutError> {
        use tokio::sync::mpsc::error::SendTimeoutError as E;
        match self
            .tx
            .send_timeout(SourceBatch { outputs, ack }, wait)
            .await
        {
            Ok(()) => Ok(()),
            Err(E::Timeout(_)) => Err(SendTimeoutError::Timeout),
            Err(E::Closed(_)) => Err(SendTimeoutError::Closed(Closed)),
        }
    }

    /// Hands a batch over from a blocking thread, waiting for room.
    pub fn blocking_send(&self, outputs: Outputs, ack: Ack) -> Result<(), Closed> {
        self.tx
            .blocking_send(SourceBatch { outputs, ack })
            .map_err(|_| Closed)
    }
}

/// Events produced while handling one batch, grouped by port.
pub struct Outputs {
    component_id: Arc<str>,
    names: Arc<[String]>,
    ports: Vec<Vec<Event>>,
    rejected_port: Option<usize>,
    /// Rejections in this batch, by reason (few distinct reasons: a Vec beats a map).
    rejects: Vec<(&'static str, u64)>,
    /// The acknowledgement of the batch being processed.
    current_ack: Ack,
    /// Acknowledgements of earlier batches whose held events are emitted now.
    released: Vec<Ack>,
}

impl Outputs {
    pub fn new(component_id: Arc<str>, names: Arc<[String]>) -> Self {
        let rejected_port = names.iter().position(|n| n == REJECTED);
        Outputs {
            component_id,
            ports: names.iter().map(|_| Vec::new()).collect(),
            names,
            rejected_port,
            rejects: Vec::new(),
            current_ack: Ack::none(),
            released: Vec::new(),
        }
    }

    /// The acknowledgement of the batch being processed. A transform that holds
    /// an event (`Verdict::Held`) keeps this with it, and hands it to
    /// [`Outputs::release`] when it emits the event, so the source hears about
    /// the event only once it has really been delivered.
    pub fn ack(&self) -> Ack {
        self.current_ack.clone()
    }

    /// Says that events of the batch behind `ack` are among those emitted now.
    pub fn release(&mut self, ack: Ack) {
        if ack.same_batch(&self.current_ack)
            || self.released.last().is_some_and(|l| l.same_batch(&ack))
        {
            return;
        }
        self.released.push(ack);
    }

    /// Starts a new batch: its acknowledgement.
    pub fn begin(&mut self, ack: Ack) {
        self.current_ack = ack;
    }

    /// The acknowledgement for what is emitted now: the current batch's,
    /// joined with those of released held events. Resets both.
    pub fn take_ack(&mut self) -> Ack {
        let current = std::mem::take(&mut self.current_ack);
        if self.released.is_empty() {
            return current;
        }
        let mut all = std::mem::take(&mut self.released);
        all.push(current);
        Ack::merge(all)
    }

    /// The port number of output `name`.
    pub fn port(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Output names, by port.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The id of the component these outputs belong to.
    pub fn component_id(&self) -> &str {
        &self.component_id
    }

    /// Queues `event` on `port`.
    pub fn push(&mut self, port: usize, event: Event) {
        self.ports[port].push(event);
    }

    /// Wraps `event` as a rejection record and queues it on `rejected`.
    pub fn reject(&mut self, event: Event, reason: &'static str, message: impl Into<String>) {
        match self.rejects.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.rejects.push((reason, 1)),
        }
        let record = Event::rejection(event, &self.component_id, reason, message.into());
        match self.rejected_port {
            Some(port) => self.ports[port].push(record),
            // A component without a declared `rejected` output is a bug in its
            // config's output list; keep the event visible rather than lose it.
            None => panic!(
                "component {} rejected an event but declares no `rejected` output",
                self.component_id
            ),
        }
    }

    /// Number of events queued on all ports.
    pub fn len(&self) -> usize {
        self.ports.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.iter().all(Vec::is_empty)
    }

    /// Events queued on `port` so far.
    pub fn port_events(&self, port: usize) -> &[Event] {
        &self.ports[port]
    }

    /// Takes the queued events, by port, leaving the buffer empty. Each new
    /// port buffer starts with room for as many events as the last batch had,
    /// so steady traffic does not regrow them event by event.
    pub fn take_ports(&mut self) -> Vec<Vec<Event>> {
        let fresh = self
            .ports
            .iter()
            .map(|p| Vec::with_capacity(p.len()))
            .collect();
        std::mem::replace(&mut self.ports, fresh)
    }

    /// Takes the per-reason rejection counts, leaving them empty.
    pub fn take_rejects(&mut self) -> Vec<(&'static str, u64)> {
        std::mem::take(&mut self.rejects)
    }
}

/// State that outlives component restarts, keyed by component id and a name.
#[derive(Default)]
pub struct StateStore {
    entries: DashMap<(String, &'static str), Arc<dyn Any + Send + Sync>>,
}

impl StateStore {
    /// The state `name` of `component`, created by `init` the first time.
    pub fn get_or_insert<T: Any + Send + Sync>(
        &self,
        component: &str,
        name: &'static str,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let entry = self
            .entries
            .entry((component.to_owned(), name))
            .or_insert_with(|| Arc::new(init()) as Arc<dyn Any + Send + Sync>)
            .clone();
        match entry.downcast::<T>() {
            Ok(state) => state,
            // Two types under one (component, name) is a programming error in
            // the component, found by its first test.
            Err(_) => panic!("state {name} of {component} was stored with another type"),
        }
    }
}

/// Everything a component's `build` may use.
pub struct BuildContext<'a> {
    pub id: &'a str,
    pub engine: &'a EngineConfig,
    pub state: &'a StateStore,
    /// Which shard of a sharded component this instance is (`None` when the
    /// component runs as one actor); for telemetry labels.
    pub shard: Option<usize>,
}

impl BuildContext<'_> {
    /// This component's health, shared with `/ready`.
    pub fn health(&self) -> Arc<ComponentHealth> {
        self.state
            .get_or_insert(self.id, HEALTH_STATE, ComponentHealth::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_group_by_port_and_count_rejects() {
        let names: Arc<[String]> = vec!["".to_string(), "rejected".to_string()].into();
        let mut out = Outputs::new("c".into(), names);
        out.push(0, Event::default());
        out.reject(Event::default(), "bad", "why");
        out.reject(Event::default(), "bad", "why");
        assert_eq!(out.len(), 3);
        assert_eq!(out.take_rejects(), vec![("bad", 2)]);
        let ports = out.take_ports();
        assert_eq!(ports[0].len(), 1);
        assert_eq!(ports[1].len(), 2);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn released_acks_join_the_emitted_batch() {
        let names: Arc<[String]> = vec!["".to_string(), "rejected".to_string()].into();
        let mut out = Outputs::new("c".into(), names);
        let (held, held_rx) = crate::ack::ack_channel();
        let (current, current_rx) = crate::ack::ack_channel();
        out.begin(current);
        out.release(held.clone());
        out.release(held); // the same batch twice is remembered once
        let sent = out.take_ack();
        sent.update(crate::ack::BatchStatus::Failed);
        drop(sent);
        assert_eq!(held_rx.await.unwrap(), crate::ack::BatchStatus::Failed);
        assert_eq!(current_rx.await.unwrap(), crate::ack::BatchStatus::Failed);
    }

    #[test]
    fn state_survives_rebuilds() {
        let store = StateStore::default();
        let a = store.get_or_insert("d", "seen", || std::sync::Mutex::new(1));
        *a.lock().unwrap() = 7;
        let b = store.get_or_insert("d", "seen", || std::sync::Mutex::new(1));
        assert_eq!(*b.lock().unwrap(), 7);
    }
}
