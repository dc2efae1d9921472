//! Logs: with `SLUICE_LOG_FORMAT=json` every line sluice writes on stderr is
//! one JSON object (config warnings and panics included), `RUST_LOG` sets the
//! level, and floods are rate-limited: many rejects that nothing reads give a
//! bounded number of warnings, the last of which says how many were suppressed.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

/// A replay through a chaos transform that crashes on one event, with a bad
/// line for the source and an unread output (a config warning).
fn eventful_topology() -> String {
    format!(
        r#"{NO_API}
[engine]
batch_size = 50
[engine.restart]
max_restarts = 10
within = "60s"
backoff = {{ initial = "10ms", max = "50ms" }}

[sources.in]
type = "file"
path = "in.ndjson"

[transforms.boom]
type = "chaos"
inputs = ["in"]
values = ["m-7"]

[transforms.unread]
type = "filter"
inputs = ["in"]
types = ["track"]

[sinks.out]
type = "file"
inputs = ["boom"]
path = "out.ndjson"
"#
    )
}

fn eventful_input(sandbox: &Sandbox) {
    sandbox.write(
        "in.ndjson",
        format!("this is not JSON\n{}", numbered_events(0, 200)),
    );
}

/// Every stderr line as JSON; fails naming the first line that is not an
/// object with a timestamp, a level and a message.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("not a JSON log line ({e}): {line}\nall of stderr:\n{stderr}")
            });
            for field in ["timestamp", "level", "message"] {
                assert!(
                    value[field].is_string(),
                    "log line without a string `{field}`: {line}"
                );
            }
            value
        })
        .collect()
}

fn messages_containing<'a>(lines: &'a [Value], text: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains(text)))
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_panics_and_config_warnings_included() {
    let sandbox = Sandbox::new();
    eventful_input(&sandbox);
    let topology = sandbox.topology(&eventful_topology());
    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(Duration::from_secs(25));

    let stderr = sluice.log_text();
    let lines = json_lines(&stderr);
    for (what, text) in [
        ("the config warning", "nothing reads"),
        ("the panic", "panic: "),
        ("the restart", "component crashed, restarting"),
        ("the reject of the bad line", "events rejected"),
        ("the exit", "exiting"),
    ] {
        assert!(
            !messages_containing(&lines, text).is_empty(),
            "no log line for {what} (\"{text}\"):\n{stderr}"
        );
    }
    let restart = messages_containing(&lines, "component crashed, restarting")[0];
    assert_eq!(restart["level"], "WARN");
    assert_eq!(restart["component_id"], "boom");
}

#[test]
fn rust_log_sets_the_level() {
    let sandbox = Sandbox::new();
    eventful_input(&sandbox);
    let topology = sandbox.topology(&eventful_topology());
    let output = Command::new(SLUICE)
        .args(["run", "-c"])
        .arg(&topology)
        .current_dir(sandbox.root())
        .env("SLUICE_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sluice failed:\n{stderr}");
    let lines = json_lines(&stderr);
    assert!(
        lines
            .iter()
            .all(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "RUST_LOG=warn still logs below warn:\n{stderr}"
    );
    assert!(
        !messages_containing(&lines, "component crashed, restarting").is_empty(),
        "warnings are still logged:\n{stderr}"
    );
}

#[test]
fn rejects_nothing_reads_are_logged_rate_limited_with_a_suppressed_count() {
    const REJECTS: u64 = 5000;
    let sandbox = Sandbox::new();
    let mut input = String::with_capacity(REJECTS as usize * 80);
    for i in 0..REJECTS {
        // Pages, which the filter refuses; every 10th line is not even JSON.
        if i % 10 == 0 {
            input.push_str("{broken\n");
        } else {
            input.push_str(&format!(
                "{{\"messageId\":\"p-{i}\",\"type\":\"page\",\"timestamp\":\"2024-03-01T10:00:00Z\"}}\n"
            ));
        }
    }
    sandbox.write("in.ndjson", input);
    let topology = sandbox.topology(&format!(
        r#"{NO_API}
[engine]
batch_size = 16

[sources.in]
type = "file"
path = "in.ndjson"

[transforms.tracks]
type = "filter"
inputs = ["in"]
types = ["track"]

[sinks.out]
type = "blackhole"
inputs = ["tracks"]
"#
    ));
    let started = Instant::now();
    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(Duration::from_secs(25));
    let elapsed = started.elapsed();

    let lines = json_lines(&sluice.log_text());
    // One line per 10 seconds per component, plus the closing count.
    let allowed = 2 + elapsed.as_secs() as usize / 10;
    for (id, rejected) in [("in", REJECTS / 10), ("tracks", REJECTS - REJECTS / 10)] {
        let warnings: Vec<&Value> = messages_containing(&lines, "events rejected")
            .into_iter()
            .filter(|l| l["component_id"] == id)
            .collect();
        let summaries: Vec<&Value> = messages_containing(&lines, "suppressed since the last one")
            .into_iter()
            .filter(|l| l["component_id"] == id)
            .collect();
        assert!(!warnings.is_empty(), "no reject warning for {id}");
        assert!(
            warnings.len() + summaries.len() <= allowed,
            "{id}: {} reject lines in {elapsed:?} for {rejected} rejects; at most {allowed} expected",
            warnings.len() + summaries.len()
        );
        for warning in &warnings {
            assert_eq!(warning["level"], "WARN");
            assert!(
                warning["suppressed"].is_u64(),
                "no `suppressed` in {warning}"
            );
            assert!(warning["reason"].is_string(), "no `reason` in {warning}");
        }
        let held_back: u64 = warnings
            .iter()
            .chain(&summaries)
            .map(|l| l["suppressed"].as_u64().unwrap_or(0))
            .sum();
        assert!(
            held_back > 0,
            "{id} rejected {rejected} events in many batches but no line says any warning was suppressed"
        );
        // Every batch with a reject is either logged or counted as suppressed.
        let batches = warnings.len() as u64 + held_back;
        assert!(
            batches <= rejected,
            "{id}: {batches} logged or suppressed reject batches for {rejected} rejected events"
        );
    }
}
