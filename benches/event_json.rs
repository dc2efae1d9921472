//! Events from text against serde_json trees, one thread.
//!
//! `cargo bench --bench event_json` generates `sluice gen` lines (default
//! 200,000; `SLUICE_BENCH_EVENTS` overrides) and, in rounds, times the life of
//! an event in a pipeline in batches of 1,000: decoding every line, writing
//! every event back as a line, and dropping the events — once as
//! `sluice::event::Event` (`Event::from_json`, kept as indexed text), once as
//! serde_json trees (`from_str::<Value>` / `to_writer`). Figures are
//! nanoseconds per event and the ratio serde_json / sluice taken in the same
//! round (the machine is shared; compare ratios, not absolute times).

use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use sluice::event::{json, Event};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

fn main() {
    let events: u64 = std::env::var("SLUICE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let output = Command::new(SLUICE)
        .args(["gen", "--events", &events.to_string(), "--seed", "7"])
        .output()
        .expect("running sluice gen");
    assert!(output.status.success(), "sluice gen failed");
    let text = String::from_utf8(output.stdout).expect("gen writes UTF-8");
    // gen's deliberately invalid lines are left out: both readers refuse them.
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| json::parse(line).is_ok_and(|v| v.is_object()))
        .collect();
    let n = lines.len() as f64;
    println!(
        "{} JSON object lines, {:.0} bytes each on average",
        lines.len(),
        text.len() as f64 / n
    );
    println!("round   parse ns/ev (serde_json, sluice, ratio)   write ns/ev (serde_json, sluice, ratio)   drop ns/ev (serde_json, sluice)");
    let mut out = Vec::with_capacity(4 << 20);
    let mut their_bytes = Vec::with_capacity(4 << 20);
    for round in 1..=5 {
        // [serde_json, sluice] × [parse, write, drop], in nanoseconds.
        let mut total = [[0u128; 3]; 2];
        // Batches of 1,000, so the events stay in cache as they do in a
        // pipeline, and each batch is parsed, written and dropped by both.
        for batch in lines.chunks(1000) {
            let times = time_batch(
                batch,
                |line| serde_json::from_str::<Value>(line).expect("valid"),
                |value, out| {
                    serde_json::to_writer(&mut *out, value).expect("in memory");
                    out.push(b'\n');
                },
                &mut their_bytes,
            );
            add(&mut total[0], times);
            let times = time_batch(
                batch,
                |line| Event::from_json(line).expect("valid"),
                |event, out| event.write_json_line(out),
                &mut out,
            );
            add(&mut total[1], times);
            if round == 1 {
                // The line keeps its key order, serde_json sorts: compare values.
                for (ours, theirs) in out
                    .split(|&b| b == b'\n')
                    .zip(their_bytes.split(|&b| b == b'\n'))
                {
                    let ours: Option<Value> = serde_json::from_slice(ours).ok();
                    assert_eq!(
                        ours,
                        serde_json::from_slice(theirs).ok(),
                        "the writers disagree"
                    );
                }
            }
        }
        let per = |ns: u128| ns as f64 / n;
        let [theirs, ours] = total;
        println!(
            "{round:>5}   {:>8.0} {:>8.0} {:>6.2}×                    {:>8.0} {:>8.0} {:>6.2}×                 {:>5.0} {:>5.0}",
            per(theirs[0]),
            per(ours[0]),
            per(theirs[0]) / per(ours[0]),
            per(theirs[1]),
            per(ours[1]),
            per(theirs[1]) / per(ours[1]),
            per(theirs[2]),
            per(ours[2]),
        );
    }
}

/// Parses every line of `batch`, writes every value into `out` (cleared
/// first), then drops them: nanoseconds for each step.
fn time_batch<T>(
    batch: &[&str],
    parse: impl Fn(&str) -> T,
    write: impl Fn(&T, &mut Vec<u8>),
    out: &mut Vec<u8>,
) -> [u128; 3] {
    let started = Instant::now();
    let values: Vec<T> = batch.iter().map(|line| parse(line)).collect();
    let parsed = started.elapsed().as_nanos();
    out.clear();
    let started = Instant::now();
    for value in &values {
        write(value, out);
    }
    let written = started.elapsed().as_nanos();
    let started = Instant::now();
    drop(values);
    [parsed, written, started.elapsed().as_nanos()]
}

fn add(total: &mut [u128; 3], times: [u128; 3]) {
    for (sum, time) in total.iter_mut().zip(times) {
        *sum += time;
    }
}
