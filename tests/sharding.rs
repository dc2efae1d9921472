//! Keyed components split over several actors by key hash: the result must be
//! exactly what one actor gives, and every shard must do part of the work.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn ids(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn run_dedupe(sandbox: &Sandbox, shards: usize) -> (Vec<Value>, Vec<Value>) {
    let kept = format!("kept-{shards}.ndjson");
    let dups = format!("dups-{shards}.ndjson");
    let topology = sandbox.topology(&format!(
        r#"
[api]
enabled = false
[sources.in]
type = "file"
path = "{input}"
[transforms.unique]
type = "dedupe"
inputs = ["in"]
shards = {shards}
[sinks.kept]
type = "file"
inputs = ["unique"]
path = "{kept}"
[sinks.dups]
type = "file"
inputs = ["unique.duplicates"]
path = "{dups}"
[sinks.rest]
type = "blackhole"
inputs = ["in.rejected", "unique.rejected"]
"#,
        input = sandbox.path("in.ndjson").display(),
        kept = sandbox.path(&kept).display(),
        dups = sandbox.path(&dups).display(),
    ));
    sandbox
        .spawn(&topology)
        .expect_success(Duration::from_secs(60));
    (sandbox.ndjson(&kept), sandbox.ndjson(&dups))
}

#[test]
fn sharded_dedupe_finds_exactly_the_duplicates_one_actor_finds() {
    let sandbox = Sandbox::new();
    sandbox.gen(
        "in.ndjson",
        &[
            "--events",
            "20000",
            "--machines",
            "300",
            "--seed",
            "11",
            "--duplicate-ratio",
            "0.05",
        ],
    );
    let (kept_1, dups_1) = run_dedupe(&sandbox, 1);
    let (kept_3, dups_3) = run_dedupe(&sandbox, 3);
    assert!(
        dups_1.len() > 500,
        "the input has duplicates: {}",
        dups_1.len()
    );
    assert_eq!(kept_1.len(), kept_3.len());
    assert_eq!(dups_1.len(), dups_3.len());
    assert_eq!(ids(&kept_1), ids(&kept_3));
    assert_eq!(ids(&dups_1), ids(&dups_3));
    // No id is both kept twice: every kept id is unique.
    assert_eq!(ids(&kept_3).len(), kept_3.len());
}

#[test]
fn every_shard_works_and_the_topology_shows_them() {
    let sandbox = Sandbox::new();
    sandbox.gen(
        "in.ndjson",
        &["--events", "20000", "--machines", "300", "--seed", "12"],
    );
    let port = free_port();
    let topology = sandbox.topology(&format!(
        r#"
[api]
listen = "127.0.0.1:{port}"
[sources.in]
type = "file"
path = "{input}"
at_end = "follow"
[transforms.unique]
type = "dedupe"
inputs = ["in"]
shards = 2
[sinks.out]
type = "blackhole"
inputs = ["unique", "unique.duplicates", "in.rejected", "unique.rejected"]
"#,
        input = sandbox.path("in.ndjson").display(),
    ));
    let mut sluice = sandbox.spawn(&topology);
    let api = sluice.api(port);
    let topology = poll_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        "all events through",
        || {
            let t = api.topology();
            (counter(&t, "out", "received_events") == 20000).then_some(t)
        },
    );
    let unique = component(&topology, "unique");
    assert_eq!(unique["shards"], 2);
    assert_eq!(
        unique["received_events"],
        20000 - counter(&topology, "in", "rejected_events")
    );
    let metrics = api.metrics();
    for shard in ["0", "1"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("sluice_component_received_events_total")
                    && l.contains("component_id=\"unique\"")
                    && l.contains(&format!("shard=\"{shard}\""))
            })
            .unwrap_or_else(|| panic!("no received counter for shard {shard}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 1000.0, "shard {shard} did little work: {line}");
    }
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}
