//! Supervision: a component that panics is restarted with its backoff; the
//! event that keeps crashing it is set aside as poison and everything else
//! flows on; a component that crashes more than `max_restarts` times fails the
//! topology, which drains and exits non-zero naming it.

mod common;

use std::time::Duration;

use common::*;

const EVENTS: u64 = 2000;

fn chaos_topology(api: &str, at_end: &str, max_restarts: u32, poison: &[&str]) -> String {
    let values: Vec<String> = poison.iter().map(|v| format!("\"{v}\"")).collect();
    format!(
        r#"{api}
[engine]
batch_size = 100
mailbox_capacity = 4
shutdown_timeout = "20s"

[engine.restart]
max_restarts = {max_restarts}
within = "60s"
backoff = {{ initial = "10ms", max = "50ms" }}

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "{at_end}"
poll_interval = "50ms"

[transforms.boom]
type = "chaos"
inputs = ["in"]
values = [{values}]

[sinks.out]
type = "file"
inputs = ["boom"]
path = "out/events.ndjson"

[sinks.poison]
type = "file"
inputs = ["boom.rejected"]
path = "out/poison.ndjson"
"#,
        values = values.join(", ")
    )
}

#[test]
fn poison_events_are_set_aside_and_the_rest_is_delivered() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, EVENTS));
    let port = free_port();
    // `follow` keeps the API up to read the counters; SIGTERM ends the run.
    let topology = sandbox.topology(&chaos_topology(
        &api_on(port),
        "follow",
        5,
        &["m-500", "m-1500"],
    ));
    let mut sluice = sandbox.spawn(&topology);
    let api = sluice.api(port);

    let topo = poll_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        "every event to be written",
        || {
            assert!(
                sluice.try_status().is_none(),
                "sluice exited early:\n{}",
                sluice.log_text()
            );
            let topo = api.topology();
            let written =
                counter(&topo, "out", "sent_events") + counter(&topo, "poison", "sent_events");
            (written >= EVENTS).then_some(topo)
        },
    );
    // Each poison event crashes the transform twice: once, then on the retry.
    assert_eq!(counter(&topo, "boom", "restarts"), 4, "{topo}");
    assert_eq!(counter(&topo, "boom", "rejected_events"), 2);
    assert_eq!(counter(&topo, "out", "sent_events"), EVENTS - 2);
    assert_eq!(component(&topo, "boom")["state"], "running");
    let metrics = api.metrics();
    assert_eq!(
        metric(&metrics, "sluice_component_restarts_total", "boom", None),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "sluice_component_rejected_events_total",
            "boom",
            Some("reason=\"poison\"")
        ),
        Some(2.0)
    );
    assert!(
        api.ready(),
        "a restarted component does not make the topology unready"
    );

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(20));

    let expected: Vec<u64> = (0..EVENTS).filter(|n| *n != 500 && *n != 1500).collect();
    assert_eq!(
        numbers(&sandbox.ndjson("out/events.ndjson")),
        expected,
        "every other event, in order"
    );
    let poison = sandbox.ndjson("out/poison.ndjson");
    let ids: Vec<&str> = poison
        .iter()
        .map(|r| {
            assert_eq!(r["reason"], "poison", "{r}");
            assert_eq!(r["component_id"], "boom", "{r}");
            assert!(str_field(r, "message").contains("panic"), "{r}");
            str_field(&r["event"], "messageId")
        })
        .collect();
    assert_eq!(ids, vec!["m-500", "m-1500"]);

    let restarts = sluice.logs_starting("component crashed, restarting");
    assert_eq!(
        restarts.len(),
        4,
        "one warning per restart:\n{}",
        sluice.log_text()
    );
    assert!(restarts.iter().all(|l| l["component_id"] == "boom"));
    let report = sluice.source_report("in");
    assert_eq!(report.lines, EVENTS);
    assert_eq!(
        report.failed, 0,
        "poison events are rejected, not failed: {report:?}"
    );
}

#[test]
fn too_many_crashes_fail_the_run_and_name_the_component() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, EVENTS));
    // Two restarts allowed; three poison events need six.
    let topology = sandbox.topology(&chaos_topology(
        NO_API,
        "stop",
        2,
        &["m-100", "m-700", "m-1300"],
    ));
    let mut sluice = sandbox.spawn(&topology);
    let status = sluice.wait(Duration::from_secs(60));
    assert!(
        !status.success(),
        "the run must fail; its log:\n{}",
        sluice.log_text()
    );
    assert_eq!(status.code(), Some(1));

    let failed = sluice.logs_starting("component failed");
    assert_eq!(
        failed.len(),
        1,
        "one component failed:\n{}",
        sluice.log_text()
    );
    assert_eq!(failed[0]["component_id"], "boom");
    let last = sluice.logs().pop().expect("a log line");
    assert_eq!(
        last["level"], "ERROR",
        "the run ends with the error: {last}"
    );
    let message = str_field(&last, "message");
    assert!(
        message.contains("boom"),
        "the final error names the component: {message}"
    );

    // What reached the sink before the failure is intact; the source learnt
    // that the rest was not delivered.
    // m-700 starts its batch of 100, so the batches before it are complete.
    let expected: Vec<u64> = (0..700).filter(|n| *n != 100).collect();
    assert_eq!(numbers(&sandbox.ndjson("out/events.ndjson")), expected);
    let poison = sandbox.ndjson("out/poison.ndjson");
    assert_eq!(
        poison.len(),
        1,
        "m-100 was set aside before the budget ran out"
    );
    let report = sluice.source_report("in");
    assert_eq!(report.delivered, 700, "{report:?}");
    assert!(
        report.failed > 0,
        "batches the failed component dropped are acknowledged as failed: {report:?}"
    );
    assert_eq!(report.delivered + report.failed, report.lines, "{report:?}");
}
