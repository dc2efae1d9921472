//! Config errors: each mistake a person can make in `topology.toml` is
//! reported with the file, line, component and field it is in, and every
//! mistake in a file is reported at once.
//!
//! Tests marked `needs component fields` use the real fields of the file
//! source, filter, dedupe, enrich, route and file sink (those of the issue's
//! example topology); the rest use only `type`, `inputs`, the file source's
//! `path` and field-less blackhole sinks, so they exercise the loader alone.

use sluice::config::{
    load_str_with_env, ComponentKind, ConfigError, ConfigErrors, InputRef, Loaded, Severity,
};

const FILE: &str = "topology.toml";

/// The variables the tests' environment has.
fn env(name: &str) -> Option<String> {
    match name {
        "OUT_DIR" => Some("/var/sluice".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Loaded, ConfigErrors> {
    load_str_with_env(text, FILE, &env)
}

/// The errors of a topology that must fail.
fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(loaded) => panic!("expected errors, got {:#?}", loaded.config.components),
        Err(errors) => {
            assert!(errors.0.iter().all(|e| e.severity == Severity::Error));
            errors.0
        }
    }
}

fn loaded(text: &str) -> Loaded {
    load(text).unwrap_or_else(|errors| panic!("expected no errors, got:\n{errors}"))
}

/// The one error whose message contains `needle`, checked for its place.
fn find<'e>(
    errors: &'e [ConfigError],
    needle: &str,
    line: usize,
    component: Option<&str>,
    field: Option<&str>,
) -> &'e ConfigError {
    let matching: Vec<&ConfigError> = errors
        .iter()
        .filter(|e| e.message.contains(needle))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one error containing {needle:?} in:\n{}",
        ConfigErrors(errors.to_vec())
    );
    let error = matching[0];
    assert_eq!(error.file, FILE);
    assert_eq!(error.line, Some(line), "line of {error}");
    assert_eq!(
        error.component.as_deref(),
        component,
        "component of {error}"
    );
    assert_eq!(error.field.as_deref(), field, "field of {error}");
    error
}

/// A source and a sink around whatever a test adds: lines 1 to 7.
const FRAME: &str = r#"[sources.replay]
type = "file"
path = "events.ndjson"

[sinks.out]
type = "blackhole"
inputs = ["replay"]
"#;

/// The topology of the issue: it must load cleanly.
const EXAMPLE: &str = r#"[engine]
batch_size = 1024
mailbox_capacity = 8
shutdown_timeout = "25s"
[engine.restart]
max_restarts = 5
within = "60s"
backoff = { initial = "100ms", max = "10s" }
[api]
listen = "127.0.0.1:9598"
[sources.replay]
type = "file"
path = "events/*.ndjson"
at_end = "stop"
[transforms.valid]
type = "filter"
inputs = ["replay"]
types = ["track", "page", "identify"]
events = { "Order Completed" = true, "Product Clicked" = true, "Debug Ping" = false }
require = ["messageId", "timestamp"]
require_any = [["context.device.id", "anonymousId"]]
require_by_type = { track = ["event"], group = ["groupId"], alias = ["previousId"] }
strings = ["messageId", "event", "anonymousId", "userId"]
timestamps = ["timestamp"]
[transforms.unique]
type = "dedupe"
inputs = ["valid"]
field = "messageId"
capacity = 1_000_000
[transforms.enriched]
type = "enrich"
inputs = ["unique"]
ops = [
  { op = "timestamp_parts", from = "timestamp", date = "date", hour = "hour", unix = "timestamp_unix" },
  { op = "rename", from = "properties.sku", to = "properties.item_id" },
  { op = "set", path = "pipeline", value = "sluice" },
  { op = "set", path = "context.app.build", value = "1.2.4", when = { path = "context.app.build", equals = "1.2.3-broken" } },
]
[transforms.by_event]
type = "route"
inputs = ["enriched"]
routes = { orders = ["Order Completed"], clicks = ["Product Clicked"] }
[sinks.orders]
type = "file"
inputs = ["by_event.orders"]
path = "out/{userId}/{event}/%Y/%m/%d/%H.ndjson"
[sinks.rejects]
type = "file"
inputs = ["valid.rejected", "unique.duplicates"]
path = "out/rejected.ndjson"
[sinks.rest]
type = "blackhole"
inputs = ["by_event._default", "by_event.clicks"]
"#;

/// needs component fields
#[test]
fn the_example_topology_loads_cleanly() {
    let loaded = loaded(EXAMPLE);
    assert!(
        loaded.warnings.is_empty(),
        "{}",
        ConfigErrors(loaded.warnings)
    );
    let config = &loaded.config;
    assert_eq!(config.file, FILE);
    assert_eq!(config.engine.batch_size, 1024);
    let ids: Vec<&str> = config.components.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["replay", "valid", "unique", "enriched", "by_event", "orders", "rejects", "rest"]
    );
    let by_event = config.component("by_event").unwrap();
    assert_eq!(by_event.kind, ComponentKind::Transform);
    assert_eq!(by_event.type_name, "route");
    assert_eq!(by_event.line, 39);
    assert_eq!(by_event.inputs, [InputRef::parse("enriched")]);
    assert!(by_event.outputs.contains(&"_default".to_owned()));
    let rejects = config.component("rejects").unwrap();
    assert_eq!(
        rejects.inputs,
        [
            InputRef::parse("valid.rejected"),
            InputRef::parse("unique.duplicates")
        ]
    );
}

#[test]
fn a_minimal_topology_loads() {
    let loaded = loaded(FRAME);
    assert!(loaded.warnings.is_empty());
    let replay = &loaded.config.components[0];
    assert_eq!((replay.id.as_str(), replay.line), ("replay", 1));
    assert!(replay.inputs.is_empty());
    let out = &loaded.config.components[1];
    assert_eq!((out.kind, out.line), (ComponentKind::Sink, 5));
}

#[test]
fn unknown_component_type_lists_known_types_and_suggests() {
    let text = format!("{FRAME}\n[transforms.valid]\ntype = \"fliter\"\ninputs = [\"replay\"]\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "unknown component type \"fliter\"",
        10,
        Some("transforms.valid"),
        Some("type"),
    );
    assert!(error
        .message
        .contains("known transform types: filter, dedupe"));
    assert!(
        error.message.ends_with("did you mean \"filter\"?"),
        "{error}"
    );
    assert_eq!(errors.len(), 1, "{}", ConfigErrors(errors.clone()));
}

#[test]
fn a_type_of_another_kind_says_where_it_belongs() {
    let text = format!("{FRAME}\n[transforms.x]\ntype = \"blackhole\"\ninputs = [\"replay\"]\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "unknown component type",
        10,
        Some("transforms.x"),
        Some("type"),
    );
    assert!(error
        .message
        .contains("\"blackhole\" is a sink type, which belongs under [sinks]"));
}

#[test]
fn missing_type_lists_known_types() {
    let text = format!("{FRAME}\n[sinks.other]\ninputs = [\"replay\"]\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "missing `type`",
        9,
        Some("sinks.other"),
        Some("type"),
    );
    assert!(error
        .message
        .contains("known sink types: file, console, blackhole"));
}

#[test]
fn unknown_field_is_reported_at_its_line() {
    let text = r#"[sources.replay]
type = "file"
path = "events.ndjson"

[sinks.out]
type = "blackhole"
inputs = ["replay"]
colour = "blue"
"#;
    let errors = errors(text);
    let error = find(
        &errors,
        "unknown field `colour`",
        8,
        Some("sinks.out"),
        Some("colour"),
    );
    assert_eq!(
        error.to_string(),
        format!("topology.toml:8: sinks.out: colour: {}", error.message)
    );
}

/// needs component fields
#[test]
fn unknown_field_inside_an_array_of_tables_names_its_path_and_line() {
    let text = format!(
        r#"{FRAME}
[transforms.enriched]
type = "enrich"
inputs = ["replay"]
ops = [
  {{ op = "set", path = "pipeline", value = "sluice" }},
  {{ op = "rename", from = "a", to = "b", form = "c" }},
]
"#
    );
    let errors = errors(&text);
    let error = find(
        &errors,
        "unknown field `form`",
        14,
        Some("transforms.enriched"),
        Some("ops[1].form"),
    );
    assert!(error.message.ends_with("did you mean `from`?"), "{error}");
}

/// needs component fields
#[test]
fn unknown_field_suggests_the_closest_known_one() {
    let text = format!("{FRAME}\n[transforms.unique]\ntype = \"dedupe\"\ninputs = [\"replay\"]\nfeild = \"messageId\"\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "unknown field `feild`",
        12,
        Some("transforms.unique"),
        Some("feild"),
    );
    assert!(error.message.ends_with("did you mean `field`?"), "{error}");
}

#[test]
fn missing_inputs() {
    let text = format!("{FRAME}\n[sinks.other]\ntype = \"blackhole\"\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "missing `inputs`",
        9,
        Some("sinks.other"),
        Some("inputs"),
    );
    assert!(error
        .message
        .contains("a sink must read from at least one component"));
}

#[test]
fn empty_inputs_and_inputs_on_a_source() {
    let text = r#"[sources.replay]
type = "file"
path = "events.ndjson"
inputs = ["elsewhere"]

[sinks.out]
type = "blackhole"
inputs = []
"#;
    let errors = errors(text);
    find(
        &errors,
        "takes no `inputs`",
        4,
        Some("sources.replay"),
        Some("inputs"),
    );
    find(
        &errors,
        "`inputs` is empty",
        8,
        Some("sinks.out"),
        Some("inputs"),
    );
}

#[test]
fn unknown_input_suggests_a_close_id() {
    let text = format!("{FRAME}\n[sinks.other]\ntype = \"blackhole\"\ninputs = [\"replya\"]\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "input \"replya\" names no component",
        11,
        Some("sinks.other"),
        Some("inputs"),
    );
    assert!(
        error.message.ends_with("did you mean \"replay\"?"),
        "{error}"
    );
}

#[test]
fn input_entries_in_a_multi_line_array_have_their_own_lines() {
    let text = format!(
        "{FRAME}\n[sinks.other]\ntype = \"blackhole\"\ninputs = [\n  \"replay\",\n  \"nowhere\",\n  \"replay\",\n]\n"
    );
    let errors = errors(&text);
    find(
        &errors,
        "\"nowhere\" names no component",
        13,
        Some("sinks.other"),
        Some("inputs"),
    );
    find(
        &errors,
        "\"replay\" is listed twice",
        14,
        Some("sinks.other"),
        Some("inputs"),
    );
}

#[test]
fn a_bare_sink_is_not_an_input_but_its_rejected_output_is() {
    let text = format!(
        "{FRAME}\n[sinks.retry]\ntype = \"blackhole\"\ninputs = [\"out\"]\n\n[sinks.dead]\ntype = \"blackhole\"\ninputs = [\"out.rejected\"]\n"
    );
    let errors = errors(&text);
    let error = find(
        &errors,
        "is a sink",
        11,
        Some("sinks.retry"),
        Some("inputs"),
    );
    assert!(error.message.contains("\"out.rejected\""));
    assert_eq!(errors.len(), 1, "{}", ConfigErrors(errors.clone()));
}

#[test]
fn unknown_named_output_lists_the_outputs() {
    let text =
        format!("{FRAME}\n[sinks.other]\ntype = \"blackhole\"\ninputs = [\"replay.rejectd\"]\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "\"replay\" has no output \"rejectd\"",
        11,
        Some("sinks.other"),
        Some("inputs"),
    );
    assert!(
        error
            .message
            .contains("(its outputs: \"replay\", \"replay.rejected\")"),
        "{error}"
    );
    assert!(
        error.message.ends_with("did you mean \"replay.rejected\"?"),
        "{error}"
    );
}

/// needs component fields
#[test]
fn a_route_has_no_default_output() {
    let text = format!(
        r#"{FRAME}
[transforms.by_event]
type = "route"
inputs = ["replay"]
routes = {{ orders = ["Order Completed"] }}

[sinks.rest]
type = "blackhole"
inputs = ["by_event", "by_event.orders"]
"#
    );
    let errors = errors(&text);
    let error = find(
        &errors,
        "\"by_event\" has no default output",
        16,
        Some("sinks.rest"),
        Some("inputs"),
    );
    assert!(error.message.contains("\"by_event.orders\""));
    assert!(
        error
            .message
            .ends_with("did you mean \"by_event._default\"?"),
        "{error}"
    );
}

#[test]
fn a_component_reading_itself() {
    let text = r#"[sources.replay]
type = "file"
path = "events.ndjson"

[sinks.out]
type = "blackhole"
inputs = ["replay", "out.rejected"]
"#;
    let errors = errors(text);
    find(
        &errors,
        "is this component itself",
        7,
        Some("sinks.out"),
        Some("inputs"),
    );
}

/// needs component fields: two dedupes (a transform accepting an empty table).
#[test]
fn a_cycle_is_reported_once_with_its_path() {
    let text = format!(
        r#"{FRAME}
[transforms.a]
type = "dedupe"
inputs = ["replay", "c"]

[transforms.b]
type = "dedupe"
inputs = ["a"]

[transforms.c]
type = "dedupe"
inputs = ["b"]
"#
    );
    let errors = errors(&text);
    let error = find(
        &errors,
        "inputs form a cycle",
        9,
        Some("transforms.a"),
        Some("inputs"),
    );
    assert!(error.message.contains("a -> b -> c -> a"), "{error}");
}

#[test]
fn a_cycle_through_sink_rejected_outputs() {
    let text = r#"[sources.replay]
type = "file"
path = "events.ndjson"

[sinks.first]
type = "blackhole"
inputs = ["replay", "second.rejected"]

[sinks.second]
type = "blackhole"
inputs = ["first.rejected"]
"#;
    let errors = errors(text);
    let error = find(
        &errors,
        "inputs form a cycle",
        5,
        Some("sinks.first"),
        Some("inputs"),
    );
    assert!(
        error.message.contains("first -> second -> first"),
        "{error}"
    );
    assert_eq!(errors.len(), 1, "{}", ConfigErrors(errors.clone()));
}

#[test]
fn duplicate_ids_across_sections_name_both_lines() {
    let text =
        format!("{FRAME}\n[sinks.replay]\ntype = \"blackhole\"\ninputs = [\"out.rejected\"]\n");
    let errors = errors(&text);
    let error = find(
        &errors,
        "component id \"replay\" is already used",
        9,
        Some("sinks.replay"),
        None,
    );
    assert!(error.message.contains("sources.replay (line 1)"), "{error}");
}

#[test]
fn ids_with_dots_are_refused() {
    let text = format!("{FRAME}\n[sinks.\"a.b\"]\ntype = \"blackhole\"\ninputs = [\"replay\"]\n");
    let errors = errors(&text);
    find(
        &errors,
        "may only contain letters, digits",
        9,
        Some("sinks.a.b"),
        None,
    );
}

#[test]
fn bad_duration() {
    let text = format!("[engine]\nbatch_size = 10\nshutdown_timeout = \"30\"\n\n{FRAME}");
    let errors = errors(&text);
    let error = find(
        &errors,
        "duration \"30\" has no unit (try \"30s\")",
        3,
        Some("engine"),
        Some("shutdown_timeout"),
    );
    assert_eq!(
        error.to_string(),
        "topology.toml:3: engine: shutdown_timeout: duration \"30\" has no unit (try \"30s\")"
    );
}

#[test]
fn bad_nested_duration_and_engine_bounds() {
    let text = format!(
        "[engine]\nbatch_size = 0\n[engine.restart]\nbackoff = {{ initial = \"1m\", max = \"10s\" }}\n\n{FRAME}"
    );
    let errors = errors(&text);
    find(
        &errors,
        "batch_size is 0",
        2,
        Some("engine"),
        Some("batch_size"),
    );
    find(
        &errors,
        "initial backoff 60s is longer than restart.backoff.max 10s",
        4,
        Some("engine"),
        Some("restart.backoff.initial"),
    );
}

#[test]
fn a_serde_message_without_the_bad_value_gets_it_added() {
    let text = format!("[api]\nlisten = \"localhost\"\n\n{FRAME}");
    let errors = errors(&text);
    let error = find(
        &errors,
        "invalid socket address",
        2,
        Some("api"),
        Some("listen"),
    );
    assert!(error.message.ends_with("(got \"localhost\")"), "{error}");
}

/// needs component fields
#[test]
fn bad_size() {
    let text = r#"[sources.replay]
type = "file"
path = "events.ndjson"
max_line_bytes = "1 parsec"

[sinks.out]
type = "blackhole"
inputs = ["replay"]
"#;
    let errors = errors(text);
    let error = find(
        &errors,
        "size \"1 parsec\"",
        4,
        Some("sources.replay"),
        Some("max_line_bytes"),
    );
    assert!(error.message.contains("unknown unit"), "{error}");
}

#[test]
fn unknown_section_suggests_the_closest() {
    let text = format!("{FRAME}\n[transform.valid]\ntype = \"filter\"\n");
    let errors = errors(&text);
    let error = find(&errors, "unknown section \"transform\"", 9, None, None);
    assert!(
        error.message.ends_with("did you mean \"transforms\"?"),
        "{error}"
    );
}

#[test]
fn no_sources_and_no_sinks() {
    let errors = errors("[engine]\nbatch_size = 8\n");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "the topology has no sources; add at least one [sources.NAME] table",
            "the topology has no sinks; add at least one [sinks.NAME] table",
        ]
    );
    assert!(errors.iter().all(|e| e.line.is_none()));
}

#[test]
fn a_component_nothing_reads_is_a_warning_not_an_error() {
    let text = r#"[sources.replay]
type = "file"
path = "events.ndjson"

[sources.unused]
type = "file"
path = "other.ndjson"

[sinks.out]
type = "blackhole"
inputs = ["replay"]
"#;
    let loaded = loaded(text);
    assert_eq!(
        loaded.warnings.len(),
        1,
        "{}",
        ConfigErrors(loaded.warnings.clone())
    );
    let warning = &loaded.warnings[0];
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(warning.line, Some(5));
    assert_eq!(warning.component.as_deref(), Some("sources.unused"));
    assert!(
        warning.message.contains("nothing reads from \"unused\""),
        "{warning}"
    );
}

#[test]
fn unread_rejected_and_duplicates_outputs_are_normal() {
    // The frame reads `replay` but not `replay.rejected`: no warning.
    assert!(loaded(FRAME).warnings.is_empty());
}

#[test]
fn env_var_not_set_and_no_default_names_it_with_its_line() {
    let text = "[sources.replay]\ntype = \"file\"\npath = \"${DATA_DIR}/events.ndjson\"\n\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"replay\"]\n";
    let errors = errors(text);
    let error = find(
        &errors,
        "environment variable \"DATA_DIR\" is not set",
        3,
        None,
        None,
    );
    assert!(error.message.contains("${DATA_DIR:-default}"), "{error}");
    assert_eq!(errors.len(), 1);
}

#[test]
fn env_var_unset_where_a_value_belongs_gives_one_error_not_a_syntax_error() {
    let text = format!("[engine]\nbatch_size = ${{BATCH}}\n\n{FRAME}");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", ConfigErrors(errors.clone()));
    find(&errors, "\"BATCH\" is not set", 2, None, None);
}

#[test]
fn env_defaults_and_values_are_used() {
    let text = r#"[engine]
batch_size = ${BATCH:-64}
shutdown_timeout = "${TIMEOUT:-5s}"

[sources.replay]
type = "file"
path = "${OUT_DIR}/events-${EMPTY:-all}.ndjson"  # ${NOT_SUBSTITUTED} in a comment

[sinks.out]
type = "blackhole"
inputs = ["replay"]
"#;
    let loaded = loaded(text);
    assert_eq!(loaded.config.engine.batch_size, 64);
    assert_eq!(loaded.config.engine.shutdown_timeout.0.as_secs(), 5);
}

#[test]
fn a_syntax_error_is_one_error_with_line_and_column() {
    let text = format!("{FRAME}\n[sinks.other]\ntype = \"blackhole\ninputs = [\"replay\"]\n");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", ConfigErrors(errors.clone()));
    assert_eq!(errors[0].line, Some(10));
    assert!(
        errors[0]
            .message
            .starts_with("TOML syntax error at column "),
        "{}",
        errors[0]
    );
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let text = r#"[engine]
batch_size = 8
shutdown_timeout = "30"

[sources.replay]
type = "file"
path = "${EVENTS}/events.ndjson"

[transforms.valid]
type = "fliter"
inputs = ["replay"]

[sinks.out]
type = "blackhole"
inputs = ["valdi", "replay"]
speed = 3

[sinks.more]
type = "blackhole"
inputs = ["replay.nope"]

[sinks.replay]
type = "blackhole"
inputs = ["out.rejected"]

[sinks.lonely]
type = "blackhole"
"#;
    let errors = errors(text);
    let summary = ConfigErrors(errors.clone()).to_string();
    let lines: Vec<Option<usize>> = errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        [3, 7, 10, 15, 16, 20, 22, 26].map(Some),
        "errors out of order or missing:\n{summary}"
    );
    find(
        &errors,
        "duration \"30\" has no unit",
        3,
        Some("engine"),
        Some("shutdown_timeout"),
    );
    find(&errors, "\"EVENTS\" is not set", 7, None, None);
    find(
        &errors,
        "unknown component type \"fliter\"",
        10,
        Some("transforms.valid"),
        Some("type"),
    );
    find(
        &errors,
        "input \"valdi\" names no component",
        15,
        Some("sinks.out"),
        Some("inputs"),
    );
    find(
        &errors,
        "unknown field `speed`",
        16,
        Some("sinks.out"),
        Some("speed"),
    );
    find(
        &errors,
        "has no output \"nope\"",
        20,
        Some("sinks.more"),
        Some("inputs"),
    );
    find(
        &errors,
        "component id \"replay\" is already used",
        22,
        Some("sinks.replay"),
        None,
    );
    find(
        &errors,
        "missing `inputs`",
        26,
        Some("sinks.lonely"),
        Some("inputs"),
    );
    // One line per error, each starting with the file and its line.
    for (error, line) in errors.iter().zip(summary.lines()) {
        assert!(line.starts_with(&format!("topology.toml:{}: ", error.line.unwrap())));
    }
}

/// Mistakes only the component configs can find: the redis and http sinks' own
/// checks, and the
/// counts endpoint's (its sink must be a fitting redis sink, and it must be
/// protected), all reported at once.
#[test]
fn redis_http_and_counts_endpoint_mistakes() {
    let text = "\
[api]
counts = { sink = \"impressions\" }
auth = { write_keys = [\"${EMPTY}\"] }

[sources.in]
type = \"file\"
path = \"in.ndjson\"

[sinks.impressions]
type = \"redis\"
inputs = [\"in\"]
url = \"http://u:hunter2@h\"
mode = \"counter\"
key = \"{date}:{page\"

[sinks.drain]
type = \"http\"
inputs = [\"in\"]
uri = \"ftp://x\"
concurrency = 0
";
    let errors = errors(text);
    let url = find(
        &errors,
        "is not a redis:// or rediss:// URL",
        12,
        Some("sinks.impressions"),
        Some("url"),
    );
    assert!(
        !url.message.contains("hunter2"),
        "the password is redacted: {}",
        url.message
    );
    find(
        &errors,
        "no closing",
        14,
        Some("sinks.impressions"),
        Some("key"),
    );
    find(
        &errors,
        "is not http:// or https://",
        19,
        Some("sinks.drain"),
        Some("uri"),
    );
    find(
        &errors,
        "concurrency is 0",
        20,
        Some("sinks.drain"),
        Some("concurrency"),
    );
    // The api's checks need the components loaded: reported once they are.
    let fixed = text
        .replace("http://u:hunter2@h", "redis://h")
        .replace("{date}:{page", "{date}")
        .replace("ftp://x", "http://x")
        .replace("concurrency = 0", "");
    let errors = self::errors(&fixed);
    assert_eq!(errors.len(), 2, "{}", ConfigErrors(errors.clone()));
    assert!(errors
        .iter()
        .any(|e| e.message.contains("write_keys[0] is empty")));
    assert!(errors.iter().any(|e| e.message.contains(
        "counts.sink \"impressions\" cannot serve counts: it is not a hash_counter sink"
    )));
    let good = fixed.replace("${EMPTY}", "wk").replace(
        "mode = \"counter\"\nkey = \"{date}\"",
        "mode = \"hash_counter\"\nkey = \"counts:{userId}\"\nfield = \"{event}\"",
    );
    loaded(&good);
}

#[test]
fn segment_http_problems_are_all_reported_with_their_lines() {
    // Line numbers matter: the assertions below name them.
    let text = r#"[sources.segment]
type = "segment_http"
listen = "127.0.0.1:0"
write_keys = ["${EMPTY}"]
max_event_bytes = "64KiB"
max_batch_bytes = "32KiB"
max_wait = "0s"
acknowledgements = "eventually"

[sinks.out]
type = "blackhole"
inputs = ["segment"]
"#;
    let errors = errors(text);
    find(
        &errors,
        "unknown variant `eventually`",
        8,
        Some("sources.segment"),
        Some("acknowledgements"),
    );
    // A serde error stops that table's deserialization: fix it, then the rest shows.
    let text = text.replace("\"eventually\"", "\"delivered\"");
    let errors = self::errors(&text);
    find(
        &errors,
        "no write key or bearer token is set",
        4,
        Some("sources.segment"),
        Some("write_keys"),
    );
    find(
        &errors,
        "max_batch_bytes 32768 is smaller than max_event_bytes 65536",
        6,
        Some("sources.segment"),
        Some("max_batch_bytes"),
    );
    find(
        &errors,
        "max_wait must be greater than 0",
        7,
        Some("sources.segment"),
        Some("max_wait"),
    );
    assert_eq!(errors.len(), 3, "{}", ConfigErrors(errors.clone()));
}
