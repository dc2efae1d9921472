//! Transforms: components that look at each event and decide where it goes.
//!
//! | type      | what it does                                                     |
//! |-----------|------------------------------------------------------------------|
//! | `filter`  | keeps events that pass an allowlist and shape checks             |
//! | `dedupe`  | drops repeats of an id field, remembering a bounded number       |
//! | `enrich`  | adds, renames and derives fields                                 |
//! | `route`   | sends events to named outputs by event name                      |
//! | `sessionize` | groups each machine's events into sessions, with summaries    |
//! | `chaos`   | test aid: panics on chosen events, to exercise supervision       |

pub mod chaos;
pub mod dedupe;
pub mod enrich;
pub mod filter;
pub mod route;
pub mod sessionize;

use crate::component::{Partitioner, Transform};

crate::component_configs! {
    /// The config of any transform, by `type`.
    TransformConfig => Box<dyn Transform> {
        Filter(filter::FilterConfig) = "filter",
        Dedupe(dedupe::DedupeConfig) = "dedupe",
        Enrich(enrich::EnrichConfig) = "enrich",
        Route(route::RouteConfig) = "route",
        Chaos(chaos::ChaosConfig) = "chaos",
        Sessionize(sessionize::SessionizeConfig) = "sessionize",
    }
}

impl TransformConfig {
    /// Keyed transforms that split their work over several actors by key:
    /// the number of shards and the event → shard function. `cores` is the
    /// default for transforms that scale with the machine.
    pub fn partitioning(&self, cores: usize) -> Option<(usize, Partitioner)> {
        // Dedupe is sharded only when its config asks: unsharded, it keeps
        // one global memory of ids in arrival order. Sessionize scales with
        // the machine unless its config says otherwise.
        match self {
            TransformConfig::Dedupe(c) => c.partitioning(),
            TransformConfig::Sessionize(c) => c.partitioning(cores),
            _ => None,
        }
    }
}
