//! End-to-end acknowledgements across fan-out, seen from the file source's
//! final report: a batch counts as delivered only when every sink that got it
//! wrote it. A sink that cannot write retries, rejects what still fails as
//! `write_failed`, and the source hears those batches were not delivered,
//! while the healthy sink beside it gets every event.

mod common;

use std::time::Duration;

use common::*;

const EVENTS: u64 = 500;

/// `in` fanned out to `good` and `bad`; `bad` writes to `bad_path` and its
/// rejections go to their own file.
fn fan_out(bad_path: &str, max_restarts: u32) -> String {
    format!(
        r#"{NO_API}
[engine]
batch_size = 50
mailbox_capacity = 4
shutdown_timeout = "20s"

[engine.restart]
max_restarts = {max_restarts}
within = "60s"
backoff = {{ initial = "1ms", max = "1ms" }}

[sources.in]
type = "file"
path = "in.ndjson"

[sinks.good]
type = "file"
inputs = ["in"]
path = "out/good.ndjson"

[sinks.bad]
type = "file"
inputs = ["in"]
path = "{bad_path}"

[sinks.bad_rejects]
type = "file"
inputs = ["bad.rejected"]
path = "out/bad_rejected.ndjson"
"#
    )
}

#[test]
fn both_sinks_writing_acknowledges_every_batch() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, EVENTS));
    let topology = sandbox.topology(&fan_out("out/second.ndjson", 5));
    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(Duration::from_secs(60));

    let report = sluice.source_report("in");
    assert_eq!(
        report,
        SourceReport {
            lines: EVENTS,
            delivered: EVENTS,
            failed: 0
        }
    );
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert_eq!(numbers(&sandbox.ndjson("out/good.ndjson")), expected);
    assert_eq!(numbers(&sandbox.ndjson("out/second.ndjson")), expected);
    assert!(sandbox.ndjson("out/bad_rejected.ndjson").is_empty());
}

#[test]
fn a_failing_sink_rejects_its_events_and_the_source_hears_it() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, EVENTS));
    // A regular file where the sink needs a directory: every write fails,
    // even for root.
    sandbox.write("blocker", "not a directory");
    // Each failing batch costs two restarts plus one per event it isolates:
    // leave room for all of them so the sink never gives up.
    let topology = sandbox.topology(&fan_out("blocker/out.ndjson", 100_000));
    let mut sluice = sandbox.spawn(&topology);
    sluice.expect_success(Duration::from_secs(60));

    let expected: Vec<u64> = (0..EVENTS).collect();
    assert_eq!(
        numbers(&sandbox.ndjson("out/good.ndjson")),
        expected,
        "the healthy sink got every event"
    );
    let rejected = sandbox.ndjson("out/bad_rejected.ndjson");
    for record in &rejected {
        assert_eq!(record["reason"], "write_failed", "{record}");
        assert_eq!(record["component_id"], "bad", "{record}");
        assert!(
            str_field(record, "message").contains("blocker"),
            "the message names the path: {record}"
        );
    }
    let rejected_events: Vec<u64> = rejected
        .iter()
        .map(|r| r["event"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(
        rejected_events, expected,
        "every event the bad sink could not write is rejected, once"
    );

    let report = sluice.source_report("in");
    assert_eq!(report.lines, EVENTS);
    assert_eq!(
        report.delivered, 0,
        "no batch reached both sinks: {report:?}"
    );
    assert_eq!(report.failed, EVENTS, "{report:?}");
    assert!(!sluice
        .logs_starting("component crashed, restarting")
        .is_empty());
}

#[test]
fn a_sink_out_of_restarts_fails_the_run_but_the_rest_drains() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, EVENTS));
    sandbox.write("blocker", "not a directory");
    // Three restarts: two batch retries, then one isolated event, and the
    // next failure is one too many.
    let topology = sandbox.topology(&fan_out("blocker/out.ndjson", 3));
    let mut sluice = sandbox.spawn(&topology);
    let status = sluice.wait(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(1),
        "the run fails; its log:\n{}",
        sluice.log_text()
    );

    let failed = sluice.logs_starting("component failed");
    assert_eq!(failed.len(), 1, "{}", sluice.log_text());
    assert_eq!(failed[0]["component_id"], "bad");
    let last = sluice.logs().pop().expect("a log line");
    assert!(
        str_field(&last, "message").contains("bad"),
        "the final error names the sink: {last}"
    );

    // The source stops at the failure; the good sink still gets all it read.
    let report = sluice.source_report("in");
    let expected: Vec<u64> = (0..report.lines).collect();
    assert_eq!(numbers(&sandbox.ndjson("out/good.ndjson")), expected);
    assert_eq!(report.delivered, 0, "{report:?}");
    assert_eq!(report.failed, report.lines, "{report:?}");
    // The two events isolated before the budget ran out were rejected, and
    // those rejections still reach the `rejected` reader.
    let rejected: Vec<u64> = sandbox
        .ndjson("out/bad_rejected.ndjson")
        .iter()
        .map(|r| {
            assert_eq!(r["reason"], "write_failed", "{r}");
            r["event"]["n"].as_u64().expect("n")
        })
        .collect();
    assert_eq!(rejected, vec![0, 1]);
}
