//! The official Segment libraries against the `segment_http` source, pointed
//! at it by changing only their `host`: `segment-analytics-python` and
//! `@segment/analytics-node`, installed by `scripts/test.sh`, each send a few
//! thousand track / identify / page calls through `filter → dedupe →
//! sessionize → file`. Every call must arrive exactly once, and the sessions
//! must be those a replay of the same events from a file gives (the Python
//! library sends gzip). With `acknowledgements = "delivered"` every event the
//! Node library was answered for is in the file when it returns. A client whose
//! sluice has a slow sink gets 503s, retries, and in the end nothing is lost or
//! doubled.
//!
//! The libraries are run as child processes (`tests/sdk/send.py`,
//! `tests/sdk/send.js`) fed a plan of events written by the test.

mod common;
mod segment_http;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use segment_http::*;
use serde_json::{json, Value};

/// Events each library sends.
const EVENTS: usize = 3000;
/// Machines (anonymous ids) they come from.
const MACHINES: usize = 25;

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// The calls to make: tracks (some of them session-opening), pages and
/// identifies, one second apart, spread over the machines.
fn plan(prefix: &str) -> Vec<Value> {
    let base = chrono::DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z").expect("a time");
    (0..EVENTS)
        .map(|i| {
            let machine = format!("{prefix}-machine-{}", i % MACHINES);
            let at = base + chrono::Duration::seconds(i as i64);
            let timestamp = at.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let id = format!("{prefix}-{i}");
            let round = i / MACHINES;
            match round % 10 {
                0 | 6 => json!({"type": "track", "event": "Application Opened", "messageId": id,
                               "anonymousId": machine, "timestamp": timestamp}),
                3 => json!({"type": "page", "name": "Home", "messageId": id,
                            "anonymousId": machine, "timestamp": timestamp, "properties": {"path": "/"}}),
                5 => json!({"type": "identify", "userId": format!("user-{}", i % MACHINES), "messageId": id,
                            "anonymousId": machine, "timestamp": timestamp, "traits": {"plan": "pro"}}),
                _ => json!({"type": "track", "event": "Product Viewed", "messageId": id,
                            "anonymousId": machine, "timestamp": timestamp, "properties": {"sku": format!("sku-{round}")}}),
            }
        })
        .collect()
}

/// `filter → dedupe → sessionize → file` behind the source `source`, writing
/// under `out`.
fn pipeline(source: &str, out: &str) -> String {
    format!(
        r#"
[transforms.valid]
type = "filter"
inputs = ["{source}"]
types = ["track", "page", "identify"]
require = ["messageId", "timestamp"]
require_any = [["context.device.id", "anonymousId"]]
timestamps = ["timestamp"]

[transforms.unique]
type = "dedupe"
inputs = ["valid"]
field = "messageId"
capacity = 100000

[transforms.sessions]
type = "sessionize"
inputs = ["unique"]
key = "context.device.id"
fallback_key = "anonymousId"
time_field = "timestamp"
timeout = "30m"
open_events = ["Application Opened"]
# More than the plan's whole span (one event a second, 50 minutes): a
# library that retries a batch after a 503 sends it after later batches, and
# under load that reorders events by more than any shorter lateness, which
# would send a whole batch to `late` (seen on a loaded CI machine).
allowed_lateness = "2h"

[sinks.events]
type = "file"
inputs = ["sessions"]
path = "{out}/events/%Y-%m-%d.ndjson"

[sinks.summaries]
type = "file"
inputs = ["sessions.summaries"]
path = "{out}/sessions.ndjson"
time_field = "start"

[sinks.rejects]
type = "file"
inputs = ["valid.rejected", "unique.duplicates", "unique.rejected", "sessions.late", "sessions.rejected"]
path = "{out}/rejected.ndjson"
"#
    )
}

/// Runs a library's sender script on the plan; returns its summary line.
fn run_sender(
    sandbox: &Sandbox,
    program: &str,
    script: &str,
    extra: &[&str],
    plan: &[Value],
    port: u16,
) -> Value {
    let plan_path = sandbox.write("plan.json", serde_json::to_vec(plan).expect("plan JSON"));
    let output = Command::new(program)
        .arg(sdk_dir().join(script))
        .arg(&plan_path)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(KEY)
        .args(extra)
        .current_dir(sdk_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("run {program} {script}: {e} (run ./scripts/test.sh to install it)")
        });
    assert!(
        output.status.success(),
        "{program} {script} failed ({}); is the library installed? ./scripts/test.sh installs it.\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} printed no summary ({e}): {stdout}"))
}

/// Every event written under `out/events`, in file order.
fn written(sandbox: &Sandbox, out: &str) -> Vec<Value> {
    sandbox
        .ndjson_tree(&format!("{out}/events"))
        .into_iter()
        .flat_map(|(_, events)| events)
        .collect()
}

/// messageId → (session id, seq).
fn sessions_of(events: &[Value]) -> BTreeMap<String, (String, u64)> {
    events
        .iter()
        .map(|e| {
            let session = &e["session"];
            (
                str_field(e, "messageId").to_owned(),
                (
                    str_field(session, "id").to_owned(),
                    session["seq"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("no seq in {e}")),
                ),
            )
        })
        .collect()
}

/// Summaries without `end_reason` (a live run ends with `shutdown`, a replay
/// with `end_of_input`), sorted.
fn summaries(sandbox: &Sandbox, out: &str) -> Vec<Value> {
    let mut all: Vec<Value> = sandbox
        .ndjson(&format!("{out}/sessions.ndjson"))
        .into_iter()
        .map(|mut s| {
            if let Some(map) = s.as_object_mut() {
                map.remove("end_reason");
            }
            s
        })
        .collect();
    all.sort_by_key(|s| s.to_string());
    all
}

/// Sends the plan with a library through a live sluice, replays the same
/// events from a file, and compares.
fn library_round_trip(prefix: &str, program: &str, script: &str, extra: &[&str]) {
    let sandbox = Sandbox::new();
    let plan = plan(prefix);
    let api_port = free_port();
    let port = free_port();
    let live = format!(
        "{}{}\n{}",
        api_on(api_port),
        source_on(port, "max_wait = \"2s\""),
        pipeline("segment", "live")
    );
    let path = sandbox.write("live.toml", live);
    let mut sluice = sandbox.spawn(&path);
    let api = sluice.api(api_port);
    let summary = run_sender(&sandbox, program, script, extra, &plan, port);
    assert_eq!(
        summary["errors"],
        json!([]),
        "the library reported errors: {summary}"
    );
    // Every call reached the source before we stop it.
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(50),
        "the source to receive every event",
        || (counter(&api.topology(), "segment", "received_events") >= EVENTS as u64).then_some(()),
    );
    let metrics = api.metrics();
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(60));
    let accepted_200 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_ingest_requests_total{") && l.contains("status=\"200\""))
        .count();
    assert!(accepted_200 > 0, "no 200 in the ingest metrics:\n{metrics}");

    let events = written(&sandbox, "live");
    let ids: Vec<&str> = events.iter().map(|e| str_field(e, "messageId")).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event was written twice");
    let wanted: BTreeSet<&str> = plan.iter().map(|e| str_field(e, "messageId")).collect();
    if unique != wanted {
        let missing: Vec<_> = wanted.difference(&unique).collect();
        let extra: Vec<_> = unique.difference(&wanted).collect();
        panic!(
            "not exactly the events sent: {} missing {:?}, {} extra {:?}; rejected: {:?}; log:\n{}",
            missing.len(),
            missing.iter().take(10).collect::<Vec<_>>(),
            extra.len(),
            extra.iter().take(10).collect::<Vec<_>>(),
            sandbox
                .ndjson("live/rejected.ndjson")
                .iter()
                .take(3)
                .collect::<Vec<_>>(),
            sluice.log_text()
        );
    }
    assert_eq!(sandbox.ndjson("live/rejected.ndjson"), Vec::<Value>::new());
    for event in &events {
        assert!(
            event["context"]["library"]["name"].is_string(),
            "no library context: {event}"
        );
        assert_eq!(event["context"]["ip"], "127.0.0.1");
        assert!(
            event["receivedAt"].is_string() && event["sentAt"].is_string(),
            "{event}"
        );
    }

    // The same events, replayed from a file.
    let lines: String = plan.iter().map(|e| format!("{e}\n")).collect();
    sandbox.write("events/plan.ndjson", lines);
    let replay = format!(
        "{NO_API}[sources.replay]\ntype = \"file\"\npath = \"events/plan.ndjson\"\n{}",
        pipeline("replay", "replay")
    );
    let path = sandbox.write("replay.toml", replay);
    sandbox.spawn(&path).expect_success(Duration::from_secs(60));
    let replayed = written(&sandbox, "replay");
    assert_eq!(replayed.len(), EVENTS);
    assert_eq!(
        sessions_of(&events),
        sessions_of(&replayed),
        "sessions differ from the replay's"
    );
    let live_summaries = summaries(&sandbox, "live");
    assert!(
        live_summaries.len() > MACHINES,
        "too few sessions: {}",
        live_summaries.len()
    );
    assert_eq!(live_summaries, summaries(&sandbox, "replay"));
}

#[test]
fn python_library_events_arrive_once_with_replay_sessions() {
    // gzip=True: the library compresses its batches.
    library_round_trip("py", "python3", "send.py", &["gzip"]);
}

#[test]
fn node_library_events_arrive_once_with_replay_sessions() {
    library_round_trip("node", "node", "send.js", &[]);
}

#[test]
fn node_library_with_delivered_acknowledgements_loses_nothing() {
    let sandbox = Sandbox::new();
    let plan = plan("acked");
    let api_port = free_port();
    let port = free_port();
    // No transform that holds events: each answer waits for the file write.
    let topology = format!(
        "{}{}\n[transforms.unique]\ntype = \"dedupe\"\ninputs = [\"segment\"]\nfield = \"messageId\"\n\
         capacity = 100000\n\n[sinks.out]\ntype = \"file\"\ninputs = [\"unique\"]\npath = \"out/events.ndjson\"\n",
        api_on(api_port),
        source_on(port, "acknowledgements = \"delivered\"")
    );
    let path = sandbox.topology(&topology);
    let mut sluice = sandbox.spawn(&path);
    sluice.api(api_port);
    let summary = run_sender(&sandbox, "node", "send.js", &[], &plan, port);
    assert_eq!(
        summary["errors"],
        json!([]),
        "the library reported errors: {summary}"
    );
    // Every call was answered 200 only once written: all are in the file now.
    let ids = message_ids(&sandbox.ndjson("out/events.ndjson"));
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was written twice");
    assert_eq!(ids.len(), EVENTS, "not every answered event was written");
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}

#[test]
fn a_client_of_a_slow_sluice_gets_503s_retries_and_loses_nothing() {
    let sandbox = Sandbox::new();
    let plan = plan("slow");
    let api_port = free_port();
    let port = free_port();
    // Every event is also written to a blackhole taking 1500 a second: the
    // client sends faster, the pipeline fills, requests wait 50ms, then 503.
    let topology = format!(
        "{}[engine]\nmailbox_capacity = 2\n\n{}\n\
         [transforms.unique]\ntype = \"dedupe\"\ninputs = [\"segment\"]\nfield = \"messageId\"\ncapacity = 100000\n\n\
         [sinks.out]\ntype = \"file\"\ninputs = [\"unique\"]\npath = \"out/events.ndjson\"\n\n\
         [sinks.slow]\ntype = \"blackhole\"\ninputs = [\"unique\"]\nrate = 1500\n",
        api_on(api_port),
        source_on(port, "max_wait = \"50ms\"")
    );
    let path = sandbox.topology(&topology);
    let mut sluice = sandbox.spawn(&path);
    let api = sluice.api(api_port);
    let summary = run_sender(&sandbox, "python3", "send.py", &[], &plan, port);
    assert_eq!(
        summary["errors"],
        json!([]),
        "the library gave up on events: {summary}"
    );
    let metrics = api.metrics();
    let busy = metric(
        &metrics,
        "sluice_ingest_requests_total",
        "segment",
        Some("status=\"503\""),
    );
    assert!(
        busy.unwrap_or(0.0) > 0.0,
        "the client never got a 503:\n{metrics}"
    );
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(60));
    let events = sandbox.ndjson("out/events.ndjson");
    let ids = message_ids(&events);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was written twice");
    assert_eq!(ids.len(), EVENTS, "events were lost");
}
