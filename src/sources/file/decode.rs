//! Decoding raw lines into events, off the reading thread, in parallel.
//!
//! The reader cuts its input into [`RawChunk`]s of `batch_size` lines (cheap:
//! a `memchr` and a copy) and numbers them. Decoder threads turn chunks into
//! [`Outputs`] (JSON parsing is where a replay spends its time), and an
//! [`InOrder`] buffer puts the decoded batches back into reading order before
//! they go downstream, so a parallel replay emits exactly what a sequential one
//! would: the first of two duplicates stays first, files keep their order.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::component::Outputs;
use crate::event::{Event, EventParseError};

/// How much of a line that cannot be decoded is kept in its rejection record.
pub const RAW_KEEP: usize = 1024;

/// One line of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// 1-based line number in its file.
    pub line_no: u64,
    /// End of the line's bytes in [`RawChunk::bytes`] (it starts where the
    /// previous line ended).
    pub end: usize,
    /// `Some(length)` when the line was over `max_line_bytes`: the bytes are
    /// only its first [`RAW_KEEP`].
    pub too_long: Option<u64>,
}

/// Up to `batch_size` lines of one file, undecoded.
#[derive(Debug, Default)]
pub struct RawChunk {
    /// Position in reading order, from 0.
    pub seq: u64,
    pub file: Arc<str>,
    pub bytes: Vec<u8>,
    pub lines: Vec<RawLine>,
}

impl RawChunk {
    pub fn push(&mut self, line_no: u64, bytes: &[u8], too_long: Option<u64>) {
        self.bytes.extend_from_slice(bytes);
        self.lines.push(RawLine {
            line_no,
            end: self.bytes.len(),
            too_long,
        });
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Decodes every line of `chunk` into `out`: port 0 for events, `rejected`
/// for lines that are not events. Blank (whitespace-only) lines are skipped.
pub fn decode(chunk: &RawChunk, max_line_bytes: u64, out: &mut Outputs) {
    let mut start = 0;
    for line in &chunk.lines {
        let bytes = &chunk.bytes[start..line.end];
        start = line.end;
        decode_line(bytes, line, &chunk.file, max_line_bytes, out);
    }
}

fn decode_line(bytes: &[u8], line: &RawLine, file: &str, max: u64, out: &mut Outputs) {
    let line_no = line.line_no;
    if let Some(total) = line.too_long {
        let mut event = raw_record(bytes, file, line_no);
        event
            .fields_mut()
            .insert("bytes".into(), Value::from(total));
        let message =
            format!("line {line_no} of {file} is {total} bytes, over max_line_bytes ({max})");
        out.reject(event, "line_too_long", message);
        return;
    }
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        // Blank lines separate nothing in NDJSON; they are not events.
        return;
    }
    match std::str::from_utf8(bytes) {
        Err(err) => {
            let event = raw_record(&bytes[..bytes.len().min(RAW_KEEP)], file, line_no);
            let message = format!("line {line_no} of {file} is not valid UTF-8: {err}");
            out.reject(event, "invalid_utf8", message);
        }
        Ok(text) => match Event::from_json(text) {
            Ok(event) => out.push(0, event),
            Err(err) => {
                let event = raw_record(&bytes[..bytes.len().min(RAW_KEEP)], file, line_no);
                let reason = err.reason();
                let message = match err {
                    EventParseError::Malformed(m) => {
                        format!("line {line_no} of {file}: malformed JSON: {m}")
                    }
                    EventParseError::NotAnObject(kind) => {
                        format!("line {line_no} of {file}: expected a JSON object, found {kind}")
                    }
                };
                out.reject(event, reason, message);
            }
        },
    }
}

/// The record kept for a line that is not an event.
fn raw_record(bytes: &[u8], file: &str, line: u64) -> Event {
    let mut fields = Map::with_capacity(3);
    fields.insert(
        "raw".into(),
        Value::String(String::from_utf8_lossy(bytes).into_owned()),
    );
    fields.insert("file".into(), Value::String(file.to_owned()));
    fields.insert("line".into(), Value::from(line));
    Event::from_map(fields)
}

/// Puts numbered items back in order. Holds only items that arrived ahead of
/// a missing one; the decoders' bounded queues bound how many that can be.
pub struct InOrder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// Accepts item `seq`.
    pub fn insert(&mut self, seq: u64, item: T) {
        self.waiting.insert(seq, item);
    }

    /// The next item in order, if it has arrived.
    pub fn pop(&mut self) -> Option<T> {
        let item = self.waiting.remove(&self.next)?;
        self.next += 1;
        Some(item)
    }

    /// Items held back waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Outputs {
        Outputs::new(
            "src".into(),
            vec![String::new(), "rejected".to_string()].into(),
        )
    }

    #[test]
    fn decodes_events_and_rejects_with_reasons() {
        let mut chunk = RawChunk {
            file: "f.ndjson".into(),
            ..Default::default()
        };
        chunk.push(1, br#"{"a":1}"#, None);
        chunk.push(2, b"   ", None);
        chunk.push(3, b"[1]", None);
        chunk.push(4, b"{\"a\":", None);
        chunk.push(5, b"\xff\xfe", None);
        chunk.push(6, b"xxxx", Some(5_000_000));
        chunk.push(7, b"{\"b\":2}\r", None);
        let mut out = outputs();
        decode(&chunk, 1024, &mut out);
        let ports = out.take_ports();
        assert_eq!(ports[0].len(), 2);
        let reasons: Vec<&str> = ports[1]
            .iter()
            .map(|r| r.fields()["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "not_an_object",
                "malformed_json",
                "invalid_utf8",
                "line_too_long"
            ]
        );
        let too_long = &ports[1][3].fields()["event"];
        assert_eq!(too_long["line"], 6);
        assert_eq!(too_long["bytes"], 5_000_000);
    }

    #[test]
    fn in_order_releases_only_contiguous_items() {
        let mut o = InOrder::default();
        o.insert(1, "b");
        assert_eq!(o.pop(), None);
        o.insert(0, "a");
        o.insert(2, "c");
        assert_eq!(o.pop(), Some("a"));
        assert_eq!(o.pop(), Some("b"));
        assert_eq!(o.pop(), Some("c"));
        assert_eq!(o.pop(), None);
        assert_eq!(o.held(), 0);
    }
}
