//! The sessionizer's state as a plain struct: open sessions by machine, the
//! lateness buffer, the watermark and the timers that close sessions.
//!
//! Nothing here knows about actors or wall clocks: every method that needs the
//! time takes it as an argument (`now_ms`, Unix milliseconds), and everything
//! it produces goes to a [`SessionSink`], so tests drive it directly with a
//! controlled clock. The [`Transform`](crate::component::Transform) in
//! `transform.rs` is a thin adapter over it.
//!
//! # Layout
//!
//! * Machines live in a slab (`slots`), found by key through
//!   `slot_by_machine`. Timers refer to a machine by `(slot, generation)`, so
//!   they cost no key copy and a reused slot never answers for its old machine.
//! * `release_timers`: a min-heap of `(event time, slot)` holding each
//!   machine's earliest buffered time (plus stale entries, which are harmless).
//!   When the watermark passes the top, that machine's due events leave in
//!   `(time, messageId)` order and its next earliest is queued. No scan over
//!   machines.
//! * `close_timers`: a min-heap of `(last event time + timeout, slot)`, at most
//!   one entry per machine. Entries are lower bounds: a session that got newer
//!   events is found when its old deadline comes up and re-queued with the real
//!   one. The top is also the longest-idle session, so eviction is a pop.
//! * Closed sessions are remembered ("tombstones", FIFO, at most
//!   `max_open_sessions`) only with `allowed_lateness = 0`, where no watermark
//!   shields them: an event that would have continued a closed session goes to
//!   `late` instead of being tagged with a session it does not belong to.
//!
//! # What one open session costs
//!
//! On x86-64: the slot (`Machine` with its `Session`, 120 bytes), the key's
//! bytes (a `Box<str>`), a `u32` in the index (a hashbrown table at most 7/8
//! full: 5–10 bytes with its control byte), one close timer (16 bytes) and the
//! `userId`, when the session has one (one allocation of its length). Event
//! names are interned, so a session's first and last event names cost 8 bytes.
//! Timer heaps give back their spare room once mostly empty, so a burst of
//! buffered events does not leave 16 bytes per event behind. Measured with
//! 1,000,000 open sessions, 36-character keys and 36-character user ids
//! (`cargo bench --bench session_memory`): 229 bytes per session as requested
//! from the allocator. Buffered events cost their own size plus 40 bytes and
//! one 16-byte release timer each.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use hashbrown::HashTable;

use chrono::{DateTime, SecondsFormat, TimeZone as _};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;
use xxhash_rust::xxh3::{xxh3_64, Xxh3DefaultBuilder};

use crate::ack::Ack;
use crate::event::{json, Event, FieldPath};

/// The namespace of session ids (UUIDv5). Changing it changes every session id
/// ever produced: never do.
pub const SESSION_ID_NAMESPACE: Uuid = Uuid::from_u128(0x8f6e_2c1a_5d3b_4e7f_9a0c_1b2d_3e4f_5a6b);

/// Reasons a session closes, as they appear in `end_reason`.
pub const END_REASONS: [&str; 7] = [
    TIMEOUT,
    OPEN_EVENT,
    MAX_DURATION,
    DAILY_SPLIT,
    EVICTED,
    END_OF_INPUT,
    SHUTDOWN,
];
pub const TIMEOUT: &str = "timeout";
pub const OPEN_EVENT: &str = "open_event";
pub const MAX_DURATION: &str = "max_duration";
pub const DAILY_SPLIT: &str = "daily_split";
pub const EVICTED: &str = "evicted";
pub const END_OF_INPUT: &str = "end_of_input";
pub const SHUTDOWN: &str = "shutdown";

/// `late_reason` of an event older than the watermark on arrival.
pub const LATE_BEFORE_WATERMARK: &str = "before_watermark";
/// `late_reason`, pass-through mode: older than its machine's last tagged event.
pub const LATE_OUT_OF_ORDER: &str = "out_of_order";
/// `late_reason`, pass-through mode: it would continue a session already closed.
pub const LATE_SESSION_CLOSED: &str = "session_closed";

/// The field a late event carries its reason in.
pub const LATE_REASON_FIELD: &str = "late_reason";
/// The field a tagged event carries `{id, seq, start}` in.
pub const SESSION_FIELD: &str = "session";

/// Distinct event names remembered for `first_event`/`last_event`; names past
/// this bound are reported as [`OTHER_EVENT_NAME`] so the interner stays bounded.
const MAX_EVENT_NAMES: usize = 100_000;
/// What `first_event`/`last_event` say once [`MAX_EVENT_NAMES`] is reached.
pub const OTHER_EVENT_NAME: &str = "(other)";

/// Snapshot format version, checked on restore.
const SNAPSHOT_VERSION: u32 = 1;

/// The session rules, pre-parsed from the config.
#[derive(Debug, Clone)]
pub struct Rules {
    pub key: FieldPath,
    pub fallback_key: FieldPath,
    pub time_field: FieldPath,
    pub id_field: FieldPath,
    pub timeout_ms: i64,
    /// 0 = no cap.
    pub max_duration_ms: i64,
    pub lateness_ms: i64,
    pub max_future_ms: i64,
    pub open_events: HashSet<String, Xxh3DefaultBuilder>,
    pub split_daily: Option<Tz>,
    pub max_open_sessions: usize,
    pub max_buffered_events: usize,
    /// Estimated heap bytes of buffered events kept at most (per shard).
    pub max_buffered_bytes: u64,
    type_field: FieldPath,
    event_field: FieldPath,
    user_field: FieldPath,
    session_field: FieldPath,
}

impl Rules {
    /// Rules with the given fields and the defaults of the config elsewhere
    /// (30 minutes timeout, no cap, no lateness, one day of future).
    pub fn new(
        key: FieldPath,
        fallback_key: FieldPath,
        time_field: FieldPath,
        id_field: FieldPath,
    ) -> Self {
        Rules {
            key,
            fallback_key,
            time_field,
            id_field,
            timeout_ms: 30 * 60_000,
            max_duration_ms: 0,
            lateness_ms: 0,
            max_future_ms: 86_400_000,
            open_events: HashSet::default(),
            split_daily: None,
            max_open_sessions: 2_000_000,
            max_buffered_events: 1_000_000,
            max_buffered_bytes: 512 * 1024 * 1024,
            type_field: literal_path("type"),
            event_field: literal_path("event"),
            user_field: literal_path("userId"),
            session_field: literal_path(SESSION_FIELD),
        }
    }
}

fn literal_path(text: &str) -> FieldPath {
    // Only called with single-segment literals, which always parse.
    FieldPath::parse(text).expect("a literal field name is a valid path")
}

/// Where the state's products go.
pub trait SessionSink {
    /// The acknowledgement to keep with an event taken into the buffer.
    fn hold_ack(&self) -> Ack;
    /// A tagged event leaves (on the default output); `ack` is the one kept
    /// with it when it was buffered.
    fn event(&mut self, event: Event, ack: Ack);
    /// A session closed: its summary record.
    fn summary(&mut self, summary: Event, end_reason: &'static str);
    /// A session opened.
    fn opened(&mut self);
}

/// What [`SessionState::accept`] did with an arriving event.
#[derive(Debug, PartialEq)]
pub enum Arrival {
    /// Taken into the lateness buffer (the caller's event is now empty); it
    /// leaves through [`SessionSink::event`] once its session is final.
    Held,
    /// Pass-through mode: tagged in place, to be sent on the default output.
    Tagged,
    /// Marked with `late_reason` (the reason given), to be sent on `late`.
    Late(&'static str),
    /// To be rejected: `no_key`, `bad_timestamp`, `future_timestamp` or
    /// `duplicate`.
    Rejected {
        reason: &'static str,
        message: String,
    },
}

/// One machine's open (or, in pass-through mode, closed) session.
#[derive(Debug, Clone)]
struct Session {
    id: [u8; 16],
    start_ms: i64,
    last_ms: i64,
    /// The first local midnight after `start_ms` (`i64::MAX` without `split_daily`).
    day_end_ms: i64,
    /// xxh3 of the last event's messageId: catches a repeated event in
    /// pass-through mode without keeping the id.
    last_id_hash: u64,
    count: u32,
    first_event: u32,
    last_event: u32,
    /// False for a tombstone (pass-through mode only).
    open: bool,
    user_id: Option<Box<str>>,
}

/// An event waiting for the watermark.
struct Held {
    time_ms: i64,
    /// [`approx_heap_bytes`] of the event, counted against `max_buffered_bytes`.
    bytes: u32,
    facts: Facts,
    event: Event,
    ack: Ack,
}

/// What the sessionizer needs of an event besides its time, read when it
/// arrives (its fields are then in cache): a buffered event is placed minutes
/// later, when reading its fields again would mostly be cache misses.
#[derive(Clone, Copy)]
struct Facts {
    /// Interned `event` (else `type`).
    name: u32,
    is_open: bool,
    /// xxh3 of the messageId.
    id_hash: u64,
    /// xxh3 of a non-empty `userId`; 0 without one.
    user_hash: u64,
}

struct Machine {
    /// Boxed rather than shared: 16 bytes of reference counts less per
    /// machine; summaries borrow it field by field.
    key: Box<str>,
    session: Option<Session>,
    /// Whether `close_timers` holds an entry for this slot's generation.
    timed: bool,
    /// Sorted by (time, messageId); `None` when empty, so a machine with
    /// nothing waiting costs 8 bytes for it.
    // Boxed on purpose: 8 bytes per open session instead of a Vec's 24, and
    // most sessions have nothing waiting at a given moment.
    #[allow(clippy::box_collection)]
    buffer: Option<Box<Vec<Held>>>,
}

struct Slot {
    generation: u32,
    machine: Option<Machine>,
}

/// `(time, slot, generation)`, smallest first.
type Timers = BinaryHeap<Reverse<(i64, u32, u32)>>;

/// The sessionizer's whole state. See the module doc.
pub struct SessionState {
    rules: Rules,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Slot numbers, hashed by the xxh3 of their machine's key (the key
    /// itself lives only in the slot).
    slot_by_machine: HashTable<u32>,
    release_timers: Timers,
    close_timers: Timers,
    tombstones: VecDeque<(u32, u32)>,
    /// Slots that may have become empty; freed at the end of each operation
    /// (not on the spot, because a machine's buffer is out of its slot while
    /// its events are released).
    maybe_empty: Vec<u32>,
    open_sessions: usize,
    buffered: usize,
    /// Estimated heap bytes of the buffered events ([`approx_heap_bytes`]).
    buffered_bytes: u64,
    /// Greatest event time accepted; `i64::MIN` before the first.
    max_event_ms: i64,
    /// Events older than this are late; events older than this that are
    /// buffered are released. Never decreases.
    watermark_ms: i64,
    /// Wall time from which the idle advance counts: the first tick after
    /// `max_event_ms` was last raised (`None` until that tick).
    anchor_wall_ms: Option<i64>,
    event_names: Vec<Arc<str>>,
    name_index: HashMap<Arc<str>, u32, Xxh3DefaultBuilder>,
    key_text: String,
    id_input: Vec<u8>,
}

impl SessionState {
    pub fn new(rules: Rules) -> Self {
        let mut state = SessionState {
            rules,
            slots: Vec::new(),
            free_slots: Vec::new(),
            slot_by_machine: HashTable::new(),
            release_timers: BinaryHeap::new(),
            close_timers: BinaryHeap::new(),
            tombstones: VecDeque::new(),
            maybe_empty: Vec::new(),
            open_sessions: 0,
            buffered: 0,
            buffered_bytes: 0,
            max_event_ms: i64::MIN,
            watermark_ms: i64::MIN,
            anchor_wall_ms: None,
            event_names: Vec::new(),
            name_index: HashMap::default(),
            key_text: String::new(),
            id_input: Vec::new(),
        };
        state.intern("");
        state.intern(OTHER_EVENT_NAME);
        state
    }

    /// Replaces the rules (a rebuild with a changed config). Open sessions and
    /// buffered events are kept; the new bounds apply from the next event.
    pub fn set_rules(&mut self, rules: Rules) {
        self.rules = rules;
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The current watermark (`i64::MIN` before the first event).
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    pub fn open_sessions(&self) -> usize {
        self.open_sessions
    }

    pub fn buffered_events(&self) -> usize {
        self.buffered
    }

    /// Estimated heap bytes of the buffered events.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered_bytes
    }

    /// Machines with an open session, buffered events or a tombstone.
    pub fn machines(&self) -> usize {
        self.slot_by_machine.len()
    }

    fn pass_through(&self) -> bool {
        self.rules.lateness_ms == 0
    }

    /// Takes one arriving event. `now_ms` is the wall clock (Unix ms), used
    /// only to refuse timestamps beyond `max_future`.
    pub fn accept(&mut self, event: &mut Event, now_ms: i64, out: &mut dyn SessionSink) -> Arrival {
        let arrival = self.accept_inner(event, now_ms, out);
        self.free_empty_slots();
        arrival
    }

    fn accept_inner(
        &mut self,
        event: &mut Event,
        now_ms: i64,
        out: &mut dyn SessionSink,
    ) -> Arrival {
        // The key is copied into a reused buffer: no allocation, and the
        // event is free to be moved afterwards.
        let mut key = std::mem::take(&mut self.key_text);
        let found = read_key(event, &self.rules.key, &mut key)
            || read_key(event, &self.rules.fallback_key, &mut key);
        let arrival = if found {
            self.accept_keyed(&key, event, now_ms, out)
        } else {
            Arrival::Rejected {
                reason: "no_key",
                message: format!(
                    "neither {} nor {} holds a non-empty string or number, so the event has no machine to be sessionized by",
                    self.rules.key, self.rules.fallback_key
                ),
            }
        };
        self.key_text = key;
        arrival
    }

    fn accept_keyed(
        &mut self,
        key: &str,
        event: &mut Event,
        now_ms: i64,
        out: &mut dyn SessionSink,
    ) -> Arrival {
        let time_ms = match read_time(event, &self.rules.time_field) {
            Ok(t) => t,
            Err(message) => {
                return Arrival::Rejected {
                    reason: "bad_timestamp",
                    message,
                }
            }
        };
        let horizon = now_ms.saturating_add(self.rules.max_future_ms);
        if time_ms > horizon {
            return Arrival::Rejected {
                reason: "future_timestamp",
                message: format!(
                    "{} {} is more than {} ms ahead of the wall clock ({}), so it cannot be trusted to move the watermark",
                    self.rules.time_field,
                    format_ms(time_ms),
                    self.rules.max_future_ms,
                    format_ms(now_ms)
                ),
            };
        }
        if self.pass_through() {
            self.accept_pass_through(key, time_ms, event, out)
        } else {
            self.accept_buffered(key, time_ms, event, out)
        }
    }

    /// `allowed_lateness > 0`: buffer until the watermark passes the event.
    fn accept_buffered(
        &mut self,
        key: &str,
        time_ms: i64,
        event: &mut Event,
        out: &mut dyn SessionSink,
    ) -> Arrival {
        if time_ms < self.watermark_ms {
            return mark_late(event, LATE_BEFORE_WATERMARK);
        }
        let facts = self.facts(event);
        let slot = self.slot_for(key);
        let id_field = &self.rules.id_field;
        let Some(machine) = self.slots[slot as usize].machine.as_mut() else {
            unreachable!("slot_for gives an occupied slot");
        };
        let id = message_id(event, id_field);
        let buffer: &[Held] = machine.buffer.as_deref().map_or(&[], Vec::as_slice);
        // The first waiting event not before this one. Events mostly arrive
        // in order: the usual answer is "at the end".
        let position = match buffer.last() {
            Some(last) if held_before(last, time_ms, id, id_field) => buffer.len(),
            _ => buffer.partition_point(|h| held_before(h, time_ms, id, id_field)),
        };
        let duplicate = buffer
            .get(position)
            .is_some_and(|next| next.time_ms == time_ms && message_id(&next.event, id_field) == id);
        if duplicate {
            return Arrival::Rejected {
                reason: "duplicate",
                message: format!(
                    "{id_field} \"{id}\" at {} is already waiting in the session buffer of machine \"{key}\"",
                    format_ms(time_ms)
                ),
            };
        }
        let bytes = approx_heap_bytes(event);
        let held = Held {
            time_ms,
            bytes,
            facts,
            event: std::mem::take(event),
            ack: out.hold_ack(),
        };
        self.machine_mut(slot)
            .buffer
            .get_or_insert_with(Box::default)
            .insert(position, held);
        if position == 0 {
            // The machine's earliest waiting event: its release timer. A
            // later event is covered by the timer of an earlier one.
            let generation = self.slots[slot as usize].generation;
            self.release_timers
                .push(Reverse((time_ms, slot, generation)));
        }
        self.buffered += 1;
        self.buffered_bytes += u64::from(bytes);
        if time_ms > self.max_event_ms {
            self.max_event_ms = time_ms;
            self.anchor_wall_ms = None;
        }
        let watermark = self.max_event_ms.saturating_sub(self.rules.lateness_ms);
        if watermark > self.watermark_ms {
            self.advance_to(watermark, out);
        }
        // The buffer is full (events or bytes): move the watermark just past
        // the oldest buffered event so it leaves, until it fits. Anything
        // older arriving later is late, as after any watermark advance. Each
        // round pops a timer or raises the watermark, so this ends.
        while self.buffered > self.rules.max_buffered_events
            || self.buffered_bytes > self.rules.max_buffered_bytes
        {
            let Some(&Reverse((oldest, _, _))) = self.release_timers.peek() else {
                break;
            };
            self.advance_to(oldest.saturating_add(1), out);
        }
        Arrival::Held
    }

    /// `allowed_lateness = 0`: tag on arrival.
    fn accept_pass_through(
        &mut self,
        key: &str,
        time_ms: i64,
        event: &mut Event,
        out: &mut dyn SessionSink,
    ) -> Arrival {
        let facts = self.facts(event);
        let Facts {
            id_hash, is_open, ..
        } = facts;
        let slot = match self.find_slot(key) {
            Some(slot) => {
                if let Some(session) = &self.machine(slot).session {
                    if time_ms < session.last_ms {
                        return mark_late(event, LATE_OUT_OF_ORDER);
                    }
                    if time_ms == session.last_ms && id_hash == session.last_id_hash {
                        return Arrival::Rejected {
                            reason: "duplicate",
                            message: format!(
                                "{} \"{}\" at {} was just sessionized for machine \"{key}\"",
                                self.rules.id_field,
                                message_id(event, &self.rules.id_field),
                                format_ms(time_ms)
                            ),
                        };
                    }
                    if !session.open && self.boundary(session, time_ms, is_open).is_none() {
                        return mark_late(event, LATE_SESSION_CLOSED);
                    }
                }
                slot
            }
            None => self.slot_for(key),
        };
        self.place(slot, time_ms, facts, event, out);
        if time_ms > self.max_event_ms {
            self.max_event_ms = time_ms;
            self.advance_to(time_ms, out);
        }
        self.evict_beyond_bound(out);
        Arrival::Tagged
    }

    /// Wall-clock tick: the idle advance of the watermark, which releases
    /// buffered events and closes sessions whose timeout has passed.
    pub fn tick(&mut self, now_ms: i64, out: &mut dyn SessionSink) {
        if self.pass_through() || self.max_event_ms == i64::MIN {
            return;
        }
        let anchor = *self.anchor_wall_ms.get_or_insert(now_ms);
        let idle = now_ms.saturating_sub(anchor).max(0);
        let watermark = self
            .max_event_ms
            .saturating_sub(self.rules.lateness_ms)
            .saturating_add(idle);
        if watermark > self.watermark_ms {
            self.advance_to(watermark, out);
        }
        self.free_empty_slots();
    }

    /// The input ended: every buffered event leaves in order, then every
    /// open session closes with `end_reason`. The watermark is kept, so the
    /// state refuses events older than what it has emitted.
    pub fn finish(&mut self, end_reason: &'static str, out: &mut dyn SessionSink) {
        while let Some(Reverse((_, slot, generation))) = self.release_timers.pop() {
            if self.slots[slot as usize].generation == generation {
                self.release(slot, i64::MAX, out);
            }
        }
        for index in 0..self.slots.len() {
            let Some(machine) = self.slots[index].machine.as_mut() else {
                continue;
            };
            if let Some(session) = machine.session.take() {
                if session.open {
                    self.open_sessions -= 1;
                    emit_summary(&self.event_names, &machine.key, &session, end_reason, out);
                }
            }
        }
        self.slots.clear();
        self.free_slots.clear();
        self.slot_by_machine.clear();
        self.release_timers.clear();
        self.close_timers.clear();
        self.tombstones.clear();
        self.maybe_empty.clear();
        self.buffered = 0;
        self.buffered_bytes = 0;
        self.open_sessions = 0;
    }

    /// Moves the watermark to `watermark`: releases the buffered events it
    /// passed, then closes the sessions whose timeout it passed.
    fn advance_to(&mut self, watermark: i64, out: &mut dyn SessionSink) {
        self.watermark_ms = self.watermark_ms.max(watermark);
        let watermark = self.watermark_ms;
        while let Some(&Reverse((time_ms, slot, generation))) = self.release_timers.peek() {
            if time_ms >= watermark {
                break;
            }
            self.release_timers.pop();
            if self.slots[slot as usize].generation == generation {
                self.release(slot, watermark, out);
            }
        }
        while let Some(&Reverse((deadline, slot, generation))) = self.close_timers.peek() {
            if deadline >= watermark {
                break;
            }
            self.close_timers.pop();
            self.expire(slot, generation, watermark, out);
        }
        shrink_spare(&mut self.release_timers);
        shrink_spare(&mut self.close_timers);
    }

    /// Releases the buffered events of `slot` older than `watermark`.
    fn release(&mut self, slot: u32, watermark: i64, out: &mut dyn SessionSink) {
        let Some(mut buffer) = self.machine_mut(slot).buffer.take() else {
            return;
        };
        let due = buffer.partition_point(|h| h.time_ms < watermark);
        self.buffered -= due;
        for mut held in buffer.drain(..due) {
            self.buffered_bytes -= u64::from(held.bytes);
            self.place(slot, held.time_ms, held.facts, &mut held.event, out);
            out.event(held.event, held.ack);
            self.evict_beyond_bound(out);
        }
        if let Some(first) = buffer.first() {
            let generation = self.slots[slot as usize].generation;
            self.release_timers
                .push(Reverse((first.time_ms, slot, generation)));
            self.machine_mut(slot).buffer = Some(buffer);
        }
        self.maybe_empty.push(slot);
    }

    /// A close timer of `slot` came due at `watermark`.
    fn expire(&mut self, slot: u32, generation: u32, watermark: i64, out: &mut dyn SessionSink) {
        let timeout = self.rules.timeout_ms;
        let pass_through = self.pass_through();
        let entry = &mut self.slots[slot as usize];
        if entry.generation != generation {
            return;
        }
        let Some(machine) = entry.machine.as_mut() else {
            return;
        };
        let deadline = match &machine.session {
            Some(session) if session.open => session.last_ms.saturating_add(timeout),
            _ => {
                machine.timed = false;
                return;
            }
        };
        if deadline >= watermark {
            // The session got newer events since this timer was set.
            self.close_timers
                .push(Reverse((deadline, slot, generation)));
            return;
        }
        machine.timed = false;
        let Some(mut session) = machine.session.take() else {
            return;
        };
        let summary = summary_record(&self.event_names, &machine.key, &session, TIMEOUT);
        if pass_through {
            session.open = false;
            self.machine_mut(slot).session = Some(session);
            self.tombstones.push_back((slot, generation));
            self.trim_tombstones();
        } else {
            self.maybe_empty.push(slot);
        }
        self.open_sessions -= 1;
        out.summary(summary, TIMEOUT);
    }

    /// Adds the event at `time_ms` to its machine's session (opening one at
    /// a boundary) and tags it.
    fn place(
        &mut self,
        slot: u32,
        time_ms: i64,
        facts: Facts,
        event: &mut Event,
        out: &mut dyn SessionSink,
    ) {
        let Facts {
            name,
            is_open,
            id_hash,
            user_hash,
        } = facts;
        let boundary = match &self.machine(slot).session {
            Some(session) if session.open => self.boundary(session, time_ms, is_open),
            _ => Some(""),
        };
        if let Some(reason) = boundary {
            let Some(machine) = self.slots[slot as usize].machine.as_mut() else {
                unreachable!("slot {slot} is referred to while free");
            };
            if let Some(previous) = machine.session.take().filter(|s| s.open) {
                self.open_sessions -= 1;
                emit_summary(&self.event_names, &machine.key, &previous, reason, out);
            }
            let first_id = message_id(event, &self.rules.id_field);
            let session = new_session(
                &mut self.id_input,
                &self.rules,
                &machine.key,
                time_ms,
                first_id,
                name,
            );
            self.machine_mut(slot).session = Some(session);
            self.open_sessions += 1;
            out.opened();
            self.arm_close_timer(slot);
        }
        let user_field = &self.rules.user_field;
        let Some(session) = self.slots[slot as usize]
            .machine
            .as_mut()
            .and_then(|m| m.session.as_mut())
        else {
            unreachable!("a session was just opened if there was none");
        };
        session.last_ms = time_ms;
        session.count += 1;
        session.last_event = name;
        session.last_id_hash = id_hash;
        // Usually the user is the one the session has: compare hashes, and
        // read the event's field only when it changed.
        let same_user = session
            .user_id
            .as_deref()
            .is_some_and(|u| xxh3_64(u.as_bytes()) == user_hash);
        if user_hash != 0 && !same_user {
            if let Some(user) = event.get_str(user_field).filter(|u| !u.is_empty()) {
                session.user_id = Some(user.into());
            }
        }
        let tag = session_tag(&session.id, session.count, session.start_ms);
        event.insert_json(&self.rules.session_field, tag);
    }

    /// Why an event at `time_ms` starts a new session after `session`, if it
    /// does. Several rules may hold; the first in this order is given:
    /// timeout, open event, max duration, daily split (timeout first because
    /// the watermark may already have closed the session for it).
    fn boundary(&self, session: &Session, time_ms: i64, is_open: bool) -> Option<&'static str> {
        if time_ms.saturating_sub(session.last_ms) > self.rules.timeout_ms {
            Some(TIMEOUT)
        } else if is_open {
            Some(OPEN_EVENT)
        } else if self.rules.max_duration_ms > 0
            && time_ms.saturating_sub(session.start_ms) > self.rules.max_duration_ms
        {
            Some(MAX_DURATION)
        } else if time_ms >= session.day_end_ms {
            Some(DAILY_SPLIT)
        } else {
            None
        }
    }

    fn arm_close_timer(&mut self, slot: u32) {
        let timeout = self.rules.timeout_ms;
        let entry = &mut self.slots[slot as usize];
        let generation = entry.generation;
        let Some(machine) = entry.machine.as_mut() else {
            return;
        };
        if machine.timed {
            // The existing entry is an earlier (lower) deadline: it re-queues
            // itself with the real one when it comes due.
            return;
        }
        if let Some(session) = &machine.session {
            machine.timed = true;
            let deadline = session.last_ms.saturating_add(timeout);
            self.close_timers
                .push(Reverse((deadline, slot, generation)));
        }
    }

    /// Closes the longest-idle sessions (oldest last event) while more than
    /// `max_open_sessions` are open.
    fn evict_beyond_bound(&mut self, out: &mut dyn SessionSink) {
        let timeout = self.rules.timeout_ms;
        while self.open_sessions > self.rules.max_open_sessions {
            let Some(Reverse((deadline, slot, generation))) = self.close_timers.pop() else {
                return;
            };
            let entry = &mut self.slots[slot as usize];
            if entry.generation != generation {
                continue;
            }
            let Some(machine) = entry.machine.as_mut() else {
                continue;
            };
            let actual = match &machine.session {
                Some(session) if session.open => session.last_ms.saturating_add(timeout),
                _ => {
                    machine.timed = false;
                    continue;
                }
            };
            if actual > deadline {
                self.close_timers.push(Reverse((actual, slot, generation)));
                continue;
            }
            machine.timed = false;
            if let Some(session) = machine.session.take() {
                self.open_sessions -= 1;
                emit_summary(&self.event_names, &machine.key, &session, EVICTED, out);
            }
            self.maybe_empty.push(slot);
        }
    }

    fn trim_tombstones(&mut self) {
        while self.tombstones.len() > self.rules.max_open_sessions {
            let Some((slot, generation)) = self.tombstones.pop_front() else {
                return;
            };
            let entry = &mut self.slots[slot as usize];
            if entry.generation != generation {
                continue;
            }
            if let Some(machine) = entry.machine.as_mut() {
                if machine.session.as_ref().is_some_and(|s| !s.open) {
                    machine.session = None;
                    self.maybe_empty.push(slot);
                }
            }
        }
    }

    /// The slot of machine `key`, made if it has none.
    fn slot_for(&mut self, key: &str) -> u32 {
        if let Some(slot) = self.find_slot(key) {
            return slot;
        }
        let hash = xxh3_64(key.as_bytes());
        let machine = Machine {
            key: key.into(),
            session: None,
            timed: false,
            buffer: None,
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize].machine = Some(machine);
                slot
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    machine: Some(machine),
                });
                // Slots are bounded by max_open_sessions + max_buffered_events,
                // far below u32::MAX for any memory this process could have.
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 machines")
            }
        };
        let slots = &self.slots;
        self.slot_by_machine
            .insert_unique(hash, slot, |&s| xxh3_64(slot_key(slots, s).as_bytes()));
        slot
    }

    /// Frees the slots noted as possibly empty that are: no session (open or
    /// tombstone) and nothing buffered.
    fn free_empty_slots(&mut self) {
        while let Some(slot) = self.maybe_empty.pop() {
            let entry = &mut self.slots[slot as usize];
            let empty = entry
                .machine
                .as_ref()
                .is_some_and(|m| m.session.is_none() && m.buffer.is_none());
            if !empty {
                continue;
            }
            if let Some(machine) = entry.machine.take() {
                entry.generation = entry.generation.wrapping_add(1);
                let hash = xxh3_64(machine.key.as_bytes());
                if let Ok(found) = self.slot_by_machine.find_entry(hash, |&s| s == slot) {
                    found.remove();
                }
                self.free_slots.push(slot);
            }
        }
    }

    /// The slot of machine `key`, if it has one.
    fn find_slot(&self, key: &str) -> Option<u32> {
        let slots = &self.slots;
        self.slot_by_machine
            .find(xxh3_64(key.as_bytes()), |&s| slot_key(slots, s) == key)
            .copied()
    }

    fn machine(&self, slot: u32) -> &Machine {
        match &self.slots[slot as usize].machine {
            Some(machine) => machine,
            None => unreachable!("slot {slot} is referred to while free"),
        }
    }

    fn machine_mut(&mut self, slot: u32) -> &mut Machine {
        match &mut self.slots[slot as usize].machine {
            Some(machine) => machine,
            None => unreachable!("slot {slot} is referred to while free"),
        }
    }

    /// Reads an arriving event's [`Facts`].
    fn facts(&mut self, event: &Event) -> Facts {
        let user_hash = event
            .get_str(&self.rules.user_field)
            .filter(|u| !u.is_empty())
            .map_or(0, |u| xxh3_64(u.as_bytes()));
        Facts {
            name: self.event_name(event),
            is_open: self.is_open_event(event),
            id_hash: xxh3_64(message_id(event, &self.rules.id_field).as_bytes()),
            user_hash,
        }
    }

    fn is_open_event(&self, event: &Event) -> bool {
        !self.rules.open_events.is_empty()
            && event.get_str(&self.rules.type_field) == Some("track")
            && event
                .get_str(&self.rules.event_field)
                .is_some_and(|name| self.rules.open_events.contains(name))
    }

    /// The interned name of the event: its `event` field, else its `type`.
    fn event_name(&mut self, event: &Event) -> u32 {
        let name = event
            .get_str(&self.rules.event_field)
            .filter(|n| !n.is_empty())
            .or_else(|| event.get_str(&self.rules.type_field))
            .unwrap_or("");
        match self.name_index.get(name) {
            Some(&index) => index,
            None => self.intern(name),
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.name_index.get(name) {
            return index;
        }
        if self.event_names.len() >= MAX_EVENT_NAMES {
            return 1;
        }
        let name: Arc<str> = Arc::from(name);
        // Bounded by MAX_EVENT_NAMES.
        let index = self.event_names.len() as u32;
        self.event_names.push(name.clone());
        self.name_index.insert(name, index);
        index
    }

    fn name(&self, index: u32) -> &str {
        self.event_names.get(index as usize).map_or("", |n| n)
    }

    /// The state as bytes (JSON): sessions, tombstones, buffered events (without
    /// their acknowledgements, which do not outlive the process) and the clock.
    pub fn snapshot(&self) -> Vec<u8> {
        let machines = self
            .slots
            .iter()
            .filter_map(|slot| slot.machine.as_ref())
            .map(|machine| MachineSnapshot {
                key: machine.key.to_string(),
                session: machine.session.as_ref().map(|s| SessionSnapshot {
                    id: Uuid::from_bytes(s.id).to_string(),
                    start_ms: s.start_ms,
                    last_ms: s.last_ms,
                    last_id_hash: s.last_id_hash,
                    count: s.count,
                    first_event: self.name(s.first_event).to_owned(),
                    last_event: self.name(s.last_event).to_owned(),
                    open: s.open,
                    user_id: s.user_id.as_deref().map(str::to_owned),
                }),
                buffered: machine
                    .buffer
                    .iter()
                    .flat_map(|b| b.iter())
                    .map(|h| BufferedSnapshot {
                        time_ms: h.time_ms,
                        event: h.event.clone(),
                    })
                    .collect(),
            })
            .collect();
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            max_event_ms: self.max_event_ms,
            watermark_ms: self.watermark_ms,
            machines,
        };
        // Serializing plain structs of strings and numbers into memory cannot fail.
        serde_json::to_vec(&snapshot).expect("serializing a session snapshot into memory")
    }

    /// Replaces the state with a snapshot taken by [`SessionState::snapshot`],
    /// keeping the rules. On error the state is left unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        let snapshot: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| RestoreError::Malformed(e.to_string()))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(RestoreError::Version(snapshot.version));
        }
        let mut fresh = SessionState::new(self.rules.clone());
        fresh.max_event_ms = snapshot.max_event_ms;
        fresh.watermark_ms = snapshot.watermark_ms;
        for machine in snapshot.machines {
            if fresh.find_slot(&machine.key).is_some() {
                return Err(RestoreError::Malformed(format!(
                    "machine \"{}\" appears twice",
                    machine.key
                )));
            }
            let slot = fresh.slot_for(&machine.key);
            let generation = fresh.slots[slot as usize].generation;
            if let Some(s) = machine.session {
                let first_event = fresh.intern(&s.first_event);
                let last_event = fresh.intern(&s.last_event);
                let id = Uuid::parse_str(&s.id).map_err(|e| {
                    RestoreError::Malformed(format!(
                        "session id \"{}\" of machine \"{}\": {e}",
                        s.id, machine.key
                    ))
                })?;
                let session = Session {
                    id: *id.as_bytes(),
                    start_ms: s.start_ms,
                    last_ms: s.last_ms,
                    day_end_ms: fresh
                        .rules
                        .split_daily
                        .map_or(i64::MAX, |tz| next_midnight(tz, s.start_ms)),
                    last_id_hash: s.last_id_hash,
                    count: s.count,
                    first_event,
                    last_event,
                    open: s.open,
                    user_id: s.user_id.map(String::into_boxed_str),
                };
                let open = session.open;
                fresh.machine_mut(slot).session = Some(session);
                if open {
                    fresh.open_sessions += 1;
                    fresh.arm_close_timer(slot);
                } else {
                    fresh.tombstones.push_back((slot, generation));
                }
            }
            let mut buffer: Vec<Held> = Vec::with_capacity(machine.buffered.len());
            for b in machine.buffered {
                let bytes = approx_heap_bytes(&b.event);
                fresh.buffered_bytes += u64::from(bytes);
                buffer.push(Held {
                    time_ms: b.time_ms,
                    bytes,
                    facts: fresh.facts(&b.event),
                    event: b.event,
                    ack: Ack::none(),
                });
            }
            let id_field = fresh.rules.id_field.clone();
            buffer.sort_by(|a, b| {
                a.time_ms.cmp(&b.time_ms).then_with(|| {
                    message_id(&a.event, &id_field).cmp(message_id(&b.event, &id_field))
                })
            });
            if let Some(first) = buffer.first() {
                fresh
                    .release_timers
                    .push(Reverse((first.time_ms, slot, generation)));
            }
            fresh.buffered += buffer.len();
            fresh.machine_mut(slot).buffer = (!buffer.is_empty()).then(|| Box::new(buffer));
            fresh.maybe_empty.push(slot);
        }
        fresh.free_empty_slots();
        *self = fresh;
        Ok(())
    }
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("session snapshot is malformed: {0}")]
    Malformed(String),
    #[error("session snapshot has version {0}, this build reads version 1")]
    Version(u32),
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    max_event_ms: i64,
    watermark_ms: i64,
    machines: Vec<MachineSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct MachineSnapshot {
    key: String,
    session: Option<SessionSnapshot>,
    buffered: Vec<BufferedSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct SessionSnapshot {
    /// Hyphenated UUID.
    id: String,
    start_ms: i64,
    last_ms: i64,
    last_id_hash: u64,
    count: u32,
    first_event: String,
    last_event: String,
    open: bool,
    user_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct BufferedSnapshot {
    time_ms: i64,
    event: Event,
}

/// [`Event::approx_heap_bytes`] for the `max_buffered_bytes` bound, read while
/// the event is in cache on arrival; saturates at `u32::MAX`.
fn approx_heap_bytes(event: &Event) -> u32 {
    u32::try_from(event.approx_heap_bytes()).unwrap_or(u32::MAX)
}

/// Gives back a timer heap's spare room once it is mostly empty: a burst of
/// buffered events (a million machines' first events, say) would otherwise
/// keep its peak capacity, 16 bytes a slot, for the life of the process.
/// Halving only below a quarter full keeps the cost amortized O(1).
fn shrink_spare(heap: &mut Timers) {
    const KEEP: usize = 4096;
    if heap.capacity() > KEEP && heap.len() < heap.capacity() / 4 {
        heap.shrink_to((heap.len() * 2).max(KEEP));
    }
}

/// Sends the summary of `session` (taken out of its machine by the caller,
/// who also counts it closed). A free function over the fields it needs, so
/// callers can lend the machine's key while holding its slot.
fn emit_summary(
    names: &[Arc<str>],
    key: &str,
    session: &Session,
    end_reason: &'static str,
    out: &mut dyn SessionSink,
) {
    out.summary(summary_record(names, key, session, end_reason), end_reason);
}

/// The summary record of `session`; `names` are the interned event names.
fn summary_record(
    names: &[Arc<str>],
    key: &str,
    session: &Session,
    end_reason: &'static str,
) -> Event {
    // Written as JSON text (one allocation instead of a tree of them),
    // indexed only if something downstream reads it.
    let name = |index: u32| names.get(index as usize).map_or("", |n| n);
    let mut text = Vec::with_capacity(320);
    let field = |text: &mut Vec<u8>, name: &str| {
        text.push(if text.is_empty() { b'{' } else { b',' });
        json::write_str(name, text);
        text.push(b':');
    };
    field(&mut text, "session_id");
    json::write_str(
        Uuid::from_bytes(session.id)
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer()),
        &mut text,
    );
    field(&mut text, "key");
    json::write_str(key, &mut text);
    field(&mut text, "user_id");
    match session.user_id.as_deref() {
        Some(user) => json::write_str(user, &mut text),
        None => text.extend_from_slice(b"null"),
    }
    let mut times = String::with_capacity(48);
    push_ms(&mut times, session.start_ms);
    // Not half the text: a time outside years 0000–9999 is longer.
    let start_len = times.len();
    push_ms(&mut times, session.last_ms);
    field(&mut text, "start");
    json::write_str(&times[..start_len], &mut text);
    field(&mut text, "end");
    json::write_str(&times[start_len..], &mut text);
    field(&mut text, "duration_ms");
    text.extend_from_slice(
        itoa::Buffer::new()
            .format(session.last_ms - session.start_ms)
            .as_bytes(),
    );
    field(&mut text, "event_count");
    text.extend_from_slice(itoa::Buffer::new().format(session.count).as_bytes());
    field(&mut text, "first_event");
    json::write_str(name(session.first_event), &mut text);
    field(&mut text, "last_event");
    json::write_str(name(session.last_event), &mut text);
    field(&mut text, "end_reason");
    json::write_str(end_reason, &mut text);
    text.push(b'}');
    // Every piece above is valid, escaped JSON, so the text is one object
    // (and UTF-8: it was built from `&str`s and ASCII); an empty event is
    // the harmless answer if that were ever broken.
    match String::from_utf8(text) {
        Ok(text) => Event::from_written_json(text),
        Err(_) => Event::default(),
    }
}

/// A session starting at `start_ms` with the event `first_id`; its id is
/// UUIDv5 over the machine, the start and the first messageId, so replays and
/// restarts give the same ids. `id_input` is a reused buffer.
fn new_session(
    id_input: &mut Vec<u8>,
    rules: &Rules,
    key: &str,
    start_ms: i64,
    first_id: &str,
    name: u32,
) -> Session {
    id_input.clear();
    id_input.extend_from_slice(key.as_bytes());
    id_input.push(0);
    id_input.extend_from_slice(&start_ms.to_be_bytes());
    id_input.push(0);
    id_input.extend_from_slice(first_id.as_bytes());
    let id = Uuid::new_v5(&SESSION_ID_NAMESPACE, id_input);
    Session {
        id: *id.as_bytes(),
        start_ms,
        last_ms: start_ms,
        day_end_ms: rules
            .split_daily
            .map_or(i64::MAX, |tz| next_midnight(tz, start_ms)),
        last_id_hash: 0,
        count: 0,
        first_event: name,
        last_event: name,
        open: true,
        user_id: None,
    }
}

/// The key of the machine in `slot`; "" for a free slot (which the index
/// never refers to).
fn slot_key(slots: &[Slot], slot: u32) -> &str {
    slots[slot as usize].machine.as_ref().map_or("", |m| &m.key)
}

/// Whether `held` comes before an event at `(time_ms, id)` in `(time,
/// messageId)` order (ids compared by bytes, which is `str`'s order). The id
/// of `held` is read only when the times tie.
fn held_before(held: &Held, time_ms: i64, id: &str, id_field: &FieldPath) -> bool {
    match held.time_ms.cmp(&time_ms) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => message_id(&held.event, id_field) < id,
    }
}

fn message_id<'e>(event: &'e Event, id_field: &FieldPath) -> &'e str {
    event.get_str(id_field).unwrap_or("")
}

fn mark_late(event: &mut Event, reason: &'static str) -> Arrival {
    event.fields_mut().insert(
        LATE_REASON_FIELD.to_owned(),
        Value::String(reason.to_owned()),
    );
    Arrival::Late(reason)
}

/// Copies the machine key at `path` into `into`: a non-empty string, or a
/// number's JSON text. False when there is none.
fn read_key(event: &Event, path: &FieldPath, into: &mut String) -> bool {
    into.clear();
    if let Some(key) = event.get_str(path) {
        into.push_str(key);
        return !key.is_empty();
    }
    match event.get(path) {
        Some(Value::Number(n)) => {
            // Writing into a String cannot fail.
            write!(into, "{n}").expect("formatting into a String");
            true
        }
        _ => false,
    }
}

/// The event time in UTC milliseconds (digits past the millisecond dropped).
fn read_time(event: &Event, path: &FieldPath) -> Result<i64, String> {
    if let Some(text) = event.get_str(path) {
        return DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("{path} \"{text}\" is not an RFC 3339 timestamp: {e}"));
    }
    match event.get(path) {
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("{path} \"{text}\" is not an RFC 3339 timestamp: {e}")),
        Some(other) => Err(format!(
            "{path} is {}, not an RFC 3339 timestamp string",
            crate::event::json_kind(other)
        )),
        None => Err(format!("{path} is missing, so the event has no time")),
    }
}

/// `2024-03-01T10:00:00.123Z`.
pub fn format_ms(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_ms(&mut out, ms);
    out
}

/// Appends [`format_ms`]'s text. Years 0000–9999 are written by hand (every
/// event's tag carries a time, and chrono's general formatter was a visible
/// share of the sessionizer's CPU); others go through chrono.
fn push_ms(out: &mut String, ms: i64) {
    const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        match DateTime::from_timestamp_millis(ms) {
            Some(t) => out.push_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => out.push_str(&ms.to_string()),
        }
        return;
    }
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fields = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (in_day / 3_600_000, 2, b':'),
        (in_day / 60_000 % 60, 2, b':'),
        (in_day / 1000 % 60, 2, b'.'),
        (in_day % 1000, 3, b'Z'),
    ];
    let mut text = [0u8; 24];
    let mut at = 0;
    for (value, width, after) in fields {
        let mut value = value;
        for i in (0..width).rev() {
            text[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        text[at + width] = after;
        at += width + 1;
    }
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&text).expect("ASCII"));
}

/// The `session` tag as JSON text: `{"id":"…","seq":N,"start":"…"}`.
fn session_tag(id: &[u8; 16], seq: u32, start_ms: i64) -> String {
    let mut tag = String::with_capacity(96);
    tag.push_str("{\"id\":\"");
    tag.push_str(
        Uuid::from_bytes(*id)
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer()),
    );
    tag.push_str("\",\"seq\":");
    tag.push_str(itoa::Buffer::new().format(seq));
    tag.push_str(",\"start\":\"");
    push_ms(&mut tag, start_ms);
    tag.push_str("\"}");
    tag
}

/// The first local midnight in `tz` strictly after `ms`. Where midnight does
/// not exist (a daylight-saving jump at 00:00), the first instant of the day.
pub fn next_midnight(tz: Tz, ms: i64) -> i64 {
    let Some(utc) = DateTime::from_timestamp_millis(ms) else {
        return i64::MAX;
    };
    let Some(next_day) = utc.with_timezone(&tz).date_naive().succ_opt() else {
        return i64::MAX;
    };
    let midnight = next_day.and_time(chrono::NaiveTime::MIN);
    (0..=4)
        .find_map(|half_hours| {
            let local = midnight + chrono::Duration::minutes(30 * half_hours);
            tz.from_local_datetime(&local).earliest()
        })
        .map_or(i64::MAX, |t| t.timestamp_millis())
}
