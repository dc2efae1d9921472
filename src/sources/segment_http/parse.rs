//! From a request body to events, the way Segment's tracking API reads them.
//!
//! * `/v1/track|identify|page|screen|group|alias`: the body is one event;
//!   `type` is set from the path when the event has none.
//! * `/v1/batch`, `/v1/import`: `{"batch": [...], "context": {...}, "sentAt":
//!   ..., "writeKey": ...}`. Keys of the envelope's `context` missing from an
//!   event's `context` are copied into it, and the envelope's `sentAt` into
//!   each event without one.
//! * `/v1/webhook`: one event, or an array of events (a webhook destination).
//!
//! A request is taken whole or not at all: a body that is not JSON, not an
//! object, a batch with a non-object element, an event over `max_event_bytes`
//! or more than `max_batch_events` events refuses the whole request
//! ([`Invalid`], answered 400), so a client retrying it cannot duplicate half of
//! it. Objects that are merely invalid as events (no `messageId`, a bad
//! timestamp) are accepted, as Segment does; the `filter` downstream rejects them.
//!
//! Every accepted event gets `receivedAt` (the server's clock), `context.ip`
//! when it has none, and loses `writeKey` (a secret has no place in the output).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::{json_kind, Event};

/// The endpoints of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
    Batch,
    Import,
    Webhook,
}

impl Endpoint {
    /// Every endpoint, for registering metrics.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::Track,
        Endpoint::Identify,
        Endpoint::Page,
        Endpoint::Screen,
        Endpoint::Group,
        Endpoint::Alias,
        Endpoint::Batch,
        Endpoint::Import,
        Endpoint::Webhook,
    ];

    /// The endpoint of `/v1/<name>`.
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The last path segment; also the `endpoint` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Track => "track",
            Endpoint::Identify => "identify",
            Endpoint::Page => "page",
            Endpoint::Screen => "screen",
            Endpoint::Group => "group",
            Endpoint::Alias => "alias",
            Endpoint::Batch => "batch",
            Endpoint::Import => "import",
            Endpoint::Webhook => "webhook",
        }
    }

    /// True for the endpoints that take one event.
    pub fn is_single(self) -> bool {
        !matches!(self, Endpoint::Batch | Endpoint::Import | Endpoint::Webhook)
    }
}

/// The size limits a body is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_batch_bytes: usize,
    pub max_batch_events: usize,
}

impl Limits {
    /// The most bytes a body for `endpoint` may have (after gunzip).
    pub fn body_limit(&self, endpoint: Endpoint) -> usize {
        if endpoint.is_single() {
            self.max_event_bytes
        } else {
            self.max_batch_bytes
        }
    }
}

/// Why a body was refused (answered 400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("the body must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("the body must be a JSON object or an array of objects, not {0}")]
    NotObjects(&'static str),
    #[error("`batch` must be an array of events")]
    BatchNotArray,
    #[error("event {index} of the batch is not a JSON object but {kind}")]
    EventNotAnObject { index: usize, kind: &'static str },
    #[error("event {index} of the batch is {size} bytes, over the {limit}-byte limit")]
    EventTooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
    #[error("the batch has {count} events, over the limit of {limit}")]
    TooManyEvents { count: usize, limit: usize },
}

impl Invalid {
    /// Bounded name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Invalid::NotUtf8 => "invalid_utf8",
            Invalid::Malformed(_) => "malformed_json",
            Invalid::NotAnObject(_) | Invalid::NotObjects(_) | Invalid::EventNotAnObject { .. } => {
                "not_an_object"
            }
            Invalid::BatchNotArray => "batch_not_array",
            Invalid::EventTooLarge { .. } => "event_too_large",
            Invalid::TooManyEvents { .. } => "too_many_events",
        }
    }
}

/// The events of one request, before stamping.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<Event>,
    /// `writeKey` from the body, if it carried one.
    pub write_key: Option<String>,
    /// The batch envelope's `context` and `sentAt`.
    envelope_context: Option<Map<String, Value>>,
    envelope_sent_at: Option<Value>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
    context: Option<Map<String, Value>>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

/// Reads the events of a body sent to `endpoint`.
pub fn parse(endpoint: Endpoint, body: &[u8], limits: &Limits) -> Result<Parsed, Invalid> {
    let text = std::str::from_utf8(body).map_err(|_| Invalid::NotUtf8)?;
    let first = text.trim_start().as_bytes().first().copied();
    match endpoint {
        _ if endpoint.is_single() => {
            let event = one_event(text, Invalid::NotAnObject)?;
            let write_key = key_of(&event);
            Ok(Parsed {
                events: vec![event],
                write_key,
                ..Parsed::default()
            })
        }
        Endpoint::Webhook if first != Some(b'[') => {
            let event = one_event(text, Invalid::NotObjects)?;
            let write_key = key_of(&event);
            Ok(Parsed {
                events: vec![event],
                write_key,
                ..Parsed::default()
            })
        }
        Endpoint::Webhook => {
            let raw: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|e| Invalid::Malformed(e.to_string()))?;
            let events = events_of(&raw, limits)?;
            // A webhook array authenticates by body only if every event carries the same key.
            let first_key = events.first().and_then(key_of);
            let write_key = first_key.filter(|k| {
                events
                    .iter()
                    .all(|e| e.fields().get("writeKey").and_then(Value::as_str) == Some(k))
            });
            Ok(Parsed {
                events,
                write_key,
                ..Parsed::default()
            })
        }
        _ => {
            if first != Some(b'{') {
                return Err(not_object_error(text, Invalid::NotAnObject));
            }
            let envelope: Envelope<'_> =
                serde_json::from_str(text).map_err(|e| Invalid::Malformed(e.to_string()))?;
            let raw: Vec<&RawValue> = match envelope.batch {
                Some(batch) => {
                    serde_json::from_str(batch.get()).map_err(|_| Invalid::BatchNotArray)?
                }
                None => return Err(Invalid::BatchNotArray),
            };
            Ok(Parsed {
                events: events_of(&raw, limits)?,
                write_key: envelope.write_key,
                envelope_context: envelope.context,
                envelope_sent_at: envelope.sent_at,
            })
        }
    }
}

fn one_event(text: &str, not_object: fn(&'static str) -> Invalid) -> Result<Event, Invalid> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Event::from_map(map)),
        Ok(other) => Err(not_object(json_kind(&other))),
        Err(err) => Err(Invalid::Malformed(err.to_string())),
    }
}

/// The error for a body that does not start with `{`: malformed or the wrong kind.
fn not_object_error(text: &str, not_object: fn(&'static str) -> Invalid) -> Invalid {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => not_object(json_kind(&value)),
        Err(err) => Invalid::Malformed(err.to_string()),
    }
}

fn events_of(raw: &[&RawValue], limits: &Limits) -> Result<Vec<Event>, Invalid> {
    if raw.len() > limits.max_batch_events {
        return Err(Invalid::TooManyEvents {
            count: raw.len(),
            limit: limits.max_batch_events,
        });
    }
    raw.iter()
        .enumerate()
        .map(|(index, raw)| {
            let size = raw.get().len();
            if size > limits.max_event_bytes {
                return Err(Invalid::EventTooLarge {
                    index,
                    size,
                    limit: limits.max_event_bytes,
                });
            }
            // The raw text already parsed once as JSON: only its kind can be wrong.
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Object(map)) => Ok(Event::from_map(map)),
                Ok(other) => Err(Invalid::EventNotAnObject {
                    index,
                    kind: json_kind(&other),
                }),
                Err(err) => Err(Invalid::Malformed(err.to_string())),
            }
        })
        .collect()
}

fn key_of(event: &Event) -> Option<String> {
    event
        .fields()
        .get("writeKey")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// What the server adds to every event of a request.
pub struct Stamp<'a> {
    /// RFC 3339, milliseconds, UTC.
    pub received_at: &'a str,
    /// The client's address, for events without `context.ip`.
    pub ip: Option<&'a str>,
}

/// Fills in `type`, `receivedAt`, `context.ip`, the envelope's `context` and
/// `sentAt`, and removes `writeKey`; returns the events.
pub fn stamp(parsed: Parsed, endpoint: Endpoint, stamp: &Stamp<'_>) -> Vec<Event> {
    let Parsed {
        mut events,
        envelope_context,
        envelope_sent_at,
        ..
    } = parsed;
    let single_type = endpoint.is_single().then(|| endpoint.as_str());
    for event in &mut events {
        let fields = event.fields_mut();
        fields.remove("writeKey");
        if let Some(kind) = single_type {
            fields
                .entry("type")
                .or_insert_with(|| Value::String(kind.to_owned()));
        }
        if let Some(sent_at) = &envelope_sent_at {
            fields.entry("sentAt").or_insert_with(|| sent_at.clone());
        }
        fields.insert(
            "receivedAt".to_owned(),
            Value::String(stamp.received_at.to_owned()),
        );
        let context = fields
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()));
        // A `context` that is not an object is the event's own business (the
        // filter may reject it); it is left as it came.
        if let Value::Object(context) = context {
            if let Some(envelope) = &envelope_context {
                for (key, value) in envelope {
                    if !context.contains_key(key) {
                        context.insert(key.clone(), value.clone());
                    }
                }
            }
            if let Some(ip) = stamp.ip {
                context
                    .entry("ip")
                    .or_insert_with(|| Value::String(ip.to_owned()));
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_event_bytes: 200,
        max_batch_bytes: 10_000,
        max_batch_events: 3,
    };

    fn stamped(endpoint: Endpoint, body: &str) -> Result<Vec<Value>, Invalid> {
        let parsed = parse(endpoint, body.as_bytes(), &LIMITS)?;
        let s = Stamp {
            received_at: "2024-01-01T00:00:00.000Z",
            ip: Some("10.0.0.1"),
        };
        Ok(stamp(parsed, endpoint, &s)
            .into_iter()
            .map(|e| Value::Object(e.into_fields()))
            .collect())
    }

    #[test]
    fn one_event_endpoints_set_type_when_missing() {
        let events = stamped(Endpoint::Identify, r#"{"userId":"u"}"#).unwrap();
        assert_eq!(
            events[0],
            json!({"userId":"u","type":"identify","receivedAt":"2024-01-01T00:00:00.000Z","context":{"ip":"10.0.0.1"}})
        );
        let events = stamped(
            Endpoint::Track,
            r#"{"type":"page","context":{"ip":"1.2.3.4"}}"#,
        )
        .unwrap();
        assert_eq!(events[0]["type"], "page");
        assert_eq!(events[0]["context"]["ip"], "1.2.3.4");
    }

    #[test]
    fn batch_envelope_context_and_sent_at_are_merged() {
        let body = r#"{"batch":[{"type":"track","context":{"app":{"v":1}}},{"type":"page","sentAt":"own"}],
                       "context":{"app":{"v":0},"library":{"name":"x"}},"sentAt":"2024-01-01T00:00:01Z","writeKey":"k"}"#;
        let parsed = parse(Endpoint::Batch, body.as_bytes(), &LIMITS).unwrap();
        assert_eq!(parsed.write_key.as_deref(), Some("k"));
        let events = stamped(Endpoint::Batch, body).unwrap();
        assert_eq!(events[0]["context"]["app"], json!({"v":1}));
        assert_eq!(events[0]["context"]["library"]["name"], "x");
        assert_eq!(events[0]["sentAt"], "2024-01-01T00:00:01Z");
        assert_eq!(events[1]["sentAt"], "own");
        assert_eq!(events[1]["context"]["app"], json!({"v":0}));
        assert!(events.iter().all(|e| e.get("writeKey").is_none()));
    }

    #[test]
    fn webhook_takes_an_object_or_an_array() {
        assert_eq!(
            stamped(Endpoint::Webhook, r#"{"type":"track"}"#)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            stamped(Endpoint::Webhook, r#"[{"a":1},{"b":2}]"#)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            stamped(Endpoint::Webhook, "3"),
            Err(Invalid::NotObjects("a number"))
        );
        let keyed = parse(
            Endpoint::Webhook,
            br#"[{"writeKey":"k"},{"writeKey":"k"}]"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(keyed.write_key.as_deref(), Some("k"));
        let mixed = parse(Endpoint::Webhook, br#"[{"writeKey":"k"},{}]"#, &LIMITS).unwrap();
        assert_eq!(mixed.write_key, None);
    }

    #[test]
    fn bad_bodies_are_refused_whole() {
        assert_eq!(
            stamped(Endpoint::Track, "[1]"),
            Err(Invalid::NotAnObject("an array"))
        );
        assert_eq!(
            stamped(Endpoint::Batch, "\"x\""),
            Err(Invalid::NotAnObject("a string"))
        );
        assert!(matches!(
            stamped(Endpoint::Track, "{"),
            Err(Invalid::Malformed(_))
        ));
        assert!(matches!(
            stamped(Endpoint::Batch, "[{"),
            Err(Invalid::Malformed(_))
        ));
        assert_eq!(
            parse(Endpoint::Track, b"{\"a\":\"\xff\"}", &LIMITS).unwrap_err(),
            Invalid::NotUtf8
        );
        assert_eq!(
            stamped(Endpoint::Batch, r#"{"batch":{}}"#),
            Err(Invalid::BatchNotArray)
        );
        assert_eq!(
            stamped(Endpoint::Batch, r#"{}"#),
            Err(Invalid::BatchNotArray)
        );
        assert_eq!(
            stamped(Endpoint::Batch, r#"{"batch":[{},2]}"#),
            Err(Invalid::EventNotAnObject {
                index: 1,
                kind: "a number"
            })
        );
        assert_eq!(
            stamped(Endpoint::Batch, r#"{"batch":[{},{},{},{}]}"#),
            Err(Invalid::TooManyEvents { count: 4, limit: 3 })
        );
        let big = format!(r#"{{"batch":[{{}},{{"p":"{}"}}]}}"#, "x".repeat(200));
        assert!(matches!(
            stamped(Endpoint::Batch, &big),
            Err(Invalid::EventTooLarge { index: 1, .. })
        ));
    }

    #[test]
    fn endpoints_round_trip_their_names() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_name(e.as_str()), Some(e));
        }
        assert_eq!(Endpoint::from_name("nope"), None);
        assert_eq!(LIMITS.body_limit(Endpoint::Track), 200);
        assert_eq!(LIMITS.body_limit(Endpoint::Webhook), 10_000);
    }
}
