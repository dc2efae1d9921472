//! Memory per open session: `cargo bench --bench session_memory`.
//!
//! Opens N sessions at once (default 1,000,000; `SLUICE_BENCH_MACHINES`
//! overrides), one per machine, each machine with a 36-character device id and
//! a 36-character (UUID-shaped) userId, then lets the watermark pass every
//! event so nothing is buffered for lateness, and reports the bytes the session
//! state holds per open session — as requested from the allocator (a counting
//! wrapper around jemalloc) — next to the process's RSS growth.
//! Target: ≤ 256 bytes per session beyond the events buffered for lateness.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Instant;

use sluice::ack::Ack;
use sluice::event::Event;
use sluice::transforms::sessionize::{SessionSink, SessionState, SessionizeConfig};

/// jemalloc, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// SAFETY: every call forwards to jemalloc with the caller's arguments; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { JEMALLOC.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { JEMALLOC.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { JEMALLOC.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts what leaves; drops it at once.
#[derive(Default)]
struct Discard {
    events: u64,
    summaries: u64,
}

impl SessionSink for Discard {
    fn hold_ack(&self) -> Ack {
        Ack::none()
    }
    fn event(&mut self, _event: Event, _ack: Ack) {
        self.events += 1;
    }
    fn summary(&mut self, _summary: Event, _end_reason: &'static str) {
        self.summaries += 1;
    }
    fn opened(&mut self) {}
}

fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let machines: u64 = std::env::var("SLUICE_BENCH_MACHINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let config: SessionizeConfig = toml::from_str(
        r#"
timeout = "30m"
allowed_lateness = "2m"
max_open_sessions = 2_000_000
max_buffered_events = 2_000_000
"#,
    )
    .expect("bench sessionize config");
    let rules = config.rules(1).expect("bench rules");
    let mut state = SessionState::new(rules);
    let mut sink = Discard::default();
    let start_ms: i64 = 1_709_251_200_000; // 2024-03-01T00:00:00Z
    let now_ms = start_ms + 60_000;

    let base_live = LIVE.load(Relaxed);
    let base_rss = rss_kib();
    let started = Instant::now();
    for i in 0..machines {
        // One event per machine, all within one second of event time.
        let ms = start_ms + (i % 1000) as i64;
        let time = chrono::DateTime::from_timestamp_millis(ms)
            .expect("in range")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut event = Event::from_json(&format!(
            r#"{{"type":"track","event":"Product Viewed","messageId":"m-{i:012}","timestamp":"{time}","userId":"{i:08}-aaaa-4bbb-8ccc-dddddddddddd","context":{{"device":{{"id":"{i:08}-d000-4000-8000-000000000000"}}}}}}"#
        ))
        .expect("bench event");
        state.accept(&mut event, now_ms, &mut sink);
    }
    // Idle for longer than the lateness: every buffered event is released,
    // and no session is older than the 30-minute timeout, so all stay open.
    state.tick(now_ms, &mut sink);
    state.tick(now_ms + 5 * 60_000, &mut sink);
    let elapsed = started.elapsed();
    let live = LIVE.load(Relaxed) - base_live;
    let rss = rss_kib() - base_rss;
    let open = state.open_sessions() as i64;
    println!(
        "{machines} machines: {open} sessions open, {} events still buffered, {} events released, {} summaries, {:.1} s",
        state.buffered_events(),
        sink.events,
        sink.summaries,
        elapsed.as_secs_f64()
    );
    println!(
        "session state: {:.0} bytes per open session requested from the allocator (target ≤ 256); process RSS grew {:.0} bytes per session (including the released events' memory, which jemalloc keeps for reuse)",
        live as f64 / open.max(1) as f64,
        rss as f64 * 1024.0 / open.max(1) as f64
    );
    std::hint::black_box(&state);
}
