//! The `file` source: newline-delimited JSON from a file, a glob or stdin.
//!
//! ```toml
//! [sources.replay]
//! type = "file"
//! path = "events/*.ndjson"   # a path, a glob, or "-" for stdin
//! at_end = "stop"            # "stop": finish when read (replay); "follow": tail
//! ```
//!
//! Files are read in sorted path order by a dedicated thread (reading and JSON
//! decoding are blocking, CPU-heavy work that must not stall an actor thread),
//! which hands full batches to the source's actor through a bounded channel and
//! so stops reading when the topology is backpressured.
//!
//! Every line becomes an event or a rejection — nothing is skipped silently
//! except blank lines. Rejections carry `{raw, file, line}` and one of the
//! reasons `invalid_utf8`, `malformed_json`, `not_an_object`, `line_too_long`
//! (longer than `max_line_bytes`; only its first KiB is kept).
//!
//! With `at_end = "follow"` the source keeps polling for appended lines and for
//! new files matching the glob; a file that shrank is taken as rotated and read
//! again from the start. A partial last line is held back until its newline
//! arrives. Acknowledgements count delivered and failed events for the final
//! report.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ack::{Ack, BatchStatus};
use crate::component::{BuildContext, Outputs, Source, SourceContext, SourceError, SourceSender};
use crate::config::{ByteSize, ConfigDuration, FieldError};
use crate::event::{Event, EventParseError};
use crate::shutdown::ShutdownSignal;

/// How much of a line that cannot be decoded is kept in its rejection record.
const RAW_KEEP: usize = 1024;

/// What to do after the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AtEnd {
    /// Finish when everything was read: replay and backfill.
    #[default]
    Stop,
    /// Keep watching for new lines and files, like `tail -F`.
    Follow,
}

/// `[sources.<id>]` with `type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A file, a glob (`events/*.ndjson`), or `-` for standard input.
    pub path: String,
    /// `stop` (default) or `follow`.
    #[serde(default)]
    pub at_end: AtEnd,
    /// Lines longer than this are rejected as `line_too_long` (default 1 MiB).
    #[serde(default = "default_max_line")]
    pub max_line_bytes: ByteSize,
    /// How often `follow` looks for new data (default 250ms).
    #[serde(default = "default_poll")]
    pub poll_interval: ConfigDuration,
}

fn default_max_line() -> ByteSize {
    ByteSize(1 << 20)
}

fn default_poll() -> ConfigDuration {
    ConfigDuration(Duration::from_millis(250))
}

impl FileSourceConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![String::new(), crate::component::REJECTED.to_owned()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.path.is_empty() {
            errors.push(FieldError::new(
                "path",
                "path is empty (a file, a glob, or \"-\" for stdin)",
            ));
        } else if self.path != "-" {
            if let Err(err) = glob::Pattern::new(&self.path) {
                errors.push(FieldError::new(
                    "path",
                    format!("path \"{}\" is not a valid glob: {err}", self.path),
                ));
            }
        }
        if self.path == "-" && self.at_end == AtEnd::Follow {
            errors.push(FieldError::new(
                "at_end",
                "at_end \"follow\" cannot be used with path \"-\" (stdin is read until it closes)",
            ));
        }
        if self.max_line_bytes.0 == 0 {
            errors.push(FieldError::new(
                "max_line_bytes",
                "max_line_bytes must be greater than 0",
            ));
        }
        if self.poll_interval.0.is_zero() {
            errors.push(FieldError::new(
                "poll_interval",
                "poll_interval must be greater than 0",
            ));
        }
        errors
    }

    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Source>, String> {
        Ok(Box::new(FileSource {
            config: self.clone(),
        }))
    }
}

/// A running `file` source.
pub struct FileSource {
    config: FileSourceConfig,
}

/// Events read and acknowledged, shared with the acknowledgement callbacks.
#[derive(Default)]
struct Progress {
    lines: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    batches_sent: AtomicU64,
    batches_done: AtomicU64,
}

impl Source for FileSource {
    fn run(
        self: Box<Self>,
        cx: SourceContext,
    ) -> futures::future::BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let progress = Arc::new(Progress::default());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let id = cx.id.clone();
            let thread_progress = progress.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("source-{id}"))
                .spawn(move || {
                    let mut reader = Reader {
                        config: self.config,
                        out: cx.out,
                        shutdown: cx.shutdown,
                        batch_size: cx.batch_size.max(1),
                        progress: thread_progress,
                        pending: None,
                    };
                    // The receiver only goes away if the actor stopped; then
                    // nobody is left to tell.
                    let _ = done_tx.send(reader.run());
                });
            if let Err(err) = spawned {
                return Err(SourceError(format!(
                    "could not start the reading thread: {err}"
                )));
            }
            let result = done_rx
                .await
                .unwrap_or_else(|_| Err(SourceError("the reading thread panicked".into())));
            // Wait (bounded) for the acknowledgements of what was read, to report them.
            for _ in 0..600 {
                let p = &progress;
                if p.batches_done.load(Ordering::Acquire) >= p.batches_sent.load(Ordering::Acquire)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tracing::info!(
                component_id = %id,
                lines = progress.lines.load(Ordering::Relaxed),
                delivered = progress.delivered.load(Ordering::Relaxed),
                failed = progress.failed.load(Ordering::Relaxed),
                "file source finished reading"
            );
            result
        })
    }
}

/// One line, as found by [`read_line`].
enum Line {
    /// A complete line (without its newline) is in the buffer.
    Complete,
    /// The line was longer than the limit; the buffer holds its first bytes.
    TooLong(u64),
    /// End of input; the buffer holds a final line with no newline, if any.
    Eof,
}

/// Reads the rest of one line, appending to `buf` (which may hold the start of
/// the line from an earlier poll), keeping at most `max` bytes in memory however
/// long the line is. Returns what was found and how many bytes were consumed.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<(Line, u64)> {
    let mut total = buf.len() as u64;
    let mut consumed: u64 = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            let line = if total > max as u64 {
                Line::TooLong(total)
            } else {
                Line::Eof
            };
            return Ok((line, consumed));
        }
        let (chunk, found) = match memchr(b'\n', available) {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len() as u64;
        let used = chunk.len() + usize::from(found);
        reader.consume(used);
        consumed += used as u64;
        if found {
            let line = if total > max as u64 {
                Line::TooLong(total)
            } else {
                Line::Complete
            };
            return Ok((line, consumed));
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// The blocking reader.
struct Reader {
    config: FileSourceConfig,
    out: SourceSender,
    shutdown: ShutdownSignal,
    batch_size: usize,
    progress: Arc<Progress>,
    pending: Option<Outputs>,
}

/// The reader should stop: shutdown, or the topology is gone.
struct Stop;

impl Reader {
    fn run(&mut self) -> Result<(), SourceError> {
        let result = if self.config.path == "-" {
            let stdin = io::stdin();
            let mut lock = stdin.lock();
            self.read_stream(&mut lock, "-").map(|_| ())
        } else {
            self.read_files()
        };
        match result {
            Ok(()) | Err(ReadError::Stop(Stop)) => {
                // A final flush; if the topology is gone there is no one to send to.
                let _ = self.flush();
                Ok(())
            }
            Err(ReadError::Source(err)) => {
                // Hand over what was read before the error.
                let _ = self.flush();
                Err(err)
            }
        }
    }

    fn matching_files(&self) -> Result<Vec<PathBuf>, SourceError> {
        let path = &self.config.path;
        let is_glob = path.contains(['*', '?', '[']);
        if !is_glob {
            return Ok(vec![PathBuf::from(path)]);
        }
        let entries = glob::glob(path).map_err(|e| SourceError(format!("path \"{path}\": {e}")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    }

    fn read_files(&mut self) -> Result<(), ReadError> {
        let files = self.matching_files()?;
        let follow = self.config.at_end == AtEnd::Follow;
        if files.is_empty() && !follow {
            return Err(
                SourceError(format!("no file matches path \"{}\"", self.config.path)).into(),
            );
        }
        let mut tailed: Vec<Tailed> = Vec::new();
        for path in files {
            let tail = self.open_and_read(&path)?;
            tailed.push(tail);
        }
        if !follow {
            return Ok(());
        }
        loop {
            self.flush()?;
            std::thread::sleep(self.config.poll_interval.0);
            if self.shutdown.is_triggered() {
                return Err(Stop.into());
            }
            for tail in &mut tailed {
                self.poll_tail(tail)?;
            }
            for path in self.matching_files()? {
                if !tailed.iter().any(|t| t.path == path) {
                    let tail = self.open_and_read(&path)?;
                    tailed.push(tail);
                }
            }
        }
    }

    fn open_and_read(&mut self, path: &Path) -> Result<Tailed, ReadError> {
        let file = File::open(path)
            .map_err(|e| SourceError(format!("opening {}: {e}", path.display())))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let name = path.display().to_string();
        let (line, position, partial) = self.read_stream(&mut reader, &name)?;
        Ok(Tailed {
            path: path.to_owned(),
            reader,
            line,
            position,
            partial,
        })
    }

    fn poll_tail(&mut self, tail: &mut Tailed) -> Result<(), ReadError> {
        let len = match std::fs::metadata(&tail.path) {
            Ok(meta) => meta.len(),
            // Removed between polls: keep the handle, a new file will be found by the glob.
            Err(_) => return Ok(()),
        };
        if len < tail.position {
            tracing::info!(file = %tail.path.display(), "file shrank: reading it again from the start");
            let file = File::open(&tail.path)
                .map_err(|e| SourceError(format!("reopening {}: {e}", tail.path.display())))?;
            tail.reader = BufReader::with_capacity(256 * 1024, file);
            tail.reader
                .seek(SeekFrom::Start(0))
                .map_err(|e| SourceError(format!("seeking {}: {e}", tail.path.display())))?;
            tail.position = 0;
            tail.line = 0;
            tail.partial.clear();
        }
        let name = tail.path.display().to_string();
        let start_line = tail.line;
        let (lines, position) = self.read_from(
            &mut tail.reader,
            &name,
            start_line,
            tail.position,
            &mut tail.partial,
        )?;
        tail.line = lines;
        tail.position = position;
        Ok(())
    }

    /// Reads `reader` to its current end; returns lines read and bytes consumed.
    fn read_stream(
        &mut self,
        reader: &mut impl BufRead,
        name: &str,
    ) -> Result<(u64, u64, Vec<u8>), ReadError> {
        let mut carry = Vec::new();
        let (lines, position) = self.read_from(reader, name, 0, 0, &mut carry)?;
        Ok((lines, position, carry))
    }

    /// Reads from `reader` until its current end. `carry` holds a partial last
    /// line between polls in `follow` mode; at the end of a replay it is a line
    /// of its own.
    fn read_from(
        &mut self,
        reader: &mut impl BufRead,
        name: &str,
        mut line_no: u64,
        mut position: u64,
        carry: &mut Vec<u8>,
    ) -> Result<(u64, u64), ReadError> {
        let max = self.config.max_line_bytes.0.min(usize::MAX as u64) as usize;
        let follow = self.config.at_end == AtEnd::Follow;
        let mut buf = std::mem::take(carry);
        loop {
            let (outcome, consumed) = read_line(reader, &mut buf, max)
                .map_err(|e| SourceError(format!("reading {name}: {e}")))?;
            position += consumed;
            match outcome {
                Line::Eof if buf.is_empty() => return Ok((line_no, position)),
                Line::Eof if follow => {
                    // A partial line: keep it until its newline arrives.
                    *carry = buf;
                    return Ok((line_no, position));
                }
                Line::Eof => {
                    line_no += 1;
                    self.line(&buf, name, line_no)?;
                    return Ok((line_no, position));
                }
                Line::Complete => {
                    line_no += 1;
                    self.line(&buf, name, line_no)?;
                }
                Line::TooLong(total) => {
                    line_no += 1;
                    let mut event = raw_record(&buf[..buf.len().min(RAW_KEEP)], name, line_no);
                    event
                        .fields_mut()
                        .insert("bytes".into(), Value::from(total));
                    let message = format!(
                        "line {line_no} of {name} is {total} bytes, over max_line_bytes ({max})"
                    );
                    self.outputs().reject(event, "line_too_long", message);
                    self.progress.lines.fetch_add(1, Ordering::Relaxed);
                    self.maybe_send()?;
                }
            }
            buf.clear();
        }
    }

    fn outputs(&mut self) -> &mut Outputs {
        let out = &self.out;
        self.pending.get_or_insert_with(|| out.outputs())
    }

    /// Decodes one line into an event or a rejection.
    fn line(&mut self, bytes: &[u8], name: &str, line_no: u64) -> Result<(), ReadError> {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.progress.lines.fetch_add(1, Ordering::Relaxed);
        match std::str::from_utf8(bytes) {
            Err(err) => {
                let event = raw_record(&bytes[..bytes.len().min(RAW_KEEP)], name, line_no);
                self.outputs().reject(
                    event,
                    "invalid_utf8",
                    format!("line is not valid UTF-8: {err}"),
                );
            }
            Ok(text) => match Event::from_json(text) {
                Ok(event) => self.outputs().push(0, event),
                Err(err) => {
                    let event = raw_record(&bytes[..bytes.len().min(RAW_KEEP)], name, line_no);
                    let reason = err.reason();
                    let message = match err {
                        EventParseError::Malformed(m) => {
                            format!("line {line_no} of {name}: malformed JSON: {m}")
                        }
                        EventParseError::NotAnObject(kind) => format!(
                            "line {line_no} of {name}: expected a JSON object, found {kind}"
                        ),
                    };
                    self.outputs().reject(event, reason, message);
                }
            },
        }
        self.maybe_send()
    }

    fn maybe_send(&mut self) -> Result<(), ReadError> {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.len() >= self.batch_size)
        {
            self.flush()?;
            if self.shutdown.is_triggered() {
                return Err(Stop.into());
            }
        }
        Ok(())
    }

    /// Sends the pending batch, waiting for room downstream.
    fn flush(&mut self) -> Result<(), ReadError> {
        let Some(outputs) = self.pending.take() else {
            return Ok(());
        };
        if outputs.is_empty() {
            return Ok(());
        }
        let count = outputs.len() as u64;
        let progress = self.progress.clone();
        let ack = Ack::new(move |status| {
            match status {
                BatchStatus::Delivered => progress.delivered.fetch_add(count, Ordering::Relaxed),
                _ => progress.failed.fetch_add(count, Ordering::Relaxed),
            };
            progress.batches_done.fetch_add(1, Ordering::Release);
        });
        self.progress.batches_sent.fetch_add(1, Ordering::Release);
        self.out
            .blocking_send(outputs, ack)
            .map_err(|_| ReadError::Stop(Stop))
    }
}

/// A followed file.
struct Tailed {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
    position: u64,
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
}

enum ReadError {
    Stop(Stop),
    Source(SourceError),
}

impl From<Stop> for ReadError {
    fn from(stop: Stop) -> Self {
        ReadError::Stop(stop)
    }
}

impl From<SourceError> for ReadError {
    fn from(err: SourceError) -> Self {
        ReadError::Source(err)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn read_line_bounds_memory_and_reports_length() {
        let data = b"short\n0123456789abcdef\nlast";
        let mut r = BufReader::with_capacity(4, Cursor::new(&data[..]));
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf, 8).unwrap(),
            (Line::Complete, 6)
        ));
        assert_eq!(buf, b"short");
        buf.clear();
        match read_line(&mut r, &mut buf, 8).unwrap() {
            (Line::TooLong(n), consumed) => assert_eq!((n, consumed), (16, 17)),
            _ => panic!("expected too long"),
        }
        assert!(buf.len() <= 9);
        buf.clear();
        assert!(matches!(
            read_line(&mut r, &mut buf, 8).unwrap(),
            (Line::Eof, 4)
        ));
        assert_eq!(buf, b"last");
        // A partial line carried over is completed by the next read.
        let mut r = BufReader::new(Cursor::new(&b"rest\n"[..]));
        let mut buf = b"par".to_vec();
        assert!(matches!(
            read_line(&mut r, &mut buf, 8).unwrap(),
            (Line::Complete, 5)
        ));
        assert_eq!(buf, b"parrest");
    }

    #[test]
    fn validate_rejects_follow_on_stdin() {
        let c = FileSourceConfig {
            path: "-".into(),
            at_end: AtEnd::Follow,
            max_line_bytes: default_max_line(),
            poll_interval: default_poll(),
        };
        assert_eq!(c.validate()[0].field, "at_end");
    }
}
