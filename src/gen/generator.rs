//! The simulation: the seeded random numbers, the devices and the global
//! clock that decides which device sends what, when, and with which flaw.

use super::*;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub(super) fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A deliberate defect in an otherwise well-formed event.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Flaw {
    None,
    NoMessageId,
    BadTimestamp,
    NoEventName,
}

/// A device's attributes, derived from the seed and its number.
pub(super) struct Machine {
    pub(super) index: u64,
    pub(super) has_user: bool,
    pub(super) anonymous_id: (u64, u64),
    pub(super) platform: &'static Platform,
    pub(super) os_version: &'static str,
    pub(super) model: &'static str,
    pub(super) app: (&'static str, &'static str, &'static str),
    pub(super) library_version: &'static str,
    pub(super) locale: (&'static str, &'static str, &'static str),
    pub(super) ip: [u8; 4],
    pub(super) plan: &'static str,
    /// First timestamp, in ms after the start.
    pub(super) clock_offset_ms: i64,
}

impl Machine {
    pub(super) fn derive(seed: u64, index: u64) -> Machine {
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

pub(super) struct Generator {
    pub(super) rng: SplitMix64,
    pub(super) seed: u64,
    pub(super) machines: u64,
    pub(super) start_ms: i64,
    /// The global clock, in ms after `start_ms`.
    pub(super) now_ms: i64,
    /// When each machine may send again, in ms after `start_ms`; `-1` before
    /// its first event.
    pub(super) clocks: Vec<i64>,
    /// Events so far: the unique part of every `messageId`.
    pub(super) serial: u64,
    /// The line being built.
    pub(super) line: Vec<u8>,
    pub(super) recent: Vec<Vec<u8>>,
    pub(super) next_recent: usize,
}

impl Generator {
    pub(super) fn new(opts: &GenOptions) -> Self {
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
    pub(super) fn pick_machine(&mut self) -> u64 {
        if self.rng.unit() < 0.5 {
            self.rng.below((self.machines / 10).max(1))
        } else {
            self.rng.below(self.machines)
        }
    }

    /// A machine that is awake now, moving the clock on to the earliest
    /// wake-up among a few candidates when all of them are quiet.
    pub(super) fn awake_machine(&mut self) -> Machine {
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
    pub(super) fn tick(&mut self, machine: &Machine) -> i64 {
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
    pub(super) fn event(&mut self, flaw: Flaw) -> io::Result<()> {
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
    pub(super) fn invalid_line(&mut self) -> io::Result<()> {
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
    pub(super) fn remember_line(&mut self) {
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
