//! `blackhole` sink: counts events and discards them. With `rate` it is a
//! deliberately slow destination, for exercising backpressure.
//!
//! ```toml
//! [sinks.slow]
//! type = "blackhole"
//! inputs = ["sessions"]
//! rate = 5000   # optional: accept at most this many events per second
//! ```
//!
//! Contract: `write` always succeeds. Without `rate` it returns at once; with
//! it, it returns only when the batch fits the rate — each batch of `n` events
//! moves a deadline `n / rate` seconds on, and `write` waits (with
//! `tokio::time`, never blocking the thread) until that deadline. Time spent
//! idle earns no credit, so a burst after a pause is paced like any other.
//! The running total of events accepted is kept in the component's state
//! (`total`, an `AtomicU64`), so it survives restarts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::time::Instant;

use crate::component::{BuildContext, Sink, SinkError, REJECTED};
use crate::config::FieldError;
use crate::event::Event;

/// The name of the running total in the [`crate::component::StateStore`].
pub const TOTAL_STATE: &str = "total";

/// A single batch never waits longer than this, so a tiny rate cannot overflow the clock.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// `[sinks.<id>]` with `type = "blackhole"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {
    /// Events per second to accept at most; unset accepts events as fast as they come.
    pub rate: Option<f64>,
}

impl BlackholeConfig {
    pub fn outputs(&self) -> Vec<String> {
        vec![REJECTED.to_string()]
    }

    pub fn validate(&self) -> Vec<FieldError> {
        match self.rate {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => vec![FieldError::new(
                "rate",
                format!("rate {rate} is not a positive number of events per second (try 5000)"),
            )],
            _ => Vec::new(),
        }
    }

    pub fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Sink>, String> {
        Ok(Box::new(Blackhole {
            total: cx
                .state
                .get_or_insert(cx.id, TOTAL_STATE, || AtomicU64::new(0)),
            pacer: self.rate.map(Pacer::new),
        }))
    }
}

/// The running sink.
pub struct Blackhole {
    total: Arc<AtomicU64>,
    pacer: Option<Pacer>,
}

impl Blackhole {
    /// Events accepted so far, over all instances built for this component.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

impl Sink for Blackhole {
    fn write<'a>(&'a mut self, events: &'a [Event]) -> BoxFuture<'a, Result<(), SinkError>> {
        let count = events.len();
        let deadline = self
            .pacer
            .as_mut()
            .map(|pacer| pacer.admit(count, Instant::now()));
        Box::pin(async move {
            if let Some(deadline) = deadline {
                tokio::time::sleep_until(deadline).await;
            }
            self.total.fetch_add(count as u64, Ordering::Relaxed);
            Ok(())
        })
    }
}

/// Keeps a sink to a rate: the instant the next batch may be accepted.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    next_allowed: Option<Instant>,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Pacer {
            rate,
            next_allowed: None,
        }
    }

    /// Accepts `count` events arriving at `now`; returns when the write may finish.
    fn admit(&mut self, count: usize, now: Instant) -> Instant {
        let start = match self.next_allowed {
            Some(next) if next > now => next,
            _ => now,
        };
        let wait = Duration::try_from_secs_f64(count as f64 / self.rate)
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT);
        let deadline = start + wait;
        self.next_allowed = Some(deadline);
        deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::StateStore;
    use crate::config::{from_table, EngineConfig};

    fn config(toml_text: &str) -> BlackholeConfig {
        from_table(toml::from_str(toml_text).unwrap()).unwrap()
    }

    #[test]
    fn pacer_moves_the_deadline_by_count_over_rate() {
        let mut pacer = Pacer::new(1000.0);
        let t0 = Instant::now();
        assert_eq!(pacer.admit(500, t0), t0 + Duration::from_millis(500));
        // Arriving early: queued behind the previous batch.
        assert_eq!(
            pacer.admit(1000, t0 + Duration::from_millis(100)),
            t0 + Duration::from_millis(1500)
        );
        // Arriving after a pause: idle time earns no credit.
        let late = t0 + Duration::from_secs(10);
        assert_eq!(pacer.admit(100, late), late + Duration::from_millis(100));
        let mut crawl = Pacer::new(1e-300);
        assert_eq!(crawl.admit(1024, t0), t0 + MAX_WAIT);
    }

    #[tokio::test]
    async fn counts_and_keeps_the_total_across_rebuilds() {
        let state = StateStore::default();
        let engine = EngineConfig::default();
        let cx = BuildContext {
            id: "void",
            engine: &engine,
            state: &state,
            shard: None,
        };
        let events = vec![Event::default(); 10];
        let mut sink = config("rate = 1000000").build(&cx).unwrap();
        sink.write(&events).await.unwrap();
        sink.write(&events[..3]).await.unwrap();
        let rebuilt = Blackhole {
            total: state.get_or_insert("void", TOTAL_STATE, || AtomicU64::new(0)),
            pacer: None,
        };
        assert_eq!(rebuilt.total(), 13);
    }

    #[test]
    fn rate_must_be_positive() {
        assert!(config("").validate().is_empty());
        assert!(config("rate = 5000").validate().is_empty());
        assert!(config("rate = 0.5").validate().is_empty());
        let errors = config("rate = 0").validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "rate");
        assert_eq!(
            errors[0].message,
            "rate 0 is not a positive number of events per second (try 5000)"
        );
        assert_eq!(config("rate = -3").validate().len(), 1);
        assert_eq!(config("").outputs(), vec!["rejected"]);
    }
}
