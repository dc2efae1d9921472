//! The `segment_http` source over real sockets: every endpoint and way to
//! authenticate, every kind of bad input answered with its status and nothing
//! of it accepted (nor anything good lost or doubled), slow and idle clients,
//! backpressure (503), `acknowledgements = "delivered"` (200 only once
//! written, 500 when a sink fails), readiness and graceful shutdown.

mod common;
mod segment_http;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use segment_http::*;
use serde_json::{json, Value};

/// A sandbox running `segment → file` (out/events.ndjson) with `source_extra`
/// in the source's table.
fn start(source_extra: &str, head: &str) -> (Sandbox, Sluice, u16, u16) {
    let sandbox = Sandbox::new();
    let api_port = free_port();
    let port = free_port();
    let topology = format!(
        "{}{head}\n{}\n[sinks.out]\ntype = \"file\"\ninputs = [\"segment\"]\npath = \"out/events.ndjson\"\n",
        api_on(api_port),
        source_on(port, source_extra)
    );
    let path = sandbox.topology(&topology);
    let mut sluice = sandbox.spawn(&path);
    sluice.api(api_port);
    (sandbox, sluice, port, api_port)
}

/// Stops sluice gracefully and returns what the file sink wrote.
fn stop(sandbox: &Sandbox, sluice: &mut Sluice) -> Vec<Value> {
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
    sandbox.ndjson("out/events.ndjson")
}

#[test]
fn every_endpoint_and_credential_form_is_accepted_and_stamped() {
    let (sandbox, mut sluice, port, _) = start("", "");
    let client = Client::new(port);
    for kind in ["track", "identify", "page", "screen", "group", "alias"] {
        // No `type`: it comes from the path.
        let body = json!({"messageId": format!("single-{kind}"), "userId": "u1"});
        let answer = client.send(&format!("/v1/{kind}"), &body);
        assert_eq!(answer.status, 200, "/v1/{kind}: {answer:?}");
        assert_eq!(answer.body, json!({"success": true}));
    }
    let batch = json!({
        "batch": [track("batch-1"), {"type": "page", "messageId": "batch-2", "context": {"ip": "9.9.9.9", "locale": "fr"}}],
        "context": {"library": {"name": "envelope-lib"}, "locale": "en"},
        "sentAt": "2024-03-01T10:00:05.000Z",
    });
    assert_eq!(client.send("/v1/batch", &batch).status, 200);
    let import = json!({"batch": [track("import-1")], "writeKey": KEY});
    // `writeKey` in the body, no header.
    let answer = client.post(
        "/v1/import",
        &[("content-type", "application/json")],
        import.to_string(),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let single_keyed = json!({"messageId": "body-key", "writeKey": KEY, "event": "X"});
    assert_eq!(
        client
            .post("/v1/track", &[], single_keyed.to_string())
            .status,
        200
    );
    // Webhooks: one event, or an array, with a bearer token.
    let bearer = format!("Bearer {TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    assert_eq!(
        client
            .post("/v1/webhook", &headers, track("hook-1").to_string())
            .status,
        200
    );
    let array = json!([track("hook-2"), track("hook-3")]);
    assert_eq!(
        client
            .post("/v1/webhook", &headers, array.to_string())
            .status,
        200
    );
    // gzip, as the Python library sends with gzip=True.
    let packed = gzip(
        json!({"batch": [track("gzip-1"), track("gzip-2")]})
            .to_string()
            .as_bytes(),
    );
    let auth = key_auth();
    let answer = client.post(
        "/v1/batch",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("authorization", &auth),
        ],
        packed,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    // X-Forwarded-For is not trusted by default.
    let answer = client.post(
        "/v1/track",
        &[("authorization", &auth), ("x-forwarded-for", "6.6.6.6")],
        track("xff-ignored").to_string(),
    );
    assert_eq!(answer.status, 200);

    let events = stop(&sandbox, &mut sluice);
    let by_id: BTreeMap<String, &Value> = message_ids(&events)
        .into_iter()
        .zip(events.iter())
        .collect();
    assert_eq!(
        by_id.len(),
        events.len(),
        "an event arrived twice: {events:?}"
    );
    let mut expected: Vec<String> = ["track", "identify", "page", "screen", "group", "alias"]
        .iter()
        .map(|k| format!("single-{k}"))
        .collect();
    for id in [
        "batch-1",
        "batch-2",
        "import-1",
        "body-key",
        "hook-1",
        "hook-2",
        "hook-3",
        "gzip-1",
        "gzip-2",
        "xff-ignored",
    ] {
        expected.push(id.to_owned());
    }
    expected.sort();
    assert_eq!(by_id.keys().cloned().collect::<Vec<_>>(), expected);
    for kind in ["track", "identify", "page", "screen", "group", "alias"] {
        assert_eq!(by_id[&format!("single-{kind}")]["type"], kind);
    }
    for event in &events {
        let received = str_field(event, "receivedAt");
        assert!(
            chrono::DateTime::parse_from_rfc3339(received).is_ok(),
            "{event}"
        );
        assert!(event.get("writeKey").is_none(), "the key was kept: {event}");
    }
    assert_eq!(by_id["single-track"]["context"]["ip"], "127.0.0.1");
    assert_eq!(by_id["xff-ignored"]["context"]["ip"], "127.0.0.1");
    // Envelope context fills what the event lacks; sentAt is kept.
    assert_eq!(
        by_id["batch-1"]["context"]["library"]["name"],
        "envelope-lib"
    );
    assert_eq!(by_id["batch-1"]["context"]["locale"], "en");
    assert_eq!(by_id["batch-1"]["sentAt"], "2024-03-01T10:00:05.000Z");
    assert_eq!(by_id["batch-2"]["context"]["locale"], "fr");
    assert_eq!(by_id["batch-2"]["context"]["ip"], "9.9.9.9");
}

#[test]
fn forwarded_for_is_used_only_when_trusted() {
    let (sandbox, mut sluice, port, _) = start("trust_forwarded_for = true", "");
    let client = Client::new(port);
    let auth = key_auth();
    let answer = client.post(
        "/v1/track",
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "1.1.1.1, 10.0.0.7"),
        ],
        track("xff").to_string(),
    );
    assert_eq!(answer.status, 200);
    let events = stop(&sandbox, &mut sluice);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["context"]["ip"], "10.0.0.7");
}

/// One bad request: what it is, how it is sent, and the answer it must get.
struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// The `code` of the JSON answer, when there is one to check.
    code: Option<&'static str>,
}

fn case(name: &'static str, path: &'static str, status: u16, code: Option<&'static str>) -> Case {
    Case {
        name,
        path,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("authorization", key_auth()),
        ],
        body: Vec::new(),
        status,
        code,
    }
}

impl Case {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = body.into();
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    fn without(mut self, name: &'static str) -> Case {
        self.headers.retain(|(n, _)| *n != name);
        self
    }
}

/// A track event whose JSON is exactly `size` bytes.
fn event_of_size(id: &str, size: usize) -> String {
    let base = json!({"type": "track", "event": "Big", "messageId": id, "pad": ""}).to_string();
    assert!(base.len() <= size);
    let pad = "x".repeat(size - base.len());
    let text = json!({"type": "track", "event": "Big", "messageId": id, "pad": pad}).to_string();
    assert_eq!(text.len(), size);
    text
}

/// A batch body of exactly `size` bytes: events of at most 1000 bytes, with
/// ids `prefix-0`, `prefix-1`, ...; returns the body and the ids.
fn batch_of_size(prefix: &str, size: usize) -> (String, Vec<String>) {
    // `{"batch":[` ... `]}`, events separated by commas.
    let mut left = size - "{\"batch\":[]}".len();
    let mut events = Vec::new();
    let mut ids = Vec::new();
    while left > 0 {
        let id = format!("{prefix}-{}", ids.len());
        let comma = usize::from(!events.is_empty());
        // Leave the next event room for at least 200 bytes.
        let room = left - comma;
        let take = match room {
            0..=1000 => room,
            1001..=1201 => 700,
            _ => 1000,
        };
        events.push(event_of_size(&id, take));
        ids.push(id);
        left -= take + comma;
    }
    let text = format!("{{\"batch\":[{}]}}", events.join(","));
    assert_eq!(text.len(), size);
    (text, ids)
}

#[test]
fn bad_input_is_refused_with_its_status_and_nothing_of_it_is_kept() {
    const MAX_EVENT: usize = 1024;
    const MAX_BATCH: usize = 8192;
    let extra = format!(
        "max_event_bytes = {MAX_EVENT}\nmax_batch_bytes = {MAX_BATCH}\nmax_batch_events = 10\nworkers = 2"
    );
    let (sandbox, mut sluice, port, _) = start(&extra, "");
    let client = Client::new(port);
    let good = |id: &str| track(id).to_string();
    let many = |n: usize, prefix: &str| {
        let events: Vec<Value> = (0..n).map(|i| track(&format!("{prefix}-{i}"))).collect();
        json!({ "batch": events }).to_string()
    };
    let cases = vec![
        case("no auth", "/v1/track", 401, Some("unauthorized"))
            .without("authorization")
            .body(good("bad-noauth")),
        case("wrong key", "/v1/track", 401, Some("unauthorized"))
            .header("authorization", basic("not-the-key", ""))
            .body(good("bad-wrongkey")),
        case("password not empty", "/v1/track", 401, Some("unauthorized"))
            .header("authorization", basic(KEY, "secret"))
            .body(good("bad-password")),
        case("no colon in basic", "/v1/track", 401, Some("unauthorized"))
            .header("authorization", format!("Basic {}", base64_of(KEY)))
            .body(good("bad-nocolon")),
        case("unknown scheme", "/v1/track", 401, Some("unauthorized"))
            .header("authorization", format!("Token {KEY}"))
            .body(good("bad-scheme")),
        case(
            "write key as bearer token",
            "/v1/webhook",
            401,
            Some("unauthorized"),
        )
        .header("authorization", format!("Bearer {KEY}"))
        .body(good("bad-bearer")),
        case(
            "wrong writeKey in body",
            "/v1/batch",
            401,
            Some("unauthorized"),
        )
        .without("authorization")
        .body(json!({"batch": [track("bad-bodykey")], "writeKey": "nope"}).to_string()),
        case("malformed JSON", "/v1/track", 400, Some("invalid_request"))
            .body(r#"{"messageId":"bad-json","#),
        case("malformed batch", "/v1/batch", 400, Some("invalid_request"))
            .body(r#"{"batch":[{"messageId":"bad-json-batch"}"#),
        case(
            "JSON array on a one-event endpoint",
            "/v1/track",
            400,
            Some("invalid_request"),
        )
        .body(format!("[{}]", good("bad-array"))),
        case(
            "JSON string as a batch",
            "/v1/batch",
            400,
            Some("invalid_request"),
        )
        .body("\"bad-string\""),
        case(
            "a batch element that is not an object",
            "/v1/batch",
            400,
            Some("invalid_request"),
        )
        .body(format!("{{\"batch\":[{},42]}}", good("bad-element"))),
        case(
            "batch that is not an array",
            "/v1/batch",
            400,
            Some("invalid_request"),
        )
        .body(format!("{{\"batch\":{}}}", good("bad-notarray"))),
        case("invalid UTF-8", "/v1/track", 400, Some("invalid_request")).body(
            [
                br#"{"messageId":"bad-utf8","event":""#.as_slice(),
                b"\xff\xfe",
                br#""}"#,
            ]
            .concat(),
        ),
        case(
            "one event over max_event_bytes",
            "/v1/track",
            413,
            Some("payload_too_large"),
        )
        .body(event_of_size("bad-event-size", MAX_EVENT + 1)),
        case(
            "batch body over max_batch_bytes",
            "/v1/batch",
            413,
            Some("payload_too_large"),
        )
        .body(batch_of_size("bad-batch-size", MAX_BATCH + 1).0),
        case(
            "an event of a batch over max_event_bytes",
            "/v1/batch",
            400,
            Some("invalid_request"),
        )
        .body(format!(
            "{{\"batch\":[{}]}}",
            event_of_size("bad-batch-event", MAX_EVENT + 1)
        )),
        case(
            "more than max_batch_events",
            "/v1/batch",
            400,
            Some("invalid_request"),
        )
        .body(many(11, "bad-many")),
        case(
            "gzip inflating just over the limit",
            "/v1/batch",
            413,
            Some("payload_too_large"),
        )
        .header("content-encoding", "gzip")
        .body(gzip(
            batch_of_size("bad-gzip-size", MAX_BATCH + 1).0.as_bytes(),
        )),
        case("gzip bomb", "/v1/batch", 413, Some("payload_too_large"))
            .header("content-encoding", "gzip")
            .body(gzip(
                &[b"{\"batch\":[".as_slice(), &vec![b' '; 64 << 20]].concat(),
            )),
        case("broken gzip", "/v1/batch", 400, Some("invalid_request"))
            .header("content-encoding", "gzip")
            .body(many(1, "bad-brokengzip")),
        case(
            "unsupported encoding",
            "/v1/batch",
            400,
            Some("invalid_request"),
        )
        .header("content-encoding", "br")
        .body(many(1, "bad-br")),
        case(
            "form Content-Type",
            "/v1/track",
            400,
            Some("invalid_request"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(good("bad-form")),
        case("unknown path", "/v1/nope", 404, Some("not_found")).body(good("bad-path")),
        case("unknown version", "/v2/track", 404, Some("not_found")).body(good("bad-v2")),
        case("root", "/", 404, Some("not_found")).body(good("bad-root")),
    ];
    let mut accepted = Vec::new();
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = client.post(case.path, &headers, case.body.clone());
        if answer.status != case.status {
            failures.push(format!(
                "{}: got {} {}, want {}",
                case.name, answer.status, answer.body, case.status
            ));
        } else if let Some(code) = case.code {
            if answer.body["code"] != code || answer.body["success"] != false {
                failures.push(format!(
                    "{}: body {} lacks code {code}",
                    case.name, answer.body
                ));
            }
        }
        // After every refusal the server still takes good requests.
        let id = format!("good-{n}");
        let answer = client.send("/v1/track", &track(&id));
        assert_eq!(answer.status, 200, "after {}: {answer:?}", case.name);
        accepted.push(id);
    }
    // Right at the limits is fine.
    let answer = client.post(
        "/v1/track",
        &[("authorization", &key_auth())],
        event_of_size("edge-event", MAX_EVENT),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    accepted.push("edge-event".into());
    let (body, ids) = batch_of_size("edge-batch", MAX_BATCH);
    let answer = client.post("/v1/batch", &[("authorization", &key_auth())], body);
    assert_eq!(answer.status, 200, "{answer:?}");
    accepted.extend(ids);
    let answer = client.post(
        "/v1/batch",
        &[("authorization", &key_auth())],
        many(10, "edge-many"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    accepted.extend((0..10).map(|i| format!("edge-many-{i}")));
    // Wrong methods on real endpoints.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let answer = client.request(method.clone(), "/v1/track");
        if answer.status != 405 {
            failures.push(format!(
                "{method} /v1/track: got {}, want 405",
                answer.status
            ));
        }
    }
    // A body over the limit sent without Content-Length (chunked) is cut off
    // while it streams in.
    let chunk = "x".repeat(MAX_BATCH);
    let request = format!(
        "POST /v1/batch HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        key_auth(),
        chunk.len(),
        chunk.len()
    );
    match raw_status(port, request.as_bytes(), Duration::from_secs(10)) {
        Some(413) => {}
        other => failures.push(format!(
            "chunked body over the limit: got {other:?}, want 413"
        )),
    }

    let events = stop(&sandbox, &mut sluice);
    let mut ids = message_ids(&events);
    ids.sort();
    accepted.sort();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ids, accepted, "exactly the accepted events, once each");
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn slow_clients_are_cut_off_and_do_not_block_others() {
    let (sandbox, mut sluice, port, _) = start("read_timeout = \"1s\"", "");
    // A body that trickles: headers promise 200 bytes, 10 arrive.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{{\"messageI",
        key_auth()
    );
    slow.write_all(head.as_bytes()).unwrap();
    // A head that never ends.
    let mut slower = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slower
        .set_read_timeout(Some(Duration::from_secs(12)))
        .unwrap();
    slower
        .write_all(b"POST /v1/track HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let started = Instant::now();
    // Meanwhile others are served.
    let client = Client::new(port);
    assert_eq!(client.send("/v1/track", &track("meanwhile")).status, 200);
    assert_eq!(
        read_status(&mut slow),
        Some(408),
        "the slow body is answered 408"
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "408 came after {waited:?}");
    // The slow head is dropped within the 5s head timeout (with or without an answer).
    let _ = read_status(&mut slower);
    let mut rest = Vec::new();
    let closed = std::io::Read::read_to_end(&mut slower, &mut rest).is_ok();
    assert!(
        closed,
        "the connection with an unfinished head was not closed"
    );
    assert!(started.elapsed() < Duration::from_secs(11));
    let events = stop(&sandbox, &mut sluice);
    assert_eq!(message_ids(&events), ["meanwhile"]);
}

#[test]
fn thousands_of_idle_connections_keep_memory_bounded() {
    let limit = raise_fd_limit();
    // Leave room for the test's own files and sluice's.
    let wanted = 10_000usize.min(limit.saturating_sub(500) as usize);
    assert!(
        wanted >= 2000,
        "the open-files limit {limit} is too low for this test"
    );
    let (sandbox, mut sluice, port, _) = start("max_connections = 20000", "");
    let client = Client::new(port);
    assert_eq!(client.send("/v1/track", &track("before")).status, 200);
    let rss_before = vm_rss_kib(sluice.pid()).expect("sluice RSS");
    let mut held = Vec::with_capacity(wanted);
    for i in 0..wanted {
        let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => stream,
            Err(e) => panic!("connection {i} of {wanted} failed: {e}"),
        };
        // Half send a partial head, half nothing at all.
        if i % 2 == 0 {
            let _ = stream.write_all(b"POST /v1/track HTTP/1.1\r\n");
        }
        held.push(stream);
    }
    // Let the server accept them all, then measure.
    std::thread::sleep(Duration::from_millis(1500));
    let rss_held = vm_rss_kib(sluice.pid()).expect("sluice RSS");
    // A normal request still goes through while they are held.
    assert_eq!(client.send("/v1/track", &track("during")).status, 200);
    let grown_mib = rss_held.saturating_sub(rss_before) / 1024;
    eprintln!(
        "{wanted} idle connections: RSS {} MiB -> {} MiB (+{grown_mib} MiB)",
        rss_before / 1024,
        rss_held / 1024
    );
    assert!(
        grown_mib < 256,
        "{wanted} idle connections grew sluice by {grown_mib} MiB"
    );
    drop(held);
    let events = stop(&sandbox, &mut sluice);
    assert_eq!(message_ids(&events), ["before", "during"]);
}

#[test]
fn no_room_downstream_is_answered_503_with_retry_after() {
    let sandbox = Sandbox::new();
    let api_port = free_port();
    let port = free_port();
    let topology = format!(
        "{}[engine]\nmailbox_capacity = 1\nbatch_size = 16\n\n{}\n[sinks.slow]\ntype = \"blackhole\"\ninputs = [\"segment\"]\nrate = 20\n",
        api_on(api_port),
        source_on(port, "max_wait = \"100ms\"")
    );
    let path = sandbox.topology(&topology);
    let mut sluice = sandbox.spawn(&path);
    sluice.api(api_port);
    let client = Client::new(port);
    let mut statuses = BTreeMap::new();
    let mut busy = None;
    for n in 0..40 {
        let events: Vec<Value> = (0..20).map(|i| track(&format!("e-{n}-{i}"))).collect();
        let answer = client.send("/v1/batch", &json!({ "batch": events }));
        *statuses.entry(answer.status).or_insert(0) += 1;
        if answer.status == 503 {
            busy = Some(answer);
            break;
        }
    }
    let busy = busy.unwrap_or_else(|| panic!("no 503 in {statuses:?}"));
    assert_eq!(busy.body["code"], "unavailable", "{busy:?}");
    assert_eq!(busy.retry_after.as_deref(), Some("1"));
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}

#[test]
fn delivered_answers_after_the_write_and_500_when_a_sink_fails() {
    let sandbox = Sandbox::new();
    let api_port = free_port();
    let port = free_port();
    // Tracks go to a file; pages to a path that can never be created.
    let topology = format!(
        "{}[engine.restart]\nmax_restarts = 1000\nwithin = \"60s\"\nbackoff = {{ initial = \"1ms\", max = \"5ms\" }}\n\n{}\n\
         [transforms.tracks]\ntype = \"filter\"\ninputs = [\"segment\"]\ntypes = [\"track\"]\n\n\
         [transforms.pages]\ntype = \"filter\"\ninputs = [\"segment\"]\ntypes = [\"page\"]\n\n\
         [sinks.good]\ntype = \"file\"\ninputs = [\"tracks\"]\npath = \"out/tracks.ndjson\"\n\n\
         [sinks.broken]\ntype = \"file\"\ninputs = [\"pages\"]\npath = \"/dev/null/cannot/{{type}}.ndjson\"\n",
        api_on(api_port),
        source_on(port, "acknowledgements = \"delivered\"")
    );
    let path = sandbox.topology(&topology);
    let mut sluice = sandbox.spawn(&path);
    sluice.api(api_port);
    let client = Client::new(port);
    for n in 0..20 {
        let id = format!("t-{n}");
        let answer = client.send("/v1/track", &track(&id));
        assert_eq!(answer.status, 200, "{answer:?}");
        // A 200 means it is written already.
        let written = message_ids(&sandbox.ndjson("out/tracks.ndjson"));
        assert!(
            written.contains(&id),
            "{id} answered 200 before it was written"
        );
    }
    let page = json!({"type": "page", "messageId": "p-1", "anonymousId": "a"});
    let answer = client.send("/v1/page", &page);
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(answer.body["code"], "delivery_failed");
    // A batch with one event for each sink fails as a whole.
    let mixed = json!({"batch": [track("t-mixed"), {"type": "page", "messageId": "p-2"}]});
    assert_eq!(client.send("/v1/batch", &mixed).status, 500);
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}

#[test]
fn shutdown_finishes_requests_in_flight_and_refuses_new_connections() {
    let (sandbox, mut sluice, port, api_port) = start("", "");
    let api = Api::new(api_port);
    assert!(api.ready());
    // A request whose body is still on its way when shutdown begins.
    let body = track("in-flight").to_string();
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n{first}",
        key_auth(),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    sluice.terminate();
    // New connections are refused once the listener is closed.
    poll_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        "the listener to close",
        || {
            TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        },
    );
    stream.write_all(rest.as_bytes()).unwrap();
    assert_eq!(
        read_status(&mut stream),
        Some(200),
        "the request in flight is finished"
    );
    sluice.expect_success(Duration::from_secs(30));
    assert_eq!(
        message_ids(&sandbox.ndjson("out/events.ndjson")),
        ["in-flight"]
    );
}

#[test]
fn at_shutdown_a_delivered_request_held_by_sessionize_is_answered_200() {
    let sandbox = Sandbox::new();
    let api_port = free_port();
    let port = free_port();
    // sessionize holds events until its watermark passes them (2 minutes
    // here): the answer waits for the shutdown, which flushes them.
    let topology = format!(
        "{}{}\n[transforms.sessions]\ntype = \"sessionize\"\ninputs = [\"segment\"]\n\
         fallback_key = \"anonymousId\"\nallowed_lateness = \"2m\"\n\n\
         [sinks.out]\ntype = \"file\"\ninputs = [\"sessions\"]\npath = \"out/events.ndjson\"\n",
        api_on(api_port),
        source_on(port, "acknowledgements = \"delivered\"")
    );
    let path = sandbox.topology(&topology);
    let mut sluice = sandbox.spawn(&path);
    sluice.api(api_port);
    let waiting = std::thread::spawn(move || Client::new(port).send("/v1/track", &track("held")));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !waiting.is_finished(),
        "answered before the event was written"
    );
    assert!(sandbox.ndjson("out/events.ndjson").is_empty());
    let stopping = Instant::now();
    sluice.terminate();
    let answer = waiting.join().expect("the client thread");
    assert_eq!(answer.status, 200, "{answer:?}");
    sluice.expect_success(Duration::from_secs(30));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    let events = sandbox.ndjson("out/events.ndjson");
    assert_eq!(message_ids(&events), ["held"]);
    assert!(events[0]["session"]["id"].is_string());
}

#[test]
fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let (_sandbox, mut sluice, port, _) = start("", "");
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let body = track("kept-alive").to_string();
    let request = format!(
        "POST /v1/track HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n{body}",
        key_auth(),
        body.len()
    );
    idle.write_all(request.as_bytes()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(read_status(&mut idle), Some(200));
    let stopping = Instant::now();
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "an idle keep-alive connection held shutdown for {:?}",
        stopping.elapsed()
    );
}
