//! Transforms: components that look at each event and decide where it goes.
//!
//! | type      | what it does                                                     |
//! |-----------|------------------------------------------------------------------|
//! | `filter`  | keeps events that pass an allowlist and shape checks             |
//! | `dedupe`  | drops repeats of an id field, remembering a bounded number       |
//! | `enrich`  | adds, renames and derives fields                                 |
//! | `route`   | sends events to named outputs by event name                      |
//! | `chaos`   | test aid: panics on chosen events, to exercise supervision       |

pub mod chaos;
pub mod dedupe;
pub mod enrich;
pub mod filter;
pub mod route;

use crate::component::{Partitioner, Transform};

crate::component_configs! {
    /// The config of any transform, by `type`.
    TransformConfig => Box<dyn Transform> {
        Filter(filter::FilterConfig) = "filter",
        Dedupe(dedupe::DedupeConfig) = "dedupe",
        Enrich(enrich::EnrichConfig) = "enrich",
        Route(route::RouteConfig) = "route",
        Chaos(chaos::ChaosConfig) = "chaos",
    }
}

impl TransformConfig {
    /// Keyed transforms that split their work over several actors by key:
    /// the number of shards and the event → shard function. `cores` is the
    /// default for transforms that scale with the machine.
    pub fn partitioning(&self, cores: usize) -> Option<(usize, Partitioner)> {
        // Dedupe is sharded only when its config asks: unsharded, it keeps
        // one global memory of ids in arrival order.
        let _ = cores;
        match self {
            TransformConfig::Dedupe(c) => c.partitioning(),
            _ => None,
        }
    }
}
