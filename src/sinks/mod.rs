//! Sinks: components that write events out.
//!
//! | type        | what it does                                                    |
//! |-------------|-----------------------------------------------------------------|
//! | `file`      | NDJSON files, paths templated by event fields and event time    |
//! | `console`   | NDJSON on standard output                                       |
//! | `blackhole` | counts and discards; `rate` makes it a deliberately slow sink   |
//! | `http`      | POSTs events (json, json_array, ndjson) with retries and backoff  |
//! | `redis`     | INCRBY / HINCRBY counters from key templates, pre-aggregated     |

pub mod blackhole;
pub mod console;
pub mod file;
pub mod http;
pub mod redis;
pub mod retry;

use crate::component::Sink;

crate::component_configs! {
    /// The config of any sink, by `type`.
    SinkConfig => Box<dyn Sink> {
        File(file::FileSinkConfig) = "file",
        Console(console::ConsoleConfig) = "console",
        Blackhole(blackhole::BlackholeConfig) = "blackhole",
        Redis(redis::RedisSinkConfig) = "redis",
        Http(http::HttpSinkConfig) = "http",
    }
}

/// Installs rustls's crypto provider once (ring); `rediss://` and the http
/// sink's `https://` need one, and two crates enabling different providers
/// would otherwise leave the choice ambiguous.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is all we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
