//! Component compliance (like Vector's): every component type the crate
//! accepts — listed from the `TYPES` constants, so a new type without coverage
//! fails here — exports the common metrics with its identity labels
//! (`component_id`, `component_type`, `component_kind`): events received, sent
//! per output, restarts and failed; mailbox depth and capacity and processing
//! time for transforms and sinks; write requests and their latency for sinks.
//! And they move: every component received events, every sink wrote some.

mod common;
mod observability;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use observability::*;

const MAILBOX_CAPACITY: f64 = 4.0;

/// The values of `family` for `component` (plus `extra` labels): one, or one
/// per shard of a sharded component; or a problem saying what is wrong.
fn value_of(
    families: &BTreeMap<String, Family>,
    family: &str,
    component: &Component,
    extra: &[(&str, &str)],
) -> Result<Vec<f64>, String> {
    let mut wanted = vec![
        ("component_id", component.id.as_str()),
        ("component_type", component.type_name),
        ("component_kind", component.kind),
    ];
    wanted.extend_from_slice(extra);
    let samples: Vec<&Sample> = families
        .get(family)
        .map(|f| f.matching(&wanted).collect())
        .unwrap_or_default();
    let shards: BTreeSet<Option<&String>> = samples.iter().map(|s| s.labels.get("shard")).collect();
    if samples.is_empty() {
        Err(format!(
            "{} {} ({}): no {family} series with {wanted:?}",
            component.kind, component.id, component.type_name
        ))
    } else if shards.len() != samples.len() || (samples.len() > 1 && shards.contains(&None)) {
        Err(format!(
            "{} {}: {} {family} series with {wanted:?} that are not one per shard",
            component.kind,
            component.id,
            samples.len()
        ))
    } else {
        Ok(samples.iter().map(|s| s.value).collect())
    }
}

/// What did not comply, all reported at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// Records a problem unless `result` holds values (one per shard) that
    /// `want` accepts.
    fn check(
        &mut self,
        result: Result<Vec<f64>, String>,
        want: &dyn Fn(&[f64]) -> bool,
        what: &str,
    ) {
        match result {
            Ok(v) if want(&v) => {}
            Ok(v) => self.push(format!("{what}: unexpected value(s) {v:?}")),
            Err(problem) => self.push(problem),
        }
    }
}

#[test]
fn every_component_type_exports_the_common_metrics() {
    let sandbox = Sandbox::new();
    let port = free_port();
    let head = format!(
        "{}[engine]\nbatch_size = 16\nmailbox_capacity = {MAILBOX_CAPACITY}\nshutdown_timeout = \"10s\"\n",
        api_on(port)
    );
    let topology = every_type_topology(&head, false);
    assert_eq!(topology.components.len(), all_types().len());
    sandbox.write(INPUT, special_lines() + &live_events(0, 200));
    let path = sandbox.topology(&topology.toml);
    let mut sluice = sandbox.spawn(&path);
    let api = sluice.api(port);
    let _http = topology.feed_http(20, Duration::from_millis(100));

    // Wait until every sink has written, so every component has seen events.
    let families = poll_until(
        Duration::from_secs(25),
        Duration::from_millis(100),
        "every source to read and every sink to write events",
        || {
            assert!(
                sluice.try_status().is_none(),
                "sluice exited early:\n{}",
                sluice.log_text()
            );
            let families = parse_exposition(&api.metrics());
            let written = topology
                .components
                .iter()
                .filter(|c| c.kind == "sink")
                .all(|c| {
                    value_of(
                        &families,
                        "sluice_component_sent_events_total",
                        c,
                        &[("output", "_default")],
                    )
                    .is_ok_and(|v| v.iter().sum::<f64>() > 0.0)
                });
            // Every source has taken events in (the HTTP one from the feeder).
            let read = topology
                .components
                .iter()
                .filter(|c| c.kind == "source")
                .all(|c| {
                    value_of(&families, "sluice_component_received_events_total", c, &[])
                        .is_ok_and(|v| v.iter().sum::<f64>() > 0.0)
                });
            (written && read).then_some(families)
        },
    );
    let topo = api.topology();

    let mut problems = Problems::default();
    let any = |_: &[f64]| true;
    // Summed over shards: a shard may own no keys, the component must see events.
    let positive = |v: &[f64]| v.iter().sum::<f64>() > 0.0;
    for c in &topology.components {
        let what = |m: &str| format!("{} {}: {m}", c.kind, c.id);
        problems.check(
            value_of(&families, "sluice_component_received_events_total", c, &[]),
            &positive,
            &what("received events"),
        );
        let outputs = component(&topo, &c.id)["outputs"]
            .as_array()
            .unwrap_or_else(|| panic!("no outputs for {} in {topo}", c.id))
            .clone();
        assert!(!outputs.is_empty(), "{} lists no outputs", c.id);
        for output in &outputs {
            let output = output.as_str().expect("output names are strings");
            problems.check(
                value_of(
                    &families,
                    "sluice_component_sent_events_total",
                    c,
                    &[("output", output)],
                ),
                &any,
                &what(&format!("sent on {output}")),
            );
        }
        problems.check(
            value_of(&families, "sluice_component_restarts_total", c, &[]),
            &any,
            &what("restarts"),
        );
        problems.check(
            value_of(&families, "sluice_component_failed", c, &[]),
            &|v| v.iter().all(|v| *v == 0.0),
            &what("failed"),
        );
        let mailbox = [
            "sluice_component_mailbox_depth",
            "sluice_component_mailbox_capacity",
            "sluice_component_processing_seconds",
        ];
        if c.kind == "source" {
            // A source has no mailbox and processes no batches: no such series.
            for family in mailbox {
                if value_of(&families, family, c, &[]).is_ok() {
                    problems.push(what(&format!("a source should not export {family}")));
                }
            }
        } else {
            problems.check(
                value_of(&families, "sluice_component_mailbox_depth", c, &[]),
                &|v| v.iter().all(|v| (0.0..=MAILBOX_CAPACITY).contains(v)),
                &what("mailbox depth"),
            );
            problems.check(
                value_of(&families, "sluice_component_mailbox_capacity", c, &[]),
                &|v| v.iter().all(|v| *v == MAILBOX_CAPACITY),
                &what("mailbox capacity"),
            );
            problems.check(
                value_of(&families, "sluice_component_processing_seconds", c, &[]),
                &positive,
                &what("processing time (batches timed)"),
            );
        }
        if c.type_name == "sessionize" {
            // Session series are per shard like the component's own: each
            // shard has its own watermark, so one shared lag series would
            // show whichever shard wrote last.
            let shards = value_of(&families, "sluice_component_received_events_total", c, &[])
                .map_or(0, |v| v.len());
            for family in ["sluice_watermark_lag_seconds", "sluice_sessions_open"] {
                problems.check(
                    value_of(&families, family, c, &[]),
                    &|v| v.len() == shards,
                    &what(&format!("{family}: one series per shard ({shards})")),
                );
            }
        }
        if c.kind == "sink" {
            problems.check(
                value_of(
                    &families,
                    "sluice_sink_requests_total",
                    c,
                    &[("status", "ok")],
                ),
                &positive,
                &what("ok write requests"),
            );
            problems.check(
                value_of(
                    &families,
                    "sluice_sink_requests_total",
                    c,
                    &[("status", "error")],
                ),
                &any,
                &what("failed write requests"),
            );
            problems.check(
                value_of(&families, "sluice_sink_request_seconds", c, &[]),
                &positive,
                &what("write requests timed"),
            );
        }
    }
    // Every component series names a component of the topology, consistently.
    for (name, family) in &families {
        for sample in &family.samples {
            let Some(id) = sample.labels.get("component_id") else {
                if name.starts_with("sluice_component_") {
                    problems.push(format!(
                        "{} has no component_id: {:?}",
                        sample.name, sample.labels
                    ));
                }
                continue;
            };
            match topology.components.iter().find(|c| &c.id == id) {
                Some(c)
                    if sample.labels.get("component_type").map(String::as_str)
                        == Some(c.type_name)
                        && sample.labels.get("component_kind").map(String::as_str)
                            == Some(c.kind) => {}
                _ => problems.push(format!(
                    "{} has identity labels that match no component: {:?}",
                    sample.name, sample.labels
                )),
            }
        }
    }

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(15));
    assert!(problems.0.is_empty(), "{}", problems.0.join("\n"));
}
