//! HTTP ingest throughput: a Rust load client posting `/v1/batch` requests of
//! 100 events over loopback to `segment_http → blackhole`.
//!
//! `cargo bench --bench segment_http` runs `sluice run` as a child process for
//! each acknowledgement mode (`SLUICE_BENCH_ACKS`, default `accepted,delivered`)
//! and drives it for `SLUICE_BENCH_SECONDS` (default 10, after a 1s warm-up)
//! with `SLUICE_BENCH_CONCURRENCY` requests in flight (default 16, each on its
//! own keep-alive connection). It prints events/s accepted (200s only), the
//! p50/p99 request latency, any non-200 answers, and the peak RSS of sluice
//! (`VmHWM`). Target: ≥ 150,000 events/s with `accepted`. The client runs on
//! one thread of the same machine, so it competes with sluice for the cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const KEY: &str = "bench-key";
const EVENTS_PER_REQUEST: usize = 100;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds: u64 = env_or("SLUICE_BENCH_SECONDS", 10);
    let concurrency: usize = env_or("SLUICE_BENCH_CONCURRENCY", 16);
    let modes = std::env::var("SLUICE_BENCH_ACKS").unwrap_or_else(|_| "accepted,delivered".into());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-segment-http");
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let bodies = Arc::new(bodies(64));
    println!(
        "POST /v1/batch, {EVENTS_PER_REQUEST} events ({:.1} KB) per request, {concurrency} in flight, {seconds}s per mode",
        bodies[0].len() as f64 / 1e3
    );
    for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let port = free_port();
        let topology = write_topology(&dir, port, mode);
        let mut sluice = start(&topology);
        wait_listening(port);
        let result = drive(port, concurrency, seconds, bodies.clone());
        let peak_kib = peak_rss_kib(sluice.id());
        stop(&mut sluice);
        let mut latencies = result.latencies;
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        println!(
            "acknowledgements = {mode:9}: {:>9.0} events/s accepted, latency p50 {:.2} ms, p99 {:.2} ms, peak RSS {:.1} MB, other answers {:?}",
            (result.ok * EVENTS_PER_REQUEST as u64) as f64 / result.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            peak_kib as f64 / 1024.0,
            result.other
        );
    }
}

/// `n` distinct batch bodies of realistic events, as the libraries send them.
fn bodies(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|b| {
            let batch: Vec<_> = (0..EVENTS_PER_REQUEST)
                .map(|i| {
                    json!({
                        "type": "track",
                        "event": "Product Viewed",
                        "messageId": format!("bench-{b}-{i}"),
                        "anonymousId": format!("anon-{}", (b * 31 + i) % 5000),
                        "timestamp": "2026-01-05T10:00:00.000Z",
                        "properties": {"sku": format!("sku-{i}"), "price": 19.99, "currency": "EUR"},
                        "context": {"library": {"name": "analytics-node", "version": "3.1.0"},
                                    "page": {"path": "/products", "url": "https://example.com/products"}},
                    })
                })
                .collect();
            serde_json::to_vec(&json!({"batch": batch, "sentAt": "2026-01-05T10:00:01.000Z"}))
                .expect("serializing a body")
        })
        .collect()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn write_topology(dir: &Path, port: u16, mode: &str) -> PathBuf {
    let text = format!(
        "[api]\nenabled = false\n\n[engine]\nshutdown_timeout = \"10s\"\n\n\
         [sources.segment]\ntype = \"segment_http\"\nlisten = \"127.0.0.1:{port}\"\n\
         write_keys = [\"{KEY}\"]\nacknowledgements = \"{mode}\"\n\n\
         [sinks.drop]\ntype = \"blackhole\"\ninputs = [\"segment\"]\n"
    );
    let path = dir.join(format!("{mode}.toml"));
    std::fs::write(&path, text).expect("writing the bench topology");
    path
}

fn start(topology: &Path) -> Child {
    Command::new(SLUICE)
        .args(["run", "-c"])
        .arg(topology)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("starting sluice run")
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sluice did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Peak resident set size of `pid` so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn stop(child: &mut Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) on our own, not yet reaped child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().expect("waiting for sluice");
    assert!(status.success(), "sluice exited with {status}");
}

struct Outcome {
    ok: u64,
    other: std::collections::BTreeMap<u16, u64>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// `concurrency` request loops for `seconds` after a one-second warm-up.
fn drive(port: u16, concurrency: usize, seconds: u64, bodies: Arc<Vec<Vec<u8>>>) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let url = format!("http://127.0.0.1:{port}/v1/batch");
        let auth = format!("Basic {}", base64_key());
        let warmup_end = Instant::now() + Duration::from_secs(1);
        let end = warmup_end + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..concurrency)
            .map(|task| {
                let (client, url, auth, bodies) =
                    (client.clone(), url.clone(), auth.clone(), bodies.clone());
                tokio::spawn(async move {
                    let mut ok = 0u64;
                    let mut other = std::collections::BTreeMap::new();
                    let mut latencies = Vec::new();
                    let mut n = task;
                    loop {
                        let started = Instant::now();
                        if started >= end {
                            break;
                        }
                        let body = bodies[n % bodies.len()].clone();
                        n += concurrency;
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("authorization", &auth)
                            .body(body)
                            .send()
                            .await;
                        let status = match response {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                // Read the answer so the connection is reused.
                                let _ = r.bytes().await;
                                status
                            }
                            Err(_) => 0,
                        };
                        if started < warmup_end {
                            continue;
                        }
                        latencies.push(started.elapsed());
                        if status == 200 {
                            ok += 1;
                        } else {
                            *other.entry(status).or_insert(0) += 1;
                        }
                    }
                    (ok, other, latencies)
                })
            })
            .collect();
        let mut outcome = Outcome {
            ok: 0,
            other: Default::default(),
            latencies: Vec::new(),
            elapsed: Duration::from_secs(seconds),
        };
        for task in tasks {
            let (ok, other, latencies) = task.await.expect("a load task panicked");
            outcome.ok += ok;
            for (status, n) in other {
                *outcome.other.entry(status).or_insert(0) += n;
            }
            outcome.latencies.extend(latencies);
        }
        outcome
    })
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:"))
}
