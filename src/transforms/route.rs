//! `route`: the event-name registry — sends each event to the named output that
//! lists its name.
//!
//! ```toml
//! [transforms.by_event]
//! type = "route"
//! inputs = ["enriched"]
//! routes = { orders = ["Order Completed"], clicks = ["Product Clicked"] }
//! field = "event"   # optional; the field whose string value is matched
//! ```
//!
//! Contract:
//! * Outputs are the route names in sorted (byte) order, then `_default`, which
//!   receives every event whose field is absent, not a string, or not listed.
//!   There is no `""` output: the bare id `by_event` is not a valid input; use
//!   `by_event.orders` or `by_event._default`.
//! * A route never rejects; its config declares no `rejected` output (the
//!   engine appends one to every component for poison events, after `_default`).
//! * An event name may appear in only one route, so each event goes to exactly
//!   one output. Route names must be non-empty, contain no `.` (they are
//!   addressed as `id.name`) and not be `_default` or `rejected`.
//! * Matching is one hash lookup from event name to port, built once.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::component::{BuildContext, Outputs, Transform, Verdict, REJECTED};
use crate::config::FieldError;
use crate::event::{Event, FieldPath};

/// The output of events no route lists.
pub const DEFAULT_ROUTE: &str = "_default";

/// `[transforms.<id>]` with `type = "route"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Output name → the event names sent to it.
    pub routes: BTreeMap<String, Vec<String>>,
    /// The field whose string value is matched; default `event`.
    #[serde(default = "default_field")]
    pub field: FieldPath,
}

fn default_field() -> FieldPath {
    // A literal without dots or empty segments: parsing cannot fail.
    FieldPath::parse("event").expect("\"event\" is a valid field path")
}

impl RouteConfig {
    /// Route names, sorted, then `_default`.
    pub fn outputs(&self) -> Vec<String> {
        self.routes
            .keys()
            .cloned()
            .chain(std::iter::once(DEFAULT_ROUTE.to_owned()))
            .collect()
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.routes.is_empty() {
            errors.push(FieldError::new(
                "routes",
                "routes is empty, so every event would go to _default; name at least one route",
            ));
        }
        let mut route_of_event: HashMap<&str, &str> = HashMap::new();
        for (route, names) in &self.routes {
            let field = format!("routes.{route}");
            if route.is_empty() {
                errors.push(FieldError::new(&field, "a route name must not be empty"));
            } else if route == DEFAULT_ROUTE || route == REJECTED {
                errors.push(FieldError::new(
                    &field,
                    format!("route name \"{route}\" is reserved; pick another name"),
                ));
            } else if route.contains('.') {
                errors.push(FieldError::new(
                    &field,
                    format!(
                        "route name \"{route}\" contains '.', which would make `id.{route}` ambiguous as an input"
                    ),
                ));
            }
            if names.is_empty() {
                errors.push(FieldError::new(
                    &field,
                    format!("route \"{route}\" lists no event names, so it would never receive an event"),
                ));
            }
            for name in names {
                match route_of_event.get(name.as_str()) {
                    Some(&first) if first != route => errors.push(FieldError::new(
                        &field,
                        format!(
                            "event \"{name}\" is already routed to \"{first}\"; an event may be in only one route (here \"{route}\")"
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        route_of_event.insert(name, route);
                    }
                }
            }
        }
        errors
    }

    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> {
        Ok(Box::new(Route::new(self)))
    }
}

/// A running route.
pub struct Route {
    field: FieldPath,
    port_by_event: HashMap<String, usize>,
    default_port: usize,
}

impl Route {
    /// Ports follow [`RouteConfig::outputs`]: routes in sorted order, then `_default`.
    /// If a name is listed twice (refused by `validate`), the first route wins.
    pub fn new(config: &RouteConfig) -> Self {
        let mut port_by_event = HashMap::new();
        for (port, names) in config.routes.values().enumerate() {
            for name in names {
                port_by_event.entry(name.clone()).or_insert(port);
            }
        }
        Route {
            field: config.field.clone(),
            port_by_event,
            default_port: config.routes.len(),
        }
    }

    /// The port for `event`.
    pub fn port_of(&self, event: &Event) -> usize {
        event
            .get_str(&self.field)
            .and_then(|name| self.port_by_event.get(name))
            .copied()
            .unwrap_or(self.default_port)
    }
}

impl Transform for Route {
    fn transform(&mut self, event: &mut Event, _out: &mut Outputs) -> Verdict {
        Verdict::Emit(self.port_of(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> RouteConfig {
        toml::from_str(toml_text).unwrap()
    }

    const EXAMPLE: &str = r#"routes = { orders = ["Order Completed"], clicks = ["Product Clicked", "Link Clicked"] }"#;

    #[test]
    fn outputs_are_sorted_routes_then_default() {
        assert_eq!(
            config(EXAMPLE).outputs(),
            vec!["clicks", "orders", "_default"]
        );
        assert!(config(EXAMPLE).validate().is_empty());
    }

    #[test]
    fn events_map_to_their_route_port() {
        let c = config(EXAMPLE);
        let mut route = Route::new(&c);
        let mut out = Outputs::new("by_event".into(), c.outputs().into());
        let mut emit = |json: &str| route.transform(&mut Event::from_json(json).unwrap(), &mut out);
        assert_eq!(emit(r#"{"event":"Order Completed"}"#), Verdict::Emit(1));
        assert_eq!(emit(r#"{"event":"Link Clicked"}"#), Verdict::Emit(0));
        assert_eq!(emit(r#"{"event":"Signed Up"}"#), Verdict::Emit(2));
        assert_eq!(emit(r#"{"event":7}"#), Verdict::Emit(2));
        assert_eq!(emit(r#"{"type":"page"}"#), Verdict::Emit(2));
    }

    #[test]
    fn a_custom_field_is_matched() {
        let c = config(
            r#"
            routes = { web = ["web"] }
            field = "context.library.channel"
        "#,
        );
        let route = Route::new(&c);
        let event = Event::from_json(r#"{"context":{"library":{"channel":"web"}}}"#).unwrap();
        assert_eq!(route.port_of(&event), 0);
    }

    #[test]
    fn an_event_in_two_routes_names_both() {
        let c = config(r#"routes = { a = ["X"], b = ["X"] }"#);
        assert_eq!(
            c.validate(),
            vec![FieldError::new(
                "routes.b",
                "event \"X\" is already routed to \"a\"; an event may be in only one route (here \"b\")"
            )]
        );
    }

    #[test]
    fn bad_route_names_are_refused() {
        let c = config(
            r#"routes = { "" = ["A"], _default = ["B"], rejected = ["C"], "a.b" = ["D"], empty = [] }"#,
        );
        let fields: Vec<String> = c.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![
                "routes.",
                "routes._default",
                "routes.a.b",
                "routes.empty",
                "routes.rejected"
            ]
        );
        assert_eq!(config("routes = {}").validate()[0].field, "routes");
    }
}
