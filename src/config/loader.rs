//! Reads `topology.toml` into a validated [`Config`], reporting every problem
//! at once.
//!
//! The steps, in order:
//!
//! 1. **Environment substitution** on the raw text: `${VAR}`, `${VAR:-default}`
//!    (the default is used when `VAR` is unset or empty, and may itself be
//!    empty) and `$$` for a literal `$`. Done before parsing, like Vector, so a
//!    variable can stand for any part of the file; line numbers are unchanged
//!    unless a value holds a newline. Comments are skipped. Limitations of the
//!    small scanner that finds them: a reference must fit on one line and its
//!    default cannot contain `}`; substituted values are not re-read, so a value
//!    holding `"` or `#` changes the TOML around it, as in Vector.
//! 2. **Parsing** with `toml_edit`, which keeps byte spans so that every error
//!    can name its line. A syntax error stops loading: it is the one error
//!    reported (with any unset variables, which often cause it).
//! 3. **Sections**: only `engine`, `api`, `sources`, `transforms` and `sinks`.
//!    `[engine]` and `[api]` are deserialized and checked.
//! 4. **Components**: each table needs a known `type`; transforms and sinks
//!    need `inputs`, sources must not have them. The rest of the table goes to
//!    the type's `deny_unknown_fields` config struct, then its `validate()`.
//!    Field paths in those errors (`ops[1].from`) are found in the document to
//!    name their line.
//! 5. **Ids**: unique across the three sections, made of `[A-Za-z0-9_-]`
//!    (outputs are addressed as `id.output`).
//! 6. **Wiring**: every input names a component and one of its outputs, no
//!    component reads itself, no cycles, no input listed twice; at least one
//!    source and one sink. Outputs nobody reads are warnings, except
//!    `rejected` and `duplicates`, which are normal to drop.
//!
//! Nothing stops at the first problem except a syntax error: the caller gets
//! all of them, sorted by line, each naming file, line, component, field and
//! the bad value.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml_edit::{ImDocument, Item, TableLike};

use super::{
    from_table, ApiConfig, ComponentConfig, ComponentKind, ComponentSpec, Config, EngineConfig,
    FieldError, InputRef,
};
use crate::component::REJECTED;
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;

/// Top-level tables a topology may have.
const SECTIONS: &[&str] = &["engine", "api", "sources", "transforms", "sinks"];

/// Outputs that are normal to leave unread: nobody is warned about them.
const QUIET_OUTPUTS: &[&str] = &[REJECTED, "duplicates"];

/// A loaded topology and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Problems that do not stop the topology from running (see [`Severity`]).
    pub warnings: Vec<ConfigError>,
}

/// Whether a problem stops the topology from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a topology file.
///
/// Displays as `file:line: component: field: message`, leaving out the parts
/// it does not have; a warning reads `file:line: warning: component: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line the problem is on.
    pub line: Option<usize>,
    /// `section.id`, e.g. `transforms.sessions`, or `engine` / `api`.
    pub component: Option<String>,
    /// Path of the field inside the component's table, e.g. `ops[1].from`.
    pub field: Option<String>,
    /// What is wrong, naming the bad value.
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.severity == Severity::Warning {
            f.write_str(": warning")?;
        }
        if let Some(component) = &self.component {
            write!(f, ": {component}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in a topology file, sorted by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and loads the topology at `path`; a file that cannot be read is
/// reported as a [`ConfigError`] like any other problem.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &file),
        Err(err) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: None,
            component: None,
            field: None,
            message: format!("cannot read the topology file: {err}"),
            severity: Severity::Error,
        }])),
    }
}

/// Loads a topology from `text`, substituting variables from the process
/// environment. `file` names it in messages.
pub fn load_str(text: &str, file: &str) -> Result<Loaded, ConfigErrors> {
    // A variable whose value is not UTF-8 cannot go into a TOML text; it is
    // reported like an unset one.
    load_str_with_env(text, file, &|name| std::env::var(name).ok())
}

/// Loads a topology from `text`, looking variables up with `env`.
pub fn load_str_with_env(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let mut report = Report::new(file);
    let substituted = substitute_env(text, env);
    let lines_with_env_errors: HashSet<usize> =
        substituted.problems.iter().map(|(line, _)| *line).collect();
    for (line, message) in substituted.problems {
        report.error(Some(line), None, None, message);
    }
    let text = substituted.text.as_str();
    let lines = LineIndex::new(text);

    let document = match ImDocument::parse(text) {
        Ok(document) => document,
        Err(err) => {
            let offset = err.span().map_or(0, |span| span.start);
            let line = lines.line(offset);
            // An unset variable often leaves `key = ` behind; its own error says more.
            if !lines_with_env_errors.contains(&line) {
                let column = lines.column(text, offset);
                report.error(
                    Some(line),
                    None,
                    None,
                    format!(
                        "TOML syntax error at column {column}: {}",
                        one_line(err.message())
                    ),
                );
            }
            return Err(report.into_errors());
        }
    };
    // `toml_edit` has spans, `toml` feeds serde: parse both ways. They share a
    // parser, so the second cannot fail where the first succeeded; if it does,
    // say so rather than panic.
    let root: toml::Table = match text.parse() {
        Ok(root) => root,
        Err(err) => {
            let err: toml::de::Error = err;
            let line = err.span().map(|span| lines.line(span.start));
            report.error(
                line,
                None,
                None,
                format!("TOML error: {}", one_line(err.message())),
            );
            return Err(report.into_errors());
        }
    };

    let mut loader = Loader {
        report,
        lines,
        document: document.as_table(),
        root: &root,
    };
    let config = loader.load(file);
    let Report {
        mut errors,
        warnings,
        ..
    } = loader.report;
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded { config, warnings }),
        // Every path that gives up reports why; this guards against one that forgets.
        None if errors.is_empty() => Err(ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            line: None,
            component: None,
            field: None,
            message:
                "the topology could not be loaded, but no reason was recorded (a bug in sluice)"
                    .into(),
            severity: Severity::Error,
        }])),
        _ => {
            sort_by_line(&mut errors);
            Err(ConfigErrors(errors))
        }
    }
}

/// Errors and warnings found so far.
struct Report<'f> {
    file: &'f str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl<'f> Report<'f> {
    fn new(file: &'f str) -> Self {
        Report {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(
        &mut self,
        line: Option<usize>,
        component: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        let error = self.make(line, component, field, message.into(), Severity::Error);
        self.errors.push(error);
    }

    fn warning(&mut self, line: usize, component: &str, message: impl Into<String>) {
        let warning = self.make(
            Some(line),
            Some(component),
            None,
            message.into(),
            Severity::Warning,
        );
        self.warnings.push(warning);
    }

    fn make(
        &self,
        line: Option<usize>,
        component: Option<&str>,
        field: Option<&str>,
        message: String,
        severity: Severity,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line,
            component: component.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
            severity,
        }
    }

    fn into_errors(mut self) -> ConfigErrors {
        sort_by_line(&mut self.errors);
        ConfigErrors(self.errors)
    }
}

/// Stable: problems on one line keep the order they were found in. Problems
/// without a line (a missing section) come last.
fn sort_by_line(errors: &mut [ConfigError]) {
    errors.sort_by_key(|error| error.line.unwrap_or(usize::MAX));
}

// ---------------------------------------------------------------------------
// Step 1: environment substitution.

/// The text with variables replaced, and the problems found as `(line, message)`.
struct Substituted {
    text: String,
    problems: Vec<(usize, String)>,
}

/// Where the scanner is, as far as `#` and `$` are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    Bare,
    Comment,
    /// `"…"`
    Basic,
    /// `'…'`
    Literal,
    /// `"""…"""`
    MultiBasic,
    /// `'''…'''`
    MultiLiteral,
}

/// Replaces `${VAR}`, `${VAR:-default}` and `$$` outside comments. A `$` not
/// followed by `{` or `$` is kept as it is.
fn substitute_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Substituted {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut scan = Scan::Bare;
    let mut line = 1;
    // Start of the text not yet copied to `out`. Every index compared against
    // is an ASCII byte, so slicing at it stays on a char boundary.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match (scan, bytes[i]) {
            (_, b'\n') => {
                line += 1;
                // Single-line strings end at the line's end; an unterminated
                // one is the parser's to report.
                if matches!(scan, Scan::Comment | Scan::Basic | Scan::Literal) {
                    scan = Scan::Bare;
                }
            }
            (Scan::Comment, _) => {}
            (Scan::Bare, b'#') => scan = Scan::Comment,
            (Scan::Bare, b'"') if rest.starts_with(b"\"\"\"") => {
                scan = Scan::MultiBasic;
                i += 3;
                continue;
            }
            (Scan::Bare, b'"') => scan = Scan::Basic,
            (Scan::Bare, b'\'') if rest.starts_with(b"'''") => {
                scan = Scan::MultiLiteral;
                i += 3;
                continue;
            }
            (Scan::Bare, b'\'') => scan = Scan::Literal,
            // Skip the escaped character, unless it is a line-ending backslash.
            (Scan::Basic | Scan::MultiBasic, b'\\') if rest.get(1) != Some(&b'\n') => {
                i += 2;
                continue;
            }
            (Scan::Basic, b'"') | (Scan::Literal, b'\'') => scan = Scan::Bare,
            (Scan::MultiBasic, b'"') if rest.starts_with(b"\"\"\"") => {
                scan = Scan::Bare;
                i += 3;
                continue;
            }
            (Scan::MultiLiteral, b'\'') if rest.starts_with(b"'''") => {
                scan = Scan::Bare;
                i += 3;
                continue;
            }
            (_, b'$') if rest.get(1) == Some(&b'$') => {
                out.push_str(&text[copied..i]);
                out.push('$');
                i += 2;
                copied = i;
                continue;
            }
            (_, b'$') if rest.get(1) == Some(&b'{') => {
                let inner_start = i + 2;
                let close = text[inner_start..]
                    .find(['}', '\n'])
                    .map(|at| inner_start + at)
                    .filter(|&at| bytes[at] == b'}');
                let Some(close) = close else {
                    problems.push((
                        line,
                        "`${` is not closed by `}` on the same line (write `$${` for a literal `${`)"
                            .to_owned(),
                    ));
                    i += 2;
                    continue;
                };
                let reference = &text[inner_start..close];
                match lookup(reference, env) {
                    Ok(value) => {
                        out.push_str(&text[copied..i]);
                        out.push_str(&value);
                        copied = close + 1;
                    }
                    Err(Lookup::Invalid) => problems.push((
                        line,
                        format!(
                            "`${{{reference}}}` is not a valid environment variable reference \
                             (write `${{NAME}}` or `${{NAME:-default}}`)"
                        ),
                    )),
                    Err(Lookup::Unset(name)) => {
                        problems.push((
                            line,
                            format!(
                                "environment variable \"{name}\" is not set and `${{{name}}}` has \
                                 no default (write `${{{name}:-default}}` to give one)"
                            ),
                        ));
                        // Leave nothing behind: the rest of the file is still checked.
                        out.push_str(&text[copied..i]);
                        copied = close + 1;
                    }
                }
                i = close + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Substituted {
        text: out,
        problems,
    }
}

enum Lookup<'r> {
    /// Not `NAME` or `NAME:-default`.
    Invalid,
    /// Unset, with no default.
    Unset(&'r str),
}

/// The value of the reference between `${` and `}`.
fn lookup<'r>(
    reference: &'r str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Lookup<'r>> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(Lookup::Invalid);
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(Lookup::Unset(name)),
    }
}

// ---------------------------------------------------------------------------
// Finding lines.

/// Byte offsets of line starts, to turn spans into 1-based lines.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// 1-based column of `offset`, in characters.
    fn column(&self, text: &str, offset: usize) -> usize {
        let start = self.starts[self.line(offset) - 1];
        text.get(start..offset)
            .map_or(1, |before| before.chars().count() + 1)
    }

    fn line_of(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|span| self.line(span.start))
    }
}

/// Something in the document a field path can step through.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    Value(&'d toml_edit::Value),
    Table(&'d toml_edit::Table),
}

impl<'d> Node<'d> {
    fn table_like(self) -> Option<&'d dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(table) => Some(table),
        }
    }

    fn element(self, index: usize) -> Option<Node<'d>> {
        match self {
            Node::Item(Item::ArrayOfTables(tables)) => tables.get(index).map(Node::Table),
            Node::Item(Item::Value(value)) | Node::Value(value) => {
                value.as_array()?.get(index).map(Node::Value)
            }
            _ => None,
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Value(value) => value.span(),
            Node::Table(table) => table.span(),
        }
    }
}

/// One step of a field path such as `ops[1].from`.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    if path.is_empty() {
        return segments;
    }
    for piece in path.split('.') {
        let key_end = piece.find('[').unwrap_or(piece.len());
        if key_end > 0 {
            segments.push(Segment::Key(&piece[..key_end]));
        }
        for index in piece[key_end..].split('[').filter(|part| !part.is_empty()) {
            match index.trim_end_matches(']').parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                // `a[x]` is not a path serde writes; treat it as a key.
                Err(_) => segments.push(Segment::Key(index)),
            }
        }
    }
    segments
}

/// The line of the field at `path` inside `item`: the deepest part of the
/// path found, else `fallback`.
fn locate(lines: &LineIndex, item: &Item, path: &str, fallback: usize) -> usize {
    find_field(lines, item, path, fallback).0
}

/// The line of the field at `path` inside `item` (as [`locate`]), and the
/// field itself when the whole path was found. Keys holding dots
/// (`events."a.b"`) are found by trying the following segments joined back
/// together.
fn find_field<'d>(
    lines: &LineIndex,
    item: &'d Item,
    path: &str,
    fallback: usize,
) -> (usize, Option<Node<'d>>) {
    let segments = path_segments(path);
    let mut rest = segments.as_slice();
    let mut node = Node::Item(item);
    let mut line = fallback;
    while let Some(first) = rest.first() {
        match first {
            Segment::Index(index) => {
                let Some(next) = node.element(*index) else {
                    break;
                };
                line = lines.line_of(next.span()).unwrap_or(line);
                node = next;
                rest = &rest[1..];
            }
            Segment::Key(_) => {
                let Some(table) = node.table_like() else {
                    break;
                };
                let mut found = None;
                let mut joined = String::new();
                for (taken, segment) in rest.iter().enumerate() {
                    let Segment::Key(key) = segment else { break };
                    if taken > 0 {
                        joined.push('.');
                    }
                    joined.push_str(key);
                    if let Some((key, value)) = table.get_key_value(&joined) {
                        found = Some((taken + 1, key, value));
                        break;
                    }
                }
                let Some((taken, key, value)) = found else {
                    break;
                };
                line = lines
                    .line_of(key.span())
                    .or_else(|| lines.line_of(value.span()))
                    .unwrap_or(line);
                node = Node::Item(value);
                rest = &rest[taken..];
            }
        }
    }
    (line, rest.is_empty().then_some(node))
}

/// A scalar as written in the file (`"nope"`, `3`), to quote in messages.
fn scalar_text(node: Node<'_>) -> Option<String> {
    use toml_edit::Value;
    let value = match node {
        Node::Item(Item::Value(value)) | Node::Value(value) => value,
        _ => return None,
    };
    let text = match value {
        Value::String(text) => text.display_repr(),
        Value::Integer(number) => number.display_repr(),
        Value::Float(number) => number.display_repr(),
        Value::Boolean(flag) => flag.display_repr(),
        Value::Datetime(time) => time.display_repr(),
        Value::Array(_) | Value::InlineTable(_) => return None,
    };
    Some(text.into_owned())
}

// ---------------------------------------------------------------------------
// Steps 3 to 7.

/// A component after its own table was read (step 4), before wiring.
struct Parsed<'d> {
    id: String,
    kind: ComponentKind,
    /// `section.id`, for messages.
    name: String,
    line: usize,
    item: &'d Item,
    /// `None` when missing or unknown (already reported).
    type_name: Option<String>,
    inputs: Vec<Input>,
    /// `None` when the table did not deserialize (already reported).
    config: Option<ComponentConfig>,
}

impl Parsed<'_> {
    fn outputs(&self) -> Option<Vec<String>> {
        self.config.as_ref().map(outputs_of)
    }
}

/// One entry of a component's `inputs`.
struct Input {
    text: String,
    input: InputRef,
    line: usize,
}

struct Loader<'d, 'f> {
    report: Report<'f>,
    lines: LineIndex,
    document: &'d toml_edit::Table,
    root: &'d toml::Table,
}

impl<'d> Loader<'d, '_> {
    /// Steps 3 to 7; `None` when something failed (the report says what).
    fn load(&mut self, file: &str) -> Option<Config> {
        self.check_sections();
        let engine: Option<EngineConfig> = self.section_config("engine");
        if let Some(engine) = &engine {
            self.check_engine(engine);
        }
        let api: Option<ApiConfig> = self.section_config("api");

        let mut components = Vec::new();
        for kind in [
            ComponentKind::Source,
            ComponentKind::Transform,
            ComponentKind::Sink,
        ] {
            self.parse_section(kind, &mut components);
        }
        // File order across sections, for messages and for `Config::components`.
        components.sort_by_key(|component| component.line);
        self.check_wiring(&components);

        let (engine, api) = (engine?, api?);
        let components = components
            .into_iter()
            .map(|parsed| {
                Some(ComponentSpec {
                    outputs: parsed.outputs()?,
                    id: parsed.id,
                    kind: parsed.kind,
                    type_name: parsed.type_name?,
                    inputs: parsed.inputs.into_iter().map(|input| input.input).collect(),
                    config: parsed.config?,
                    line: parsed.line,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let api_problems = api.validate(&components);
        if !api_problems.is_empty() {
            let line = self.section_line("api").unwrap_or(1);
            let item = self.document.get("api")?;
            for problem in api_problems {
                self.field_error("api", item, line, problem);
            }
            return None;
        }
        Some(Config {
            file: file.to_owned(),
            engine,
            api,
            components,
        })
    }

    /// Line of a top-level key.
    fn section_line(&self, name: &str) -> Option<usize> {
        let (key, item) = self.document.get_key_value(name)?;
        self.lines
            .line_of(key.span())
            .or_else(|| self.lines.line_of(item.span()))
    }

    fn check_sections(&mut self) {
        for (name, _) in self.document.iter() {
            if SECTIONS.contains(&name) {
                continue;
            }
            let mut message = format!(
                "unknown section \"{name}\" (expected engine, api, sources, transforms or sinks)"
            );
            if let Some(close) = closest(name, SECTIONS.iter().copied()) {
                message.push_str(&format!("; did you mean \"{close}\"?"));
            }
            let line = self.section_line(name);
            self.report.error(line, None, None, message);
        }
    }

    /// `[engine]` or `[api]`: its defaults when absent, `None` when invalid.
    fn section_config<T: DeserializeOwned + Default>(&mut self, name: &str) -> Option<T> {
        let Some(value) = self.root.get(name) else {
            return Some(T::default());
        };
        let line = self.section_line(name).unwrap_or(1);
        let Some(table) = value.as_table() else {
            self.report.error(
                Some(line),
                Some(name),
                None,
                format!("`{name}` must be a table ([{name}]), not {}", a_type(value)),
            );
            return None;
        };
        match from_table::<T>(table.clone()) {
            Ok(config) => Some(config),
            Err(error) => {
                let item = self.document.get(name)?;
                self.field_error(name, item, line, error);
                None
            }
        }
    }

    fn check_engine(&mut self, engine: &EngineConfig) {
        let mut problems = Vec::new();
        if engine.batch_size == 0 {
            problems.push(FieldError::new(
                "batch_size",
                "batch_size is 0; it must be at least 1",
            ));
        }
        if engine.mailbox_capacity == 0 {
            problems.push(FieldError::new(
                "mailbox_capacity",
                "mailbox_capacity is 0; it must be at least 1",
            ));
        }
        if engine.threads == Some(0) {
            problems.push(FieldError::new(
                "threads",
                "threads is 0; it must be at least 1 (leave it out for one per core)",
            ));
        }
        let backoff = &engine.restart.backoff;
        if backoff.initial > backoff.max {
            problems.push(FieldError::new(
                "restart.backoff.initial",
                format!(
                    "initial backoff {} is longer than restart.backoff.max {}",
                    backoff.initial, backoff.max
                ),
            ));
        }
        let Some(item) = self.document.get("engine") else {
            return;
        };
        let line = self.section_line("engine").unwrap_or(1);
        for problem in problems {
            self.field_error("engine", item, line, problem);
        }
    }

    /// Reports a [`FieldError`] of `component` at the line of its field.
    fn field_error(&mut self, component: &str, item: &Item, header_line: usize, error: FieldError) {
        let mut message = clean_serde_message(&error.message);
        let mut field = error.field;
        // serde names the unknown or missing field in the message; the path
        // may stop at its parent.
        let named = quoted_after(&message, "unknown field `")
            .or_else(|| quoted_after(&message, "missing field `"));
        if let Some(named) = named {
            let already = field == named || field.ends_with(&format!(".{named}"));
            if !already {
                field = if field.is_empty() {
                    named.to_owned()
                } else {
                    format!("{field}.{named}")
                };
            }
        }
        // `unknown field `fooo`, expected …` and `unknown variant `sotp`, expected …`.
        let unknown = quoted_after(&message, "unknown field `")
            .or_else(|| quoted_after(&message, "unknown variant `"));
        let is_unknown_field = message.starts_with("unknown field `");
        if let Some(unknown) = unknown {
            let expected = message
                .split_once("expected")
                .map(|(_, expected)| backticked(expected))
                .unwrap_or_default();
            if let Some(close) = closest(unknown, expected.iter().copied()) {
                message = format!("{message}; did you mean `{close}`?");
            }
        }
        let (line, found) = find_field(&self.lines, item, &field, header_line);
        // Name the bad value when serde's message does not (`invalid socket
        // address syntax`); an unknown field's value is beside the point.
        if let Some(text) = found.and_then(scalar_text) {
            let bare = text.trim_matches(['"', '\'']);
            // A URL's password never goes into a message.
            let text = crate::sinks::redis::config::redacted(&text);
            let bare = crate::sinks::redis::config::redacted(bare);
            if !is_unknown_field && !message.contains(&bare) {
                message = format!("{message} (got {text})");
            }
        }
        let field = (!field.is_empty()).then_some(field.as_str());
        self.report
            .error(Some(line), Some(component), field, message);
    }

    /// Reads every component of one section into `out`.
    fn parse_section(&mut self, kind: ComponentKind, out: &mut Vec<Parsed<'d>>) {
        let section = kind.section();
        let Some(value) = self.root.get(section) else {
            return;
        };
        let line = self.section_line(section).unwrap_or(1);
        let document = self.document;
        let (Some(data), Some(table)) = (
            value.as_table(),
            document.get(section).and_then(Item::as_table_like),
        ) else {
            self.report.error(
                Some(line),
                None,
                None,
                format!(
                    "`{section}` must be a table of components, like [{section}.NAME], not {}",
                    a_type(value)
                ),
            );
            return;
        };
        for (id, item) in table.iter() {
            let line = table
                .get_key_value(id)
                .and_then(|(key, _)| self.lines.line_of(key.span()))
                .or_else(|| self.lines.line_of(item.span()))
                .unwrap_or(line);
            if let Some(value) = data.get(id) {
                let parsed = self.parse_component(kind, id, item, line, value);
                out.push(parsed);
            }
        }
    }

    fn parse_component(
        &mut self,
        kind: ComponentKind,
        id: &str,
        item: &'d Item,
        line: usize,
        value: &toml::Value,
    ) -> Parsed<'d> {
        let name = format!("{}.{id}", kind.section());
        let mut parsed = Parsed {
            id: id.to_owned(),
            kind,
            name: name.clone(),
            line,
            item,
            type_name: None,
            inputs: Vec::new(),
            config: None,
        };
        let valid_id = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_id {
            self.report.error(
                Some(line),
                Some(&name),
                None,
                format!(
                    "component id \"{id}\" may only contain letters, digits, `_` and `-` \
                     (outputs are addressed as `id.output`)"
                ),
            );
        }
        let Some(table) = value.as_table() else {
            self.report.error(
                Some(line),
                Some(&name),
                None,
                format!(
                    "a component must be a table, like [{}.{id}], not {}",
                    kind.section(),
                    a_type(value)
                ),
            );
            return parsed;
        };
        let mut table = table.clone();
        let type_value = table.remove("type");
        let inputs_value = table.remove("inputs");

        parsed.type_name = self.check_type(&parsed, type_value);
        parsed.inputs = self.parse_inputs(&parsed, inputs_value);
        let Some(type_name) = &parsed.type_name else {
            return parsed;
        };
        let result = match kind {
            ComponentKind::Source => SourceConfig::parse(type_name, table)
                .map(|result| result.map(ComponentConfig::Source)),
            ComponentKind::Transform => TransformConfig::parse(type_name, table)
                .map(|result| result.map(ComponentConfig::Transform)),
            ComponentKind::Sink => {
                SinkConfig::parse(type_name, table).map(|result| result.map(ComponentConfig::Sink))
            }
        };
        match result {
            Some(Ok(config)) => {
                for problem in validate(&config) {
                    self.field_error(&name, item, line, problem);
                }
                parsed.config = Some(config);
            }
            Some(Err(error)) => self.field_error(&name, item, line, error),
            // check_type accepted it, so the kind's parse knows it.
            None => {}
        }
        parsed
    }

    /// The component's `type`, if present and known.
    fn check_type(&mut self, parsed: &Parsed<'_>, value: Option<toml::Value>) -> Option<String> {
        let kind_name = parsed.kind.as_str();
        let known = types_of(parsed.kind);
        let known_list = format!("known {kind_name} types: {}", known.join(", "));
        let line = locate(&self.lines, parsed.item, "type", parsed.line);
        let type_name = match value {
            None => {
                self.report.error(
                    Some(parsed.line),
                    Some(&parsed.name),
                    Some("type"),
                    format!("missing `type` ({known_list})"),
                );
                return None;
            }
            Some(toml::Value::String(type_name)) => type_name,
            Some(other) => {
                self.report.error(
                    Some(line),
                    Some(&parsed.name),
                    Some("type"),
                    format!(
                        "`type` must be a string, not {} ({known_list})",
                        a_value(&other)
                    ),
                );
                return None;
            }
        };
        if known.contains(&type_name.as_str()) {
            return Some(type_name);
        }
        let mut message = format!("unknown component type \"{type_name}\" ({known_list})");
        if let Some(close) = closest(&type_name, known.iter().copied()) {
            message.push_str(&format!("; did you mean \"{close}\"?"));
        } else if let Some(other) = [
            ComponentKind::Source,
            ComponentKind::Transform,
            ComponentKind::Sink,
        ]
        .into_iter()
        .find(|other| types_of(*other).contains(&type_name.as_str()))
        {
            message.push_str(&format!(
                "; \"{type_name}\" is a {} type, which belongs under [{}]",
                other.as_str(),
                other.section()
            ));
        }
        self.report
            .error(Some(line), Some(&parsed.name), Some("type"), message);
        None
    }

    /// The component's `inputs`: required for transforms and sinks, refused
    /// for sources. Entries that are not usable are reported and left out.
    fn parse_inputs(&mut self, parsed: &Parsed<'_>, value: Option<toml::Value>) -> Vec<Input> {
        let name = parsed.name.as_str();
        let kind = parsed.kind.as_str();
        let inputs_line = locate(&self.lines, parsed.item, "inputs", parsed.line);
        let example = "e.g. inputs = [\"replay\"]";
        let entries = match (parsed.kind, value) {
            (ComponentKind::Source, None) => return Vec::new(),
            (ComponentKind::Source, Some(_)) => {
                self.report.error(
                    Some(inputs_line),
                    Some(name),
                    Some("inputs"),
                    "a source reads from outside the topology and takes no `inputs`; remove it",
                );
                return Vec::new();
            }
            (_, None) => {
                self.report.error(
                    Some(parsed.line),
                    Some(name),
                    Some("inputs"),
                    format!("missing `inputs`: a {kind} must read from at least one component ({example})"),
                );
                return Vec::new();
            }
            (_, Some(toml::Value::Array(entries))) if entries.is_empty() => {
                self.report.error(
                    Some(inputs_line),
                    Some(name),
                    Some("inputs"),
                    format!("`inputs` is empty: a {kind} must read from at least one component ({example})"),
                );
                return Vec::new();
            }
            (_, Some(toml::Value::Array(entries))) => entries,
            (_, Some(other)) => {
                self.report.error(
                    Some(inputs_line),
                    Some(name),
                    Some("inputs"),
                    format!(
                        "`inputs` must be an array of component ids, not {} ({example})",
                        a_value(&other)
                    ),
                );
                return Vec::new();
            }
        };

        let mut inputs: Vec<Input> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let line = locate(
                &self.lines,
                parsed.item,
                &format!("inputs[{index}]"),
                inputs_line,
            );
            let text = match entry {
                toml::Value::String(text) => text,
                other => {
                    self.report.error(
                        Some(line),
                        Some(name),
                        Some("inputs"),
                        format!(
                            "input {other} is {}, not a component id string like \"replay\" or \"valid.rejected\"",
                            a_type(&other)
                        ),
                    );
                    continue;
                }
            };
            let input = InputRef::parse(&text);
            if input.component.is_empty() || (text.contains('.') && input.output.is_empty()) {
                self.report.error(
                    Some(line),
                    Some(name),
                    Some("inputs"),
                    format!("input \"{text}\" is not a component id or `id.output`"),
                );
                continue;
            }
            if inputs.iter().any(|seen| seen.input == input) {
                self.report.error(
                    Some(line),
                    Some(name),
                    Some("inputs"),
                    format!("input \"{text}\" is listed twice; every event would arrive twice"),
                );
                continue;
            }
            inputs.push(Input { text, input, line });
        }
        inputs
    }

    /// Steps 5 and 6: ids, inputs, cycles, unread outputs, sources and sinks.
    fn check_wiring(&mut self, components: &[Parsed<'_>]) {
        let mut by_id: HashMap<&str, &Parsed<'_>> = HashMap::new();
        for component in components {
            match by_id.get(component.id.as_str()) {
                Some(first) => self.report.error(
                    Some(component.line),
                    Some(&component.name),
                    None,
                    format!(
                        "component id \"{}\" is already used by {} (line {}); ids must be unique \
                         across sources, transforms and sinks",
                        component.id, first.name, first.line
                    ),
                ),
                None => {
                    by_id.insert(&component.id, component);
                }
            }
        }

        for component in components {
            for input in &component.inputs {
                self.check_input(component, input, &by_id);
            }
        }

        let nodes: Vec<(&str, Vec<&str>)> = components
            .iter()
            // Duplicates were reported; wire only the first of each id.
            .filter(|component| std::ptr::eq(by_id[component.id.as_str()], *component))
            .map(|component| {
                let inputs = component
                    .inputs
                    .iter()
                    .map(|input| input.input.component.as_str())
                    .collect();
                (component.id.as_str(), inputs)
            })
            .collect();
        for cycle in super::graph::find_cycles(&nodes) {
            let first = by_id[cycle[0].as_str()];
            self.report.error(
                Some(first.line),
                Some(&first.name),
                Some("inputs"),
                format!(
                    "inputs form a cycle: {}; events would go round forever",
                    cycle.join(" -> ")
                ),
            );
        }

        self.warn_unread_outputs(components);

        for (kind, table) in [
            (ComponentKind::Source, "sources"),
            (ComponentKind::Sink, "sinks"),
        ] {
            if !components.iter().any(|component| component.kind == kind) {
                self.report.error(
                    None,
                    None,
                    None,
                    format!("the topology has no {table}; add at least one [{table}.NAME] table"),
                );
            }
        }
    }

    fn check_input(
        &mut self,
        component: &Parsed<'_>,
        input: &Input,
        by_id: &HashMap<&str, &Parsed<'_>>,
    ) {
        let text = &input.text;
        let target_id = input.input.component.as_str();
        let output = input.input.output.as_str();
        let mut fail = |message: String| {
            self.report.error(
                Some(input.line),
                Some(&component.name),
                Some("inputs"),
                message,
            )
        };
        if target_id == component.id {
            return fail(format!(
                "input \"{text}\" is this component itself; a component cannot read its own output"
            ));
        }
        let Some(target) = by_id.get(target_id) else {
            let mut message = format!("input \"{text}\" names no component");
            let mut ids: Vec<&str> = by_id.keys().copied().collect();
            ids.sort_unstable();
            match closest(target_id, ids.iter().copied()) {
                Some(close) => {
                    let suggestion = InputRef {
                        component: close.to_owned(),
                        output: output.to_owned(),
                    };
                    message.push_str(&format!("; did you mean \"{suggestion}\"?"));
                }
                None => message.push_str(&format!(" (components: {})", ids.join(", "))),
            }
            return fail(message);
        };
        if target.kind == ComponentKind::Sink && output.is_empty() {
            return fail(format!(
                "input \"{text}\" is a sink, and sinks have no default output; only the events \
                 it rejects can be read, as \"{text}.{REJECTED}\""
            ));
        }
        // Unknown when the target's table failed to parse: already reported.
        let Some(outputs) = target.outputs() else {
            return;
        };
        if outputs.iter().any(|name| name == output) {
            return;
        }
        let addresses: Vec<String> = outputs
            .iter()
            .map(|name| {
                InputRef {
                    component: target_id.to_owned(),
                    output: name.clone(),
                }
                .to_string()
            })
            .collect();
        let listed = format!("\"{}\"", addresses.join("\", \""));
        let mut message = if output.is_empty() {
            format!(
                "\"{target_id}\" has no default output; read one of its named outputs: {listed}"
            )
        } else {
            format!("\"{target_id}\" has no output \"{output}\" (its outputs: {listed})")
        };
        let close = if output.is_empty() {
            outputs
                .iter()
                .find(|name| *name == "_default")
                .map(String::as_str)
        } else {
            closest(
                output,
                outputs
                    .iter()
                    .map(String::as_str)
                    .filter(|name| !name.is_empty()),
            )
        };
        if let Some(close) = close {
            message.push_str(&format!("; did you mean \"{target_id}.{close}\"?"));
        }
        fail(message);
    }

    /// Warns about outputs of sources and transforms nobody reads: their
    /// events are dropped.
    fn warn_unread_outputs(&mut self, components: &[Parsed<'_>]) {
        let read: HashSet<&InputRef> = components
            .iter()
            .flat_map(|component| component.inputs.iter().map(|input| &input.input))
            .collect();
        for component in components {
            if component.kind == ComponentKind::Sink {
                continue;
            }
            for output in component.outputs().unwrap_or_default() {
                if QUIET_OUTPUTS.contains(&output.as_str()) {
                    continue;
                }
                let address = InputRef {
                    component: component.id.clone(),
                    output,
                };
                if read.contains(&address) {
                    continue;
                }
                let what = if address.output.is_empty() {
                    format!("nothing reads from \"{address}\"")
                } else {
                    format!("nothing reads output \"{address}\"")
                };
                self.report.warning(
                    component.line,
                    &component.name,
                    format!("{what}; its events are dropped"),
                );
            }
        }
    }
}

fn types_of(kind: ComponentKind) -> &'static [&'static str] {
    match kind {
        ComponentKind::Source => SourceConfig::TYPES,
        ComponentKind::Transform => TransformConfig::TYPES,
        ComponentKind::Sink => SinkConfig::TYPES,
    }
}

fn outputs_of(config: &ComponentConfig) -> Vec<String> {
    match config {
        ComponentConfig::Source(config) => config.outputs(),
        ComponentConfig::Transform(config) => config.outputs(),
        ComponentConfig::Sink(config) => config.outputs(),
    }
}

fn validate(config: &ComponentConfig) -> Vec<FieldError> {
    match config {
        ComponentConfig::Source(config) => config.validate(),
        ComponentConfig::Transform(config) => config.validate(),
        ComponentConfig::Sink(config) => config.validate(),
    }
}

// ---------------------------------------------------------------------------
// Message helpers.

/// `an integer`, `a table`: the kind of a TOML value, for messages.
fn a_type(value: &toml::Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// `the integer 3`: a value and its kind, for messages.
fn a_value(value: &toml::Value) -> String {
    format!("the {} {value}", value.type_str())
}

/// A multi-line parser message on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// serde's message without the `in `ops`` context lines `toml` appends: the
/// field path already says where.
fn clean_serde_message(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("in `"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text between `prefix` (which ends with a backtick) and the next backtick.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(quoted, _)| quoted)
}

/// Every `name` between backticks in `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The candidate closest to `target` by edit distance, if within 2 edits and
/// not a whole rewrite of a short word.
fn closest<'c>(target: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(target, candidate), candidate))
        .filter(|&(distance, candidate)| {
            distance > 0
                && distance <= 2
                && distance < target.chars().count().min(candidate.chars().count())
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, with a swap of two neighbours counted as one edit
/// (`fliter` is one typo away from `filter`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]. Three rows would do,
    // but the words are short.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME_DIR" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_variables_and_defaults() {
        let text = "a = \"${HOME_DIR}/x\"\nb = \"${NOPE:-fallback}\"\nc = \"${EMPTY:-used}\"\nd = \"${NOPE:-}\"\n";
        let substituted = substitute_env(text, &env);
        assert!(substituted.problems.is_empty());
        assert_eq!(
            substituted.text,
            "a = \"/home/me/x\"\nb = \"fallback\"\nc = \"used\"\nd = \"\"\n"
        );
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_and_lone_dollars_stay() {
        let substituted = substitute_env("a = \"$${HOME_DIR} costs $5\"", &env);
        assert!(substituted.problems.is_empty());
        assert_eq!(substituted.text, "a = \"${HOME_DIR} costs $5\"");
    }

    #[test]
    fn comments_are_left_alone() {
        let text =
            "a = \"#${HOME_DIR}\" # not ${NOPE}\n# ${NOPE} either\nb = '${HOME_DIR}' # '\"\n";
        let substituted = substitute_env(text, &env);
        assert!(
            substituted.problems.is_empty(),
            "{:?}",
            substituted.problems
        );
        assert_eq!(
            substituted.text,
            "a = \"#/home/me\" # not ${NOPE}\n# ${NOPE} either\nb = '/home/me' # '\"\n"
        );
    }

    #[test]
    fn multi_line_strings_are_tracked() {
        // Line 3 holds an escaped quote and two more: the string goes on to line 4.
        let text = "a = \"\"\"\n# not a comment ${HOME_DIR}\n\\\"\"\" # ${HOME_DIR}\n\"\"\"\nb = 1 # ${NOPE}\n";
        let substituted = substitute_env(text, &env);
        assert!(
            substituted.problems.is_empty(),
            "{:?}",
            substituted.problems
        );
        assert_eq!(
            substituted.text,
            "a = \"\"\"\n# not a comment /home/me\n\\\"\"\" # /home/me\n\"\"\"\nb = 1 # ${NOPE}\n"
        );
    }

    #[test]
    fn unset_and_invalid_references_are_reported_with_lines() {
        let text = "a = 1\nb = \"${MISSING}\"\nc = \"${1BAD}\"\nd = \"${OPEN\"\n";
        let substituted = substitute_env(text, &env);
        let lines: Vec<usize> = substituted.problems.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert!(substituted.problems[0].1.contains("\"MISSING\" is not set"));
        assert!(substituted.problems[1]
            .1
            .contains("`${1BAD}` is not a valid"));
        assert!(substituted.problems[2].1.contains("not closed"));
        assert!(substituted.text.starts_with("a = 1\nb = \"\"\n"));
    }

    #[test]
    fn path_segments_split_keys_and_indices() {
        use Segment::{Index, Key};
        assert_eq!(path_segments(""), []);
        assert_eq!(
            path_segments("ops[1].from"),
            [Key("ops"), Index(1), Key("from")]
        );
        assert_eq!(path_segments("a[0][2]"), [Key("a"), Index(0), Index(2)]);
        assert_eq!(
            path_segments("routes.orders"),
            [Key("routes"), Key("orders")]
        );
    }

    #[test]
    fn locate_finds_nested_fields() {
        let text = "[t]\nops = [\n  { a = 1 },\n  { b = 2 },\n]\nevents = { \"x.y\" = true }\n[[t.list]]\nz = 1\n";
        let lines = LineIndex::new(text);
        let document = ImDocument::parse(text).unwrap();
        let item = document.get("t").unwrap();
        assert_eq!(locate(&lines, item, "", 1), 1);
        assert_eq!(locate(&lines, item, "ops", 1), 2);
        assert_eq!(locate(&lines, item, "ops[1].b", 1), 4);
        assert_eq!(locate(&lines, item, "ops[1].missing", 1), 4);
        assert_eq!(locate(&lines, item, "events.x.y", 1), 6);
        assert_eq!(locate(&lines, item, "list[0].z", 1), 8);
        assert_eq!(locate(&lines, item, "nowhere", 1), 1);
    }

    #[test]
    fn line_and_column() {
        let text = "ab\ncdé\nf";
        let lines = LineIndex::new(text);
        assert_eq!(lines.line(0), 1);
        assert_eq!(lines.line(3), 2);
        assert_eq!(lines.line(8), 3);
        // The newline after "cdé": three characters in.
        assert_eq!(lines.column(text, 7), 4);
    }

    #[test]
    fn suggestions() {
        let transforms = ["filter", "dedupe", "enrich", "route", "chaos"];
        assert_eq!(closest("fliter", transforms), Some("filter"));
        assert_eq!(closest("dedup", transforms), Some("dedupe"));
        assert_eq!(closest("sessionize", transforms), None);
        assert_eq!(closest("x", ["y"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn serde_messages_are_cleaned() {
        assert_eq!(
            clean_serde_message("unknown field `b`, expected `a`\nin `ops`"),
            "unknown field `b`, expected `a`"
        );
        assert_eq!(
            quoted_after("unknown field `b`, expected `a`", "unknown field `"),
            Some("b")
        );
        assert_eq!(backticked(" one of `a`, `bb`"), ["a", "bb"]);
    }

    #[test]
    fn display_leaves_out_missing_parts() {
        let mut error = ConfigError {
            file: "topology.toml".into(),
            line: Some(12),
            component: Some("transforms.sessions".into()),
            field: Some("timeout".into()),
            message: "duration \"30\" has no unit (try \"30s\")".into(),
            severity: Severity::Error,
        };
        assert_eq!(
            error.to_string(),
            "topology.toml:12: transforms.sessions: timeout: duration \"30\" has no unit (try \"30s\")"
        );
        error.line = None;
        error.field = None;
        assert_eq!(
            error.to_string(),
            "topology.toml: transforms.sessions: duration \"30\" has no unit (try \"30s\")"
        );
        let errors = ConfigErrors(vec![error.clone(), error.clone()]);
        assert_eq!(errors.to_string().lines().count(), 2);
        error.severity = Severity::Warning;
        assert_eq!(
            error.to_string(),
            "topology.toml: warning: transforms.sessions: duration \"30\" has no unit (try \"30s\")"
        );
    }
}
