//! Running a topology: one actix actor per component, bounded edges between
//! them, supervision, and the one way to stop.
//!
//! [`run`] builds the components from a validated [`Config`] in reverse
//! topological order (so every component knows its readers' inboxes when it is
//! built), spreads their actors over a pool of arbiter threads (one per core by
//! default), serves the API, and then waits: for every component to finish (a
//! replay that reached the end of its input), for the `shutdown` future (SIGTERM:
//! sources stop taking input and everything queued drains through, within
//! `engine.shutdown_timeout`), or for a component to fail (the topology is shut
//! down the same graceful way and `run` returns an error so the process exits
//! non-zero).
//!
//! # Layout
//! * [`edge`] — inboxes (the backpressure bound) and fan-out.
//! * [`actor`] — the actor that runs a transform or sink runner.
//! * [`transform_runner`], [`sink_runner`] — the plain structs doing the work.
//! * [`source_actor`] — the actor that runs a source.
//! * [`supervisor`] — restart decisions and the supervision tree.
//! * [`status`] — what `/ready`, `/topology` and the progress line read.

pub mod actor;
pub mod edge;
pub mod messages;
pub mod sink_runner;
pub mod source_actor;
pub mod status;
pub mod supervisor;
pub mod transform_runner;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Arbiter};
use tokio::sync::mpsc;

use crate::component::{BuildContext, Outputs, SourceContext, SourceSender, StateStore};
use crate::config::{graph, ComponentConfig, ComponentKind, ComponentSpec, Config};
use crate::shutdown::Shutdown;
use crate::telemetry::{self, ComponentTelemetry};
use actor::ComponentActor;
use edge::{Fanout, Inbox, InboxHandle};
use sink_runner::SinkRunner;
use source_actor::SourceActor;
use status::{ComponentStatus, TopologyStatus};
use supervisor::{ComponentEvent, Supervised};
use transform_runner::TransformRunner;

/// Why a run ended badly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not build the topology:\n{}", .0.join("\n"))]
    Build(Vec<String>),
    #[error("could not serve the API on {addr}: {error}")]
    Api { addr: String, error: String },
    #[error("{}", failed_message(.0))]
    Failed(Vec<(String, String)>),
    #[error("shutdown did not finish within {0:?}: components still draining: {1}")]
    ShutdownTimeout(Duration, String),
}

fn failed_message(failed: &[(String, String)]) -> String {
    let list: Vec<String> = failed
        .iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect();
    format!("components failed: {}", list.join("; "))
}

/// Things a caller may want to watch while the topology runs.
#[derive(Default)]
pub struct RunHooks {
    /// Receives the status once the topology is built (progress line, tests).
    pub on_started: Option<Box<dyn FnOnce(Arc<TopologyStatus>) + Send>>,
}

/// Runs `config` until its input ends, `shutdown` resolves, or a component fails.
/// Must be called inside an actix `System`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    hooks: RunHooks,
) -> Result<(), RunError> {
    let metrics = telemetry::install_recorder();
    let (stopper, signal) = Shutdown::new();
    let threads = config.engine.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let arbiters: Vec<Arbiter> = (0..threads.max(1)).map(|_| Arbiter::new()).collect();
    let (events_tx, mut events_rx) = mpsc::channel(config.components.len() * 2 + 8);
    let state = Arc::new(StateStore::default());

    let built = build(&config, &arbiters, &state, &events_tx, &signal);
    let status = match built {
        Ok(status) => Arc::new(status),
        Err(errors) => {
            stop_arbiters(arbiters);
            return Err(RunError::Build(errors));
        }
    };

    let api = if config.api.enabled {
        match crate::api::serve(config.api.listen, status.clone(), metrics) {
            Ok(server) => Some(server),
            Err(error) => {
                stopper.trigger();
                stop_arbiters(arbiters);
                return Err(RunError::Api {
                    addr: config.api.listen.to_string(),
                    error: error.to_string(),
                });
            }
        }
    } else {
        None
    };
    status.set_ready(true);
    if let Some(on_started) = hooks.on_started {
        on_started(status.clone());
    }

    let total = config.components.len();
    let mut finished: HashSet<Arc<str>> = HashSet::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let shutdown_timeout = config.engine.shutdown_timeout.0;
    tokio::pin!(shutdown);
    let mut shutdown_seen = false;
    let outcome = loop {
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                tracing::info!("shutdown requested: sources stop, queued events drain");
                status.set_ready(false);
                stopper.trigger();
                deadline.get_or_insert(tokio::time::Instant::now() + shutdown_timeout);
            }
            event = events_rx.recv() => match event {
                Some(ComponentEvent::Finished(id)) => {
                    finished.insert(id);
                    if finished.len() == total {
                        break Ok(());
                    }
                }
                Some(ComponentEvent::Failed(id, reason)) => {
                    status.set_ready(false);
                    status.record_failure(&id, &reason);
                    failed.push((id.to_string(), reason));
                    stopper.trigger();
                    deadline.get_or_insert(tokio::time::Instant::now() + shutdown_timeout);
                }
                // We hold a sender ourselves, so the channel cannot close.
                None => break Ok(()),
            },
            _ = timeout => {
                let waiting: Vec<&str> = config
                    .components
                    .iter()
                    .map(|c| c.id.as_str())
                    .filter(|id| !finished.contains(*id))
                    .collect();
                break Err(RunError::ShutdownTimeout(shutdown_timeout, waiting.join(", ")));
            }
        }
    };
    status.set_ready(false);
    if let Some(server) = api {
        server.stop(true).await;
    }
    stop_arbiters(arbiters);
    match outcome {
        Ok(()) if failed.is_empty() => Ok(()),
        Ok(()) => Err(RunError::Failed(failed)),
        Err(err) => Err(err),
    }
}

fn stop_arbiters(arbiters: Vec<Arbiter>) {
    for arbiter in arbiters {
        arbiter.stop();
    }
}

/// Builds and starts every component; returns what the API shows.
fn build(
    config: &Config,
    arbiters: &[Arbiter],
    state: &Arc<StateStore>,
    events: &mpsc::Sender<ComponentEvent>,
    signal: &crate::shutdown::ShutdownSignal,
) -> Result<TopologyStatus, Vec<String>> {
    let order = graph::topological_order(config);
    let engine = &config.engine;
    let capacity = engine.mailbox_capacity.max(1);
    let mut handles: HashMap<String, InboxHandle> = HashMap::new();
    let mut statuses: HashMap<String, ComponentStatus> = HashMap::new();
    let mut errors = Vec::new();

    for (position, &index) in order.iter().rev().enumerate() {
        let spec = &config.components[index];
        let id: Arc<str> = spec.id.as_str().into();
        let ports = ports_of(spec);
        let readers: Vec<Vec<InboxHandle>> = ports
            .iter()
            .map(|port| readers_of(config, &spec.id, port, &handles))
            .collect();
        let fanout = Fanout::new(id.clone(), readers);
        let telemetry =
            ComponentTelemetry::new(&spec.id, &spec.type_name, spec.kind.as_str(), &ports);
        let stats = telemetry.stats();
        let names: Arc<[String]> = ports.clone().into();
        let upstreams = spec
            .inputs
            .iter()
            .map(|i| i.component.as_str())
            .collect::<HashSet<_>>()
            .len();
        let arbiter = arbiters[position % arbiters.len()].handle();
        let policy = engine.restart.clone();

        match &spec.config {
            ComponentConfig::Source(source_config) => {
                let cx = BuildContext {
                    id: &spec.id,
                    engine,
                    state,
                };
                let source = match source_config.build(&cx) {
                    Ok(source) => source,
                    Err(err) => {
                        errors.push(format!("sources.{}: {err}", spec.id));
                        continue;
                    }
                };
                let (tx, rx) = mpsc::channel(2);
                let source_cx = SourceContext {
                    id: id.clone(),
                    out: SourceSender::new(tx, id.clone(), names),
                    shutdown: signal.clone(),
                    batch_size: engine.batch_size.max(1),
                };
                let events = events.clone();
                let actor_id = id.clone();
                SourceActor::start_in_arbiter(&arbiter, move |_| {
                    SourceActor::new(actor_id, source, source_cx, rx, fanout, telemetry, events)
                });
            }
            ComponentConfig::Transform(transform_config) => {
                let factory = factory(
                    &spec.id,
                    engine,
                    state,
                    transform_config.clone(),
                    |c, cx| c.build(cx),
                );
                let inbox = Inbox::new(capacity);
                telemetry.mailbox_capacity(capacity);
                let supervised =
                    match Supervised::new(id.clone(), factory, policy, telemetry, events.clone()) {
                        Ok(s) => s,
                        Err(err) => {
                            errors.push(format!("transforms.{}: {err}", spec.id));
                            continue;
                        }
                    };
                let runner = TransformRunner {
                    supervised,
                    outputs: Outputs::new(id.clone(), names),
                    fanout,
                    inbox: inbox.clone(),
                };
                let addr = ComponentActor::start_in_arbiter(&arbiter, move |_| {
                    ComponentActor::new(runner, upstreams)
                });
                handles.insert(
                    spec.id.clone(),
                    InboxHandle {
                        id: id.clone(),
                        data: addr.clone().recipient(),
                        control: addr.recipient(),
                        inbox,
                        stats: stats.clone(),
                    },
                );
            }
            ComponentConfig::Sink(sink_config) => {
                let factory = factory(&spec.id, engine, state, sink_config.clone(), |c, cx| {
                    c.build(cx)
                });
                let inbox = Inbox::new(capacity);
                telemetry.mailbox_capacity(capacity);
                let supervised =
                    match Supervised::new(id.clone(), factory, policy, telemetry, events.clone()) {
                        Ok(s) => s,
                        Err(err) => {
                            errors.push(format!("sinks.{}: {err}", spec.id));
                            continue;
                        }
                    };
                let runner = SinkRunner {
                    supervised,
                    outputs: Outputs::new(id.clone(), names),
                    fanout,
                    inbox: inbox.clone(),
                };
                let addr = ComponentActor::start_in_arbiter(&arbiter, move |_| {
                    ComponentActor::new(runner, upstreams)
                });
                handles.insert(
                    spec.id.clone(),
                    InboxHandle {
                        id: id.clone(),
                        data: addr.clone().recipient(),
                        control: addr.recipient(),
                        inbox,
                        stats: stats.clone(),
                    },
                );
            }
        }
        statuses.insert(spec.id.clone(), ComponentStatus::new(spec, ports, stats));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let components = config
        .components
        .iter()
        .filter_map(|c| statuses.remove(&c.id))
        .collect();
    Ok(TopologyStatus::new(components))
}

/// A component's ports. Sinks write rather than emit, so their port 0 (`""`)
/// counts events written and is never readable; `rejected` follows it.
fn ports_of(spec: &ComponentSpec) -> Vec<String> {
    match spec.kind {
        ComponentKind::Sink => std::iter::once(String::new())
            .chain(spec.outputs.iter().filter(|o| !o.is_empty()).cloned())
            .collect(),
        _ => spec.outputs.clone(),
    }
}

/// The inboxes of the components that list `id.port` among their inputs.
fn readers_of(
    config: &Config,
    id: &str,
    port: &str,
    handles: &HashMap<String, InboxHandle>,
) -> Vec<InboxHandle> {
    config
        .components
        .iter()
        .filter(|c| {
            c.inputs
                .iter()
                .any(|i| i.component == id && i.output == port)
        })
        .filter_map(|c| handles.get(&c.id).cloned())
        .collect()
}

/// A closure that builds a fresh instance of a component from its config.
fn factory<C, T>(
    id: &str,
    engine: &crate::config::EngineConfig,
    state: &Arc<StateStore>,
    config: C,
    build: fn(&C, &BuildContext<'_>) -> Result<T, String>,
) -> supervisor::Factory<T>
where
    C: Send + 'static,
    T: 'static,
{
    let id = id.to_owned();
    let engine = engine.clone();
    let state = state.clone();
    Box::new(move || {
        let cx = BuildContext {
            id: &id,
            engine: &engine,
            state: &state,
        };
        build(&config, &cx)
    })
}
