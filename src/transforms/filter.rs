//! `filter`: keeps events that pass an allowlist and shape checks, rejects the rest.
//!
//! Every check is optional; a filter with no fields passes everything. Checks run
//! cheapest first and the first failing one decides the rejection:
//!
//! | order | field             | rejects with                          |
//! |-------|-------------------|---------------------------------------|
//! | 1     | `types`           | `missing_type`, `type_not_allowed`    |
//! | 2     | `events`          | `event_not_allowed`, `event_disabled`, `not_a_string` |
//! | 3     | `require`         | `missing_field`                       |
//! | 4     | `require_any`     | `missing_any_field`                   |
//! | 5     | `require_by_type` | `missing_field`                       |
//! | 6     | `strings`         | `not_a_string`                        |
//! | 7     | `timestamps`      | `bad_timestamp`                       |
//!
//! Decisions worth knowing:
//! * When `types` is set, an event whose `type` is absent, `null` or not a string
//!   is rejected as `missing_type`: it cannot be shown to be an allowed type.
//! * `events` looks only at events that carry an `event` field (in Segment, `track`
//!   calls); others pass it. A name mapped to `false` is `event_disabled`, a name
//!   not listed is `event_not_allowed`, an `event` that is not a string is
//!   `not_a_string`.
//! * `require_by_type` may name types outside `types` (the issue's example does,
//!   for `group` and `alias`); such entries simply never apply.
//! * "Present" for `require` means present, not `null` and not `""`. `strings` and
//!   `timestamps` skip fields that are absent or `null` (pair them with `require`
//!   to insist on presence); an empty string is checked, so `""` is a bad timestamp.
//! * Timestamps must parse as RFC 3339 with a real calendar date
//!   (`2024-02-30T10:00:00Z` fails).
//!
//! Outputs: `""` (kept events) and `rejected`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::component::{BuildContext, Outputs, Transform, Verdict, REJECTED};
use crate::config::FieldError;
use crate::event::{json_kind, Event, FieldPath, Kind};

/// `[transforms.<id>]` with `type = "filter"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Allowed values of the event's `type` field; absent means any type.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Event-name allowlist for events that have an `event` field: `true` allows
    /// the name, `false` explicitly disables it. Absent means any name.
    #[serde(default)]
    pub events: Option<BTreeMap<String, bool>>,
    /// Fields every event must have (present, not `null`, not `""`).
    #[serde(default)]
    pub require: Vec<FieldPath>,
    /// Groups of fields of which each event must have at least one.
    #[serde(default)]
    pub require_any: Vec<Vec<FieldPath>>,
    /// Fields required only of events of a given `type`.
    #[serde(default)]
    pub require_by_type: BTreeMap<String, Vec<FieldPath>>,
    /// Fields that, when present and not `null`, must be JSON strings.
    #[serde(default)]
    pub strings: Vec<FieldPath>,
    /// Fields that, when present and not `null`, must be RFC 3339 times.
    #[serde(default)]
    pub timestamps: Vec<FieldPath>,
}

impl FilterConfig {
    /// `""` for kept events, then `rejected`.
    pub fn outputs(&self) -> Vec<String> {
        vec![String::new(), REJECTED.to_owned()]
    }

    /// Finds settings that would reject everything or could never apply.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(types) = &self.types {
            if types.is_empty() {
                errors.push(FieldError::new(
                    "types",
                    "types is empty, so every event would be rejected; omit it to allow any type",
                ));
            }
            for (i, name) in types.iter().enumerate() {
                if name.is_empty() {
                    errors.push(FieldError::new(
                        format!("types[{i}]"),
                        "type \"\" can never match: an empty type is treated as missing",
                    ));
                }
            }
        }
        if let Some(events) = &self.events {
            if events.is_empty() {
                errors.push(FieldError::new(
                    "events",
                    "events is empty, so every event with a name would be rejected; omit it to allow any name",
                ));
            }
        }
        for (i, group) in self.require_any.iter().enumerate() {
            if group.is_empty() {
                errors.push(FieldError::new(
                    format!("require_any[{i}]"),
                    "the group is empty, so no event could have one of its fields",
                ));
            }
        }
        errors
    }

    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> {
        Ok(Box::new(Filter::new(self)))
    }
}

/// A running filter: the config, laid out for lookups.
pub struct Filter {
    types: Option<Vec<String>>,
    events: Option<HashMap<String, bool>>,
    require: Vec<FieldPath>,
    require_any: Vec<Vec<FieldPath>>,
    require_by_type: HashMap<String, Vec<FieldPath>>,
    strings: Vec<FieldPath>,
    timestamps: Vec<FieldPath>,
    type_field: FieldPath,
    event_field: FieldPath,
}

/// Why an event failed: a bounded reason and a message for a person.
type Failure = (&'static str, String);

impl Filter {
    pub fn new(config: &FilterConfig) -> Self {
        Filter {
            types: config.types.clone(),
            events: config
                .events
                .as_ref()
                .map(|events| events.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            require: config.require.clone(),
            require_any: config.require_any.clone(),
            require_by_type: config
                .require_by_type
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            strings: config.strings.clone(),
            timestamps: config.timestamps.clone(),
            type_field: FieldPath::literal("type"),
            event_field: FieldPath::literal("event"),
        }
    }

    /// Runs every check in order; the first failure wins.
    pub fn check(&self, event: &Event) -> Result<(), Failure> {
        let type_name = event.get_str(&self.type_field);

        if let Some(types) = &self.types {
            match type_name {
                Some(t) if !t.is_empty() => {
                    if !types.iter().any(|allowed| allowed == t) {
                        return Err((
                            "type_not_allowed",
                            format!("type \"{t}\" is not one of the allowed types {types:?}"),
                        ));
                    }
                }
                _ => {
                    let found = match event.get(&self.type_field) {
                        None => "missing".to_owned(),
                        Some(v) => format!("{} ({})", show_value(v), json_kind(v)),
                    };
                    return Err((
                        "missing_type",
                        format!(
                            "type is {found}, so it cannot be one of the allowed types {types:?}"
                        ),
                    ));
                }
            }
        }

        if let Some(events) = &self.events {
            match event.kind(&self.event_field) {
                None | Some(Kind::Null) => {}
                Some(Kind::String { .. }) => {
                    let name = event.get_str(&self.event_field).unwrap_or_default();
                    match events.get(name) {
                        Some(true) => {}
                        Some(false) => {
                            return Err((
                                "event_disabled",
                                format!("event \"{name}\" is disabled (mapped to false in events)"),
                            ))
                        }
                        None => {
                            return Err((
                                "event_not_allowed",
                                format!("event \"{name}\" is not in the events allowlist"),
                            ))
                        }
                    }
                }
                Some(_) => {
                    let other = event.get(&self.event_field).unwrap_or(&Value::Null);
                    return Err((
                        "not_a_string",
                        format!(
                        "event is {} ({}), not a string, so it cannot match the events allowlist",
                        show_value(other),
                        json_kind(other)
                    ),
                    ));
                }
            }
        }

        for path in &self.require {
            if let Some(absence) = absence(event, path) {
                return Err((
                    "missing_field",
                    format!("required field {path} is {absence}"),
                ));
            }
        }

        for group in &self.require_any {
            if !group.iter().any(|path| event.has_value(path)) {
                let names: Vec<&str> = group.iter().map(FieldPath::as_str).collect();
                return Err((
                    "missing_any_field",
                    format!(
                        "none of the fields {} has a value (at least one is required)",
                        names.join(", ")
                    ),
                ));
            }
        }

        let required = type_name.and_then(|t| Some((t, self.require_by_type.get(t)?)));
        if let Some((t, paths)) = required {
            for path in paths {
                if let Some(absence) = absence(event, path) {
                    return Err((
                        "missing_field",
                        format!("field {path}, required for type \"{t}\", is {absence}"),
                    ));
                }
            }
        }

        for path in &self.strings {
            match event.kind(path) {
                None | Some(Kind::Null) | Some(Kind::String { .. }) => {}
                Some(_) => {
                    let other = event.get(path).unwrap_or(&Value::Null);
                    return Err((
                        "not_a_string",
                        format!(
                            "{path} is {} ({}), not a string",
                            show_value(other),
                            json_kind(other)
                        ),
                    ));
                }
            }
        }

        for path in &self.timestamps {
            match event.kind(path) {
                None | Some(Kind::Null) => {}
                Some(Kind::String { .. }) => {
                    let text = event.get_str(path).unwrap_or_default();
                    if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                        return Err((
                            "bad_timestamp",
                            format!(
                                "{path} {} is not a valid RFC 3339 time",
                                show_value(&Value::String(text.to_owned()))
                            ),
                        ));
                    }
                }
                Some(_) => {
                    let other = event.get(path).unwrap_or(&Value::Null);
                    return Err((
                        "bad_timestamp",
                        format!(
                            "{path} {} is {}, not an RFC 3339 time string",
                            show_value(other),
                            json_kind(other)
                        ),
                    ));
                }
            }
        }

        Ok(())
    }
}

impl Transform for Filter {
    fn transform(&mut self, event: &mut Event, _out: &mut Outputs) -> Verdict {
        match self.check(event) {
            Ok(()) => Verdict::Emit(0),
            Err((reason, message)) => Verdict::Reject { reason, message },
        }
    }
}

/// How a field lacks a value (`missing`, `null`, `an empty string`), or `None`
/// when it has one.
fn absence(event: &Event, path: &FieldPath) -> Option<&'static str> {
    match event.kind(path) {
        None => Some("missing"),
        Some(Kind::Null) => Some("null"),
        Some(Kind::String { empty: true }) => Some("an empty string"),
        Some(_) => None,
    }
}

/// Longest rendering of a value put in a message: rejection records carry the
/// whole event anyway, and a huge object would bloat every log line.
const SHOWN_VALUE_MAX: usize = 120;

/// A value as JSON text for a message (strings quoted), cut at
/// [`SHOWN_VALUE_MAX`] bytes with an ellipsis.
pub(crate) fn show_value(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > SHOWN_VALUE_MAX {
        let mut cut = SHOWN_VALUE_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(toml_text: &str) -> Filter {
        let config: FilterConfig = toml::from_str(toml_text).unwrap();
        assert_eq!(config.validate(), vec![]);
        Filter::new(&config)
    }

    fn event(json: &str) -> Event {
        Event::from_json(json).unwrap()
    }

    fn reason(f: &Filter, json: &str) -> Option<&'static str> {
        f.check(&event(json)).err().map(|(reason, _)| reason)
    }

    const FULL: &str = r#"
        types = ["track", "page", "identify"]
        events = { "Order Completed" = true, "Product Clicked" = true, "Debug Ping" = false }
        require = ["messageId", "timestamp"]
        require_any = [["context.device.id", "anonymousId"]]
        require_by_type = { track = ["event"], identify = ["userId"] }
        strings = ["messageId", "event", "anonymousId", "userId"]
        timestamps = ["timestamp"]
    "#;

    const GOOD: &str = r#"{"type":"track","event":"Order Completed","messageId":"m1",
        "timestamp":"2024-03-01T10:00:00+02:00","anonymousId":"a1"}"#;

    #[test]
    fn empty_filter_passes_everything() {
        let mut f = filter("");
        let mut out = Outputs::new("valid".into(), FilterConfig::default().outputs().into());
        assert_eq!(
            f.transform(&mut event(r#"{"x":1}"#), &mut out),
            Verdict::Emit(0)
        );
    }

    #[test]
    fn a_good_event_passes_every_check() {
        assert_eq!(reason(&filter(FULL), GOOD), None);
    }

    #[test]
    fn every_reason() {
        let f = filter(FULL);
        let cases = [
            (r#"{"messageId":"m1"}"#, "missing_type"),
            (r#"{"type":7}"#, "missing_type"),
            (r#"{"type":"screen"}"#, "type_not_allowed"),
            (
                r#"{"type":"track","event":"Signed Up"}"#,
                "event_not_allowed",
            ),
            (r#"{"type":"track","event":"Debug Ping"}"#, "event_disabled"),
            (r#"{"type":"track","event":5}"#, "not_a_string"),
            (
                r#"{"type":"page","messageId":"","timestamp":"2024-03-01T10:00:00Z"}"#,
                "missing_field",
            ),
            (
                r#"{"type":"page","messageId":"m1","timestamp":"2024-03-01T10:00:00Z"}"#,
                "missing_any_field",
            ),
            (
                r#"{"type":"identify","messageId":"m1","timestamp":"2024-03-01T10:00:00Z","anonymousId":"a"}"#,
                "missing_field",
            ),
            (
                r#"{"type":"page","messageId":"m1","timestamp":"2024-03-01T10:00:00Z","anonymousId":"a","userId":42}"#,
                "not_a_string",
            ),
            (
                r#"{"type":"page","messageId":"m1","timestamp":"2024-02-30T10:00:00Z","anonymousId":"a"}"#,
                "bad_timestamp",
            ),
            (
                r#"{"type":"page","messageId":"m1","timestamp":1709287200,"anonymousId":"a"}"#,
                "bad_timestamp",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(reason(&f, json), Some(expected), "{json}");
        }
    }

    #[test]
    fn messages_name_the_field_and_value() {
        let f = filter(r#"timestamps = ["timestamp"]"#);
        let (_, message) = f
            .check(&event(r#"{"timestamp":"2024-02-30T10:00:00Z"}"#))
            .unwrap_err();
        assert_eq!(
            message,
            r#"timestamp "2024-02-30T10:00:00Z" is not a valid RFC 3339 time"#
        );
        let f = filter(FULL);
        let (_, message) = f
            .check(&event(r#"{"type":"track","event":"Debug Ping"}"#))
            .unwrap_err();
        assert!(message.contains("\"Debug Ping\""), "{message}");
        let (_, message) = f
            .check(&event(
                r#"{"type":"track","event":"Order Completed","timestamp":"2024-03-01T10:00:00Z"}"#,
            ))
            .unwrap_err();
        assert_eq!(message, "required field messageId is missing");
    }

    #[test]
    fn events_allowlist_ignores_events_without_a_name() {
        let f = filter(r#"events = { "Order Completed" = true }"#);
        assert_eq!(reason(&f, r#"{"type":"page"}"#), None);
        assert_eq!(reason(&f, r#"{"type":"page","event":null}"#), None);
        assert_eq!(reason(&f, r#"{"event":"Order Completed"}"#), None);
    }

    #[test]
    fn strings_and_timestamps_skip_absent_and_null() {
        let f = filter(
            r#"
            strings = ["userId"]
            timestamps = ["sentAt"]
        "#,
        );
        assert_eq!(reason(&f, r#"{"userId":null}"#), None);
        assert_eq!(reason(&f, r#"{}"#), None);
        assert_eq!(reason(&f, r#"{"sentAt":""}"#), Some("bad_timestamp"));
    }

    #[test]
    fn transform_maps_failures_to_rejections() {
        let mut f = filter(FULL);
        let mut out = Outputs::new("valid".into(), FilterConfig::default().outputs().into());
        match f.transform(&mut event(r#"{"type":"screen"}"#), &mut out) {
            Verdict::Reject { reason, message } => {
                assert_eq!(reason, "type_not_allowed");
                assert!(message.contains("\"screen\""), "{message}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn validate_finds_settings_that_cannot_work() {
        let config: FilterConfig = toml::from_str(
            r#"
            types = ["track"]
            events = {}
            require_any = [[]]
            require_by_type = { group = ["groupId"] }
        "#,
        )
        .unwrap();
        let fields: Vec<String> = config.validate().into_iter().map(|e| e.field).collect();
        // A `require_by_type` entry for a type outside `types` never applies,
        // but is allowed: the issue's own example has one (`group`, `alias`),
        // and it keeps working if `types` is widened later.
        assert_eq!(fields, vec!["events", "require_any[0]"]);
        let config: FilterConfig = toml::from_str("types = []").unwrap();
        assert_eq!(config.validate()[0].field, "types");
    }

    #[test]
    fn unknown_fields_and_bad_paths_are_refused() {
        assert!(toml::from_str::<FilterConfig>("typs = [\"track\"]").is_err());
        assert!(toml::from_str::<FilterConfig>("require = [\"a..b\"]").is_err());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = Value::String("x".repeat(500));
        let shown = show_value(&long);
        assert!(shown.chars().count() <= SHOWN_VALUE_MAX + 1);
        assert!(shown.ends_with('…'));
    }
}
