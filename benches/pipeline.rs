//! Pipeline throughput and memory, against the practical ceiling.
//!
//! `cargo bench --bench pipeline` generates N events with `sluice gen` (default
//! 1,000,000; `SLUICE_BENCH_EVENTS` overrides), then for each scenario
//! (`SLUICE_BENCH_SCENARIOS`, default `core,sessionize`) alternately:
//!
//! * runs `sluice run` as a child process, timing it and reading its peak RSS
//!   from `wait4`: `core` is `file → filter → dedupe → enrich → blackhole`
//!   (engine-core target: ≥ 1.0× the ceiling, < 150 MB), `sessionize` is the
//!   full replay `file → filter → dedupe → enrich → sessionize → file`
//!   (sessionize target: ≥ 0.8× the ceiling);
//! * runs a bare single-threaded loop that parses each line into a
//!   `serde_json::Value` and serializes it back: the ceiling a one-thread
//!   Lambda-style consumer could reach.
//!
//! Machines are shared and noisy, so the figures that matter are the ratios of
//! runs taken side by side; each round prints both and the ratio. Target on a
//! 2-core machine: pipeline ≥ 1.0× the ceiling, peak RSS < 150 MB.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// The same allocator as the `sluice` binary, so the ceiling is not handicapped.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let events: u64 = std::env::var("SLUICE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("SLUICE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-pipeline");
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let input = dir.join(format!("events-{events}.ndjson"));
    generate(&input, events);
    let bytes = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    println!(
        "input: {events} lines, {:.1} MB, from `sluice gen --events {events} --machines 10000 --seed 7`",
        bytes as f64 / 1e6
    );
    let scenarios =
        std::env::var("SLUICE_BENCH_SCENARIOS").unwrap_or_else(|_| "core,sessionize".into());
    for scenario in scenarios
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let topology = write_topology(&dir, &input, scenario);
        println!("\nscenario {scenario}: {}", describe(scenario));
        run_rounds(&dir, &topology, &input, events, rounds);
    }
}

fn describe(scenario: &str) -> &'static str {
    match scenario {
        "core" => "file → filter → dedupe → enrich → blackhole (target ≥ 1.0× ceiling, < 150 MB)",
        "sessionize" => {
            "file → filter → dedupe → enrich → sessionize → file (target ≥ 0.8× ceiling)"
        }
        _ => "unknown scenario",
    }
}

fn run_rounds(dir: &Path, topology: &Path, input: &Path, events: u64, rounds: usize) {
    println!("round  pipeline ev/s  ceiling ev/s  ratio  pipeline peak RSS");
    let mut ratios = Vec::new();
    let mut rss = Vec::new();
    for round in 1..=rounds {
        // Output of the previous round would only fill the disk.
        let _ = std::fs::remove_dir_all(dir.join("out"));
        let (pipe_secs, peak_kb) = run_pipeline(topology);
        let ceil_secs = ceiling(input);
        let pipe_rate = events as f64 / pipe_secs;
        let ceil_rate = events as f64 / ceil_secs;
        let ratio = pipe_rate / ceil_rate;
        ratios.push(ratio);
        rss.push(peak_kb);
        println!(
            "{round:>5}  {pipe_rate:>13.0}  {ceil_rate:>12.0}  {ratio:>5.2}  {:>10.1} MB",
            peak_kb as f64 / 1024.0
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let worst_rss = rss.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    println!("median ratio pipeline/ceiling: {median:.2}; max peak RSS: {worst_rss:.1} MB");
    let _ = std::fs::remove_dir_all(dir.join("out"));
}

/// Generates the input afresh (a few seconds), so it always matches the
/// current `sluice gen`.
fn generate(path: &Path, events: u64) {
    let out = File::create(path).expect("creating the input file");
    let status = Command::new(SLUICE)
        .args([
            "gen",
            "--events",
            &events.to_string(),
            "--machines",
            "10000",
            "--seed",
            "7",
        ])
        .stdout(out)
        .status()
        .expect("running sluice gen");
    assert!(status.success(), "sluice gen failed");
}

fn write_topology(dir: &Path, input: &Path, scenario: &str) -> PathBuf {
    let path = dir.join(format!("bench-{scenario}.toml"));
    let tail = match scenario {
        "sessionize" => format!(
            r#"
[transforms.sessions]
type = "sessionize"
inputs = ["enriched"]
timeout = "30m"
open_events = ["Document Opened", "Application Opened"]
max_duration = "24h"
allowed_lateness = "2m"

[sinks.out]
type = "file"
inputs = ["sessions"]
path = "{out}/events/%Y-%m-%d.ndjson"

[sinks.summaries]
type = "file"
inputs = ["sessions.summaries"]
path = "{out}/sessions.ndjson"

[sinks.rejects]
type = "blackhole"
inputs = ["replay.rejected", "valid.rejected", "unique.duplicates", "unique.rejected", "enriched.rejected", "sessions.late", "sessions.rejected"]
"#,
            out = dir.join("out").display()
        ),
        _ => r#"
[sinks.out]
type = "blackhole"
inputs = ["enriched"]

[sinks.rejects]
type = "blackhole"
inputs = ["replay.rejected", "valid.rejected", "unique.duplicates", "unique.rejected", "enriched.rejected"]
"#
        .to_owned(),
    };
    let text = format!(
        r#"
[api]
enabled = false

[sources.replay]
type = "file"
path = "{input}"

[transforms.valid]
type = "filter"
inputs = ["replay"]
types = ["track", "page", "identify"]
require = ["messageId", "timestamp"]
require_any = [["context.device.id", "anonymousId"]]
require_by_type = {{ track = ["event"] }}
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
  {{ op = "timestamp_parts", from = "timestamp", date = "date", hour = "hour", unix = "timestamp_unix" }},
  {{ op = "rename", from = "properties.sku", to = "properties.item_id" }},
  {{ op = "set", path = "pipeline", value = "sluice" }},
]
{tail}"#,
        input = input.display()
    );
    std::fs::write(&path, text).expect("writing the bench topology");
    path
}

/// Runs the pipeline as a child; returns seconds and peak RSS in KiB.
// The child is reaped with `wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_pipeline(topology: &Path) -> (f64, i64) {
    let started = Instant::now();
    let child = Command::new(SLUICE)
        .args(["run", "-c"])
        .arg(topology)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("starting sluice run");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; the pointers are valid.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(reaped, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "sluice run failed with status {status}"
    );
    (secs, usage.ru_maxrss)
}

/// The ceiling: parse every line into a Value and serialize it back, one thread.
fn ceiling(input: &Path) -> f64 {
    let started = Instant::now();
    let reader = BufReader::with_capacity(256 * 1024, File::open(input).expect("opening input"));
    let mut sink = BufWriter::new(std::io::sink());
    let mut out = Vec::with_capacity(4096);
    let mut parsed = 0u64;
    for line in reader.split(b'\n') {
        let line = line.expect("reading input");
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) {
            out.clear();
            serde_json::to_writer(&mut out, &value).expect("serializing");
            sink.write_all(&out).expect("writing");
            parsed += 1;
        }
    }
    std::hint::black_box(parsed);
    started.elapsed().as_secs_f64()
}
