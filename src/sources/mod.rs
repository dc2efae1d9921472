//! Sources: components that bring events in.
//!
//! | type   | what it does                                                         |
//! |--------|----------------------------------------------------------------------|
//! | `file` | NDJSON from a path, a glob or stdin; replays and stops, or follows   |
//! | `segment_http` | Segment's tracking API over HTTP: the official SDKs and webhooks post to it |

pub mod file;
pub mod segment_http;

use crate::component::Source;

crate::component_configs! {
    /// The config of any source, by `type`.
    SourceConfig => Box<dyn Source> {
        File(file::FileSourceConfig) = "file",
        SegmentHttp(segment_http::SegmentHttpConfig) = "segment_http",
    }
}
