//! Bounded edges between actors.
//!
//! Each component has an [`Inbox`]: a semaphore with `mailbox_capacity`
//! permits. A sender must hold a permit to enqueue a batch and the receiver
//! releases it when it starts on that batch, so at most `mailbox_capacity`
//! batches ever wait in a component's mailbox, however many components feed it.
//! That is the backpressure bound: a slow sink fills its inbox, its upstream
//! waits for a permit (and stops taking from its own inbox), and so on up to
//! the sources, which stop reading.
//!
//! A [`Fanout`] is a component's sending side: for every output port, the
//! inboxes that read it. A batch for a port with several readers is cloned for
//! all but the last. Senders wait for room with `send().await` semantics: the
//! actix request of each batch is kept (dropping it would cancel the message)
//! and reaped as replies arrive, never `do_send`.

use std::collections::HashSet;
use std::sync::Arc;

use actix::dev::RecipientRequest;
use actix::Recipient;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;

use super::messages::{Deliver, EndOfInput};
use crate::ack::{Ack, BatchStatus};
use crate::event::Event;
use crate::telemetry::ComponentStats;

/// The receiving side's bound, shared by all its senders.
#[derive(Clone)]
pub struct Inbox {
    pub permits: Arc<Semaphore>,
    pub capacity: usize,
}

impl Inbox {
    pub fn new(capacity: usize) -> Self {
        Inbox {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Batches queued and not yet started on.
    pub fn depth(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }
}

/// How to reach one component.
#[derive(Clone)]
pub struct InboxHandle {
    pub id: Arc<str>,
    pub data: Recipient<Deliver>,
    pub control: Recipient<EndOfInput>,
    pub inbox: Inbox,
    pub stats: Arc<ComponentStats>,
}

pub use crate::component::Partitioner;

/// One component reading an output: a single inbox, or the inboxes of a
/// component split into shards by key.
#[derive(Clone)]
pub enum Reader {
    Single(InboxHandle),
    Sharded {
        id: Arc<str>,
        shards: Vec<InboxHandle>,
        partitioner: Partitioner,
    },
}

impl Reader {
    fn id(&self) -> &Arc<str> {
        match self {
            Reader::Single(handle) => &handle.id,
            Reader::Sharded { id, .. } => id,
        }
    }

    fn inboxes(&self) -> Vec<InboxHandle> {
        match self {
            Reader::Single(handle) => vec![handle.clone()],
            Reader::Sharded { shards, .. } => shards.clone(),
        }
    }
}

/// One inbox we send to, with the requests still in flight.
struct Lane {
    handle: InboxHandle,
    in_flight: FuturesUnordered<RecipientRequest<Deliver>>,
}

struct Target {
    id: Arc<str>,
    lanes: Vec<Lane>,
    partitioner: Option<Partitioner>,
}

/// The receivers of one component's outputs.
pub struct Fanout {
    from: Arc<str>,
    /// Port → indices into `targets`.
    ports: Vec<Vec<usize>>,
    targets: Vec<Target>,
}

/// A downstream component stopped taking batches (only at teardown).
#[derive(Debug, thiserror::Error)]
#[error("component {0} is no longer running")]
pub struct DownstreamGone(pub Arc<str>);

impl Fanout {
    /// `readers[port]` lists the components reading that port. `from` names
    /// the sender in end-of-input messages (a shard has its own name).
    pub fn new(from: Arc<str>, readers: Vec<Vec<Reader>>) -> Self {
        let mut targets: Vec<Target> = Vec::new();
        let mut ports = Vec::with_capacity(readers.len());
        for port_readers in readers {
            let mut indices = Vec::with_capacity(port_readers.len());
            for reader in port_readers {
                let index = match targets.iter().position(|t| t.id == *reader.id()) {
                    Some(i) => i,
                    None => {
                        let lanes = reader
                            .inboxes()
                            .into_iter()
                            .map(|handle| Lane {
                                handle,
                                in_flight: FuturesUnordered::new(),
                            })
                            .collect();
                        let partitioner = match &reader {
                            Reader::Sharded { partitioner, .. } => Some(partitioner.clone()),
                            Reader::Single(_) => None,
                        };
                        targets.push(Target {
                            id: reader.id().clone(),
                            lanes,
                            partitioner,
                        });
                        targets.len() - 1
                    }
                };
                indices.push(index);
            }
            ports.push(indices);
        }
        Fanout {
            from,
            ports,
            targets,
        }
    }

    /// True when some component reads `port`.
    pub fn has_readers(&self, port: usize) -> bool {
        self.ports.get(port).is_some_and(|p| !p.is_empty())
    }

    /// Sends each port's events to that port's readers, waiting for room.
    /// Events on a port nobody reads are the caller's to account for.
    pub async fn send(&mut self, ports: Vec<Vec<Event>>, ack: &Ack) -> Result<(), DownstreamGone> {
        for (port, events) in ports.into_iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let Some(readers) = self.ports.get(port) else {
                continue;
            };
            let readers = readers.clone();
            let Some((&last, rest)) = readers.split_last() else {
                continue;
            };
            for &target in rest {
                self.send_to(target, events.clone(), ack).await?;
            }
            self.send_to(last, events, ack).await?;
        }
        Ok(())
    }

    /// Sends to one reader, splitting the batch by key for a sharded one.
    async fn send_to(
        &mut self,
        index: usize,
        events: Vec<Event>,
        ack: &Ack,
    ) -> Result<(), DownstreamGone> {
        let target = &mut self.targets[index];
        let Some(partitioner) = target.partitioner.clone() else {
            return send_lane(&mut target.lanes[0], events, ack).await;
        };
        let shards = target.lanes.len() as u64;
        let mut split: Vec<Vec<Event>> = target.lanes.iter().map(|_| Vec::new()).collect();
        for event in events {
            let shard = (partitioner(&event) % shards) as usize;
            split[shard].push(event);
        }
        for (lane, events) in target.lanes.iter_mut().zip(split) {
            if !events.is_empty() {
                send_lane(lane, events, ack).await?;
            }
        }
        Ok(())
    }

    /// Waits until every batch sent so far was handled, then tells each reader
    /// (every shard of it) that this component is done.
    pub async fn finish(&mut self, cause: crate::component::EndCause) {
        let mut told = HashSet::new();
        for target in &mut self.targets {
            for lane in &mut target.lanes {
                while let Some(reply) = lane.in_flight.next().await {
                    if reply.is_err() {
                        tracing::error!(from = %self.from, to = %lane.handle.id, "a batch was not handled: the receiver stopped");
                    }
                }
                if told.insert(lane.handle.id.clone()) {
                    let eoi = EndOfInput {
                        from: self.from.clone(),
                        cause,
                    };
                    if lane.handle.control.send(eoi).await.is_err() {
                        tracing::error!(from = %self.from, to = %lane.handle.id, "could not signal end of input: the receiver stopped");
                    }
                }
            }
        }
    }

    /// Marks `ack` failed: used when a batch cannot be sent on.
    pub fn abandon(ack: &Ack) {
        ack.update(BatchStatus::Failed);
    }
}

/// Waits for a slot in the lane's inbox and enqueues the batch.
async fn send_lane(lane: &mut Lane, events: Vec<Event>, ack: &Ack) -> Result<(), DownstreamGone> {
    reap(lane)?;
    let permit = match lane.handle.inbox.permits.clone().acquire_owned().await {
        Ok(permit) => permit,
        // The semaphore is never closed; treat it as the receiver being gone.
        Err(_) => return Err(DownstreamGone(lane.handle.id.clone())),
    };
    let depth = lane.handle.inbox.depth();
    lane.handle
        .stats
        .mailbox_peak
        .fetch_max(depth, std::sync::atomic::Ordering::Relaxed);
    let request = lane.handle.data.send(Deliver {
        events,
        ack: ack.clone(),
        permit,
    });
    lane.in_flight.push(request);
    Ok(())
}

/// Collects replies that already arrived, keeping the in-flight set small.
fn reap(lane: &mut Lane) -> Result<(), DownstreamGone> {
    while let Some(Some(reply)) = lane.in_flight.next().now_or_never() {
        if reply.is_err() {
            return Err(DownstreamGone(lane.handle.id.clone()));
        }
    }
    Ok(())
}

/// Sends what a component produced for one batch: counts it, accounts for
/// rejections (kept when something reads `rejected`, counted and logged when
/// not), and waits for room downstream.
pub async fn emit(
    outputs: &mut crate::component::Outputs,
    fanout: &mut Fanout,
    telemetry: &mut crate::telemetry::ComponentTelemetry,
    ack: &Ack,
) {
    let rejected_read = outputs
        .port(crate::component::REJECTED)
        .is_some_and(|port| fanout.has_readers(port));
    for (reason, count) in outputs.take_rejects() {
        telemetry.events_rejected(reason, count, rejected_read);
    }
    let ports = outputs.take_ports();
    for (port, events) in ports.iter().enumerate() {
        if !events.is_empty() && fanout.has_readers(port) {
            telemetry.events_sent(port, events.len());
        }
    }
    if let Err(gone) = fanout.send(ports, ack).await {
        Fanout::abandon(ack);
        telemetry.error("downstream_gone", &gone.to_string());
    }
}
