//! Unit tests of the loader's steps.

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
    assert_substitutes(
        "a = \"#${HOME_DIR}\" # not ${NOPE}\n# ${NOPE} either\nb = '${HOME_DIR}' # '\"\n",
        "a = \"#/home/me\" # not ${NOPE}\n# ${NOPE} either\nb = '/home/me' # '\"\n",
    );
}

/// `text` substitutes to `expected` without a problem.
fn assert_substitutes(text: &str, expected: &str) {
    let substituted = substitute_env(text, &env);
    assert!(
        substituted.problems.is_empty(),
        "{:?}",
        substituted.problems
    );
    assert_eq!(substituted.text, expected);
}

#[test]
fn multi_line_strings_are_tracked() {
    // Line 3 holds an escaped quote and two more: the string goes on to line 4.
    assert_substitutes(
        "a = \"\"\"\n# not a comment ${HOME_DIR}\n\\\"\"\" # ${HOME_DIR}\n\"\"\"\nb = 1 # ${NOPE}\n",
        "a = \"\"\"\n# not a comment /home/me\n\\\"\"\" # /home/me\n\"\"\"\nb = 1 # ${NOPE}\n",
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
