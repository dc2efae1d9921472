//! Deterministic synthetic Segment events, for demos and benchmarks (`sluice gen`).
//!
//! [`generate`] writes one JSON event per line: about 70% `track`, 20% `page`
//! and 10% `identify`, each 600–800 bytes with the fields a Segment library
//! sends (`messageId`, `type`, `userId`, `anonymousId`, `context`,
//! `properties` or `traits`, `timestamp`, `sentAt`). Events come from
//! `machines` simulated devices, a tenth of which send half the traffic. Time
//! is one global clock, so lines come roughly in time order as a collector
//! would see them; after each event a device goes quiet for a realistic gap —
//! mostly seconds, sometimes minutes, now and then more than 30 minutes, which
//! starts a new session — so sessionization has something to find. Timestamps
//! trail the clock by up to 20 s (mild disorder, within a 2-minute allowed
//! lateness), and about one event in a thousand arrives 5–15 minutes late, as
//! a phone that was offline would send it. Device attributes
//! (platform, app version, locale, `userId` for about 60% of them) are derived
//! from the seed and the device number, so they are stable without being stored.
//!
//! Some lines are deliberately wrong (`invalid_ratio`): truncated JSON, a JSON
//! array, an event without `messageId`, an impossible timestamp, or a `track`
//! without `event`. Some are verbatim repeats of a recent valid line
//! (`duplicate_ratio`), as a retrying client would send.
//!
//! Promise: the same options give byte-identical output. The generator uses its
//! own SplitMix64, not a library whose sequence could change between versions.
//! Memory is 8 bytes per machine (its clock) plus a small ring of recent lines.
//!
//! # Layout
//! * `mod.rs` — the options and [`generate`].
//! * `generator.rs` — random numbers, devices, the clock.
//! * `catalog.rs` — the vocabulary events are drawn from.
//! * `json.rs` — writing an event's JSON.
//! * `tests.rs` — unit tests.

mod catalog;
mod generator;
mod json;

#[cfg(test)]
mod tests;

use catalog::*;
use generator::*;
use json::*;

use std::io::{self, Write};

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

/// The most machines [`generate`] accepts: their clocks take 8 bytes each.
pub const MAX_MACHINES: u64 = 10_000_000;

/// Recent valid lines kept to draw duplicates from.
const RECENT_LINES: usize = 128;

/// Output is handed to the writer in chunks of about this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Lines to write.
    pub events: u64,
    /// Simulated devices sending them (1 to [`MAX_MACHINES`]).
    pub machines: u64,
    /// Seed of the generator: the same seed gives the same output.
    pub seed: u64,
    /// Share of lines that are deliberately invalid.
    pub invalid_ratio: f64,
    /// Share of lines that repeat an earlier valid line verbatim.
    pub duplicate_ratio: f64,
    /// When the machines' clocks start.
    pub start: DateTime<Utc>,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            events: 100_000,
            machines: 1_000,
            seed: 1,
            invalid_ratio: 0.002,
            duplicate_ratio: 0.005,
            // Fixed, so default output is the same on every run.
            start: Utc
                .with_ymd_and_hms(2024, 3, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }
}

/// What [`generate`] wrote. `lines == valid + invalid + duplicates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub lines: u64,
    /// Well-formed events, each with a unique `messageId`.
    pub valid: u64,
    /// Deliberately broken lines.
    pub invalid: u64,
    /// Verbatim repeats of earlier valid lines.
    pub duplicates: u64,
}

/// Writes `opts.events` lines of synthetic events to `out`, then flushes it.
pub fn generate(opts: &GenOptions, out: &mut impl Write) -> io::Result<GenSummary> {
    check(opts)?;
    let mut generator = Generator::new(opts);
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    let mut summary = GenSummary::default();
    for _ in 0..opts.events {
        let roll = generator.rng.unit();
        if roll < opts.invalid_ratio {
            generator.invalid_line()?;
            summary.invalid += 1;
        } else if roll < opts.invalid_ratio + opts.duplicate_ratio && !generator.recent.is_empty() {
            let pick = generator.rng.below(generator.recent.len() as u64) as usize;
            chunk.extend_from_slice(&generator.recent[pick]);
            chunk.push(b'\n');
            summary.duplicates += 1;
            summary.lines += 1;
            continue;
        } else {
            generator.event(Flaw::None)?;
            generator.remember_line();
            summary.valid += 1;
        }
        chunk.extend_from_slice(&generator.line);
        chunk.push(b'\n');
        summary.lines += 1;
        if chunk.len() >= CHUNK_BYTES {
            out.write_all(&chunk)?;
            chunk.clear();
        }
    }
    out.write_all(&chunk)?;
    out.flush()?;
    Ok(summary)
}

fn check(opts: &GenOptions) -> io::Result<()> {
    let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    if opts.machines == 0 || opts.machines > MAX_MACHINES {
        return invalid(format!(
            "machines {} is out of range: give 1 to {MAX_MACHINES}",
            opts.machines
        ));
    }
    for (name, ratio) in [
        ("invalid_ratio", opts.invalid_ratio),
        ("duplicate_ratio", opts.duplicate_ratio),
    ] {
        if !(0.0..=1.0).contains(&ratio) {
            return invalid(format!("{name} {ratio} is not between 0 and 1"));
        }
    }
    if opts.invalid_ratio + opts.duplicate_ratio > 1.0 {
        return invalid(format!(
            "invalid_ratio {} and duplicate_ratio {} add up to more than 1",
            opts.invalid_ratio, opts.duplicate_ratio
        ));
    }
    Ok(())
}
