//! Events, and the dotted field paths used to read and write them.
//!
//! An [`Event`] is one Segment-style JSON object (`track`, `page`, `identify`, ...).
//! Components address fields with [`FieldPath`]s such as `context.device.id`,
//! parsed once when the topology is loaded so the hot path never re-splits strings.
//! Rejected events travel as [`Event::rejection`] records: the original event
//! wrapped together with the component that rejected it and a bounded `reason`.

pub mod json;
mod raw;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One analytics event: a JSON object.
///
/// Events decoded from text ([`Event::from_json`]) stay text, indexed, until
/// a component asks for more than reading and setting fields (see
/// [`raw`]); events built from a map ([`Event::from_map`], the HTTP source,
/// summaries, rejections) are trees. Both behave the same through every
/// method here; [`Event::fields_mut`] and [`Event::into_fields`] turn a text
/// event into a tree for good, so hot paths use `get`, `insert` and `remove`.
#[derive(Clone)]
pub struct Event(Repr);

#[derive(Clone)]
enum Repr {
    Tree(Map<String, Value>),
    Raw(raw::RawEvent),
}

impl Default for Event {
    fn default() -> Self {
        Event(Repr::Tree(Map::new()))
    }
}

impl Event {
    /// An event holding `fields`.
    pub fn from_map(fields: Map<String, Value>) -> Self {
        Event(Repr::Tree(fields))
    }

    /// Parses one JSON object. Anything else (an array, a number, bad JSON)
    /// is an error naming what was found.
    pub fn from_json(text: &str) -> Result<Self, EventParseError> {
        if let Some(raw) = raw::RawEvent::index(text) {
            return Ok(Event(Repr::Raw(raw)));
        }
        match json::parse(text) {
            Ok(Value::Object(map)) => Ok(Event(Repr::Tree(map))),
            Ok(other) => Err(EventParseError::NotAnObject(json_kind(&other))),
            Err(err) => Err(EventParseError::Malformed(err.to_string())),
        }
    }

    /// An event from a JSON object this program wrote itself (a session
    /// summary): kept as text without the validating pass `from_json` makes.
    /// `text` must be one compact JSON object with distinct keys at every
    /// level, every string escaped as [`json::write_str`] does; anything else
    /// is a bug of the caller (debug builds check).
    pub fn from_written_json(text: String) -> Self {
        Event(Repr::Raw(raw::RawEvent::index_written(text)))
    }

    /// The top-level fields. For an event still held as text this builds
    /// (once, until the next change) a map of the whole event.
    pub fn fields(&self) -> &Map<String, Value> {
        match &self.0 {
            Repr::Tree(map) => map,
            Repr::Raw(raw) => raw.fields(),
        }
    }

    /// The top-level fields, mutably (the event becomes a tree).
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        if let Repr::Raw(raw) = &mut self.0 {
            let raw = std::mem::replace(raw, raw::RawEvent::empty());
            self.0 = Repr::Tree(raw.into_map());
        }
        match &mut self.0 {
            Repr::Tree(map) => map,
            Repr::Raw(_) => unreachable!("just made a tree"),
        }
    }

    /// Consumes the event, giving its fields.
    pub fn into_fields(self) -> Map<String, Value> {
        match self.0 {
            Repr::Tree(map) => map,
            Repr::Raw(raw) => raw.into_map(),
        }
    }

    /// The value at `path`, if every step exists.
    pub fn get(&self, path: &FieldPath) -> Option<&Value> {
        let (first, rest) = path.segments.split_first()?;
        let mut value = match &self.0 {
            Repr::Tree(map) => map.get(first)?,
            Repr::Raw(raw) => return raw.get(&path.segments),
        };
        for segment in rest {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }

    /// The value at `path` when it is a JSON string.
    pub fn get_str(&self, path: &FieldPath) -> Option<&str> {
        match &self.0 {
            Repr::Tree(_) => self.get(path).and_then(Value::as_str),
            Repr::Raw(raw) => raw.get_str(&path.segments),
        }
    }

    /// True when `path` holds something other than `null` or `""`.
    pub fn has_value(&self, path: &FieldPath) -> bool {
        !matches!(
            self.kind(path),
            None | Some(Kind::Null) | Some(Kind::String { empty: true })
        )
    }

    /// The kind of value at `path`, without building it.
    pub fn kind(&self, path: &FieldPath) -> Option<Kind> {
        match &self.0 {
            Repr::Tree(_) => self.get(path).map(Kind::of),
            Repr::Raw(raw) => raw.kind(&path.segments),
        }
    }

    /// Writes `value` at `path`, creating intermediate objects. An intermediate
    /// step that holds a non-object is replaced by an object, as a `set` in a
    /// document store would; returns the value that was at `path`.
    pub fn insert(&mut self, path: &FieldPath, value: Value) -> Option<Value> {
        match &mut self.0 {
            Repr::Tree(map) => insert_into(map, &path.segments, value),
            Repr::Raw(raw) => raw.insert(&path.segments, value),
        }
    }

    /// Writes the value whose JSON text is `json` at `path`, as `insert`
    /// does. For a component that renders a value as text anyway (a session
    /// tag): an event kept as text stores the text as it is. `json` must be
    /// valid JSON; text that is not is stored as a string.
    pub fn insert_json(&mut self, path: &FieldPath, json: String) {
        if let Repr::Raw(raw) = &mut self.0 {
            if let [key] = path.segments.as_slice() {
                raw.insert_json(key, json.into_boxed_str());
                return;
            }
        }
        let value = json::parse(&json).unwrap_or(Value::String(json));
        self.insert(path, value);
    }

    /// Removes and returns the value at `path`.
    pub fn remove(&mut self, path: &FieldPath) -> Option<Value> {
        match &mut self.0 {
            Repr::Tree(map) => {
                let (last, parents) = path.segments.split_last()?;
                let mut map = map;
                for segment in parents {
                    map = map.get_mut(segment)?.as_object_mut()?;
                }
                map.remove(last)
            }
            Repr::Raw(raw) => raw.remove(&path.segments),
        }
    }

    /// Appends the event as one line of NDJSON (with the trailing `\n`).
    /// A tree is written with sorted keys; an event still held as text keeps
    /// its entries' order and spelling (see [`raw`]).
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Tree(map) => json::write_object(map, out),
            Repr::Raw(raw) => raw.write(out),
        }
        out.push(b'\n');
    }

    /// An estimate of the heap bytes the event holds, for memory bounds:
    /// strings and keys, plus a share per map entry (a `BTreeMap` node holds
    /// up to 11 entries of ~56 bytes; ~64 per entry with the node overhead).
    pub fn approx_heap_bytes(&self) -> u64 {
        match &self.0 {
            Repr::Tree(map) => approx_map_bytes(map),
            Repr::Raw(raw) => raw.approx_heap_bytes(),
        }
    }

    /// Starts loading into cache the memory the first reads of each event
    /// touch (its index and the head of its text). A batch arrives from
    /// another core, so each event's first read is otherwise a string of
    /// dependent cache misses; asked for the whole batch up front, the loads
    /// overlap. Only a hint: does nothing on other CPUs or for trees.
    pub fn prefetch(events: &[Event]) {
        for event in events {
            if let Repr::Raw(raw) = &event.0 {
                raw.prefetch();
            }
        }
    }

    /// A rejection record: the rejected event with the component that rejected
    /// it, a bounded machine-readable `reason` and a human `message`.
    pub fn rejection(event: Event, component_id: &str, reason: &str, message: String) -> Event {
        let mut record = Map::with_capacity(4);
        record.insert("reason".into(), Value::String(reason.into()));
        record.insert("message".into(), Value::String(message));
        record.insert("component_id".into(), Value::String(component_id.into()));
        record.insert("event".into(), Value::Object(event.into_fields()));
        Event(Repr::Tree(record))
    }
}

/// What kind of JSON value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String { empty: bool },
    Array,
    Object,
}

impl Kind {
    pub fn of(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(s) => Kind::String {
                empty: s.is_empty(),
            },
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }
}

/// `Event::insert` on a map: `segments` non-empty.
fn insert_into(map: &mut Map<String, Value>, segments: &[String], value: Value) -> Option<Value> {
    let (last, parents) = segments.split_last()?;
    let mut map = map;
    for segment in parents {
        let slot = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        map = slot.as_object_mut()?; // just made an object: always Some
    }
    map.insert(last.clone(), value)
}

fn approx_map_bytes(map: &Map<String, Value>) -> u64 {
    map.iter()
        .map(|(key, value)| 64 + key.len() as u64 + approx_value_bytes(value))
        .sum()
}

fn approx_value_bytes(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.len() as u64,
        Value::Array(items) => items.iter().map(|v| 32 + approx_value_bytes(v)).sum(),
        Value::Object(map) => approx_map_bytes(map),
        _ => 0,
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Event").field(self.fields()).finish()
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Event::from_map)
    }
}

impl From<Map<String, Value>> for Event {
    fn from(fields: Map<String, Value>) -> Self {
        Event::from_map(fields)
    }
}

/// Why a line of text is not an event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventParseError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
}

impl EventParseError {
    /// The bounded reason used in metrics and rejection records.
    pub fn reason(&self) -> &'static str {
        match self {
            EventParseError::Malformed(_) => "malformed_json",
            EventParseError::NotAnObject(_) => "not_an_object",
        }
    }
}

/// The name of a JSON value's kind, for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A dotted path to a field, such as `context.device.id`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses `a.b.c`. Empty paths and empty segments (`a..b`) are errors.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("field path is empty".into());
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("field path \"{text}\" has an empty segment"));
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// A path written in the code, such as `"type"`.
    ///
    /// # Panics
    /// If `text` is not a valid path: only for literals, where that is a bug.
    pub fn literal(text: &str) -> Self {
        FieldPath::parse(text).expect("a literal field path is valid")
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({:?})", self.text)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FieldPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn get_insert_remove_nested() {
        let mut e = Event::from_json(r#"{"context":{"device":{"id":"m1"}},"a":1}"#).unwrap();
        assert_eq!(e.get_str(&path("context.device.id")), Some("m1"));
        assert_eq!(e.get(&path("context.nope.id")), None);
        e.insert(&path("x.y"), json!(2));
        assert_eq!(e.get(&path("x.y")), Some(&json!(2)));
        e.insert(&path("a.b"), json!(3)); // replaces the number with an object
        assert_eq!(e.get(&path("a.b")), Some(&json!(3)));
        assert_eq!(e.remove(&path("context.device.id")), Some(json!("m1")));
        assert_eq!(e.remove(&path("context.device.id")), None);
    }

    #[test]
    fn has_value_treats_null_and_empty_as_missing() {
        let e = Event::from_json(r#"{"a":null,"b":"","c":0,"d":"x"}"#).unwrap();
        assert!(!e.has_value(&path("a")));
        assert!(!e.has_value(&path("b")));
        assert!(e.has_value(&path("c")));
        assert!(e.has_value(&path("d")));
        assert!(!e.has_value(&path("zz")));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert_eq!(
            Event::from_json("[1]").unwrap_err(),
            EventParseError::NotAnObject("an array")
        );
        assert_eq!(
            Event::from_json("{").unwrap_err().reason(),
            "malformed_json"
        );
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("").is_err());
    }

    #[test]
    fn rejection_wraps_the_event() {
        let e = Event::from_json(r#"{"a":1}"#).unwrap();
        let r = Event::rejection(e, "valid", "missing_field", "no b".into());
        let mut line = Vec::new();
        r.write_json_line(&mut line);
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["reason"], "missing_field");
        assert_eq!(v["event"]["a"], 1);
        assert_eq!(v["component_id"], "valid");
    }
}
