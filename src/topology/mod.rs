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
pub mod placement;
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

use crate::component::{
    BuildContext, ComponentHealth, Outputs, Readiness, SourceContext, SourceSender, StateStore,
    HEALTH_STATE,
};
use crate::config::{graph, ComponentConfig, ComponentKind, ComponentSpec, Config};
use crate::shutdown::Shutdown;
use crate::telemetry::{self, ComponentTelemetry};
use actor::ComponentActor;
use edge::{Fanout, Inbox, InboxHandle, Partitioner, Reader};
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
    let (status, total) = match built {
        Ok(built) => (Arc::new(built.status), built.actors),
        Err(errors) => {
            stop_arbiters(arbiters);
            return Err(RunError::Build(errors));
        }
    };

    let counts = match counts_endpoint(&config) {
        Ok(counts) => counts,
        Err(error) => {
            stopper.trigger();
            stop_arbiters(arbiters);
            return Err(RunError::Build(vec![format!("api.counts: {error}")]));
        }
    };
    let api = if config.api.enabled {
        match crate::api::serve(config.api.listen, status.clone(), metrics, counts) {
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
                // A component is still draining while any of its actors (one
                // per shard) has not finished.
                let waiting: Vec<&str> = status
                    .components
                    .iter()
                    .filter(|c| {
                        let done = finished
                            .iter()
                            .filter(|f| f.split('#').next() == Some(c.id.as_str()))
                            .count();
                        done < c.stats.len()
                    })
                    .map(|c| c.id.as_str())
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

/// The counts endpoint's reader and credentials, when `[api] counts` is set.
fn counts_endpoint(config: &Config) -> Result<Option<crate::api::CountsEndpoint>, String> {
    let Some(counts) = &config.api.counts else {
        return Ok(None);
    };
    let redis = match config.component(&counts.sink).map(|c| &c.config) {
        Some(ComponentConfig::Sink(crate::sinks::SinkConfig::Redis(redis))) => redis,
        // Validation checked this; a Config built by hand may not have been.
        _ => return Err(format!("\"{}\" is not a redis sink", counts.sink)),
    };
    let reader =
        crate::sinks::redis::counts::CountsReader::new(redis).map_err(|e| e.to_string())?;
    Ok(Some(crate::api::CountsEndpoint {
        reader,
        credentials: crate::auth::Credentials::from_config(&config.api.auth),
    }))
}

fn stop_arbiters(arbiters: Vec<Arbiter>) {
    for arbiter in arbiters {
        arbiter.stop();
    }
}

/// What [`build`] started.
struct Built {
    status: TopologyStatus,
    /// Actors that will report `Finished` (a sharded component has several).
    actors: usize,
}

/// What every component start needs.
struct Env<'a> {
    engine: &'a crate::config::EngineConfig,
    events: &'a mpsc::Sender<ComponentEvent>,
    arbiters: &'a [Arbiter],
    /// Arbiter index by actor id, from [`placement::place`].
    placement: HashMap<String, usize>,
}

impl Env<'_> {
    /// The arbiter the actor `id` (a component, or `id#shard`) runs on.
    fn arbiter(&self, id: &str) -> actix::ArbiterHandle {
        let index = self.placement.get(id).copied().unwrap_or(0);
        self.arbiters[index % self.arbiters.len()].handle()
    }
}

/// Builds and starts every component; returns what the API shows.
fn build(
    config: &Config,
    arbiters: &[Arbiter],
    state: &Arc<StateStore>,
    events: &mpsc::Sender<ComponentEvent>,
    signal: &crate::shutdown::ShutdownSignal,
) -> Result<Built, Vec<String>> {
    let order = graph::topological_order(config);
    let mut env = Env {
        engine: &config.engine,
        events,
        arbiters,
        placement: HashMap::new(),
    };
    // Keyed components split into shards; known up front because a reader's
    // upstream count includes every shard of its inputs.
    let partitions: HashMap<&str, (usize, Partitioner)> = config
        .components
        .iter()
        .filter_map(|c| match &c.config {
            ComponentConfig::Transform(t) => t
                .partitioning(arbiters.len())
                .filter(|(shards, _)| *shards > 1)
                .map(|p| (c.id.as_str(), p)),
            _ => None,
        })
        .collect();
    let shard_count = |id: &str| partitions.get(id).map_or(1, |p| p.0);
    let nodes: Vec<placement::Node<'_>> = order
        .iter()
        .map(|&index| {
            let spec = &config.components[index];
            placement::Node {
                id: &spec.id,
                inputs: spec.inputs.iter().map(|i| i.component.as_str()).collect(),
                shards: shard_count(&spec.id),
            }
        })
        .collect();
    env.placement = placement::place(&nodes, arbiters.len());
    let mut readers_by_id: HashMap<String, Reader> = HashMap::new();
    let mut statuses: HashMap<String, ComponentStatus> = HashMap::new();
    let mut errors = Vec::new();
    let mut actors = 0;

    for &index in order.iter().rev() {
        let spec = &config.components[index];
        let id: Arc<str> = spec.id.as_str().into();
        let ports = ports_of(spec);
        let names: Arc<[String]> = ports.clone().into();
        let readers: Vec<Vec<Reader>> = ports
            .iter()
            .map(|port| readers_of(config, &spec.id, port, &readers_by_id))
            .collect();
        let upstreams: usize = spec
            .inputs
            .iter()
            .map(|i| i.component.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .map(shard_count)
            .sum();
        let kind = spec.kind.as_str();
        let mut stats = Vec::new();

        match &spec.config {
            ComponentConfig::Source(source_config) => {
                let cx = BuildContext {
                    id: &spec.id,
                    engine: env.engine,
                    state,
                    shard: None,
                };
                let source = match source_config.build(&cx) {
                    Ok(source) => source,
                    Err(err) => {
                        errors.push(format!("sources.{}: {err}", spec.id));
                        continue;
                    }
                };
                let telemetry = ComponentTelemetry::new(&spec.id, &spec.type_name, kind, &ports);
                stats.push(telemetry.stats());
                // As deep as any inbox: a shallower queue here made the
                // whole pipeline wait on the source's hand-offs (about 3%
                // of the replay benchmark's time).
                let (tx, rx) = mpsc::channel(env.engine.mailbox_capacity.max(1));
                let source_cx = SourceContext {
                    id: id.clone(),
                    out: SourceSender::new(tx, id.clone(), names),
                    shutdown: signal.clone(),
                    batch_size: env.engine.batch_size.max(1),
                    readiness: Readiness::new(telemetry.stats()),
                    workers: env.arbiters.iter().map(Arbiter::handle).collect(),
                };
                let fanout = Fanout::new(id.clone(), readers);
                let events = events.clone();
                let actor_id = id.clone();
                SourceActor::start_in_arbiter(&env.arbiter(&spec.id), move |_| {
                    SourceActor::new(actor_id, source, source_cx, rx, fanout, telemetry, events)
                });
                actors += 1;
            }
            ComponentConfig::Transform(transform_config) => {
                let partition = partitions.get(spec.id.as_str()).cloned();
                let shards = partition.as_ref().map_or(1, |p| p.0);
                let mut handles = Vec::with_capacity(shards);
                for shard in 0..shards {
                    let sharded = shards > 1;
                    let shard_id: Arc<str> = if sharded {
                        format!("{}#{shard}", spec.id).into()
                    } else {
                        id.clone()
                    };
                    // Each shard owns its keys' state; it survives the
                    // shard's restarts because the factory keeps it.
                    let shard_state = if sharded {
                        Arc::new(StateStore::default())
                    } else {
                        state.clone()
                    };
                    let telemetry = ComponentTelemetry::for_shard(
                        &spec.id,
                        &spec.type_name,
                        kind,
                        &ports,
                        sharded.then_some(shard),
                    );
                    stats.push(telemetry.stats());
                    let factory = factory(
                        &spec.id,
                        sharded.then_some(shard),
                        env.engine,
                        &shard_state,
                        transform_config.clone(),
                        |c, cx| c.build(cx),
                    );
                    let started = start_runner(
                        &mut env,
                        shard_id,
                        telemetry,
                        factory,
                        Outputs::new(id.clone(), names.clone()),
                        Fanout::new(
                            if sharded {
                                format!("{}#{shard}", spec.id).into()
                            } else {
                                id.clone()
                            },
                            readers.clone(),
                        ),
                        upstreams,
                        |supervised, outputs, fanout, inbox| TransformRunner {
                            supervised,
                            outputs,
                            fanout,
                            inbox,
                        },
                    );
                    match started {
                        Ok(handle) => handles.push(handle),
                        Err(err) => errors.push(format!("transforms.{}: {err}", spec.id)),
                    }
                }
                actors += handles.len();
                let reader = match partition {
                    Some((_, partitioner)) => Reader::Sharded {
                        id: id.clone(),
                        shards: handles,
                        partitioner,
                    },
                    None => match handles.pop() {
                        Some(handle) => Reader::Single(handle),
                        None => continue,
                    },
                };
                readers_by_id.insert(spec.id.clone(), reader);
            }
            ComponentConfig::Sink(sink_config) => {
                let telemetry = ComponentTelemetry::new(&spec.id, &spec.type_name, kind, &ports);
                stats.push(telemetry.stats());
                let factory = factory(
                    &spec.id,
                    None,
                    env.engine,
                    state,
                    sink_config.clone(),
                    |c, cx| c.build(cx),
                );
                let started = start_runner(
                    &mut env,
                    id.clone(),
                    telemetry,
                    factory,
                    Outputs::new(id.clone(), names),
                    Fanout::new(id.clone(), readers),
                    upstreams,
                    |supervised, outputs, fanout, inbox| SinkRunner {
                        supervised,
                        outputs,
                        fanout,
                        inbox,
                    },
                );
                match started {
                    Ok(handle) => {
                        readers_by_id.insert(spec.id.clone(), Reader::Single(handle));
                        actors += 1;
                    }
                    Err(err) => errors.push(format!("sinks.{}: {err}", spec.id)),
                }
            }
        }
        let health = state.get_or_insert(&spec.id, HEALTH_STATE, ComponentHealth::default);
        statuses.insert(
            spec.id.clone(),
            ComponentStatus::new(spec, ports, stats, health),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let components = config
        .components
        .iter()
        .filter_map(|c| statuses.remove(&c.id))
        .collect();
    Ok(Built {
        status: TopologyStatus::new(components),
        actors,
    })
}

/// Starts one transform or sink actor (one shard of it) and returns its inbox.
#[allow(clippy::too_many_arguments)]
fn start_runner<T: 'static, R: actor::Runner + Send>(
    env: &mut Env<'_>,
    id: Arc<str>,
    telemetry: ComponentTelemetry,
    factory: supervisor::Factory<T>,
    outputs: Outputs,
    fanout: Fanout,
    upstreams: usize,
    runner: fn(Supervised<T>, Outputs, Fanout, Inbox) -> R,
) -> Result<InboxHandle, String> {
    let capacity = env.engine.mailbox_capacity.max(1);
    let inbox = Inbox::new(capacity);
    telemetry.mailbox_capacity(capacity);
    let stats = telemetry.stats();
    let policy = env.engine.restart.clone();
    let supervised = Supervised::new(id.clone(), factory, policy, telemetry, env.events.clone())?;
    let runner = runner(supervised, outputs, fanout, inbox.clone());
    let addr = ComponentActor::start_in_arbiter(&env.arbiter(&id), move |_| {
        ComponentActor::new(runner, upstreams)
    });
    Ok(InboxHandle {
        id,
        data: addr.clone().recipient(),
        control: addr.recipient(),
        inbox,
        stats,
    })
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

/// The components that list `id.port` among their inputs.
fn readers_of(
    config: &Config,
    id: &str,
    port: &str,
    handles: &HashMap<String, Reader>,
) -> Vec<Reader> {
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
    shard: Option<usize>,
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
            shard,
        };
        build(&config, &cx)
    })
}
