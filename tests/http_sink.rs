//! The `http` sink against a real local HTTP server (`common::http_receiver`)
//! that can be told to fail, stall or refuse: exactly-once arrival when it
//! never fails, intermittent 500s retried without duplicates, 429 with
//! `Retry-After` honoured, a 400 that sends its events to `rejected` with the
//! status and body, a failing receiver shown as a degraded sink on `/ready`
//! until it recovers, and a receiver slower than the source holding the source
//! back with bounded memory.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::http_receiver::{Receiver, Reply};
use common::*;
use serde_json::Value;

fn topology(head: &str, uri: &str, sink: &str, n_at_end: &str) -> String {
    format!(
        "{head}[engine]\nshutdown_timeout = \"30s\"\n\n\
         [sources.in]\ntype = \"file\"\npath = \"in.ndjson\"\nat_end = \"{n_at_end}\"\n\n\
         [sinks.out]\ntype = \"http\"\ninputs = [\"in\"]\nuri = \"{uri}\"\n\
         retry_initial_backoff = \"10ms\"\nretry_max_backoff = \"100ms\"\n{sink}\n\
         [sinks.refused]\ntype = \"file\"\ninputs = [\"out.rejected\"]\npath = \"rejected.ndjson\"\n"
    )
}

/// The `n` of every event in the bodies, whatever the encoding.
fn numbers_in(bodies: &[Vec<u8>]) -> Vec<u64> {
    let mut out = Vec::new();
    for body in bodies {
        let text = std::str::from_utf8(body).expect("a UTF-8 body");
        let values: Vec<Value> = if text.starts_with('[') {
            serde_json::from_str(text).expect("a JSON array")
        } else {
            text.lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect()
        };
        out.extend(values.iter().map(|v| v["n"].as_u64().expect("an n")));
    }
    out
}

/// Every number of `0..n` exactly once.
fn assert_exactly_once(mut got: Vec<u64>, n: u64) {
    got.sort_unstable();
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    for g in &got {
        *seen.entry(*g).or_default() += 1;
    }
    let dup: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dup.is_empty(), "delivered more than once: {dup:?}");
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "every event exactly once");
}

#[test]
fn every_event_arrives_exactly_once_with_its_token() {
    let receiver = Receiver::ok();
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 3000));
    let sink = "auth = { strategy = \"bearer\", token = \"tok-1\" }\nencoding = \"json\"\nconcurrency = 16\n";
    let path = sandbox.topology(&topology(
        NO_API,
        &receiver.url("/events/segment_drain"),
        sink,
        "stop",
    ));
    let mut sluice = sandbox.spawn(&path);
    sluice.expect_success(Duration::from_secs(60));
    let received = receiver.received();
    assert_eq!(received.len(), 3000, "one request per event");
    for r in &received {
        assert_eq!(r.path, "/events/segment_drain");
        assert_eq!(r.header("authorization"), Some("Bearer tok-1"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_exactly_once(numbers_in(&receiver.delivered_bodies()), 3000);
    assert!(
        receiver.peak_connections() <= 16,
        "{}",
        receiver.peak_connections()
    );
    assert_eq!(sluice.source_report("in").delivered, 3000);
}

#[test]
fn intermittent_500s_are_retried_without_duplicates() {
    let receiver = Receiver::start(Box::new(|n, _| {
        if n % 3 == 1 {
            Reply::status(500).with_body("try again")
        } else if n % 7 == 3 {
            Reply::status(503)
        } else {
            Reply::status(201)
        }
    }));
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 5000));
    let sink = "encoding = \"ndjson\"\nmax_events = 40\nconcurrency = 4\nmax_retries = 20\n\
                auth = { strategy = \"basic\", user = \"u\", password = \"p\" }\n";
    let path = sandbox.topology(&topology(NO_API, &receiver.url("/in"), sink, "stop"));
    sandbox.spawn(&path).expect_success(Duration::from_secs(60));
    let received = receiver.received();
    assert!(
        received.iter().any(|r| r.status == 500),
        "the receiver did fail"
    );
    assert!(received
        .iter()
        .all(|r| r.header("authorization") == Some("Basic dTpw")));
    assert!(received
        .iter()
        .all(|r| numbers_in(std::slice::from_ref(&r.body)).len() <= 40));
    assert_exactly_once(numbers_in(&receiver.delivered_bodies()), 5000);
    assert!(sandbox.ndjson("rejected.ndjson").is_empty());
}

#[test]
fn retry_after_is_honoured() {
    let receiver = Receiver::start(Box::new(|n, _| {
        if n == 0 {
            Reply::status(429).with_header("Retry-After", "2")
        } else {
            Reply::status(200)
        }
    }));
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 10));
    let sink = "encoding = \"json_array\"\n";
    let path = sandbox.topology(&topology(NO_API, &receiver.url("/in"), sink, "stop"));
    let started = Instant::now();
    sandbox.spawn(&path).expect_success(Duration::from_secs(30));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert_eq!(
        received[0].body, received[1].body,
        "the same request, retried"
    );
    assert_exactly_once(numbers_in(&receiver.delivered_bodies()), 10);
}

#[test]
fn a_failing_receiver_degrades_the_sink_on_ready_until_it_recovers() {
    let failing_until = Instant::now() + Duration::from_secs(3);
    let receiver = Receiver::start(Box::new(move |_, _| {
        if Instant::now() < failing_until {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    }));
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 10));
    let port = free_port();
    let path = sandbox.topology(&topology(
        &api_on(port),
        &receiver.url("/in"),
        "encoding = \"ndjson\"\nmax_retries = 1000\n",
        "follow",
    ));
    // Not `sluice.api()`: it waits for `/ready` to say yes, which is what
    // this test expects not to happen at first.
    let mut sluice = sandbox.spawn(&path);
    let ready_body = || -> Option<Value> {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready"))
            .and_then(|r| r.json::<Value>())
            .ok()
    };
    let degraded = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        "the http sink to show as degraded",
        || {
            ready_body().filter(|body| {
                body["degraded_components"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
            })
        },
    );
    assert_eq!(degraded["ready"], false, "{degraded}");
    assert_eq!(degraded["degraded_components"][0]["component_id"], "out");
    assert!(
        degraded["degraded_components"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("503")),
        "{degraded}"
    );
    poll_until(
        Duration::from_secs(15),
        Duration::from_millis(50),
        "the sink to recover once the receiver answers 200",
        || {
            ready_body()
                .filter(|body| body["ready"] == true)
                .map(|_| ())
        },
    );
    assert_exactly_once(numbers_in(&receiver.delivered_bodies()), 10);
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}

#[test]
fn a_400_sends_the_events_to_rejected_with_status_and_body() {
    let receiver = Receiver::start(Box::new(|_, r| {
        let event: Value = serde_json::from_slice(&r.body).unwrap();
        if event["n"].as_u64().unwrap().is_multiple_of(10) {
            Reply::status(400).with_body(&format!(
                "invalid event {}; {}",
                event["n"],
                "x".repeat(3000)
            ))
        } else {
            Reply::status(200)
        }
    }));
    let sandbox = Sandbox::new();
    sandbox.write("in.ndjson", numbered_events(0, 100));
    let path = sandbox.topology(&topology(NO_API, &receiver.url("/in"), "", "stop"));
    sandbox.spawn(&path).expect_success(Duration::from_secs(30));
    let rejected = sandbox.ndjson("rejected.ndjson");
    assert_eq!(rejected.len(), 10);
    for r in &rejected {
        assert_eq!(r["reason"], "http_status");
        assert_eq!(r["component_id"], "out");
        let n = r["event"]["n"].as_u64().unwrap();
        assert_eq!(n % 10, 0);
        let message = r["message"].as_str().unwrap();
        assert!(message.contains("400 Bad Request"), "{message}");
        assert!(
            message.contains(&format!("invalid event {n};")),
            "{message}"
        );
        assert!(
            message.len() < 1024 + 200,
            "the first KiB of the body only: {}",
            message.len()
        );
    }
    // Refused events are not retried: one request per event.
    assert_eq!(receiver.received().len(), 100);
    assert_eq!(receiver.delivered_bodies().len(), 90);
}

#[test]
fn a_slow_receiver_holds_the_source_back() {
    let receiver = Receiver::start(Box::new(|_, _| {
        Reply::status(200).after(Duration::from_millis(20))
    }));
    let sandbox = Sandbox::new();
    let total = 200_000;
    sandbox.write("in.ndjson", numbered_events(0, total));
    let port = free_port();
    let sink = "encoding = \"ndjson\"\nmax_events = 32\nconcurrency = 2\n";
    let path = sandbox.topology(&topology(&api_on(port), &receiver.url("/in"), sink, "stop"));
    let mut sluice = sandbox.spawn(&path);
    let api = sluice.api(port);
    std::thread::sleep(Duration::from_secs(3));
    let topo = api.topology();
    let read = counter(&topo, "in", "received_events");
    let delivered = numbers_in(&receiver.delivered_bodies()).len() as u64;
    // ~100 requests/s of 32 events: a few thousand delivered; the source read
    // at most what the bounded edges hold beyond that.
    assert!(
        read < total / 4,
        "the source read {read} of {total}: no backpressure"
    );
    assert!(
        read <= delivered + 8 * 128 * 3,
        "read {read}, delivered {delivered}"
    );
    let rss = vm_rss_kib(sluice.pid()).unwrap();
    assert!(rss < 150 * 1024, "RSS {rss} KiB");
    let mailbox = &component(&topo, "out")["mailbox"];
    assert!(mailbox["depth"].as_u64().unwrap() <= mailbox["capacity"].as_u64().unwrap());
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(40));
    // Everything read before the stop was delivered, once.
    let got = numbers_in(&receiver.delivered_bodies());
    let n = got.len() as u64;
    assert_exactly_once(got, n);
}
