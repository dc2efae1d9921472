//! What a running topology shows the outside: readiness, failures, and each
//! component's identity and live counters. Read by `/ready`, `/topology`,
//! the progress line and `sluice top`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::component::ComponentHealth;
use crate::config::ComponentSpec;
use crate::telemetry::{ComponentStats, RunState};

/// One component, as shown by `/topology`.
pub struct ComponentStatus {
    pub id: String,
    pub kind: &'static str,
    pub type_name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// One entry per actor: a sharded component has one per shard.
    pub stats: Vec<Arc<ComponentStats>>,
    /// Whether it reaches what it depends on (a sink's destination).
    pub health: Arc<ComponentHealth>,
}

impl ComponentStatus {
    pub fn new(
        spec: &ComponentSpec,
        outputs: Vec<String>,
        stats: Vec<Arc<ComponentStats>>,
        health: Arc<ComponentHealth>,
    ) -> Self {
        ComponentStatus {
            health,
            id: spec.id.clone(),
            kind: spec.kind.as_str(),
            type_name: spec.type_name.clone(),
            inputs: spec.inputs.iter().map(ToString::to_string).collect(),
            outputs,
            stats,
        }
    }

    /// A counter summed over the component's actors.
    pub fn total(&self, counter: impl Fn(&ComponentStats) -> &AtomicU64) -> u64 {
        self.stats
            .iter()
            .map(|s| counter(s).load(Ordering::Relaxed))
            .sum()
    }

    /// The component's state: the worst of its actors' (failed > restarting >
    /// starting > running > finished).
    pub fn state(&self) -> RunState {
        let rank = |s: RunState| match s {
            RunState::Failed => 4,
            RunState::Restarting => 3,
            RunState::Starting => 2,
            RunState::Running => 1,
            RunState::Finished => 0,
        };
        self.stats
            .iter()
            .map(|s| s.state())
            .max_by_key(|s| rank(*s))
            .unwrap_or(RunState::Starting)
    }

    fn to_json(&self) -> Value {
        let gauge = |g: fn(&ComponentStats) -> &AtomicUsize| {
            self.stats
                .iter()
                .map(|s| g(s).load(Ordering::Relaxed))
                .max()
                .unwrap_or(0)
        };
        json!({
            "id": self.id,
            "kind": self.kind,
            "type": self.type_name,
            "inputs": self.inputs,
            "outputs": self.outputs.iter().map(|o| if o.is_empty() { "_default" } else { o.as_str() }).collect::<Vec<_>>(),
            "shards": self.stats.len(),
            "state": self.state().as_str(),
            "received_events": self.total(|s| &s.received),
            "sent_events": self.total(|s| &s.sent),
            "rejected_events": self.total(|s| &s.rejected),
            "errors": self.total(|s| &s.errors),
            "restarts": self.total(|s| &s.restarts),
            "degraded": self.health.degraded(),
            // Per shard, the fullest one: each shard has its own bounded inbox.
            "mailbox": {
                "depth": gauge(|s| &s.mailbox_depth),
                "peak": gauge(|s| &s.mailbox_peak),
                "capacity": gauge(|s| &s.mailbox_capacity),
            },
        })
    }
}

/// The whole topology.
pub struct TopologyStatus {
    pub components: Vec<ComponentStatus>,
    ready: AtomicBool,
    /// At most one entry per component.
    failures: Mutex<Vec<(String, String)>>,
}

impl TopologyStatus {
    pub fn new(components: Vec<ComponentStatus>) -> Self {
        TopologyStatus {
            components,
            ready: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
        }
    }

    /// The topology runs, no component failed, and every component that
    /// reports readiness (a listening source) can take input.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.not_ready().is_empty()
    }

    /// Components that say they cannot take input now.
    pub fn not_ready(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter(|c| c.stats.iter().any(|s| !s.is_ready()))
            .map(|c| c.id.as_str())
            .collect()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        crate::telemetry::topology_ready(ready);
    }

    pub fn record_failure(&self, id: &str, reason: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if !failures.iter().any(|(f, _)| f == id) {
            failures.push((id.to_owned(), reason.to_owned()));
        }
    }

    /// Components that run but cannot reach their destination, with why.
    pub fn degraded(&self) -> Vec<(String, String)> {
        self.components
            .iter()
            .filter_map(|c| c.health.degraded().map(|why| (c.id.clone(), why)))
            .collect()
    }

    pub fn failures(&self) -> Vec<(String, String)> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The `/topology` document: components with counters, and the edges.
    pub fn to_json(&self) -> Value {
        let edges: Vec<Value> = self
            .components
            .iter()
            .flat_map(|c| {
                c.inputs.iter().map(move |input| {
                    let (from, output) = input
                        .split_once('.')
                        .unwrap_or((input.as_str(), "_default"));
                    json!({ "from": from, "output": output, "to": c.id })
                })
            })
            .collect();
        json!({
            "ready": self.is_ready(),
            "degraded": self.degraded().iter().map(|(id, why)| json!({"component_id": id, "reason": why})).collect::<Vec<_>>(),
            "failures": self.failures().iter().map(|(id, why)| json!({"component_id": id, "reason": why})).collect::<Vec<_>>(),
            "components": self.components.iter().map(ComponentStatus::to_json).collect::<Vec<_>>(),
            "edges": edges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(ids: &[&str]) -> TopologyStatus {
        let components = ids
            .iter()
            .map(|id| ComponentStatus {
                id: (*id).to_owned(),
                kind: "source",
                type_name: "segment_http".to_owned(),
                inputs: Vec::new(),
                outputs: vec![String::new()],
                stats: vec![Arc::new(ComponentStats::default())],
                health: Arc::default(),
            })
            .collect();
        TopologyStatus::new(components)
    }

    #[test]
    fn a_component_that_cannot_take_input_makes_the_topology_not_ready() {
        let status = status_with(&["http", "file"]);
        status.ready.store(true, Ordering::Release);
        assert!(status.is_ready());
        status.components[0].stats[0].set_ready(false);
        assert!(!status.is_ready());
        assert_eq!(status.not_ready(), ["http"]);
        status.components[0].stats[0].set_ready(true);
        assert!(status.is_ready());
    }
}
