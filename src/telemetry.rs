//! Every metric and component log line, in one place.
//!
//! Components never call the `metrics` macros or log per event themselves: the
//! actors report what happened through a [`ComponentTelemetry`], which records
//! the Prometheus metric, keeps the in-process [`ComponentStats`] that
//! `/topology`, the progress line and `sluice top` read, and writes the log line,
//! rate-limited where it could flood.
//!
//! Naming scheme (documented in `docs/metrics.md`): `sluice_component_*` with the
//! labels `component_id`, `component_type`, `component_kind` on every series, plus
//! one bounded label where a metric needs it (`output`, `reason`, `error_type`).
//! Labels never carry values from event data.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Label};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once; later calls return the
/// same handle. Every process that runs a topology calls this first.
pub fn install_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                // The bucket list above is non-empty, which is all this checks.
                .expect("non-empty histogram buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program's);
            // then our handle renders nothing from the facade, which is its choice.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            metrics::gauge!("sluice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The run state of a component, as shown by `/topology` and `sluice top`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Starting = 0,
    Running = 1,
    Restarting = 2,
    Failed = 3,
    Finished = 4,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Restarting => "restarting",
            RunState::Failed => "failed",
            RunState::Finished => "finished",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => RunState::Starting,
            1 => RunState::Running,
            2 => RunState::Restarting,
            3 => RunState::Failed,
            _ => RunState::Finished,
        }
    }
}

/// Counters a component keeps for in-process readers.
#[derive(Debug, Default)]
pub struct ComponentStats {
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub rejected: AtomicU64,
    pub errors: AtomicU64,
    pub restarts: AtomicU64,
    /// Batches queued in the mailbox now, and the most ever seen.
    pub mailbox_depth: AtomicUsize,
    pub mailbox_peak: AtomicUsize,
    pub mailbox_capacity: AtomicUsize,
    state: AtomicU8,
}

impl ComponentStats {
    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, state: RunState) {
        self.state.store(state as u8, Ordering::Release);
    }
}

/// Logs at most one line per interval, counting what it held back.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimiter {
    pub fn new(interval: Duration) -> Self {
        RateLimiter {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last line)` when a line may be written now.
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// What one component reports, labelled with its identity.
pub struct ComponentTelemetry {
    id: Arc<str>,
    labels: Vec<Label>,
    stats: Arc<ComponentStats>,
    received: Counter,
    /// By port.
    sent: Vec<Counter>,
    rejected: Vec<(&'static str, Counter)>,
    errors: Vec<(&'static str, Counter)>,
    restarts: Counter,
    processing: Histogram,
    mailbox_depth: Gauge,
    reject_log: Mutex<RateLimiter>,
    error_log: Mutex<RateLimiter>,
}

impl ComponentTelemetry {
    /// Registers the component's series; `outputs` are its port names.
    pub fn new(id: &str, type_name: &str, kind: &'static str, outputs: &[String]) -> Self {
        Self::for_shard(id, type_name, kind, outputs, None)
    }

    /// Like [`ComponentTelemetry::new`], for one shard of a keyed component:
    /// its series carry a `shard` label (a small number, so still bounded).
    pub fn for_shard(
        id: &str,
        type_name: &str,
        kind: &'static str,
        outputs: &[String],
        shard: Option<usize>,
    ) -> Self {
        let mut labels = vec![
            Label::new("component_id", id.to_owned()),
            Label::new("component_type", type_name.to_owned()),
            Label::new("component_kind", kind),
        ];
        if let Some(shard) = shard {
            labels.push(Label::new("shard", shard.to_string()));
        }
        let with = |extra: (&'static str, String)| {
            let mut l = labels.clone();
            l.push(Label::new(extra.0, extra.1));
            l
        };
        let sent = outputs
            .iter()
            .map(|name| {
                let output = if name.is_empty() { "_default" } else { name };
                metrics::counter!(
                    "sluice_component_sent_events_total",
                    with(("output", output.to_owned()))
                )
            })
            .collect();
        let stats = Arc::new(ComponentStats::default());
        ComponentTelemetry {
            id: id.into(),
            received: metrics::counter!("sluice_component_received_events_total", labels.clone()),
            restarts: metrics::counter!("sluice_component_restarts_total", labels.clone()),
            processing: metrics::histogram!("sluice_component_processing_seconds", labels.clone()),
            mailbox_depth: metrics::gauge!("sluice_component_mailbox_depth", labels.clone()),
            sent,
            rejected: Vec::new(),
            errors: Vec::new(),
            labels,
            stats,
            reject_log: Mutex::new(RateLimiter::new(Duration::from_secs(10))),
            error_log: Mutex::new(RateLimiter::new(Duration::from_secs(10))),
        }
    }

    /// The in-process counters, shared with `/topology`.
    pub fn stats(&self) -> Arc<ComponentStats> {
        self.stats.clone()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The mailbox bound; also exported so dashboards can show fill ratios.
    pub fn mailbox_capacity(&self, capacity: usize) {
        self.stats
            .mailbox_capacity
            .store(capacity, Ordering::Relaxed);
        metrics::gauge!("sluice_component_mailbox_capacity", self.labels.clone())
            .set(capacity as f64);
    }

    pub fn state(&self, state: RunState) {
        self.stats.set_state(state);
    }

    pub fn events_received(&self, count: usize) {
        self.received.increment(count as u64);
        self.stats
            .received
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn events_sent(&self, port: usize, count: usize) {
        if let Some(counter) = self.sent.get(port) {
            counter.increment(count as u64);
        }
        self.stats.sent.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Rejections by reason. When nothing consumes the `rejected` output the
    /// events end here: they are counted and logged, never dropped silently.
    pub fn events_rejected(&mut self, reason: &'static str, count: u64, consumed: bool) {
        let counter = match self.rejected.iter().find(|(r, _)| *r == reason) {
            Some((_, c)) => c.clone(),
            None => {
                let mut labels = self.labels.clone();
                labels.push(Label::new("reason", reason));
                let c = metrics::counter!("sluice_component_rejected_events_total", labels);
                self.rejected.push((reason, c.clone()));
                c
            }
        };
        counter.increment(count);
        self.stats.rejected.fetch_add(count, Ordering::Relaxed);
        if !consumed {
            if let Some(held) = lock(&self.reject_log).check(Instant::now()) {
                tracing::warn!(
                    component_id = %self.id, reason, count, suppressed = held,
                    "events rejected and nothing reads the `rejected` output; they are counted, not kept"
                );
            }
        }
    }

    /// A component error (failed write, panic), by bounded kind.
    pub fn error(&mut self, error_type: &'static str, message: &str) {
        let counter = match self.errors.iter().find(|(e, _)| *e == error_type) {
            Some((_, c)) => c.clone(),
            None => {
                let mut labels = self.labels.clone();
                labels.push(Label::new("error_type", error_type));
                let c = metrics::counter!("sluice_component_errors_total", labels);
                self.errors.push((error_type, c.clone()));
                c
            }
        };
        counter.increment(1);
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(held) = lock(&self.error_log).check(Instant::now()) {
            tracing::error!(component_id = %self.id, error_type, suppressed = held, "{message}");
        }
    }

    /// The component is being restarted after `reason`, waiting `backoff` first.
    pub fn restarting(&self, reason: &str, backoff: Duration, restarts_in_window: u32) {
        self.restarts.increment(1);
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.stats.set_state(RunState::Restarting);
        tracing::warn!(
            component_id = %self.id,
            backoff_ms = backoff.as_millis() as u64,
            restarts_in_window,
            "component crashed, restarting: {reason}"
        );
    }

    /// The component exceeded its restart budget (or could not be rebuilt).
    pub fn failed(&self, reason: &str) {
        self.stats.set_state(RunState::Failed);
        tracing::error!(component_id = %self.id, "component failed: {reason}");
    }

    pub fn processing_time(&self, elapsed: Duration) {
        self.processing.record(elapsed.as_secs_f64());
    }

    /// Batches queued in this component's mailbox right now.
    pub fn mailbox_depth(&self, depth: usize) {
        self.mailbox_depth.set(depth as f64);
        self.stats.mailbox_depth.store(depth, Ordering::Relaxed);
        self.stats.mailbox_peak.fetch_max(depth, Ordering::Relaxed);
    }

    /// Events thrown away because the component had failed for good.
    pub fn events_discarded(&mut self, count: usize) {
        self.error(
            "component_failed",
            "discarding a batch: the component has failed",
        );
        self.stats
            .rejected
            .fetch_add(count as u64, Ordering::Relaxed);
    }
}

/// A `ComponentStats` that `Mutex` poisoning cannot take down: a panic while
/// logging must not stop the component from reporting.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Process-level series that belong to no component.
pub fn topology_ready(ready: bool) {
    metrics::gauge!("sluice_topology_ready").set(if ready { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_counts_suppressed_lines() {
        let mut rl = RateLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(rl.check(t0), Some(0));
        assert_eq!(rl.check(t0 + Duration::from_secs(1)), None);
        assert_eq!(rl.check(t0 + Duration::from_secs(2)), None);
        assert_eq!(rl.check(t0 + Duration::from_secs(11)), Some(2));
    }

    #[test]
    fn stats_track_peak_depth() {
        let t = ComponentTelemetry::new("x", "filter", "transform", &["".into()]);
        t.mailbox_depth(3);
        t.mailbox_depth(1);
        let s = t.stats();
        assert_eq!(s.mailbox_depth.load(Ordering::Relaxed), 1);
        assert_eq!(s.mailbox_peak.load(Ordering::Relaxed), 3);
    }
}
