//! What the observability tests share: a topology with one component of every
//! type the crate knows (listed from the `TYPES` constants, so a new type
//! without a config here fails every test that uses it), input that makes each
//! conditional series appear (a bad line, a filtered event, a duplicate, a
//! poison event that crashes `chaos` into a restart), a thread that keeps a
//! followed file growing, and a parser for the Prometheus text format.
//!
//! Used by `metrics_doc.rs`, `compliance.rs`, `dashboards.rs` and `logs.rs`,
//! each with `mod common; mod observability;`.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sluice::sinks::SinkConfig;
use sluice::sources::SourceConfig;
use sluice::transforms::TransformConfig;

/// The file every source of these topologies follows, in the sandbox.
pub const INPUT: &str = "in.ndjson";

/// The `messageId` that makes the `chaos` transform panic.
pub const POISON: &str = "m-poison";

/// The write key of the `segment_http` source in these topologies.
pub const HTTP_KEY: &str = "observability-key";

/// One component of the generated topology.
#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    pub kind: &'static str,
    pub type_name: &'static str,
}

/// A topology with one component of every type, and what is in it, with
/// the servers its sinks write to (stopped when it is dropped).
pub struct EveryType {
    pub toml: String,
    pub components: Vec<Component>,
    pub redis: Option<super::common::redis_server::RedisServer>,
    pub receiver: Option<super::common::http_receiver::Receiver>,
    /// The port the `segment_http` source listens on.
    pub http_port: u16,
}

impl EveryType {
    pub fn has_type(&self, type_name: &str) -> bool {
        self.components.iter().any(|c| c.type_name == type_name)
    }

    /// Starts posting batches to the `segment_http` source (when the topology
    /// has one) until dropped, so its series move like the file source's.
    pub fn feed_http(&self, per_tick: u64, every: Duration) -> Option<HttpFeeder> {
        self.has_type("segment_http")
            .then(|| HttpFeeder::start(self.http_port, per_tick, every))
    }
}

/// Every `(kind, type)` the crate accepts, from the `TYPES` constants.
pub fn all_types() -> Vec<(&'static str, &'static str)> {
    let kinds: [(&str, &[&str]); 3] = [
        ("source", SourceConfig::TYPES),
        ("transform", TransformConfig::TYPES),
        ("sink", SinkConfig::TYPES),
    ];
    kinds
        .iter()
        .flat_map(|(kind, types)| types.iter().map(move |t| (*kind, *t)))
        .collect()
}

/// The body of a component's table (without `type` and `inputs`), and the
/// output the next transform in the chain reads, as a suffix of its id (`""`
/// for the bare id). A type with no entry here fails the test that needs it:
/// give it a config that makes it emit events, and reject some if it can.
fn config_of(
    kind: &str,
    type_name: &str,
    sharded: bool,
    servers: &mut Servers,
    http_port: u16,
) -> (String, Vec<&'static str>) {
    let body = match (kind, type_name) {
        ("source", "segment_http") => format!(
            "listen = \"127.0.0.1:{http_port}\"\nwrite_keys = [\"{HTTP_KEY}\"]\nmax_wait = \"2s\"\n"
        ),
        ("source", "file") => {
            format!("path = \"{INPUT}\"\nat_end = \"follow\"\npoll_interval = \"50ms\"\n")
        }
        ("transform", "filter") => "types = [\"track\", \"page\", \"identify\"]\n".to_owned(),
        ("transform", "dedupe") => format!(
            "field = \"messageId\"\ncapacity = 100000\n{}",
            if sharded { "shards = 2\n" } else { "" }
        ),
        ("transform", "enrich") => {
            "ops = [{ op = \"set\", path = \"pipeline\", value = \"sluice\" }]\n".to_owned()
        }
        ("transform", "route") => {
            let body = "routes = { orders = [\"Order Completed\"] }\n".to_owned();
            return (body, vec!["._default", ".orders"]);
        }
        ("transform", "chaos") => format!("values = [\"{POISON}\"]\n"),
        ("transform", "sessionize") => {
            // Short timeout and no lateness: sessions open and close while the
            // test runs, so every sessions series moves.
            "timeout = \"1s\"\nallowed_lateness = \"0s\"\n".to_owned()
        }
        ("sink", "file") => "path = \"out/{type}.ndjson\"\n".to_owned(),
        ("sink", "console") => "target = \"stdout\"\n".to_owned(),
        ("sink", "blackhole") => String::new(),
        ("sink", "redis") => {
            let redis = servers
                .redis
                .get_or_insert_with(super::common::redis_server::RedisServer::start);
            format!(
                "url = \"{}\"\nmode = \"hash_counter\"\nkey = \"counts:{{anonymousId}}\"\n\
                 field = \"{{event}}\"\nflush_interval = \"100ms\"\n",
                redis.url()
            )
        }
        ("sink", "http") => {
            let receiver = servers
                .receiver
                .get_or_insert_with(super::common::http_receiver::Receiver::ok);
            format!(
                "uri = \"{}\"\nencoding = \"ndjson\"\n",
                receiver.url("/events")
            )
        }
        (kind, other) => panic!(
            "the observability tests have no config for {kind} type \"{other}\": add one to \
             `config_of` in tests/observability/mod.rs so the metrics, compliance and \
             dashboard tests cover it"
        ),
    };
    (body, vec![""])
}

/// The servers the sinks of the topology write to, started on demand.
#[derive(Default)]
struct Servers {
    redis: Option<super::common::redis_server::RedisServer>,
    receiver: Option<super::common::http_receiver::Receiver>,
}

/// The id a component of `type_name` gets: the type for transforms, the type
/// with its kind for sources and sinks (a file source and a file sink).
fn id_of(kind: &str, type_name: &str) -> String {
    match kind {
        "transform" => type_name.to_owned(),
        _ => format!("{type_name}_{kind}"),
    }
}

/// Sources feed a chain of every transform in `TYPES` order; every sink reads
/// the last transform. `head` goes first (`[api]`, `[engine]`). `sharded` runs
/// the transforms that can be sharded as two shards.
pub fn every_type_topology(head: &str, sharded: bool) -> EveryType {
    let mut toml = String::from(head);
    toml.push_str(
        "\n[engine.restart]\nmax_restarts = 50\nwithin = \"60s\"\n\
         backoff = { initial = \"10ms\", max = \"50ms\" }\n",
    );
    let mut components = Vec::new();
    let mut servers = Servers::default();
    let mut upstream: Vec<String> = Vec::new();
    let mut last_transform: Vec<String> = Vec::new();
    let http_port = crate::common::free_port();
    for (kind, type_name) in all_types() {
        let id = id_of(kind, type_name);
        let (body, next_inputs) = config_of(kind, type_name, sharded, &mut servers, http_port);
        let section = match kind {
            "source" => "sources",
            "transform" => "transforms",
            _ => "sinks",
        };
        toml.push_str(&format!(
            "\n[{section}.{id}]\ntype = \"{type_name}\"\n{body}"
        ));
        let inputs = match kind {
            "source" => None,
            "transform" => Some(&upstream),
            _ => Some(&last_transform),
        };
        if let Some(inputs) = inputs {
            let quoted: Vec<String> = inputs.iter().map(|i| format!("\"{i}\"")).collect();
            toml.push_str(&format!("inputs = [{}]\n", quoted.join(", ")));
        }
        let outputs: Vec<String> = next_inputs.iter().map(|s| format!("{id}{s}")).collect();
        match kind {
            // Several sources would all feed the first transform.
            "source" => upstream.extend(outputs),
            "transform" => {
                upstream = outputs.clone();
                last_transform = outputs;
            }
            _ => {}
        }
        components.push(Component {
            id,
            kind,
            type_name,
        });
    }
    EveryType {
        toml,
        components,
        redis: servers.redis,
        receiver: servers.receiver,
        http_port,
    }
}

/// Posts `/v1/batch` requests of live events to a `segment_http` source
/// every `every` until dropped; connection errors (before the source listens,
/// after it stopped) are ignored.
pub struct HttpFeeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpFeeder {
    pub fn start(port: u16, per_tick: u64, every: Duration) -> HttpFeeder {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("build an HTTP client");
            let url = format!("http://127.0.0.1:{port}/v1/batch");
            let mut next = 0;
            while !stopping.load(Ordering::Relaxed) {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let batch: Vec<serde_json::Value> = (next..next + per_tick)
                    .map(|i| {
                        serde_json::json!({"n": i, "messageId": format!("h-{i}"), "type": "track",
                            "event": "Tick", "anonymousId": format!("a-{}", i % 20), "timestamp": now})
                    })
                    .collect();
                let body = serde_json::json!({ "batch": batch, "writeKey": HTTP_KEY });
                let sent = client.post(&url).json(&body).send();
                if sent.is_ok_and(|r| r.status().is_success()) {
                    next += per_tick;
                }
                std::thread::sleep(every);
            }
        });
        HttpFeeder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpFeeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread only posts; a panic in it already showed in the output.
            let _ = thread.join();
        }
    }
}

/// Lines that make the conditional series appear: a malformed line (the
/// source rejects it), an event of a type the filter refuses, a duplicate (the
/// dedupe's second output), an order (the route's named output) and the poison
/// event (chaos crashes twice on it: restarts, errors, a `poison` reject).
pub fn special_lines() -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let event = |id: &str, kind: &str, name: &str| {
        format!(
            "{{\"messageId\":\"{id}\",\"type\":\"{kind}\",\"event\":\"{name}\",\
             \"anonymousId\":\"a-1\",\"timestamp\":\"{now}\"}}\n"
        )
    };
    let mut text = String::from("this line is not JSON\n");
    text.push_str(&event("m-bogus", "bogus", "Tick"));
    text.push_str(&event("m-dup", "track", "Tick"));
    text.push_str(&event("m-dup", "track", "Tick"));
    text.push_str(&event("m-order", "track", "Order Completed"));
    text.push_str(&event(POISON, "track", "Tick"));
    text
}

/// Appends numbered events to a file every `every` until dropped, so a
/// `follow` source keeps reading and rates stay above zero.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    /// `per_tick` events per append, numbered from `from` on.
    pub fn start(path: PathBuf, from: u64, per_tick: u64, every: Duration) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next = from;
            while !stopping.load(Ordering::Relaxed) {
                let mut file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&path)
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                file.write_all(live_events(next, per_tick).as_bytes())
                    .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
                next += per_tick;
                std::thread::sleep(every);
            }
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic in the feeder already failed the test through its message.
            let _ = thread.join();
        }
    }
}

/// `n` track events numbered from `from`, stamped now, spread over 20
/// anonymous machines: valid for every transform, and live enough for a
/// sessionizer's watermark.
pub fn live_events(from: u64, n: u64) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut text = String::with_capacity(n as usize * 128);
    for i in from..from + n {
        text.push_str(&format!(
            "{{\"n\":{i},\"messageId\":\"f-{i}\",\"type\":\"track\",\"event\":\"Tick\",\
             \"anonymousId\":\"a-{}\",\"timestamp\":\"{now}\"}}\n",
            i % 20
        ));
    }
    text
}

/// One sample of the text format.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The sample's own name (`x_bucket` for a histogram `x`).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A metric family: its `# TYPE` and its samples.
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub kind: String,
    pub samples: Vec<Sample>,
}

impl Family {
    /// The label names of each series, without the histogram's `le`.
    pub fn label_sets(&self) -> BTreeSet<BTreeSet<String>> {
        self.samples
            .iter()
            .map(|s| s.labels.keys().filter(|k| *k != "le").cloned().collect())
            .collect()
    }

    /// Samples (of the family itself, or `_count` for a histogram) whose labels
    /// include every `(name, value)` of `wanted`.
    pub fn matching<'a>(&'a self, wanted: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            (self.kind != "histogram" || s.name.ends_with("_count"))
                && wanted
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

/// Parses the Prometheus text exposition format into families by name.
pub fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("a TYPE line without a type: {line}"));
            families.entry(name.to_owned()).or_default().kind = kind.to_owned();
            current = Some(name.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line);
        let family = current
            .as_ref()
            .filter(|f| sample.name.starts_with(f.as_str()))
            .unwrap_or_else(|| panic!("sample before its TYPE line: {line}"));
        families
            .get_mut(family)
            .expect("the family was created by its TYPE line")
            .samples
            .push(sample);
    }
    families
}

fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => panic!("a sample without a value: {line}"),
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest;
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("unterminated labels: {line}"));
            match c {
                '}' => break i,
                ',' => continue,
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars
                            .next()
                            .unwrap_or_else(|| panic!("unterminated label value: {line}"));
                        match c {
                            '"' => break,
                            '\\' => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(c) => value.push(c),
                                None => panic!("dangling escape: {line}"),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        };
        rest = &body[end + 1..];
    }
    let value = rest
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|e| panic!("sample value {v:?} is not a number ({e}): {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}
