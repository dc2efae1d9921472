//! The component graph of a topology: which component reads from which.
//!
//! Plain functions over a validated [`Config`] (the loader has already checked
//! that every input names a known component and output, and that there are no
//! cycles): the start-up order, who consumes an output, and drawings of the
//! graph for `sluice graph --format dot|mermaid`.
//!
//! Cycle finding works on bare ids ([`find_cycles`]) because the loader needs it
//! before it has a `Config`: components whose tables failed to parse still take
//! part in the wiring checks.
//!
//! Topologies are small (tens of components), so the algorithms favour
//! plainness over asymptotic speed: cycle finding is quadratic in the number of
//! components.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;

use super::{ComponentKind, ComponentSpec, Config};

/// Indices into `config.components` in an order where every component comes
/// after all of its inputs: first every source (in file order), then the rest,
/// each as soon as its inputs are placed, earliest in the file first.
///
/// The loader guarantees the graph is acyclic; should a cycle slip through,
/// the components on it are appended in file order so every index appears once.
pub fn topological_order(config: &Config) -> Vec<usize> {
    let index_by_id: HashMap<&str, usize> = config
        .components
        .iter()
        .enumerate()
        .map(|(index, component)| (component.id.as_str(), index))
        .collect();
    let count = config.components.len();
    let mut placed = vec![false; count];
    let mut order = Vec::with_capacity(count);

    for (index, component) in config.components.iter().enumerate() {
        if component.kind == ComponentKind::Source {
            placed[index] = true;
            order.push(index);
        }
    }
    // Repeatedly place the earliest component whose inputs are all placed.
    // Quadratic, and topologies are small; it keeps the order deterministic.
    loop {
        let next = (0..count).find(|&index| {
            !placed[index]
                && config.components[index].inputs.iter().all(|input| {
                    index_by_id
                        .get(input.component.as_str())
                        .is_none_or(|&from| placed[from] && from != index)
                })
        });
        match next {
            Some(index) => {
                placed[index] = true;
                order.push(index);
            }
            None => break,
        }
    }
    order.extend((0..count).filter(|&index| !placed[index]));
    order
}

/// The first cycle among the components' inputs, as the path events would
/// take: `["a", "b", "a"]` means `a` feeds `b`, which feeds `a`. Components
/// listing themselves as input are not reported here.
pub fn find_cycle(config: &Config) -> Option<Vec<String>> {
    let nodes: Vec<(&str, Vec<&str>)> = config
        .components
        .iter()
        .map(|component| {
            let inputs = component
                .inputs
                .iter()
                .map(|input| input.component.as_str())
                .collect();
            (component.id.as_str(), inputs)
        })
        .collect();
    find_cycles(&nodes).into_iter().next()
}

/// Every cycle among `nodes` (each an id with the ids it reads from), one per
/// group of components that all reach each other, each as the path events
/// would take and starting at the group's earliest node in `nodes`.
/// Self-loops (a node reading from itself) and ids that name no node are
/// ignored: the loader reports those on their own.
pub fn find_cycles<'a>(nodes: &[(&'a str, Vec<&'a str>)]) -> Vec<Vec<String>> {
    let index_by_id: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(index, (id, _))| (*id, index))
        .collect();
    // consumers_of[a] = nodes reading from a: the direction events flow.
    let mut consumers_of: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (consumer, (_, inputs)) in nodes.iter().enumerate() {
        for input in inputs {
            if let Some(&producer) = index_by_id.get(input) {
                if producer != consumer && !consumers_of[producer].contains(&consumer) {
                    consumers_of[producer].push(consumer);
                }
            }
        }
    }
    let reachable: Vec<HashSet<usize>> = (0..nodes.len())
        .map(|start| reachable_from(start, &consumers_of))
        .collect();

    let mut in_reported_cycle = vec![false; nodes.len()];
    let mut cycles = Vec::new();
    for start in 0..nodes.len() {
        if in_reported_cycle[start] || !reachable[start].contains(&start) {
            continue;
        }
        let group: HashSet<usize> = reachable[start]
            .iter()
            .copied()
            .filter(|&other| reachable[other].contains(&start))
            .collect();
        for &member in &group {
            in_reported_cycle[member] = true;
        }
        let path = shortest_loop(start, &consumers_of, &group);
        cycles.push(
            path.into_iter()
                .map(|index| nodes[index].0.to_owned())
                .collect(),
        );
    }
    cycles
}

/// Nodes reachable from `start` by one or more steps.
fn reachable_from(start: usize, consumers_of: &[Vec<usize>]) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<usize> = consumers_of[start].iter().copied().collect();
    while let Some(node) = queue.pop_front() {
        if seen.insert(node) {
            queue.extend(consumers_of[node].iter().copied());
        }
    }
    seen
}

/// The shortest path from `start` back to itself inside `group`, both ends
/// included. `start` must be on a cycle within `group`.
fn shortest_loop(start: usize, consumers_of: &[Vec<usize>], group: &HashSet<usize>) -> Vec<usize> {
    let mut came_from: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in &consumers_of[node] {
            if !group.contains(&next) {
                continue;
            }
            if next == start {
                let mut path = vec![start, node];
                let mut at = node;
                while at != start {
                    at = came_from[&at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = came_from.entry(next) {
                entry.insert(node);
                queue.push_back(next);
            }
        }
    }
    // Unreachable when `start` is on a cycle in `group`; a lone node keeps
    // the caller's message meaningful all the same.
    vec![start]
}

/// Ids of the components reading output `output` (`""` for the default) of
/// component `id`, in file order.
pub fn consumers<'a>(config: &'a Config, id: &str, output: &str) -> Vec<&'a str> {
    config
        .components
        .iter()
        .filter(|component| {
            component
                .inputs
                .iter()
                .any(|input| input.component == id && input.output == output)
        })
        .map(|component| component.id.as_str())
        .collect()
}

/// The graph in Graphviz `dot`: sources as trapezia, transforms as boxes,
/// sinks as inverted trapezia; edges from a named output carry its name.
pub fn to_dot(config: &Config) -> String {
    let mut dot = String::from("digraph sluice {\n  rankdir=LR;\n");
    for component in &config.components {
        let shape = match component.kind {
            ComponentKind::Source => "trapezium",
            ComponentKind::Transform => "box",
            ComponentKind::Sink => "invtrapezium",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            dot,
            "  \"{}\" [label=\"{}\", shape={shape}];",
            dot_escape(&component.id),
            dot_escape(&label(component)),
        );
    }
    for component in &config.components {
        for input in &component.inputs {
            let from = dot_escape(&input.component);
            let to = dot_escape(&component.id);
            // Writing to a String cannot fail.
            let _ = if input.output.is_empty() {
                writeln!(dot, "  \"{from}\" -> \"{to}\";")
            } else {
                writeln!(
                    dot,
                    "  \"{from}\" -> \"{to}\" [label=\"{}\"];",
                    dot_escape(&input.output)
                )
            };
        }
    }
    dot.push_str("}\n");
    dot
}

/// The graph as a Mermaid flowchart: sources as trapezoids, transforms as
/// rectangles, sinks as inverted trapezoids; edges from a named output carry
/// its name. Nodes are named `c0`, `c1`, … because Mermaid misreads some ids
/// (`end`, ids with `-`); the label shows the real id.
pub fn to_mermaid(config: &Config) -> String {
    let node_by_id: HashMap<&str, String> = config
        .components
        .iter()
        .enumerate()
        .map(|(index, component)| (component.id.as_str(), format!("c{index}")))
        .collect();
    let mut chart = String::from("flowchart LR\n");
    for component in &config.components {
        let node = &node_by_id[component.id.as_str()];
        let text = mermaid_escape(&label(component));
        let shape = match component.kind {
            ComponentKind::Source => format!("[/\"{text}\"\\]"),
            ComponentKind::Transform => format!("[\"{text}\"]"),
            ComponentKind::Sink => format!("[\\\"{text}\"/]"),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(chart, "  {node}{shape}");
    }
    for component in &config.components {
        let to = &node_by_id[component.id.as_str()];
        for input in &component.inputs {
            let Some(from) = node_by_id.get(input.component.as_str()) else {
                continue;
            };
            // Writing to a String cannot fail.
            let _ = if input.output.is_empty() {
                writeln!(chart, "  {from} --> {to}")
            } else {
                writeln!(
                    chart,
                    "  {from} -->|\"{}\"| {to}",
                    mermaid_escape(&input.output)
                )
            };
        }
    }
    chart
}

/// `id (type)`.
fn label(component: &ComponentSpec) -> String {
    format!("{} ({})", component.id, component.type_name)
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Mermaid has no escape for `"` inside a quoted label; its HTML entity works.
fn mermaid_escape(text: &str) -> String {
    text.replace('"', "#quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiConfig, ComponentConfig, EngineConfig, InputRef};
    use crate::sinks::SinkConfig;

    /// A component for graph tests: only id, kind, type and inputs matter
    /// here, so every one carries a blackhole sink's config (it accepts an
    /// empty table).
    fn spec(id: &str, kind: ComponentKind, type_name: &str, inputs: &[&str]) -> ComponentSpec {
        let config = SinkConfig::parse("blackhole", toml::Table::new())
            .expect("blackhole is a sink type")
            .expect("blackhole accepts an empty table");
        ComponentSpec {
            id: id.to_owned(),
            kind,
            type_name: type_name.to_owned(),
            inputs: inputs.iter().map(|input| InputRef::parse(input)).collect(),
            outputs: Vec::new(),
            config: ComponentConfig::Sink(config),
            line: 1,
        }
    }

    fn config(components: Vec<ComponentSpec>) -> Config {
        Config {
            file: "topology.toml".into(),
            engine: EngineConfig::default(),
            api: ApiConfig::default(),
            components,
        }
    }

    use ComponentKind::{Sink, Source, Transform};

    /// The example topology, listed in an awkward order.
    fn example() -> Config {
        config(vec![
            spec(
                "rest",
                Sink,
                "blackhole",
                &["by_event._default", "by_event.clicks"],
            ),
            spec("by_event", Transform, "route", &["enriched"]),
            spec("enriched", Transform, "enrich", &["unique"]),
            spec("unique", Transform, "dedupe", &["valid"]),
            spec("valid", Transform, "filter", &["replay"]),
            spec("orders", Sink, "file", &["by_event.orders"]),
            spec(
                "rejects",
                Sink,
                "file",
                &["valid.rejected", "unique.duplicates"],
            ),
            spec("replay", Source, "file", &[]),
        ])
    }

    #[test]
    fn topological_order_puts_sources_first_and_inputs_before_consumers() {
        let config = example();
        let order = topological_order(&config);
        let ids: Vec<&str> = order
            .iter()
            .map(|&i| config.components[i].id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["replay", "valid", "unique", "enriched", "by_event", "rest", "orders", "rejects"]
        );
    }

    #[test]
    fn topological_order_keeps_every_index_even_with_a_cycle() {
        let config = config(vec![
            spec("a", Transform, "chaos", &["b"]),
            spec("b", Transform, "chaos", &["a"]),
            spec("s", Source, "file", &[]),
        ]);
        assert_eq!(topological_order(&config), [2, 0, 1]);
    }

    #[test]
    fn find_cycle_reports_the_path_once() {
        assert_eq!(find_cycle(&example()), None);
        let config = config(vec![
            spec("s", Source, "file", &[]),
            spec("a", Transform, "chaos", &["s", "c"]),
            spec("b", Transform, "chaos", &["a"]),
            spec("c", Transform, "chaos", &["b.out"]),
        ]);
        assert_eq!(
            find_cycle(&config),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn find_cycles_reports_each_group_and_ignores_self_loops() {
        let nodes = vec![
            ("a", vec!["b"]),
            ("b", vec!["a"]),
            ("x", vec!["x"]),
            ("p", vec!["q", "missing"]),
            ("q", vec!["p"]),
        ];
        assert_eq!(
            find_cycles(&nodes),
            vec![vec!["a", "b", "a"], vec!["p", "q", "p"]]
        );
    }

    #[test]
    fn consumers_by_output() {
        let config = example();
        assert_eq!(consumers(&config, "by_event", "clicks"), ["rest"]);
        assert_eq!(consumers(&config, "valid", ""), ["unique"]);
        assert_eq!(consumers(&config, "valid", "rejected"), ["rejects"]);
        assert!(consumers(&config, "orders", "rejected").is_empty());
    }

    #[test]
    fn dot_shapes_and_labels() {
        let dot = to_dot(&example());
        assert!(dot.starts_with("digraph sluice {\n"));
        assert!(dot.contains("  \"replay\" [label=\"replay (file)\", shape=trapezium];\n"));
        assert!(dot.contains("  \"valid\" [label=\"valid (filter)\", shape=box];\n"));
        assert!(dot.contains("  \"rest\" [label=\"rest (blackhole)\", shape=invtrapezium];\n"));
        assert!(dot.contains("  \"replay\" -> \"valid\";\n"));
        assert!(dot.contains("  \"by_event\" -> \"orders\" [label=\"orders\"];\n"));
        assert!(dot.ends_with("}\n"));
    }

    #[test]
    fn mermaid_shapes_and_labels() {
        let chart = to_mermaid(&example());
        assert!(chart.starts_with("flowchart LR\n"));
        // rest is c0, by_event c1, valid c4, orders c5, replay c7.
        assert!(chart.contains("  c7[/\"replay (file)\"\\]\n"));
        assert!(chart.contains("  c4[\"valid (filter)\"]\n"));
        assert!(chart.contains("  c0[\\\"rest (blackhole)\"/]\n"));
        assert!(chart.contains("  c7 --> c4\n"));
        assert!(chart.contains("  c1 -->|\"orders\"| c5\n"));
    }
}
