//! Sources: components that bring events in.
//!
//! | type   | what it does                                                         |
//! |--------|----------------------------------------------------------------------|
//! | `file` | NDJSON from a path, a glob or stdin; replays and stops, or follows   |

pub mod file;

use crate::component::Source;

crate::component_configs! {
    /// The config of any source, by `type`.
    SourceConfig => Box<dyn Source> {
        File(file::FileSourceConfig) = "file",
    }
}
