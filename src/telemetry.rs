//! Every metric and component log line, in one place.
//!
//! Components never call the `metrics` macros or log per event themselves: the
//! actors report what happened through a [`ComponentTelemetry`], which records
//! the Prometheus metric, keeps the in-process [`ComponentStats`] that
//! `/topology`, the progress line and `sluice top` read, and writes the log line,
//! rate-limited where it could flood.
//!
//! Naming scheme (documented in `docs/metrics.md`): `sluice_component_*` with the
//! labels `component_id`, `component_type`, `component_kind` on every series (and
//! `shard` on a sharded component's), plus one bounded label where a metric needs
//! it (`output`, `reason`, `error_type`, `status`, `end_reason`). Labels never
//! carry values from event data. Besides components: the sink requests
//! ([`ComponentTelemetry::sink_request`]), the API's requests ([`http_request`]),
//! the `sessionize` transform's sessions ([`SessionTelemetry`]), and the process
//! series `sluice_build_info` and `sluice_topology_ready`.
//!
//! Series that dashboards and alerts divide or compare (sent, restarts, failed,
//! sink requests by status, mailbox depth and capacity) are registered when the
//! component starts, so they exist at zero; series keyed by something only known
//! when it happens (a reject `reason`, an `error_type`) appear with it.

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
            describe_metrics();
            metrics::gauge!("sluice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The `# HELP` text of every family, so `/metrics` explains itself; the same
/// meanings are written out in `docs/metrics.md`.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "sluice_build_info",
        "Always 1; the version label says which sluice is running."
    );
    describe_gauge!(
        "sluice_topology_ready",
        "1 while the topology runs with no failed component, 0 before, after a failure and during shutdown."
    );
    describe_counter!(
        "sluice_component_received_events_total",
        "Events that entered the component (read by a source, taken from the mailbox by a transform or sink)."
    );
    describe_counter!(
        "sluice_component_sent_events_total",
        "Events the component sent on an output that has readers; for a sink the default output counts events written."
    );
    describe_counter!(
        "sluice_component_rejected_events_total",
        "Events the component rejected, by reason."
    );
    describe_counter!(
        "sluice_component_errors_total",
        "Component errors (failed writes, panics, lost downstreams), by kind."
    );
    describe_counter!(
        "sluice_component_restarts_total",
        "Times the supervisor restarted the component after a crash."
    );
    describe_gauge!(
        "sluice_component_failed",
        "1 once the component has failed for good (restart budget spent or rebuild failed), else 0."
    );
    describe_gauge!(
        "sluice_component_mailbox_depth",
        "Batches queued in the component's mailbox when it last took one."
    );
    describe_gauge!(
        "sluice_component_mailbox_capacity",
        "The component's mailbox bound, in batches."
    );
    describe_histogram!(
        "sluice_component_processing_seconds",
        Unit::Seconds,
        "Time to process one batch, retries included."
    );
    describe_counter!(
        "sluice_sink_requests_total",
        "Write attempts by a sink, by outcome (ok or error)."
    );
    describe_histogram!(
        "sluice_sink_request_seconds",
        Unit::Seconds,
        "Time of one write attempt by a sink."
    );
    describe_gauge!(
        "sluice_sessions_open",
        "Sessions the sessionize transform holds open."
    );
    describe_counter!(
        "sluice_sessions_closed_total",
        "Sessions the sessionize transform closed, by end reason."
    );
    describe_gauge!(
        "sluice_watermark_lag_seconds",
        "How far the sessionize transform's watermark is behind the wall clock."
    );
    describe_counter!(
        "sluice_ingest_requests_total",
        "Requests to an HTTP ingest source (segment_http), by endpoint and status code."
    );
    describe_histogram!(
        "sluice_ingest_request_seconds",
        Unit::Seconds,
        "Time to answer one request to an HTTP ingest source, by endpoint (waiting for delivery included)."
    );
    describe_counter!(
        "sluice_http_requests_total",
        "Requests to the API, by route pattern and status code."
    );
    describe_histogram!(
        "sluice_http_request_seconds",
        Unit::Seconds,
        "Time to answer one API request, by route pattern."
    );
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
    /// Set while a source says it cannot take input (see `component::Readiness`).
    not_ready: std::sync::atomic::AtomicBool,
}

impl ComponentStats {
    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, state: RunState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// False while the component says it cannot take input.
    pub fn is_ready(&self) -> bool {
        !self.not_ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self, ready: bool) {
        self.not_ready.store(!ready, Ordering::Release);
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
    failed: Gauge,
    /// No-ops for sources, which have no mailbox and process no batches.
    processing: Histogram,
    mailbox_depth: Gauge,
    /// No-ops except for sinks.
    sink_ok: Counter,
    sink_error: Counter,
    sink_seconds: Histogram,
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
        let (processing, mailbox_depth) = if kind == "source" {
            (Histogram::noop(), Gauge::noop())
        } else {
            (
                metrics::histogram!("sluice_component_processing_seconds", labels.clone()),
                metrics::gauge!("sluice_component_mailbox_depth", labels.clone()),
            )
        };
        let (sink_ok, sink_error, sink_seconds) = if kind == "sink" {
            (
                metrics::counter!("sluice_sink_requests_total", with(("status", "ok".into()))),
                metrics::counter!(
                    "sluice_sink_requests_total",
                    with(("status", "error".into()))
                ),
                metrics::histogram!("sluice_sink_request_seconds", labels.clone()),
            )
        } else {
            (Counter::noop(), Counter::noop(), Histogram::noop())
        };
        let failed = metrics::gauge!("sluice_component_failed", labels.clone());
        failed.set(0.0);
        let stats = Arc::new(ComponentStats::default());
        ComponentTelemetry {
            id: id.into(),
            received: metrics::counter!("sluice_component_received_events_total", labels.clone()),
            restarts: metrics::counter!("sluice_component_restarts_total", labels.clone()),
            failed,
            processing,
            mailbox_depth,
            sink_ok,
            sink_error,
            sink_seconds,
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
        if state == RunState::Finished {
            self.flush_suppressed();
        }
    }

    /// Writes one last line for each rate-limited log that held lines back,
    /// so a run shorter than the interval still says how many it suppressed.
    fn flush_suppressed(&self) {
        let rejects = std::mem::take(&mut lock(&self.reject_log).suppressed);
        if rejects > 0 {
            tracing::warn!(
                component_id = %self.id, suppressed = rejects,
                "rejected-event warnings suppressed since the last one (see sluice_component_rejected_events_total)"
            );
        }
        let errors = std::mem::take(&mut lock(&self.error_log).suppressed);
        if errors > 0 {
            tracing::warn!(
                component_id = %self.id, suppressed = errors,
                "error lines suppressed since the last one (see sluice_component_errors_total)"
            );
        }
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
        self.failed.set(1.0);
        self.flush_suppressed();
        tracing::error!(component_id = %self.id, "component failed: {reason}");
    }

    pub fn processing_time(&self, elapsed: Duration) {
        self.processing.record(elapsed.as_secs_f64());
    }

    /// One write attempt by a sink and how long it took. A batch that fails
    /// and is retried is several attempts.
    pub fn sink_request(&self, ok: bool, elapsed: Duration) {
        if ok {
            self.sink_ok.increment(1);
        } else {
            self.sink_error.increment(1);
        }
        self.sink_seconds.record(elapsed.as_secs_f64());
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

/// A sink's destination failed (Redis down, an endpoint refusing): logged
/// once when the component turns degraded, then every tenth retry.
pub fn destination_failing(component_id: &str, reason: &str, newly: bool, attempt: u32) {
    if newly {
        tracing::warn!(
            component_id,
            "destination unreachable, buffering and retrying: {reason}"
        );
    } else if attempt % 10 == 9 {
        tracing::warn!(component_id, attempt, "destination still failing: {reason}");
    } else {
        tracing::debug!(component_id, attempt, "destination still failing: {reason}");
    }
}

/// A degraded sink's destination answers again.
pub fn destination_restored(component_id: &str, down_for: Duration) {
    tracing::info!(
        component_id,
        down_ms = down_for.as_millis() as u64,
        "destination reachable"
    );
}

/// Trouble in a sink's background work that does not crash the component.
pub fn sink_background_error(component_id: &str, message: &str) {
    tracing::error!(component_id, "{message}");
}

/// Process-level series that belong to no component.
pub fn topology_ready(ready: bool) {
    metrics::gauge!("sluice_topology_ready").set(if ready { 1.0 } else { 0.0 });
}

/// One API request, answered with `status` after `elapsed`. `path` is the
/// route pattern that matched (`/metrics`), or `unmatched`: never the raw
/// path, which a client could make unbounded.
pub fn http_request(path: &str, status: u16, elapsed: Duration) {
    let path = path.to_owned();
    metrics::counter!(
        "sluice_http_requests_total",
        "path" => path.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("sluice_http_request_seconds", "path" => path)
        .record(elapsed.as_secs_f64());
}

/// What an HTTP ingest source (`segment_http`) reports about its requests,
/// labelled with its identity like every component series. `endpoint` is one
/// of the API's fixed names or `unmatched`, `status` the HTTP status code:
/// both bounded whatever clients send.
pub struct IngestTelemetry {
    id: Arc<str>,
    labels: Vec<Label>,
    refused_log: Mutex<RateLimiter>,
}

impl IngestTelemetry {
    pub fn new(component_id: &str, type_name: &str) -> Self {
        IngestTelemetry {
            id: component_id.into(),
            labels: vec![
                Label::new("component_id", component_id.to_owned()),
                Label::new("component_type", type_name.to_owned()),
                Label::new("component_kind", "source"),
            ],
            refused_log: Mutex::new(RateLimiter::new(Duration::from_secs(10))),
        }
    }

    /// One request answered with `status` after `elapsed`. A refused request
    /// (`refused`: a bounded reason and a message for a person) is logged,
    /// rate-limited: one line per 10 seconds with the count held back.
    pub fn request(
        &self,
        endpoint: &'static str,
        status: u16,
        elapsed: Duration,
        refused: Option<(&'static str, &str)>,
    ) {
        let mut labels = self.labels.clone();
        labels.push(Label::new("endpoint", endpoint));
        metrics::histogram!("sluice_ingest_request_seconds", labels.clone())
            .record(elapsed.as_secs_f64());
        labels.push(Label::new("status", status.to_string()));
        metrics::counter!("sluice_ingest_requests_total", labels).increment(1);
        if let Some((reason, message)) = refused {
            if let Some(held) = lock(&self.refused_log).check(Instant::now()) {
                tracing::warn!(
                    component_id = %self.id, endpoint, status, reason, suppressed = held,
                    "request refused: {message}"
                );
            }
        }
    }

    /// The HTTP server stopped taking requests, or could not start.
    pub fn server_event(&self, message: &str) {
        tracing::info!(component_id = %self.id, "{message}");
    }
}

/// What the `sessionize` transform reports about its sessions, labelled with
/// its identity like every component series.
///
/// Several shards of one component may each hold one of these: the open count
/// moves by increments, so their series adds up to the component's total; the
/// watermark lag shows the shard that reported last (shards' watermarks follow
/// the same clocks, so they differ little). A restarted shard builds a new one
/// and keeps counting on the same series.
pub struct SessionTelemetry {
    labels: Vec<Label>,
    open: Gauge,
    watermark_lag: Gauge,
    closed: Vec<(&'static str, Counter)>,
}

impl SessionTelemetry {
    /// Registers the series of sessionize component `component_id`;
    /// `end_reasons` (all the reasons it may close a session for) start at
    /// zero so dashboards and alerts see them before the first close.
    /// A sharded sessionizer passes its `shard`, which labels every series
    /// like the shard's other component series, so each shard's watermark
    /// lag is its own series (the component's lag is their `max`).
    pub fn new(component_id: &str, shard: Option<usize>, end_reasons: &[&'static str]) -> Self {
        let mut labels = vec![
            Label::new("component_id", component_id.to_owned()),
            Label::new("component_type", "sessionize"),
            Label::new("component_kind", "transform"),
        ];
        if let Some(shard) = shard {
            labels.push(Label::new("shard", shard.to_string()));
        }
        let mut telemetry = SessionTelemetry {
            open: metrics::gauge!("sluice_sessions_open", labels.clone()),
            watermark_lag: metrics::gauge!("sluice_watermark_lag_seconds", labels.clone()),
            labels,
            closed: Vec::with_capacity(end_reasons.len()),
        };
        for reason in end_reasons {
            telemetry.closed_counter(reason);
        }
        telemetry
    }

    /// `count` sessions were opened (or restored from a snapshot).
    pub fn sessions_opened(&self, count: u64) {
        self.open.increment(count as f64);
    }

    /// `count` sessions were closed for `end_reason` (`timeout`, `evicted`, ...).
    pub fn sessions_closed(&mut self, end_reason: &'static str, count: u64) {
        self.open.decrement(count as f64);
        self.closed_counter(end_reason).increment(count);
    }

    /// How far the watermark is behind the wall clock now (negative when
    /// event times run ahead of it).
    pub fn watermark_lag(&self, seconds: f64) {
        self.watermark_lag.set(seconds);
    }

    fn closed_counter(&mut self, end_reason: &'static str) -> &Counter {
        let index = match self.closed.iter().position(|(r, _)| *r == end_reason) {
            Some(index) => index,
            None => {
                let mut labels = self.labels.clone();
                labels.push(Label::new("end_reason", end_reason));
                let counter = metrics::counter!("sluice_sessions_closed_total", labels);
                self.closed.push((end_reason, counter));
                self.closed.len() - 1
            }
        };
        &self.closed[index].1
    }
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

    /// Runs `f` against a private recorder and returns what `/metrics` would show.
    fn rendered(f: impl FnOnce()) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn sources_have_no_mailbox_or_processing_series() {
        let text = rendered(|| {
            let t = ComponentTelemetry::new("in", "file", "source", &["".into()]);
            t.mailbox_depth(2);
            t.processing_time(Duration::from_millis(1));
        });
        assert!(text.contains("sluice_component_received_events_total{"));
        assert!(!text.contains("sluice_component_mailbox_depth"), "{text}");
        assert!(
            !text.contains("sluice_component_processing_seconds"),
            "{text}"
        );
        assert!(!text.contains("sluice_sink_requests_total"), "{text}");
    }

    #[test]
    fn sink_requests_start_at_zero_for_both_outcomes() {
        let text = rendered(|| {
            let t = ComponentTelemetry::new("out", "file", "sink", &["".into()]);
            t.sink_request(true, Duration::from_millis(2));
        });
        let labels = r#"component_id="out",component_type="file",component_kind="sink""#;
        assert!(text.contains(&format!(
            "sluice_sink_requests_total{{{labels},status=\"ok\"}} 1"
        )));
        assert!(text.contains(&format!(
            "sluice_sink_requests_total{{{labels},status=\"error\"}} 0"
        )));
        assert!(text.contains(&format!("sluice_sink_request_seconds_count{{{labels}}} 1")));
        assert!(text.contains(&format!("sluice_component_failed{{{labels}}} 0")));
    }

    #[test]
    fn sessions_open_adds_up_over_shards() {
        let text = rendered(|| {
            let mut a = SessionTelemetry::new("s", None, &["timeout"]);
            let mut b = SessionTelemetry::new("s", None, &["timeout"]);
            a.sessions_opened(3);
            b.sessions_opened(2);
            a.sessions_closed("timeout", 1);
            b.sessions_closed("evicted", 1);
            a.watermark_lag(1.5);
        });
        let labels = r#"component_id="s",component_type="sessionize",component_kind="transform""#;
        assert!(
            text.contains(&format!("sluice_sessions_open{{{labels}}} 3")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "sluice_sessions_closed_total{{{labels},end_reason=\"timeout\"}} 1"
        )));
        assert!(text.contains(&format!(
            "sluice_sessions_closed_total{{{labels},end_reason=\"evicted\"}} 1"
        )));
        assert!(text.contains(&format!("sluice_watermark_lag_seconds{{{labels}}} 1.5")));
    }

    #[test]
    fn http_requests_are_labelled_by_pattern_and_status() {
        let text = rendered(|| http_request("/metrics", 200, Duration::from_millis(1)));
        assert!(text.contains(r#"sluice_http_requests_total{path="/metrics",status="200"} 1"#));
        assert!(text.contains(r#"sluice_http_request_seconds_count{path="/metrics"} 1"#));
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
