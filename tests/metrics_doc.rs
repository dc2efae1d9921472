//! `docs/metrics.md` and `/metrics` agree: sluice runs a topology with one
//! component of every type (a sharded one among them) and input that makes
//! every conditional series appear; then every exported `sluice_*` family must
//! be documented, every documented family exported, with the documented type
//! and label names.

mod common;
mod observability;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use observability::*;

/// Families only the `sessionize` transform exports. Until that type exists
/// they are documented but cannot be exported; the test says it skipped them.
const SESSIONIZE_FAMILIES: &[&str] = &[
    "sluice_sessions_open",
    "sluice_sessions_closed_total",
    "sluice_watermark_lag_seconds",
];

/// One row of the families table.
#[derive(Debug)]
struct Documented {
    kind: String,
    required: BTreeSet<String>,
    optional: BTreeSet<String>,
}

/// The families table of `docs/metrics.md`: rows whose first cell is a
/// backticked `sluice_*` name. `{component}` stands for the identity labels,
/// plus `shard` on sharded components.
fn documented() -> BTreeMap<String, Documented> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut families = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| a | b | c | d | e |" splits into an empty cell at each end.
        if cells.len() < 6 || !cells[1].starts_with("`sluice_") {
            continue;
        }
        let name = cells[1].trim_matches('`').to_owned();
        let mut required = BTreeSet::new();
        let mut optional = BTreeSet::new();
        for label in cells[3].split(',').map(|l| l.trim().trim_matches('`')) {
            match label {
                "" => {}
                "{component}" => {
                    required.extend(
                        ["component_id", "component_type", "component_kind"].map(String::from),
                    );
                    optional.insert("shard".to_owned());
                }
                other => {
                    required.insert(other.to_owned());
                }
            }
        }
        let previous = families.insert(
            name.clone(),
            Documented {
                kind: cells[2].to_owned(),
                required,
                optional,
            },
        );
        assert!(previous.is_none(), "docs/metrics.md lists {name} twice");
    }
    assert!(
        families.len() > 10,
        "docs/metrics.md has no families table that this test can read"
    );
    families
}

#[test]
fn every_exported_family_is_documented_and_every_documented_one_exported() {
    let docs = documented();
    let sandbox = Sandbox::new();
    let port = free_port();
    let head = format!(
        "{}[engine]\nbatch_size = 16\nmailbox_capacity = 4\nshutdown_timeout = \"10s\"\n",
        api_on(port)
    );
    let topology = every_type_topology(&head, true);
    let has_sessionize = topology.has_type("sessionize");
    let skipped: BTreeSet<&str> = if has_sessionize {
        BTreeSet::new()
    } else {
        SESSIONIZE_FAMILIES.iter().copied().collect()
    };
    for family in &skipped {
        eprintln!("skipped {family}: no `sessionize` transform type exists yet to export it");
    }
    sandbox.write(INPUT, special_lines() + &live_events(0, 200));
    let path = sandbox.topology(&topology.toml);
    let mut sluice = sandbox.spawn(&path);
    let api = sluice.api(port);
    let _feeder = Feeder::start(sandbox.path(INPUT), 1000, 20, Duration::from_millis(100));
    let _http = topology.feed_http(20, Duration::from_millis(100));

    // Conditional families appear as the input reaches them.
    let exported = poll_until(
        Duration::from_secs(25),
        Duration::from_millis(100),
        "every documented family to be exported",
        || {
            assert!(
                sluice.try_status().is_none(),
                "sluice exited early:\n{}",
                sluice.log_text()
            );
            let families = parse_exposition(&api.metrics());
            let missing: Vec<&String> = docs
                .keys()
                .filter(|name| !skipped.contains(name.as_str()) && !families.contains_key(*name))
                .collect();
            if missing.is_empty() {
                Some(families)
            } else {
                eprintln!("still missing: {missing:?}");
                None
            }
        },
    );

    let mut problems = Vec::new();
    for (name, family) in &exported {
        if !name.starts_with("sluice_") {
            continue;
        }
        let Some(doc) = docs.get(name) else {
            problems.push(format!(
                "{name} ({}) is exported but not documented in docs/metrics.md",
                family.kind
            ));
            continue;
        };
        if doc.kind != family.kind {
            problems.push(format!(
                "{name} is documented as a {} but exported as a {}",
                doc.kind, family.kind
            ));
        }
        for labels in family.label_sets() {
            let missing: Vec<&String> = doc.required.difference(&labels).collect();
            let extra: Vec<&String> = labels
                .iter()
                .filter(|l| !doc.required.contains(*l) && !doc.optional.contains(*l))
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                problems.push(format!(
                    "{name} has a series with labels {labels:?}: missing {missing:?}, undocumented {extra:?}"
                ));
            }
        }
    }
    // The sharded dedupe shows the optional `shard` label is real.
    let received = &exported["sluice_component_received_events_total"];
    assert!(
        received
            .samples
            .iter()
            .any(|s| s.labels.contains_key("shard")),
        "no series carries `shard`, though dedupe runs sharded"
    );

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(15));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
#[test]
fn exposition_parser_reads_labels_histograms_and_escapes() {
    let text = "# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"uote\"} 3\n\n\
                # TYPE h_seconds histogram\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.5\nh_seconds_count 2\n\
                # TYPE g gauge\ng 1.5\n";
    let families = parse_exposition(text);
    let a = &families["a_total"];
    assert_eq!(a.kind, "counter");
    assert_eq!(a.samples[0].labels["y"], "q\"uote");
    assert_eq!(a.samples[0].value, 3.0);
    let h = &families["h_seconds"];
    assert_eq!(h.samples.len(), 3);
    assert_eq!(h.matching(&[]).count(), 1);
    assert_eq!(families["g"].samples[0].value, 1.5);
}
