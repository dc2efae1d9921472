//! [`Sessionize`], the [`Transform`] over a shared [`SessionState`].
//!
//! Thin by design: it locks the state (kept in the `StateStore`, so it outlives
//! this instance), hands it the event with the wall clock, turns the answer into
//! a [`Verdict`], and routes what the state produces to ports and telemetry.
//! The wall clock is the one the engine passes to [`Transform::tick`]; with no
//! ticks (`allowed_lateness = "0s"`) it is read every [`CLOCK_REFRESH`] events,
//! as it only bounds future timestamps there.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ack::Ack;
use crate::component::{EndCause, Outputs, Transform, Verdict};
use crate::event::Event;
use crate::telemetry::SessionTelemetry;

use super::state::{Arrival, SessionSink, SessionState, END_OF_INPUT, END_REASONS, SHUTDOWN};

const DEFAULT_PORT: usize = 0;
const SUMMARIES_PORT: usize = 1;
const LATE_PORT: usize = 2;

/// Without ticks, the wall clock is read once per this many events.
pub const CLOCK_REFRESH: u32 = 1024;

/// A running sessionizer (or one shard of it).
pub struct Sessionize {
    state: Arc<Mutex<SessionState>>,
    telemetry: SessionTelemetry,
    tick_interval: Option<Duration>,
    /// Unix ms of the last tick, or of the last clock read without ticks.
    wall_ms: i64,
    events_since_clock: u32,
}

impl Sessionize {
    /// A sessionizer of component `id` (shard `shard` of it, if sharded)
    /// over `state`.
    pub fn new(id: &str, shard: Option<usize>, state: Arc<Mutex<SessionState>>) -> Self {
        let lateness = {
            let guard = state.lock().unwrap_or_else(PoisonError::into_inner);
            guard.rules().lateness_ms
        };
        Sessionize {
            state,
            telemetry: SessionTelemetry::new(id, shard, &END_REASONS),
            tick_interval: tick_interval(lateness),
            wall_ms: unix_ms(SystemTime::now()),
            events_since_clock: 0,
        }
    }

    /// Sets the watermark-lag gauge: wall clock minus watermark.
    fn report_lag(&self, watermark: i64) {
        if watermark != i64::MIN {
            let lag_ms = self.wall_ms.saturating_sub(watermark);
            self.telemetry.watermark_lag(lag_ms as f64 / 1000.0);
        }
    }

    fn state(&self) -> MutexGuard<'_, SessionState> {
        // The state's methods check everything before they change anything an
        // event depends on, and a panic mid-way (a bug) leaves at worst one
        // session's counters off; carrying on beats losing every open session.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Half the allowed lateness, between 10 ms and 1 s; none without lateness
/// (nothing waits, and an idle advance would only mark in-order events late).
pub fn tick_interval(lateness_ms: i64) -> Option<Duration> {
    if lateness_ms <= 0 {
        return None;
    }
    let half = u64::try_from(lateness_ms / 2).unwrap_or(0);
    Some(Duration::from_millis(half.clamp(10, 1000)))
}

/// Unix milliseconds of `time` (negative before 1970).
pub fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl Transform for Sessionize {
    fn transform(&mut self, event: &mut Event, out: &mut Outputs) -> Verdict {
        let mut clock_read = false;
        if self.tick_interval.is_none() {
            self.events_since_clock += 1;
            if self.events_since_clock >= CLOCK_REFRESH {
                self.events_since_clock = 0;
                self.wall_ms = unix_ms(SystemTime::now());
                clock_read = true;
            }
        }
        let wall_ms = self.wall_ms;
        let mut emitter = Emitter::new(out);
        let (arrival, watermark) = {
            let mut state = self.state();
            let arrival = state.accept(event, wall_ms, &mut emitter);
            (arrival, state.watermark_ms())
        };
        emitter.report(&mut self.telemetry);
        if clock_read {
            // Without ticks, the lag is reported whenever the clock is read.
            self.report_lag(watermark);
        }
        match arrival {
            Arrival::Held => Verdict::Held,
            Arrival::Tagged => Verdict::Emit(DEFAULT_PORT),
            Arrival::Late(_) => Verdict::Emit(LATE_PORT),
            Arrival::Rejected { reason, message } => Verdict::Reject { reason, message },
        }
    }

    fn finish(&mut self, cause: EndCause, out: &mut Outputs) {
        let end_reason = match cause {
            EndCause::EndOfInput => END_OF_INPUT,
            EndCause::Shutdown => SHUTDOWN,
        };
        let mut emitter = Emitter::new(out);
        self.state().finish(end_reason, &mut emitter);
        emitter.report(&mut self.telemetry);
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.tick_interval
    }

    fn tick(&mut self, now: SystemTime, out: &mut Outputs) {
        self.wall_ms = unix_ms(now);
        let mut emitter = Emitter::new(out);
        let watermark = {
            let mut state = self.state();
            state.tick(self.wall_ms, &mut emitter);
            state.watermark_ms()
        };
        emitter.report(&mut self.telemetry);
        self.report_lag(watermark);
    }
}

/// Routes the state's products to ports, counting sessions for telemetry
/// once per call rather than per session.
struct Emitter<'a> {
    out: &'a mut Outputs,
    opened: u64,
    closed: [u64; END_REASONS.len()],
}

impl<'a> Emitter<'a> {
    fn new(out: &'a mut Outputs) -> Self {
        Emitter {
            out,
            opened: 0,
            closed: [0; END_REASONS.len()],
        }
    }

    fn report(self, telemetry: &mut SessionTelemetry) {
        if self.opened > 0 {
            telemetry.sessions_opened(self.opened);
        }
        for (reason, &count) in END_REASONS.iter().zip(&self.closed) {
            if count > 0 {
                telemetry.sessions_closed(reason, count);
            }
        }
    }
}

impl SessionSink for Emitter<'_> {
    fn hold_ack(&self) -> Ack {
        self.out.ack()
    }

    fn event(&mut self, event: Event, ack: Ack) {
        self.out.push(DEFAULT_PORT, event);
        self.out.release(ack);
    }

    fn summary(&mut self, summary: Event, end_reason: &'static str) {
        self.out.push(SUMMARIES_PORT, summary);
        if let Some(i) = END_REASONS.iter().position(|r| *r == end_reason) {
            self.closed[i] += 1;
        }
    }

    fn opened(&mut self) {
        self.opened += 1;
    }
}
