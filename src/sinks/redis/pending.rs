//! The sums waiting to be written, and the acknowledgements they hold.
//!
//! A [`Pending`] generation maps each distinct counter — a key, or a key and
//! a hash field — to the increment it owes Redis, together with the
//! acknowledgements of every batch whose events are summed in it. The sink
//! fills one generation while at most one other is being written.
//! [`HeldAcks`] settles its acknowledgements exactly once: delivered when the
//! flush succeeded, failed if the generation is dropped unwritten.

use std::collections::HashMap;

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::ack::{Ack, BatchStatus};

/// Acknowledgements whose batches are summed in a generation. Dropping it
/// without [`HeldAcks::delivered`] records `Failed` on each: counts that were
/// never written must not be reported delivered.
#[derive(Debug, Default)]
pub struct HeldAcks(Vec<Ack>);

impl HeldAcks {
    pub fn push(&mut self, ack: Ack) {
        // A batch split into several writes holds one handle, not one per write.
        if self.0.last().is_some_and(|last| last.same_batch(&ack)) {
            return;
        }
        self.0.push(ack);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counts were written: release every batch as delivered.
    pub fn delivered(mut self) {
        // Dropping an untouched handle records nothing worse than Delivered.
        self.0.clear();
    }

    /// Moves `other`'s handles into this one.
    pub fn append(&mut self, mut other: HeldAcks) {
        self.0.append(&mut other.0);
    }
}

impl Drop for HeldAcks {
    fn drop(&mut self) {
        for ack in self.0.drain(..) {
            ack.update(BatchStatus::Failed);
        }
    }
}

/// What one counter owes Redis.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Bytes of the composite string that are the Redis key; the rest is the
    /// hash field (empty in counter mode).
    key_len: u32,
    delta: i64,
}

/// One generation of sums.
#[derive(Debug, Default)]
pub struct Pending {
    /// Composite `key ++ field` → slot; one allocation per distinct counter,
    /// none per event.
    sums: HashMap<Box<str>, Slot, Xxh3DefaultBuilder>,
    pub acks: HeldAcks,
    /// Events summed in this generation.
    pub events: u64,
}

/// One increment to send: key, hash field (`None` in counter mode), amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Increment<'a> {
    pub key: &'a str,
    pub field: Option<&'a str>,
    pub delta: i64,
}

impl Pending {
    /// Adds one to the counter whose key is `composite[..key_len]` and whose
    /// hash field (when `hashed`) is the rest.
    pub fn add(&mut self, composite: &str, key_len: usize, hashed: bool) {
        self.events += 1;
        if let Some(slot) = self.sums.get_mut(composite) {
            slot.delta += 1;
            return;
        }
        let key_len = if hashed { key_len } else { composite.len() };
        self.sums.insert(
            composite.into(),
            Slot {
                // Keys longer than 4 GiB cannot come from a JSON line the
                // source accepted (lines are bounded by max_line_bytes).
                key_len: u32::try_from(key_len).unwrap_or(u32::MAX),
                delta: 1,
            },
        );
    }

    /// Distinct counters owed.
    pub fn keys(&self) -> usize {
        self.sums.len()
    }

    /// True when there is nothing to write and no batch to settle.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty() && self.acks.is_empty()
    }

    /// The increments, in no particular order.
    pub fn increments(&self, hashed: bool) -> impl Iterator<Item = Increment<'_>> {
        self.sums.iter().map(move |(composite, slot)| {
            let split = (slot.key_len as usize).min(composite.len());
            let (key, field) = composite.split_at(split);
            Increment {
                key,
                field: hashed.then_some(field),
                delta: slot.delta,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::ack_channel;

    #[test]
    fn sums_by_counter() {
        let mut p = Pending::default();
        p.add("a:1", 3, false);
        p.add("a:1", 3, false);
        p.add("b", 1, false);
        assert_eq!(p.keys(), 2);
        assert_eq!(p.events, 3);
        let mut incs: Vec<_> = p.increments(false).map(|i| (i.key, i.delta)).collect();
        incs.sort();
        assert_eq!(incs, vec![("a:1", 2), ("b", 1)]);
    }

    #[test]
    fn hashed_counters_split_key_and_field() {
        let mut p = Pending::default();
        // "counts:u1" + "Page Viewed", and a key/field split that would
        // collide as a plain string.
        p.add("counts:u1Page Viewed", 9, true);
        p.add("counts:u1Page Viewed", 9, true);
        p.add("counts:u1PPage Viewed", 10, true);
        let mut incs: Vec<_> = p
            .increments(true)
            .map(|i| (i.key.to_owned(), i.field.unwrap().to_owned(), i.delta))
            .collect();
        incs.sort();
        assert_eq!(
            incs,
            vec![
                ("counts:u1".into(), "Page Viewed".into(), 2),
                ("counts:u1P".into(), "Page Viewed".into(), 1)
            ]
        );
    }

    #[tokio::test]
    async fn held_acks_fail_unless_delivered() {
        let (a, a_rx) = ack_channel();
        let (b, b_rx) = ack_channel();
        let mut held = HeldAcks::default();
        held.push(a.clone());
        held.push(a); // the same batch twice is held once
        assert_eq!(held.len(), 1);
        held.delivered();
        assert_eq!(a_rx.await.unwrap(), BatchStatus::Delivered);

        let mut dropped = HeldAcks::default();
        dropped.push(b);
        drop(dropped);
        assert_eq!(b_rx.await.unwrap(), BatchStatus::Failed);
    }
}
