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

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A deliberate defect in an otherwise well-formed event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    NoMessageId,
    BadTimestamp,
    NoEventName,
}

struct Platform {
    os: &'static str,
    os_versions: &'static [&'static str],
    manufacturer: &'static str,
    models: &'static [&'static str],
    user_agent: &'static str,
}

const PLATFORMS: &[Platform] = &[
    Platform {
        os: "iOS",
        os_versions: &["16.7.5", "17.2.1", "17.3.1"],
        manufacturer: "Apple",
        models: &["iPhone14,2", "iPhone15,3", "iPad13,1"],
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    },
    Platform {
        os: "Android",
        os_versions: &["13", "14"],
        manufacturer: "Google",
        models: &["Pixel 7", "Pixel 8 Pro", "Pixel 6a"],
        user_agent: "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.143 Mobile Safari/537.36",
    },
    Platform {
        os: "Mac OS X",
        os_versions: &["13.6.4", "14.3.1"],
        manufacturer: "Apple",
        models: &["MacBookPro18,1", "Mac14,2"],
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    },
    Platform {
        os: "Windows",
        os_versions: &["10", "11"],
        manufacturer: "Dell Inc.",
        models: &["XPS 13 9310", "Latitude 5420"],
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    },
];

/// `(name, version, build)`.
const APPS: &[(&str, &str, &str)] = &[
    ("Acme Shop", "4.2.0", "4200"),
    ("Acme Shop", "4.2.1", "4213"),
    ("Acme Shop", "4.3.0", "4301"),
    ("Acme Docs", "2.0.3", "2003"),
];

const LIBRARY_VERSIONS: &[&str] = &["2.2.3", "2.3.0", "2.3.2"];

/// `(locale, timezone, currency)`.
const LOCALES: &[(&str, &str, &str)] = &[
    ("en-US", "America/New_York", "USD"),
    ("en-US", "America/Los_Angeles", "USD"),
    ("en-GB", "Europe/London", "GBP"),
    ("de-DE", "Europe/Berlin", "EUR"),
    ("fr-FR", "Europe/Paris", "EUR"),
    ("es-ES", "Europe/Madrid", "EUR"),
    ("ja-JP", "Asia/Tokyo", "JPY"),
    ("pt-BR", "America/Sao_Paulo", "BRL"),
];

/// Track event names, repeated to weight them.
const TRACK_EVENTS: &[&str] = &[
    "Product Viewed",
    "Product Viewed",
    "Product Viewed",
    "Product Clicked",
    "Product Clicked",
    "Product Added",
    "Order Completed",
    "Checkout Started",
    "Application Opened",
    "Document Opened",
    "Debug Ping",
    "Page Viewed",
    "Signed In",
];

struct Page {
    name: &'static str,
    path: &'static str,
    title: &'static str,
    /// The path is followed by a product id.
    with_product: bool,
}

const fn page(name: &'static str, path: &'static str, title: &'static str) -> Page {
    Page {
        name,
        path,
        title,
        with_product: false,
    }
}

const PRODUCT_PAGE: Page = Page {
    name: "Product",
    path: "/products/",
    title: "Product details - Acme",
    with_product: true,
};

/// Pages, repeated to weight them.
const PAGES: &[Page] = &[
    page("Home", "/", "Acme - Everything for your desk"),
    page("Products", "/products", "All products - Acme"),
    PRODUCT_PAGE,
    PRODUCT_PAGE,
    page("Cart", "/cart", "Your cart - Acme"),
    page("Checkout", "/checkout", "Checkout - Acme"),
    page(
        "Docs",
        "/docs/getting-started",
        "Getting started - Acme Docs",
    ),
    page("Pricing", "/pricing", "Pricing - Acme"),
];

const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://news.ycombinator.com/",
    "https://shop.acme.example/",
    "https://t.co/",
];

const PLANS: &[&str] = &["free", "free", "pro", "team", "enterprise"];

/// A device's attributes, derived from the seed and its number.
struct Machine {
    index: u64,
    has_user: bool,
    anonymous_id: (u64, u64),
    platform: &'static Platform,
    os_version: &'static str,
    model: &'static str,
    app: (&'static str, &'static str, &'static str),
    library_version: &'static str,
    locale: (&'static str, &'static str, &'static str),
    ip: [u8; 4],
    plan: &'static str,
    /// First timestamp, in ms after the start.
    clock_offset_ms: i64,
}

impl Machine {
    fn derive(seed: u64, index: u64) -> Machine {
        let mut rng = SplitMix64(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let platform = rng.pick_ref(PLATFORMS);
        let octets = rng.next().to_le_bytes();
        Machine {
            index,
            has_user: rng.unit() < 0.6,
            anonymous_id: (rng.next(), rng.next()),
            platform,
            os_version: rng.pick(platform.os_versions),
            model: rng.pick(platform.models),
            app: rng.pick(APPS),
            library_version: rng.pick(LIBRARY_VERSIONS),
            locale: rng.pick(LOCALES),
            ip: [
                11 + octets[0] % 212,
                octets[1],
                octets[2],
                1 + octets[3] % 254,
            ],
            plan: rng.pick(PLANS),
            clock_offset_ms: rng.below(3_600_000) as i64,
        }
    }
}

struct Generator {
    rng: SplitMix64,
    seed: u64,
    machines: u64,
    start_ms: i64,
    /// The global clock, in ms after `start_ms`.
    now_ms: i64,
    /// When each machine may send again, in ms after `start_ms`; `-1` before
    /// its first event.
    clocks: Vec<i64>,
    /// Events so far: the unique part of every `messageId`.
    serial: u64,
    /// The line being built.
    line: Vec<u8>,
    recent: Vec<Vec<u8>>,
    next_recent: usize,
}

impl Generator {
    fn new(opts: &GenOptions) -> Self {
        Generator {
            rng: SplitMix64(opts.seed),
            seed: opts.seed,
            machines: opts.machines,
            start_ms: opts.start.timestamp_millis(),
            now_ms: 0,
            clocks: vec![-1; opts.machines as usize],
            serial: 0,
            line: Vec::with_capacity(1024),
            recent: Vec::with_capacity(RECENT_LINES),
            next_recent: 0,
        }
    }

    /// A machine number; the first tenth of the machines send half the events.
    fn pick_machine(&mut self) -> u64 {
        if self.rng.unit() < 0.5 {
            self.rng.below((self.machines / 10).max(1))
        } else {
            self.rng.below(self.machines)
        }
    }

    /// A machine that is awake now, moving the clock on to the earliest
    /// wake-up among a few candidates when all of them are quiet.
    fn awake_machine(&mut self) -> Machine {
        self.now_ms += self.rng.below(200) as i64;
        let mut earliest: Option<(i64, Machine)> = None;
        for _ in 0..8 {
            let machine = Machine::derive(self.seed, self.pick_machine());
            let clock = &mut self.clocks[machine.index as usize];
            if *clock < 0 {
                *clock = machine.clock_offset_ms;
            }
            let wakes = *clock;
            if wakes <= self.now_ms {
                return machine;
            }
            if earliest.as_ref().is_none_or(|(t, _)| wakes < *t) {
                earliest = Some((wakes, machine));
            }
        }
        // Eight tries always fill `earliest`.
        let (wakes, machine) = earliest.expect("eight candidates were tried");
        self.now_ms = wakes;
        machine
    }

    /// The time of `machine`'s event now, and when it may send again.
    fn tick(&mut self, machine: &Machine) -> i64 {
        let roll = self.rng.unit();
        let gap_ms = if roll < 0.85 {
            500 + self.rng.below(60_000) // within a burst of activity
        } else if roll < 0.96 {
            60_000 + self.rng.below(240_000) // a pause: one to five minutes
        } else {
            31 * 60_000 + self.rng.below(6 * 3_600_000) // gone: a new session
        };
        self.clocks[machine.index as usize] = self.now_ms + gap_ms as i64;
        let behind = if self.rng.below(1000) == 0 {
            5 * 60_000 + self.rng.below(10 * 60_000) // sent after being offline
        } else {
            self.rng.below(20_000)
        };
        self.start_ms + (self.now_ms - behind as i64).max(0)
    }

    /// Builds one event into `self.line`.
    fn event(&mut self, flaw: Flaw) -> io::Result<()> {
        let machine = self.awake_machine();
        let timestamp = self.tick(&machine);
        let kind = match (flaw, self.rng.below(10)) {
            (Flaw::NoEventName, _) | (_, 0..=6) => "track",
            (_, 7..=8) => "page",
            _ => "identify",
        };
        self.serial += 1;
        // Multiplying by an odd number permutes the 48-bit serials, so ids stay
        // unique without looking sequential.
        let unique = self.serial.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF;
        let message_id = (self.rng.next(), (self.rng.next() << 48) | unique);

        let line = &mut self.line;
        line.clear();
        line.push(b'{');
        if flaw != Flaw::NoMessageId {
            push(line, "\"messageId\":\"");
            push_uuid(line, message_id);
            push(line, "\",");
        }
        push(line, "\"type\":\"");
        push(line, kind);
        push(line, "\",");
        if kind == "track" && flaw != Flaw::NoEventName {
            push(line, "\"event\":\"");
            push(line, self.rng.pick(TRACK_EVENTS));
            push(line, "\",");
        }
        let page = self.rng.pick_ref(PAGES);
        if kind == "page" {
            push(line, "\"name\":\"");
            push(line, page.name);
            push(line, "\",");
        }
        if machine.has_user {
            push(line, "\"userId\":\"u-");
            push_decimal(line, machine.index, 6);
            push(line, "\",");
        }
        push(line, "\"anonymousId\":\"");
        push_uuid(line, machine.anonymous_id);
        push(line, "\",");
        push_context(line, &machine);
        let product = self.rng.below(500);
        match kind {
            "track" => {
                let cents = 199 + (product * 7919) % 20_000;
                push(line, ",\"properties\":{\"sku\":\"SKU-");
                push_decimal(line, product, 5);
                push(line, "\",\"product_id\":\"p-");
                push_decimal(line, product, 5);
                push(line, "\",\"price\":");
                push_decimal(line, cents / 100, 1);
                line.push(b'.');
                push_decimal(line, cents % 100, 2);
                push(line, ",\"quantity\":");
                push_decimal(line, 1 + self.rng.below(4), 1);
                push(line, ",\"currency\":\"");
                push(line, machine.locale.2);
                push(line, "\"}");
            }
            "page" => {
                let product = page.with_product.then_some(product);
                push(line, ",\"properties\":{\"path\":\"");
                push_page_path(line, page.path, product);
                push(line, "\",\"url\":\"https://shop.acme.example");
                push_page_path(line, page.path, product);
                push(line, "\",\"title\":\"");
                push(line, page.title);
                push(line, "\",\"referrer\":\"");
                push(line, self.rng.pick(REFERRERS));
                push(line, "\"}");
            }
            _ => {
                push(line, ",\"traits\":{");
                if machine.has_user {
                    push(line, "\"email\":\"u-");
                    push_decimal(line, machine.index, 6);
                    push(line, "@mail.example\",");
                }
                push(line, "\"plan\":\"");
                push(line, machine.plan);
                push(line, "\"}");
            }
        }
        push(line, ",\"timestamp\":\"");
        if flaw == Flaw::BadTimestamp {
            push(line, "2024-02-30T10:00:00Z");
        } else {
            push_time(line, timestamp)?;
        }
        push(line, "\",\"sentAt\":\"");
        push_time(line, timestamp + 20 + self.rng.below(3_000) as i64)?;
        push(line, "\"}");
        Ok(())
    }

    /// Builds one deliberately broken line into `self.line`.
    fn invalid_line(&mut self) -> io::Result<()> {
        match self.rng.below(5) {
            0 => {
                self.event(Flaw::None)?;
                let keep =
                    self.line.len() / 4 + self.rng.below(self.line.len() as u64 / 2) as usize;
                self.line.truncate(keep);
            }
            1 => {
                self.event(Flaw::None)?;
                self.line.insert(0, b'[');
                self.line.push(b']');
            }
            2 => self.event(Flaw::NoMessageId)?,
            3 => self.event(Flaw::BadTimestamp)?,
            _ => self.event(Flaw::NoEventName)?,
        }
        Ok(())
    }

    /// Keeps `self.line` among the recent lines duplicates are drawn from.
    fn remember_line(&mut self) {
        if self.recent.len() < RECENT_LINES {
            self.recent.push(self.line.clone());
        } else {
            let slot = &mut self.recent[self.next_recent];
            slot.clear();
            slot.extend_from_slice(&self.line);
            self.next_recent = (self.next_recent + 1) % RECENT_LINES;
        }
    }
}

fn push_context(line: &mut Vec<u8>, machine: &Machine) {
    let platform = machine.platform;
    let (app, version, build) = machine.app;
    let (locale, timezone, _) = machine.locale;
    push(line, "\"context\":{\"device\":{\"id\":\"m-");
    push_decimal(line, machine.index, 6);
    push(line, "\",\"manufacturer\":\"");
    push(line, platform.manufacturer);
    push(line, "\",\"model\":\"");
    push(line, machine.model);
    push(line, "\"},\"app\":{\"name\":\"");
    push(line, app);
    push(line, "\",\"version\":\"");
    push(line, version);
    push(line, "\",\"build\":\"");
    push(line, build);
    push(
        line,
        "\"},\"library\":{\"name\":\"analytics-python\",\"version\":\"",
    );
    push(line, machine.library_version);
    push(line, "\"},\"ip\":\"");
    for (i, octet) in machine.ip.into_iter().enumerate() {
        if i > 0 {
            line.push(b'.');
        }
        push_decimal(line, u64::from(octet), 1);
    }
    push(line, "\",\"locale\":\"");
    push(line, locale);
    push(line, "\",\"timezone\":\"");
    push(line, timezone);
    push(line, "\",\"os\":{\"name\":\"");
    push(line, platform.os);
    push(line, "\",\"version\":\"");
    push(line, machine.os_version);
    push(line, "\"},\"userAgent\":\"");
    push(line, platform.user_agent);
    push(line, "\"}");
}

// The helpers below write JSON by hand: `write!` spent more time in the
// formatting machinery than in building the event. Every string they are given
// comes from this file and needs no JSON escaping.

fn push(line: &mut Vec<u8>, text: &str) {
    line.extend_from_slice(text.as_bytes());
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_decimal(line: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while n > 0 || digits.len() - at < width.max(1) {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    line.extend_from_slice(&digits[at..]);
}

/// The low `width` hex digits of `n`.
fn push_hex(line: &mut Vec<u8>, n: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..width).rev() {
        line.push(HEX[((n >> (i * 4)) & 0xF) as usize]);
    }
}

/// `path`, followed by the product's id on a product page.
fn push_page_path(line: &mut Vec<u8>, path: &str, product: Option<u64>) {
    push(line, path);
    if let Some(id) = product {
        push(line, "p-");
        push_decimal(line, id, 5);
    }
}

/// A UUID-shaped (version 4 layout) rendering of 128 bits.
fn push_uuid(line: &mut Vec<u8>, (hi, lo): (u64, u64)) {
    push_hex(line, hi >> 32, 8);
    line.push(b'-');
    push_hex(line, hi >> 16, 4);
    push(line, "-4");
    push_hex(line, hi, 3);
    line.push(b'-');
    push_hex(line, ((lo >> 48) & 0x3FFF) | 0x8000, 4);
    line.push(b'-');
    push_hex(line, lo, 12);
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-03-01T00:00:01.250Z`.
fn push_time(line: &mut Vec<u8>, ms: i64) -> io::Result<()> {
    let Some(time) = DateTime::from_timestamp_millis(ms) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("timestamp {ms} ms after 1970 is out of range; choose an earlier start"),
        ));
    };
    let year = u64::try_from(time.year()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("timestamp {ms} ms after 1970 is before year 0; choose a later start"),
        )
    })?;
    push_decimal(line, year, 4);
    line.push(b'-');
    push_decimal(line, u64::from(time.month()), 2);
    line.push(b'-');
    push_decimal(line, u64::from(time.day()), 2);
    line.push(b'T');
    push_decimal(line, u64::from(time.hour()), 2);
    line.push(b':');
    push_decimal(line, u64::from(time.minute()), 2);
    line.push(b':');
    push_decimal(line, u64::from(time.second()), 2);
    line.push(b'.');
    push_decimal(line, u64::from(time.timestamp_subsec_millis()), 3);
    line.push(b'Z');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    fn run(opts: &GenOptions) -> (Vec<u8>, GenSummary) {
        let mut out = Vec::new();
        let summary = generate(opts, &mut out).unwrap();
        (out, summary)
    }

    fn opts(events: u64, seed: u64) -> GenOptions {
        GenOptions {
            events,
            machines: 50,
            seed,
            ..GenOptions::default()
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, _) = run(&opts(5_000, 7));
        let (b, _) = run(&opts(5_000, 7));
        let (c, _) = run(&opts(5_000, 8));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn summary_adds_up() {
        let (out, summary) = run(&GenOptions {
            invalid_ratio: 0.05,
            duplicate_ratio: 0.05,
            ..opts(20_000, 3)
        });
        let lines = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        assert_eq!(summary.lines, 20_000);
        assert_eq!(lines, summary.lines);
        assert_eq!(
            summary.valid + summary.invalid + summary.duplicates,
            summary.lines
        );
        assert!(
            summary.invalid > 800 && summary.duplicates > 800,
            "{summary:?}"
        );
        let not_objects = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter(|l| !matches!(serde_json::from_slice(l), Ok(Value::Object(_))))
            .count() as u64;
        // Truncated lines and arrays: two of the five kinds of invalid line.
        assert!(
            not_objects > 0 && not_objects < summary.invalid,
            "{not_objects}"
        );
    }

    #[test]
    fn valid_lines_are_segment_events() {
        let (out, summary) = run(&GenOptions {
            invalid_ratio: 0.0,
            duplicate_ratio: 0.0,
            ..opts(5_000, 11)
        });
        assert_eq!(summary.valid, 5_000);
        let mut ids = HashSet::new();
        let mut kinds: HashMap<String, u64> = HashMap::new();
        let mut times_by_machine: HashMap<String, Vec<i64>> = HashMap::new();
        let mut bytes = 0;
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            bytes += line.len();
            let event: Value = serde_json::from_slice(line).unwrap();
            assert!(
                ids.insert(event["messageId"].as_str().unwrap().to_owned()),
                "unique ids"
            );
            let kind = event["type"].as_str().unwrap();
            *kinds.entry(kind.to_owned()).or_default() += 1;
            match kind {
                "track" => {
                    assert!(event["event"].is_string() && event["properties"]["sku"].is_string())
                }
                "page" => {
                    assert!(event["name"].is_string() && event["properties"]["url"].is_string())
                }
                _ => assert!(event["traits"]["plan"].is_string()),
            }
            assert!(event["anonymousId"].is_string());
            assert_eq!(event["context"]["library"]["name"], "analytics-python");
            let time = DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).unwrap();
            assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
            let sent = DateTime::parse_from_rfc3339(event["sentAt"].as_str().unwrap()).unwrap();
            assert!(sent > time);
            let machine = event["context"]["device"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            times_by_machine
                .entry(machine)
                .or_default()
                .push(time.timestamp_millis());
        }
        let average = bytes / 5_000;
        assert!(
            (600..=800).contains(&average),
            "average line is {average} bytes"
        );
        assert!(
            kinds["track"] > 3_000 && kinds["page"] > 700 && kinds["identify"] > 300,
            "{kinds:?}"
        );
        let gaps: Vec<i64> = times_by_machine
            .values_mut()
            .flat_map(|times| {
                times.sort_unstable();
                times.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
            })
            .collect();
        let sessions = gaps.iter().filter(|&&gap| gap > 30 * 60_000).count();
        assert!(
            sessions > 50 && sessions < gaps.len() / 4,
            "{sessions} session breaks"
        );
    }

    #[test]
    fn users_are_stable_per_machine() {
        let (out, _) = run(&opts(3_000, 5));
        let mut user_by_machine: HashMap<String, Option<String>> = HashMap::new();
        for line in out.split(|&b| b == b'\n') {
            let Ok(Value::Object(event)) = serde_json::from_slice(line) else {
                continue;
            };
            let machine = event["context"]["device"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let user = event
                .get("userId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            assert_eq!(
                user_by_machine
                    .entry(machine)
                    .or_insert_with(|| user.clone()),
                &user
            );
        }
        let with_user = user_by_machine.values().filter(|u| u.is_some()).count();
        assert!(
            with_user > 15 && with_user < 45,
            "{with_user} of 50 machines have a user"
        );
    }

    #[test]
    fn hand_formatting_matches_std() {
        let mut line = Vec::new();
        push_decimal(&mut line, 0, 1);
        push_decimal(&mut line, 42, 5);
        push_decimal(&mut line, u64::MAX, 2);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            format!("000042{}", u64::MAX)
        );
        let mut line = Vec::new();
        push_uuid(&mut line, (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "01234567-89ab-4def-bedc-ba9876543210"
        );
        for ms in [0, 1_709_251_200_000, 1_709_251_261_005, 4_102_444_799_999] {
            let mut line = Vec::new();
            push_time(&mut line, ms).unwrap();
            let want = DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(String::from_utf8(line).unwrap(), want);
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let mut sink = Vec::new();
        let err = generate(
            &GenOptions {
                machines: 0,
                ..GenOptions::default()
            },
            &mut sink,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "machines 0 is out of range: give 1 to 10000000"
        );
        let err = generate(
            &GenOptions {
                invalid_ratio: 0.7,
                duplicate_ratio: 0.7,
                ..GenOptions::default()
            },
            &mut sink,
        )
        .unwrap_err();
        assert!(err.to_string().contains("add up to more than 1"));
    }
}
