//! Sinks: components that write events out.
//!
//! | type        | what it does                                                    |
//! |-------------|-----------------------------------------------------------------|
//! | `file`      | NDJSON files, paths templated by event fields and event time    |
//! | `console`   | NDJSON on standard output                                       |
//! | `blackhole` | counts and discards; `rate` makes it a deliberately slow sink   |

pub mod blackhole;
pub mod console;
pub mod file;

use crate::component::Sink;

crate::component_configs! {
    /// The config of any sink, by `type`.
    SinkConfig => Box<dyn Sink> {
        File(file::FileSinkConfig) = "file",
        Console(console::ConsoleConfig) = "console",
        Blackhole(blackhole::BlackholeConfig) = "blackhole",
    }
}
