//! Key and field templates: literal text with `{field.path}` placeholders,
//! parsed once at build time and rendered per event into a reused buffer.

use std::fmt::Write as _;

use serde_json::Value;

use crate::event::{Event, FieldPath};

/// One piece of a template.
#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Field(FieldPath),
}

/// A parsed template such as `counts:{userId}`.
#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<Segment>,
}

/// The template needed a field the event does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingField(pub String);

impl Template {
    /// Parses `text`; the error names the problem and where.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.is_empty() {
            return Err("the template is empty".into());
        }
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = rest.find(['{', '}']).unwrap_or(rest.len());
            if next > 0 {
                segments.push(Segment::Literal(rest[..next].to_owned()));
            }
            rest = &rest[next..];
            if rest.starts_with('}') {
                let at = text.len() - rest.len();
                return Err(format!(
                    "\"{text}\" has a \"}}\" at byte {at} with no opening \"{{\""
                ));
            }
            if let Some(after) = rest.strip_prefix('{') {
                let Some(close) = after.find('}') else {
                    let at = text.len() - rest.len();
                    return Err(format!(
                        "\"{text}\" has a \"{{\" at byte {at} with no closing \"}}\""
                    ));
                };
                let name = &after[..close];
                let field = FieldPath::parse(name)
                    .map_err(|err| format!("\"{text}\": placeholder {{{name}}}: {err}"))?;
                segments.push(Segment::Field(field));
                rest = &after[close + 1..];
            }
        }
        Ok(Template { segments })
    }

    /// The field paths the template reads, as written.
    pub fn fields(&self) -> Vec<String> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Field(path) => Some(path.to_string()),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Appends the rendering for `event` to `out`. A missing or null field
    /// (or an object or array) renders empty when `reject_missing` is false,
    /// and is an error naming the field when it is true (`out` is then left
    /// part-written: the caller discards it).
    pub fn render(
        &self,
        event: &Event,
        reject_missing: bool,
        out: &mut String,
    ) -> Result<(), MissingField> {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                // Strings, the usual case, are read without building a value.
                Segment::Field(path) => match event.get_str(path) {
                    Some(s) => out.push_str(s),
                    None => match event.get(path) {
                        // Writing into a String cannot fail.
                        Some(Value::Number(n)) => {
                            let _ = write!(out, "{n}");
                        }
                        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                        _ if reject_missing => return Err(MissingField(path.to_string())),
                        _ => {}
                    },
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        Event::from_json(json).unwrap()
    }

    #[test]
    fn renders_fields_and_missing_as_empty() {
        let t = Template::parse(
            "{date}:{properties.page}:{properties.section}:{properties.action}:impression_{properties.impression_id}",
        )
        .unwrap();
        let e = event(
            r#"{"date":"2015-12-17","properties":{"page":"cart","action":"checkoutnow","impression_id":2276}}"#,
        );
        let mut out = String::new();
        t.render(&e, false, &mut out).unwrap();
        assert_eq!(out, "2015-12-17:cart::checkoutnow:impression_2276");
        out.clear();
        assert_eq!(
            t.render(&e, true, &mut out),
            Err(MissingField("properties.section".into()))
        );
        assert_eq!(t.fields().len(), 5);
    }

    #[test]
    fn values_of_every_kind() {
        let t = Template::parse("{a}|{b}|{c}|{d}|{e}").unwrap();
        let mut out = String::new();
        t.render(
            &event(r#"{"a":true,"b":1.5,"c":null,"d":{"x":1},"e":"s"}"#),
            false,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, "true|1.5|||s");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Template::parse("").is_err());
        assert!(Template::parse("a{b").unwrap_err().contains("no closing"));
        assert!(Template::parse("a}b").unwrap_err().contains("no opening"));
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("plain").unwrap().fields().is_empty());
    }
}
