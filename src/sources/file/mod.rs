//! The `file` source: newline-delimited JSON from a file, a glob or stdin.
//!
//! ```toml
//! [sources.replay]
//! type = "file"
//! path = "events/*.ndjson"   # a path, a glob, or "-" for stdin
//! at_end = "stop"            # "stop": finish when read (replay); "follow": tail
//! ```
//!
//! Files are read in sorted path order by a dedicated thread ([`reader`]) that
//! cuts them into chunks of raw lines and hands each to a decoding task, one
//! per engine thread, choosing the thread that has been least busy lately
//! ([`lanes`]; [`decode`]: JSON parsing is the expensive part of a replay, so
//! it is spread over the cores); the decoded batches are put back in reading
//! order and handed to the source's actor. Every hand-off is bounded (a queue
//! one chunk deep per decoder, two decoded batches, and a window on chunks read
//! but not yet forwarded), so the whole source stops reading when the topology
//! is backpressured.
//!
//! Decoding runs on the engine's threads rather than threads of its own: on two
//! cores, a third busy thread kept one core idle a fifth of the time (a thread
//! woken onto the busy core waits there while the other idles; sched_switch
//! traces). Sessionize replay 1.30 s instead of 1.46 s, core topology 0.50 s
//! instead of 0.56 s (medians of five alternating runs of 300,000 events,
//! 2026-12-04). A chunk is at most `batch_size` lines and about 1 MiB, so
//! decoding one holds a thread about as long as a component's batch does.
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

pub mod decode;
mod lanes;
pub mod reader;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::ack::{Ack, BatchStatus};
use crate::component::{BuildContext, Outputs, Source, SourceContext, SourceError};
use crate::config::{ByteSize, ConfigDuration, FieldError};
use decode::{decode, InOrder, RawChunk};
use lanes::{Lanes, ThreadClock};
use reader::Reader;

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
    /// Decoding tasks parsing JSON in parallel, spread over the engine's
    /// threads (default: one per engine thread).
    #[serde(default)]
    pub decoders: Option<usize>,
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
        if self.decoders == Some(0) {
            errors.push(FieldError::new("decoders", "decoders must be at least 1"));
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

/// Closes the reading window when the source's task ends.
struct CloseOnDrop(Arc<Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Decoded batches waiting for the source's actor.
const DECODED_AHEAD: usize = 2;

/// Events read and acknowledged, shared with the acknowledgement callbacks.
#[derive(Default)]
struct Progress {
    lines: Arc<AtomicU64>,
    delivered: AtomicU64,
    failed: AtomicU64,
    batches_sent: AtomicU64,
    batches_done: AtomicU64,
}

impl Source for FileSource {
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(self.run_source(cx))
    }
}

impl FileSource {
    async fn run_source(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        // One decoding task per engine thread unless configured.
        let decoders = self.config.decoders.unwrap_or(cx.workers.len()).max(1);
        let progress = Arc::new(Progress::default());
        // Decoded chunks wait here for their turn. Two deep: decoded events
        // waiting longer fall out of the cache before the components read
        // them (four deep was 9% slower on the sessionize replay).
        let (decoded_tx, mut decoded_rx) = mpsc::channel::<(u64, Outputs)>(DECODED_AHEAD);
        let (done_tx, done_rx) = oneshot::channel();
        let mut lanes = start_decoders(&cx, decoders, self.config.max_line_bytes.0, &decoded_tx);
        drop(decoded_tx);
        // Chunks read and not yet forwarded in order: decoders may finish
        // out of order, and this bounds how many the in-order buffer holds.
        let window = Arc::new(Semaphore::new(decoders + DECODED_AHEAD + 1));
        let reader_window = window.clone();
        // However this task ends (finished, or dropped by a restart), the
        // reader must not wait for room that will never come.
        let _close_window = CloseOnDrop(window.clone());
        let handoff: reader::Handoff = Box::new(move |chunk: RawChunk| {
            // Closed when the source stopped forwarding: stop reading.
            match futures::executor::block_on(reader_window.acquire()) {
                Ok(permit) => permit.forget(),
                Err(_) => return false,
            }
            lanes.send(chunk)
        });

        let mut reader = Reader::new(
            self.config.clone(),
            handoff,
            cx.shutdown.clone(),
            cx.batch_size,
            progress.lines.clone(),
        );
        spawn_thread(format!("source-{}", cx.id), move || {
            // The receiver only goes away if the source's task is gone.
            let _ = done_tx.send(reader.run());
        })?;

        // Forward decoded batches downstream in reading order.
        let mut in_order = InOrder::default();
        while let Some((seq, outputs)) = decoded_rx.recv().await {
            in_order.insert(seq, outputs);
            while let Some(outputs) = in_order.pop() {
                window.add_permits(1);
                if outputs.is_empty() {
                    continue;
                }
                let ack = progress_ack(&progress, outputs.len() as u64);
                if cx.out.send(outputs, ack).await.is_err() {
                    break;
                }
            }
        }
        if in_order.held() > 0 {
            tracing::error!(component_id = %cx.id, held = in_order.held(), "decoded batches were left out of order: a decoder stopped early");
        }
        let result = done_rx
            .await
            .unwrap_or_else(|_| Err(SourceError("the reading thread panicked".into())));
        // Report what happened to the batches once their acknowledgements are in
        // (bounded: a stuck sink does not hold the report forever).
        drop(cx.out);
        for _ in 0..600 {
            let p = &progress;
            if p.batches_done.load(Ordering::Acquire) >= p.batches_sent.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(
            component_id = %cx.id,
            lines = progress.lines.load(Ordering::Relaxed),
            delivered = progress.delivered.load(Ordering::Relaxed),
            failed = progress.failed.load(Ordering::Relaxed),
            "file source finished reading"
        );
        result
    }
}

/// Starts `decoders` decoding tasks spread over the engine's threads, each
/// sending what it decodes to `decoded`; gives the reader's side.
fn start_decoders(
    cx: &SourceContext,
    decoders: usize,
    max_line_bytes: u64,
    decoded: &mpsc::Sender<(u64, Outputs)>,
) -> Lanes {
    let mut lanes = Lanes::new();
    for n in 0..decoders {
        let (chunk_tx, mut chunk_rx) = mpsc::channel::<RawChunk>(1);
        let clock = Arc::new(ThreadClock::default());
        lanes.add(chunk_tx, clock.clone());
        let decoded = decoded.clone();
        let template = cx.out.clone();
        let decoding = async move {
            clock.publish_current();
            while let Some(chunk) = chunk_rx.recv().await {
                let mut out = template.outputs();
                decode(&chunk, max_line_bytes, &mut out);
                if decoded.send((chunk.seq, out)).await.is_err() {
                    return; // the source's task is gone: nothing to decode for
                }
            }
        };
        match cx.workers.get(n % cx.workers.len().max(1)) {
            Some(worker) => {
                worker.spawn(decoding);
            }
            // No engine threads given (not in a topology): this one.
            None => {
                actix::spawn(decoding);
            }
        }
    }
    lanes
}

fn spawn_thread(name: String, work: impl FnOnce() + Send + 'static) -> Result<(), SourceError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(work)
        .map(|_| ())
        .map_err(|err| SourceError(format!("could not start thread {name}: {err}")))
}

/// An acknowledgement that counts the batch's events as delivered or failed.
fn progress_ack(progress: &Arc<Progress>, count: u64) -> Ack {
    progress.batches_sent.fetch_add(1, Ordering::Release);
    let progress = progress.clone();
    Ack::new(move |status| {
        match status {
            BatchStatus::Delivered => progress.delivered.fetch_add(count, Ordering::Relaxed),
            _ => progress.failed.fetch_add(count, Ordering::Relaxed),
        };
        progress.batches_done.fetch_add(1, Ordering::Release);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_follow_on_stdin_and_zero_decoders() {
        let c = FileSourceConfig {
            path: "-".into(),
            at_end: AtEnd::Follow,
            max_line_bytes: default_max_line(),
            poll_interval: default_poll(),
            decoders: Some(0),
        };
        let fields: Vec<String> = c.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["at_end", "decoders"]);
    }
}
