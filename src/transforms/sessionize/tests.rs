//! Tests of the sessionizer: every boundary rule at its edges, lateness, the
//! watermark's idle advance with a controlled clock, eviction, snapshots,
//! restarts, and a property test against a batch model.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::ack::Ack;
use crate::component::{BuildContext, EndCause, Outputs, StateStore, Verdict};
use crate::config::EngineConfig;

/// 2024-03-01T10:00:00Z in Unix ms.
const T0: i64 = 1_709_287_200_000;
const MIN: i64 = 60_000;
/// A wall clock two years after the data, so nothing is in the future.
const WALL: i64 = T0 + 2 * 365 * 86_400_000;

fn config(toml_text: &str) -> SessionizeConfig {
    toml::from_str(toml_text).unwrap()
}

/// Everything the state produced.
#[derive(Default)]
struct Collected {
    events: Vec<Event>,
    summaries: Vec<Event>,
    opened: u64,
}

impl SessionSink for Collected {
    fn hold_ack(&self) -> Ack {
        Ack::none()
    }
    fn event(&mut self, event: Event, _ack: Ack) {
        self.events.push(event);
    }
    fn summary(&mut self, summary: Event, end_reason: &'static str) {
        assert_eq!(summary.fields()["end_reason"], end_reason);
        self.summaries.push(summary);
    }
    fn opened(&mut self) {
        self.opened += 1;
    }
}

/// A state driven with a controlled clock.
struct Harness {
    state: SessionState,
    out: Collected,
    now: i64,
}

impl Harness {
    fn new(toml_text: &str) -> Self {
        let c = config(toml_text);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        Harness {
            state: SessionState::new(c.rules(1).unwrap()),
            out: Collected::default(),
            now: WALL,
        }
    }

    fn send(&mut self, event: Value) -> (Arrival, Event) {
        let mut event = event_of(event);
        let arrival = self.state.accept(&mut event, self.now, &mut self.out);
        if arrival == Arrival::Tagged {
            self.out.events.push(event.clone());
        }
        (arrival, event)
    }

    /// Sends an event that must be accepted (held or tagged).
    fn ok(&mut self, machine: &str, time_ms: i64, id: &str) {
        self.ok_event(track(machine, time_ms, id, "Clicked"));
    }

    fn ok_event(&mut self, event: Value) {
        let (arrival, _) = self.send(event);
        assert!(
            matches!(arrival, Arrival::Held | Arrival::Tagged),
            "{arrival:?}"
        );
    }

    fn tick(&mut self, now: i64) {
        self.now = now;
        self.state.tick(now, &mut self.out);
    }

    fn finish(&mut self) {
        self.state.finish("end_of_input", &mut self.out);
    }

    /// `(messageId, session id, seq)` of the emitted events, in emission order.
    fn tags(&self) -> Vec<(String, String, u64)> {
        self.out
            .events
            .iter()
            .map(|e| {
                let f = e.fields();
                (
                    f["messageId"].as_str().unwrap().to_owned(),
                    f["session"]["id"].as_str().unwrap().to_owned(),
                    f["session"]["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Sessions as lists of messageIds, in order of their first emitted event.
    fn sessions(&self) -> Vec<Vec<String>> {
        let mut order: Vec<String> = Vec::new();
        let mut by_id: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for (mid, sid, seq) in self.tags() {
            if !by_id.contains_key(&sid) {
                order.push(sid.clone());
            }
            by_id.entry(sid).or_default().push((seq, mid));
        }
        order
            .iter()
            .map(|sid| {
                let mut events = by_id[sid].clone();
                events.sort();
                for (i, (seq, _)) in events.iter().enumerate() {
                    assert_eq!(*seq, i as u64 + 1, "seqs of session {sid}");
                }
                events.into_iter().map(|(_, mid)| mid).collect()
            })
            .collect()
    }

    fn end_reasons(&self) -> Vec<String> {
        self.out
            .summaries
            .iter()
            .map(|s| s.fields()["end_reason"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn event_of(value: Value) -> Event {
    match value {
        Value::Object(map) => Event::from_map(map),
        other => panic!("not an object: {other}"),
    }
}

fn track(machine: &str, time_ms: i64, id: &str, name: &str) -> Value {
    json!({
        "type": "track",
        "event": name,
        "messageId": id,
        "timestamp": format_ms(time_ms),
        "context": {"device": {"id": machine}},
    })
}

/// A `track` event whose timestamp is written as `timestamp` (an offset,
/// extra digits, an unusual year).
fn track_at(machine: &str, timestamp: &str, id: &str) -> Value {
    let mut event = track(machine, 0, id, "x");
    event["timestamp"] = json!(timestamp);
    event
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The session id as the issue defines it, computed independently.
fn expected_id(machine: &str, start_ms: i64, first_id: &str) -> String {
    let mut input = machine.as_bytes().to_vec();
    input.push(0);
    input.extend_from_slice(&start_ms.to_be_bytes());
    input.push(0);
    input.extend_from_slice(first_id.as_bytes());
    Uuid::new_v5(&SESSION_ID_NAMESPACE, &input).to_string()
}

// ---- config ----

#[test]
fn defaults_and_outputs() {
    let c = config("");
    assert_eq!(c.key.as_str(), "context.device.id");
    assert_eq!(c.fallback_key.as_str(), "anonymousId");
    assert_eq!(c.time_field.as_str(), "timestamp");
    assert_eq!(c.timeout.0.as_secs(), 1800);
    assert_eq!(c.allowed_lateness.0.as_secs(), 120);
    assert_eq!(c.outputs(), vec!["", "summaries", "late", "rejected"]);
    assert!(c.validate().is_empty());
}

#[test]
fn bad_config_is_reported_field_by_field() {
    let c = config(
        r#"
        timeout = "0s"
        split_daily = "Mars/Olympus"
        max_open_sessions = 0
        max_buffered_bytes = 0
        shards = 0
        open_events = [""]
        "#,
    );
    let fields: Vec<String> = c.validate().into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        vec![
            "timeout",
            "split_daily",
            "max_open_sessions",
            "max_buffered_bytes",
            "shards",
            "open_events[0]"
        ]
    );
    assert!(toml::from_str::<SessionizeConfig>("nope = 1").is_err());
}

#[test]
fn tick_interval_is_half_the_lateness_within_bounds() {
    use std::time::Duration;
    use transform::tick_interval;
    assert_eq!(tick_interval(0), None);
    assert_eq!(tick_interval(5), Some(Duration::from_millis(10)));
    assert_eq!(tick_interval(300), Some(Duration::from_millis(150)));
    assert_eq!(tick_interval(120_000), Some(Duration::from_secs(1)));
}

#[test]
fn partitioning_follows_the_machine_key() {
    let c = config("shards = 4");
    let (shards, partition) = c.partitioning(2).unwrap();
    assert_eq!(shards, 4);
    let a = event_of(json!({"context": {"device": {"id": "m1"}}}));
    let b = event_of(json!({"anonymousId": "m1"}));
    assert_eq!(partition(&a), partition(&b));
    assert!(config("shards = 1").partitioning(8).is_none());
    assert_eq!(config("").partitioning(3).unwrap().0, 3);
}

// ---- boundaries ----

#[test]
fn gap_of_exactly_the_timeout_continues_one_ms_more_splits() {
    for lateness in ["0s", "1m"] {
        let mut h = Harness::new(&format!("allowed_lateness = \"{lateness}\""));
        h.ok("m", T0, "a");
        h.ok("m", T0 + 30 * MIN, "b"); // exactly the timeout
        h.ok("m", T0 + 60 * MIN + 1, "c"); // one ms more
        h.finish();
        assert_eq!(
            h.sessions(),
            vec![ids(&["a", "b"]), ids(&["c"])],
            "{lateness}"
        );
        assert_eq!(
            h.end_reasons(),
            vec!["timeout", "end_of_input"],
            "{lateness}"
        );
    }
}

#[test]
fn ties_at_the_same_millisecond_are_ordered_by_message_id() {
    let mut h = Harness::new("");
    h.ok("m", T0, "c");
    h.ok("m", T0, "a");
    h.ok("m", T0, "b");
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["a", "b", "c"])]);
    // The session starts with "a", the first in order, not in arrival.
    assert_eq!(h.tags()[0].1, expected_id("m", T0, "a"));
    assert_eq!(h.out.summaries[0].fields()["event_count"], 3);
}

#[test]
fn open_event_inside_a_session_starts_a_new_one() {
    let mut h = Harness::new(r#"open_events = ["Application Opened"]"#);
    h.ok("m", T0, "a");
    h.ok_event(track("m", T0 + MIN, "b", "Application Opened"));
    h.ok("m", T0 + 2 * MIN, "c");
    // A page with that name is not a track event: no boundary.
    h.ok_event(json!({
        "type": "page", "event": "Application Opened", "messageId": "d",
        "timestamp": format_ms(T0 + 3 * MIN), "context": {"device": {"id": "m"}},
    }));
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["a"]), ids(&["b", "c", "d"])]);
    assert_eq!(h.end_reasons(), vec!["open_event", "end_of_input"]);
    let second = h.out.summaries[1].fields();
    assert_eq!(second["first_event"], "Application Opened");
    assert_eq!(second["last_event"], "Application Opened");
}

#[test]
fn max_duration_cuts_after_exactly_its_length() {
    let mut h = Harness::new(r#"max_duration = "1h""#);
    for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        // every 20 minutes: a, b, c, d (at exactly 1h) continue; e (1h20) splits
        h.ok("m", T0 + 20 * MIN * i as i64, id);
    }
    h.ok("m", T0 + 80 * MIN + 1, "f");
    h.finish();
    assert_eq!(
        h.sessions(),
        vec![ids(&["a", "b", "c", "d"]), ids(&["e", "f"])]
    );
    assert_eq!(h.end_reasons(), vec!["max_duration", "end_of_input"]);
    assert_eq!(h.out.summaries[0].fields()["duration_ms"], 60 * MIN);
}

#[test]
fn fallback_key_is_used_when_the_key_is_missing_or_empty() {
    let mut h = Harness::new("");
    let base = |id: &str| json!({"type": "track", "event": "x", "messageId": id, "timestamp": format_ms(T0)});
    let mut a = base("a");
    a["anonymousId"] = json!("anon");
    let mut b = base("b");
    b["anonymousId"] = json!("anon");
    b["context"] = json!({"device": {"id": ""}});
    h.ok_event(a);
    h.ok_event(b);
    let (arrival, _) = h.send(base("c"));
    assert!(
        matches!(
            arrival,
            Arrival::Rejected {
                reason: "no_key",
                ..
            }
        ),
        "{arrival:?}"
    );
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["a", "b"])]);
    assert_eq!(h.out.summaries[0].fields()["key"], "anon");
}

#[test]
fn offsets_are_converted_to_utc_and_digits_past_the_millisecond_dropped() {
    let mut h = Harness::new("");
    h.ok_event(track_at("m", "2024-03-01T12:00:00.123987+02:00", "a"));
    h.ok_event(track_at("m", "2024-03-01T10:00:00.123Z", "b"));
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["a", "b"])]);
    let session = &h.out.events[0].fields()["session"];
    assert_eq!(session["start"], "2024-03-01T10:00:00.123Z");
    // Equal times: the order is by messageId, and the session starts with "a".
    assert_eq!(session["id"], expected_id("m", T0 + 123, "a").as_str());
}

#[test]
fn split_daily_splits_at_local_midnight_in_berlin() {
    let mut h = Harness::new(r#"split_daily = "Europe/Berlin""#);
    // Winter (UTC+1): local midnight of 2 March is 23:00Z on 1 March.
    let midnight = 1_709_334_000_000; // 2024-03-01T23:00:00Z
    assert_eq!(format_ms(midnight), "2024-03-01T23:00:00.000Z");
    h.ok("m", midnight - 10 * MIN, "a");
    h.ok("m", midnight - 1, "b");
    h.ok("m", midnight, "c"); // exactly midnight: the new day
                              // Summer (UTC+2): local midnight of 1 July is 22:00Z on 30 June.
    let summer = 1_719_784_800_000; // 2024-06-30T22:00:00Z
    assert_eq!(format_ms(summer), "2024-06-30T22:00:00.000Z");
    h.ok("s", summer - MIN, "d");
    h.ok("s", summer + MIN, "e");
    h.finish();
    assert_eq!(
        h.sessions(),
        vec![ids(&["a", "b"]), ids(&["c"]), ids(&["d"]), ids(&["e"])]
    );
    let reasons: Vec<String> = h.end_reasons();
    assert_eq!(reasons.iter().filter(|r| *r == "daily_split").count(), 2);
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    assert_eq!(next_midnight(tz, midnight - 1), midnight);
    assert_eq!(next_midnight(tz, midnight), midnight + 24 * 60 * MIN);
}

#[test]
fn session_ids_are_deterministic_and_tags_complete() {
    let run = || {
        let mut h = Harness::new("");
        h.ok("m", T0, "a");
        h.ok("m", T0 + 90 * MIN, "b");
        h.finish();
        h.tags()
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first[0].1, expected_id("m", T0, "a"));
    assert_eq!(first[1].1, expected_id("m", T0 + 90 * MIN, "b"));
}

#[test]
fn summaries_carry_every_field() {
    let mut h = Harness::new("");
    let mut a = track("m", T0, "a", "Opened");
    a["userId"] = json!("u1");
    h.ok_event(a);
    let mut b = track("m", T0 + 5 * MIN, "b", "Clicked");
    b["userId"] = json!("");
    h.ok_event(b);
    h.finish();
    let s = Value::Object(h.out.summaries[0].fields().clone());
    assert_eq!(
        s,
        json!({
            "session_id": expected_id("m", T0, "a"),
            "key": "m",
            "user_id": "u1",
            "start": "2024-03-01T10:00:00.000Z",
            "end": "2024-03-01T10:05:00.000Z",
            "duration_ms": 5 * MIN,
            "event_count": 2,
            "first_event": "Opened",
            "last_event": "Clicked",
            "end_reason": "end_of_input",
        })
    );
}

#[test]
fn a_summary_spanning_year_zero_keeps_start_and_end_whole() {
    // `0000-01-01T00:30:00+01:00` is the year before 0000 in UTC, which is
    // written longer (`-0001-...`) than a time of year 0000.
    let mut h = Harness::new("");
    h.ok_event(track_at("m", "0000-01-01T00:30:00+01:00", "a"));
    h.ok_event(track_at("m", "0000-01-01T00:00:00Z", "b"));
    h.finish();
    let s = h.out.summaries[0].fields();
    assert_eq!(s["start"], "-0001-12-31T23:30:00.000Z");
    assert_eq!(s["end"], "0000-01-01T00:00:00.000Z");
}

// ---- lateness and the watermark ----

#[test]
fn out_of_order_events_within_the_lateness_are_sessionized_exactly() {
    let mut h = Harness::new(r#"allowed_lateness = "10m""#);
    h.ok("m", T0 + 5 * MIN, "b");
    h.ok("m", T0 + 9 * MIN, "c");
    h.ok("m", T0 - MIN, "a"); // 10 minutes behind the latest: just in time
    assert!(h.out.events.is_empty(), "nothing is final yet");
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["a", "b", "c"])]);
}

#[test]
fn events_beyond_the_lateness_go_to_late_untagged() {
    let mut h = Harness::new(r#"allowed_lateness = "10m""#);
    h.ok("m", T0 + 10 * MIN, "b");
    let (arrival, event) = h.send(track("m", T0 - 1, "a", "x"));
    assert_eq!(arrival, Arrival::Late(LATE_BEFORE_WATERMARK));
    assert_eq!(event.fields()[LATE_REASON_FIELD], "before_watermark");
    assert!(!event.fields().contains_key(SESSION_FIELD));
    assert_eq!(h.state.watermark_ms(), T0);
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["b"])]);
}

#[test]
fn events_leave_once_the_watermark_passes_them() {
    let mut h = Harness::new(r#"allowed_lateness = "1m""#);
    h.ok("m", T0, "a");
    h.ok("m", T0 + MIN, "b"); // watermark = T0: "a" is not yet past
    assert!(h.out.events.is_empty());
    h.ok("n", T0 + MIN + 1, "c"); // watermark = T0 + 1: "a" leaves
    assert_eq!(h.tags().len(), 1);
    assert_eq!(h.tags()[0].0, "a");
    assert_eq!(h.state.buffered_events(), 2);
}

#[test]
fn an_event_exactly_at_the_watermark_is_in_time_and_ordered() {
    let mut h = Harness::new(r#"allowed_lateness = "1m""#);
    h.ok("m", T0 - 1, "z");
    h.ok("m", T0, "b");
    h.ok("n", T0 + MIN, "x"); // watermark = T0: "z" leaves, "b" waits
    assert_eq!(h.tags().len(), 1);
    h.ok("m", T0, "a"); // exactly at the watermark: not late
    h.finish();
    assert_eq!(h.sessions(), vec![ids(&["z", "a", "b"]), ids(&["x"])]);
}

#[test]
fn the_watermark_advances_with_the_wall_clock_while_idle() {
    let mut h = Harness::new(r#"allowed_lateness = "1m""#);
    h.tick(WALL);
    h.ok("m", T0, "a");
    h.ok("m", T0 + 10 * MIN, "b");
    assert_eq!(h.state.watermark_ms(), T0 + 9 * MIN);
    // The first tick after the maximum rose anchors the idle advance: the
    // wall clock (years after the data) is not jumped to.
    h.tick(WALL + 1_000);
    assert_eq!(h.state.watermark_ms(), T0 + 9 * MIN);
    // Idle for 30 s: the watermark moves 30 s.
    h.tick(WALL + 31_000);
    assert_eq!(h.state.watermark_ms(), T0 + 9 * MIN + 30_000);
    assert_eq!(h.tags().len(), 1, "only \"a\" is past the watermark");
    // Idle past lateness + timeout: "b" leaves and its session times out.
    h.tick(WALL + 1_000 + MIN + 30 * MIN + 1);
    assert_eq!(h.tags().len(), 2);
    assert_eq!(h.end_reasons(), vec!["timeout"]);
    assert_eq!(h.state.open_sessions(), 0);
    assert_eq!(h.state.machines(), 0, "a closed machine is forgotten");
    // An event older than the advanced watermark is late.
    let (arrival, _) = h.send(track("m", T0 + 11 * MIN, "c", "x"));
    assert_eq!(arrival, Arrival::Late(LATE_BEFORE_WATERMARK));
    // A new maximum stops the advance until the next idle tick.
    h.ok("m", T0 + 60 * MIN, "d");
    let before = h.state.watermark_ms();
    h.tick(WALL + 40 * MIN);
    assert_eq!(h.state.watermark_ms(), before);
}

#[test]
fn sessions_time_out_when_the_watermark_passes_last_plus_timeout() {
    let mut h = Harness::new(r#"allowed_lateness = "1m""#);
    h.ok("m", T0, "a");
    h.ok("n", T0 + 31 * MIN, "b"); // watermark T0 + 30m: exactly the timeout
    assert!(h.out.summaries.is_empty());
    h.ok("n", T0 + 31 * MIN + 1, "c"); // watermark one ms past it
    assert_eq!(h.end_reasons(), vec!["timeout"]);
    assert_eq!(h.out.summaries[0].fields()["key"], "m");
}

#[test]
fn pass_through_tags_on_arrival_and_refuses_what_it_cannot_tag_right() {
    let mut h = Harness::new(r#"allowed_lateness = "0s""#);
    h.ok("m", T0 + MIN, "b");
    assert_eq!(h.tags().len(), 1, "tagged at once");
    h.ok("n", T0, "x"); // another machine may be behind
    let (arrival, _) = h.send(track("m", T0, "a", "x"));
    assert_eq!(arrival, Arrival::Late(LATE_OUT_OF_ORDER));
    h.ok("m", T0 + MIN, "c"); // an equal time passes
                              // "n" times out by the watermark (the greatest time seen).
    h.ok("m", T0 + 31 * MIN, "d");
    assert_eq!(h.end_reasons(), vec!["timeout"]);
    // An event that would have continued n's closed session is late...
    let (arrival, _) = h.send(track("n", T0 + 20 * MIN, "y", "x"));
    assert_eq!(arrival, Arrival::Late(LATE_SESSION_CLOSED));
    // ...one that starts a new session anyway is tagged.
    h.ok("n", T0 + 31 * MIN, "z");
    h.finish();
    assert_eq!(
        h.sessions(),
        vec![ids(&["b", "c", "d"]), ids(&["x"]), ids(&["z"])]
    );
}

#[test]
fn bad_and_future_timestamps_are_rejected() {
    let mut h = Harness::new("");
    for (timestamp, reason) in [
        (json!("yesterday"), "bad_timestamp"),
        (json!(12), "bad_timestamp"),
        (json!(format_ms(WALL + 86_400_000 + 1)), "future_timestamp"),
    ] {
        let mut e = track("m", 0, "a", "x");
        e["timestamp"] = timestamp;
        let (arrival, _) = h.send(e);
        match arrival {
            Arrival::Rejected { reason: r, message } => {
                assert_eq!(r, reason);
                assert!(message.contains("timestamp"), "{message}");
            }
            other => panic!("expected {reason}, got {other:?}"),
        }
    }
    h.ok("m", WALL + 86_400_000, "b"); // exactly max_future ahead is fine
    assert_eq!(h.state.buffered_events(), 1);
}

#[test]
fn duplicates_are_rejected_not_counted_twice() {
    for lateness in ["0s", "1m"] {
        let mut h = Harness::new(&format!("allowed_lateness = \"{lateness}\""));
        h.ok("m", T0, "a");
        let (arrival, _) = h.send(track("m", T0, "a", "x"));
        assert!(
            matches!(
                arrival,
                Arrival::Rejected {
                    reason: "duplicate",
                    ..
                }
            ),
            "{lateness}: {arrival:?}"
        );
        h.ok("m", T0 + 1, "b");
        h.finish();
        assert_eq!(h.sessions(), vec![ids(&["a", "b"])]);
        assert_eq!(h.out.summaries[0].fields()["event_count"], 2);
    }
}

// ---- bounds ----

#[test]
fn beyond_max_open_sessions_the_longest_idle_is_evicted() {
    let mut h = Harness::new(
        r#"max_open_sessions = 2
allowed_lateness = "0s""#,
    );
    h.ok("a", T0, "a1");
    h.ok("b", T0 + MIN, "b1");
    h.ok("a", T0 + 2 * MIN, "a2"); // "a" is now the more recent
    h.ok("c", T0 + 3 * MIN, "c1"); // three open: "b" goes
    assert_eq!(h.end_reasons(), vec!["evicted"]);
    assert_eq!(h.out.summaries[0].fields()["key"], "b");
    assert_eq!(h.state.open_sessions(), 2);
    // b's next event starts a fresh session (its old one is gone), evicting "a".
    h.ok("b", T0 + 4 * MIN, "b2");
    assert_eq!(h.end_reasons(), vec!["evicted", "evicted"]);
    assert_eq!(h.out.summaries[1].fields()["key"], "a");
    h.finish();
    assert_eq!(h.sessions().len(), 4);
}

#[test]
fn a_full_buffer_releases_its_oldest_event() {
    let mut h = Harness::new(
        r#"max_buffered_events = 2
allowed_lateness = "1h""#,
    );
    h.ok("m", T0, "a");
    h.ok("m", T0 + 1, "b");
    h.ok("m", T0 + 2, "c");
    assert_eq!(h.tags().len(), 1);
    assert_eq!(h.state.buffered_events(), 2);
    let (arrival, _) = h.send(track("n", T0, "z", "x"));
    assert_eq!(arrival, Arrival::Late(LATE_BEFORE_WATERMARK));
}

#[test]
fn a_buffer_over_its_byte_bound_releases_the_oldest_until_it_fits() {
    // Each test event is a few hundred estimated bytes: room for about three.
    let mut h = Harness::new(
        r#"max_buffered_bytes = 1200
allowed_lateness = "1h""#,
    );
    h.ok("m", T0, "a");
    let one = h.state.buffered_bytes();
    assert!(
        one > 200 && one < 1200,
        "an event is estimated at {one} bytes"
    );
    h.ok("m", T0 + 1, "b");
    h.ok("m", T0 + 2, "c");
    h.ok("m", T0 + 3, "d");
    h.ok("m", T0 + 4, "e");
    assert!(
        h.state.buffered_bytes() <= 1200,
        "{} bytes buffered",
        h.state.buffered_bytes()
    );
    let kept = h.state.buffered_events() as u64;
    assert_eq!(
        kept * one,
        h.state.buffered_bytes(),
        "bytes follow the events"
    );
    assert_eq!(h.tags().len() as u64, 5 - kept, "the oldest left, in order");
    // What left is behind the watermark now: an event that old is late.
    let (arrival, _) = h.send(track("n", T0, "z", "x"));
    assert_eq!(arrival, Arrival::Late(LATE_BEFORE_WATERMARK));
    // Releasing everything gives every byte back.
    let mut sink = Collected::default();
    h.state.tick(h.now, &mut sink);
    h.state.tick(h.now + 2 * 3_600_000, &mut sink);
    assert_eq!(h.state.buffered_bytes(), 0);
}

// ---- state ----

#[test]
fn snapshot_round_trips() {
    let mut h = Harness::new(
        r#"allowed_lateness = "5m"
open_events = ["Opened"]
split_daily = "Europe/Berlin""#,
    );
    let mut a = track("m", T0, "a", "Opened");
    a["userId"] = json!("u1");
    h.ok_event(a);
    h.ok("m", T0 + 10 * MIN, "b");
    h.ok("n", T0 + 12 * MIN, "c");
    h.ok("n", T0 + 9 * MIN, "d");
    let bytes = h.state.snapshot();
    let mut restored = SessionState::new(h.state.rules().clone());
    restored.restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.open_sessions(), h.state.open_sessions());
    assert_eq!(restored.buffered_events(), h.state.buffered_events());
    assert_eq!(restored.watermark_ms(), h.state.watermark_ms());

    // The original and the restored state carry on identically.
    let mut other = Harness {
        state: restored,
        out: Collected::default(),
        now: WALL,
    };
    for harness in [&mut h, &mut other] {
        harness.ok("m", T0 + 20 * MIN, "e");
        harness.finish();
    }
    let mut events_h = h.out.events.clone();
    // The original had already released "a" before the snapshot.
    events_h.retain(|e| e.fields()["messageId"] != "a");
    assert_eq!(events_h, other.out.events);
    assert_eq!(h.out.summaries, other.out.summaries);
    assert_eq!(other.out.summaries[0].fields()["user_id"], "u1");

    assert!(SessionState::new(h.state.rules().clone())
        .restore(b"{\"version\":9,\"max_event_ms\":0,\"watermark_ms\":0,\"machines\":[]}")
        .is_err());
    assert!(SessionState::new(h.state.rules().clone())
        .restore(b"not json")
        .is_err());
}

fn build(c: &SessionizeConfig, state: &StateStore) -> Box<dyn Transform> {
    let engine = EngineConfig::default();
    let cx = BuildContext {
        id: "sessions",
        engine: &engine,
        state,
        shard: None,
    };
    c.build(&cx).unwrap()
}

fn outputs(c: &SessionizeConfig) -> Outputs {
    Outputs::new("sessions".into(), c.outputs().into())
}

#[test]
fn open_sessions_survive_a_rebuild_through_the_state_store() {
    let c = config(r#"allowed_lateness = "1m""#);
    let store = StateStore::default();
    let mut first = build(&c, &store);
    let mut out = outputs(&c);
    let mut a = event_of(track("m", T0, "a", "x"));
    assert_eq!(first.transform(&mut a, &mut out), Verdict::Held);
    let mut b = event_of(track("m", T0 + 2 * MIN, "b", "x"));
    assert_eq!(first.transform(&mut b, &mut out), Verdict::Held);
    assert_eq!(out.port_events(0).len(), 1, "\"a\" is past the watermark");
    drop(first); // a crash: the instance goes, the state stays

    let mut rebuilt = build(&c, &store);
    let mut late = event_of(track("m", T0, "z", "x"));
    assert_eq!(rebuilt.transform(&mut late, &mut out), Verdict::Emit(2));
    rebuilt.finish(EndCause::Shutdown, &mut out);
    let ports = out.take_ports();
    let tagged: Vec<&Value> = ports[0].iter().map(|e| &e.fields()["session"]).collect();
    assert_eq!(tagged.len(), 2);
    assert_eq!(tagged[0]["id"], tagged[1]["id"]);
    assert_eq!(tagged[1]["seq"], 2);
    assert_eq!(ports[1].len(), 1);
    assert_eq!(ports[1][0].fields()["end_reason"], "shutdown");
    assert_eq!(ports[1][0].fields()["event_count"], 2);
}

#[test]
fn the_transform_routes_to_its_ports() {
    let c = config(r#"allowed_lateness = "0s""#);
    let mut t = build(&c, &StateStore::default());
    assert_eq!(t.tick_interval(), None);
    let mut out = outputs(&c);
    let mut e = event_of(track("m", T0, "a", "x"));
    assert_eq!(t.transform(&mut e, &mut out), Verdict::Emit(0));
    assert!(e.fields().contains_key("session"));
    let mut e = event_of(json!({"timestamp": format_ms(T0)}));
    assert!(matches!(
        t.transform(&mut e, &mut out),
        Verdict::Reject {
            reason: "no_key",
            ..
        }
    ));
    let mut e = event_of(track("m", T0 - 1, "b", "x"));
    assert_eq!(t.transform(&mut e, &mut out), Verdict::Emit(2));
    t.finish(EndCause::EndOfInput, &mut out);
    assert_eq!(out.port_events(1)[0].fields()["end_reason"], "end_of_input");
}

// ---- the property: streaming equals the batch model ----

/// One generated event.
#[derive(Debug, Clone)]
struct Gen {
    machine: usize,
    time_ms: i64,
    id: String,
    open: bool,
    user: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct ModelRules {
    timeout: i64,
    max_duration: i64,
    lateness: i64,
    split: Option<chrono_tz::Tz>,
}

const OPEN: &str = "Application Opened";

fn gen_json(g: &Gen) -> Value {
    let mut e = track(
        &format!("machine-{}", g.machine),
        g.time_ms,
        &g.id,
        if g.open { OPEN } else { "Clicked" },
    );
    if let Some(user) = g.user {
        e["userId"] = json!(user);
    }
    e
}

/// The batch computation: sort each machine's events, apply the boundaries.
/// Returns per-event `(session id, seq)` and the summaries.
fn batch_model(
    events: &[Gen],
    rules: &ModelRules,
) -> (BTreeMap<String, (String, u64)>, Vec<Value>) {
    let mut by_machine: BTreeMap<usize, Vec<&Gen>> = BTreeMap::new();
    for e in events {
        by_machine.entry(e.machine).or_default().push(e);
    }
    let max_time = events.iter().map(|e| e.time_ms).max().unwrap_or(0);
    let final_watermark = max_time - rules.lateness;
    let mut tags = BTreeMap::new();
    let mut summaries = Vec::new();
    for (machine, mut list) in by_machine {
        list.sort_by(|a, b| (a.time_ms, a.id.as_bytes()).cmp(&(b.time_ms, b.id.as_bytes())));
        let key = format!("machine-{machine}");
        let mut sessions: Vec<Vec<&Gen>> = Vec::new();
        let mut reasons: Vec<&str> = Vec::new();
        for e in list {
            let reason = match sessions.last() {
                None => Some(""),
                Some(s) => {
                    let (start, last) = (s[0].time_ms, s[s.len() - 1].time_ms);
                    let day_end = rules.split.map_or(i64::MAX, |tz| next_midnight(tz, start));
                    if e.time_ms - last > rules.timeout {
                        Some("timeout")
                    } else if e.open {
                        Some("open_event")
                    } else if rules.max_duration > 0 && e.time_ms - start > rules.max_duration {
                        Some("max_duration")
                    } else if e.time_ms >= day_end {
                        Some("daily_split")
                    } else {
                        None
                    }
                }
            };
            match reason {
                Some(r) => {
                    if !sessions.is_empty() {
                        reasons.push(r);
                    }
                    sessions.push(vec![e]);
                }
                None => sessions.last_mut().unwrap().push(e),
            }
        }
        let last_session = sessions.len() - 1;
        for (i, s) in sessions.iter().enumerate() {
            let (start, end) = (s[0].time_ms, s[s.len() - 1].time_ms);
            let id = expected_id(&key, start, &s[0].id);
            for (seq, e) in s.iter().enumerate() {
                tags.insert(e.id.clone(), (id.clone(), seq as u64 + 1));
            }
            let end_reason = if i < last_session {
                reasons[i]
            } else if end + rules.timeout < final_watermark {
                "timeout"
            } else {
                "end_of_input"
            };
            let name = |e: &Gen| if e.open { OPEN } else { "Clicked" };
            summaries.push(json!({
                "session_id": id,
                "key": key,
                "user_id": s.iter().rev().find_map(|e| e.user).map_or(Value::Null, |u| json!(u)),
                "start": format_ms(start),
                "end": format_ms(end),
                "duration_ms": end - start,
                "event_count": s.len(),
                "first_event": name(s[0]),
                "last_event": name(s[s.len() - 1]),
                "end_reason": end_reason,
            }));
        }
    }
    (tags, summaries)
}

fn by_session_id(mut summaries: Vec<Value>) -> Vec<Value> {
    summaries.sort_by(|a, b| a["session_id"].as_str().cmp(&b["session_id"].as_str()));
    summaries
}

fn scenario() -> impl Strategy<Value = (Vec<Gen>, ModelRules, Vec<(i64, usize)>)> {
    let rules = (
        prop_oneof![Just(0i64), Just(90 * MIN)],
        prop_oneof![Just(90_000i64), Just(10 * MIN), Just(60 * MIN)],
        any::<bool>(),
    )
        .prop_map(|(max_duration, lateness, split)| ModelRules {
            timeout: 30 * MIN,
            max_duration,
            lateness,
            split: split.then(|| "Europe/Berlin".parse().unwrap()),
        });
    let event = (
        0usize..4,
        0i64..400,
        prop::bool::weighted(0.1),
        prop_oneof![Just(None), Just(Some("u1")), Just(Some("u2"))],
    );
    (rules, prop::collection::vec(event, 1..80)).prop_flat_map(|(rules, raw)| {
        let n = raw.len();
        let events: Vec<Gen> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (machine, step, open, user))| Gen {
                machine,
                // Steps of 1.5 minutes over 10 hours starting 20:00 UTC (so
                // Berlin midnight falls inside), with many equal times.
                time_ms: T0 + 10 * 60 * MIN + step * 90_000,
                // Unique ids whose order differs from generation order.
                id: format!("id-{:03}", (i * 37) % 1000),
                open,
                user,
            })
            .collect();
        let lateness = rules.lateness;
        // Jitters at the edges (0 and exactly the lateness) are common, so
        // events land exactly on the watermark.
        let jitter = prop_oneof![Just(0), Just(lateness), 0..=lateness];
        let jitters = prop::collection::vec((jitter, 1usize..8), n);
        (Just(events), Just(rules), jitters)
    })
}

/// The hand-written formatter agrees with chrono everywhere it applies, and
/// beyond it (chrono formats those).
#[test]
fn format_ms_matches_chrono() {
    use chrono::{DateTime, SecondsFormat};
    let chrono_text = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let edges = [
        0,
        -1,
        1,
        951_782_400_000,     // 2000-02-29
        4_107_542_399_999,   // 2100-02-28T23:59:59.999
        -62_167_219_200_000, // 0000-01-01
        -62_167_219_200_001, // before year 0: chrono's spelling
        253_402_300_799_999, // 9999-12-31T23:59:59.999
        253_402_300_800_000, // 10000-01-01: chrono's spelling
    ];
    for ms in edges {
        assert_eq!(format_ms(ms), chrono_text(ms), "at {ms}");
    }
    let mut ms: i64 = -62_167_219_200_000;
    while ms < 253_402_300_800_000 {
        assert_eq!(format_ms(ms), chrono_text(ms), "at {ms}");
        ms += 7_777_777_777; // about every 90 days, at varied times of day
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streaming_equals_the_batch_model((events, rules, jitter) in scenario()) {
        // Delivery order: each event at its time plus a jitter within the
        // lateness, so no event arrives more than `lateness` behind the
        // greatest time seen before it.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].time_ms + jitter[i].0, i));

        let mut toml_text = format!(
            "allowed_lateness = \"{}ms\"\nmax_duration = \"{}ms\"\nopen_events = [\"{OPEN}\"]\n",
            rules.lateness, rules.max_duration
        );
        if rules.split.is_some() {
            toml_text.push_str("split_daily = \"Europe/Berlin\"\n");
        }
        let mut h = Harness::new(&toml_text);
        // Batches of random sizes end with a tick of a clock that stands still.
        let mut in_batch = 0;
        for &i in &order {
            let (arrival, _) = h.send(gen_json(&events[i]));
            prop_assert_eq!(arrival, Arrival::Held);
            in_batch += 1;
            if in_batch >= jitter[i].1 {
                h.tick(WALL);
                in_batch = 0;
            }
        }
        h.finish();

        let (tags, summaries) = batch_model(&events, &rules);
        let streamed: BTreeMap<String, (String, u64)> = h
            .tags()
            .into_iter()
            .map(|(mid, sid, seq)| (mid, (sid, seq)))
            .collect();
        prop_assert_eq!(h.out.events.len(), events.len());
        prop_assert_eq!(streamed, tags);
        let streamed_summaries: Vec<Value> = h
            .out
            .summaries
            .iter()
            .map(|s| Value::Object(s.fields().clone()))
            .collect();
        prop_assert_eq!(by_session_id(streamed_summaries), by_session_id(summaries));
        prop_assert_eq!(h.out.opened as usize, h.out.summaries.len());
    }
}
