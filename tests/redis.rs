//! The `redis` sink and the counts endpoint against a real `redis-server`
//! (one per test, on a free port): counts after a replay of `sluice gen` data
//! equal counts computed here from the same file; Redis killed and restarted
//! mid-run, or unreachable at start, still ends with exact counts; AUTH and
//! TLS connections; `missing = "reject"`; `GET /v1/counts/{userId}` with
//! good, bad and missing credentials and hostile ids.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use common::redis_server::{Dump, RedisOptions, RedisServer};
use common::*;
use serde_json::Value;

const COUNTER_KEY: &str = "{type}:{properties.sku}:q{properties.quantity}";

/// The template rendering the sink does, done independently: strings as they
/// are, numbers and booleans as text, anything else empty.
fn render(event: &Value, template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        let mut value = event;
        for part in rest[open + 1..close].split('.') {
            value = &value[part];
        }
        match value {
            Value::String(s) => out.push_str(s),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Bool(b) => out.push_str(&b.to_string()),
            _ => {}
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The counts the two sinks of [`topology`] must produce for `lines`.
fn expected(lines: &[Value]) -> Dump {
    let mut dump = Dump::default();
    for event in lines {
        *dump.counters.entry(render(event, COUNTER_KEY)).or_default() += 1;
        *dump
            .hashes
            .entry(render(event, "counts:{userId}"))
            .or_default()
            .entry(render(event, "{event}"))
            .or_default() += 1;
    }
    dump
}

/// The JSON objects of an NDJSON file (the source rejects other lines).
fn objects(sandbox: &Sandbox, rel: &str) -> Vec<Value> {
    std::fs::read_to_string(sandbox.path(rel))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

fn topology(head: &str, url: &str, at_end: &str, extra: &str) -> String {
    format!(
        "{head}[engine]\nshutdown_timeout = \"20s\"\n\n\
         [sources.in]\ntype = \"file\"\npath = \"in.ndjson\"\nat_end = \"{at_end}\"\npoll_interval = \"50ms\"\n\n\
         [sinks.impressions]\ntype = \"redis\"\ninputs = [\"in\"]\nurl = \"{url}\"\nmode = \"counter\"\n\
         key = \"{COUNTER_KEY}\"\nflush_interval = \"200ms\"\nttl = \"1d\"\n{extra}\n\
         [sinks.user_counts]\ntype = \"redis\"\ninputs = [\"in\"]\nurl = \"{url}\"\nmode = \"hash_counter\"\n\
         key = \"counts:{{userId}}\"\nfield = \"{{event}}\"\nflush_interval = \"200ms\"\n{extra}\n"
    )
}

fn assert_counts(redis: &RedisServer, want: &Dump) {
    let got = redis.dump();
    assert_eq!(
        got.counters.len(),
        want.counters.len(),
        "distinct counter keys"
    );
    assert_eq!(got.counters, want.counters);
    assert_eq!(got.hashes, want.hashes);
}

/// Polls until Redis holds exactly `want` (or fails after `timeout`).
fn wait_for_counts(redis: &RedisServer, want: &Dump, timeout: Duration) {
    poll_until(
        timeout,
        Duration::from_millis(100),
        "the expected counts in redis",
        || {
            let got = redis.dump();
            (got.counters == want.counters && got.hashes == want.hashes).then_some(())
        },
    );
}

#[test]
fn replayed_gen_data_counts_exactly() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::new();
    let lines = sandbox.gen(
        "in.ndjson",
        &["--events", "20000", "--machines", "300", "--seed", "5"],
    );
    let events = objects(&sandbox, "in.ndjson");
    let path = sandbox.topology(&topology(NO_API, &redis.url(), "stop", ""));
    let mut sluice = sandbox.spawn(&path);
    sluice.expect_success(Duration::from_secs(60));
    assert_counts(&redis, &expected(&events));
    // Every line was acknowledged delivered (the invalid ones to the
    // source's `rejected`), none failed.
    let report = sluice.source_report("in");
    assert_eq!(report.lines, lines);
    assert_eq!(report.delivered, lines, "{report:?}");
    assert_eq!(report.failed, 0);
    // Pre-aggregation: far fewer counters than events, and TTLs were set.
    let mut conn = redis.connection();
    let key = expected(&events).counters.keys().next().unwrap().clone();
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut conn).unwrap();
    assert!((1..=86400).contains(&ttl), "ttl {ttl}");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    let incrby = info
        .lines()
        .find(|l| l.starts_with("cmdstat_incrby:"))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no incrby stats in {info}"));
    assert!(
        incrby < events.len() as u64 / 5,
        "{incrby} INCRBY for {} events",
        events.len()
    );
}

#[test]
fn redis_killed_and_restarted_mid_run_loses_and_doubles_nothing() {
    let mut redis = RedisServer::start_with(RedisOptions {
        persistent: true,
        ..Default::default()
    });
    let sandbox = Sandbox::new();
    sandbox.gen(
        "all.ndjson",
        &["--events", "30000", "--machines", "200", "--seed", "9"],
    );
    let text = std::fs::read_to_string(sandbox.path("all.ndjson")).unwrap();
    let all: Vec<&str> = text.lines().collect();
    let third = all.len() / 3;
    let part = |range: std::ops::Range<usize>| all[range].join("\n") + "\n";
    sandbox.write("in.ndjson", part(0..third));
    let port = free_port();
    let path = sandbox.topology(&topology(&api_on(port), &redis.url(), "follow", ""));
    let mut sluice = sandbox.spawn(&path);
    let api = sluice.api(port);
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(50),
        "first counts",
        || (!redis.dump().counters.is_empty()).then_some(()),
    );

    redis.kill();
    sandbox.append("in.ndjson", part(third..2 * third));
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "/ready to report the sinks degraded",
        || {
            let ready = reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready")).ok()?;
            let status = ready.status();
            let body: Value = ready.json().ok()?;
            (status == 503 && body["degraded_components"].as_array()?.len() == 2).then_some(())
        },
    );
    assert!(api.topology()["degraded"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));

    redis.restart();
    sandbox.append("in.ndjson", part(2 * third..all.len()));
    let events = objects(&sandbox, "in.ndjson");
    wait_for_counts(&redis, &expected(&events), Duration::from_secs(30));
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        "/ready again",
        || api.ready().then_some(()),
    );
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
    // Nothing more was written at shutdown: still exact.
    assert_counts(&redis, &expected(&events));
}

#[test]
fn unreachable_at_start_then_counts_arrive() {
    let port = free_port();
    let redis_port = free_port();
    let sandbox = Sandbox::new();
    sandbox.gen(
        "in.ndjson",
        &["--events", "3000", "--machines", "50", "--seed", "2"],
    );
    let events = objects(&sandbox, "in.ndjson");
    let url = format!("redis://127.0.0.1:{redis_port}");
    let path = sandbox.topology(&topology(&api_on(port), &url, "follow", ""));
    let mut sluice = sandbox.spawn(&path);
    let api = Api::new(port);
    let body = poll_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "a degraded /ready",
        || {
            assert!(
                sluice.try_status().is_none(),
                "sluice exited:\n{}",
                sluice.log_text()
            );
            let r = reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready")).ok()?;
            let status = r.status();
            let body: Value = r.json().ok()?;
            (status == 503 && body["degraded_components"].as_array()?.len() == 2).then_some(body)
        },
    );
    assert_eq!(body["failed_components"], serde_json::json!([]));
    assert!(body["degraded_components"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("redis"));
    let redis = RedisServer::start_with(RedisOptions {
        port: Some(redis_port),
        ..Default::default()
    });
    wait_for_counts(&redis, &expected(&events), Duration::from_secs(30));
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        "/ready",
        || api.ready().then_some(()),
    );
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(20));
}

#[test]
fn password_and_acl_user_auth() {
    let redis = RedisServer::start_with(RedisOptions {
        password: Some("s3cret".into()),
        ..Default::default()
    });
    let mut conn = redis.connection();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "counter", "on", ">pw2", "~*", "+@all"])
        .query(&mut conn)
        .unwrap();
    let sandbox = Sandbox::new();
    sandbox.gen(
        "in.ndjson",
        &["--events", "2000", "--machines", "40", "--seed", "3"],
    );
    let events = objects(&sandbox, "in.ndjson");
    let url = format!("redis://counter:pw2@127.0.0.1:{}", redis.port);
    let path = sandbox.topology(&topology(NO_API, &url, "stop", ""));
    sandbox.spawn(&path).expect_success(Duration::from_secs(30));
    assert_counts(&redis, &expected(&events));

    // The default user's password works too; a wrong one never writes.
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    let path = sandbox.topology(&topology(NO_API, &redis.url(), "stop", ""));
    sandbox.spawn(&path).expect_success(Duration::from_secs(30));
    assert_counts(&redis, &expected(&events));
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    let port = free_port();
    let bad = format!("redis://:wrong@127.0.0.1:{}", redis.port);
    let path = sandbox.topology(&topology(&api_on(port), &bad, "follow", ""));
    let mut sluice = sandbox.spawn(&path);
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "degraded with a bad password",
        || {
            let r = reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready")).ok()?;
            (r.status() == 503).then_some(())
        },
    );
    assert!(redis.dump().counters.is_empty());
    sluice.terminate();
    // The counts cannot be written: shutdown gives up after its timeout.
    let _ = sluice.wait(Duration::from_secs(40));
}

#[test]
fn tls_with_a_private_ca() {
    let redis = RedisServer::start_with(RedisOptions {
        tls: true,
        password: Some("tlspw".into()),
        ..Default::default()
    });
    let sandbox = Sandbox::new();
    sandbox.gen(
        "in.ndjson",
        &["--events", "2000", "--machines", "40", "--seed", "4"],
    );
    let events = objects(&sandbox, "in.ndjson");
    let ca = format!("tls_ca_file = \"{}\"\n", redis.ca_file().display());
    let path = sandbox.topology(&topology(NO_API, &redis.url(), "stop", &ca));
    sandbox.spawn(&path).expect_success(Duration::from_secs(30));
    assert_counts(&redis, &expected(&events));
}

#[test]
fn missing_fields_reject_when_asked() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "in.ndjson",
        "{\"date\":\"2015-12-17\",\"properties\":{\"page\":\"cart\",\"action\":\"checkoutnow\",\"impression_id\":2276}}\n\
         {\"date\":\"2015-12-17\",\"properties\":{\"page\":\"cart\",\"section\":\"top\",\"action\":\"buy\",\"impression_id\":1}}\n",
    );
    let key = "{date}:{properties.page}:{properties.section}:{properties.action}:impression_{properties.impression_id}";
    let toml = format!(
        "{NO_API}[sources.in]\ntype = \"file\"\npath = \"in.ndjson\"\n\n\
         [sinks.lenient]\ntype = \"redis\"\ninputs = [\"in\"]\nurl = \"{url}\"\nmode = \"counter\"\nkey = \"{key}\"\n\n\
         [sinks.strict]\ntype = \"redis\"\ninputs = [\"in\"]\nurl = \"{url}\"\nmode = \"counter\"\nkey = \"strict:{key}\"\nmissing = \"reject\"\n\n\
         [sinks.rejects]\ntype = \"file\"\ninputs = [\"strict.rejected\"]\npath = \"rejected.ndjson\"\n",
        url = redis.url()
    );
    let path = sandbox.topology(&toml);
    sandbox.spawn(&path).expect_success(Duration::from_secs(30));
    let got = redis.dump();
    let want: BTreeMap<String, i64> = [
        ("2015-12-17:cart::checkoutnow:impression_2276".to_owned(), 1),
        ("2015-12-17:cart:top:buy:impression_1".to_owned(), 1),
        ("strict:2015-12-17:cart:top:buy:impression_1".to_owned(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(got.counters, want);
    let rejected = sandbox.ndjson("rejected.ndjson");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["reason"], "missing_field");
    assert_eq!(rejected[0]["event"]["properties"]["impression_id"], 2276);
}

#[test]
fn counts_endpoint_needs_credentials_and_refuses_hostile_ids() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::new();
    sandbox.gen(
        "in.ndjson",
        &["--events", "3000", "--machines", "30", "--seed", "6"],
    );
    let events = objects(&sandbox, "in.ndjson");
    let want = expected(&events);
    let port = free_port();
    let head = format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ncounts = {{ sink = \"user_counts\" }}\n\
         auth = {{ write_keys = [\"wk-123\"], bearer_tokens = [\"tok-abc\"] }}\n\n"
    );
    let path = sandbox.topology(&topology(&head, &redis.url(), "follow", ""));
    let mut sluice = sandbox.spawn(&path);
    let _api = sluice.api(port);
    wait_for_counts(&redis, &want, Duration::from_secs(30));

    let client = reqwest::blocking::Client::new();
    let get = |id: &str, auth: Option<&str>| {
        let mut req = client.get(format!("http://127.0.0.1:{port}/v1/counts/{id}"));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let resp = req.send().expect("GET /v1/counts");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let basic = |user: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:"))
        )
    };
    let (user, counts) = want
        .hashes
        .iter()
        .find(|(k, _)| k.len() > "counts:".len())
        .map(|(k, v)| (k["counts:".len()..].to_owned(), v.clone()))
        .unwrap();
    let want_json: serde_json::Map<String, Value> = counts
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(*v)))
        .collect();
    for auth in [basic("wk-123"), "Bearer tok-abc".to_owned()] {
        let (status, body) = get(&user, Some(&auth));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["userId"], user.as_str());
        assert_eq!(body["counts"], Value::Object(want_json.clone()));
    }
    // Missing, wrong, malformed credentials.
    assert_eq!(get(&user, None).0, 401);
    assert_eq!(get(&user, Some(&basic("wk-999"))).0, 401);
    assert_eq!(get(&user, Some("Bearer tok-abd")).0, 401);
    assert_eq!(get(&user, Some("Bearer wk-123")).0, 401);
    assert_eq!(get(&user, Some("Digest x")).0, 401);
    let good = basic("wk-123");
    // Unknown users, and ids that try to reach other keys or inject commands.
    assert_eq!(get("u-nobody", Some(&good)).0, 404);
    assert_eq!(get("*", Some(&good)).0, 404);
    assert_eq!(get("u-0000%2A", Some(&good)).0, 404);
    assert_eq!(get("x%0D%0AFLUSHALL%0D%0A", Some(&good)).0, 400);
    assert_eq!(get(&"x".repeat(300), Some(&good)).0, 400);
    // An empty userId is a key like any other: events without one count there.
    assert_eq!(
        get("", Some(&good)).0,
        404,
        "empty path segment matches no route"
    );
    // Nothing was flushed or changed by the hostile requests.
    assert_counts(&redis, &want);
    sluice.terminate();
    sluice.expect_success(Duration::from_secs(20));
}

/// The sink driven directly (no topology), so acknowledgements can be watched.
mod sink_level {
    use super::*;
    use sluice::ack::{ack_channel, BatchStatus};
    use sluice::component::{BuildContext, Sink, StateStore};
    use sluice::config::{from_table, EngineConfig};
    use sluice::event::Event;
    use sluice::sinks::redis::RedisSinkConfig;

    fn sink(url: &str, extra: &str) -> Box<dyn Sink> {
        let config: RedisSinkConfig = from_table(
            toml::from_str(&format!(
                "url = \"{url}\"\nmode = \"counter\"\nkey = \"k:{{n}}\"\nrequest_timeout = \"300ms\"\n{extra}"
            ))
            .unwrap(),
        )
        .unwrap();
        let state = StateStore::default();
        let engine = EngineConfig::default();
        let cx = BuildContext {
            id: "c",
            engine: &engine,
            state: &state,
            shard: None,
        };
        config.build(&cx).unwrap()
    }

    fn batch(from: u64, n: u64) -> Vec<Event> {
        (from..from + n)
            .map(|i| Event::from_json(&format!("{{\"n\":{i}}}")).unwrap())
            .collect()
    }

    /// Polls the flush task along with ticks until `rx` resolves.
    async fn settle(
        sink: &mut Box<dyn Sink>,
        rx: &mut tokio::sync::oneshot::Receiver<BatchStatus>,
        within: Duration,
    ) -> Option<BatchStatus> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            sink.tick().await;
            if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_millis(50), &mut *rx).await
            {
                return Some(status);
            }
        }
        None
    }

    #[tokio::test]
    async fn a_batch_is_acknowledged_only_once_its_counts_are_in_redis() {
        let port = free_port();
        let mut sink = sink(&format!("redis://127.0.0.1:{port}"), "");
        let (ack, mut rx) = ack_channel();
        sink.write(&batch(0, 10)).await.unwrap();
        sink.hold_ack(ack);
        // Redis is not there: the batch stays unacknowledged, however long.
        assert_eq!(
            settle(&mut sink, &mut rx, Duration::from_secs(2)).await,
            None
        );
        let redis = RedisServer::start_with(RedisOptions {
            port: Some(port),
            ..Default::default()
        });
        assert_eq!(
            settle(&mut sink, &mut rx, Duration::from_secs(20)).await,
            Some(BatchStatus::Delivered)
        );
        assert_eq!(redis.dump().counters.len(), 10);
    }

    #[tokio::test]
    async fn unwritten_counts_fail_their_batch_when_the_sink_goes_away() {
        let port = free_port();
        let mut sink = sink(&format!("redis://127.0.0.1:{port}"), "");
        let (ack, rx) = ack_channel();
        sink.write(&batch(0, 3)).await.unwrap();
        sink.hold_ack(ack);
        drop(sink);
        assert_eq!(rx.await.unwrap(), BatchStatus::Failed);
    }

    #[tokio::test]
    async fn the_pending_bound_stops_input_until_redis_is_back() {
        let port = free_port();
        let mut sink = sink(
            &format!("redis://127.0.0.1:{port}"),
            "max_pending_keys = 10\n",
        );
        // The first 10 keys fill a generation, which goes to the flush task;
        // the next 10 fill the next one, and that write must wait.
        sink.write(&batch(0, 10)).await.unwrap();
        let second = batch(10, 10);
        let mut write = sink.write(&second);
        let blocked = tokio::time::timeout(Duration::from_secs(2), &mut write).await;
        assert!(
            blocked.is_err(),
            "the write went through with the bound reached and Redis down"
        );
        let redis = RedisServer::start_with(RedisOptions {
            port: Some(port),
            ..Default::default()
        });
        tokio::time::timeout(Duration::from_secs(20), write)
            .await
            .expect("the write proceeds once Redis is back")
            .unwrap();
        sink.flush().await.unwrap();
        // Both generations written, each counter once.
        let dump = redis.dump();
        assert_eq!(dump.counters.len(), 20);
        assert!(dump.counters.values().all(|v| *v == 1), "{dump:?}");
    }

    /// A TCP proxy to Redis that, once, lets a transaction's `EXEC` through
    /// but swallows Redis's reply and drops the connection: the flush was
    /// applied and the sink cannot know. Its retry must not apply it again.
    struct LostReplyProxy {
        port: u16,
        tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl LostReplyProxy {
        fn start(redis_port: u16) -> LostReplyProxy {
            use std::io::{Read, Write};
            use std::net::{Shutdown, TcpListener, TcpStream};
            use std::sync::atomic::{AtomicBool, Ordering};
            use std::sync::Arc;
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let tripped = Arc::new(AtomicBool::new(false));
            let armed = tripped.clone();
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let server = TcpStream::connect(("127.0.0.1", redis_port)).unwrap();
                    let swallow = Arc::new(AtomicBool::new(false));
                    let (mut from_server, mut to_client) =
                        (server.try_clone().unwrap(), client.try_clone().unwrap());
                    let swallowing = swallow.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from_server.read(&mut buf) {
                            if n == 0
                                || (!swallowing.load(Ordering::SeqCst)
                                    && to_client.write_all(&buf[..n]).is_err())
                            {
                                break;
                            }
                        }
                    });
                    let armed = armed.clone();
                    std::thread::spawn(move || {
                        let (mut from_client, mut to_server) = (client, server);
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from_client.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            let exec = buf[..n].windows(4).any(|w| w == b"EXEC");
                            if exec && !armed.swap(true, Ordering::SeqCst) {
                                swallow.store(true, Ordering::SeqCst);
                                let _ = to_server.write_all(&buf[..n]);
                                std::thread::sleep(Duration::from_millis(300));
                                // Both directions go down: the reply is lost.
                                let _ = from_client.shutdown(Shutdown::Both);
                                let _ = to_server.shutdown(Shutdown::Both);
                                break;
                            }
                            if to_server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            LostReplyProxy { port, tripped }
        }
    }

    #[tokio::test]
    async fn a_transaction_whose_reply_was_lost_is_not_applied_twice() {
        let redis = RedisServer::start();
        let proxy = LostReplyProxy::start(redis.port);
        let mut sink = sink(&format!("redis://127.0.0.1:{}", proxy.port), "");
        let (ack, mut rx) = ack_channel();
        sink.write(&batch(0, 5)).await.unwrap();
        sink.write(&batch(0, 5)).await.unwrap();
        sink.hold_ack(ack);
        assert_eq!(
            settle(&mut sink, &mut rx, Duration::from_secs(20)).await,
            Some(BatchStatus::Delivered)
        );
        assert!(
            proxy.tripped.load(std::sync::atomic::Ordering::SeqCst),
            "the reply was never lost"
        );
        let dump = redis.dump();
        assert_eq!(dump.counters.len(), 5);
        assert!(
            dump.counters.values().all(|v| *v == 2),
            "applied twice? {dump:?}"
        );
    }
}
