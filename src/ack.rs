//! End-to-end acknowledgements.
//!
//! Every batch a source emits carries an [`Ack`]. Transforms pass it along with
//! whatever they emit for that batch (cloning it when a batch splits or fans out),
//! and sinks record the outcome of their write on it. When the last clone is
//! dropped the source's callback runs once with the worst status any holder
//! recorded: a batch that fanned out to three sinks is `Delivered` only when all
//! three delivered. Dropping a clone without recording anything counts as
//! `Delivered`: that is how a transform says "nothing of this batch is left for
//! me to deliver" (it filtered everything out, or routed it elsewhere).
//!
//! The file source counts progress with it; the `segment_http` source answers
//! its requests on it (`acknowledgements = "delivered"`); the Kinesis source will
//! checkpoint on it.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// The outcome of delivering a batch. Ordered: a worse status wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BatchStatus {
    /// Every sink that received events of the batch wrote them.
    Delivered = 0,
    /// Some events were refused for good (poison, a permanent sink error).
    Rejected = 1,
    /// A write failed or the batch was abandoned: the source should retry.
    Failed = 2,
}

impl BatchStatus {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => BatchStatus::Delivered,
            1 => BatchStatus::Rejected,
            _ => BatchStatus::Failed,
        }
    }

    /// Lower-case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Delivered => "delivered",
            BatchStatus::Rejected => "rejected",
            BatchStatus::Failed => "failed",
        }
    }
}

type Callback = Box<dyn FnOnce(BatchStatus) + Send>;

struct Shared {
    status: AtomicU8,
    // A Mutex only so `Shared` is Sync; it is touched once, in `drop`.
    on_done: Mutex<Option<Callback>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let status = BatchStatus::from_u8(*self.status.get_mut());
        let callback = match self.on_done.get_mut() {
            Ok(slot) => slot.take(),
            // A poisoned lock still holds the callback; run it all the same.
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(callback) = callback {
            callback(status);
        }
    }
}

/// A shared acknowledgement handle for one source batch.
#[derive(Clone, Default)]
pub struct Ack(Option<Arc<Shared>>);

impl Ack {
    /// A handle that calls `on_done` once with the worst recorded status, after
    /// every clone has been dropped.
    pub fn new(on_done: impl FnOnce(BatchStatus) + Send + 'static) -> Self {
        Ack(Some(Arc::new(Shared {
            status: AtomicU8::new(BatchStatus::Delivered as u8),
            on_done: Mutex::new(Some(Box::new(on_done))),
        })))
    }

    /// A handle nobody waits on.
    pub fn none() -> Self {
        Ack(None)
    }

    /// Records `status`; the worst status recorded by any holder wins.
    pub fn update(&self, status: BatchStatus) {
        if let Some(shared) = &self.0 {
            shared.status.fetch_max(status as u8, Ordering::AcqRel);
        }
    }

    /// A handle that, when it completes, records its status on every one of
    /// `parents` (and then lets them go). Used when one outgoing batch carries
    /// events that arrived in several incoming batches.
    pub fn merge(parents: Vec<Ack>) -> Ack {
        let mut parents: Vec<Ack> = parents.into_iter().filter(|a| a.0.is_some()).collect();
        match parents.len() {
            0 => Ack::none(),
            1 => parents.pop().unwrap_or_default(),
            _ => Ack::new(move |status| {
                for parent in &parents {
                    parent.update(status);
                }
            }),
        }
    }

    /// True when both handles belong to the same batch.
    pub fn same_batch(&self, other: &Ack) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The worst status recorded so far.
    pub fn status(&self) -> BatchStatus {
        match &self.0 {
            Some(shared) => BatchStatus::from_u8(shared.status.load(Ordering::Acquire)),
            None => BatchStatus::Delivered,
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(_) => write!(f, "Ack({:?})", self.status()),
            None => f.write_str("Ack(none)"),
        }
    }
}

/// Waits for an acknowledgement: returns the handle to put on the batch and a
/// future resolving to the final status.
pub fn ack_channel() -> (Ack, tokio::sync::oneshot::Receiver<BatchStatus>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ack = Ack::new(move |status| {
        // The waiter may have gone away (a client disconnected): nothing to tell.
        let _ = tx.send(status);
    });
    (ack, rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn worst_status_wins_after_last_clone() {
        let seen = Arc::new(Mutex::new(None));
        let calls = Arc::new(AtomicUsize::new(0));
        let (s, c) = (seen.clone(), calls.clone());
        let ack = Ack::new(move |st| {
            *s.lock().unwrap() = Some(st);
            c.fetch_add(1, Ordering::SeqCst);
        });
        let a = ack.clone();
        let b = ack.clone();
        drop(ack);
        a.update(BatchStatus::Failed);
        drop(a);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "one holder is left");
        b.update(BatchStatus::Delivered);
        drop(b);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(*seen.lock().unwrap(), Some(BatchStatus::Failed));
    }

    #[tokio::test]
    async fn merged_ack_completes_every_parent() {
        let (a, rx_a) = ack_channel();
        let (b, rx_b) = ack_channel();
        let merged = Ack::merge(vec![a, b, Ack::none()]);
        merged.update(BatchStatus::Rejected);
        drop(merged);
        assert_eq!(rx_a.await.unwrap(), BatchStatus::Rejected);
        assert_eq!(rx_b.await.unwrap(), BatchStatus::Rejected);
    }

    #[tokio::test]
    async fn channel_resolves_delivered_when_untouched() {
        let (ack, rx) = ack_channel();
        let clone = ack.clone();
        drop(ack);
        drop(clone);
        assert_eq!(rx.await.unwrap(), BatchStatus::Delivered);
    }
}
