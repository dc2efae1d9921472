//! End-to-end sessionization of a `sluice gen` replay, with its late events,
//! duplicates and invalid lines, through `file → filter → dedupe → sessionize
//! → file`.
//!
//! Every tagged event must carry the session that a batch model written here
//! computes over the tagged events (late events are kept out of sessions by
//! design): per machine, sort by time then `messageId` bytes, and cut at the
//! machine's first event, a gap over `timeout`, an open event, or more than
//! `max_duration` after the session's start. Every summary must describe its
//! model session, every input line must be accounted for, and the sessions
//! must not depend on the number of shards or on which run produced them.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use common::*;
use serde_json::{json, Value};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The replayed file, inside the sandbox.
const INPUT: &str = "in.ndjson";
const INPUT_EVENTS: u64 = 30_000;

/// The sessionize settings of the topology, in milliseconds for the model.
const TIMEOUT_MS: i64 = 30 * 60_000;
const MAX_DURATION_MS: i64 = 24 * 3_600_000;
const LATENESS_MS: i64 = 2 * 60_000;
const OPEN_EVENTS: [&str; 2] = ["Application Opened", "Document Opened"];

/// How far behind the latest event time a shard's own latest event time may
/// be. Each shard keeps its own watermark, and which machines a shard holds
/// is not the test's business; with 300 machines sending every ~100 ms of
/// event time, a shard's latest event trails the overall latest by seconds.
const SHARD_LAG_MS: i64 = 10 * 60_000;

/// How far the watermark may advance with the wall clock while the input is
/// idle: at most the run's own wall time, which [`RUN_TIMEOUT`] bounds.
const IDLE_ADVANCE_MS: i64 = RUN_TIMEOUT.as_millis() as i64;

/// The pipeline under test. `out` is the directory of this run's files;
/// `shards` is left to the default (one per arbiter thread) when `None`.
/// `unique` also feeds a file of its own so the test sees exactly what
/// sessionize was given.
fn topology(out: &str, shards: Option<usize>) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The default is one shard per arbiter thread; on a one-core machine two
    // threads keep the default run sharded.
    let engine = if shards.is_none() && cores < 2 {
        "[engine]\nthreads = 2\n"
    } else {
        ""
    };
    let shards = shards.map_or(String::new(), |n| format!("shards = {n}"));
    format!(
        r#"{NO_API}{engine}
[sources.replay]
type = "file"
path = "{INPUT}"

[transforms.valid]
type = "filter"
inputs = ["replay"]
require = ["messageId", "timestamp"]
require_any = [["context.device.id", "anonymousId"]]

[transforms.unique]
type = "dedupe"
inputs = ["valid"]
field = "messageId"

[transforms.sessions]
type = "sessionize"
inputs = ["unique"]
key = "context.device.id"
fallback_key = "anonymousId"
time_field = "timestamp"
timeout = "30m"
open_events = ["Application Opened", "Document Opened"]
max_duration = "24h"
allowed_lateness = "2m"
{shards}

[sinks.tagged]
type = "file"
inputs = ["sessions"]
path = "{out}/tagged.ndjson"

[sinks.summaries]
type = "file"
inputs = ["sessions.summaries"]
path = "{out}/summaries.ndjson"

[sinks.late]
type = "file"
inputs = ["sessions.late"]
path = "{out}/late.ndjson"

[sinks.passed]
type = "file"
inputs = ["unique"]
path = "{out}/passed.ndjson"

[sinks.rejects]
type = "file"
inputs = ["replay.rejected", "valid.rejected", "unique.rejected", "sessions.rejected"]
path = "{out}/rejected.ndjson"

[sinks.duplicates]
type = "file"
inputs = ["unique.duplicates"]
path = "{out}/duplicates.ndjson"
"#
    )
}

/// What one run wrote.
struct Replay {
    report: SourceReport,
    /// Events tagged with their session (`sessions`).
    tagged: Vec<Value>,
    summaries: Vec<Value>,
    late: Vec<Value>,
    /// What dedupe passed on: sessionize's whole input.
    passed: Vec<Value>,
    /// Rejection records of every component.
    rejected: Vec<Value>,
    duplicates: Vec<Value>,
}

/// `sluice gen` output with late events, duplicates and invalid lines.
fn generate(sandbox: &Sandbox) {
    let lines = sandbox.gen(
        INPUT,
        &[
            "--events",
            &INPUT_EVENTS.to_string(),
            "--machines",
            "300",
            "--seed",
            "5",
        ],
    );
    assert_eq!(lines, INPUT_EVENTS);
}

/// Runs the pipeline to the end of the input, writing under `out/`.
fn replay(sandbox: &Sandbox, out: &str, shards: Option<usize>) -> Replay {
    let config = sandbox.write(&format!("{out}.toml"), topology(out, shards));
    let mut sluice = sandbox.spawn(&config);
    sluice.expect_success(RUN_TIMEOUT);
    let file = |name: &str| sandbox.ndjson(&format!("{out}/{name}.ndjson"));
    Replay {
        report: sluice.source_report("replay"),
        tagged: file("tagged"),
        summaries: file("summaries"),
        late: file("late"),
        passed: file("passed"),
        rejected: file("rejected"),
        duplicates: file("duplicates"),
    }
}

// ---- the batch model ----

/// The machine: `context.device.id`, else `anonymousId`.
fn machine(event: &Value) -> &str {
    [&event["context"]["device"]["id"], &event["anonymousId"]]
        .into_iter()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| panic!("a sessionized event has a machine: {event}"))
}

/// The event time in UTC milliseconds.
fn time_ms(event: &Value) -> i64 {
    let text = str_field(event, "timestamp");
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("timestamp {text:?} is not RFC 3339 ({e}) in {event}"))
        .timestamp_millis()
}

/// `2024-03-01T10:00:00.123Z`.
fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_else(|| panic!("{ms} ms is out of chrono's range"))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn is_open(event: &Value) -> bool {
    event["type"] == "track"
        && event["event"]
            .as_str()
            .is_some_and(|name| OPEN_EVENTS.contains(&name))
}

/// What a summary names an event by: its `event`, else its `type`.
fn label(event: &Value) -> &str {
    event["event"]
        .as_str()
        .unwrap_or_else(|| str_field(event, "type"))
}

/// One session of the batch model.
struct ModelSession<'a> {
    key: &'a str,
    /// In model order: time, then `messageId` bytes.
    events: Vec<&'a Value>,
    start_ms: i64,
    end_ms: i64,
    /// Why the machine's next session started; `None` for its last session.
    next_started_by: Option<&'static str>,
}

impl ModelSession<'_> {
    /// The last non-empty `userId`.
    fn user_id(&self) -> Value {
        self.events
            .iter()
            .rev()
            .find_map(|e| e["userId"].as_str().filter(|u| !u.is_empty()))
            .map_or(Value::Null, |u| Value::String(u.to_owned()))
    }

    fn describe(&self) -> String {
        let events: Vec<String> = self
            .events
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    str_field(e, "timestamp"),
                    str_field(e, "messageId"),
                    label(e)
                )
            })
            .collect();
        format!("machine {} session [{}]", self.key, events.join(", "))
    }
}

/// Why an event at `time` after `session` starts a new session, if it does;
/// the first rule that holds, in the contract's priority.
fn boundary(session: &ModelSession<'_>, time: i64, event: &Value) -> Option<&'static str> {
    if time - session.end_ms > TIMEOUT_MS {
        Some("timeout")
    } else if is_open(event) {
        Some("open_event")
    } else if time - session.start_ms > MAX_DURATION_MS {
        Some("max_duration")
    } else {
        None
    }
}

/// A machine's events, each with its sort key: time, then `messageId` bytes.
type Timeline<'a> = Vec<(i64, &'a [u8], &'a Value)>;

/// The sessions of `events` computed over the whole input at once.
fn batch_sessions(events: &[Value]) -> Vec<ModelSession<'_>> {
    let mut by_machine: BTreeMap<&str, Timeline<'_>> = BTreeMap::new();
    for event in events {
        let id = str_field(event, "messageId").as_bytes();
        by_machine
            .entry(machine(event))
            .or_default()
            .push((time_ms(event), id, event));
    }
    let mut sessions = Vec::new();
    for (key, mut events) in by_machine {
        events.sort_by_key(|&(time, id, _)| (time, id));
        let mut current: Option<ModelSession<'_>> = None;
        for (time, _, event) in events {
            if let Some(reason) = current.as_ref().and_then(|s| boundary(s, time, event)) {
                // `current` was just seen to be `Some`.
                let mut done = current.take().expect("an open model session");
                done.next_started_by = Some(reason);
                sessions.push(done);
            }
            let session = current.get_or_insert_with(|| ModelSession {
                key,
                events: Vec::new(),
                start_ms: time,
                end_ms: time,
                next_started_by: None,
            });
            session.events.push(event);
            session.end_ms = time;
        }
        sessions.extend(current);
    }
    sessions
}

// ---- checks ----

/// `event` without `field`, which must be there.
fn without(event: &Value, field: &str) -> Value {
    let mut event = event.clone();
    let removed = event
        .as_object_mut()
        .and_then(|fields| fields.remove(field));
    assert!(removed.is_some(), "`{field}` missing from {event}");
    event
}

/// Every input line is read, acknowledged and ends in exactly one output;
/// sessionize's input leaves tagged, late or rejected, unchanged but for the
/// field it adds.
fn check_accounting(run: &Replay) {
    assert_eq!(
        run.report,
        SourceReport {
            lines: INPUT_EVENTS,
            delivered: INPUT_EVENTS,
            failed: 0
        },
        "the source read and delivered every line"
    );

    let mut rejected_by: BTreeMap<(&str, &str), Vec<&Value>> = BTreeMap::new();
    for record in &run.rejected {
        rejected_by
            .entry((
                str_field(record, "component_id"),
                str_field(record, "reason"),
            ))
            .or_default()
            .push(&record["event"]);
    }
    let from = |id: &str| -> usize {
        rejected_by
            .iter()
            .filter(|((component, _), _)| *component == id)
            .map(|(_, events)| events.len())
            .sum()
    };
    let reasons: Vec<_> = rejected_by.iter().map(|(k, v)| (k, v.len())).collect();
    assert!(
        from("replay") > 0 && from("valid") > 0,
        "gen's malformed lines and events without messageId are rejected: {reasons:?}"
    );
    assert!(
        !run.duplicates.is_empty(),
        "gen's repeated lines reach duplicates"
    );
    assert_eq!(
        (from("replay") + from("valid") + from("unique") + run.duplicates.len() + run.passed.len())
            as u64,
        run.report.lines,
        "every line was rejected, a duplicate, or passed on by dedupe: {reasons:?}, {} duplicates, {} passed",
        run.duplicates.len(),
        run.passed.len()
    );

    // Sessionize rejects only gen's impossible dates (the filter here does not
    // check timestamps).
    let session_rejects = rejected_by
        .get(&("sessions", "bad_timestamp"))
        .cloned()
        .unwrap_or_default();
    assert!(
        !session_rejects.is_empty(),
        "gen's 2024-02-30 timestamps are rejected by sessionize: {reasons:?}"
    );
    assert_eq!(
        from("sessions"),
        session_rejects.len(),
        "sessionize rejects only bad timestamps here: {reasons:?}"
    );
    assert_eq!(
        run.tagged.len() + run.late.len() + session_rejects.len(),
        run.passed.len(),
        "tagged {} + late {} + rejected {} must be what dedupe passed on",
        run.tagged.len(),
        run.late.len(),
        session_rejects.len()
    );

    // The same events, each once, unchanged but for the added field.
    let mut passed: HashMap<&str, &Value> = HashMap::new();
    for event in &run.passed {
        let id = str_field(event, "messageId");
        assert!(
            passed.insert(id, event).is_none(),
            "dedupe passed {id} on twice"
        );
    }
    let mut seen = HashSet::new();
    let mut expect_passed = |event: Value, output: &str| {
        let id = str_field(&event, "messageId").to_owned();
        let original = passed
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{output} holds {id}, which dedupe did not pass on"));
        assert_eq!(&&event, original, "{output} changed {id}");
        assert!(seen.insert(id.clone()), "{id} left sessionize twice");
    };
    for event in &run.tagged {
        expect_passed(without(event, "session"), "the tagged output");
    }
    for event in &run.late {
        expect_passed(without(event, "late_reason"), "the late output");
    }
    for event in session_rejects {
        expect_passed(event.clone(), "sessions.rejected");
    }
}

/// Late events: a few (gen sends about one in a thousand from an offline
/// phone), each with its reason, untagged, and truly behind the watermark.
fn check_late(run: &Replay) {
    assert!(
        !run.late.is_empty(),
        "gen's offline-late events reach the late output"
    );
    assert!(
        run.late.len() * 100 < run.passed.len(),
        "{} of {} events were late; gen makes about 0.1%",
        run.late.len(),
        run.passed.len()
    );
    let latest = run.tagged.iter().map(time_ms).max().unwrap_or(i64::MIN);
    for event in &run.late {
        assert_eq!(
            event["late_reason"], "before_watermark",
            "a late event says why: {event}"
        );
        assert!(
            event.get("session").is_none(),
            "a late event is not tagged: {event}"
        );
        assert!(
            time_ms(event) < latest - LATENESS_MS + IDLE_ADVANCE_MS,
            "{} is late, yet within the allowed lateness of the latest event {}",
            str_field(event, "timestamp"),
            rfc3339_ms(latest)
        );
    }
}

/// The tags and summaries are the batch model's sessions over the tagged
/// events.
fn check_against_model(run: &Replay) {
    let model = batch_sessions(&run.tagged);
    assert!(
        model.len() > 1000,
        "gen's 30,000 events make thousands of sessions, not {}",
        model.len()
    );

    // Tags: one id per model session, seq 1..n in model order, its start.
    let mut model_by_id: HashMap<&str, &ModelSession<'_>> = HashMap::new();
    for session in &model {
        let id = str_field(&session.events[0]["session"], "id");
        let uuid = uuid::Uuid::parse_str(id)
            .unwrap_or_else(|e| panic!("session id {id:?} is not a UUID ({e})"));
        assert_eq!(uuid.get_version_num(), 5, "{id} is a name-based UUIDv5");
        let start = rfc3339_ms(session.start_ms);
        for (i, event) in session.events.iter().enumerate() {
            let tag = &event["session"];
            let expected = json!({"id": id, "seq": i + 1, "start": start});
            assert_eq!(
                tag,
                &expected,
                "event {} of the model's {}",
                i + 1,
                session.describe()
            );
        }
        if let Some(other) = model_by_id.insert(id, session) {
            panic!(
                "two model sessions share id {id}:\n{}\n{}",
                other.describe(),
                session.describe()
            );
        }
    }

    // Summaries: one per model session, describing it.
    assert_eq!(
        run.summaries.len(),
        model.len(),
        "one summary per model session"
    );
    let latest = model.iter().map(|s| s.end_ms).max().unwrap_or(i64::MIN);
    let mut summarized = HashSet::new();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for summary in &run.summaries {
        let id = str_field(summary, "session_id");
        assert!(summarized.insert(id), "session {id} was summarized twice");
        let session = model_by_id
            .get(id)
            .unwrap_or_else(|| panic!("summary of a session the model does not have: {summary}"));
        let first = session.events[0];
        let last = session.events[session.events.len() - 1];
        let expected = json!({
            "session_id": id,
            "key": session.key,
            "user_id": session.user_id(),
            "start": rfc3339_ms(session.start_ms),
            "end": rfc3339_ms(session.end_ms),
            "duration_ms": session.end_ms - session.start_ms,
            "event_count": session.events.len(),
            "first_event": label(first),
            "last_event": label(last),
        });
        assert_eq!(
            without(summary, "end_reason"),
            expected,
            "summary of the model's {}",
            session.describe()
        );

        let reason = str_field(summary, "end_reason");
        *reasons.entry(reason).or_default() += 1;
        match session.next_started_by {
            Some(next) => assert_eq!(
                reason,
                next,
                "a session ends for the reason the next one started: {}",
                session.describe()
            ),
            None => {
                // The machine's last session: the watermark closed it if it
                // passed the last event plus the timeout, else the input's end.
                let deadline = session.end_ms + TIMEOUT_MS;
                let watermark_passed = deadline < latest - LATENESS_MS - SHARD_LAG_MS;
                let watermark_short = deadline >= latest - LATENESS_MS + IDLE_ADVANCE_MS;
                let allowed: &[&str] = if watermark_passed {
                    &["timeout"]
                } else if watermark_short {
                    &["end_of_input"]
                } else {
                    &["timeout", "end_of_input"]
                };
                assert!(
                    allowed.contains(&reason),
                    "end_reason {reason:?} of a machine's last session, {}, should be one of {allowed:?} (latest event {})",
                    session.describe(),
                    rfc3339_ms(latest)
                );
            }
        }
    }
    for reason in ["timeout", "open_event", "end_of_input"] {
        assert!(
            reasons.contains_key(reason),
            "gen's input ends some session with {reason}: {reasons:?}"
        );
    }
}

/// `messageId` → its `session` tag.
fn tags(run: &Replay) -> BTreeMap<&str, &Value> {
    run.tagged
        .iter()
        .map(|e| (str_field(e, "messageId"), &e["session"]))
        .collect()
}

/// The two runs tagged the same events with the same sessions.
fn assert_same_tags(a: &Replay, b: &Replay, what: &str) {
    let (a, b) = (tags(a), tags(b));
    let only_a: Vec<_> = a.keys().filter(|id| !b.contains_key(*id)).take(5).collect();
    let only_b: Vec<_> = b.keys().filter(|id| !a.contains_key(*id)).take(5).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "{what}: tagged in one run only: {only_a:?} / {only_b:?}"
    );
    let differ: Vec<_> = a
        .iter()
        .filter(|(id, tag)| b[*id] != **tag)
        .take(5)
        .map(|(id, tag)| format!("{id}: {tag} vs {}", b[id]))
        .collect();
    assert!(differ.is_empty(), "{what}: sessions differ: {differ:#?}");
}

#[test]
fn replayed_sessions_equal_the_batch_model() {
    let sandbox = Sandbox::new();
    generate(&sandbox);
    for (out, shards) in [("sharded", None), ("single", Some(1))] {
        let run = replay(&sandbox, out, shards);
        check_accounting(&run);
        check_late(&run);
        check_against_model(&run);
    }
}

#[test]
fn sessions_do_not_depend_on_sharding_or_the_run() {
    let sandbox = Sandbox::new();
    generate(&sandbox);
    let sharded = replay(&sandbox, "sharded", None);
    let again = replay(&sandbox, "again", None);
    let single = replay(&sandbox, "single", Some(1));
    assert!(sharded.tagged.len() > 29_000, "most events are tagged");
    assert_same_tags(&sharded, &again, "the same input run twice");
    assert_same_tags(&sharded, &single, "sharded and one-shard runs");

    let ids = |run: &Replay| -> HashSet<String> {
        run.summaries
            .iter()
            .map(|s| str_field(s, "session_id").to_owned())
            .collect()
    };
    assert_eq!(
        ids(&sharded),
        ids(&again),
        "the same sessions are summarized"
    );
    assert_eq!(
        ids(&sharded),
        ids(&single),
        "the same sessions are summarized"
    );
}
