//! What a running topology shows the outside: readiness, failures, and each
//! component's identity and live counters. Read by `/ready`, `/topology`,
//! the progress line and `sluice top`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::config::ComponentSpec;
use crate::telemetry::ComponentStats;

/// One component, as shown by `/topology`.
pub struct ComponentStatus {
    pub id: String,
    pub kind: &'static str,
    pub type_name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub stats: Arc<ComponentStats>,
}

impl ComponentStatus {
    pub fn new(spec: &ComponentSpec, outputs: Vec<String>, stats: Arc<ComponentStats>) -> Self {
        ComponentStatus {
            id: spec.id.clone(),
            kind: spec.kind.as_str(),
            type_name: spec.type_name.clone(),
            inputs: spec.inputs.iter().map(ToString::to_string).collect(),
            outputs,
            stats,
        }
    }

    fn to_json(&self) -> Value {
        let s = &self.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "id": self.id,
            "kind": self.kind,
            "type": self.type_name,
            "inputs": self.inputs,
            "outputs": self.outputs.iter().map(|o| if o.is_empty() { "_default" } else { o.as_str() }).collect::<Vec<_>>(),
            "state": s.state().as_str(),
            "received_events": load(&s.received),
            "sent_events": load(&s.sent),
            "rejected_events": load(&s.rejected),
            "errors": load(&s.errors),
            "restarts": load(&s.restarts),
            "mailbox": {
                "depth": s.mailbox_depth.load(Ordering::Relaxed),
                "peak": s.mailbox_peak.load(Ordering::Relaxed),
                "capacity": s.mailbox_capacity.load(Ordering::Relaxed),
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

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
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
            "failures": self.failures().iter().map(|(id, why)| json!({"component_id": id, "reason": why})).collect::<Vec<_>>(),
            "components": self.components.iter().map(ComponentStatus::to_json).collect::<Vec<_>>(),
            "edges": edges,
        })
    }
}
