//! The topologies in `examples/` run as shipped, against real servers: the
//! impression counter writes exact counters and per-user counts to a real
//! Redis and serves them on `/v1/counts/{userId}`; the webhook forwarder
//! POSTs the events its filter lets through, with the bearer token, to a
//! real local HTTP server; the replay example sessionizes `sluice gen`
//! output piped into it, accounting for every line.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::http_receiver::Receiver;
use common::redis_server::RedisServer;
use common::*;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn impression_counter() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::new();
    let port = free_port();
    let env = [
        ("REDIS_URL", redis.url()),
        ("COUNTS_WRITE_KEY", "wk-example".to_owned()),
        ("SLUICE_API_LISTEN", format!("127.0.0.1:{port}")),
        (
            "IMPRESSIONS",
            example("data/impressions.ndjson").display().to_string(),
        ),
        ("AT_END", "follow".to_owned()),
        (
            "REJECTS",
            sandbox.path("rejects.ndjson").display().to_string(),
        ),
    ];
    let mut sluice = sandbox.spawn_with_env(&example("impression_counter.toml"), &env);
    let _api = sluice.api(port);
    let want: BTreeMap<String, i64> = [
        ("2015-12-17:cart::checkoutnow:impression_2276", 2),
        ("2015-12-17:home:hero:view:impression_17", 1),
        ("2015-12-17:home:hero:click:impression_17", 1),
        ("2015-12-18:home:hero:view:impression_18", 1),
        ("2015-12-18:cart::checkoutnow:impression_2276", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "the counters",
        || (redis.dump().counters == want).then_some(()),
    );
    let counts = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        "u-2's counts",
        || {
            let resp = reqwest::blocking::Client::new()
                .get(format!("http://127.0.0.1:{port}/v1/counts/u-2"))
                .basic_auth("wk-example", Some(""))
                .send()
                .ok()?;
            (resp.status() == 200).then(|| resp.json::<Value>().expect("JSON counts"))
        },
    );
    assert_eq!(
        counts,
        serde_json::json!({"userId": "u-2", "counts": {"Impression": 1, "Click": 1}})
    );
    let hashes = redis.dump().hashes;
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert_eq!(hashes["counts:u-1"]["Impression"], 2);
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(20));
    // The page view (no event name) and the anonymous impression were not counted per user.
    let rejects = sandbox.ndjson("rejects.ndjson");
    let ids: Vec<&str> = rejects
        .iter()
        .map(|r| r["event"]["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{rejects:?}");
    assert!(ids.contains(&"i-5") && ids.contains(&"i-6"), "{ids:?}");
    assert!(rejects.iter().all(|r| r["reason"] == "missing_field"));
}

#[test]
fn webhook_forwarder() {
    let receiver = Receiver::ok();
    let sandbox = Sandbox::new();
    let env = [
        ("PUB_SUB_URL", receiver.url("")),
        ("PUB_SUB_AUTH_TOKEN", "tok-example".to_owned()),
        ("SLUICE_API_LISTEN", format!("127.0.0.1:{}", free_port())),
        (
            "WEBHOOKS",
            example("data/webhooks.ndjson").display().to_string(),
        ),
        (
            "REJECTS",
            sandbox.path("rejects.ndjson").display().to_string(),
        ),
    ];
    let mut sluice = sandbox.spawn_with_env(&example("webhook_forwarder.toml"), &env);
    sluice.expect_success(Duration::from_secs(30));
    let received = receiver.received();
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/events/segment_drain");
            assert_eq!(r.header("authorization"), Some("Bearer tok-example"));
            let event: Value = serde_json::from_slice(&r.body).expect("one JSON event per request");
            event["messageId"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["w-1", "w-4"]);
    assert_eq!(sandbox.ndjson("rejects.ndjson").len(), 3);
}

#[test]
fn replay_reads_gen_output_from_stdin_and_accounts_for_every_line() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let sandbox = Sandbox::new();
    let gen = Command::new(SLUICE)
        .args(["gen", "--events", "5000", "--machines", "50", "--seed", "3"])
        .output()
        .expect("run sluice gen");
    assert!(gen.status.success(), "sluice gen failed: {}", gen.status);
    let lines = gen
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let port = free_port();
    let mut run = Command::new(SLUICE)
        .args(["run", "-c"])
        .arg(example("replay.toml"))
        .current_dir(sandbox.root())
        .env("SLUICE_REPLAY_PATH", "-")
        .env("SLUICE_API_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice run");
    // Writing then closing stdin is the end of input.
    run.stdin
        .take()
        .expect("a piped stdin")
        .write_all(&gen.stdout)
        .expect("pipe gen output into sluice run");
    let done = run.wait_with_output().expect("wait for sluice run");
    assert!(
        done.status.success(),
        "sluice run failed ({}): {}",
        done.status,
        String::from_utf8_lossy(&done.stderr)
    );

    let kept: Vec<Value> = ["out/events", "out/orders"]
        .iter()
        .flat_map(|dir| sandbox.ndjson_tree(dir))
        .flat_map(|(_, events)| events)
        .collect();
    let rejected = sandbox.ndjson("out/rejected.ndjson");
    assert!(
        kept.len() > lines / 2,
        "only {} of {lines} lines kept",
        kept.len()
    );
    assert_eq!(
        kept.len() + rejected.len(),
        lines,
        "every generated line is written once: kept or rejected with a reason"
    );
    assert!(
        kept.iter().all(|e| e["session"]["id"].is_string()),
        "every kept event carries its session"
    );
    let summaries: Vec<Value> = sandbox
        .ndjson_tree("out/sessions")
        .into_iter()
        .flat_map(|(_, s)| s)
        .collect();
    let counted: u64 = summaries
        .iter()
        .map(|s| s["event_count"].as_u64().expect("an event_count"))
        .sum();
    assert_eq!(
        counted as usize,
        kept.len(),
        "summaries count every kept event"
    );
}
