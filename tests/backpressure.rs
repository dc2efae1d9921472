//! Backpressure: a fast source in front of a slow sink is held back by the
//! bounded mailboxes, so queues never exceed `mailbox_capacity`, memory stays
//! flat, and nothing is lost.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const EVENTS: u64 = 60_000;
const CAPACITY: u64 = 4;

#[test]
fn a_slow_sink_holds_the_source_back_without_loss() {
    let sandbox = Sandbox::new();
    // ~700-byte events: 60k of them are ~40 MB of input, far more than the
    // bounded queues may hold, so unbounded buffering would show in memory.
    let lines = sandbox.gen(
        "in.ndjson",
        &[
            "--events",
            "60000",
            "--machines",
            "500",
            "--seed",
            "5",
            "--invalid-ratio",
            "0",
            "--duplicate-ratio",
            "0",
        ],
    );
    assert_eq!(lines, EVENTS);
    let port = free_port();
    // `follow` keeps the process (and its API) up after the input is read, so
    // the final counters can be read before SIGTERM ends it.
    let topology = sandbox.topology(&format!(
        r#"{api}
[engine]
batch_size = 256
mailbox_capacity = {CAPACITY}
shutdown_timeout = "20s"

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "follow"
poll_interval = "50ms"

[transforms.stamp]
type = "enrich"
inputs = ["in"]
ops = [{{ op = "set", path = "pipeline", value = "sluice" }}]

[sinks.slow]
type = "blackhole"
inputs = ["stamp"]
rate = 20000
"#,
        api = api_on(port)
    ));

    let mut sluice = sandbox.spawn(&topology);
    let api = sluice.api(port);
    let started = Instant::now();
    let mut rss_kib: Vec<u64> = Vec::new();
    let mut slow_was_full = false;
    let mut last: Value;
    loop {
        last = api.topology();
        for c in last["components"].as_array().expect("components") {
            let mailbox = &c["mailbox"];
            let capacity = mailbox["capacity"].as_u64().expect("capacity");
            if c["kind"] == "source" {
                continue;
            }
            assert_eq!(capacity, CAPACITY, "mailbox capacity of {}", c["id"]);
            let depth = mailbox["depth"].as_u64().expect("depth");
            let peak = mailbox["peak"].as_u64().expect("peak");
            assert!(
                depth <= capacity && peak <= capacity,
                "mailbox over its bound: {c}"
            );
        }
        let slow = component(&last, "slow");
        slow_was_full |= slow["mailbox"]["peak"].as_u64() == Some(CAPACITY);
        if let Some(kib) = vm_rss_kib(sluice.pid()) {
            rss_kib.push(kib);
        }
        if counter(&last, "slow", "sent_events") >= EVENTS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sink did not get every event within 60s; last /topology: {last}"
        );
        assert!(
            sluice.try_status().is_none(),
            "sluice exited early:\n{}",
            sluice.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();

    // Nothing lost, nothing duplicated, at every hop.
    assert_eq!(counter(&last, "in", "received_events"), EVENTS);
    assert_eq!(counter(&last, "stamp", "received_events"), EVENTS);
    assert_eq!(counter(&last, "slow", "received_events"), EVENTS);
    assert_eq!(counter(&last, "slow", "sent_events"), EVENTS);
    assert_eq!(counter(&last, "slow", "rejected_events"), 0);
    assert!(
        slow_was_full,
        "the slow sink's mailbox filled up: backpressure happened ({last})"
    );
    // The rate bounds the run from below: 60k events at 20k/s.
    assert!(
        elapsed >= Duration::from_millis(2500),
        "the sink kept its rate; took {elapsed:?}"
    );

    let metrics = api.metrics();
    assert_eq!(
        metric(
            &metrics,
            "sluice_component_received_events_total",
            "slow",
            None
        ),
        Some(EVENTS as f64),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "sluice_component_mailbox_capacity", "slow", None),
        Some(CAPACITY as f64)
    );
    let depth = metric(&metrics, "sluice_component_mailbox_depth", "slow", None)
        .expect("sluice_component_mailbox_depth for the sink");
    assert!(depth <= CAPACITY as f64);

    // Memory: bounded, and flat once the queues are full.
    assert!(rss_kib.len() >= 20, "enough memory samples: {rss_kib:?}");
    let peak = *rss_kib.iter().max().expect("samples");
    assert!(
        peak < 100 * 1024,
        "resident memory stayed under 100 MB: peak {peak} KiB"
    );
    let (first, second) = rss_kib.split_at(rss_kib.len() / 2);
    let first_max = *first.iter().max().expect("samples");
    let second_max = *second.iter().max().expect("samples");
    assert!(
        second_max <= first_max + first_max / 4 + 8 * 1024,
        "memory kept growing: first half peaked at {first_max} KiB, second at {second_max} KiB ({rss_kib:?})"
    );

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(20));
    let report = sluice.source_report("in");
    assert_eq!(report.lines, EVENTS);
    assert_eq!(report.delivered, EVENTS);
    assert_eq!(report.failed, 0);
}
