//! The messages actors exchange. Data moves only as [`Deliver`]; everything
//! else is control.

use std::sync::Arc;

use actix::Message;
use tokio::sync::OwnedSemaphorePermit;

use crate::ack::Ack;
use crate::component::EndCause;
use crate::event::Event;

/// A batch of events for one component.
///
/// `permit` is the sender's slot in the receiver's bounded mailbox: the
/// receiver drops it when it starts on the batch, which lets the next batch in.
/// The reply comes when the receiver has finished with the batch (including
/// waiting for room further downstream), so a sender can count its batches in
/// flight.
pub struct Deliver {
    pub events: Vec<Event>,
    pub ack: Ack,
    pub permit: OwnedSemaphorePermit,
}

impl Message for Deliver {
    type Result = ();
}

/// The upstream component `from` will send nothing more. Sent after its last
/// `Deliver` was answered, so it cannot overtake data.
pub struct EndOfInput {
    pub from: Arc<str>,
    /// Whether the input ran out or the service is shutting down.
    pub cause: EndCause,
}

impl Message for EndOfInput {
    type Result = ();
}

/// Time to run the component's time-driven work ([`crate::component::Transform::tick`]).
pub struct Tick;

impl Message for Tick {
    type Result = ();
}
