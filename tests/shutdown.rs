//! The one way to stop: on SIGTERM sources stop taking input, everything
//! already read drains to the sinks, and the process exits 0 within
//! `shutdown_timeout` — or exits non-zero, naming what was still draining,
//! when the drain takes longer.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigterm_drains_everything_read_while_input_is_appended() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 3000));
    let port = free_port();
    let topology = sandbox.topology(&format!(
        r#"{api}
[engine]
batch_size = 128
mailbox_capacity = 4
shutdown_timeout = "10s"

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "follow"
poll_interval = "20ms"

[sinks.out]
type = "file"
inputs = ["in"]
path = "out/events.ndjson"
"#,
        api = api_on(port)
    ));
    let mut sluice = sandbox.spawn(&topology);
    let api = sluice.api(port);
    let written =
        |api: &Api, n: u64| (counter(&api.topology(), "out", "sent_events") >= n).then_some(());
    poll_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        "the first 3000 events",
        || written(&api, 3000),
    );

    // Appended while running: followed.
    sandbox.append("in.ndjson", numbered_events(3000, 2000));
    poll_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        "the appended events",
        || written(&api, 5000),
    );
    // Appended just before SIGTERM: read or not, never half-delivered.
    sandbox.append("in.ndjson", numbered_events(5000, 2000));
    let signalled = Instant::now();
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "shutdown took {took:?}, over shutdown_timeout"
    );

    let report = sluice.source_report("in");
    assert!(report.lines >= 5000, "{report:?}");
    assert_eq!(
        report.delivered, report.lines,
        "everything read was delivered: {report:?}"
    );
    assert_eq!(report.failed, 0);
    let expected: Vec<u64> = (0..report.lines).collect();
    assert_eq!(
        numbers(&sandbox.ndjson("out/events.ndjson")),
        expected,
        "the output is exactly the lines the source read, in order"
    );
    assert!(
        !sluice.logs_starting("shutdown requested").is_empty(),
        "the shutdown is logged:\n{}",
        sluice.log_text()
    );
}

#[test]
fn sigterm_with_full_queues_drains_them() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 20_000));
    let port = free_port();
    let topology = sandbox.topology(&format!(
        r#"{api}
[engine]
batch_size = 256
mailbox_capacity = 4
shutdown_timeout = "10s"

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "follow"
poll_interval = "20ms"

[transforms.stamp]
type = "enrich"
inputs = ["in"]
ops = [{{ op = "set", path = "pipeline", value = "sluice" }}]

[sinks.slow]
type = "blackhole"
inputs = ["stamp"]
rate = 5000
"#,
        api = api_on(port)
    ));
    let mut sluice = sandbox.spawn(&topology);
    let api = sluice.api(port);
    poll_until(
        Duration::from_secs(30),
        Duration::from_millis(10),
        "the slow sink's mailbox to fill",
        || {
            let topo = api.topology();
            let slow = component(&topo, "slow");
            (slow["mailbox"]["depth"].as_u64() == Some(4)).then_some(())
        },
    );

    let signalled = Instant::now();
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "shutdown took {took:?}, over shutdown_timeout"
    );

    let report = sluice.source_report("in");
    assert!(
        report.lines < 20_000,
        "the source stopped reading at SIGTERM: {report:?}"
    );
    assert!(
        report.lines >= 4 * 256,
        "at least the full mailbox was read: {report:?}"
    );
    assert_eq!(
        report.delivered, report.lines,
        "the queued events drained: {report:?}"
    );
    assert_eq!(report.failed, 0);
}

#[test]
fn a_drain_longer_than_shutdown_timeout_exits_non_zero() {
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 20_000));
    let port = free_port();
    // At 200 events/s the ~2000 queued events need ~10s to drain; 1s is allowed.
    let topology = sandbox.topology(&format!(
        r#"{api}
[engine]
batch_size = 256
mailbox_capacity = 4
shutdown_timeout = "1s"

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "follow"

[sinks.slow]
type = "blackhole"
inputs = ["in"]
rate = 200
"#,
        api = api_on(port)
    ));
    let mut sluice = sandbox.spawn(&topology);
    let api = sluice.api(port);
    poll_until(
        Duration::from_secs(30),
        Duration::from_millis(10),
        "the slow sink's mailbox to fill",
        || {
            let topo = api.topology();
            (component(&topo, "slow")["mailbox"]["depth"].as_u64() == Some(4)).then_some(())
        },
    );

    let signalled = Instant::now();
    sluice.terminate();
    let status = sluice.wait(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(1),
        "a drain cut short is a failure; log:\n{}",
        sluice.log_text()
    );
    assert!(
        took < Duration::from_secs(5),
        "the process gave up at the deadline, took {took:?}"
    );
    // Components cut off at the deadline may log their own errors around the
    // final one ("component slow is no longer running"), in either order.
    let logs = sluice.logs();
    assert!(
        logs.iter().any(|line| {
            let message = str_field(line, "message");
            message.contains("shutdown did not finish") && message.contains("slow")
        }),
        "an error names what was still draining; log:\n{}",
        sluice.log_text()
    );
}
