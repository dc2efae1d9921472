//! `file` sink: appends events as NDJSON to files whose paths are templated by
//! event fields and event time, partitioned the way an S3 fan-out would be.
//!
//! ```toml
//! [sinks.orders]
//! type = "file"
//! inputs = ["by_event.orders"]
//! path = "out/{userId}/{event}/%Y/%m/%d/%H.ndjson"
//! time_field = "timestamp"   # optional, the default
//! max_open_files = 256       # optional, the default
//! ```
//!
//! The path template, parsed once at build time:
//!
//! * `{a.b}` is replaced by that field of the event: strings as they are,
//!   numbers and booleans as text. A missing, null or empty value, an object or
//!   an array, renders as `_`. Substituted values are sanitized so data cannot
//!   leave the directory the template names: `/`, `\`, NUL and other control
//!   characters become `_`, as does a leading `.` (so a value can never be `..`
//!   or a hidden file), and a value is cut to 200 bytes to stay a legal file name.
//! * When the template contains `%`, strftime specifiers (`%Y`, `%m`, `%d`,
//!   `%H`, `%M`, `%S`, `%j`, ...; `%%` is a literal `%`) are expanded from the
//!   event's time: the RFC 3339 string at `time_field`, converted to UTC. An
//!   event whose time is absent or unparseable is filed under the time it is
//!   written instead.
//!
//! Contract: `write` groups the batch by rendered path and appends each group
//! to its file with a single write (files are opened in append mode,
//! directories created as needed). `Ok` means every line of the batch was
//! handed to the operating system; there is no fsync per batch, and `flush`
//! syncs every open file to disk. A write that fails part-way may leave
//! earlier groups of the batch written; the engine retries the whole batch,
//! so delivery is at least once. At most `max_open_files` files are open at a
//! time: the least recently used is closed first.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use futures::future::{self, BoxFuture};
use serde::Deserialize;
use serde_json::Value;

use crate::component::{BuildContext, Sink, SinkError, REJECTED};
use crate::config::FieldError;
use crate::event::{Event, FieldPath};

/// What a substituted field renders as when it has no usable value.
const MISSING: &str = "_";

/// Longest a substituted value may be, in bytes; file names are limited to 255.
const MAX_VALUE_BYTES: usize = 200;

/// `[sinks.<id>]` with `type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Path template: `{field.path}` placeholders and strftime specifiers.
    pub path: String,
    /// Field holding the event's RFC 3339 time, used for strftime specifiers.
    #[serde(default = "default_time_field")]
    pub time_field: FieldPath,
    /// Most files held open at once; the least recently used is closed first.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
}

fn default_time_field() -> FieldPath {
    // A constant, valid path.
    FieldPath::parse("timestamp").expect("\"timestamp\" is a valid field path")
}

fn default_max_open_files() -> usize {
    256
}

impl FileSinkConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![REJECTED.to_string()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = PathTemplate::parse(&self.path) {
            errors.push(FieldError::new("path", message));
        }
        if self.max_open_files == 0 {
            errors.push(FieldError::new(
                "max_open_files",
                "max_open_files is 0, but at least one file must be open to write (try 256)",
            ));
        }
        errors
    }

    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Sink>, String> {
        Ok(Box::new(FileSink {
            template: PathTemplate::parse(&self.path)?,
            time_field: self.time_field.clone(),
            files: OpenFiles::new(self.max_open_files.max(1)),
            path: String::new(),
            groups: Vec::new(),
            groups_used: 0,
            group_by_path: HashMap::new(),
        }))
    }
}

/// One piece of a path template.
#[derive(Debug)]
enum Segment {
    Literal(String),
    Field(FieldPath),
    /// Text with strftime specifiers, expanded from the event's time.
    Time(Vec<Item<'static>>),
}

/// A parsed path template.
#[derive(Debug)]
struct PathTemplate {
    segments: Vec<Segment>,
    uses_time: bool,
}

impl PathTemplate {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("path is empty; give a file path such as \"out/%Y-%m-%d.ndjson\"".into());
        }
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = rest.find(['{', '}']).unwrap_or(rest.len());
            if next > 0 {
                segments.push(Self::text_segment(text, &rest[..next])?);
            }
            rest = &rest[next..];
            if rest.starts_with('}') {
                let at = text.len() - rest.len();
                return Err(format!(
                    "path \"{text}\" has a \"}}\" at byte {at} with no opening \"{{\""
                ));
            }
            if let Some(after) = rest.strip_prefix('{') {
                let Some(close) = after.find('}') else {
                    let at = text.len() - rest.len();
                    return Err(format!(
                        "path \"{text}\" has a \"{{\" at byte {at} with no closing \"}}\""
                    ));
                };
                let field = FieldPath::parse(&after[..close]).map_err(|err| {
                    format!(
                        "path \"{text}\": placeholder {{{}}}: {err}",
                        &after[..close]
                    )
                })?;
                segments.push(Segment::Field(field));
                rest = &after[close + 1..];
            }
        }
        let uses_time = segments.iter().any(|s| matches!(s, Segment::Time(_)));
        Ok(PathTemplate {
            segments,
            uses_time,
        })
    }

    /// Literal text, or strftime items when it holds a `%`.
    fn text_segment(template: &str, chunk: &str) -> Result<Segment, String> {
        if !chunk.contains('%') {
            return Ok(Segment::Literal(chunk.to_owned()));
        }
        StrftimeItems::new(chunk)
            .parse_to_owned()
            .map(Segment::Time)
            .map_err(|_| match bad_specifier(chunk) {
                Some(spec) => {
                    format!("path \"{template}\" has \"{spec}\", which is not a strftime specifier")
                }
                None => {
                    format!("path \"{template}\" has an invalid strftime specifier in \"{chunk}\"")
                }
            })
    }

    /// Appends the path for `event` to `out`. `time` is the event's time; it
    /// may be `None` only when the template has no strftime parts.
    fn render(&self, event: &Event, time: Option<DateTime<Utc>>, out: &mut String) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                // Strings, the usual case, are read without building a value.
                Segment::Field(path) => match event.get_str(path) {
                    Some(text) => push_sanitized(out, text),
                    None => push_value(out, event.get(path)),
                },
                Segment::Time(items) => {
                    if let Some(time) = time {
                        // Formatting into a String cannot fail; the items were
                        // checked when the template was parsed.
                        let _ = write!(out, "{}", time.format_with_items(items.iter()));
                    }
                }
            }
        }
    }
}

/// The first `%...` specifier in `chunk` that chrono refuses, for messages.
fn bad_specifier(chunk: &str) -> Option<&str> {
    let mut rest = chunk;
    while let Some(start) = rest.find('%') {
        let spec = &rest[start..];
        // A specifier ends at its first letter or `%` after the leading `%`
        // (modifiers such as `%-d`, `%.3f`, `%:z` come before it).
        let end = spec[1..]
            .find(|c: char| c.is_ascii_alphabetic() || c == '%')
            .map_or(spec.len(), |i| i + 1 + 1);
        let spec = &spec[..end.min(spec.len())];
        if StrftimeItems::new(spec).any(|item| matches!(item, Item::Error)) {
            return Some(spec);
        }
        rest = &rest[start + spec.len()..];
    }
    None
}

/// Appends a field's value, sanitized so it stays one harmless path component.
fn push_value(out: &mut String, value: Option<&Value>) {
    match value {
        Some(Value::String(text)) => push_sanitized(out, text),
        // Numbers and booleans hold no separators and never start with `.`.
        Some(Value::Number(number)) => {
            let _ = write!(out, "{number}"); // writing to a String cannot fail
        }
        Some(Value::Bool(flag)) => out.push_str(if *flag { "true" } else { "false" }),
        Some(Value::Null | Value::Array(_) | Value::Object(_)) | None => out.push_str(MISSING),
    }
}

fn push_sanitized(out: &mut String, text: &str) {
    let start = out.len();
    for (at, c) in text.char_indices() {
        if at + c.len_utf8() > MAX_VALUE_BYTES {
            break;
        }
        let safe = match c {
            '/' | '\\' => '_',
            '.' if at == 0 => '_',
            c if c.is_control() => '_', // includes NUL
            c => c,
        };
        out.push(safe);
    }
    if out.len() == start {
        out.push_str(MISSING);
    }
}

/// The event's time from `field`, in UTC.
fn event_time(event: &Event, field: &FieldPath) -> Option<DateTime<Utc>> {
    let text = event.get_str(field)?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// The lines of one batch bound for one file.
#[derive(Default)]
struct Group {
    path: String,
    lines: Vec<u8>,
}

/// The running sink.
struct FileSink {
    template: PathTemplate,
    time_field: FieldPath,
    files: OpenFiles,
    /// Scratch space for rendering one path.
    path: String,
    /// Reused across batches; the first `groups_used` belong to this batch.
    groups: Vec<Group>,
    groups_used: usize,
    group_by_path: HashMap<String, usize>,
}

impl FileSink {
    fn write_batch(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.group_by_path.clear();
        self.groups_used = 0;
        // Read once per batch, and only if some event has no usable time.
        let mut written_at = None;
        for event in events {
            let time = self.template.uses_time.then(|| {
                event_time(event, &self.time_field)
                    .unwrap_or_else(|| *written_at.get_or_insert_with(Utc::now))
            });
            self.path.clear();
            self.template.render(event, time, &mut self.path);
            let group = self.group_for_path();
            event.write_json_line(&mut self.groups[group].lines);
        }
        for group in &self.groups[..self.groups_used] {
            self.files
                .append(&group.path, &group.lines)
                .map_err(|err| SinkError::new("io", format!("writing {}: {err}", group.path)))?;
        }
        Ok(())
    }

    /// The index of this batch's group for the path in `self.path`.
    fn group_for_path(&mut self) -> usize {
        if let Some(&index) = self.group_by_path.get(self.path.as_str()) {
            return index;
        }
        let index = self.groups_used;
        self.groups_used += 1;
        if index == self.groups.len() {
            self.groups.push(Group::default());
        }
        let group = &mut self.groups[index];
        group.path.clear();
        group.path.push_str(&self.path);
        group.lines.clear();
        self.group_by_path.insert(self.path.clone(), index);
        index
    }
}

impl Sink for FileSink {
    fn write<'a>(&'a mut self, events: &'a [Event]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(future::ready(self.write_batch(events)))
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(future::ready(self.files.sync_all()))
    }
}

/// Open files by path, bounded, closing the least recently used first.
///
/// Files are written without a `BufWriter`: each batch's lines for a file are
/// already one buffer, so a `BufWriter` would only copy them, and an unbuffered
/// `File` has nothing to flush when the batch is done.
struct OpenFiles {
    by_path: HashMap<String, OpenFile>,
    capacity: usize,
    /// Counts uses; a file's `last_used` is the count at its latest use.
    clock: u64,
}

struct OpenFile {
    file: File,
    last_used: u64,
}

impl OpenFiles {
    fn new(capacity: usize) -> Self {
        OpenFiles {
            by_path: HashMap::with_capacity(capacity.min(1024)),
            capacity,
            clock: 0,
        }
    }

    /// Appends `bytes` to the file at `path`, opening it if needed.
    fn append(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.clock += 1;
        let result = match self.by_path.get_mut(path) {
            Some(open) => {
                open.last_used = self.clock;
                open.file.write_all(bytes)
            }
            None => {
                if self.by_path.len() >= self.capacity {
                    self.close_least_recent();
                }
                let mut file = open_append(Path::new(path))?;
                let result = file.write_all(bytes);
                let last_used = self.clock;
                self.by_path
                    .insert(path.to_owned(), OpenFile { file, last_used });
                result
            }
        };
        if result.is_err() {
            // Reopen on the retry: the file may have been moved or its disk replaced.
            self.by_path.remove(path);
        }
        result
    }

    fn close_least_recent(&mut self) {
        let oldest = self
            .by_path
            .iter()
            .min_by_key(|(_, open)| open.last_used)
            .map(|(path, _)| path.clone());
        if let Some(path) = oldest {
            // Dropping the `File` closes it; it holds no buffered bytes.
            self.by_path.remove(&path);
        }
    }

    /// Syncs every open file to disk.
    fn sync_all(&mut self) -> Result<(), SinkError> {
        for (path, open) in &self.by_path {
            open.file
                .sync_data()
                .map_err(|err| SinkError::new("io", format!("syncing {path}: {err}")))?;
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_path.len()
    }
}

/// Opens `path` for appending, creating it and its directories as needed.
fn open_append(path: &Path) -> io::Result<File> {
    let open = || OpenOptions::new().create(true).append(true).open(path);
    match open() {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            open()
        }
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StateStore;
    use crate::config::{from_table, EngineConfig};

    fn config(toml_text: &str) -> FileSinkConfig {
        from_table(toml::from_str(toml_text).unwrap()).unwrap()
    }

    fn sink(path: &str, max_open_files: usize) -> FileSink {
        FileSink {
            template: PathTemplate::parse(path).unwrap(),
            time_field: default_time_field(),
            files: OpenFiles::new(max_open_files),
            path: String::new(),
            groups: Vec::new(),
            groups_used: 0,
            group_by_path: HashMap::new(),
        }
    }

    fn event(json: &str) -> Event {
        Event::from_json(json).unwrap()
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn render(template: &str, json: &str) -> String {
        let mut out = String::new();
        let time = DateTime::parse_from_rfc3339("2024-03-01T10:20:30Z")
            .unwrap()
            .to_utc();
        PathTemplate::parse(template)
            .unwrap()
            .render(&event(json), Some(time), &mut out);
        out
    }

    #[tokio::test]
    async fn groups_a_batch_by_partition_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().display();
        let mut sink = sink(&format!("{base}/{{userId}}/{{event}}.ndjson"), 16);
        let batch = [
            event(r#"{"userId":"u1","event":"Order Completed","n":1}"#),
            event(r#"{"userId":"u2","event":"Order Completed","n":2}"#),
            event(r#"{"userId":"u1","event":"Order Completed","n":3}"#),
            event(r#"{"userId":"u1","event":"Page Viewed","n":4}"#),
        ];
        sink.write(&batch).await.unwrap();
        sink.write(&batch[..1]).await.unwrap();
        sink.flush().await.unwrap();

        let u1 = lines(&dir.path().join("u1/Order Completed.ndjson"));
        let ns: Vec<_> = u1.iter().map(|v| v["n"].as_u64().unwrap()).collect();
        assert_eq!(ns, vec![1, 3, 1], "appended in batch order, across batches");
        assert_eq!(
            lines(&dir.path().join("u2/Order Completed.ndjson")).len(),
            1
        );
        assert_eq!(lines(&dir.path().join("u1/Page Viewed.ndjson"))[0]["n"], 4);
    }

    #[test]
    fn values_are_sanitized_into_one_path_component() {
        assert_eq!(render("{a}", r#"{"a":"../../etc"}"#), "_._.._etc");
        assert_eq!(render("{a}", r#"{"a":".."}"#), "_.");
        assert_eq!(render("{a}", r#"{"a":".hidden"}"#), "_hidden");
        assert_eq!(render("{a}", r#"{"a":"a\\b\u0000c\nd"}"#), "a_b_c_d");
        assert_eq!(render("{a}", r#"{"a":"v1.2"}"#), "v1.2");
        assert_eq!(
            render("{a}/{b}/{c}/{d}", r#"{"a":null,"b":"","c":[1]}"#),
            "_/_/_/_"
        );
        assert_eq!(render("{a}-{b}", r#"{"a":12.5,"b":true}"#), "12.5-true");
        assert_eq!(render("{a.b}", r#"{"a":{"b":"x"}}"#), "x");
        assert_eq!(
            render("{a}", &format!(r#"{{"a":"{}"}}"#, "é".repeat(150))).len(),
            200
        );
    }

    #[tokio::test]
    async fn data_cannot_escape_the_base_directory() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let mut sink = sink(&format!("{}/{{userId}}/x.ndjson", base.display()), 4);
        let batch = [
            event(r#"{"userId":"../../etc"}"#),
            event(r#"{"userId":".."}"#),
            event(r#"{"userId":"/abs"}"#),
        ];
        sink.write(&batch).await.unwrap();

        let outside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, vec!["base"], "nothing written beside the base");
        let mut inside: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        inside.sort();
        assert_eq!(inside, vec!["_.", "_._.._etc", "_abs"]);
    }

    #[test]
    fn strftime_parts_come_from_event_time_in_utc() {
        let mut sink = sink("out/%Y/%m/%d/%H-%j-100%%.ndjson", 1);
        let e = event(r#"{"timestamp":"2024-03-01T01:30:00.250+02:00"}"#);
        let time = event_time(&e, &sink.time_field);
        sink.template.render(&e, time, &mut sink.path);
        assert_eq!(sink.path, "out/2024/02/29/23-060-100%.ndjson");
        assert_eq!(
            render("{a}.ndjson", r#"{"a":"%Y"}"#),
            "%Y.ndjson",
            "no strftime in values"
        );
    }

    #[tokio::test]
    async fn events_without_a_usable_time_use_the_write_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&format!("{}/%Y.ndjson", dir.path().display()), 4);
        let before = Utc::now().format("%Y").to_string();
        let batch = [
            event(r#"{"a":1}"#),
            event(r#"{"timestamp":"2024-02-30T10:00:00Z"}"#),
        ];
        sink.write(&batch).await.unwrap();
        let after = Utc::now().format("%Y").to_string();
        let written: usize = [before, after]
            .iter()
            .filter_map(|year| fs::read_to_string(dir.path().join(format!("{year}.ndjson"))).ok())
            .map(|text| text.lines().count())
            .max()
            .unwrap();
        assert_eq!(written, 2);
    }

    #[tokio::test]
    async fn lru_bound_closes_files_but_keeps_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&format!("{}/{{p}}.ndjson", dir.path().display()), 2);
        let batch: Vec<Event> = (0..20)
            .map(|i| event(&format!(r#"{{"p":{},"i":{i}}}"#, i % 5)))
            .collect();
        sink.write(&batch).await.unwrap();
        assert!(sink.files.len() <= 2);
        sink.write(&batch).await.unwrap();
        assert!(sink.files.len() <= 2);
        for p in 0..5 {
            let got: Vec<_> = lines(&dir.path().join(format!("{p}.ndjson")))
                .iter()
                .map(|v| v["i"].as_u64().unwrap())
                .collect();
            let want: Vec<u64> = (0..20)
                .filter(|i| i % 5 == p)
                .chain((0..20).filter(|i| i % 5 == p))
                .collect();
            assert_eq!(got, want, "partition {p}");
        }
    }

    #[tokio::test]
    async fn write_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "").unwrap();
        // A path below a regular file cannot be created.
        let mut sink = sink(&format!("{}/file/{{a}}.ndjson", dir.path().display()), 2);
        let err = sink.write(&[event(r#"{"a":"x"}"#)]).await.unwrap_err();
        assert_eq!(err.kind, "io");
        assert!(err.message.starts_with("writing "), "{}", err.message);
        assert!(err.message.contains("file/x.ndjson"), "{}", err.message);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c = config(r#"path = "out/{userId}/%Y.ndjson""#);
        assert_eq!(c.time_field.as_str(), "timestamp");
        assert_eq!(c.max_open_files, 256);
        assert!(c.validate().is_empty());
        assert_eq!(c.outputs(), vec!["rejected"]);
        let cx = BuildContext {
            id: "orders",
            engine: &EngineConfig::default(),
            state: &StateStore::default(),
            shard: None,
        };
        assert!(c.build(&cx).is_ok());

        let bad = |toml_text: &str| -> Vec<String> {
            config(toml_text)
                .validate()
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect()
        };
        assert_eq!(
            bad(r#"path = """#),
            vec!["path: path is empty; give a file path such as \"out/%Y-%m-%d.ndjson\""]
        );
        assert_eq!(
            bad(r#"path = "out/{userId""#),
            vec!["path: path \"out/{userId\" has a \"{\" at byte 4 with no closing \"}\""]
        );
        assert_eq!(
            bad(r#"path = "out/userId}""#),
            vec!["path: path \"out/userId}\" has a \"}\" at byte 10 with no opening \"{\""]
        );
        assert_eq!(bad(r#"path = "out/{a..b}""#), vec![
            "path: path \"out/{a..b}\": placeholder {a..b}: field path \"a..b\" has an empty segment"
        ]);
        assert_eq!(
            bad(r#"path = "out/%Y/%Q.ndjson""#),
            vec!["path: path \"out/%Y/%Q.ndjson\" has \"%Q\", which is not a strftime specifier"]
        );
        assert_eq!(bad("path = \"out/x\"\nmax_open_files = 0"), vec![
            "max_open_files: max_open_files is 0, but at least one file must be open to write (try 256)"
        ]);
        assert!(
            from_table::<FileSinkConfig>(toml::from_str("path = \"x\"\nfile = 1").unwrap())
                .is_err()
        );
    }
}
