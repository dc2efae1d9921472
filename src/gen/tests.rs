//! Determinism, proportions and flaws of the generated events.

use super::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

fn run(opts: &GenOptions) -> (Vec<u8>, GenSummary) {
    let mut out = Vec::new();
    let summary = generate(opts, &mut out).unwrap();
    (out, summary)
}

fn opts(events: u64, seed: u64) -> GenOptions {
    GenOptions {
        events,
        machines: 50,
        seed,
        ..GenOptions::default()
    }
}

#[test]
fn same_seed_same_bytes() {
    let (a, _) = run(&opts(5_000, 7));
    let (b, _) = run(&opts(5_000, 7));
    let (c, _) = run(&opts(5_000, 8));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn summary_adds_up() {
    let (out, summary) = run(&GenOptions {
        invalid_ratio: 0.05,
        duplicate_ratio: 0.05,
        ..opts(20_000, 3)
    });
    let lines = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert_eq!(summary.lines, 20_000);
    assert_eq!(lines, summary.lines);
    assert_eq!(
        summary.valid + summary.invalid + summary.duplicates,
        summary.lines
    );
    assert!(
        summary.invalid > 800 && summary.duplicates > 800,
        "{summary:?}"
    );
    let not_objects = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter(|l| !matches!(serde_json::from_slice(l), Ok(Value::Object(_))))
        .count() as u64;
    // Truncated lines and arrays: two of the five kinds of invalid line.
    assert!(
        not_objects > 0 && not_objects < summary.invalid,
        "{not_objects}"
    );
}

#[test]
fn valid_lines_are_segment_events() {
    let (out, summary) = run(&GenOptions {
        invalid_ratio: 0.0,
        duplicate_ratio: 0.0,
        ..opts(5_000, 11)
    });
    assert_eq!(summary.valid, 5_000);
    let mut ids = HashSet::new();
    let mut kinds: HashMap<String, u64> = HashMap::new();
    let mut times_by_machine: HashMap<String, Vec<i64>> = HashMap::new();
    let mut bytes = 0;
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        bytes += line.len();
        let event: Value = serde_json::from_slice(line).unwrap();
        assert!(
            ids.insert(event["messageId"].as_str().unwrap().to_owned()),
            "unique ids"
        );
        let kind = event["type"].as_str().unwrap();
        *kinds.entry(kind.to_owned()).or_default() += 1;
        match kind {
            "track" => {
                assert!(event["event"].is_string() && event["properties"]["sku"].is_string())
            }
            "page" => {
                assert!(event["name"].is_string() && event["properties"]["url"].is_string())
            }
            _ => assert!(event["traits"]["plan"].is_string()),
        }
        assert!(event["anonymousId"].is_string());
        assert_eq!(event["context"]["library"]["name"], "analytics-python");
        let time = DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).unwrap();
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
        let sent = DateTime::parse_from_rfc3339(event["sentAt"].as_str().unwrap()).unwrap();
        assert!(sent > time);
        let machine = event["context"]["device"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        times_by_machine
            .entry(machine)
            .or_default()
            .push(time.timestamp_millis());
    }
    let average = bytes / 5_000;
    assert!(
        (600..=800).contains(&average),
        "average line is {average} bytes"
    );
    assert!(
        kinds["track"] > 3_000 && kinds["page"] > 700 && kinds["identify"] > 300,
        "{kinds:?}"
    );
    let gaps: Vec<i64> = times_by_machine
        .values_mut()
        .flat_map(|times| {
            times.sort_unstable();
            times.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        })
        .collect();
    let sessions = gaps.iter().filter(|&&gap| gap > 30 * 60_000).count();
    assert!(
        sessions > 50 && sessions < gaps.len() / 4,
        "{sessions} session breaks"
    );
}

#[test]
fn users_are_stable_per_machine() {
    let (out, _) = run(&opts(3_000, 5));
    let mut user_by_machine: HashMap<String, Option<String>> = HashMap::new();
    for line in out.split(|&b| b == b'\n') {
        let Ok(Value::Object(event)) = serde_json::from_slice(line) else {
            continue;
        };
        let machine = event["context"]["device"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let user = event
            .get("userId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        assert_eq!(
            user_by_machine
                .entry(machine)
                .or_insert_with(|| user.clone()),
            &user
        );
    }
    let with_user = user_by_machine.values().filter(|u| u.is_some()).count();
    assert!(
        with_user > 15 && with_user < 45,
        "{with_user} of 50 machines have a user"
    );
}

#[test]
fn hand_formatting_matches_std() {
    let mut line = Vec::new();
    push_decimal(&mut line, 0, 1);
    push_decimal(&mut line, 42, 5);
    push_decimal(&mut line, u64::MAX, 2);
    assert_eq!(
        String::from_utf8(line).unwrap(),
        format!("000042{}", u64::MAX)
    );
    let mut line = Vec::new();
    push_uuid(&mut line, (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210));
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "01234567-89ab-4def-bedc-ba9876543210"
    );
    for ms in [0, 1_709_251_200_000, 1_709_251_261_005, 4_102_444_799_999] {
        let mut line = Vec::new();
        push_time(&mut line, ms).unwrap();
        let want = DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(String::from_utf8(line).unwrap(), want);
    }
}

#[test]
fn bad_options_are_refused() {
    let mut sink = Vec::new();
    let err = generate(
        &GenOptions {
            machines: 0,
            ..GenOptions::default()
        },
        &mut sink,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "machines 0 is out of range: give 1 to 10000000"
    );
    let err = generate(
        &GenOptions {
            invalid_ratio: 0.7,
            duplicate_ratio: 0.7,
            ..GenOptions::default()
        },
        &mut sink,
    )
    .unwrap_err();
    assert!(err.to_string().contains("add up to more than 1"));
}
