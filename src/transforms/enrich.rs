//! `enrich`: adds, moves and derives fields with a list of operations applied in
//! order.
//!
//! | op                | fields                                      | does                                                  |
//! |-------------------|---------------------------------------------|-------------------------------------------------------|
//! | `timestamp_parts` | `from`, `date`, `hour`, `unix` (≥ 1 of the last three) | parses `from` as RFC 3339, converts to UTC, writes `date` (`"YYYY-MM-DD"`), `hour` (integer 0–23), `unix` (integer seconds) |
//! | `set`             | `path`, `value`, optional `when`            | writes `value` (any TOML value; datetimes as strings) |
//! | `rename`          | `from`, `to`                                | moves the value; absent `from` is a no-op             |
//! | `copy`            | `from`, `to`                                | copies the value; absent `from` is a no-op            |
//! | `remove`          | `path`                                      | deletes the field; absent is a no-op                  |
//!
//! `when = { path = "...", equals = <value> }` applies a `set` only if the field
//! equals the value (JSON equality: `1` and `1.0` differ); `when = { path = "...",
//! exists = true|false }` applies it only if the field is (not) present.
//!
//! `timestamp_parts` skips events without `from` (or with `from = null`); a `from`
//! that is not an RFC 3339 string rejects the event as `bad_timestamp`. Ops before
//! the failing one have already been applied to the rejected event.
//!
//! Retries: the engine may run an event through again after a panic, with ops
//! already applied. Every op on its own is idempotent (`rename` leaves `from`
//! absent, so a second run does nothing). A *list* is idempotent unless a later
//! op writes a path an earlier op reads, e.g. `rename a→b` then `set a`: a rerun
//! would move the new `a` into `b`. Avoid such lists.
//!
//! Outputs: `""` and `rejected`.

use chrono::{Datelike, Timelike, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::component::{BuildContext, Outputs, Transform, Verdict, REJECTED};
use crate::config::FieldError;
use crate::event::{json_kind, Event, FieldPath};
use crate::transforms::filter::show_value;

/// `[transforms.<id>]` with `type = "enrich"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// The operations, applied in order to every event.
    pub ops: Vec<EnrichOp>,
}

/// One operation, chosen by its `op` field.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnrichOp {
    /// Splits an RFC 3339 time into UTC parts.
    TimestampParts {
        /// The field holding the time.
        from: FieldPath,
        /// Where to write the UTC date as `"YYYY-MM-DD"`.
        #[serde(default)]
        date: Option<FieldPath>,
        /// Where to write the UTC hour as an integer 0–23.
        #[serde(default)]
        hour: Option<FieldPath>,
        /// Where to write the time as integer seconds since the Unix epoch.
        #[serde(default)]
        unix: Option<FieldPath>,
    },
    /// Moves a field.
    Rename {
        /// The field to move.
        from: FieldPath,
        /// Where to move it.
        to: FieldPath,
    },
    /// Copies a field.
    Copy {
        /// The field to copy.
        from: FieldPath,
        /// Where to copy it to.
        to: FieldPath,
    },
    /// Deletes a field.
    Remove {
        /// The field to delete.
        path: FieldPath,
    },
    /// Writes a fixed value.
    Set {
        /// Where to write.
        path: FieldPath,
        /// What to write: any TOML value. A bare TOML datetime is written as its
        /// RFC 3339 string (the loader hands datetimes over as strings, so they
        /// could not be told apart and refused).
        value: toml::Value,
        /// Only write when this holds.
        #[serde(default)]
        when: Option<Condition>,
    },
}

impl EnrichOp {
    /// The `op` string, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            EnrichOp::TimestampParts { .. } => "timestamp_parts",
            EnrichOp::Rename { .. } => "rename",
            EnrichOp::Copy { .. } => "copy",
            EnrichOp::Remove { .. } => "remove",
            EnrichOp::Set { .. } => "set",
        }
    }
}

/// `when = { path, equals }` or `when = { path, exists }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field to test.
    pub path: FieldPath,
    /// Holds when the field equals this value.
    #[serde(default)]
    pub equals: Option<toml::Value>,
    /// Holds when the field is present (`true`) or absent (`false`).
    #[serde(default)]
    pub exists: Option<bool>,
}

impl EnrichConfig {
    /// `""` and `rejected`.
    pub fn outputs(&self) -> Vec<String> {
        vec![String::new(), REJECTED.to_owned()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.ops.is_empty() {
            errors.push(FieldError::new(
                "ops",
                "ops is empty, so the enrich would do nothing; list at least one operation",
            ));
        }
        for (i, op) in self.ops.iter().enumerate() {
            if let Err(error) = compile(op, i) {
                errors.push(error);
            }
        }
        errors
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> {
        let ops = self
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| compile(op, i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("enrich {}: {}: {}", cx.id, e.field, e.message))?;
        Ok(Box::new(Enrich { ops }))
    }
}

/// An op ready to run: TOML values converted to JSON once.
#[derive(Debug)]
enum Op {
    TimestampParts {
        index: usize,
        from: FieldPath,
        date: Option<FieldPath>,
        hour: Option<FieldPath>,
        unix: Option<FieldPath>,
    },
    Rename {
        from: FieldPath,
        to: FieldPath,
    },
    Copy {
        from: FieldPath,
        to: FieldPath,
    },
    Remove {
        path: FieldPath,
    },
    Set {
        path: FieldPath,
        value: Value,
        when: Option<Test>,
    },
}

/// A compiled `when`.
#[derive(Debug)]
enum Test {
    Equals(FieldPath, Value),
    Exists(FieldPath, bool),
}

impl Test {
    fn holds(&self, event: &Event) -> bool {
        match self {
            Test::Equals(path, value) => event.get(path) == Some(value),
            Test::Exists(path, exists) => event.get(path).is_some() == *exists,
        }
    }
}

/// Checks op `i` and converts it to its runnable form.
fn compile(op: &EnrichOp, i: usize) -> Result<Op, FieldError> {
    Ok(match op {
        EnrichOp::TimestampParts {
            from,
            date,
            hour,
            unix,
        } => {
            if date.is_none() && hour.is_none() && unix.is_none() {
                return Err(FieldError::new(
                    format!("ops[{i}]"),
                    format!(
                        "timestamp_parts from {from} writes nothing: set at least one of date, hour, unix"
                    ),
                ));
            }
            Op::TimestampParts {
                index: i,
                from: from.clone(),
                date: date.clone(),
                hour: hour.clone(),
                unix: unix.clone(),
            }
        }
        EnrichOp::Rename { from, to } | EnrichOp::Copy { from, to } => {
            if from == to {
                return Err(FieldError::new(
                    format!("ops[{i}].to"),
                    format!("{} from {from} to itself does nothing", op.name()),
                ));
            }
            if matches!(op, EnrichOp::Rename { .. }) {
                Op::Rename {
                    from: from.clone(),
                    to: to.clone(),
                }
            } else {
                Op::Copy {
                    from: from.clone(),
                    to: to.clone(),
                }
            }
        }
        EnrichOp::Remove { path } => Op::Remove { path: path.clone() },
        EnrichOp::Set { path, value, when } => {
            let value = toml_to_json(value)
                .map_err(|why| FieldError::new(format!("ops[{i}].value"), why))?;
            let when = match when {
                None => None,
                Some(c) => Some(match (&c.equals, c.exists) {
                    (Some(equals), None) => Test::Equals(
                        c.path.clone(),
                        toml_to_json(equals)
                            .map_err(|why| FieldError::new(format!("ops[{i}].when.equals"), why))?,
                    ),
                    (None, Some(exists)) => Test::Exists(c.path.clone(), exists),
                    _ => {
                        return Err(FieldError::new(
                            format!("ops[{i}].when"),
                            format!("when on {} needs exactly one of equals or exists", c.path),
                        ))
                    }
                }),
            };
            Op::Set {
                path: path.clone(),
                value,
                when,
            }
        }
    })
}

/// Converts a TOML value to JSON. A datetime becomes its RFC 3339 string; a
/// non-finite float (JSON has no NaN or infinity) is an error naming the value.
pub fn toml_to_json(value: &toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(n) => Value::from(*n),
        toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(format!(
                    "{f} cannot be written as JSON, which has no NaN or infinity"
                ))
            }
        },
        toml::Value::Boolean(b) => Value::Bool(*b),
        // JSON has no datetime type; its RFC 3339 text is the natural JSON form.
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(toml_to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v)?)))
                .collect::<Result<serde_json::Map<_, _>, String>>()?,
        ),
    })
}

/// A running enrich.
pub struct Enrich {
    ops: Vec<Op>,
}

impl Enrich {
    /// Applies every op in order; stops at the first that rejects the event.
    fn apply(&self, event: &mut Event) -> Result<(), String> {
        for op in &self.ops {
            match op {
                Op::TimestampParts {
                    index,
                    from,
                    date,
                    hour,
                    unix,
                } => {
                    // The usual case reads the string without building a
                    // value; anything else is looked at as a value.
                    let parsed = event
                        .get_str(from)
                        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok());
                    let time = match parsed.map(|time| time.with_timezone(&Utc)) {
                        Some(time) => time,
                        None => match event.get(from) {
                        None | Some(Value::Null) => continue,
                        Some(Value::String(text)) => {
                            return Err(format!(
                                "ops[{index}] (timestamp_parts): {from} {} is not a valid RFC 3339 time",
                                show_value(&Value::String(text.clone()))
                            ))
                        }
                        Some(other) => {
                            return Err(format!(
                                "ops[{index}] (timestamp_parts): {from} {} is {}, not an RFC 3339 time string",
                                show_value(other),
                                json_kind(other)
                            ))
                        }
                        },
                    };
                    if let Some(path) = date {
                        let text =
                            format!("{:04}-{:02}-{:02}", time.year(), time.month(), time.day());
                        event.insert(path, Value::String(text));
                    }
                    if let Some(path) = hour {
                        event.insert(path, Value::from(time.hour()));
                    }
                    if let Some(path) = unix {
                        event.insert(path, Value::from(time.timestamp()));
                    }
                }
                Op::Rename { from, to } => {
                    if let Some(value) = event.remove(from) {
                        event.insert(to, value);
                    }
                }
                Op::Copy { from, to } => {
                    if let Some(value) = event.get(from) {
                        if event.get(to) != Some(value) {
                            let value = value.clone();
                            event.insert(to, value);
                        }
                    }
                }
                Op::Remove { path } => {
                    event.remove(path);
                }
                Op::Set { path, value, when } => {
                    if when.as_ref().is_some_and(|test| !test.holds(event)) {
                        continue;
                    }
                    // Skipping an equal value saves the clone on reruns and on
                    // events that already carry it.
                    if event.get(path) != Some(value) {
                        event.insert(path, value.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

impl Transform for Enrich {
    fn transform(&mut self, event: &mut Event, _out: &mut Outputs) -> Verdict {
        match self.apply(event) {
            Ok(()) => Verdict::Emit(0),
            Err(message) => Verdict::Reject {
                reason: "bad_timestamp",
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StateStore;
    use crate::config::EngineConfig;
    use serde_json::json;

    fn config(toml_text: &str) -> EnrichConfig {
        crate::config::from_table(toml::from_str(toml_text).unwrap()).unwrap()
    }

    fn enrich(toml_text: &str) -> (Box<dyn Transform>, Outputs) {
        let c = config(toml_text);
        assert_eq!(c.validate(), vec![]);
        let engine = EngineConfig::default();
        let state = StateStore::default();
        let cx = BuildContext {
            id: "enriched",
            engine: &engine,
            state: &state,
            shard: None,
        };
        let out = Outputs::new("enriched".into(), c.outputs().into());
        (c.build(&cx).unwrap(), out)
    }

    fn apply(toml_text: &str, input: Value) -> (Verdict, Value) {
        let (mut t, mut out) = enrich(toml_text);
        let mut event = Event::from_json(&input.to_string()).unwrap();
        let verdict = t.transform(&mut event, &mut out);
        (verdict, Value::Object(event.into_fields()))
    }

    const ISSUE_EXAMPLE: &str = r#"
        ops = [
          { op = "timestamp_parts", from = "timestamp", date = "date", hour = "hour", unix = "timestamp_unix" },
          { op = "rename", from = "properties.sku", to = "properties.item_id" },
          { op = "set", path = "pipeline", value = "sluice" },
          { op = "set", path = "context.app.build", value = "1.2.4", when = { path = "context.app.build", equals = "1.2.3-broken" } },
        ]
    "#;

    #[test]
    fn timestamp_parts_convert_offsets_to_utc() {
        let (verdict, out) = apply(
            ISSUE_EXAMPLE,
            json!({"timestamp": "2024-03-01T01:30:00+02:00"}),
        );
        assert_eq!(verdict, Verdict::Emit(0));
        assert_eq!(out["date"], "2024-02-29");
        assert_eq!(out["hour"], 23);
        assert_eq!(out["timestamp_unix"], 1_709_249_400);
    }

    #[test]
    fn issue_example_end_to_end_and_idempotent() {
        let (mut t, mut out) = enrich(ISSUE_EXAMPLE);
        let mut event = Event::from_json(
            &json!({
                "timestamp": "2024-03-01T10:00:00Z",
                "properties": {"sku": "X-1"},
                "context": {"app": {"build": "1.2.3-broken"}}
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(t.transform(&mut event, &mut out), Verdict::Emit(0));
        let once = event.clone();
        assert_eq!(t.transform(&mut event, &mut out), Verdict::Emit(0));
        assert_eq!(event, once, "a rerun changes nothing");
        let v = Value::Object(event.into_fields());
        assert_eq!(v["properties"], json!({"item_id": "X-1"}));
        assert_eq!(v["pipeline"], "sluice");
        assert_eq!(v["context"]["app"]["build"], "1.2.4");
        assert_eq!(v["hour"], 10);
    }

    #[test]
    fn when_guards_set() {
        let (_, out) = apply(
            ISSUE_EXAMPLE,
            json!({"context": {"app": {"build": "1.0.0"}}}),
        );
        assert_eq!(out["context"]["app"]["build"], "1.0.0");
        let toml_text = r#"ops = [{ op = "set", path = "source", value = "web", when = { path = "source", exists = false } }]"#;
        assert_eq!(apply(toml_text, json!({})).1["source"], "web");
        assert_eq!(
            apply(toml_text, json!({"source": "ios"})).1["source"],
            "ios"
        );
    }

    #[test]
    fn missing_from_is_skipped_and_bad_time_rejected() {
        let (verdict, out) = apply(ISSUE_EXAMPLE, json!({"x": 1}));
        assert_eq!(verdict, Verdict::Emit(0));
        assert!(out.get("date").is_none());
        for bad in [json!("2024-02-30T10:00:00Z"), json!(12)] {
            let (verdict, _) = apply(ISSUE_EXAMPLE, json!({ "timestamp": bad }));
            match verdict {
                Verdict::Reject { reason, message } => {
                    assert_eq!(reason, "bad_timestamp");
                    assert!(
                        message.starts_with("ops[0] (timestamp_parts): timestamp "),
                        "{message}"
                    );
                }
                other => panic!("expected a rejection, got {other:?}"),
            }
        }
    }

    #[test]
    fn copy_remove_and_set_any_value() {
        let toml_text = r#"ops = [
            { op = "copy", from = "userId", to = "traits.id" },
            { op = "remove", path = "secret" },
            { op = "set", path = "meta", value = { tags = ["a", 1, 2.5, true] } },
        ]"#;
        let (_, out) = apply(toml_text, json!({"userId": "u1", "secret": "s"}));
        assert_eq!(out["traits"]["id"], "u1");
        assert_eq!(out["userId"], "u1");
        assert!(out.get("secret").is_none());
        assert_eq!(out["meta"], json!({"tags": ["a", 1, 2.5, true]}));
    }

    #[test]
    fn toml_datetimes_are_written_as_strings() {
        let toml_text = r#"ops = [{ op = "set", path = "since", value = 1979-05-27T07:32:00Z }]"#;
        assert_eq!(
            apply(toml_text, json!({})).1["since"],
            "1979-05-27T07:32:00Z"
        );
        let direct: toml::Value = toml::from_str("v = 1979-05-27T07:32:00Z").unwrap();
        assert_eq!(
            toml_to_json(&direct["v"]),
            Ok(json!("1979-05-27T07:32:00Z"))
        );
    }

    #[test]
    fn rename_of_absent_field_is_a_no_op() {
        let (_, out) = apply(ISSUE_EXAMPLE, json!({"properties": {"price": 3}}));
        assert_eq!(out["properties"], json!({"price": 3}));
    }

    #[test]
    fn validation_errors() {
        let c = config(
            r#"ops = [
                { op = "timestamp_parts", from = "timestamp" },
                { op = "rename", from = "a", to = "a" },
                { op = "set", path = "x", value = 1, when = { path = "y" } },
                { op = "set", path = "n", value = nan },
            ]"#,
        );
        let fields: Vec<String> = c.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec!["ops[0]", "ops[1].to", "ops[2].when", "ops[3].value"]
        );
        assert_eq!(config("ops = []").validate()[0].field, "ops");
    }

    #[test]
    fn unknown_ops_and_fields_are_refused() {
        let parse =
            |text: &str| crate::config::from_table::<EnrichConfig>(toml::from_str(text).unwrap());
        assert!(parse(r#"ops = [{ op = "upcase", path = "a" }]"#).is_err());
        assert!(parse(r#"ops = [{ op = "remove", path = "a", to = "b" }]"#).is_err());
        assert!(parse(
            r#"ops = [{ op = "set", path = "a", value = 1, when = { path = "b", equal = 1 } }]"#
        )
        .is_err());
    }
}
