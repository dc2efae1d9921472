//! `console` sink: writes events as NDJSON to standard output (or standard
//! error), for demos and for piping a topology into other tools.
//!
//! ```toml
//! [sinks.out]
//! type = "console"
//! inputs = ["sessions"]
//! target = "stdout"   # optional: "stdout" (the default) or "stderr"
//! ```
//!
//! Contract: each batch is encoded into one buffer and written under a single
//! lock of the stream, so lines of concurrent writers never interleave
//! mid-line, then the stream is flushed. `Ok` means the whole batch was handed
//! to the operating system. A closed pipe is an error like any other.

use std::io::{self, Write};

use futures::future::{self, BoxFuture};
use serde::Deserialize;

use crate::component::{BuildContext, Sink, SinkError, REJECTED};
use crate::config::FieldError;
use crate::event::Event;

/// `[sinks.<id>]` with `type = "console"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// The stream lines go to: `"stdout"` (the default) or `"stderr"`.
    #[serde(default)]
    pub target: Target,
}

/// A standard stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Stdout,
    Stderr,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Stdout => "stdout",
            Target::Stderr => "stderr",
        }
    }
}

impl ConsoleConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![REJECTED.to_string()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }

    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Sink>, String> {
        Ok(Box::new(ConsoleSink {
            target: self.target,
            buffer: Vec::new(),
        }))
    }
}

/// The running sink.
struct ConsoleSink {
    target: Target,
    /// One batch of encoded lines, reused.
    buffer: Vec<u8>,
}

impl ConsoleSink {
    /// Encodes `events` as NDJSON and writes them to `out` in one go.
    fn write_to(&mut self, events: &[Event], out: &mut impl Write) -> Result<(), SinkError> {
        self.buffer.clear();
        for event in events {
            event.write_json_line(&mut self.buffer);
        }
        out.write_all(&self.buffer)
            .and_then(|()| out.flush())
            .map_err(|err| {
                SinkError::new("io", format!("writing to {}: {err}", self.target.name()))
            })
    }

    fn write_batch(&mut self, events: &[Event]) -> Result<(), SinkError> {
        match self.target {
            Target::Stdout => self.write_to(events, &mut io::stdout().lock()),
            Target::Stderr => self.write_to(events, &mut io::stderr().lock()),
        }
    }
}

impl Sink for ConsoleSink {
    fn write<'a>(&'a mut self, events: &'a [Event]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(future::ready(self.write_batch(events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_table;

    fn config(toml_text: &str) -> Result<ConsoleConfig, String> {
        from_table(toml::from_str(toml_text).unwrap()).map_err(|e| e.message)
    }

    #[test]
    fn writes_one_line_per_event() {
        let mut sink = ConsoleSink {
            target: Target::Stdout,
            buffer: Vec::new(),
        };
        let events = [
            Event::from_json(r#"{"a":1}"#).unwrap(),
            Event::from_json(r#"{"b":"x"}"#).unwrap(),
        ];
        let mut out = Vec::new();
        sink.write_to(&events, &mut out).unwrap();
        sink.write_to(&events[..1], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1}\n{\"b\":\"x\"}\n{\"a\":1}\n"
        );
    }

    #[test]
    fn errors_name_the_stream() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = ConsoleSink {
            target: Target::Stderr,
            buffer: Vec::new(),
        };
        let err = sink.write_to(&[Event::default()], &mut Closed).unwrap_err();
        assert_eq!(err.kind, "io");
        assert_eq!(err.message, "writing to stderr: pipe closed");
    }

    #[test]
    fn config_target() {
        assert_eq!(config("").unwrap().target, Target::Stdout);
        assert_eq!(
            config(r#"target = "stderr""#).unwrap().target,
            Target::Stderr
        );
        let err = config(r#"target = "printer""#).unwrap_err();
        assert!(err.contains("unknown variant `printer`"), "{err}");
        assert_eq!(config("").unwrap().outputs(), vec!["rejected"]);
    }
}
