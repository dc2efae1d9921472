//! The `file` source's reading thread: finds the files, follows them, and cuts
//! what it reads into numbered [`RawChunk`]s of raw lines for the decoders.
//!
//! Lines are bounded by `max_line_bytes` while they are read (a longer line is
//! kept as its first KiB plus its length, never buffered whole). In `follow`
//! mode a partial last line is held until its newline arrives, new files
//! matching the glob are picked up, and a file that shrank is taken as rotated
//! and read again from the start.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::decode::{RawChunk, RAW_KEEP};
use super::{AtEnd, FileSourceConfig};
use crate::component::SourceError;
use crate::shutdown::ShutdownSignal;

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
        let (chunk, found) = match memchr::memchr(b'\n', available) {
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

/// A chunk is handed on once it holds this many bytes, even short of
/// `batch_size` lines: it bounds the memory a chunk holds and how long
/// decoding it keeps an engine thread.
const CHUNK_BYTES: usize = 1 << 20;

/// Where the reader's chunks go (to the decoding tasks); `false` when nobody
/// takes them any more (the source is gone).
pub type Handoff = Box<dyn FnMut(RawChunk) -> bool + Send>;

/// The blocking reader: cuts its input into numbered chunks of raw lines.
pub struct Reader {
    config: FileSourceConfig,
    work: Handoff,
    shutdown: ShutdownSignal,
    batch_size: usize,
    /// Lines read (blank ones excluded), for the final report.
    lines: Arc<AtomicU64>,
    chunk: RawChunk,
    next_seq: u64,
}

/// The reader should stop: shutdown, or the topology is gone.
struct Stop;

impl Reader {
    pub fn new(
        config: FileSourceConfig,
        work: Handoff,
        shutdown: ShutdownSignal,
        batch_size: usize,
        lines: Arc<AtomicU64>,
    ) -> Self {
        Reader {
            config,
            work,
            shutdown,
            batch_size: batch_size.max(1),
            lines,
            chunk: RawChunk::default(),
            next_seq: 0,
        }
    }

    /// Reads everything (or until shutdown), handing chunks to the decoders.
    pub fn run(&mut self) -> Result<(), SourceError> {
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
                    let kept = &buf[..buf.len().min(RAW_KEEP)];
                    self.push(name, line_no, kept, Some(total))?;
                }
            }
            buf.clear();
        }
    }

    /// Adds one line to the pending chunk.
    fn line(&mut self, bytes: &[u8], name: &str, line_no: u64) -> Result<(), ReadError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.push(name, line_no, bytes, None)
    }

    fn push(
        &mut self,
        name: &str,
        line_no: u64,
        bytes: &[u8],
        too_long: Option<u64>,
    ) -> Result<(), ReadError> {
        if *self.chunk.file != *name {
            // A chunk holds lines of one file, so records can name it once.
            self.flush()?;
            self.chunk.file = name.into();
        }
        self.chunk.push(line_no, bytes, too_long);
        self.lines.fetch_add(1, Ordering::Relaxed);
        if self.chunk.len() >= self.batch_size || self.chunk.bytes.len() >= CHUNK_BYTES {
            self.flush()?;
            if self.shutdown.is_triggered() {
                return Err(Stop.into());
            }
        }
        Ok(())
    }

    /// Hands the pending chunk to the decoders, waiting for room.
    fn flush(&mut self) -> Result<(), ReadError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = RawChunk {
            file: self.chunk.file.clone(),
            bytes: Vec::with_capacity(self.chunk.bytes.len()),
            lines: Vec::with_capacity(self.batch_size),
            seq: 0,
        };
        let mut chunk = std::mem::replace(&mut self.chunk, next);
        chunk.seq = self.next_seq;
        self.next_seq += 1;
        if (self.work)(chunk) {
            Ok(())
        } else {
            Err(ReadError::Stop(Stop))
        }
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
    fn chunks_are_cut_by_lines_or_bytes_and_numbered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        let big = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(300 * 1024));
        let mut text = String::new();
        for _ in 0..10 {
            text.push_str(&big);
        }
        for n in 0..5 {
            text.push_str(&format!("{{\"n\":{n}}}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let config: FileSourceConfig =
            toml::from_str(&format!("path = {:?}", path.display().to_string())).unwrap();
        let chunks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let taken = chunks.clone();
        let handoff: Handoff = Box::new(move |chunk| {
            taken.lock().unwrap().push(chunk);
            true
        });
        let (_stop, signal) = crate::shutdown::Shutdown::new();
        let lines = Arc::new(AtomicU64::new(0));
        let mut reader = Reader::new(config, handoff, signal, 5, lines.clone());
        assert!(reader.run().is_ok());
        let chunks = chunks.lock().unwrap();
        let shape: Vec<(u64, Vec<u64>)> = chunks
            .iter()
            .map(|c| (c.seq, c.lines.iter().map(|l| l.line_no).collect()))
            .collect();
        // Four 300 KiB lines pass 1 MiB; five lines fill a batch.
        assert_eq!(
            shape,
            [
                (0, vec![1, 2, 3, 4]),
                (1, vec![5, 6, 7, 8]),
                (2, vec![9, 10, 11, 12, 13]),
                (3, vec![14, 15]),
            ]
        );
        assert_eq!(lines.load(Ordering::Relaxed), 15);
    }
}
