//! The redis and http sinks at full speed: `cargo bench --bench sinks`.
//!
//! * **redis counter**: 1,000,000 `sluice gen` events (parsed beforehand, so
//!   the figure is the sink's own) fed in engine-sized batches of 128 to a
//!   `counter` sink (`{type}:{event}:{properties.sku}`) and a `hash_counter`
//!   sink (`counts:{userId}` / `{event}`), each flushing every second, against
//!   a `redis-server` started on a free loopback port; prints events/s and the
//!   Redis commands issued (INFO commandstats, reset first). Target ≥ 1,000,000
//!   events/s.
//! * **http ndjson**: the same events through an `http` sink with
//!   `encoding = "ndjson"`, `max_events = 1000`, `concurrency = 16`, fed 8,192
//!   events per write, against a local keep-alive HTTP/1.1 receiver (a thread
//!   per connection answering 200); prints events/s.
//!
//! `SLUICE_BENCH_EVENTS` changes the event count. Needs `redis-server` on
//! PATH (scripts/test.sh installs it); the redis part is skipped without it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice::ack::Ack;
use sluice::component::{BuildContext, Sink, StateStore};
use sluice::config::{from_table, EngineConfig};
use sluice::event::Event;
use sluice::gen::{generate, GenOptions};
use sluice::sinks::http::HttpSinkConfig;
use sluice::sinks::redis::RedisSinkConfig;

/// The allocator `sluice run` uses, so events are laid out as in the service.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let n: u64 = std::env::var("SLUICE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let events = events(n);
    println!("{} events parsed", events.len());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match RedisServer::start() {
        Some(redis) => runtime.block_on(bench_redis(&events, &redis)),
        None => println!("redis: skipped (redis-server is not installed)"),
    }
    runtime.block_on(bench_http(&events));
}

fn events(n: u64) -> Vec<Event> {
    let mut bytes = Vec::new();
    let opts = GenOptions {
        events: n,
        machines: 10_000,
        ..GenOptions::default()
    };
    generate(&opts, &mut bytes).expect("generate events");
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| Event::from_json(std::str::from_utf8(line).ok()?).ok())
        .collect()
}

fn build<C: serde::de::DeserializeOwned>(toml_text: &str) -> C {
    from_table(toml::from_str(toml_text).expect("bench TOML")).expect("bench config")
}

async fn bench_redis(events: &[Event], redis: &RedisServer) {
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let mut conn = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connect to the bench redis");
    for (name, extra) in [
        (
            "counter",
            "mode = \"counter\"\nkey = \"{type}:{event}:{properties.sku}\"\n",
        ),
        (
            "hash_counter",
            "mode = \"hash_counter\"\nkey = \"counts:{userId}\"\nfield = \"{event}\"\n",
        ),
    ] {
        let _: () = redis::cmd("FLUSHALL").query(&mut conn).expect("FLUSHALL");
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut conn)
            .expect("RESETSTAT");
        let config: RedisSinkConfig = build(&format!("url = \"{url}\"\n{extra}"));
        let state = StateStore::default();
        let engine = EngineConfig::default();
        let cx = BuildContext {
            id: name,
            engine: &engine,
            state: &state,
            shard: None,
        };
        let mut sink = config.build_sink(&cx).expect("build the redis sink");
        let started = Instant::now();
        let mut last_tick = Instant::now();
        for batch in events.chunks(128) {
            sink.write(batch).await.expect("write");
            sink.hold_ack(Ack::none());
            if last_tick.elapsed() >= Duration::from_secs(1) {
                sink.tick().await;
                last_tick = Instant::now();
            }
        }
        sink.flush().await.expect("final flush");
        let elapsed = started.elapsed();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut conn)
            .expect("INFO");
        let commands: u64 = info
            .lines()
            .filter(|l| {
                l.starts_with("cmdstat_")
                    && !l.starts_with("cmdstat_info")
                    && !l.starts_with("cmdstat_config")
            })
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        let keys: u64 = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
        println!(
            "redis {name}: {} events in {:.3}s = {:.0} events/s; {} redis commands ({} flushes, {} keys), {:.0} events per command",
            events.len(),
            elapsed.as_secs_f64(),
            events.len() as f64 / elapsed.as_secs_f64(),
            commands,
            sink.stats().flushes,
            keys,
            events.len() as f64 / commands.max(1) as f64,
        );
    }
}

async fn bench_http(events: &[Event]) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                // A client closing its connection ends the thread.
                let _ = serve(stream);
            });
        }
    });
    let config: HttpSinkConfig = build(&format!(
        "uri = \"http://127.0.0.1:{port}/in\"\nencoding = \"ndjson\"\nmax_events = 1000\nconcurrency = 16\n"
    ));
    let state = StateStore::default();
    let engine = EngineConfig::default();
    let cx = BuildContext {
        id: "http",
        engine: &engine,
        state: &state,
        shard: None,
    };
    let mut sink = config.build(&cx).expect("build the http sink");
    let started = Instant::now();
    for batch in events.chunks(8192) {
        sink.write(batch).await.expect("write");
        assert!(
            sink.take_rejected().is_empty(),
            "the receiver refused events"
        );
    }
    let elapsed = started.elapsed();
    println!(
        "http ndjson: {} events in {:.3}s = {:.0} events/s",
        events.len(),
        elapsed.as_secs_f64(),
        events.len() as f64 / elapsed.as_secs_f64()
    );
}

/// Answers 200 to every request on a keep-alive connection.
fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
    }
}

/// A redis-server on a free port, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(RedisServer { child, port })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Already gone or not, it must not outlive the benchmark.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
