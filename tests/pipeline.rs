//! Whole-topology tests of the data path: a replay through every transform
//! kind accounts for every input line; malformed input is rejected, not lost;
//! fan-out and fan-in deliver everything; `validate` and `graph` read the
//! repository's topology and report broken ones with line numbers.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The repository's pipeline shape, writing kept events by route and keeping
/// rejections and duplicates in separate files so each can be counted.
const REPLAY: &str = r#"
[engine]
batch_size = 256
mailbox_capacity = 4
shutdown_timeout = "20s"

[sources.replay]
type = "file"
path = "events/*.ndjson"

[transforms.valid]
type = "filter"
inputs = ["replay"]
types = ["track", "page", "identify"]
events = { "Order Completed" = true, "Product Clicked" = true, "Product Viewed" = true, "Application Opened" = true, "Document Opened" = true, "Page Viewed" = true, "Debug Ping" = false }
require = ["messageId", "timestamp"]
require_any = [["context.device.id", "anonymousId"]]
require_by_type = { track = ["event"] }
strings = ["messageId", "event", "anonymousId", "userId"]
timestamps = ["timestamp"]

[transforms.unique]
type = "dedupe"
inputs = ["valid"]
field = "messageId"
capacity = 1_000_000

[transforms.enriched]
type = "enrich"
inputs = ["unique"]
ops = [
  { op = "timestamp_parts", from = "timestamp", date = "date", hour = "hour", unix = "timestamp_unix" },
  { op = "set", path = "pipeline", value = "sluice" },
]

[transforms.by_event]
type = "route"
inputs = ["enriched"]
routes = { orders = ["Order Completed"], clicks = ["Product Clicked"] }

[sinks.orders]
type = "file"
inputs = ["by_event.orders"]
path = "out/orders/{userId}/%Y/%m/%d/%H.ndjson"

[sinks.clicks]
type = "file"
inputs = ["by_event.clicks"]
path = "out/clicks/{type}.ndjson"

[sinks.others]
type = "file"
inputs = ["by_event._default"]
path = "out/events/%Y-%m-%d/{type}.ndjson"

[sinks.rejects]
type = "file"
inputs = ["replay.rejected", "valid.rejected", "unique.rejected", "enriched.rejected", "by_event.rejected"]
path = "out/rejected.ndjson"

[sinks.dups]
type = "file"
inputs = ["unique.duplicates"]
path = "out/duplicates.ndjson"
"#;

/// `YYYY`, `MM`, `DD`, `HH` of an RFC 3339 UTC time such as `2024-03-01T00:09:52.940Z`.
fn utc_parts(timestamp: &str) -> (&str, &str, &str, &str) {
    assert!(
        timestamp.ends_with('Z') && timestamp.len() >= 20,
        "expected a UTC timestamp, got {timestamp}"
    );
    (
        &timestamp[0..4],
        &timestamp[5..7],
        &timestamp[8..10],
        &timestamp[11..13],
    )
}

#[test]
fn replay_accounts_for_every_input_line() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("events")).expect("mkdir events");
    let input_lines = sandbox.gen(
        "events/sample.ndjson",
        &["--events", "20000", "--machines", "200", "--seed", "3"],
    );
    assert_eq!(input_lines, 20_000);
    let topology = sandbox.topology(&format!("{NO_API}{REPLAY}"));

    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(RUN_TIMEOUT);

    let report = sluice.source_report("replay");
    assert_eq!(report.lines, input_lines, "the source read every line");
    assert_eq!(
        report.delivered, input_lines,
        "every batch was acknowledged as delivered"
    );
    assert_eq!(report.failed, 0);

    // Kept events, by the route output that wrote them.
    let orders = sandbox.ndjson_tree("out/orders");
    let clicks = sandbox.ndjson_tree("out/clicks");
    let others = sandbox.ndjson_tree("out/events");
    let rejected = sandbox.ndjson("out/rejected.ndjson");
    let duplicates = sandbox.ndjson("out/duplicates.ndjson");
    let count = |tree: &[(String, Vec<Value>)]| tree.iter().map(|(_, e)| e.len()).sum::<usize>();
    let kept = count(&orders) + count(&clicks) + count(&others);

    assert_eq!(
        (kept + rejected.len() + duplicates.len()) as u64,
        report.lines,
        "kept {kept} + rejected {} + duplicates {} must be every line read",
        rejected.len(),
        duplicates.len()
    );

    // Rejections: well-formed records from the components that may reject.
    let mut by_reason: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in &rejected {
        let component = str_field(record, "component_id");
        let reason = str_field(record, "reason");
        assert!(
            !str_field(record, "message").is_empty(),
            "a rejection says why: {record}"
        );
        assert!(
            record["event"].is_object(),
            "a rejection keeps the event: {record}"
        );
        assert!(
            ["replay", "valid", "unique", "enriched"].contains(&component),
            "unexpected rejecting component in {record}"
        );
        *by_reason
            .entry((component.to_owned(), reason.to_owned()))
            .or_default() += 1;
    }
    let from = |id: &str| {
        by_reason
            .iter()
            .filter(|((c, _), _)| c == id)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert!(
        from("replay") > 0,
        "gen's malformed lines are rejected by the source: {by_reason:?}"
    );
    assert!(
        from("valid") > 0,
        "gen's invalid events are rejected by the filter: {by_reason:?}"
    );
    assert!(
        by_reason.contains_key(&("valid".into(), "event_disabled".into())),
        "`Debug Ping = false` is rejected as disabled: {by_reason:?}"
    );

    // Every kept event is unique, enriched, and consistent with its timestamp.
    let mut kept_ids = HashSet::new();
    for (path, events) in orders.iter().chain(&clicks).chain(&others) {
        for event in events {
            let id = str_field(event, "messageId");
            assert!(
                kept_ids.insert(id.to_owned()),
                "{id} was kept twice ({path})"
            );
            assert_eq!(event["pipeline"], "sluice", "enrich `set` ran on {event}");
            let (y, m, d, h) = utc_parts(str_field(event, "timestamp"));
            assert_eq!(
                str_field(event, "date"),
                format!("{y}-{m}-{d}"),
                "date of {event}"
            );
            assert_eq!(
                event["hour"].as_u64(),
                Some(h.parse().expect("hour")),
                "hour of {event}"
            );
            assert!(event["timestamp_unix"].is_i64() || event["timestamp_unix"].is_u64());
        }
    }

    // Duplicates repeat a kept event's id: the first sighting went on.
    assert!(
        !duplicates.is_empty(),
        "gen writes duplicates and dedupe finds them"
    );
    for dup in &duplicates {
        let id = str_field(dup, "messageId");
        assert!(
            kept_ids.contains(id),
            "duplicate {id} repeats no kept event"
        );
        assert!(
            dup.get("pipeline").is_none(),
            "duplicates leave before enrich: {dup}"
        );
    }

    // Routes hold only their own event names, in partitions templated by fields and time.
    assert!(!orders.is_empty() && !clicks.is_empty() && !others.is_empty());
    for (path, events) in &orders {
        for event in events {
            assert_eq!(event["event"], "Order Completed", "in {path}");
            let user = event["userId"].as_str().unwrap_or("_");
            let (y, m, d, h) = utc_parts(str_field(event, "timestamp"));
            assert_eq!(path, &format!("out/orders/{user}/{y}/{m}/{d}/{h}.ndjson"));
        }
    }
    for (path, events) in &clicks {
        for event in events {
            assert_eq!(event["event"], "Product Clicked", "in {path}");
            assert_eq!(
                path,
                &format!("out/clicks/{}.ndjson", str_field(event, "type"))
            );
        }
    }
    let mut other_types = HashSet::new();
    for (path, events) in &others {
        for event in events {
            let name = event["event"].as_str();
            assert!(
                name != Some("Order Completed") && name != Some("Product Clicked"),
                "a routed event reached _default: {path}"
            );
            let kind = str_field(event, "type");
            other_types.insert(kind.to_owned());
            assert_eq!(
                path,
                &format!("out/events/{}/{kind}.ndjson", str_field(event, "date"))
            );
        }
    }
    assert!(
        other_types.len() >= 2,
        "page and identify events take the default route: {other_types:?}"
    );

    // Nothing was written outside `out/` besides the inputs.
    let stray: Vec<String> = sandbox
        .files("")
        .into_iter()
        .filter(|p| !p.starts_with("out/") && p != "events/sample.ndjson" && p != "topology.toml")
        .collect();
    assert!(stray.is_empty(), "files outside out/: {stray:?}");
}

#[test]
fn malformed_lines_are_rejected_with_their_reason() {
    let sandbox = Sandbox::new();
    let long = format!("{{\"n\":99,\"pad\":\"{}\"}}", "x".repeat(3000));
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"{\"n\":1}\n"); // 1: an event
    input.extend_from_slice(b"\xff\xfe{\"n\":2}\n"); // 2: invalid UTF-8
    input.extend_from_slice(b"   \n"); // 3: blank, skipped
    input.extend_from_slice(b"[1,2,3]\n"); // 4: not an object
    input.extend_from_slice(b"\"just a string\"\n"); // 5: not an object
    input.extend_from_slice(long.as_bytes()); // 6: over max_line_bytes
    input.push(b'\n');
    input.extend_from_slice(b"{\"n\":3}\r\n"); // 7: an event, CRLF
    input.extend_from_slice(b"{\"n\":4,\"messageId\":"); // 8: truncated, no newline at EOF
    sandbox.write("in.ndjson", &input);
    let topology = sandbox.topology(&format!(
        r#"{NO_API}
[sources.in]
type = "file"
path = "in.ndjson"
max_line_bytes = "1KiB"

[sinks.ok]
type = "file"
inputs = ["in"]
path = "out/ok.ndjson"

[sinks.bad]
type = "file"
inputs = ["in.rejected"]
path = "out/rejected.ndjson"
"#
    ));

    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(RUN_TIMEOUT);

    assert_eq!(numbers(&sandbox.ndjson("out/ok.ndjson")), vec![1, 3]);
    let rejected = sandbox.ndjson("out/rejected.ndjson");
    let seen: Vec<(&str, u64)> = rejected
        .iter()
        .map(|r| {
            assert_eq!(r["component_id"], "in");
            assert_eq!(r["event"]["file"], "in.ndjson", "{r}");
            assert!(r["event"]["raw"].is_string(), "the raw line is kept: {r}");
            (
                str_field(r, "reason"),
                r["event"]["line"].as_u64().expect("line number"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("invalid_utf8", 2),
            ("not_an_object", 4),
            ("not_an_object", 5),
            ("line_too_long", 6),
            ("malformed_json", 8),
        ]
    );
    let too_long = &rejected[3];
    assert_eq!(too_long["event"]["bytes"].as_u64(), Some(long.len() as u64));
    assert!(
        str_field(&too_long["event"], "raw").len() <= 1024,
        "only the start of a long line is kept"
    );

    let report = sluice.source_report("in");
    assert_eq!(
        report,
        SourceReport {
            lines: 7,
            delivered: 7,
            failed: 0
        },
        "blank lines are not counted; every other line is accounted for"
    );
}

#[test]
fn fan_out_gives_every_reader_every_event() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 5000));
    let topology = sandbox.topology(&format!(
        r#"{NO_API}
[engine]
batch_size = 100
mailbox_capacity = 2

[sources.in]
type = "file"
path = "in.ndjson"

[sinks.a]
type = "file"
inputs = ["in"]
path = "out/a.ndjson"

[sinks.b]
type = "file"
inputs = ["in"]
path = "out/b.ndjson"
"#
    ));
    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(RUN_TIMEOUT);

    let expected: Vec<u64> = (0..5000).collect();
    assert_eq!(numbers(&sandbox.ndjson("out/a.ndjson")), expected);
    assert_eq!(numbers(&sandbox.ndjson("out/b.ndjson")), expected);
    let report = sluice.source_report("in");
    assert_eq!(
        report,
        SourceReport {
            lines: 5000,
            delivered: 5000,
            failed: 0
        }
    );
}

#[test]
fn fan_in_sums_both_sources_and_the_topology_ends() {
    let sandbox = Sandbox::new();
    sandbox.write("left.ndjson", numbered_events(0, 3000));
    sandbox.write("right.ndjson", numbered_events(10_000, 2000));
    let topology = sandbox.topology(&format!(
        r#"{NO_API}
[engine]
batch_size = 100
mailbox_capacity = 2

[sources.left]
type = "file"
path = "left.ndjson"

[sources.right]
type = "file"
path = "right.ndjson"

[transforms.tag]
type = "enrich"
inputs = ["left", "right"]
ops = [{{ op = "set", path = "tagged", value = true }}]

[sinks.out]
type = "file"
inputs = ["tag"]
path = "out/all.ndjson"
"#
    ));
    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(RUN_TIMEOUT);

    let events = sandbox.ndjson("out/all.ndjson");
    assert!(events.iter().all(|e| e["tagged"] == true));
    let mut got = numbers(&events);
    got.sort_unstable();
    let expected: Vec<u64> = (0..3000).chain(10_000..12_000).collect();
    assert_eq!(
        got, expected,
        "the transform got the sum of both sources, once each"
    );
    // Each source's order is kept even though the two interleave.
    let left: Vec<u64> = numbers(&events)
        .into_iter()
        .filter(|n| *n < 10_000)
        .collect();
    assert_eq!(left, (0..3000).collect::<Vec<_>>());
    assert_eq!(sluice.source_report("left").delivered, 3000);
    assert_eq!(sluice.source_report("right").delivered, 2000);
}

#[test]
fn the_repository_topology_is_the_http_collector_and_validates() {
    let path = repo_topology();
    let path = path.to_str().expect("a UTF-8 path");
    let dir = std::env::temp_dir();
    let out = cli_in(&dir, &["validate", "-c", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "validate failed:\n{stdout}{stderr}");
    let out = cli_in(&dir, &["graph", "-c", path, "--format", "dot"]);
    let dot = String::from_utf8_lossy(&out.stdout);
    for id in [
        "segment",
        "valid",
        "unique",
        "enriched",
        "sessions",
        "events",
        "summaries",
        "rejects",
    ] {
        assert!(dot.contains(id), "{id} is in the DOT graph:\n{dot}");
    }
    assert!(
        std::fs::read_to_string(path)
            .expect("read topology.toml")
            .contains("type = \"segment_http\""),
        "the main job takes events over HTTP"
    );
}

#[test]
fn validate_and_graph_read_the_replay_example() {
    let path = replay_topology();
    let path = path.to_str().expect("a UTF-8 path");
    let dir = std::env::temp_dir();

    let out = cli_in(&dir, &["validate", "-c", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "validate failed:\n{stdout}{stderr}");
    assert!(stdout.contains("ok"), "validate says ok: {stdout}");

    let components = [
        "replay", "valid", "unique", "enriched", "by_event", "orders", "events", "rejects",
    ];
    let out = cli_in(&dir, &["graph", "-c", path, "--format", "dot"]);
    assert!(
        out.status.success(),
        "graph --format dot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(
        dot.trim_start().starts_with("digraph"),
        "a DOT graph: {dot}"
    );
    assert!(dot.trim_end().ends_with('}'), "a complete DOT graph: {dot}");
    assert!(dot.contains("->"), "the graph has edges: {dot}");
    for id in components {
        assert!(dot.contains(id), "{id} is in the DOT graph:\n{dot}");
    }

    let out = cli_in(&dir, &["graph", "-c", path, "--format", "mermaid"]);
    assert!(
        out.status.success(),
        "graph --format mermaid failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mermaid = String::from_utf8_lossy(&out.stdout);
    let first = mermaid.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("flowchart") || first.starts_with("graph"),
        "a Mermaid graph: {mermaid}"
    );
    assert!(mermaid.contains("-->"), "the graph has edges: {mermaid}");
    for id in components {
        assert!(
            mermaid.contains(id),
            "{id} is in the Mermaid graph:\n{mermaid}"
        );
    }
}

#[test]
fn validate_reports_every_error_with_its_line() {
    let sandbox = Sandbox::new();
    // Line numbers matter: the assertions below name them.
    sandbox.write(
        "broken.toml",
        r#"[engine]
batch_size = 256

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "sometimes"

[transforms.keep]
type = "filter"
inputs = ["nowhere"]
types = ["track"]
colour = "blue"

[transforms.mystery]
type = "teleport"
inputs = ["in"]

[sinks.out]
type = "file"
inputs = ["keep", "mystery"]
path = "out.ndjson"
"#,
    );
    let out = sandbox.cli(&["validate", "-c", "broken.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "validate exits 1 on a broken file:\n{stderr}"
    );
    let expected = [
        ("broken.toml:7: sources.in", "sometimes"),
        ("broken.toml:11: transforms.keep", "nowhere"),
        ("broken.toml:13: transforms.keep", "colour"),
        ("broken.toml:16: transforms.mystery", "teleport"),
    ];
    for (location, value) in expected {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(location) && l.contains(value)),
            "no error at `{location}` naming `{value}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("4 errors"),
        "the count of errors is given:\n{stderr}"
    );

    // `run` refuses the same file with the same exit code and starts nothing.
    let out = sandbox.cli(&["run", "-c", "broken.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!sandbox.path("out.ndjson").exists());
}
