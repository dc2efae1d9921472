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
//!
//! # Layout
//! * `mod.rs` — the entry points, the error types and the report.
//! * `env.rs` — step 1, environment substitution.
//! * `locate.rs` — line numbers of fields.
//! * `check.rs` — steps 3 to 6.
//! * `words.rs` — message wording and suggestions.
//! * `tests.rs` — unit tests.

mod check;
mod env;
mod locate;
mod words;

#[cfg(test)]
mod tests;

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
use check::*;
use env::*;
use locate::*;
use words::*;

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
