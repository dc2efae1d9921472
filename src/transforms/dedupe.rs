//! `dedupe`: sends repeats of an id field to `duplicates`, remembering a bounded
//! number of ids.
//!
//! Ids are remembered as 64-bit xxh3 hashes of their bytes, not as strings, so a
//! million ids cost about 26 MB (a hash set of `u64` plus a FIFO ring of the same
//! hashes) whatever the ids' length. xxh3 with seed 0 is stable across runs and
//! platforms, so the set could be snapshotted and reloaded. Two different ids
//! with the same hash would make the second look like a duplicate: with `n` ids
//! remembered that happens with probability about `n² / 2^65` (≈ 3·10⁻⁸ for a
//! million ids), and the "duplicate" still goes to the `duplicates` output rather
//! than being lost.
//!
//! Contract:
//! * The first event with an id goes to `""`; a later event with a remembered id
//!   goes, unchanged, to `duplicates`.
//! * At most `capacity` ids are remembered; when full, the id remembered longest
//!   ago is forgotten (FIFO: seeing a duplicate does not refresh its id).
//! * An event whose field is absent, `null`, `""`, or not a string or number is
//!   rejected as `missing_dedupe_field`. Numbers are hashed by their JSON text, so
//!   `42` and `"42"` are the same id.
//! * The remembered ids live in the [`StateStore`](crate::component::StateStore)
//!   under `(id, "seen_ids")` and survive restarts of the component. An id is
//!   remembered as soon as its event is seen, so if the engine ever replays an
//!   event that already passed, the replay goes to `duplicates`. A rebuild with
//!   a different `capacity` resizes the kept memory, forgetting the oldest ids
//!   if it shrank.
//!
//! Outputs: `""`, `duplicates`, `rejected`.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::component::{BuildContext, Outputs, Partitioner, Transform, Verdict, REJECTED};
use crate::config::FieldError;
use crate::event::{json_kind, Event, FieldPath};
use crate::transforms::filter::show_value;

/// The output repeats go to.
pub const DUPLICATES: &str = "duplicates";

const DEFAULT_PORT: usize = 0;
const DUPLICATES_PORT: usize = 1;

/// `[transforms.<id>]` with `type = "dedupe"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// The field holding the id; default `messageId`.
    #[serde(default = "default_field")]
    pub field: FieldPath,
    /// How many ids to remember at most; the oldest is forgotten first.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Split the work over this many actors by id hash (default 1). Each shard
    /// remembers `capacity / shards` ids: an id always lands on the same shard,
    /// so duplicates are still found, and the stage uses that many cores.
    #[serde(default = "default_shards")]
    pub shards: usize,
}

fn default_shards() -> usize {
    1
}

fn default_field() -> FieldPath {
    // A literal without dots or empty segments: parsing cannot fail.
    FieldPath::parse("messageId").expect("\"messageId\" is a valid field path")
}

fn default_capacity() -> usize {
    1_000_000
}

impl DedupeConfig {
    /// `""` for first sightings, `duplicates`, then `rejected`.
    pub fn outputs(&self) -> Vec<String> {
        vec![String::new(), DUPLICATES.to_owned(), REJECTED.to_owned()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.capacity == 0 {
            errors.push(FieldError::new(
                "capacity",
                "capacity 0 would remember no ids, so nothing could be found a duplicate; use at least 1",
            ));
        }
        if self.shards == 0 {
            errors.push(FieldError::new(
                "shards",
                "shards 0 leaves no actor to do the work; use at least 1",
            ));
        }
        errors
    }

    /// With `shards > 1`: how many shards, and which one an event belongs to
    /// (by the same hash the shard remembers).
    pub fn partitioning(&self) -> Option<(usize, Partitioner)> {
        if self.shards <= 1 {
            return None;
        }
        let field = self.field.clone();
        let partitioner: Partitioner = Arc::new(move |event: &Event| match event.get_str(&field) {
            Some(id) => xxh3_64(id.as_bytes()),
            None => match event.get(&field) {
                Some(Value::Number(n)) => xxh3_64(n.to_string().as_bytes()),
                // No usable id: it is rejected on whichever shard gets it.
                _ => 0,
            },
        });
        Some((self.shards, partitioner))
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> {
        if self.capacity == 0 {
            return Err(format!("dedupe {}: capacity must be at least 1", cx.id));
        }
        let capacity = self.capacity.div_ceil(self.shards.max(1));
        let seen = cx
            .state
            .get_or_insert(cx.id, "seen_ids", || Mutex::new(SeenIds::new(capacity)));
        // A reload may change the capacity of state kept from an earlier build.
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_capacity(capacity);
        Ok(Box::new(Dedupe {
            field: self.field.clone(),
            seen,
            number_text: String::new(),
        }))
    }
}

/// A running dedupe.
pub struct Dedupe {
    field: FieldPath,
    seen: Arc<Mutex<SeenIds>>,
    /// Reused buffer for the text of numeric ids, so they cost no allocation.
    number_text: String,
}

impl Dedupe {
    /// The hash of the event's id, or why it has none.
    fn id_hash(&mut self, event: &Event) -> Result<u64, String> {
        if let Some(id) = event.get_str(&self.field).filter(|id| !id.is_empty()) {
            return Ok(xxh3_64(id.as_bytes()));
        }
        match event.get(&self.field) {
            Some(Value::String(id)) if !id.is_empty() => Ok(xxh3_64(id.as_bytes())),
            Some(Value::Number(n)) => {
                self.number_text.clear();
                // Writing into a String cannot fail.
                write!(self.number_text, "{n}").expect("formatting into a String");
                Ok(xxh3_64(self.number_text.as_bytes()))
            }
            None => Err(format!(
                "{} is missing, so the event cannot be deduplicated",
                self.field
            )),
            Some(Value::Null) => Err(format!(
                "{} is null, so the event cannot be deduplicated",
                self.field
            )),
            Some(Value::String(_)) => Err(format!(
                "{} is an empty string, so the event cannot be deduplicated",
                self.field
            )),
            Some(other) => Err(format!(
                "{} is {} ({}), not a string or number, so the event cannot be deduplicated",
                self.field,
                show_value(other),
                json_kind(other)
            )),
        }
    }
}

impl Transform for Dedupe {
    fn transform(&mut self, event: &mut Event, _out: &mut Outputs) -> Verdict {
        let hash = match self.id_hash(event) {
            Ok(hash) => hash,
            Err(message) => {
                return Verdict::Reject {
                    reason: "missing_dedupe_field",
                    message,
                }
            }
        };
        // A panic while the lock is held could only come from an allocation
        // failure inside `remember`, which aborts instead; a poisoned set is
        // therefore still consistent and safe to keep using.
        let first_sighting = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remember(hash);
        if first_sighting {
            Verdict::Emit(DEFAULT_PORT)
        } else {
            Verdict::Emit(DUPLICATES_PORT)
        }
    }
}

/// The remembered id hashes: a set for lookups and a ring for FIFO eviction,
/// always holding the same hashes.
pub struct SeenIds {
    set: HashSet<u64, BuildIdentity>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl SeenIds {
    /// An empty memory for at most `capacity` ids. Storage grows as ids arrive
    /// rather than being reserved up front, so a large capacity costs nothing
    /// until it is used.
    pub fn new(capacity: usize) -> Self {
        SeenIds {
            set: HashSet::default(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Remembers `hash`; true when it was not remembered already. Holding more
    /// than `capacity` hashes then, it forgets the oldest.
    pub fn remember(&mut self, hash: u64) -> bool {
        // One probe of the set: `insert` both tests and adds.
        if !self.set.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        true
    }

    /// Changes the bound, forgetting the oldest hashes if there are now too many.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.order.len() > capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    /// Whether `hash` is remembered.
    pub fn contains(&self, hash: u64) -> bool {
        self.set.contains(&hash)
    }

    /// Number of hashes remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most hashes it will remember.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Hashes a `u64` key to itself: the keys are already xxh3 hashes, so hashing
/// them again would only cost time.
#[derive(Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else in so the
        // hasher stays correct if it is ever given other input.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`IdentityHasher`]s.
pub type BuildIdentity = BuildHasherDefault<IdentityHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StateStore;
    use crate::config::EngineConfig;

    fn config(toml_text: &str) -> DedupeConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn run(t: &mut dyn Transform, config: &DedupeConfig, json: &str) -> Verdict {
        let mut out = Outputs::new("unique".into(), config.outputs().into());
        t.transform(&mut Event::from_json(json).unwrap(), &mut out)
    }

    fn build(config: &DedupeConfig, state: &StateStore) -> Box<dyn Transform> {
        let engine = EngineConfig::default();
        let cx = BuildContext {
            id: "unique",
            engine: &engine,
            state,
            shard: None,
        };
        config.build(&cx).unwrap()
    }

    #[test]
    fn defaults() {
        let c = config("");
        assert_eq!(c.field.as_str(), "messageId");
        assert_eq!(c.capacity, 1_000_000);
        assert_eq!(c.outputs(), vec!["", "duplicates", "rejected"]);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn repeats_go_to_duplicates() {
        let c = config("");
        let mut t = build(&c, &StateStore::default());
        assert_eq!(run(&mut *t, &c, r#"{"messageId":"a"}"#), Verdict::Emit(0));
        assert_eq!(run(&mut *t, &c, r#"{"messageId":"b"}"#), Verdict::Emit(0));
        assert_eq!(run(&mut *t, &c, r#"{"messageId":"a"}"#), Verdict::Emit(1));
    }

    #[test]
    fn numbers_and_their_text_are_one_id() {
        let c = config(r#"field = "properties.order_id""#);
        let mut t = build(&c, &StateStore::default());
        let first = run(&mut *t, &c, r#"{"properties":{"order_id":42}}"#);
        assert_eq!(first, Verdict::Emit(0));
        let again = run(&mut *t, &c, r#"{"properties":{"order_id":"42"}}"#);
        assert_eq!(again, Verdict::Emit(1));
    }

    #[test]
    fn oldest_id_is_forgotten_when_full() {
        let c = config("capacity = 2");
        let mut t = build(&c, &StateStore::default());
        for id in ["a", "b", "c"] {
            let json = format!(r#"{{"messageId":"{id}"}}"#);
            assert_eq!(run(&mut *t, &c, &json), Verdict::Emit(0));
        }
        // "a" was evicted by "c"; "c" is still remembered.
        assert_eq!(run(&mut *t, &c, r#"{"messageId":"c"}"#), Verdict::Emit(1));
        assert_eq!(run(&mut *t, &c, r#"{"messageId":"a"}"#), Verdict::Emit(0));
    }

    #[test]
    fn seen_ids_stay_bounded_and_in_step() {
        let mut seen = SeenIds::new(3);
        for h in 0..10u64 {
            assert!(seen.remember(h));
            assert!(!seen.remember(h));
        }
        assert_eq!(seen.len(), 3);
        assert!(seen.contains(9) && seen.contains(7) && !seen.contains(6));
        assert_eq!(seen.set.len(), seen.order.len());
    }

    #[test]
    fn shrinking_the_capacity_forgets_the_oldest() {
        let mut seen = SeenIds::new(5);
        for h in 0..5u64 {
            seen.remember(h);
        }
        seen.set_capacity(2);
        assert_eq!(seen.len(), 2);
        assert!(seen.contains(4) && seen.contains(3) && !seen.contains(2));
    }

    #[test]
    fn memory_survives_a_rebuild() {
        let c = config("");
        let state = StateStore::default();
        let mut first = build(&c, &state);
        assert_eq!(
            run(&mut *first, &c, r#"{"messageId":"a"}"#),
            Verdict::Emit(0)
        );
        drop(first);
        let mut rebuilt = build(&c, &state);
        assert_eq!(
            run(&mut *rebuilt, &c, r#"{"messageId":"a"}"#),
            Verdict::Emit(1)
        );
    }

    #[test]
    fn events_without_a_usable_id_are_rejected() {
        let c = config("");
        let mut t = build(&c, &StateStore::default());
        for json in [
            r#"{}"#,
            r#"{"messageId":null}"#,
            r#"{"messageId":""}"#,
            r#"{"messageId":{"a":1}}"#,
        ] {
            match run(&mut *t, &c, json) {
                Verdict::Reject { reason, message } => {
                    assert_eq!(reason, "missing_dedupe_field");
                    assert!(message.starts_with("messageId is"), "{message}");
                }
                other => panic!("{json}: expected a rejection, got {other:?}"),
            }
        }
    }

    #[test]
    fn zero_capacity_is_refused() {
        let c = config("capacity = 0");
        assert_eq!(c.validate()[0].field, "capacity");
        let engine = EngineConfig::default();
        let state = StateStore::default();
        let cx = BuildContext {
            id: "unique",
            engine: &engine,
            state: &state,
            shard: None,
        };
        assert!(c.build(&cx).is_err());
    }

    #[test]
    fn hashes_are_stable_across_runs() {
        // Snapshots of the seen set depend on this value never changing.
        assert_eq!(xxh3_64(b"m-1"), 2_145_753_324_863_098_214);
    }
}
