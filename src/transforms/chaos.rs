//! `chaos`: a test aid that panics on chosen events, to exercise supervision.
//!
//! **For tests of restarts and poison-event handling only; never put it in a
//! production topology.**
//!
//! ```toml
//! [transforms.boom]
//! type = "chaos"
//! inputs = ["x"]
//! field = "messageId"         # default "messageId"
//! values = ["m-13", "m-77"]   # panic when the field is one of these strings
//! ```
//!
//! Contract: every time an event whose `field` is a string listed in `values` is
//! seen, `transform` panics (including on the engine's retry after the restart,
//! so the event ends on `rejected` as poison). Every other event goes to `""`
//! unchanged. The component keeps no state, so a restart changes nothing.
//!
//! `always` is accepted because the issue's example sets it, but both values
//! behave the same: panic every time. (The issue describes `false` as "panic
//! again on the retry too" and `true` as "panic on every attempt", which is the
//! same behaviour for a stateless component.)
//!
//! Outputs: `""` and `rejected` (the engine puts poison events there).

use std::collections::HashSet;

use serde::Deserialize;

use crate::component::{BuildContext, Outputs, Transform, Verdict, REJECTED};
use crate::config::FieldError;
use crate::event::{Event, FieldPath};

/// `[transforms.<id>]` with `type = "chaos"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosConfig {
    /// The field to look at; default `messageId`.
    #[serde(default = "default_field")]
    pub field: FieldPath,
    /// Panic when the field is a string equal to one of these.
    pub values: Vec<String>,
    /// Accepted for the issue's example; both values panic on every attempt.
    #[serde(default)]
    pub always: bool,
}

fn default_field() -> FieldPath {
    // A literal without dots or empty segments: parsing cannot fail.
    FieldPath::parse("messageId").expect("\"messageId\" is a valid field path")
}

impl ChaosConfig {
    /// `""` and `rejected`.
    pub fn outputs(&self) -> Vec<String> {
        vec![String::new(), REJECTED.to_owned()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.values.is_empty() {
            errors.push(FieldError::new(
                "values",
                "values is empty, so chaos would never panic; list at least one value",
            ));
        }
        errors
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> {
        Ok(Box::new(Chaos {
            id: cx.id.to_owned(),
            field: self.field.clone(),
            values: self.values.iter().cloned().collect(),
        }))
    }
}

/// A running chaos transform.
pub struct Chaos {
    id: String,
    field: FieldPath,
    values: HashSet<String>,
}

impl Transform for Chaos {
    fn transform(&mut self, event: &mut Event, _out: &mut Outputs) -> Verdict {
        if let Some(value) = event.get_str(&self.field) {
            if self.values.contains(value) {
                panic!(
                    "chaos {}: panicking on purpose at {} = {value:?} (a test aid)",
                    self.id, self.field
                );
            }
        }
        Verdict::Emit(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StateStore;
    use crate::config::EngineConfig;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn build(toml_text: &str) -> (Box<dyn Transform>, Outputs) {
        let c: ChaosConfig = toml::from_str(toml_text).unwrap();
        assert!(c.validate().is_empty());
        let engine = EngineConfig::default();
        let state = StateStore::default();
        let cx = BuildContext {
            id: "boom",
            engine: &engine,
            state: &state,
            shard: None,
        };
        let out = Outputs::new("boom".into(), c.outputs().into());
        (c.build(&cx).unwrap(), out)
    }

    #[test]
    fn other_events_pass() {
        let (mut t, mut out) = build(r#"values = ["m-13"]"#);
        let mut event = Event::from_json(r#"{"messageId":"m-1"}"#).unwrap();
        assert_eq!(t.transform(&mut event, &mut out), Verdict::Emit(0));
        let mut event = Event::from_json(r#"{"messageId":13}"#).unwrap();
        assert_eq!(t.transform(&mut event, &mut out), Verdict::Emit(0));
    }

    #[test]
    fn chosen_events_panic_every_time() {
        let (mut t, mut out) = build(
            r#"
            values = ["m-13", "m-77"]
            always = false
        "#,
        );
        for _attempt in 0..3 {
            let mut event = Event::from_json(r#"{"messageId":"m-77"}"#).unwrap();
            let result = catch_unwind(AssertUnwindSafe(|| t.transform(&mut event, &mut out)));
            assert!(result.is_err());
        }
    }

    #[test]
    fn empty_values_are_refused() {
        let c: ChaosConfig = toml::from_str("values = []").unwrap();
        assert_eq!(c.validate()[0].field, "values");
        assert!(toml::from_str::<ChaosConfig>("field = \"a\"").is_err());
    }
}
